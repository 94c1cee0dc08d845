"""The OnlineAfspraken provider on its sandbox: pulls, cursors, bad data, DST, request counts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from structlog.testing import capture_logs

from syncd.errors import BadItem, ConfigError, RateLimited, TokenExpired, TransientError
from syncd.model import Appointment, Deleted, Status
from syncd.providers.base import Pull, Window
from syncd.providers.onlineafspraken import OnlineAfsprakenProvider
from syncd.sandbox.onlineafspraken import create_app
from syncd.sandbox.onlineafspraken_state import ManualClock, SandboxState

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
    """Providers on the sandbox; every one shares the sandbox, each its own caches."""
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


def found(pull: Pull) -> dict[str, Appointment]:
    return {i.native_id: i for i in pull.items if isinstance(i, Appointment)}


def bad(pull: Pull) -> dict[str, str]:
    return {i.item: i.field for i in pull.items if isinstance(i, BadItem)}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2031, 3, day, hour, minute)


# -- pulls -----------------------------------------------------------------------------------


async def test_a_first_pull_is_complete_across_pages(make: Make, state: SandboxState) -> None:
    booked = state.seed(45, seed=2)
    provider = make(page_size=10)
    pull = await provider.pull(AGENDA, None, MONTH)
    assert pull.complete
    assert pull.window == MONTH
    assert set(found(pull)) == {str(b.id) for b in booked}
    assert pull.requests == 5 + 2  # five pages, one list each of type and resource names
    assert state.requests == {"getAppointments": 5, "getAppointmentTypes": 1, "getResources": 1}


async def test_an_idle_incremental_pull_is_one_request(
    provider: OnlineAfsprakenProvider, state: SandboxState, clock: ManualClock
) -> None:
    state.seed(200, seed=3)
    cursor = (await provider.pull(AGENDA, None, MONTH)).cursor
    for _ in range(3):
        clock.advance(60)
        state.requests.clear()
        idle = await provider.pull(AGENDA, cursor, MONTH)
        assert (idle.items, idle.requests, dict(state.requests)) == ([], 1, {"getAppointments": 1})
        cursor = idle.cursor


async def test_incremental_pulls_report_what_the_business_did(
    provider: OnlineAfsprakenProvider, state: SandboxState, clock: ManualClock
) -> None:
    moved, cancelled, deleted, purged, kept = (state.book(at(3, h)) for h in range(10, 15))
    cursor = (await provider.pull(AGENDA, None, MONTH)).cursor
    clock.advance(600)
    state.move(moved.id, at(4, 11))
    state.cancel(cancelled.id)
    state.mark_deleted(deleted.id)
    state.remove(purged.id)
    new = state.book(at(5, 9))
    pull = await provider.pull(AGENDA, cursor, MONTH)
    assert not pull.complete
    items = found(pull)
    assert set(items) == {str(moved.id), str(cancelled.id), str(new.id)}
    assert items[str(moved.id)].start == datetime(2031, 3, 4, 11, tzinfo=AMS)
    assert items[str(cancelled.id)].status is Status.CANCELLED
    assert Deleted("oa", str(deleted.id)) in pull.items
    assert str(kept.id) not in items
    scan = await provider.scan(AGENDA, MONTH)
    assert scan.complete
    assert str(purged.id) not in found(scan)  # a hard delete shows only as an absence
    assert str(kept.id) in found(scan)


async def test_the_overlap_never_reports_a_version_twice(
    provider: OnlineAfsprakenProvider, state: SandboxState, clock: ManualClock
) -> None:
    booking = state.book(at(3, 10))
    cursor = (await provider.pull(AGENDA, None, MONTH)).cursor
    clock.advance(30)  # inside the two-minute overlap: the server will send it again
    state.move(booking.id, at(3, 11))
    first = await provider.pull(AGENDA, cursor, MONTH)
    assert list(found(first)) == [str(booking.id)]
    again = await provider.pull(AGENDA, first.cursor, MONTH)
    assert again.items == []
    assert again.cursor == first.cursor


async def test_after_a_bulk_change_the_watermark_catches_up_and_idles_at_one_request(
    make: Make, state: SandboxState, clock: ManualClock
) -> None:
    provider = make(page_size=100)
    state.seed(250, seed=8)  # all stamped this second: more than two pages in the overlap
    first = await provider.pull(AGENDA, None, MONTH)
    assert first.cursor["updated_after"] == "2031-03-01 08:58:00"
    clock.advance(30)
    state.requests.clear()
    echo = await provider.pull(AGENDA, first.cursor, MONTH)
    assert (echo.items, state.requests["getAppointments"]) == ([], 3)  # re-sent, not reported
    clock.advance(120)  # the server is now an overlap past the bulk change
    settled = await provider.pull(AGENDA, echo.cursor, MONTH)
    assert settled.cursor == {"updated_after": "2031-03-01 09:00:00", "seen": ""}
    state.requests.clear()
    idle = await provider.pull(AGENDA, settled.cursor, MONTH)
    assert (idle.items, idle.requests, idle.cursor) == ([], 1, settled.cursor)


async def test_a_cursor_never_runs_ahead_of_the_server(
    provider: OnlineAfsprakenProvider, state: SandboxState, clock: ManualClock
) -> None:
    state.book(at(3, 10))
    state.faults.skew = -3600  # the server's clock is an hour behind ours
    pull = await provider.pull(AGENDA, None, MONTH)
    assert pull.cursor["updated_after"] == "2031-03-01 07:58:00"
    state.faults.skew = -7200  # and then goes back another hour
    with pytest.raises(TokenExpired, match="after the server"):
        await provider.pull(AGENDA, pull.cursor, MONTH)


@pytest.mark.parametrize(
    "cursor",
    [{}, {"updated_after": "yesterday"}, {"updated_after": "2031-03-01 09:00:00", "seen": "1:2:3"}],
)
async def test_an_unreadable_cursor_expires(
    provider: OnlineAfsprakenProvider, cursor: dict[str, str]
) -> None:
    with pytest.raises(TokenExpired):
        await provider.pull(AGENDA, cursor, MONTH)


async def test_new_bookings_without_an_update_time_need_watch_created(
    make: Make, state: SandboxState, clock: ManualClock
) -> None:
    state.stamp_update_on_create = False
    plain, watching = make(), make(watch_created=True)
    state.book(at(3, 9))  # the names of this one are cached by the first pulls
    cursor = (await plain.pull(AGENDA, None, MONTH)).cursor
    await watching.pull(AGENDA, None, MONTH)
    clock.advance(600)
    new = state.book(at(3, 10))
    assert found(await plain.pull(AGENDA, cursor, MONTH)) == {}
    state.requests.clear()
    pull = await watching.pull(AGENDA, cursor, MONTH)
    assert list(found(pull)) == [str(new.id)]
    assert (pull.requests, state.requests["getAppointments"]) == (2, 2)


async def test_the_repeated_autumn_hour_loses_no_change(
    provider: OnlineAfsprakenProvider, state: SandboxState, clock: ManualClock
) -> None:
    autumn = Window(datetime(2031, 10, 25, tzinfo=AMS), datetime(2031, 11, 5, tzinfo=AMS))
    clock.set(datetime(2031, 10, 26, 0, 40, tzinfo=UTC))  # 02:40 summer time, first run
    first = state.book(datetime(2031, 10, 28, 10))
    cursor = (await provider.pull(AGENDA, None, autumn)).cursor
    assert cursor["updated_after"] <= "2031-10-26 01:58:00"  # held before the repeated hour
    clock.set(datetime(2031, 10, 26, 1, 10, tzinfo=UTC))  # 02:10 winter time, second run
    second = state.book(datetime(2031, 10, 28, 11))
    assert second.updated is not None
    assert second.updated < first.created  # stamped "earlier" than the first one
    pull = await provider.pull(AGENDA, cursor, autumn)
    assert list(found(pull)) == [str(second.id)]
    clock.set(datetime(2031, 10, 26, 3, 0, tzinfo=UTC))  # 04:00 winter time: the hour is over
    state.move(second.id, datetime(2031, 10, 28, 12))
    later = await provider.pull(AGENDA, pull.cursor, autumn)
    assert list(found(later)) == [str(second.id)]
    assert later.cursor["updated_after"] == "2031-10-26 03:58:00"


# -- bad data ----------------------------------------------------------------------------------


async def test_each_kind_of_bad_data_is_a_named_bad_item_and_the_rest_arrives(
    make: Make, state: SandboxState, clock: ManualClock
) -> None:
    booked = [state.book(at(3, 9) + timedelta(hours=h)) for h in range(7)]
    provider = make(page_size=3)
    cursor = (await provider.pull(AGENDA, None, MONTH)).cursor
    clock.advance(600)
    broken, unknown, missing, impossible, label, good, moved = booked
    state.break_xml(broken.id)
    state.corrupt(unknown.id, "Status", "7")
    state.corrupt(missing.id, "StartTime", None)
    state.corrupt(impossible.id, "FinishTime", "2031-02-30 10:00:00")
    state.corrupt(label.id, "Label", "")  # no label at all is fine: confirmed
    state.move(moved.id, at(6, 9))
    wanted = {
        str(broken.id): "xml",
        str(unknown.id): "Status",
        str(missing.id): "StartTime",
        str(impossible.id): "FinishTime",
    }
    with capture_logs() as logs:
        incremental = await provider.pull(AGENDA, cursor, MONTH)
    assert bad(incremental) == wanted
    assert set(found(incremental)) == {str(label.id), str(moved.id)}
    warned = {
        (log["item"], log["field"]) for log in logs if log["event"] == "onlineafspraken.bad_item"
    }
    assert warned == set(wanted.items())
    full = await make(page_size=3).pull(AGENDA, None, MONTH)
    assert bad(full) == wanted
    assert set(found(full)) == {str(b.id) for b in (label, good, moved)}


async def test_a_listing_with_an_item_it_cannot_name_proves_no_absence(
    provider: OnlineAfsprakenProvider, state: SandboxState
) -> None:
    named, nameless = state.book(at(3, 9)), state.book(at(3, 10))
    assert (await provider.pull(AGENDA, None, MONTH)).complete
    state.corrupt(nameless.id, "Id", None)
    with capture_logs() as logs:
        scan = await provider.scan(AGENDA, MONTH)
    assert bad(scan) == {"#1": "Id"}
    assert set(found(scan)) == {str(named.id)}
    assert not scan.complete, "the nameless item may be any linked appointment"
    events = [log["event"] for log in logs]
    assert "onlineafspraken.listing_incomplete" in events


async def test_get_raises_a_bad_item_and_returns_none_for_what_is_gone(
    provider: OnlineAfsprakenProvider, state: SandboxState
) -> None:
    good, broken, soft, hard = (state.book(at(3, h)) for h in (9, 10, 11, 12))
    state.corrupt(broken.id, "StartTime", "2031-03-03 25:00:00")
    state.mark_deleted(soft.id)
    state.remove(hard.id)
    appointment = await provider.get(str(good.id))
    assert appointment is not None
    assert appointment.title == "Knippen - Jan Jansen"
    with pytest.raises(BadItem) as raised:
        await provider.get(str(broken.id))
    assert (raised.value.item, raised.value.field) == (str(broken.id), "StartTime")
    assert await provider.get(str(soft.id)) is None
    assert await provider.get(str(hard.id)) is None


async def test_get_names_broken_xml_and_hides_busy_placeholders(
    provider: OnlineAfsprakenProvider, state: SandboxState
) -> None:
    broken = state.break_xml(state.book(at(3, 9)).id)
    with pytest.raises(BadItem) as raised:
        await provider.get(str(broken.id))
    assert (raised.value.item, raised.value.field) == (str(broken.id), "xml")
    placeholder = state.book(at(3, 10), type_id=90, customer=90)
    assert await provider.get(str(placeholder.id)) is None


async def test_a_truncated_reply_fails_the_pull_whole(
    provider: OnlineAfsprakenProvider, state: SandboxState
) -> None:
    state.seed(20, seed=1)
    state.faults.truncated = 1
    with capture_logs() as logs, pytest.raises(TransientError):
        await provider.pull(AGENDA, None, MONTH)
    [warning] = [log for log in logs if log["event"] == "onlineafspraken.unreadable_reply"]
    assert (warning["log_level"], warning["method"]) == ("warning", "getAppointments")
    assert "not well-formed" in warning["reason"]
    state.faults.rate_limited, state.faults.retry_after = 1, 45
    with pytest.raises(RateLimited) as raised:
        await provider.pull(AGENDA, None, MONTH)
    assert raised.value.retry_after == 45
    assert len(found(await provider.pull(AGENDA, None, MONTH))) == 20


# -- scopes, names, privacy --------------------------------------------------------------------


async def test_scopes_filter_by_agenda_resource_and_type(
    provider: OnlineAfsprakenProvider, state: SandboxState
) -> None:
    wanted = state.book(at(3, 9), agenda=2, resources=[3], type_id=2)
    state.book(at(3, 10), agenda=2, resources=[2], type_id=2)
    state.book(at(3, 11), agenda=2, resources=[3], type_id=1)
    state.book(at(3, 12), agenda=1, resources=[3], type_id=2)
    scope = {"agenda": "2", "resource": "3", "appointment_type": "2"}
    pull = await provider.pull(scope, None, MONTH)
    assert list(found(pull)) == [str(wanted.id)]
    assert found(pull)[str(wanted.id)].resource == "Chris"


async def test_every_resources_shape_is_read(
    provider: OnlineAfsprakenProvider, state: SandboxState
) -> None:
    shapes = ("assigned", "plain", "flat")
    booked = [state.book(at(3, 9 + n), resources=[2]) for n in range(len(shapes) + 1)]
    for booking, shape in zip(booked, shapes, strict=False):
        booking.resources_shape = shape
    state.corrupt(booked[-1].id, "Resources", None)  # no resources at all
    resources = {
        a.native_id: a.resource for a in found(await provider.pull(AGENDA, None, MONTH)).values()
    }
    assert resources == {str(b.id): "Bram" for b in booked[:-1]} | {str(booked[-1].id): ""}


@pytest.mark.parametrize(
    ("scope", "problems"),
    [
        ({}, ["scope.agenda: required"]),
        ({"agenda": "x", "staff": "anna"}, ["scope.staff: unknown key", "scope.agenda: must be"]),
    ],
)
async def test_a_bad_scope_is_a_config_error_listing_every_problem(
    provider: OnlineAfsprakenProvider, scope: dict[str, str], problems: list[str]
) -> None:
    with pytest.raises(ConfigError) as raised:
        await provider.pull(scope, None, MONTH)
    assert len(raised.value.problems) == len(problems)
    for problem, wanted in zip(raised.value.problems, problems, strict=True):
        assert problem.startswith(wanted)


async def test_names_are_looked_up_once_and_privacy_keeps_client_data_out(
    make: Make, state: SandboxState
) -> None:
    first = state.book(at(3, 9), customer=4, description="allergisch")
    second = state.book(at(3, 10), customer=4, type_id=2)
    for booking in (first, second):
        state.corrupt(booking.id, "CustomerName", "")  # this account sends no names
    provider = make(title_template="{type} ({customer_short})")
    pull = await provider.pull(AGENDA, None, MONTH)
    titles = {a.title for a in found(pull).values()}
    assert titles == {"Knippen (S. Bakker)", "Kleuren (S. Bakker)"}
    assert state.requests["getCustomer"] == 1
    private = await make(private=True).pull(AGENDA, None, MONTH)
    shown = found(private)[str(first.id)]
    assert (shown.title, shown.customer, shown.notes) == ("Knippen", "", "")
    assert state.requests["getCustomer"] == 1


async def test_bad_options_are_config_errors(make: Make) -> None:
    with pytest.raises(ConfigError, match="title_template"):
        make(title_template="{client}")
    with pytest.raises(ConfigError, match="confirmations"):
        make(confirmations=4)


async def test_check_is_one_authenticated_call(
    provider: OnlineAfsprakenProvider, state: SandboxState
) -> None:
    await provider.check()
    assert state.requests == {"getAgendas": 1}
