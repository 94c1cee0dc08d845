"""Runs, conflicts and item errors: what ``syncd status`` shows.

Kept apart from the hot-path store code; these are read by people, a few rows at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import OperationalError

from syncd.errors import StoreError
from syncd.state.tables import ConflictRow, ItemErrorRow, JournalRow, LinkRow, RunRow

R = RunRow.__table__  # type: ignore[attr-defined]
X = ConflictRow.__table__  # type: ignore[attr-defined]
E = ItemErrorRow.__table__  # type: ignore[attr-defined]
J = JournalRow.__table__  # type: ignore[attr-defined]
L = LinkRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    sync: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    counts: dict[str, int]
    error: str


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """One sync as ``syncd status`` reports it."""

    sync: str
    last_run: Run | None
    last_success: datetime | None
    links: int
    pending: int
    conflicts: list[dict[str, str]] = field(default_factory=list)
    item_errors: list[dict[str, str]] = field(default_factory=list)


@contextmanager
def _writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction; a database that cannot take it (SQLite's "database is locked")
    is a ``StoreError``, as in ``Store``, not a driver exception with its SQL attached."""
    try:
        with engine.begin() as conn:
            yield conn
    except OperationalError as err:
        raise StoreError(f"state database {engine.url!r}: {err.orig}") from err


def start_run(engine: Engine, sync: str, now: datetime) -> int:
    with _writing(engine) as conn:
        query = R.insert().values(sync=sync, started_at=now, status="running").returning(R.c.id)
        return int(conn.execute(query).scalar_one())


def finish_run(
    engine: Engine, run_id: int, now: datetime, status: str, counts: dict[str, int], error: str
) -> None:
    with _writing(engine) as conn:
        conn.execute(
            update(R)
            .where(R.c.id == run_id)
            .values(finished_at=now, status=status, counts=json.dumps(counts), error=error[:1000])
        )


def _run(row: object) -> Run:
    return Run(
        id=row.id,  # type: ignore[attr-defined]
        sync=row.sync,  # type: ignore[attr-defined]
        started_at=row.started_at,  # type: ignore[attr-defined]
        finished_at=row.finished_at,  # type: ignore[attr-defined]
        status=row.status,  # type: ignore[attr-defined]
        counts=json.loads(row.counts),  # type: ignore[attr-defined]
        error=row.error,  # type: ignore[attr-defined]
    )


def sync_status(engine: Engine, sync: str, conflict_limit: int = 10) -> SyncStatus:
    with engine.begin() as conn:
        last = conn.execute(
            select(R).where(R.c.sync == sync).order_by(R.c.id.desc()).limit(1)
        ).first()
        success = conn.execute(
            select(func.max(R.c.finished_at)).where(R.c.sync == sync, R.c.status == "ok")
        ).scalar_one_or_none()
        links = conn.execute(
            select(func.count()).select_from(L).where(L.c.sync == sync, L.c.href != "")
        ).scalar_one()
        pending = conn.execute(
            select(func.count()).select_from(J).where(J.c.sync == sync, J.c.state == "pending")
        ).scalar_one()
        conflicts = conn.execute(
            select(X).where(X.c.sync == sync).order_by(X.c.id.desc()).limit(conflict_limit)
        ).all()
        errors = conn.execute(select(E).where(E.c.sync == sync).order_by(E.c.seen_at.desc())).all()
    return SyncStatus(
        sync=sync,
        last_run=_run(last) if last is not None else None,
        last_success=success,
        links=int(links),
        pending=int(pending),
        conflicts=[
            {
                "appointment": c.native_id,
                "calendar": c.calendar,
                "detail": c.detail,
                "resolution": c.resolution,
                "at": c.created_at.isoformat(),
            }
            for c in conflicts
        ],
        item_errors=[{"item": e.item, "field": e.field, "message": e.message} for e in errors],
    )
