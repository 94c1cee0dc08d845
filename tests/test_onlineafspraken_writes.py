"""Write-back to OnlineAfspraken on its sandbox: moves, cancels, busy and opening blocks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from syncd.errors import BadItem, ConfigError, NotFound, Refused
from syncd.model import Appointment, BusyBlock, Status
from syncd.providers.base import Window
from syncd.providers.oa_blocks import day_segments
from syncd.providers.oa_envelope import ApiRefused
from syncd.providers.onlineafspraken import OnlineAfsprakenProvider
from syncd.sandbox.onlineafspraken import create_app
from syncd.sandbox.onlineafspraken_state import Booking, ManualClock, SandboxState

pytestmark = pytest.mark.anyio
AMS = ZoneInfo("Europe/Amsterdam")
AGENDA = {"agenda": "1"}
T0 = datetime(2031, 3, 1, 9, 0, tzinfo=AMS)
MONTH = Window(T0 - timedelta(days=1), T0 + timedelta(days=30))

Make = Callable[..., OnlineAfsprakenProvider]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def state(clock: ManualClock) -> SandboxState:
    return SandboxState(api_key="key", api_secret="secret", clock=clock)


@pytest.fixture
async def make(state: SandboxState, clock: ManualClock) -> AsyncIterator[Make]:
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport) as http:

        def make(**options: Any) -> OnlineAfsprakenProvider:
            defaults: dict[str, Any] = {"client": http, "now": clock}
            options = defaults | {"busy_appointment_type": "90"} | options
            options.setdefault("busy_customer", "90")
            return OnlineAfsprakenProvider(
                "oa", "http://sandbox/APIREST", "key", "secret", **options
            )

        yield make


@pytest.fixture
def provider(make: Make) -> OnlineAfsprakenProvider:
    return make()


def aware(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2031, month, day, hour, minute, tzinfo=AMS)


async def current(provider: OnlineAfsprakenProvider, booking: Booking) -> Appointment:
    appointment = await provider.get(str(booking.id))
    assert appointment is not None
    return appointment


# -- moves -------------------------------------------------------------------------------------


async def test_a_move_keeps_type_resource_and_customer_and_repeating_it_is_free(
    provider: OnlineAfsprakenProvider, state: SandboxState
) -> None:
    booking = state.book(aware(3, 10), 30, type_id=2, resources=[3], customer=7)
    before = await current(provider, booking)
    state.requests.clear()
    moved = await provider.move(before, aware(4, 14), aware(4, 14, 45))
    assert (moved.start, moved.end) == (aware(4, 14), aware(4, 14, 45))
    assert (booking.type_id, booking.resource_ids, booking.customer_id) == (2, [3], 7)
    assert (booking.start, booking.finish) == (
        datetime(2031, 3, 4, 14),
        datetime(2031, 3, 4, 14, 45),
    )
    assert state.requests["setAppointment"] == 1
    again = await provider.move(before, aware(4, 14), aware(4, 14, 45))
    assert again == moved
    assert state.requests["setAppointment"] == 1  # the re-read saw it done: nothing sent


async def test_a_move_across_the_dst_change_writes_local_wall_time(
    provider: OnlineAfsprakenProvider, state: SandboxState
) -> None:
    booking = state.book(aware(28, 10), 60)  # Friday before the spring change, +01:00
    before = await current(provider, booking)
    target = aware(31, 10)  # Monday after it, +02:00; given in UTC to be sure of the conversion
    moved = await provider.move(
        before, target.astimezone(UTC), (target + timedelta(hours=1)).astimezone(UTC)
    )
    assert booking.start == datetime(2031, 3, 31, 10)
    assert moved.start == target
    assert moved.start.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize(
    ("start", "end", "reason"),
    [
        (aware(4, 10, 0), aware(4, 10, 0), "end after"),
        (aware(4, 10, 0) + timedelta(seconds=30), aware(4, 11), "whole minutes"),
        (aware(4, 23), aware(5, 1), "midnight"),
        (
            datetime(2031, 10, 26, 1, 30, tzinfo=UTC),
            datetime(2031, 10, 26, 1, 50, tzinfo=UTC),
            "second run",
        ),
    ],
)
async def test_a_time_the_api_cannot_express_is_refused_before_sending(
    provider: OnlineAfsprakenProvider,
    state: SandboxState,
    start: datetime,
    end: datetime,
    reason: str,
) -> None:
    before = await current(provider, state.book(aware(3, 10)))
    with pytest.raises(Refused, match=reason):
        await provider.move(before, start, end)
    assert state.requests["setAppointment"] == 0


@pytest.mark.parametrize(
    ("start", "code", "why"),
    [
        (aware(2, 10), "R01", "not bookable"),  # a Sunday
        (aware(4, 20), "R01", "not bookable"),  # after closing time
        (aware(4, 12), "R02", "no free time slot"),  # taken by another booking of Anna's
    ],
)
async def test_the_providers_refusal_is_refused_with_its_message(
    provider: OnlineAfsprakenProvider, state: SandboxState, start: datetime, code: str, why: str
) -> None:
    booking = state.book(aware(3, 10))
    state.book(aware(4, 12), 60, resources=[1])
    before = await current(provider, booking)
    with pytest.raises(Refused, match=why) as raised:
        await provider.move(before, start, start + timedelta(minutes=30))
    assert isinstance(raised.value, ApiRefused)
    assert raised.value.code == code
    assert booking.start == datetime(2031, 3, 3, 10)


async def test_moving_a_cancelled_or_vanished_appointment(
    provider: OnlineAfsprakenProvider, state: SandboxState
) -> None:
    cancelled, vanished = state.book(aware(3, 10)), state.book(aware(3, 11))
    stale = await current(provider, vanished)
    state.cancel(cancelled.id)
    with pytest.raises(Refused, match="cancelled"):
        await provider.move(await current(provider, cancelled), aware(4, 10), aware(4, 11))
    state.remove(vanished.id)
    with pytest.raises(NotFound):
        await provider.move(stale, aware(4, 10), aware(4, 11))
    assert state.requests["setAppointment"] == 0


async def test_after_a_restart_the_agenda_of_an_appointment_is_found(
    make: Make, state: SandboxState
) -> None:
    booking = state.book(aware(3, 10), agenda=2)
    fresh = make()  # knows nothing: no listing has taught it the agenda
    before = await current(fresh, booking)
    await fresh.move(before, aware(4, 10), aware(4, 10, 30))
    assert booking.start == datetime(2031, 3, 4, 10)
    assert state.requests["getAgendas"] == 1
    taught = make()
    await taught.pull({"agenda": "2"}, None, MONTH)
    await taught.move(await current(taught, booking), aware(5, 10), aware(5, 10, 30))
    assert state.requests["getAgendas"] == 1  # the listing told it


# -- cancels -----------------------------------------------------------------------------------


async def test_a_cancel_is_company_mode_without_confirmations_and_idempotent(
    provider: OnlineAfsprakenProvider, state: SandboxState
) -> None:
    booking = state.book(aware(1, 12))  # three hours from now: too late for a customer
    before = await current(provider, booking)
    cancelled = await provider.cancel(before)
    assert cancelled.status is Status.CANCELLED
    assert (booking.label, booking.confirmations) == (4, "0")
    again = await provider.cancel(before)
    assert again == cancelled
    assert state.requests["cancelAppointment"] == 1


async def test_confirmations_and_remarks_are_configurable(make: Make, state: SandboxState) -> None:
    booking = state.book(aware(3, 10), description="eerste")
    provider = make(confirmations=3, cancel_remarks="geannuleerd via agenda")
    await provider.cancel(await current(provider, booking))
    assert booking.confirmations == "3"
    assert booking.description == "eerste\ngeannuleerd via agenda"


async def test_cancelling_what_is_gone_is_not_found(
    provider: OnlineAfsprakenProvider, state: SandboxState
) -> None:
    booking = state.book(aware(3, 10))
    before = await current(provider, booking)
    state.mark_deleted(booking.id)
    with pytest.raises(NotFound):
        await provider.cancel(before)


# -- busy blocks ---------------------------------------------------------------------------------


async def test_a_busy_block_is_a_placeholder_that_blocks_booking_and_is_never_pulled(
    provider: OnlineAfsprakenProvider, state: SandboxState
) -> None:
    block = BusyBlock("private", "dentist", aware(2, 10), aware(2, 11, 0) + timedelta(seconds=20))
    block_id = await provider.add_busy(AGENDA, block)  # on a Sunday: OverrideMode=1 allows it
    placeholder = state.appointments[int(block_id)]
    assert (placeholder.type_id, placeholder.customer_id, placeholder.resource_ids) == (90, 90, [])
    assert (placeholder.start, placeholder.finish) == (
        datetime(2031, 3, 2, 10),
        datetime(2031, 3, 2, 11, 1),
    )
    pulled = (await provider.pull(AGENDA, None, MONTH)).items
    assert block_id not in {i.item if isinstance(i, BadItem) else i.native_id for i in pulled}
    weekday = await provider.add_busy(
        AGENDA, BusyBlock("private", "lunch", aware(4, 12), aware(4, 13))
    )
    booking = state.book(aware(3, 10))
    with pytest.raises(Refused, match="no free time slot"):
        await provider.move(await current(provider, booking), aware(4, 12), aware(4, 12, 30))
    await provider.remove_busy(AGENDA, weekday)
    await provider.move(await current(provider, booking), aware(4, 12), aware(4, 12, 30))


async def test_adding_a_busy_block_again_adopts_the_placeholder(
    provider: OnlineAfsprakenProvider, state: SandboxState
) -> None:
    block = BusyBlock("private", "dentist", aware(4, 10), aware(4, 11))
    first = await provider.add_busy(AGENDA, block)
    again = await provider.add_busy(AGENDA, block)  # a replay after a crash
    assert again == first
    other = await provider.add_busy(AGENDA, BusyBlock("private", "gym", aware(4, 10), aware(4, 11)))
    assert other != first
    assert len(state.appointments) == 2


async def test_a_block_over_midnight_is_one_placeholder_per_day_and_removal_takes_all(
    provider: OnlineAfsprakenProvider, state: SandboxState
) -> None:
    block = BusyBlock("private", "night", aware(4, 22), aware(5, 2), recurrence_id="x")
    block_id = await provider.add_busy({"agenda": "1", "resource": "2"}, block)
    parts = [state.appointments[int(p)] for p in block_id.split("+")]
    assert [(p.start, p.finish, p.resource_ids) for p in parts] == [
        (datetime(2031, 3, 4, 22), datetime(2031, 3, 4, 23, 59), [2]),
        (datetime(2031, 3, 5, 0), datetime(2031, 3, 5, 2), [2]),
    ]
    await provider.remove_busy(AGENDA, block_id)
    await provider.remove_busy(AGENDA, block_id)  # gone already: fine
    assert state.appointments == {}


async def test_remove_busy_never_removes_a_real_booking(
    provider: OnlineAfsprakenProvider, state: SandboxState
) -> None:
    booking = state.book(aware(3, 10))
    with pytest.raises(Refused, match="not a busy placeholder"):
        await provider.remove_busy(AGENDA, str(booking.id))
    assert booking.id in state.appointments


async def test_busy_blocks_need_their_type_and_customer_configured(make: Make) -> None:
    provider = make(busy_appointment_type="", busy_customer="")
    with pytest.raises(ConfigError) as raised:
        await provider.add_busy(AGENDA, BusyBlock("p", "u", aware(4, 10), aware(4, 11)))
    assert [p.split(":")[0] for p in raised.value.problems] == [
        "busy_appointment_type",
        "busy_customer",
    ]


def test_day_segments_cover_whole_minutes_and_split_at_local_midnight() -> None:
    start = datetime(2031, 3, 29, 23, 0, 30, tzinfo=UTC)  # 00:00:30 on the 30th, +01:00
    segments = day_segments(start, start + timedelta(hours=26), AMS)
    assert [(str(day), begin, end) for day, begin, end in segments] == [
        ("2031-03-30", "00:00", "23:59"),  # a 23-hour day: the clocks went forward
        ("2031-03-31", "00:00", "03:01"),  # 03:00:30 summer time, widened to the minute
    ]


# -- opening-hours blocks ------------------------------------------------------------------------


async def test_an_opening_block_makes_a_closed_day_bookable_until_removed(
    provider: OnlineAfsprakenProvider, state: SandboxState
) -> None:
    booking = state.book(aware(3, 10))
    block_id = await provider.add_opening_block(AGENDA, aware(2, 9), aware(2, 12))
    assert state.blocks[int(block_id)].agenda_id == 1
    await provider.move(await current(provider, booking), aware(2, 10), aware(2, 10, 30))
    await provider.remove_opening_block(AGENDA, block_id)
    await provider.remove_opening_block(AGENDA, block_id)  # gone already: fine
    assert state.blocks == {}
    with pytest.raises(Refused, match="not bookable"):
        await provider.move(await current(provider, booking), aware(2, 11), aware(2, 11, 30))
