"""Busy links and the busy actions' journal, in the same database and transactions as the store.

Busy actions use the journal table under their own name, ``<sync>/busy`` (sync names cannot
contain ``/``), so the appointment engine's resume never sees them and they never see its
entries. Entry states: ``pending`` -> ``started`` (written before an add reaches the provider)
-> ``done`` or ``failed``. ``done()`` changes the link and marks the entry in one transaction,
so after a crash an entry is done with its link stored, or not done and safe to look at again;
``started`` tells the one case that needs care: an add that may have reached the provider.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC

from sqlalchemy import delete, func, select, update

from syncd.busy.plan import BusyAction, BusyLink, from_json, to_json
from syncd.state.bulk import upsert
from syncd.state.store import Store, utcnow
from syncd.state.tables import BusyLinkRow, JournalRow, RunRow

B = BusyLinkRow.__table__  # type: ignore[attr-defined]
J = JournalRow.__table__  # type: ignore[attr-defined]
R = RunRow.__table__  # type: ignore[attr-defined]

_CHUNK = 500


def journal_name(sync: str) -> str:
    return f"{sync}/busy"


class BusyLinks:
    """The busy state of one database; methods are short and synchronous, like the store's."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def links(
        self,
        sync: str,
        calendar: str,
        *,
        hrefs: Iterable[str] = (),
        keys: Iterable[str] = (),
        everything: bool = False,
    ) -> dict[str, BusyLink]:
        """Links of ``calendar`` by key: all of them, or those of ``hrefs`` and ``keys``."""
        where = (B.c.sync == sync, B.c.calendar == calendar)
        found: dict[str, BusyLink] = {}
        with self.store._tx() as conn:
            if everything:
                queries = [select(B).where(*where)]
            else:
                queries = [
                    select(B).where(*where, column.in_(chunk))
                    for column, values in ((B.c.href, hrefs), (B.c.key, keys))
                    for chunk in _chunks(sorted(set(values)))
                ]
            for query in queries:
                for row in conn.execute(query):
                    end = row.end if row.end.tzinfo else row.end.replace(tzinfo=UTC)
                    found[row.key] = BusyLink(
                        row.key, row.calendar, row.href, row.native_id, row.block_hash, end
                    )
        return found

    def count(self, sync: str) -> int:
        with self.store._tx() as conn:
            query = select(func.count()).select_from(B).where(B.c.sync == sync)
            return int(conn.execute(query).scalar_one())

    def journal(self, sync: str, run_id: int, actions: Sequence[BusyAction]) -> list[int]:
        """Write the actions before any is applied; their entry ids, in order."""
        if not actions:
            return []
        now = utcnow()
        rows = [
            {
                "sync": journal_name(sync),
                "run_id": run_id,
                "kind": action.kind,
                "payload": to_json(action),
                "state": "pending",
                "error": "",
                "created_at": now,
                "updated_at": now,
            }
            for action in actions
        ]
        with self.store._tx() as conn:
            first = conn.execute(select(func.max(J.c.id))).scalar_one_or_none() or 0
            conn.execute(J.insert(), rows)
            query = select(J.c.id).where(J.c.run_id == run_id, J.c.id > first).order_by(J.c.id)
            return [int(i) for i in conn.execute(query).scalars()]

    def pending(self, sync: str) -> list[tuple[int, BusyAction, bool]]:
        """Unfinished entries, oldest first, each with whether it was ``started``."""
        with self.store._tx() as conn:
            query = (
                select(J.c.id, J.c.payload, J.c.state)
                .where(J.c.sync == journal_name(sync), J.c.state.in_(("pending", "started")))
                .order_by(J.c.id)
            )
            return [
                (int(row.id), from_json(row.payload), row.state == "started")
                for row in conn.execute(query)
            ]

    def start(self, entry_id: int) -> None:
        """Record that the entry's provider call is about to be made."""
        with self.store._tx() as conn:
            conn.execute(
                update(J).where(J.c.id == entry_id).values(state="started", updated_at=utcnow())
            )

    def done(self, sync: str, entry_id: int, key: str, link: BusyLink | None) -> None:
        """Store ``link`` for ``key`` (or drop the key's link) and mark the entry done."""
        now = utcnow()
        with self.store._tx() as conn:
            if link is None:
                conn.execute(delete(B).where(B.c.sync == sync, B.c.key == key))
            else:
                row = {
                    "sync": sync,
                    "key": key,
                    "calendar": link.calendar,
                    "href": link.href,
                    "native_id": link.native_id,
                    "block_hash": link.block_hash,
                    "end": link.end.astimezone(UTC),
                    "updated_at": now,
                }
                upsert(conn, B, ["sync", "key"], [row])
            conn.execute(update(J).where(J.c.id == entry_id).values(state="done", updated_at=now))

    def prune(self, sync: str, keep_runs: int = 50) -> None:
        """Drop finished busy entries older than the sync's last ``keep_runs`` runs."""
        with self.store._tx() as conn:
            runs = select(R.c.id).where(R.c.sync == sync).order_by(R.c.id.desc()).limit(keep_runs)
            oldest = conn.execute(select(func.min(runs.subquery().c.id))).scalar_one_or_none()
            if oldest is not None:
                conn.execute(
                    delete(J).where(
                        J.c.sync == journal_name(sync),
                        J.c.state.in_(("done", "failed")),
                        J.c.run_id < oldest,
                    )
                )


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]
