"""The memory backends against both contracts, then what only the memory backends promise."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.calendars.memory import _FOLD, _UID, MemoryCalendar, uid_of
from syncd.errors import (
    AlreadyExists,
    AuthError,
    BadItem,
    RateLimited,
    Refused,
    TokenExpired,
    TransientError,
)
from syncd.faults import Faults
from syncd.model import Appointment, BusyBlock, Status
from syncd.providers.base import Scope, Window
from syncd.providers.memory import MemoryProvider
from tests.contract.calendar_contract import CalendarContract, event
from tests.contract.provider_contract import Business, ProviderContract, appointments

AMS = ZoneInfo("Europe/Amsterdam")
T0 = datetime(2031, 3, 3, 9, 0, tzinfo=AMS)
WEEK = Window(T0 - timedelta(days=1), T0 + timedelta(days=7))
pytestmark = pytest.mark.anyio


@dataclass
class MemoryBusiness:
    provider: MemoryProvider

    async def book(self, scope: Scope, start: datetime, end: datetime, title: str) -> str:
        staff, resource = scope.get("staff", ""), scope.get("resource", "")
        booked = self.provider.book(start, end, title=title, staff=staff, resource=resource)
        return booked.native_id

    async def reschedule(self, native_id: str, start: datetime, end: datetime) -> None:
        self.provider.reschedule(native_id, start, end)

    async def cancel(self, native_id: str) -> None:
        self.provider.cancel_by_business(native_id)

    async def delete(self, native_id: str) -> None:
        self.provider.hard_delete(native_id)


class TestMemoryProvider(ProviderContract):
    @pytest.fixture
    def provider(self) -> MemoryProvider:
        return MemoryProvider("memory", now=lambda: T0)

    @pytest.fixture
    def business(self, provider: MemoryProvider) -> Business:
        return MemoryBusiness(provider)


class TestMemoryProviderForOneStaffMember(TestMemoryProvider):
    @pytest.fixture
    def scope(self) -> Scope:
        return {"staff": "anna"}


class TestMemoryCalendar(CalendarContract):
    @pytest.fixture
    def calendar(self) -> MemoryCalendar:
        return MemoryCalendar("memory")


def at(hours: float) -> tuple[datetime, datetime]:
    start = T0 + timedelta(hours=hours)
    return start, start + timedelta(minutes=30)


# -- the memory provider ---------------------------------------------------------------------


async def test_first_pull_keeps_to_the_window_and_later_pulls_ignore_it() -> None:
    provider = MemoryProvider()
    inside = provider.book(*at(1))
    outside = provider.book(*at(24 * 30))
    first = await provider.pull({}, None, WEEK)
    assert list(appointments(first)) == [inside.native_id]
    assert first.cursor == {"seq": "2"}
    provider.reschedule(outside.native_id, *at(24 * 31))
    later = await provider.pull({}, first.cursor, WEEK)
    assert list(appointments(later)) == [outside.native_id]


async def test_scope_filters_staff_and_resource() -> None:
    provider = MemoryProvider()
    wanted = provider.book(*at(1), staff="anna", resource="room 1")
    provider.book(*at(2), staff="anna", resource="room 2")
    provider.book(*at(3), staff="bram", resource="room 1")
    scope = {"staff": "anna", "resource": "room 1", "agenda": "ignored"}
    assert list(appointments(await provider.scan(scope, WEEK))) == [wanted.native_id]
    assert len(appointments(await provider.scan({"staff": "anna"}, WEEK))) == 2


async def test_hard_delete_is_seen_by_scan_only() -> None:
    provider = MemoryProvider()
    gone = provider.book(*at(1))
    cursor = (await provider.pull({}, None, WEEK)).cursor
    provider.hard_delete(gone.native_id)
    assert (await provider.pull({}, cursor, WEEK)).items == []
    assert (await provider.scan({}, WEEK)).items == []
    assert await provider.get(gone.native_id) is None


@pytest.mark.parametrize("cursor", [{}, {"seq": "x"}, {"seq": "-1"}, {"seq": "99"}])
async def test_unreadable_or_future_cursors_are_expired(cursor: dict[str, str]) -> None:
    provider = MemoryProvider()
    provider.book(*at(1))
    with pytest.raises(TokenExpired):
        await provider.pull({}, cursor, WEEK)


async def test_expire_cursors_rejects_only_older_cursors() -> None:
    provider = MemoryProvider()
    provider.book(*at(1))
    old = (await provider.pull({}, None, WEEK)).cursor
    provider.expire_cursors()
    with pytest.raises(TokenExpired):
        await provider.pull({}, old, WEEK)
    fresh = (await provider.pull({}, None, WEEK)).cursor
    assert (await provider.pull({}, fresh, WEEK)).items == []


async def test_cursors_older_than_the_history_expire() -> None:
    provider = MemoryProvider(history=2)
    booked = provider.book(*at(1))
    cursor = (await provider.pull({}, None, WEEK)).cursor
    provider.edit(booked.native_id, title="one")
    provider.edit(booked.native_id, title="two")
    assert len((await provider.pull({}, cursor, WEEK)).items) == 1
    provider.edit(booked.native_id, title="three")
    with pytest.raises(TokenExpired):
        await provider.pull({}, cursor, WEEK)


async def test_a_repeated_move_changes_nothing_and_answers_in_the_provider_zone() -> None:
    clock = [T0]
    provider = MemoryProvider(now=lambda: clock[0])
    booked = provider.book(*at(1))
    clock[0] = T0 + timedelta(minutes=5)
    utc = ZoneInfo("UTC")
    moved = await provider.move(booked, *(t.astimezone(utc) for t in at(2)))
    assert (moved.start, moved.end, moved.updated) == (*at(2), clock[0])
    assert moved.start.tzinfo == AMS
    cursor = (await provider.pull({}, None, WEEK)).cursor
    clock[0] = T0 + timedelta(minutes=10)
    assert await provider.move(booked, *at(2)) == moved
    assert (await provider.pull({}, cursor, WEEK)).items == []


async def test_refused_writes_and_cancelled_appointments_raise_refused() -> None:
    provider = MemoryProvider()
    booked = provider.book(*at(1))
    provider.refuse_writes(booked.native_id, "outside opening hours")
    with pytest.raises(Refused, match="outside opening hours"):
        await provider.move(booked, *at(2))
    with pytest.raises(Refused):
        await provider.cancel(booked)
    provider.allow_writes(booked.native_id)
    cancelled = await provider.cancel(booked)
    assert cancelled.status is Status.CANCELLED
    with pytest.raises(Refused, match="cancelled"):
        await provider.move(cancelled, *at(2))


async def test_a_malformed_appointment_is_a_bad_item_and_the_rest_goes_on() -> None:
    provider = MemoryProvider()
    good, bad = provider.book(*at(1)), provider.book(*at(2))
    cursor = (await provider.pull({}, None, WEEK)).cursor
    provider.malformed(bad.native_id, "start", "impossible date")
    later = await provider.pull({}, cursor, WEEK)
    [item] = later.items
    assert isinstance(item, BadItem)
    assert (item.item, item.field, item.message) == (bad.native_id, "start", "impossible date")
    scan = await provider.scan({}, WEEK)
    assert list(appointments(scan)) == [good.native_id]
    assert [type(item) for item in scan.items] == [Appointment, BadItem]
    with pytest.raises(BadItem):
        await provider.get(bad.native_id)
    provider.repair(bad.native_id)
    assert list(appointments(await provider.pull({}, later.cursor, WEEK))) == [bad.native_id]


async def test_business_helpers_stamp_updated_and_keep_the_identity() -> None:
    clock = [T0]
    provider = MemoryProvider("shop", now=lambda: clock[0])
    booked = provider.book(*at(1), title="Intake", customer="Ada")
    assert (booked.account, booked.updated) == ("shop", T0)
    clock[0] = T0 + timedelta(hours=1)
    edited = provider.edit(booked.native_id, title="Consult")
    assert (edited.title, edited.customer, edited.updated) == ("Consult", "Ada", clock[0])
    assert provider.appointments() == {booked.native_id: edited}
    with pytest.raises(ValueError, match="native_id"):
        provider.edit(booked.native_id, native_id="other")
    with pytest.raises(ValueError, match="exists already"):
        provider.book(*at(2), native_id=booked.native_id)
    assert provider.cancel_by_business(booked.native_id).cancelled


async def test_busy_blocks_are_kept_per_scope_and_each_add_is_a_new_block() -> None:
    provider = MemoryProvider()
    block = BusyBlock("private", "uid-1", *at(3))
    first = await provider.add_busy({"staff": "anna"}, block)
    second = await provider.add_busy({"staff": "bram"}, block)
    assert first != second
    assert provider.busy_blocks({"staff": "anna"}) == {first: block}
    await provider.remove_busy({"staff": "anna"}, first)
    assert provider.busy_blocks() == {second: block}


def test_seed_is_reproducible_and_keeps_wall_clock_hours_across_dst() -> None:
    def seeded() -> list[Appointment]:
        provider = MemoryProvider(now=lambda: T0)
        return provider.seed(48 * 30, datetime(2031, 3, 20, tzinfo=AMS), rng_seed=7)

    first, again = seeded(), seeded()
    assert first == again
    assert len({a.native_id for a in first}) == 48 * 30
    assert {a.start.hour for a in first} == set(range(9, 17))
    offsets = {a.start.utcoffset() for a in first}
    assert offsets == {timedelta(hours=1), timedelta(hours=2)}  # 2031-03-30 is in the range


async def test_an_idle_incremental_pull_is_one_request() -> None:
    provider = MemoryProvider()
    provider.seed(100, T0)
    cursor = (await provider.pull({}, None, WEEK)).cursor
    provider.faults.reset_calls()
    idle = await provider.pull({}, cursor, WEEK)
    assert (idle.items, idle.requests, dict(provider.calls)) == ([], 1, {"pull": 1})


async def test_incremental_pulls_cost_the_changes_not_the_appointments() -> None:
    async def fastest_pulls(size: int) -> float:
        provider = MemoryProvider()
        provider.seed(size, T0)
        cursor = (await provider.pull({}, None, WEEK)).cursor
        runs = []
        for _ in range(5):  # the fastest of five runs: what the code costs, not the machine
            began = time.perf_counter()
            for _ in range(300):
                cursor = (await provider.pull({}, cursor, WEEK)).cursor
            runs.append(time.perf_counter() - began)
        return min(runs)

    small, large = await fastest_pulls(10), await fastest_pulls(10_000)
    # A pull that looked at every appointment would be some 30 times slower over 10,000.
    assert large < 4 * small, f"300 idle pulls: {small:.4f}s over 10, {large:.4f}s over 10,000"


async def test_scripted_provider_failures() -> None:
    provider = MemoryProvider()
    booked = provider.book(*at(1))
    provider.fail_next(2, lambda: RateLimited("memory", "slow down", retry_after=30), "pull")
    for _ in range(2):
        with pytest.raises(RateLimited) as raised:
            await provider.pull({}, None, WEEK)
        assert raised.value.retry_after == 30
    assert await provider.get(booked.native_id) == booked
    assert len((await provider.pull({}, None, WEEK)).items) == 1
    assert provider.calls == {"pull": 3, "get": 1}


async def test_a_lost_response_still_changed_the_provider() -> None:
    provider = MemoryProvider()
    booked = provider.book(*at(1))
    provider.fail_next(1, lambda: TransientError("memory", "reset"), "move", after=True)
    with pytest.raises(TransientError):
        await provider.move(booked, *at(2))
    now = await provider.get(booked.native_id)
    assert now is not None
    assert now.start == at(2)[0]
    assert provider.faults.pending() == 0


# -- the memory calendar ---------------------------------------------------------------------


async def test_hrefs_come_from_the_uid_and_every_write_gets_a_fresh_etag() -> None:
    calendar = MemoryCalendar()
    text = event("abc", "x", T0)
    ref = await calendar.create("abc", text)
    assert ref.href == "abc.ics"
    again = await calendar.update(ref.href, text, ref.etag)
    assert again.etag != ref.etag
    assert calendar.items() == {"abc.ics": (again.etag, text)}


async def test_an_item_created_and_deleted_since_the_token_is_reported_deleted() -> None:
    calendar = MemoryCalendar()
    token = (await calendar.changes(None)).token
    ref = await calendar.create("brief", event("brief", "x", T0))
    await calendar.delete(ref.href, ref.etag)
    changes = await calendar.changes(token)
    assert (list(changes.changed), list(changes.deleted)) == ([], [ref.href])


async def test_tokens_expire_and_belong_to_their_collection() -> None:
    calendar, other = MemoryCalendar("a"), MemoryCalendar("b")
    old = (await calendar.changes(None)).token
    assert old is not None
    for bad in ((await other.changes(None)).token, "garbage", old + "9"):
        with pytest.raises(TokenExpired):
            await calendar.changes(bad)
    calendar.expire_tokens()
    with pytest.raises(TokenExpired):
        await calendar.changes(old)
    assert (await calendar.changes((await calendar.changes(None)).token)).changed == []


async def test_user_edits_show_up_as_changes() -> None:
    calendar = MemoryCalendar()
    ref = await calendar.create("mine", event("mine", "syncd wrote this", T0))
    token = (await calendar.changes(None)).token
    theirs = calendar.user_put(ref.href, event("mine", "moved by hand", T0))
    added = calendar.user_create(event("private", "dentist", T0))
    assert added != "private.ics"
    calendar.user_delete("never-there.ics")
    changes = await calendar.changes(token)
    assert [item.href for item in changes.changed] == [ref.href, added]
    assert changes.changed[0].etag == theirs
    calendar.user_delete(added)
    assert list((await calendar.changes(token)).deleted) == [added]


async def test_a_uid_held_at_another_href_blocks_create_and_names_that_href() -> None:
    calendar = MemoryCalendar()
    href = calendar.user_create(event("shared", "from a phone", T0))
    with pytest.raises(AlreadyExists) as raised:
        await calendar.create("shared", event("shared", "from syncd", T0))
    assert raised.value.href == href
    calendar.user_delete(href)
    assert (await calendar.create("shared", event("shared", "now free", T0))).href == "shared.ics"


async def test_items_between_reads_dates_floating_times_durations_and_keeps_bad_items() -> None:
    calendar = MemoryCalendar()
    window = Window(datetime(2031, 3, 3, tzinfo=ZoneInfo("UTC")), datetime(2031, 3, 4, tzinfo=AMS))

    def raw(uid: str, *lines: str) -> str:
        body = "\r\n".join(["BEGIN:VEVENT", f"UID:{uid}", *lines, "END:VEVENT"])
        return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{body}\r\nEND:VCALENDAR\r\n"

    wanted = {
        calendar.user_put("day.ics", raw("day", "DTSTART;VALUE=DATE:20310303")),
        calendar.user_put("float.ics", raw("float", "DTSTART:20310303T223000", "DURATION:PT2H")),
        calendar.user_put("broken.ics", "BEGIN:VCALENDAR\r\nthis is not ical\r\n"),
    }
    calendar.user_put("before.ics", raw("before", "DTSTART;VALUE=DATE:20310302"))
    calendar.user_put("bare.ics", raw("bare", "DTSTART:20310304T000000Z"))
    found = {item.etag for item in await calendar.items_between(window)}
    assert found == wanted


async def test_a_lost_create_is_adopted_on_replay_and_idle_changes_is_one_request() -> None:
    calendar = MemoryCalendar()
    calendar.fail_next(1, TransientError("memory", "connection reset"), "create", after=True)
    with pytest.raises(TransientError):
        await calendar.create("lost", event("lost", "x", T0))
    with pytest.raises(AlreadyExists) as raised:
        await calendar.create("lost", event("lost", "x", T0))
    assert raised.value.href == "lost.ics"
    token = (await calendar.changes(None)).token
    calendar.faults.reset_calls()
    idle = await calendar.changes(token)
    assert (idle.requests, dict(calendar.calls)) == (1, {"changes": 1})


# -- the fault script itself -----------------------------------------------------------------


async def test_faults_fire_in_order_per_method_and_can_be_cleared() -> None:
    faults = Faults()
    faults.fail_next(1, lambda: AuthError("x", "401"), "get")
    faults.fail_next(1, lambda: TransientError("x", "503"))
    with pytest.raises(TransientError):  # the first plan is for `get` only
        async with faults.request("pull"):
            pass
    with pytest.raises(AuthError):
        async with faults.request("get"):
            pass
    faults.fail_next(3, TransientError("x", "503"))
    assert faults.pending() == 3
    faults.clear()
    async with faults.request("get"):
        pass
    assert (faults.calls["get"], faults.total) == (2, 3)
    with pytest.raises(ValueError, match="at least 1"):
        faults.fail_next(0, TransientError("x", "503"))


# uid_of reads the raw text first and unfolds only when a fold could matter; it must give
# what unfolding everything first gives, on any mix of the lines that make that tricky.
_PIECES = st.sampled_from(
    [
        "BEGIN:VEVENT\r\n",
        "UID:a1\r\n",
        "UID;X-P=1:b2\r\n",
        "UID:c3\n",
        "UID:d\r4\r\n",
        "UI\r\n D:folded-name\r\n",
        "UID:long-\r\n part\r\n",
        "UID:tab-\n\tpart\n",
        "SUMMARY:x\r\n continued\r\n",
        "DESCRIPTION:has UID:inside\r\n",
        " UID:after-space\r\n",
        "\r\n",
        "UID;BAD\r\n:x\r\n",
        "UID:",
    ]
)


@given(st.lists(_PIECES, max_size=8).map("".join))
@settings(max_examples=300, deadline=None)
def test_uid_of_equals_reading_the_unfolded_text(ics: str) -> None:
    found = _UID.search(_FOLD.sub("", ics))
    assert uid_of(ics) == (found.group(1).strip() if found else None)
