"""Intake decisions and the intake journal, in the same database and transactions as the store.

Intake actions use the journal table under their own name, ``<sync>/intake`` (sync names
cannot contain ``/``), so neither the appointment engine nor the busy step ever sees them.

Entry states, and what each tells a resumed run:

    pending    nothing was sent yet
    started    ``book_from_event`` may have reached the provider: look the booking up
               (``find_booking``) before booking again
    booked     the provider made booking ``outcome``: finish the calendar side, never book
    refused    the provider said no for reason ``outcome``: finish marking the event
    done       finished: its effect on the store was committed with this mark
    failed     gave up with an error that retrying cannot fix (recorded for status)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update

from syncd.intake.plan import Decision, IntakeAction, from_json, to_json
from syncd.state.bulk import upsert
from syncd.state.changes import Change
from syncd.state.rows import write_change
from syncd.state.store import Store, utcnow
from syncd.state.tables import IntakeRow, JournalRow, RunRow

I = IntakeRow.__table__  # type: ignore[attr-defined]  # noqa: E741
J = JournalRow.__table__  # type: ignore[attr-defined]
R = RunRow.__table__  # type: ignore[attr-defined]

_CHUNK = 500


def journal_name(sync: str) -> str:
    return f"{sync}/intake"


@dataclass(frozen=True, slots=True)
class Entry:
    """One unfinished journal entry: its id, action, state and what is known of its outcome."""

    id: int
    action: IntakeAction
    state: str
    outcome: str = ""


class IntakeLedger:
    """The intake state of one database; short synchronous methods, like the store's."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def decisions(self, sync: str, calendar: str, hrefs: Iterable[str]) -> dict[str, Decision]:
        wanted = sorted(set(hrefs))
        found: dict[str, Decision] = {}
        with self.store._tx() as conn:
            for i in range(0, len(wanted), _CHUNK):
                query = select(I).where(
                    I.c.sync == sync, I.c.calendar == calendar, I.c.href.in_(wanted[i : i + _CHUNK])
                )
                for row in conn.execute(query):
                    found[row.href] = Decision(
                        row.calendar, row.href, row.uid, row.reason, row.etag, row.event_hash
                    )
        return found

    def journal(self, sync: str, run_id: int, actions: Sequence[IntakeAction]) -> list[int]:
        """Write the actions before any is applied; their entry ids, in order."""
        ids: list[int] = []
        now = utcnow()
        with self.store._tx() as conn:
            for action in actions:
                row = {
                    "sync": journal_name(sync),
                    "run_id": run_id,
                    "kind": action.kind,
                    "payload": to_json(action),
                    "state": "pending",
                    "error": "",
                    "created_at": now,
                    "updated_at": now,
                }
                key = conn.execute(J.insert().values(**row)).inserted_primary_key
                assert key is not None  # an autoincrement id, returned by both databases
                ids.append(int(key[0]))
        return ids

    def pending(self, sync: str) -> list[Entry]:
        """Unfinished entries, oldest first."""
        live = ("pending", "started", "booked", "refused")
        with self.store._tx() as conn:
            query = (
                select(J.c.id, J.c.payload, J.c.state)
                .where(J.c.sync == journal_name(sync), J.c.state.in_(live))
                .order_by(J.c.id)
            )
            rows = list(conn.execute(query))
        out = []
        for row in rows:
            outcome = str(json.loads(row.payload).get("outcome", ""))
            out.append(Entry(int(row.id), from_json(row.payload), row.state, outcome))
        return out

    def mark(self, entry_id: int, state: str, outcome: str = "") -> None:
        """Move an entry to ``state`` (``started``, ``booked``, ``refused``), keeping ``outcome``
        (the native id, or the refusal's reason) in its payload, durably, before going on."""
        with self.store._tx() as conn:
            payload = conn.execute(select(J.c.payload).where(J.c.id == entry_id)).scalar_one()
            data = json.loads(payload)
            if outcome:
                data["outcome"] = outcome
            conn.execute(
                update(J)
                .where(J.c.id == entry_id)
                .values(
                    state=state,
                    payload=json.dumps(data, separators=(",", ":")),
                    updated_at=utcnow(),
                )
            )

    def finish(
        self,
        sync: str,
        entry_id: int,
        *,
        change: Change | None = None,
        decision: Decision | None = None,
        forget: tuple[str, str] | None = None,
    ) -> None:
        """In ONE transaction: apply ``change`` (records, links, conflicts) to the sync's
        state, store ``decision`` or drop the one at ``forget`` (calendar, href), mark done."""
        now = utcnow()
        with self.store._tx() as conn:
            if change is not None:
                write_change(conn, sync, change, now)
            if forget is not None:
                calendar, href = forget
                conn.execute(
                    delete(I).where(I.c.sync == sync, I.c.calendar == calendar, I.c.href == href)
                )
            if decision is not None:
                row = {
                    "sync": sync,
                    "calendar": decision.calendar,
                    "href": decision.href,
                    "uid": decision.uid,
                    "reason": decision.reason[:1000],
                    "etag": decision.etag,
                    "event_hash": decision.event_hash,
                    "updated_at": now,
                }
                upsert(conn, I, ["sync", "calendar", "href"], [row])
            conn.execute(update(J).where(J.c.id == entry_id).values(state="done", updated_at=now))

    def fail(self, entry_id: int, error: str) -> None:
        with self.store._tx() as conn:
            conn.execute(
                update(J)
                .where(J.c.id == entry_id)
                .values(state="failed", error=error[:500], updated_at=utcnow())
            )

    def prune(self, sync: str, keep_runs: int = 50) -> None:
        """Drop finished intake entries older than the sync's last ``keep_runs`` runs."""
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
