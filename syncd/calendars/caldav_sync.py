"""What changed in a CalDAV collection, at the cost of the changes (promise 6).

Two ways to learn it, both ending in at most one calendar-multiget for the items that changed:

* **RFC 6578 sync-collection**, through ``caldav``'s ``get_objects_by_sync_token`` with
  ``load_objects=False`` (the library would otherwise GET each object) and
  ``disable_fallback=True``. Without that flag a rejected token makes the library list the whole
  collection and hand back a ``fake-...`` token, after which it never syncs for real again; here
  a rejected token is ``TokenExpired`` and the engine starts over from no token itself.
  Radicale rejects a bad token with 403, Xandikos with 412, both with ``DAV:valid-sync-token``.
* **A PROPFIND etag listing** (Depth 1), for servers without sync-collection, diffed against the
  etags syncd tracks (``known``). Used from the first time a server refuses a token-less
  sync-collection REPORT; the answer is remembered for the life of the process.

An idle cycle is one request either way: the REPORT (or PROPFIND) and no multiget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import structlog
from caldav.collection import Calendar as DavCalendar
from caldav.collection import SynchronizableCalendarObjectCollection as SyncResult
from caldav.lib import error as dav_error

from syncd.calendars.base import CalendarChanges
from syncd.calendars.caldav_http import (
    SUPPORTED_REPORT,
    VALID_SYNC_TOKEN,
    DavSession,
    canonical,
    multiget_body,
    propfind_body,
)
from syncd.errors import TokenExpired
from syncd.model import CalendarItem

log = structlog.get_logger("syncd.caldav")

# With a token, these mean "not this token" even without a DAV:valid-sync-token body; without
# one they mean "not this report" (RFC 6578 section 3.2, RFC 3253 supported-report).
_TOKEN_REFUSED = frozenset({400, 403, 409, 410, 412, 422})
_REPORT_REFUSED = frozenset({400, 403, 405, 409, 412, 415, 422, 501})


class SyncUnsupported(Exception):
    """The server does not do sync-collection on this collection."""


@dataclass(frozen=True, slots=True)
class Listing:
    """Hrefs with their etags (None when the server gave none), the deleted, a token."""

    etags: dict[str, str | None]
    deleted: list[str]
    token: str | None


def sync_collection(session: DavSession, url: str, token: str | None) -> Listing:
    """One sync-collection exchange (more only if the server truncates its reply)."""
    calendar = DavCalendar(client=session.client, url=url)
    try:
        result = calendar.get_objects_by_sync_token(
            sync_token=token, load_objects=False, disable_fallback=True
        )
    except dav_error.RateLimitError:
        raise
    except dav_error.DAVError as exc:
        reason = set(exc.preconditions)
        if token is not None and (VALID_SYNC_TOKEN in reason or exc.status in _TOKEN_REFUSED):
            raise TokenExpired(session.name, f"the server rejected sync token {token}") from exc
        if token is None and (SUPPORTED_REPORT in reason or exc.status in _REPORT_REFUSED):
            raise SyncUnsupported(str(exc.status)) from exc
        raise
    if not isinstance(result, SyncResult):  # only the async client returns a coroutine
        raise TypeError(f"caldav returned {type(result).__name__} from a sync client")
    deleted = {canonical(str(u)) for u in result.deleted_urls}
    etags = {
        canonical(str(obj.url)): obj.props.get("{DAV:}getetag")
        for obj in result
        if canonical(str(obj.url)) not in deleted
    }
    return Listing(etags=etags, deleted=sorted(deleted), token=result.sync_token)


def etag_listing(session: DavSession, url: str) -> dict[str, str | None]:
    """Every item of the collection with its etag, from one PROPFIND (Depth 1)."""
    members = session.members("PROPFIND", url, propfind_body("getetag", "resourcetype"), 1)
    here = canonical(url).rstrip("/")
    return {
        m.href: m.etag
        for m in members
        if m.status == 200 and not m.collection and m.href.rstrip("/") != here
    }


def fetch(
    session: DavSession, url: str, hrefs: Sequence[str]
) -> tuple[list[CalendarItem], set[str]]:
    """The items at ``hrefs`` from one calendar-multiget, and the hrefs that are gone.

    An item the server answers for without calendar data is returned with empty text, so the
    engine names it when it skips it instead of it silently disappearing.
    """
    wanted = list(dict.fromkeys(canonical(h) for h in hrefs))
    if not wanted:
        return [], set()
    members = session.members("REPORT", url, multiget_body(wanted), None)
    items = [
        CalendarItem(href=m.href, etag=m.etag or "", ics=m.data or "")
        for m in members
        if m.status == 200 and m.href in wanted
    ]
    found = {item.href for item in items}
    return items, {h for h in wanted if h not in found}


class ChangeReader:
    """Reads changes for one collection, remembering whether the server can sync."""

    def __init__(self, session: DavSession) -> None:
        self.session = session
        self.sync_supported: bool | None = None  # None until the server has answered

    def read(self, url: str, token: str | None, known: Mapping[str, str] | None) -> CalendarChanges:
        """Changes since ``token``; ``requests`` is left for the caller to fill in.

        With a token, items whose etag equals the one in ``known`` are not fetched: that is
        syncd reading back its own writes. Without one the answer is ``complete``.
        """
        tracked = None if known is None else {canonical(h): e for h, e in known.items()}
        if self.sync_supported is not False:
            try:
                listing = sync_collection(self.session, url, token)
            except SyncUnsupported as exc:
                self.sync_supported = False
                log.warning(
                    "caldav.no_sync_collection", calendar=self.session.name, status=str(exc)
                )
            else:
                self.sync_supported = True
                skip = tracked if token is not None and tracked is not None else {}
                stale = [h for h, e in listing.etags.items() if e is None or skip.get(h) != e]
                items, gone = fetch(self.session, url, stale)
                deleted = sorted(set(listing.deleted) | gone)
                return CalendarChanges(items, deleted, listing.token, complete=token is None)
        etags = etag_listing(self.session, url)
        if tracked is None:
            items, gone = fetch(self.session, url, list(etags))
            return CalendarChanges(items, sorted(gone), None, complete=True)
        stale = [h for h, e in etags.items() if e is None or tracked.get(h) != e]
        items, gone = fetch(self.session, url, stale)
        deleted = sorted({h for h in tracked if h not in etags} | gone)
        return CalendarChanges(items, deleted, None, complete=False)
