"""The state store: records, links, cursors, the journal, conflicts and runs.

One ``Store`` per database. SQLite by default, in WAL mode with a busy timeout, so the status
command can read while the daemon writes; the same code runs on PostgreSQL. Timestamps are
aware; SQLModel stores them as UTC and hands them back in UTC.

The promise that matters: ``commit()`` writes an action's state change and marks its journal
entry done in one transaction, so after a crash an entry is either done with its effect
recorded, or still pending and safe to apply again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.exc import OperationalError

from syncd.errors import StoreError
from syncd.reconcile.actions import Action, from_json, to_json
from syncd.reconcile.state import Record
from syncd.state.bulk import insert_rows, upsert
from syncd.state.changes import Change
from syncd.state.engine import make_engine
from syncd.state.rows import CHUNK as _CHUNK
from syncd.state.rows import id_runs, read_records, write_change
from syncd.state.tables import (
    AppointmentRow,
    ConflictRow,
    CursorRow,
    ItemErrorRow,
    JournalRow,
    LinkRow,
    RunRow,
)

A = AppointmentRow.__table__  # type: ignore[attr-defined]
L = LinkRow.__table__  # type: ignore[attr-defined]
J = JournalRow.__table__  # type: ignore[attr-defined]
C = CursorRow.__table__  # type: ignore[attr-defined]
R = RunRow.__table__  # type: ignore[attr-defined]
X = ConflictRow.__table__  # type: ignore[attr-defined]
E = ItemErrorRow.__table__  # type: ignore[attr-defined]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Store:
    """The state database. Methods are synchronous and short; callers run them inline."""

    def __init__(self, url: str, busy_timeout: float = 5.0) -> None:
        self.url = url
        self.engine: Engine = make_engine(url, busy_timeout)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as err:
            # The engine's URL, not ``self.url``: its repr hides a PostgreSQL password.
            raise StoreError(f"state database {self.engine.url!r}: {err.orig}") from err

    # -- records and links -------------------------------------------------------------

    def records(self, sync: str, native_ids: Iterable[str] | None = None) -> dict[str, Record]:
        """The records of ``native_ids`` (all of the sync's when None), with their links."""
        with self._tx() as conn:
            if native_ids is None:
                return read_records(conn, sync, None)
            out: dict[str, Record] = {}
            ids = sorted(set(native_ids))
            if len(ids) > _CHUNK:
                # Asking for most of them (every appointment moved, say): one plain read of
                # all is cheaper than the IN lists, whose parameters cost more than the rows.
                total = conn.execute(
                    select(func.count()).select_from(A).where(A.c.sync == sync)
                ).scalar_one()
                if 2 * len(ids) > total:
                    wanted = set(ids)
                    everything = read_records(conn, sync, None)
                    return {nid: rec for nid, rec in everything.items() if nid in wanted}
            for i in range(0, len(ids), _CHUNK):
                out.update(read_records(conn, sync, ids[i : i + _CHUNK]))
            return out

    def link_count(self, sync: str) -> int:
        with self._tx() as conn:
            query = select(func.count()).select_from(L).where(L.c.sync == sync, L.c.href != "")
            return int(conn.execute(query).scalar_one())

    def native_ids_by_href(self, sync: str, calendar: str, hrefs: Sequence[str]) -> dict[str, str]:
        return {
            href: nid for href, (nid, _etag) in self.links_by_href(sync, calendar, hrefs).items()
        }

    def etags_by_href(self, sync: str, calendar: str, hrefs: Sequence[str]) -> dict[str, str]:
        return {
            href: etag for href, (_nid, etag) in self.links_by_href(sync, calendar, hrefs).items()
        }

    def links_by_href(
        self, sync: str, calendar: str, hrefs: Sequence[str]
    ) -> dict[str, tuple[str, str]]:
        """(native id, etag) of the links at ``hrefs``, looked up in chunks."""
        out: dict[str, tuple[str, str]] = {}
        with self._tx() as conn:
            for i in range(0, len(hrefs), _CHUNK):
                chunk = list(hrefs[i : i + _CHUNK])
                query = select(L.c.href, L.c.native_id, L.c.etag).where(
                    L.c.sync == sync, L.c.calendar == calendar, L.c.href.in_(chunk)
                )
                out.update({row.href: (row.native_id, row.etag) for row in conn.execute(query)})
        return out

    def known_etags(self, sync: str, calendar: str) -> dict[str, str]:
        with self._tx() as conn:
            query = select(L.c.href, L.c.etag).where(
                L.c.sync == sync, L.c.calendar == calendar, L.c.href != ""
            )
            return {row.href: row.etag for row in conn.execute(query)}

    def sequence(self, sync: str, native_id: str, calendar: str) -> int:
        with self._tx() as conn:
            query = select(L.c.sequence).where(
                L.c.sync == sync, L.c.native_id == native_id, L.c.calendar == calendar
            )
            return int(conn.execute(query).scalar_one_or_none() or 0)

    # -- cursors ---------------------------------------------------------------------------

    def cursor(self, scope: str) -> dict[str, str] | None:
        with self._tx() as conn:
            value = conn.execute(select(C.c.value).where(C.c.scope == scope)).scalar_one_or_none()
        return None if value is None else dict(json.loads(value))

    def save_cursors(self, sync: str, cursors: Mapping[str, Mapping[str, str] | None]) -> None:
        """Store several cursors at once; ``None`` drops one (forces a full listing next)."""
        now = utcnow()
        with self._tx() as conn:
            for scope, value in cursors.items():
                if value is None:
                    conn.execute(delete(C).where(C.c.scope == scope))
                    continue
                row = {"scope": scope, "sync": sync, "value": json.dumps(dict(value))}
                upsert(conn, C, ["scope"], [row | {"updated_at": now}])

    # -- journal ----------------------------------------------------------------------------

    def journal(self, sync: str, run_id: int, actions: Sequence[Action]) -> list[int]:
        """Write a plan before applying it; returns the entry ids in order."""
        if not actions:
            return []
        now = utcnow()
        rows = [(a.kind, to_json(a)) for a in actions]
        constants = {
            "sync": sync,
            "run_id": run_id,
            "state": "pending",
            "error": "",
            "created_at": now,
            "updated_at": now,
        }
        with self._tx() as conn:
            first = conn.execute(select(func.max(J.c.id))).scalar_one_or_none() or 0
            insert_rows(conn, J, ("kind", "payload"), rows, constants)
            ours = (J.c.run_id == run_id, J.c.id > first)
            span = conn.execute(
                select(func.min(J.c.id), func.max(J.c.id), func.count()).where(*ours)
            )
            low, high, count = span.one()
            if count and high - low + 1 == count:  # the usual case: one contiguous block
                return list(range(int(low), int(high) + 1))
            query = select(J.c.id).where(*ours).order_by(J.c.id)
            return [int(i) for i in conn.execute(query).scalars()]

    def pending(self, sync: str) -> list[tuple[int, Action]]:
        """Unfinished entries left by a crash, oldest first."""
        with self._tx() as conn:
            query = (
                select(J.c.id, J.c.payload)
                .where(J.c.sync == sync, J.c.state == "pending")
                .order_by(J.c.id)
            )
            return [(int(row.id), from_json(row.payload)) for row in conn.execute(query)]

    def pending_count(self, sync: str) -> int:
        with self._tx() as conn:
            query = (
                select(func.count()).select_from(J).where(J.c.sync == sync, J.c.state == "pending")
            )
            return int(conn.execute(query).scalar_one())

    def commit(self, sync: str, done: Sequence[tuple[int, Change]]) -> None:
        """Apply the state changes of finished actions and mark them done, in ONE transaction."""
        if not done:
            return
        merged = Change.merge(change for _, change in done)
        now = utcnow()
        with self._tx() as conn:
            write_change(conn, sync, merged, now)
            mark = update(J).values(state="done", updated_at=now)
            # Entries are applied in order, so their ids come in long unbroken runs: a range
            # per run costs one parameter pair instead of one parameter per entry.
            runs, single = id_runs(sorted(entry for entry, _ in done))
            for low, high in runs:
                conn.execute(mark.where(J.c.id.between(low, high)))
            for i in range(0, len(single), _CHUNK):
                conn.execute(mark.where(J.c.id.in_(single[i : i + _CHUNK])))

    def fail(self, entry_id: int, error: str, stale: str = "") -> None:
        """Mark an entry failed; with ``stale``, forget that appointment's agreed hash so the
        engine sees it as changed the next time the provider reports it."""
        with self._tx() as conn:
            conn.execute(
                update(J)
                .where(J.c.id == entry_id)
                .values(state="failed", error=error[:500], updated_at=utcnow())
            )
            if stale:
                sync = select(J.c.sync).where(J.c.id == entry_id).scalar_subquery()
                conn.execute(
                    update(A).where(A.c.sync == sync, A.c.native_id == stale).values(hash="")
                )

    def abandon_pending(self, sync: str, reason: str) -> int:
        """Mark every pending entry failed (after they were retried and still could not run)."""
        with self._tx() as conn:
            result = conn.execute(
                update(J)
                .where(J.c.sync == sync, J.c.state == "pending")
                .values(state="failed", error=reason[:500], updated_at=utcnow())
            )
            return int(result.rowcount)

    def prune_journal(self, sync: str, keep_runs: int = 50) -> None:
        """Done entries of old runs are history nobody needs; keep the recent ones."""
        with self._tx() as conn:
            runs = select(R.c.id).where(R.c.sync == sync).order_by(R.c.id.desc()).limit(keep_runs)
            oldest = conn.execute(select(func.min(runs.subquery().c.id))).scalar_one_or_none()
            if oldest is not None:
                conn.execute(
                    delete(J).where(J.c.sync == sync, J.c.state != "pending", J.c.run_id < oldest)
                )

    # -- errors, runs: see syncd.state.history ------------------------------------------------

    def record_item_errors(self, sync: str, errors: Sequence[tuple[str, str, str]]) -> None:
        if not errors:
            return
        now = utcnow()
        rows = [
            {"sync": sync, "item": item, "field": field, "message": msg[:500], "seen_at": now}
            for item, field, msg in errors
        ]
        with self._tx() as conn:
            upsert(conn, E, ["sync", "item"], rows)

    def clear_item_errors(self, sync: str, items: Iterable[str]) -> None:
        """Forget the errors of ``items``, which read cleanly this time. Every item a cycle
        read is passed here, and almost none has an error: look up the few that do first."""
        with self._tx() as conn:
            recorded = set(conn.execute(select(E.c.item).where(E.c.sync == sync)).scalars())
            if not recorded:
                return
            ids = [item for item in items if item in recorded]
            for i in range(0, len(ids), _CHUNK):
                conn.execute(delete(E).where(E.c.sync == sync, E.c.item.in_(ids[i : i + _CHUNK])))
