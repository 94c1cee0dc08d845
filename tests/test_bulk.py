"""The bulk writer stores exactly what SQLAlchemy's own executemany would have stored.

``syncd.state.bulk`` hands SQLite rows straight to the driver, converting values with
SQLAlchemy's type processors itself. These tests write the same rows both ways into two
databases and compare the raw stored values (datetimes as the text SQLite holds), for inserts
and for upserts over existing rows, with constants placed anywhere in the table's column order.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Table
from sqlalchemy.dialects import sqlite

from syncd.state.bulk import insert_rows, upsert, upsert_rows
from syncd.state.store import Store
from syncd.state.tables import AppointmentRow, ConflictRow, JournalRow, LinkRow

A: Table = AppointmentRow.__table__  # type: ignore[attr-defined]
J: Table = JournalRow.__table__  # type: ignore[attr-defined]
L: Table = LinkRow.__table__  # type: ignore[attr-defined]
X: Table = ConflictRow.__table__  # type: ignore[attr-defined]
AMS = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 10, 25, 1, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    bulk, plain = (
        Store(f"sqlite:///{tmp_path / 'bulk.db'}"),
        Store(f"sqlite:///{tmp_path / 'p.db'}"),
    )
    yield bulk, plain
    bulk.close()
    plain.close()


def stored(store: Store, table: Table) -> list[tuple[Any, ...]]:
    """Every row as the driver returns it, unconverted, in primary-key order."""
    keys = ", ".join(c.name for c in table.primary_key.columns)
    with store.engine.connect() as conn:
        return [
            tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {table.name} ORDER BY {keys}")
        ]


def test_journal_insert_matches_sqlalchemy(stores: tuple[Store, Store]) -> None:
    bulk, plain = stores
    rows = [("put", '{"a":1}'), ("forget", "{}"), ("delete", "caf\u00e9 \U0001f600")]
    constants = {
        "sync": "s",
        "run_id": 7,
        "state": "pending",
        "error": "",
        "created_at": NOW,
        "updated_at": NOW.astimezone(AMS),  # another zone, same instant: stored as UTC
    }
    with bulk.engine.begin() as conn:
        insert_rows(conn, J, ("kind", "payload"), rows, constants)
    with plain.engine.begin() as conn:
        conn.execute(J.insert(), [{"kind": k, "payload": p, **constants} for k, p in rows])
    assert stored(bulk, J) == stored(plain, J)
    assert len(stored(bulk, J)) == 3
    assert stored(bulk, J)[0][-1] == "2026-10-25 01:30:15.123456"


starts = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(AMS)
)
texts = st.text(max_size=12)


@given(
    first=st.lists(st.tuples(st.sampled_from("abcde"), texts, starts), max_size=5),
    second=st.lists(st.tuples(st.sampled_from("abcdef"), texts, starts), max_size=5),
)
@settings(max_examples=40, deadline=None)
def test_record_upserts_match_sqlalchemy(
    tmp_path_factory: pytest.TempPathFactory,
    first: list[tuple[str, str, datetime]],
    second: list[tuple[str, str, datetime]],
) -> None:
    directory = tmp_path_factory.mktemp("upsert")
    bulk, plain = Store(f"sqlite:///{directory / 'b.db'}"), Store(f"sqlite:///{directory / 'p.db'}")
    try:
        for batch, now in ((first, NOW), (second, NOW + timedelta(hours=1))):
            unique = list({nid: (nid, data, start) for nid, data, start in batch}.values())
            rows = [(nid, data, f"h-{data}", start) for nid, data, start in unique]
            constants = {"sync": "s", "updated_at": now}
            with bulk.engine.begin() as conn:
                upsert_rows(
                    conn,
                    A,
                    ("sync", "native_id"),
                    ("native_id", "data", "hash", "start"),
                    rows,
                    constants,
                )
            with plain.engine.begin() as conn:
                insert = sqlite.insert(A)
                updates = {c: insert.excluded[c] for c in ("data", "hash", "start", "updated_at")}
                dicts = [
                    {"native_id": n, "data": d, "hash": h, "start": s, **constants}
                    for n, d, h, s in rows
                ]
                if dicts:
                    conn.execute(
                        insert.on_conflict_do_update(
                            index_elements=["sync", "native_id"], set_=updates
                        ),
                        dicts,
                    )
            assert stored(bulk, A) == stored(plain, A)
    finally:
        bulk.close()
        plain.close()


def test_dict_upsert_and_conflict_insert_match_sqlalchemy(stores: tuple[Store, Store]) -> None:
    bulk, plain = stores
    link = {
        "sync": "s",
        "native_id": "n1",
        "calendar": "c",
        "uid": "u",
        "href": "/c/u.ics",
        "etag": '"1"',
        "event_hash": "h",
        "sequence": 3,
        "updated_at": NOW,
    }
    conflict = ("n1", "c", "both moved", "provider-wins")
    for store, write in ((bulk, True), (plain, False)):
        with store.engine.begin() as conn:
            if write:
                upsert(conn, L, ["sync", "native_id", "calendar"], [link])
                upsert(conn, L, ["sync", "native_id", "calendar"], [link | {"etag": '"2"'}])
                insert_rows(
                    conn,
                    X,
                    ("native_id", "calendar", "detail", "resolution"),
                    [conflict],
                    {"sync": "s", "created_at": NOW},
                )
            else:
                conn.execute(L.insert(), [link | {"etag": '"2"'}])
                conn.execute(
                    X.insert(),
                    [
                        dict(
                            zip(
                                ("native_id", "calendar", "detail", "resolution"),
                                conflict,
                                strict=True,
                            )
                        )
                        | {"sync": "s", "created_at": NOW}
                    ],
                )
    assert stored(bulk, L) == stored(plain, L)
    assert stored(bulk, X) == stored(plain, X)
    assert stored(bulk, L)[0][5] == '"2"'


def test_nothing_to_write_runs_no_statement(stores: tuple[Store, Store]) -> None:
    bulk, _ = stores
    with bulk.engine.begin() as conn:
        insert_rows(conn, J, ("kind", "payload"), [], {"sync": "s"})
        upsert(conn, L, ["sync"], [])
    assert stored(bulk, J) == []
