"""The state store: SQLite settings, schema versions, the journal, cursors, records and links.

The promise under test is crash safety: a plan is journaled before it is applied, and
``commit()`` writes an action's state change and its done mark in ONE transaction. The same
code must run on PostgreSQL; when a server can be started here, the round trip runs on it too.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from glob import glob
from pathlib import Path
from typing import Any, get_args
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import ClauseElement, Connection, Engine, event, inspect, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlmodel import SQLModel

from syncd.errors import StoreError
from syncd.model import Appointment, Status
from syncd.reconcile.actions import (
    Action,
    Adopt,
    DeleteEvent,
    Forget,
    NoteConflict,
    PutEvent,
    Remember,
    Target,
    Unlink,
    WriteBack,
    from_json,
    to_json,
)
from syncd.reconcile.state import Link, Record
from syncd.state import engine as engine_module
from syncd.state import history
from syncd.state import rows as rows_module
from syncd.state import store as store_module
from syncd.state.bulk import upsert
from syncd.state.changes import Change
from syncd.state.engine import migrate
from syncd.state.store import Store
from syncd.state.tables import SCHEMA_VERSION, LinkRow, Meta

AMS = ZoneInfo("Europe/Amsterdam")
DAY = datetime(2026, 3, 2, 9, 0, tzinfo=AMS)
SYNC = "salon"
CAL = "team"


def appointment(native_id: str, hour: int = 9, title: str = "Consult") -> Appointment:
    start = DAY.replace(hour=hour)
    return Appointment(
        account="acc",
        native_id=native_id,
        start=start,
        end=start + timedelta(minutes=30),
        title=title,
        customer="Customer 1",
        updated=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    )


def link(native_id: str, calendar: str = CAL, href: str | None = None) -> tuple[str, Link]:
    """A link as ``Change.links`` holds it: (uid, Link)."""
    href = f"{native_id}.ics" if href is None else href
    return f"uid-{native_id}", Link(calendar, href, f'"etag-{native_id}"', f"hash-{native_id}", 1)


def linked(*native_ids: str, calendar: str = CAL) -> Change:
    """Records with one link each in ``calendar``."""
    return Change(
        records={nid: appointment(nid) for nid in native_ids},
        links={(nid, calendar): link(nid, calendar) for nid in native_ids},
    )


def schema_version(engine: Engine) -> int:
    meta = Meta.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        query = select(meta.c.value).where(meta.c.key == "schema_version")
        return int(conn.execute(query).scalar_one())


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    opened = Store(url)
    yield opened
    opened.close()


# -- opening the database -----------------------------------------------------------------------


def test_fresh_sqlite_store_has_wal_busy_timeout_and_schema_version(url: str) -> None:
    store = Store(url, busy_timeout=2.5)
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 2500
            # NORMAL (1) is durable enough with WAL; the journal replays a lost last commit.
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1
        assert schema_version(store.engine) == SCHEMA_VERSION
    finally:
        store.close()


def test_store_url_that_cannot_be_used_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open state database"):
        Store(f"sqlite:///{tmp_path / 'missing-dir' / 'state.db'}")
    with pytest.raises(StoreError, match="cannot use store url"):
        Store("nosuchdb://somewhere/db")


def test_older_database_opens_with_a_newer_version(url: str, store: Store) -> None:
    store.commit(SYNC, [(1, linked("a1", "a2"))])
    store.save_cursors(SYNC, {"provider:salon": {"watermark": "2026-03-01T12:00:00+00:00"}})
    assert schema_version(store.engine) == SCHEMA_VERSION
    newer = SCHEMA_VERSION + 1
    calls: list[int] = []

    def add_colour(conn: Connection) -> None:
        calls.append(newer)
        conn.execute(text("ALTER TABLE appointments ADD COLUMN colour VARCHAR(20) DEFAULT ''"))

    assert migrate(store.engine, migrations={newer: add_colour}, target=newer) == newer
    assert calls == [newer]
    assert schema_version(store.engine) == newer
    columns = {c["name"] for c in inspect(store.engine).get_columns("appointments")}
    assert "colour" in columns
    # What the older version wrote is still there, and the store still writes.
    assert sorted(store.records(SYNC)) == ["a1", "a2"]
    assert store.records(SYNC)["a1"].appointment == appointment("a1")
    assert store.cursor("provider:salon") == {"watermark": "2026-03-01T12:00:00+00:00"}
    store.commit(SYNC, [(2, linked("a3"))])
    assert store.link_count(SYNC) == 3
    # Opening again at the new version runs no step twice.
    assert migrate(store.engine, migrations={newer: add_colour}, target=newer) == newer
    assert calls == [newer]


def _add_column(table: str, column: str, ran: list[str]) -> Callable[[Connection], None]:
    def step(conn: Connection) -> None:
        ran.append(column)
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} INTEGER"))

    return step


def test_migration_steps_run_in_order_once(store: Store) -> None:
    ran: list[str] = []
    v1, v2 = SCHEMA_VERSION + 1, SCHEMA_VERSION + 2
    steps = {v2: _add_column("links", "second", ran), v1: _add_column("links", "first", ran)}
    assert migrate(store.engine, migrations=steps, target=v2) == v2
    assert ran == ["first", "second"]
    assert schema_version(store.engine) == v2
    assert migrate(store.engine, migrations=steps, target=v2) == v2
    assert ran == ["first", "second"]


def _broken(conn: Connection) -> None:
    raise RuntimeError("step failed")


def test_failed_migration_step_leaves_the_version_alone(store: Store) -> None:
    v1, v2 = SCHEMA_VERSION + 1, SCHEMA_VERSION + 2
    steps = {v1: _add_column("links", "x", []), v2: _broken}
    with pytest.raises(RuntimeError, match="step failed"):
        migrate(store.engine, migrations=steps, target=v2)
    assert schema_version(store.engine) == SCHEMA_VERSION


def test_failed_migration_can_be_retried(store: Store) -> None:
    v1, v2 = SCHEMA_VERSION + 1, SCHEMA_VERSION + 2
    steps = {v1: _add_column("links", "x", []), v2: _broken}
    with pytest.raises(RuntimeError, match="step failed"):
        migrate(store.engine, migrations=steps, target=v2)
    assert migrate(store.engine, migrations={v1: _add_column("links", "x", [])}, target=v1) == v1


def test_database_from_a_newer_syncd_is_refused(url: str, store: Store) -> None:
    meta = Meta.__table__  # type: ignore[attr-defined]
    with store.engine.begin() as conn:
        conn.execute(meta.update().where(meta.c.key == "schema_version"), {"value": "99"})
    store.close()
    with pytest.raises(StoreError, match=r"schema version 99.*Upgrade syncd") as raised:
        Store(url)
    assert f"reads up to {SCHEMA_VERSION}" in str(raised.value)


# -- the journal --------------------------------------------------------------------------------

ZONES = st.sampled_from(
    [ZoneInfo(name) for name in ("Europe/Amsterdam", "America/New_York", "Asia/Kolkata", "UTC")]
)
TEXT = st.text(max_size=30)
IDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)


@st.composite
def appointments(draw: st.DrawFn, native_id: str | None = None) -> Appointment:
    zone = draw(ZONES)
    start = draw(
        st.datetimes(
            min_value=datetime(2000, 1, 1),
            max_value=datetime(2100, 1, 1),
            timezones=st.just(zone),
            allow_imaginary=False,  # comes back as another wall time: see test_nonexistent_...
        )
    )
    length = draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)))
    # Real elapsed time, not wall time: some of these cross a DST change, some end in the
    # repeated autumn hour at a wall time before their start's.
    end = (start.astimezone(UTC) + length).astimezone(zone)
    # In UTC: see test_updated_in_a_repeated_hour_round_trips_equal.
    updated = draw(st.none() | st.datetimes(timezones=st.just(UTC)))
    return Appointment(
        account=draw(IDS),
        native_id=native_id or draw(IDS),
        start=start,
        end=end,
        title=draw(TEXT),
        notes=draw(TEXT),
        location=draw(TEXT),
        status=draw(st.sampled_from(Status)),
        customer=draw(TEXT),
        staff=draw(TEXT),
        resource=draw(TEXT),
        updated=updated,
        extra=tuple(draw(st.lists(st.tuples(IDS, TEXT), max_size=3))),
    )


TARGETS = st.builds(
    Target,
    calendar=IDS,
    href=st.just("") | IDS.map(lambda s: f"/cal/{s}.ics"),
    etag=st.text(max_size=20),
    delete=st.booleans(),
    unlink=st.booleans(),
    sequence=st.integers(min_value=0, max_value=2**31 - 1),
)

ACTION_STRATEGIES: dict[type[Any], st.SearchStrategy[Any]] = {
    PutEvent: st.builds(
        PutEvent, native_id=IDS, appointment=appointments(), target=TARGETS, reason=TEXT
    ),
    DeleteEvent: st.builds(DeleteEvent, native_id=IDS, target=TARGETS, reason=TEXT),
    WriteBack: st.builds(
        WriteBack,
        native_id=IDS,
        operation=st.sampled_from(["move", "cancel"]),
        base=appointments(),
        expected=appointments(),
        source=IDS,
        targets=st.lists(TARGETS, max_size=3).map(tuple),
    ),
    Adopt: st.builds(
        Adopt,
        native_id=IDS,
        calendar=IDS,
        href=IDS,
        etag=TEXT,
        event_hash=TEXT,
        sequence=st.integers(0, 1000),
    ),
    Remember: st.builds(Remember, native_id=IDS, appointment=appointments()),
    Unlink: st.builds(Unlink, native_id=IDS, calendar=IDS),
    Forget: st.builds(Forget, native_id=IDS),
    NoteConflict: st.builds(
        NoteConflict, native_id=IDS, calendar=IDS, detail=TEXT, resolution=TEXT
    ),
}
ACTIONS: st.SearchStrategy[Action] = st.one_of(*ACTION_STRATEGIES.values())


def test_every_action_kind_has_a_strategy() -> None:
    assert set(ACTION_STRATEGIES) == set(get_args(Action))


@given(ACTIONS)
@settings(max_examples=300, deadline=None)
def test_action_json_round_trip(action: Action) -> None:
    assert from_json(to_json(action)) == action


@given(appointments())
@settings(max_examples=300, deadline=None)
def test_appointment_text_is_what_json_dumps_makes_of_it(appt: Appointment) -> None:
    # The record and the journal store ``dumps()``; it is written by hand for speed, so it
    # must stay exactly the compact JSON of ``to_json()`` (lone surrogates and all).
    assert appt.dumps() == json.dumps(appt.to_json(), separators=(",", ":"))


@given(ACTIONS)
@settings(max_examples=300, deadline=None)
def test_action_text_is_valid_json_of_its_fields(action: Action) -> None:
    data = json.loads(to_json(action))
    assert set(data) == set(action.__slots__)
    assert data["kind"] == action.kind


def test_updated_in_a_repeated_hour_round_trips_equal() -> None:
    updated = datetime(2026, 10, 25, 2, 30, tzinfo=AMS, fold=1)
    action = Remember("n1", replace(appointment("n1"), updated=updated))
    assert from_json(to_json(action)) == action


def test_journal_returns_ids_in_order_and_pending_returns_equal_actions(store: Store) -> None:
    @given(st.lists(ACTIONS, min_size=1, max_size=6))
    @settings(max_examples=60, deadline=None)
    def check(actions: list[Action]) -> None:
        sync = f"s-{uuid.uuid4().hex[:8]}"  # each example gets its own journal
        run = history.start_run(store.engine, sync, datetime.now(UTC))
        ids = store.journal(sync, run, actions)
        assert len(ids) == len(actions)
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)
        assert store.pending(sync) == list(zip(ids, actions, strict=True))
        assert store.pending_count(sync) == len(actions)

    check()


def test_journal_ids_when_another_writer_interleaves(store: Store) -> None:
    # The ids come back as a range when they are one contiguous block; here a trigger (standing
    # in for a concurrent writer on PostgreSQL) slips another run's row after each of ours.
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER interleave AFTER INSERT ON journal WHEN NEW.sync = 'mine' BEGIN "
            "INSERT INTO journal (sync, run_id, kind, payload, state, error, created_at, "
            "updated_at) VALUES ('theirs', NEW.run_id + 1000, 'forget', '{}', 'done', '', "
            "NEW.created_at, NEW.updated_at); END"
        )
    run = history.start_run(store.engine, "mine", datetime.now(UTC))
    ids = store.journal("mine", run, [Forget("a"), Forget("b"), Forget("c")])
    assert [b - a for a, b in itertools.pairwise(ids)] == [2, 2]
    assert store.pending("mine") == list(
        zip(ids, [Forget("a"), Forget("b"), Forget("c")], strict=True)
    )


def test_journal_of_one_run_twice_returns_only_the_new_ids(store: Store) -> None:
    run = history.start_run(store.engine, SYNC, datetime.now(UTC))
    first = store.journal(SYNC, run, [Forget("a"), Forget("b")])
    other = store.journal("other", run + 1, [Forget("x")])
    second = store.journal(SYNC, run, [Forget("c")])
    assert len(first) == 2
    assert len(other) == 1
    assert len(second) == 1
    assert first[0] < first[1] < other[0] < second[0]
    assert store.journal(SYNC, run, []) == []
    assert [a for _, a in store.pending(SYNC)] == [Forget("a"), Forget("b"), Forget("c")]
    assert store.pending("other") == [(other[0], Forget("x"))]


def test_repeated_autumn_hour_survives_the_journal(store: Store) -> None:
    """20 minutes from 02:50 summer time to 02:10 winter time (fold=1), 2026-10-25."""
    start = datetime(2026, 10, 25, 2, 50, tzinfo=AMS)
    end = (start.astimezone(UTC) + timedelta(minutes=20)).astimezone(AMS)
    assert (end.hour, end.minute, end.fold) == (2, 10, 1)
    action = PutEvent("n1", appointment("n1").moved(start, end), Target(CAL))
    ids = store.journal(SYNC, 1, [action])
    ((entry, back),) = store.pending(SYNC)
    assert (entry, back) == (ids[0], action)
    assert isinstance(back, PutEvent)
    assert back.appointment.end.fold == 1


def test_nonexistent_local_time_survives_the_journal(store: Store) -> None:
    """02:30 does not exist in Amsterdam on 2026-03-29; it means 01:30 UTC (the offset from
    before the gap). The journal may hand it back as the real wall time 03:30+02:00, but it
    must be the same instant, and reading it back must not fail."""
    start = datetime(2026, 3, 29, 2, 30, tzinfo=AMS)
    end = datetime(2026, 3, 29, 4, 0, tzinfo=AMS)
    action = PutEvent("n1", appointment("n1").moved(start, end), Target(CAL))
    ids = store.journal(SYNC, 1, [action])
    ((entry, back),) = store.pending(SYNC)
    assert entry == ids[0]
    assert isinstance(back, PutEvent)
    assert back.appointment.start.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert back.appointment.end.astimezone(UTC) == end.astimezone(UTC)
    assert back.appointment.content_hash() == action.appointment.content_hash()


def test_commit_applies_the_change_and_marks_done(store: Store) -> None:
    ids = store.journal(SYNC, 1, [Remember("a1", appointment("a1")), Forget("gone")])
    store.commit(SYNC, [(ids[0], linked("a1"))])
    assert store.pending(SYNC) == [(ids[1], Forget("gone"))]
    assert sorted(store.records(SYNC)) == ["a1"]
    store.commit(SYNC, [(ids[1], Change(forget={"gone"}))])
    assert store.pending(SYNC) == []
    store.commit(SYNC, [])  # nothing to do is fine


@contextmanager
def failing_commit(store: Store, where: str) -> Iterator[list[str]]:
    """Make the next ``commit()`` die inside its transaction: right after the state change
    was executed (``state``), or while its journal entries are being marked done (``mark``).
    Yields a list that names the step reached, to prove the failure came late enough."""
    reached: list[str] = []
    real = rows_module.write_change

    def apply_then_fail(conn: Connection, sync: str, change: Change, now: datetime) -> None:
        real(conn, sync, change, now)
        reached.append("state")
        raise RuntimeError("disk on fire")

    def fail_at_mark(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE JOURNAL"):
            reached.append("mark")
            raise RuntimeError("disk on fire")

    with pytest.MonkeyPatch.context() as patch:
        if where == "state":
            patch.setattr(store_module, "write_change", apply_then_fail)
        else:
            event.listen(store.engine, "before_cursor_execute", fail_at_mark)
        try:
            yield reached
        finally:
            if where == "mark":
                event.remove(store.engine, "before_cursor_execute", fail_at_mark)


@pytest.mark.parametrize("where", ["state", "mark"])
def test_commit_is_atomic_when_the_transaction_fails(url: str, store: Store, where: str) -> None:
    store.commit(SYNC, [(0, linked("old"))])
    actions: list[Action] = [Remember("a1", appointment("a1")), Forget("old")]
    ids = store.journal(SYNC, 1, actions)
    done = [(ids[0], linked("a1")), (ids[1], Change(forget={"old"}))]

    with failing_commit(store, where) as reached, pytest.raises(RuntimeError, match="fire"):
        store.commit(SYNC, done)
    assert reached == [where]

    reopened = Store(url)  # what a restarted daemon sees: neither the change nor the marks
    try:
        assert reopened.pending(SYNC) == list(zip(ids, actions, strict=True))
        assert sorted(reopened.records(SYNC)) == ["old"]
        assert reopened.link_count(SYNC) == 1
        # The replay after the restart commits both, once.
        reopened.commit(SYNC, done)
        assert reopened.pending(SYNC) == []
        assert sorted(reopened.records(SYNC)) == ["a1"]
        assert reopened.link_count(SYNC) == 1
    finally:
        reopened.close()


def test_fail_abandon_and_prune(store: Store) -> None:
    runs = [history.start_run(store.engine, SYNC, datetime.now(UTC)) for _ in range(3)]
    done = store.journal(SYNC, runs[0], [Forget("a")])
    failed = store.journal(SYNC, runs[1], [Forget("b")])
    left = store.journal(SYNC, runs[2], [Forget("c"), Forget("d")])
    store.commit(SYNC, [(done[0], Change())])
    store.fail(failed[0], "boom " * 200)
    assert [i for i, _ in store.pending(SYNC)] == left
    assert store.abandon_pending(SYNC, "gave up") == 2
    assert store.pending(SYNC) == []
    store.prune_journal(SYNC, keep_runs=1)
    journal = store_module.J
    with store.engine.connect() as conn:
        kept = conn.execute(select(journal.c.id, journal.c.error).order_by(journal.c.id)).all()
    assert [row.id for row in kept] == left
    assert {row.error for row in kept} == {"gave up"}


# -- cursors, records and links ------------------------------------------------------------------


def test_cursor_save_load_drop(store: Store) -> None:
    assert store.cursor("provider:salon") is None
    store.save_cursors(
        SYNC, {"provider:salon": {"watermark": "w1"}, "calendar:salon:team": {"token": "t1"}}
    )
    assert store.cursor("provider:salon") == {"watermark": "w1"}
    assert store.cursor("calendar:salon:team") == {"token": "t1"}
    store.save_cursors(SYNC, {"provider:salon": {"watermark": "w2", "token": "x"}})
    assert store.cursor("provider:salon") == {"watermark": "w2", "token": "x"}
    store.save_cursors(SYNC, {"calendar:salon:team": None, "calendar:salon:never": None})
    assert store.cursor("calendar:salon:team") is None
    assert store.cursor("provider:salon") == {"watermark": "w2", "token": "x"}


def test_records_by_id_beyond_one_chunk(store: Store) -> None:
    count = store_module._CHUNK * 2 + 7
    ids = [f"n{i:05d}" for i in range(count)]
    store.commit(SYNC, [(0, linked(*ids))])
    store.commit("other-sync", [(0, linked("n00001"))])
    wanted = [*reversed(ids), "unknown-1", ids[5]]  # unsorted, a repeat, an unknown id
    found = store.records(SYNC, wanted)
    assert sorted(found) == sorted(ids)
    assert found["n01000"] == Record(
        appointment("n01000"),
        appointment("n01000").content_hash(),
        {CAL: link("n01000")[1]},
    )
    assert len(store.records(SYNC)) == count
    assert store.records(SYNC, []) == {}
    assert sorted(store.records("other-sync", ids)) == ["n00001"]


def test_links_by_href_etags_and_count(store: Store) -> None:
    ids = [f"n{i:04d}" for i in range(store_module._CHUNK + 50)]
    change = linked(*ids)
    change.links[("n0000", "private")] = link("n0000", "private")
    change.links[("n0001", CAL)] = link("n0001", href="")  # detached: deleted by the user
    store.commit(SYNC, [(0, change)])
    store.commit("other-sync", [(0, linked("n0002"))])

    hrefs = [f"{nid}.ics" for nid in ids] + ["stranger.ics"]
    by_href = store.native_ids_by_href(SYNC, CAL, hrefs)
    assert by_href == {f"{nid}.ics": nid for nid in ids if nid != "n0001"}
    assert store.native_ids_by_href(SYNC, "private", hrefs) == {"n0000.ics": "n0000"}
    assert store.native_ids_by_href(SYNC, CAL, []) == {}

    etags = store.known_etags(SYNC, CAL)
    assert "" not in etags
    assert "n0001.ics" not in etags
    assert etags["n0003.ics"] == '"etag-n0003"'
    assert len(etags) == len(ids) - 1
    assert store.link_count(SYNC) == len(ids)  # +1 private, -1 detached
    assert store.link_count("other-sync") == 1
    assert store.sequence(SYNC, "n0003", CAL) == 1
    assert store.sequence(SYNC, "nobody", CAL) == 0
    assert store.records(SYNC, ["n0001"])["n0001"].links[CAL].href == ""


def test_item_errors_are_upserted_and_cleared(store: Store) -> None:
    store.record_item_errors(SYNC, [("x", "start", "bad date"), ("y", "end", "bad")])
    store.record_item_errors(SYNC, [("x", "title", "too long")])
    status = history.sync_status(store.engine, SYNC)
    assert {(e["item"], e["field"], e["message"]) for e in status.item_errors} == {
        ("x", "title", "too long"),
        ("y", "end", "bad"),
    }
    store.clear_item_errors(SYNC, ["x"])
    assert [e["item"] for e in history.sync_status(store.engine, SYNC).item_errors] == ["y"]


# -- Change.merge ---------------------------------------------------------------------------------


def test_merge_forget_after_upsert_drops_the_upsert() -> None:
    merged = Change.merge([linked("a", "b"), Change(forget={"a"})])
    assert merged.forget == {"a"}
    assert set(merged.records) == {"b"}
    assert set(merged.links) == {("b", CAL)}


def test_merge_upsert_after_forget_survives() -> None:
    merged = Change.merge([Change(forget={"a"}), linked("a")])
    assert merged.forget == {"a"}  # applied first: the old links go ...
    assert set(merged.records) == {"a"}  # ... then the new state is written
    assert set(merged.links) == {("a", CAL)}


def test_merge_keeps_conflicts_in_order_and_later_upserts_win() -> None:
    first = Change(records={"a": appointment("a", title="old")}, conflicts=[("a", CAL, "1", "p")])
    second = Change(records={"a": appointment("a", title="new")}, conflicts=[("a", CAL, "2", "p")])
    merged = Change.merge([first, second])
    assert merged.records["a"].title == "new"
    assert [c[2] for c in merged.conflicts] == ["1", "2"]


def test_commit_of_forget_and_upsert_in_one_batch(store: Store) -> None:
    store.commit(SYNC, [(0, linked("a", "b", calendar="private"))])
    store.commit(SYNC, [(0, linked("a")), (0, Change(forget={"a", "b"})), (0, linked("b"))])
    records = store.records(SYNC)
    assert sorted(records) == ["b"]  # a: forgotten after its upsert; b: re-created after
    assert set(records["b"].links) == {CAL}  # b's old link in "private" went with the forget


# -- portability: no SQLite-only SQL ---------------------------------------------------------------


class _Capture:
    """Stands in for a PostgreSQL connection: keeps what ``upsert`` would execute."""

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]

    def __init__(self) -> None:
        self.executed: list[tuple[Any, Any]] = []

    def execute(self, statement: Any, parameters: Any = None) -> None:
        self.executed.append((statement, parameters))


def test_upsert_compiles_for_postgresql() -> None:
    conn = _Capture()
    links = LinkRow.__table__  # type: ignore[attr-defined]
    row = {"sync": "s", "native_id": "n", "calendar": "c", "uid": "u", "href": "h", "etag": "e"}
    upsert(conn, links, ["sync", "native_id", "calendar"], [row])  # type: ignore[arg-type]
    ((statement, params),) = conn.executed
    sql = str(statement.compile(dialect=conn.dialect))
    assert sql.startswith("INSERT INTO links")
    assert "ON CONFLICT (sync, native_id, calendar) DO UPDATE SET" in sql
    assert "uid = excluded.uid" in sql
    assert "excluded.sync" not in sql
    assert params == [row]


def test_every_table_and_index_compiles_for_postgresql() -> None:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    for table in SQLModel.metadata.sorted_tables:
        ddl = str(CreateTable(table).compile(dialect=dialect))
        assert "AUTOINCREMENT" not in ddl
        for index in table.indexes:
            CreateIndex(index).compile(dialect=dialect)


def round_trip(store: Store) -> None:
    """Journal, an interrupted commit, the replay, records and links, cursors and runs."""
    sync = f"rt-{uuid.uuid4().hex[:8]}"
    run = history.start_run(store.engine, sync, datetime.now(UTC))
    ids_ = [f"n{i:04d}" for i in range(store_module._CHUNK + 20)]
    actions: list[Action] = [Remember(nid, appointment(nid)) for nid in ids_]
    actions.append(NoteConflict("n0000", CAL, "both moved", "provider-wins"))
    entries = store.journal(sync, run, actions)
    assert store.pending(sync) == list(zip(entries, actions, strict=True))
    changes = [(entry, linked(nid)) for entry, nid in zip(entries, ids_, strict=False)]
    changes.append((entries[-1], Change(conflicts=[("n0000", CAL, "both moved", "provider-wins")])))

    for where in ("state", "mark"):
        with failing_commit(store, where) as reached, pytest.raises(RuntimeError, match="fire"):
            store.commit(sync, changes)
        assert reached == [where]
    assert store.pending_count(sync) == len(actions)
    assert store.records(sync) == {}
    assert store.link_count(sync) == 0

    store.commit(sync, changes)
    assert store.pending(sync) == []
    found = store.records(sync, [*ids_, "unknown"])
    assert sorted(found) == ids_
    assert found["n0007"].appointment == appointment("n0007")
    assert found["n0007"].appointment.start.utcoffset() == timedelta(hours=1)
    assert found["n0007"].links == {CAL: link("n0007")[1]}
    hrefs = [f"{nid}.ics" for nid in ids_]
    assert store.native_ids_by_href(sync, CAL, hrefs) == dict(zip(hrefs, ids_, strict=True))
    assert len(store.known_etags(sync, CAL)) == store.link_count(sync) == len(ids_)

    store.save_cursors(sync, {f"provider:{sync}": {"watermark": "w"}})
    assert store.cursor(f"provider:{sync}") == {"watermark": "w"}
    store.save_cursors(sync, {f"provider:{sync}": {"watermark": "w2"}})
    assert store.cursor(f"provider:{sync}") == {"watermark": "w2"}
    store.save_cursors(sync, {f"provider:{sync}": None})
    assert store.cursor(f"provider:{sync}") is None

    store.record_item_errors(sync, [("x", "start", "bad"), ("x", "start", "worse")])
    history.finish_run(store.engine, run, datetime.now(UTC), "ok", {"remember": 520}, "")
    status = history.sync_status(store.engine, sync)
    assert status.last_run is not None
    assert status.last_run.status == "ok"
    assert status.last_run.counts == {"remember": 520}
    assert status.last_run.started_at.tzinfo is not None
    assert status.last_success is not None
    assert status.links == len(ids_)
    assert status.pending == 0
    assert [c["detail"] for c in status.conflicts] == ["both moved"]
    assert len(status.item_errors) == 1


def test_round_trip_on_sqlite_runs_only_portable_sql(store: Store) -> None:
    statements: list[ClauseElement] = []
    raw: list[str] = []

    @event.listens_for(store.engine, "before_execute")
    def keep(conn: Any, clause: Any, multiparams: Any, params: Any, options: Any) -> None:
        statements.append(clause)

    @event.listens_for(store.engine, "before_cursor_execute")
    def keep_sql(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        raw.append(sql.upper())

    round_trip(store)
    assert statements
    assert raw
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    for clause in statements:
        assert isinstance(clause, ClauseElement), f"raw SQL string executed: {clause!r}"
        if clause.__class__.__module__.startswith("sqlalchemy.dialects.sqlite"):
            continue  # the upsert picks its dialect's insert; compiled for PostgreSQL above
        clause.compile(dialect=dialect)
    for sql in raw:
        for sqlite_only in ("INSERT OR ", "REPLACE INTO", "PRAGMA", "AUTOINCREMENT", "GLOB "):
            assert sqlite_only not in sql, sql


# -- PostgreSQL, when a server can be started here -------------------------------------------------


def _postgres_bin() -> Path | None:
    found = [shutil.which("pg_ctl"), shutil.which("initdb")]
    if all(found):
        return Path(str(found[0])).parent
    for directory in sorted(glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(directory) / "pg_ctl").exists() and (Path(directory) / "initdb").exists():
            return Path(directory)
    return None


def _postgres_driver() -> str | None:
    for module, driver in (("psycopg", "psycopg"), ("psycopg2", "psycopg2"), ("pg8000", "pg8000")):
        if importlib.util.find_spec(module) is not None:
            return driver
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on a loopback port, in a temporary data directory."""
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (no pg_ctl/initdb on PATH or under /usr/lib)")
    driver = _postgres_driver()
    if driver is None:
        pytest.skip("no PostgreSQL driver for SQLAlchemy (psycopg, psycopg2, pg8000) installed")
    prefix: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root and runuser(1) is missing")
        prefix = [runuser, "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="syncd-pg-"))  # not under pytest's 0700 tmp dirs
    data = base / "data"
    if owner is not None:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C"}

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, env=env, timeout=60)

    try:
        run(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "syncd",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = (
            f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off "
            # A zone far from UTC: timestamps must not depend on the server's zone.
            "-c timezone=America/Los_Angeles"
        )
        log = str(base / "log")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", log, "-w", "start")
    except subprocess.CalledProcessError as err:
        shutil.rmtree(base, ignore_errors=True)
        output = (err.stderr or b"").decode(errors="replace").strip().splitlines()[-1:]
        pytest.skip(f"could not start PostgreSQL ({Path(err.cmd[-1]).name}): {output}")
    except subprocess.TimeoutExpired as err:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"could not start PostgreSQL: {err}")
    try:
        yield f"postgresql+{driver}://syncd@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_round_trip_on_postgresql(postgres_url: str) -> None:
    store = Store(postgres_url)
    try:
        assert store.engine.dialect.name == "postgresql"
        assert schema_version(store.engine) == SCHEMA_VERSION
        round_trip(store)
        newer = SCHEMA_VERSION + 1
        engine_module.make_engine(postgres_url).dispose()  # reopening a current one is fine
        # PostgreSQL's DDL is transactional: a failed step leaves nothing to trip the retry.
        steps = {newer: _add_column("links", "x", []), newer + 1: _broken}
        with pytest.raises(RuntimeError, match="step failed"):
            migrate(store.engine, migrations=steps, target=newer + 1)
        assert schema_version(store.engine) == SCHEMA_VERSION
        migrate(
            store.engine,
            migrations={newer: _add_column("links", "x", [])},
            target=newer,
        )
        assert schema_version(store.engine) == newer
        with pytest.raises(StoreError, match="Upgrade syncd"):
            migrate(store.engine)  # what opening it with this version does
    finally:
        store.close()


@pytest.mark.parametrize("wanted", [3, store_module._CHUNK + 1, 1200])
def test_records_of_many_ids_read_by_chunks_or_whole_give_the_same(
    store: Store, wanted: int
) -> None:
    # Up to a chunk: one IN list. More, but a minority of the sync: IN lists by chunk. A
    # majority: the whole sync read once and filtered. Each must return exactly those asked.
    ids = [f"n{i:05d}" for i in range(1300)]
    store.commit(SYNC, [(0, linked(*ids)), (0, linked("elsewhere", calendar="private"))])
    store.commit("other-sync", [(0, linked(*ids[:50]))])
    asked = [*ids[-wanted:], "unknown"]
    found = store.records(SYNC, asked)
    assert sorted(found) == sorted(ids[-wanted:])
    assert found[ids[-1]].links == {CAL: link(ids[-1])[1]}
    assert found[ids[-1]].appointment == appointment(ids[-1])


@given(st.sets(st.integers(min_value=1, max_value=60)))
def test_done_marks_cover_exactly_the_entries_in_ranges_and_singles(ids: set[int]) -> None:
    runs, single = rows_module.id_runs(sorted(ids))
    covered = [i for low, high in runs for i in range(low, high + 1)] + single
    assert sorted(covered) == sorted(ids)  # each once
    assert all(high > low for low, high in runs)
    assert all(i - 1 not in ids and i + 1 not in ids for i in single)


def test_commit_with_a_gap_leaves_only_the_entry_in_the_gap_pending(store: Store) -> None:
    run = history.start_run(store.engine, SYNC, datetime.now(UTC))
    ids = store.journal(SYNC, run, [Forget(f"f{i}") for i in range(7)])
    store.commit(SYNC, [(entry, Change()) for entry in ids if entry != ids[3]])
    assert [entry for entry, _ in store.pending(SYNC)] == [ids[3]]
