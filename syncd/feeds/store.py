"""The feed store: every configured feed, kept rendered in memory, rebuilt after sync runs.

Requests never render: ``lookup(token)`` hands out the ``RenderedFeed`` the last refresh
built. ``refresh(sync)`` is called after each run of that sync and is cheap when nothing
changed (one ``count``/``max`` query); otherwise it reads only the appointments whose
content hash moved, lets ``ledger.reconcile`` decide, writes the delta to the feed tables
and renders only the events that changed. It is synchronous (the daemon runs it in a worker
thread) and must not run twice at once for one sync, which the daemon's per-sync lock
ensures.

Tokens: ``lookup`` compares the token against every feed's with ``hmac.compare_digest``
and looks at all of them whatever matches, so neither a wrong token's length of match nor
its position among the feeds shows in the time taken.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select

from syncd.config import Config, FeedConfig
from syncd.feeds.ledger import Entry, next_expiry, reconcile
from syncd.feeds.render import EventBlocks, RenderedFeed, render_feed
from syncd.feeds.tables import FeedEventRow, FeedMetaRow
from syncd.ical import RenderOptions
from syncd.model import Appointment
from syncd.reconcile.policy import Privacy
from syncd.state.bulk import upsert
from syncd.state.store import Store
from syncd.state.tables import AppointmentRow

A = AppointmentRow.__table__  # type: ignore[attr-defined]
F = FeedEventRow.__table__  # type: ignore[attr-defined]
M = FeedMetaRow.__table__  # type: ignore[attr-defined]
_CHUNK = 500
MIN_REFRESH = timedelta(minutes=1)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Feed:
    name: str
    config: FeedConfig
    options: RenderOptions
    refresh: timedelta
    blocks: EventBlocks
    entries: dict[str, Entry] = field(default_factory=dict)
    checked: dict[str, str] = field(default_factory=dict)  # native id -> version examined
    loaded: bool = False
    rendered: RenderedFeed | None = None
    published: tuple[str, datetime] | None = None  # (etag, Last-Modified) as last stored
    expires: datetime | None = None

    def selects(self, appointment: Appointment) -> bool:
        wanted = (
            (self.config.staff, appointment.staff),
            (self.config.resource, appointment.resource),
        )
        return all(not want or want.casefold() == have.casefold() for want, have in wanted)

    def version(self, content_hash: str) -> str:
        o = self.options
        key = f"{content_hash}\0{o.sync}\0{o.privacy}\0{o.title}"
        return hashlib.sha256(key.encode()).hexdigest()[:32]


def feed_options(config: Config, feed: FeedConfig) -> RenderOptions:
    """The feed's rendering: its sync's title, and the stricter of the two privacies, so a
    sync kept busy-only never leaks client data through a feed left at the default."""
    sync = config.sync(feed.sync)
    busy = Privacy.BUSY in (sync.privacy, feed.privacy)
    return RenderOptions(
        sync=sync.name, privacy=Privacy.BUSY if busy else Privacy.FULL, title=sync.title
    )


class FeedStore:
    """The rendered feeds of one config over one state store."""

    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.keep_for: dict[str, timedelta] = {}
        F.metadata.create_all(store.engine, tables=[F, M])
        self._feeds: dict[str, _Feed] = {}
        self._fingerprints: dict[str, tuple[int, datetime | None]] = {}
        for name, feed in config.feeds.items():
            options = feed_options(config, feed)
            refresh = max(config.sync(feed.sync).interval, MIN_REFRESH)
            self._feeds[name] = _Feed(name, feed, options, refresh, EventBlocks(options))

    def names(self, sync: str | None = None) -> list[str]:
        return [n for n, f in self._feeds.items() if sync is None or f.config.sync == sync]

    def lookup(self, token: str) -> RenderedFeed | None:
        """The feed published under ``token``, or None; constant time in the token."""
        given = token.encode()
        found: _Feed | None = None
        for feed in self._feeds.values():
            if hmac.compare_digest(given, feed.config.token.get_secret_value().encode()):
                found = feed
        return found.rendered if found is not None else None

    def rendered(self, name: str) -> RenderedFeed | None:
        return self._feeds[name].rendered

    def refresh_all(self) -> None:
        for sync in sorted({f.config.sync for f in self._feeds.values()}):
            self.refresh(sync, force=True)

    def refresh(self, sync: str, force: bool = False, now: datetime | None = None) -> list[str]:
        """Bring the feeds of ``sync`` up to date; returns the names that changed."""
        feeds = [f for f in self._feeds.values() if f.config.sync == sync]
        if not feeds:
            return []
        moment = (now or _now()).replace(microsecond=0)  # HTTP dates have whole seconds
        with self.store.engine.begin() as conn:
            query = select(func.count(), func.max(A.c.updated_at)).where(A.c.sync == sync)
            count, newest = conn.execute(query).one()
        fingerprint = (int(count), newest)
        due = any(f.expires is not None and f.expires <= moment for f in feeds)
        unread = any(f.rendered is None for f in feeds)
        if not (force or due or unread) and self._fingerprints.get(sync) == fingerprint:
            return []
        self._fingerprints[sync] = fingerprint
        hashes = self._hashes(sync)
        return [f.name for f in feeds if self._refresh_one(f, hashes, moment)]

    def _hashes(self, sync: str) -> dict[str, str]:
        with self.store.engine.begin() as conn:
            rows = conn.execute(select(A.c.native_id, A.c.hash).where(A.c.sync == sync))
            return {row.native_id: row.hash for row in rows}

    def _appointments(self, sync: str, ids: list[str]) -> dict[str, Appointment]:
        out: dict[str, Appointment] = {}
        with self.store.engine.begin() as conn:
            for i in range(0, len(ids), _CHUNK):
                query = select(A.c.native_id, A.c.data).where(
                    A.c.sync == sync, A.c.native_id.in_(ids[i : i + _CHUNK])
                )
                for row in conn.execute(query):
                    out[row.native_id] = Appointment.from_json(json.loads(row.data))
        return out

    def _refresh_one(self, feed: _Feed, hashes: dict[str, str], now: datetime) -> bool:
        if not feed.loaded:
            self._load(feed)
        present = {nid: feed.version(h) for nid, h in hashes.items()}
        changed_ids = [nid for nid, v in present.items() if feed.checked.get(nid) != v]
        loaded = self._appointments(feed.config.sync, changed_ids) if changed_ids else {}
        changed = {
            nid: (a if feed.selects(a) else None) for nid, a in loaded.items() if nid in present
        }
        keep = feed.config.keep_cancelled
        delta = reconcile(feed.entries, present, changed, now, keep)
        feed.checked = {
            nid: v for nid, v in present.items() if nid in loaded or feed.checked.get(nid) == v
        }
        if delta:
            self._save(feed.name, delta.upsert.values(), delta.delete)
            feed.entries.update(delta.upsert)
            for native_id in delta.delete:
                feed.entries.pop(native_id, None)
            feed.blocks.forget(delta.delete)
        feed.expires = next_expiry(feed.entries, keep, now)
        shown = [e for e in feed.entries.values() if e.shown(now, keep)]
        result = render_feed(feed.name, shown, feed.blocks, feed.refresh, now)
        if feed.rendered is not None and result.etag == feed.rendered.etag:
            return False
        if feed.published is not None and feed.published[0] == result.etag:
            # The same bytes as before the restart: Last-Modified must not move, or every
            # client's conditional GET would fetch the whole feed again.
            result = replace(result, modified=feed.published[1])
        else:
            self._save_meta(feed.name, result)
        feed.published = (result.etag, result.modified)
        feed.rendered = result
        return True

    def _load(self, feed: _Feed) -> None:
        with self.store.engine.begin() as conn:
            for row in conn.execute(select(F).where(F.c.feed == feed.name)):
                feed.entries[row.native_id] = Entry(
                    Appointment.from_json(json.loads(row.data)),
                    row.version,
                    row.sequence,
                    _aware(row.changed_at),
                    _aware(row.cancelled_at) if row.cancelled_at else None,
                )
            meta = conn.execute(select(M).where(M.c.feed == feed.name)).first()
        feed.checked = {nid: e.version for nid, e in feed.entries.items() if not e.gone}
        if meta is not None:
            feed.published = (meta.etag, _aware(meta.modified_at))
        feed.loaded = True

    def _save(self, name: str, entries: Iterable[Entry], forget: set[str]) -> None:
        rows = [
            {
                "feed": name,
                "native_id": e.appointment.native_id,
                "version": e.version,
                "sequence": e.sequence,
                "data": json.dumps(e.appointment.to_json()),
                "changed_at": e.changed_at,
                "cancelled_at": e.cancelled_at,
            }
            for e in entries
        ]
        with self.store.engine.begin() as conn:
            upsert(conn, F, ["feed", "native_id"], rows)
            ids = sorted(forget)
            for i in range(0, len(ids), _CHUNK):
                conn.execute(
                    delete(F).where(F.c.feed == name, F.c.native_id.in_(ids[i : i + _CHUNK]))
                )

    def _save_meta(self, name: str, feed: RenderedFeed) -> None:
        row = {"feed": name, "etag": feed.etag, "modified_at": feed.modified}
        with self.store.engine.begin() as conn:
            upsert(conn, M, ["feed"], [row])


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
