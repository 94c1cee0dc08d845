"""A CalDAV collection held in memory, for tests, the benchmark and the demo.

It keeps what a CalDAV server keeps and promises what one promises:

* Raw iCalendar text per href, never parsed on the write path, so malformed items stay as they
  are (the engine is the one that must cope with them).
* ``create`` puts the item at ``{uid}.ics``. Like Radicale and Xandikos it refuses a second item
  with a UID the collection already holds, wherever it lives, and says where it is
  (``AlreadyExists.href``): that is how a create replayed after a crash gets adopted.
* Every write gets a fresh etag, even when the text did not change, as servers that stamp
  DTSTAMP or count revisions do: an etag change alone must not look like an edit to syncd.
* ``changes(token)`` reads a change log kept in change order, so it costs O(changes): an item
  written several times appears once, with its latest text; one created and deleted since the
  token appears as deleted. Tokens from another collection, or from before
  ``expire_tokens()``, raise ``TokenExpired`` as a server that dropped its history does.

The ``user_*`` helpers are a person with a calendar client: unconditional writes that cost no
request, so tests can change the calendar behind syncd's back without touching the counters.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import icalendar

from syncd.calendars.base import Calendar, CalendarCapability, CalendarChanges
from syncd.errors import AlreadyExists, NotFound, PreconditionFailed, TokenExpired
from syncd.faults import FaultInjection, Faults
from syncd.model import UTC, CalendarItem, ItemRef
from syncd.providers.base import Window

_FOLD = re.compile(r"\r?\n[ \t]")
_UID = re.compile(r"^UID(?:;[^:\r\n]*)?:(.*?)\r?$", re.MULTILINE)
# The same line after a line break, found by its literal start. ``[^\n]*`` keeps any final
# CR, which the caller strips anyway; it spares the regex engine a lazy match per character.
_UID_AFTER_BREAK = re.compile(r"\nUID(?:;[^:\r\n]*)?:([^\n]*)")


def uid_of(ics: str) -> str | None:
    """The first UID in ``ics``, read without a full parse (the write path must stay cheap).

    Unfolding the whole text first cost more than the rest of a write, so the raw text is
    searched first; that answer stands when no fold comes before the end of the UID line
    (unfolding could not have changed anything up to there), else the text is unfolded.
    """
    found = _uid_line(ics)
    if found is not None:
        limit = found.end() + 2  # past the line break, to see whether a continuation follows
        if ics.find("\n ", 0, limit) == -1 and ics.find("\n\t", 0, limit) == -1:
            return found.group(1).strip()
    found = _uid_line(_FOLD.sub("", ics))
    return found.group(1).strip() if found else None


def _uid_line(text: str) -> re.Match[str] | None:
    # ``_UID.search`` in two steps, because a pattern that starts with a literal is scanned
    # for far faster than one that starts with ``^``.
    return _UID.match(text) or _UID_AFTER_BREAK.search(text)


@dataclass(frozen=True, slots=True)
class _Span:
    """Where one VEVENT of an item lies; for a recurring one, its first occurrence."""

    start: datetime
    end: datetime
    recurring: bool

    def may_touch(self, window: Window) -> bool:
        if self.recurring:
            return self.start < window.end
        starts_inside = self.start >= window.start  # counts an event of zero length
        return self.start < window.end and (self.end > window.start or starts_inside)


def _spans(ics: str) -> list[_Span] | None:
    """The spans of every VEVENT in ``ics``, or None when it cannot be read.

    Floating times and all-day dates are read as UTC, the default calendar timezone RFC 4791
    gives time-range queries, which is what Radicale does too.
    """
    try:
        found = []
        for event in icalendar.Calendar.from_ical(ics).events:
            recurring = "RRULE" in event or "RDATE" in event
            found.append(_Span(_instant(event.start), _instant(event.end), recurring))
    except (ValueError, KeyError, TypeError, AttributeError):  # mostly ValueError subclasses
        return None
    return found


def _instant(value: date | datetime) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.combine(value, datetime.min.time())
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class MemoryCalendar(FaultInjection, Calendar):
    """One calendar collection in memory; ``name`` appears in every error it raises."""

    capabilities = frozenset({CalendarCapability.SYNC_TOKEN, CalendarCapability.SEARCH})

    def __init__(self, name: str = "memory") -> None:
        super().__init__(name)
        self.faults = Faults()
        self._tag = uuid.uuid4().hex[:8]  # tells this collection's tokens from any other's
        self._seq = 0
        self._oldest_token = 0
        self._items: dict[str, CalendarItem] = {}
        self._hrefs_by_uid: dict[str, str] = {}
        self._uids: dict[str, str] = {}  # href -> the UID it is indexed under
        self._changed: dict[str, int] = {}  # href -> seq of its last write or delete, in order
        self._spans: dict[str, tuple[str, list[_Span] | None]] = {}  # href -> (etag, spans)

    # -- the Calendar contract ---------------------------------------------------------------

    async def changes(
        self, token: str | None, known: Mapping[str, str] | None = None
    ) -> CalendarChanges:
        async with self.faults.request("changes"):  # ``known`` is for backends without tokens
            if token is None:
                items = list(self._items.values())
                return CalendarChanges(items, [], self._token(), complete=True, requests=1)
            since = self._accept(token)
            hrefs: list[str] = []
            for href, seq in reversed(self._changed.items()):
                if seq <= since:
                    break
                hrefs.append(href)
            hrefs.reverse()
            changed = [self._items[h] for h in hrefs if h in self._items]
            deleted = [h for h in hrefs if h not in self._items]
            return CalendarChanges(changed, deleted, self._token(), requests=1)

    async def get(self, hrefs: Sequence[str]) -> list[CalendarItem]:
        async with self.faults.request("get"):
            return [self._items[href] for href in dict.fromkeys(hrefs) if href in self._items]

    async def create(self, uid: str, ics: str) -> ItemRef:
        async with self.faults.request("create"):
            href = f"{uid}.ics"
            self._refuse_taken(href, uid)
            return self._write(href, ics, uid)

    async def update(self, href: str, ics: str, etag: str) -> ItemRef:
        async with self.faults.request("update"):
            self._check_etag(href, etag, missing_ok=False)
            return self._write(href, ics, uid_of(ics))

    async def delete(self, href: str, etag: str) -> None:
        async with self.faults.request("delete"):
            if self._check_etag(href, etag, missing_ok=True):
                self._remove(href)

    async def items_between(self, window: Window) -> list[CalendarItem]:
        """Items that may have an occurrence in ``window``, unexpanded.

        A single event counts when it overlaps the window (half-open, as RFC 4791's
        time-range); a recurring one whenever its first occurrence starts before the window
        ends, since its rule may reach into it. An item that cannot be read is returned too:
        only the engine may decide to skip it, and it names the href when it does.
        """
        async with self.faults.request("items_between"):
            return [item for item in self._items.values() if self._may_touch(item, window)]

    async def check(self) -> None:
        async with self.faults.request("check"):
            return

    # -- tokens ------------------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Reject every sync token handed out so far."""
        self._seq += 1
        self._oldest_token = self._seq

    # -- a person with a calendar client -----------------------------------------------------

    def user_put(self, href: str, ics: str) -> str:
        """Write ``ics`` at ``href`` without If-Match, creating it if needed; the new etag."""
        uid = uid_of(ics)
        if uid is not None and self._hrefs_by_uid.get(uid, href) != href:
            self._refuse_taken(href, uid)
        return self._write(href, ics, uid).etag

    def user_create(self, ics: str) -> str:
        """Add an event the way most clients do, at a random href unrelated to its UID."""
        href = f"{uuid.uuid4()}.ics"
        uid = uid_of(ics)
        if uid is not None:
            self._refuse_taken(href, uid)
        self._write(href, ics, uid)
        return href

    def user_delete(self, href: str) -> None:
        """Delete without If-Match; an href that is not there is left alone."""
        if href in self._items:
            self._remove(href)

    def items(self) -> dict[str, tuple[str, str]]:
        """Everything in the collection: href -> (etag, ics)."""
        return {href: (item.etag, item.ics) for href, item in self._items.items()}

    # -- inside ------------------------------------------------------------------------------

    def _token(self) -> str:
        return f"{self._tag}:{self._seq}"

    def _accept(self, token: str) -> int:
        tag, _, number = token.partition(":")
        if tag != self._tag or not number.isdigit():
            raise TokenExpired(self.name, f"sync token {token!r} is not from this collection")
        seq = int(number)
        if not self._oldest_token <= seq <= self._seq:
            raise TokenExpired(self.name, f"sync token {token!r} has expired")
        return seq

    def _refuse_taken(self, href: str, uid: str) -> None:
        taken = href if href in self._items else self._hrefs_by_uid.get(uid)
        if taken is not None:
            raise AlreadyExists(self.name, f"{uid} is there already at {taken}", href=taken)

    def _check_etag(self, href: str, etag: str, *, missing_ok: bool) -> bool:
        """Whether ``href`` exists at ``etag``; raises when it exists at another etag."""
        item = self._items.get(href)
        if item is None:
            if missing_ok:
                return False
            raise NotFound(self.name, f"{href} does not exist")
        if item.etag != etag:
            raise PreconditionFailed(self.name, f"{href} changed: etag is not {etag}")
        return True

    def _write(self, href: str, ics: str, uid: str | None) -> ItemRef:
        self._seq += 1
        etag = f'"{self._tag}-{self._seq}"'
        self._unindex(href)
        if uid is not None:
            self._hrefs_by_uid[uid] = href
            self._uids[href] = uid
        self._items[href] = CalendarItem(href=href, etag=etag, ics=ics)
        self._log(href)
        return ItemRef(href=href, etag=etag)

    def _remove(self, href: str) -> None:
        self._seq += 1
        del self._items[href]
        self._unindex(href)
        self._spans.pop(href, None)
        self._log(href)

    def _unindex(self, href: str) -> None:
        uid = self._uids.pop(href, None)
        if uid is not None and self._hrefs_by_uid.get(uid) == href:
            del self._hrefs_by_uid[uid]

    def _log(self, href: str) -> None:
        self._changed.pop(href, None)  # re-insert so the dict stays in change order
        self._changed[href] = self._seq

    def _may_touch(self, item: CalendarItem, window: Window) -> bool:
        cached = self._spans.get(item.href)
        if cached is None or cached[0] != item.etag:
            cached = (item.etag, _spans(item.ics))
            self._spans[item.href] = cached
        found = cached[1]
        if found is None:
            return True
        return any(span.may_touch(window) for span in found)
