"""Rows in and out of the records and links tables, for ``Store`` (``syncd.state.store``).

Each runs inside a transaction the caller opened: ``write_change`` is the state half of
``Store.commit``'s one transaction, the journal marks being the other half.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, select, update

from syncd.reconcile.state import Link, Record
from syncd.state.bulk import insert_rows, upsert_rows
from syncd.state.changes import Change
from syncd.state.tables import AppointmentRow, ConflictRow, LinkRow

CHUNK = 500  # ids per IN (...) query: well under every database's parameter limit

A = AppointmentRow.__table__  # type: ignore[attr-defined]
L = LinkRow.__table__  # type: ignore[attr-defined]
X = ConflictRow.__table__  # type: ignore[attr-defined]


def id_runs(ids: list[int]) -> tuple[list[tuple[int, int]], list[int]]:
    """Sorted ``ids`` as ranges (low, high) of two or more consecutive ids, and the rest."""
    runs: list[tuple[int, int]] = []
    single: list[int] = []
    start = 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or ids[i] != ids[i - 1] + 1:
            if i - start > 1:
                runs.append((ids[start], ids[i - 1]))
            elif i > start:
                single.append(ids[start])
            start = i
    return runs, single


def read_records(conn: Connection, sync: str, ids: list[str] | None) -> dict[str, Record]:
    # Only the columns a Record holds, unpacked as tuples: an update of every appointment
    # loads them all, and attribute access on rows and unused timestamp columns (parsed on
    # every row) were most of that.
    aq = select(A.c.native_id, A.c.data, A.c.hash).where(A.c.sync == sync)
    lq = select(
        L.c.native_id, L.c.calendar, L.c.href, L.c.etag, L.c.event_hash, L.c.sequence
    ).where(L.c.sync == sync)
    if ids is not None:
        aq = aq.where(A.c.native_id.in_(ids))
        lq = lq.where(L.c.native_id.in_(ids))
    links: dict[str, dict[str, Link]] = {}
    for nid, calendar, href, etag, event_hash, sequence in conn.execute(lq).all():
        found = links.get(nid)
        if found is None:
            found = links[nid] = {}
        found[calendar] = Link(calendar, href, etag, event_hash, sequence)
    return {
        nid: Record(None, hash_, links.get(nid, {}), raw=data)
        for nid, data, hash_ in conn.execute(aq).all()
    }


def write_change(conn: Connection, sync: str, change: Change, now: datetime) -> None:
    if change.forget:
        ids = sorted(change.forget)
        for i in range(0, len(ids), CHUNK):
            chunk = ids[i : i + CHUNK]
            conn.execute(delete(L).where(L.c.sync == sync, L.c.native_id.in_(chunk)))
            conn.execute(delete(A).where(A.c.sync == sync, A.c.native_id.in_(chunk)))
    if change.records:
        upsert_rows(
            conn,
            A,
            ("sync", "native_id"),
            ("native_id", "data", "hash", "start"),
            [
                (nid, appt.dumps(), appt.content_hash(), appt.start)
                for nid, appt in change.records.items()
            ],
            {"sync": sync, "updated_at": now},
        )
    if change.links:
        upsert_rows(
            conn,
            L,
            ("sync", "native_id", "calendar"),
            ("native_id", "calendar", "uid", "href", "etag", "event_hash", "sequence"),
            [
                (nid, cal, uid, link.href, link.etag, link.event_hash, link.sequence)
                for (nid, cal), (uid, link) in change.links.items()
            ],
            {"sync": sync, "updated_at": now},
        )
    if change.stale:
        ids = sorted(change.stale)
        for i in range(0, len(ids), CHUNK):
            chunk = ids[i : i + CHUNK]
            conn.execute(
                update(A).where(A.c.sync == sync, A.c.native_id.in_(chunk)).values(hash="")
            )
    if change.conflicts:
        insert_rows(
            conn,
            X,
            ("native_id", "calendar", "detail", "resolution"),
            change.conflicts,
            {"sync": sync, "created_at": now},
        )
