"""``plan()`` case by case: the three-way merge, the policies and the mass-delete guard.

The renderer is replaced by the appointment's own content hash, so these tests are about the
decisions only; ``test_sync_machine`` proves the same decisions with real rendering.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from syncd.model import Appointment, Deleted, Status
from syncd.providers.base import Window
from syncd.reconcile.actions import (
    Adopt,
    DeleteEvent,
    Forget,
    NoteConflict,
    PutEvent,
    Remember,
    Unlink,
    WriteBack,
)
from syncd.reconcile.plan import plan
from syncd.reconcile.policy import (
    CalendarDelete,
    CancelledPolicy,
    ConflictPolicy,
    Direction,
    Policy,
)
from syncd.reconcile.state import (
    CalendarView,
    EventGone,
    EventState,
    Link,
    ProviderView,
    Record,
)

AMS = ZoneInfo("Europe/Amsterdam")
T0 = datetime(2026, 3, 28, 10, 0, tzinfo=AMS)
WINDOW = Window(T0 - timedelta(days=7), T0 + timedelta(days=60))
ONE_WAY = Policy(sync="s", account="shop", calendars=("cal",))
TWO_WAY = replace(ONE_WAY, direction=Direction.TWO_WAY)


def appt(nid: str = "1", hours: int = 0, **fields: object) -> Appointment:
    start = T0 + timedelta(hours=hours)
    return Appointment("shop", nid, start, start + timedelta(hours=1), title="Knippen", **fields)  # type: ignore[arg-type]


def fake_hash(a: Appointment, _calendar: str) -> str:
    return "h:" + a.content_hash()


def record(a: Appointment, etag: str = "e1") -> Record:
    return Record(
        a,
        a.content_hash(),
        {"cal": Link("cal", f"{a.native_id}.ics", etag, fake_hash(a, "cal"), 1)},
    )


def event(
    a: Appointment,
    etag: str = "e2",
    *,
    hours: int = 0,
    cancelled: bool = False,
    modified: datetime | None = None,
    text: str = "",
) -> EventState:
    start, end = a.start + timedelta(hours=hours), a.end + timedelta(hours=hours)
    same = not hours and not cancelled and not text
    h = fake_hash(a, "cal") if same else f"user:{hours}:{cancelled}:{text}"
    return EventState(
        "cal",
        a.native_id,
        f"{a.native_id}.ics",
        etag,
        start,
        end,
        cancelled or a.cancelled,
        h,
        modified,
    )


def run(
    policy: Policy,
    records: Mapping[str, Record],
    items: Mapping[str, Appointment | Deleted] | None = None,
    events: Mapping[str, EventState | EventGone] | None = None,
    **kw: object,
) -> list[object]:
    result = plan(
        policy,
        records,
        ProviderView(items or {}, window=WINDOW),
        {"cal": CalendarView(events or {})},
        fake_hash,
        total_links=len(records),
    )
    assert not result.refused, result.refused
    return list(result.actions)


def kinds(actions: list[object]) -> list[type]:
    return [type(a) for a in actions]


def test_new_appointment_is_created_and_recorded_by_the_put() -> None:
    a = appt()
    actions = run(ONE_WAY, {}, {"1": a})
    assert kinds(actions) == [PutEvent]
    put = actions[0]
    assert isinstance(put, PutEvent)
    assert put.target.href == ""
    assert put.appointment == a


def test_provider_change_updates_with_the_known_etag_and_next_sequence() -> None:
    a = appt()
    moved = a.moved(a.start + timedelta(hours=2), a.end + timedelta(hours=2))
    actions = run(ONE_WAY, {"1": record(a)}, {"1": moved})
    put = next(x for x in actions if isinstance(x, PutEvent))
    assert put.appointment == moved
    assert (put.target.href, put.target.etag, put.target.sequence) == ("1.ics", "e1", 2)


def test_unchanged_provider_report_does_nothing() -> None:
    a = appt()
    assert run(ONE_WAY, {"1": record(a)}, {"1": replace(a, updated=T0)}) == []


def test_echo_of_our_own_write_is_adopted_not_treated_as_a_change() -> None:
    a = appt()
    actions = run(TWO_WAY, {"1": record(a)}, events={"1": event(a, etag="e9")})
    assert kinds(actions) == [Adopt]
    assert isinstance(actions[0], Adopt)
    assert actions[0].etag == "e9"


def test_person_move_is_restored_in_a_one_way_sync() -> None:
    a = appt()
    actions = run(ONE_WAY, {"1": record(a)}, events={"1": event(a, hours=3)})
    put = next(x for x in actions if isinstance(x, PutEvent))
    assert put.appointment == a
    assert put.target.etag == "e2"
    assert not any(isinstance(x, WriteBack) for x in actions)


def test_person_move_is_written_back_in_a_two_way_sync() -> None:
    a = appt()
    actions = run(TWO_WAY, {"1": record(a)}, events={"1": event(a, hours=3)})
    assert kinds(actions) == [WriteBack]
    wb = actions[0]
    assert isinstance(wb, WriteBack)
    assert wb.operation == "move"
    assert wb.expected.start == a.start + timedelta(hours=3)
    assert wb.base == a
    assert wb.targets[0].etag == "e2"


def test_person_cancel_is_written_back_in_a_two_way_sync() -> None:
    a = appt()
    actions = run(TWO_WAY, {"1": record(a)}, events={"1": event(a, cancelled=True)})
    wb = actions[0]
    assert isinstance(wb, WriteBack)
    assert wb.operation == "cancel"
    assert wb.expected.status is Status.CANCELLED


def test_title_edit_is_restored_even_in_two_way() -> None:
    a = appt()
    actions = run(TWO_WAY, {"1": record(a)}, events={"1": event(a, text="mine")})
    assert [type(x) for x in actions if not isinstance(x, Remember)] == [PutEvent]


@pytest.mark.parametrize(
    ("rule", "direction", "expected"),
    [
        (CalendarDelete.RESTORE, Direction.TWO_WAY, PutEvent),
        (CalendarDelete.CANCEL, Direction.TWO_WAY, WriteBack),
        (CalendarDelete.IGNORE, Direction.TWO_WAY, Unlink),
        (CalendarDelete.CANCEL, Direction.ONE_WAY, PutEvent),  # one-way never writes back
    ],
)
def test_calendar_delete_policy(rule: CalendarDelete, direction: Direction, expected: type) -> None:
    a = appt()
    policy = replace(ONE_WAY, calendar_delete=rule, direction=direction)
    actions = run(policy, {"1": record(a)}, events={"1": EventGone("cal", "1", "1.ics")})
    assert expected in kinds(actions)
    if expected is PutEvent:
        put = next(x for x in actions if isinstance(x, PutEvent))
        assert put.target.href == ""  # recreated, not updated


def test_both_changed_provider_wins_records_a_conflict() -> None:
    a = appt()
    moved = a.moved(a.start + timedelta(hours=1), a.end + timedelta(hours=1))
    actions = run(TWO_WAY, {"1": record(a)}, {"1": moved}, {"1": event(a, hours=5)})
    assert NoteConflict in kinds(actions)
    assert WriteBack not in kinds(actions)
    put = next(x for x in actions if isinstance(x, PutEvent))
    assert put.appointment == moved


def test_both_changed_calendar_wins_writes_back() -> None:
    a = appt()
    moved = a.moved(a.start + timedelta(hours=1), a.end + timedelta(hours=1))
    policy = replace(TWO_WAY, conflict=ConflictPolicy.CALENDAR_WINS)
    actions = run(policy, {"1": record(a)}, {"1": moved}, {"1": event(a, hours=5)})
    wb = next(x for x in actions if isinstance(x, WriteBack))
    assert wb.base == moved
    assert wb.expected.start == a.start + timedelta(hours=5)


@pytest.mark.parametrize("calendar_newer", [True, False])
def test_both_changed_newest_wins(calendar_newer: bool) -> None:
    a = appt()
    moved = replace(a.moved(a.start + timedelta(hours=1), a.end + timedelta(hours=1)), updated=T0)
    modified = T0 + timedelta(minutes=5 if calendar_newer else -5)
    policy = replace(TWO_WAY, conflict=ConflictPolicy.NEWEST_WINS)
    actions = run(
        policy, {"1": record(a)}, {"1": moved}, {"1": event(a, hours=5, modified=modified)}
    )
    assert (WriteBack in kinds(actions)) is calendar_newer


def test_provider_delete_removes_events_and_forgets() -> None:
    a = appt()
    actions = run(ONE_WAY, {"1": record(a)}, {"1": Deleted("shop", "1")})
    assert kinds(actions) == [DeleteEvent, Forget]


@pytest.mark.parametrize(
    ("rule", "expected"), [(CancelledPolicy.DELETE, DeleteEvent), (CancelledPolicy.MARK, PutEvent)]
)
def test_cancelled_appointment_policy(rule: CancelledPolicy, expected: type) -> None:
    a = appt()
    policy = replace(ONE_WAY, cancelled=rule)
    actions = run(policy, {"1": record(a)}, {"1": replace(a, status=Status.CANCELLED)})
    assert expected in kinds(actions)


def test_complete_listing_finds_hard_deletes_but_not_unreadable_items() -> None:
    a, b = appt("1"), appt("2", hours=2)
    records = {"1": record(a), "2": record(b)}
    view = ProviderView({}, complete=True, window=WINDOW, unreadable=frozenset({"2"}))
    result = plan(ONE_WAY, records, view, {}, fake_hash, total_links=2)
    deleted = {x.native_id for x in result.actions if isinstance(x, Forget)}
    assert deleted == {"1"}


def test_guard_refuses_a_plan_deleting_more_than_the_share() -> None:
    many = {str(i): record(appt(str(i), hours=i)) for i in range(10)}
    gone = {str(i): Deleted("shop", str(i)) for i in range(6)}
    view = ProviderView(gone, window=WINDOW)
    result = plan(ONE_WAY, many, view, {}, fake_hash, total_links=10)
    assert result.refused
    assert not result.actions
    assert "6 of 10" in result.refused
    allowed = plan(replace(ONE_WAY, allow_mass_delete=True), many, view, {}, fake_hash, 10)
    assert not allowed.refused
    assert len(allowed.actions) == 12


def test_guard_lets_small_deletes_through() -> None:
    many = {str(i): record(appt(str(i), hours=i)) for i in range(10)}
    gone = {str(i): Deleted("shop", str(i)) for i in range(4)}  # below delete_guard_min
    result = plan(ONE_WAY, many, ProviderView(gone, window=WINDOW), {}, fake_hash, 10)
    assert not result.refused


def test_guard_refuses_when_the_provider_comes_back_empty() -> None:
    records = {"1": record(appt())}
    empty = ProviderView({}, complete=True, window=WINDOW)
    result = plan(ONE_WAY, records, empty, {}, fake_hash, total_links=1)
    assert "no appointments" in result.refused
    assert not result.actions


def test_guard_refuses_when_a_calendar_comes_back_empty() -> None:
    records = {"1": record(appt())}
    result = plan(
        ONE_WAY,
        records,
        ProviderView(),
        {"cal": CalendarView({}, complete=True)},
        fake_hash,
        total_links=1,
    )
    assert "calendar cal" in result.refused


class CountingRecords(Mapping[str, Record]):
    """Fails the test if plan() walks all records when only a few were named."""

    def __init__(self, inner: dict[str, Record]) -> None:
        self.inner = inner

    def __getitem__(self, key: str) -> Record:
        return self.inner[key]

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("plan() iterated every record on an incremental cycle")

    def __len__(self) -> int:
        return len(self.inner)


def test_incremental_plan_touches_only_named_records_and_is_deterministic() -> None:
    records = CountingRecords({str(i): record(appt(str(i), hours=i)) for i in range(50)})
    changed = appt("7", hours=7, notes="new")
    first = plan(ONE_WAY, records, ProviderView({"7": changed}, window=WINDOW), {}, fake_hash, 50)
    again = plan(ONE_WAY, records, ProviderView({"7": changed}, window=WINDOW), {}, fake_hash, 50)
    assert first.actions == again.actions
    assert {a.native_id for a in first.actions} == {"7"}
