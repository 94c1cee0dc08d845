"""The Agendize provider on its sandbox: what it asks, tokens, scopes, writes, busy blocks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from syncd.calendars.memory import MemoryCalendar
from syncd.config import parse_config
from syncd.errors import (
    AuthError,
    BackendError,
    ConfigError,
    NotFound,
    Refused,
    TokenExpired,
    TransientError,
)
from syncd.model import Appointment, BusyBlock
from syncd.providers.ag_busy import wire_time
from syncd.providers.ag_client import ApiRefusal, Credentials
from syncd.providers.agendize import AgendizeProvider, from_config
from syncd.providers.base import Window
from syncd.reconcile.cycle import run_cycle
from syncd.sandbox.agendize import create_app
from syncd.sandbox.agendize_state import SandboxState
from syncd.sandbox.onlineafspraken_state import ManualClock
from syncd.state.store import Store
from tests.agendize_kit import World, Wrapped

pytestmark = pytest.mark.anyio
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2031, 3, 3, 8, 0, tzinfo=PARIS)  # a Monday
WINDOW = Window(NOW - timedelta(days=7), NOW + timedelta(days=30))


@dataclass
class Box:
    state: SandboxState
    clock: ManualClock
    http: httpx.AsyncClient
    sent: list[httpx.Request] = field(default_factory=list)

    def provider(self, **options: object) -> AgendizeProvider:
        creds = Credentials(api_key=self.state.api_key, token=self.state.token)
        return AgendizeProvider(
            "ag", "http://sb/api/2.1/scheduling", self.state.company_id, creds,
            timezone=PARIS, client=self.http, now=self.clock, **options,  # type: ignore[arg-type]
        )  # fmt: skip

    def params(self, index: int = -1) -> dict[str, str]:
        return dict(self.sent[index].url.params)


@pytest.fixture
async def box() -> AsyncIterator[Box]:
    clock = ManualClock(NOW)
    state = SandboxState(clock=clock, page_size=4)
    sent: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request)

    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, event_hooks={"request": [record]}) as http:
        yield Box(state, clock, http, sent)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2031, 3, day, hour, minute, tzinfo=PARIS)


async def test_the_first_pull_asks_for_the_widened_window_in_gmt_with_deletions(box: Box) -> None:
    box.state.book(at(4, 10), staff="2")
    pull = await box.provider().pull({"staff": "2", "service": "11"}, None, WINDOW)
    assert pull.complete
    assert box.params(0) == {
        "staffId": "2",
        "serviceId": "11",
        "startDate": "2031-02-23T07:00:00Z",
        "endDate": "2031-04-03T06:00:00Z",
        "showDeleted": "true",
        "levelDetail": "full",
    }
    assert pull.cursor["scope"] == "serviceId=11,staffId=2,personal=0"


async def test_a_token_pull_sends_the_token_and_the_dates_and_sees_only_changes(box: Box) -> None:
    first, second = box.state.book(at(4, 10)), box.state.book(at(4, 11))
    provider = box.provider()
    cursor = (await provider.pull({}, None, WINDOW)).cursor
    box.state.move(second.id, at(4, 15))
    box.sent.clear()
    pull = await provider.pull({}, cursor, WINDOW)
    assert [a.native_id for a in pull.items] == [second.id]
    assert first.id not in {a.native_id for a in pull.items}
    assert box.params()["syncToken"] == cursor["sync_token"]
    assert {"startDate", "endDate", "showDeleted"} <= box.params().keys()
    assert not pull.complete
    assert pull.requests == 1


async def test_a_cursor_taken_under_another_scope_is_not_used(box: Box) -> None:
    provider = box.provider()
    cursor = (await provider.pull({"staff": "1"}, None, WINDOW)).cursor
    pull = await provider.pull({"staff": "2"}, cursor, WINDOW)
    assert pull.complete
    assert "syncToken" not in box.params()
    personal = box.provider(personal_busy=True)
    assert (await personal.pull({"staff": "1"}, cursor, WINDOW)).complete


async def test_expired_and_refused_tokens_raise_token_expired(box: Box) -> None:
    box.state.token_ttl = 3600
    provider = box.provider()
    cursor = (await provider.pull({}, None, WINDOW)).cursor
    box.clock.advance(3601)
    with pytest.raises(TokenExpired, match="410"):
        await provider.pull({}, cursor, WINDOW)
    with pytest.raises(TokenExpired, match="410"):
        await provider.pull({}, {**cursor, "sync_token": "never-issued"}, WINDOW)


async def test_the_engine_lists_the_window_once_when_tokens_are_refused(
    box: Box, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        provider = box.provider()
        world = World(box.state, box.clock, provider, store, Wrapped(None))
        sync = world.sync("s", MemoryCalendar("cal"))
        box.state.book(at(4, 10))
        await run_cycle(store, sync, now=NOW)
        box.state.expire_tokens()
        box.state.requests.clear()
        result = await run_cycle(store, sync, now=NOW)
        assert result.status == "ok"
        assert box.state.requests == {"list": 2}, "the token, then the window once"
        # A company that answers every listing with a refusal: raised, no loop.
        box.state.expire_tokens()
        box.state.company_id = "moved"
        box.state.requests.clear()
        with pytest.raises(NotFound, match="company not found"):
            await run_cycle(store, sync, now=NOW)
        assert box.state.requests == {"list": 2}
    finally:
        store.close()


async def test_a_scope_with_unknown_keys_or_junk_ids_is_a_config_error(box: Box) -> None:
    with pytest.raises(ConfigError) as raised:
        await box.provider().pull({"agenda": "1", "staff": "1 OR 1=1"}, None, WINDOW)
    assert raised.value.problems == [
        "scope.agenda: unknown key (use staff, service, resource)",
        "scope.staff: must be an id, got '1 OR 1=1'",
    ]
    assert box.sent == []


async def test_personal_time_of_the_business_is_busy_only_and_syncds_own_never_shows(
    box: Box,
) -> None:
    away = box.state.personal(at(5, 12), at(5, 14), staff="1")
    provider = box.provider(personal_busy=True, busy_staff="1")
    block = await provider.add_busy({}, BusyBlock("private", "gym", at(5, 15), at(5, 16)))
    pull = await provider.pull({}, None, WINDOW)
    assert box.params(-1)["personalAppointments"] == "true"
    found = {a.native_id: a for a in pull.items if isinstance(a, Appointment)}
    assert set(found) == {away.id}
    assert (found[away.id].title, found[away.id].customer) == ("Busy", "")
    assert block not in found
    assert await provider.get(block) is None
    plain = await box.provider().pull({}, None, WINDOW)
    assert plain.items == []


async def test_busy_blocks_are_whole_minutes_marked_and_never_remove_a_booking(box: Box) -> None:
    provider = box.provider(busy_staff="3")
    with pytest.raises(ConfigError, match="busy_staff"):
        await box.provider().add_busy({}, BusyBlock("p", "x", at(5, 9), at(5, 10)))
    odd = BusyBlock(
        "private", "call", at(5, 9, 0) + timedelta(seconds=20), at(5, 9, 44) + timedelta(seconds=1)
    )
    made = await provider.add_busy({}, odd)
    entry = box.state.get(made)
    assert (entry.type, entry.staff_id, entry.start, entry.end) == (
        "personal",
        "3",
        datetime(2031, 3, 5, 9, 0),
        datetime(2031, 3, 5, 9, 45),
    )
    assert box.params(-1) == {"force": "true", "silent": "true", "personalAppointmentSync": "false"}
    assert await provider.find_busy({}, odd) == [made]
    moved = BusyBlock("private", "call", at(5, 11), at(5, 12))
    assert await provider.find_busy({}, moved) == [], "another time is another mark"
    assert await provider.find_busy({"staff": "2"}, odd) == [], "the scope's staff first"
    booking = box.state.book(at(6, 10))
    with pytest.raises(Refused, match="not a busy block"):
        await provider.remove_busy({}, booking.id)
    assert not box.state.get(booking.id).deleted
    await provider.remove_busy({}, made)
    await provider.remove_busy({}, made)
    assert box.state.appointments[made].deleted


def test_a_block_in_the_repeated_hour_is_sent_in_utc() -> None:
    second_run = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET, the second 02:30
    assert wire_time(second_run, PARIS) == {"dateTime": "2026-10-25T01:30:00", "timeZone": "UTC"}
    first_run = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert wire_time(first_run, PARIS) == {
        "dateTime": "2026-10-25T02:30:00",
        "timeZone": "Europe/Paris",
    }


async def test_moves_keep_the_appointments_zone_and_refusals_carry_the_reason(box: Box) -> None:
    london = box.state.book(at(4, 9), 30, zone=ZoneInfo("Europe/London"))
    provider = box.provider()
    current = await provider.get(london.id)
    assert current is not None
    moved = await provider.move(current, at(4, 15), at(4, 15, 30))
    assert (moved.start, moved.end) == (at(4, 15), at(4, 15, 30))
    assert box.state.get(london.id).zone == "Europe/London"
    assert box.state.get(london.id).start == datetime(2031, 3, 4, 14, 0)
    assert box.state.get(london.id).silent is True
    with pytest.raises(Refused, match="outside the staff member's working hours"):
        await provider.move(moved, at(9, 10), at(9, 10, 30))  # a Sunday
    box.sent.clear()
    with pytest.raises(Refused, match="whole seconds"):
        await provider.move(moved, at(4, 16) + timedelta(microseconds=5), at(4, 17))
    assert [r.method for r in box.sent] == ["GET"], "refused before anything is sent"


async def test_cancel_is_silent_by_choice_and_deletes_only_when_configured(box: Box) -> None:
    one, two = box.state.book(at(4, 10)), box.state.book(at(4, 11))
    loud = box.provider(silent=False)
    first = await loud.get(one.id)
    assert first is not None
    assert (await loud.cancel(first)).cancelled
    assert (box.state.get(one.id).status, box.state.get(one.id).silent) == ("cancelled", False)
    with pytest.raises(Refused, match="is cancelled"):
        await loud.move(first, at(4, 14), at(4, 14, 30))
    deleting = box.provider(cancel_deletes=True)
    second = await deleting.get(two.id)
    assert second is not None
    assert (await deleting.cancel(second)).cancelled
    assert box.state.appointments[two.id].deleted
    assert await deleting.get(two.id) is None


async def test_check_and_from_config(box: Box) -> None:
    await box.provider().check()
    wrong = AgendizeProvider(
        "ag", "http://sb/api/2.1/scheduling", box.state.company_id,
        Credentials(oauth_token="guessed"), client=box.http,
    )  # fmt: skip
    with pytest.raises(AuthError):
        await wrong.check()
    config = parse_config(
        """
[providers.clinic]
kind = "agendize"
company_id = "48213"
api_key = "k-secret-1"
token = "t-secret-2"
personal_busy = true
busy_staff = "4"
silent = false
cancel_deletes = true
watch_renew = "2h"
timezone = "Europe/Paris"
""",
        environ={},
    )
    provider = from_config("clinic", config.providers["clinic"])  # type: ignore[arg-type]
    try:
        assert (
            provider.api.root
            == "https://api.agendize.com/api/2.1/scheduling/companies/48213/appointments"
        )
        assert (provider.reading.personal_busy, provider.busy_staff) == (True, "4")
        assert (provider.writes.silent, provider.writes.cancel_deletes) == (False, True)
        assert provider.watcher.renew == timedelta(hours=2)
        assert provider.zone == PARIS
        assert "secret" not in repr(provider.api) + repr(provider.api._credentials)
    finally:
        await provider.aclose()


@pytest.mark.parametrize(
    ("status", "with_token", "without_token"),
    [
        (400, TokenExpired, ApiRefusal),
        (404, TokenExpired, NotFound),
        (410, TokenExpired, BackendError),
        (503, TransientError, TransientError),
        (401, AuthError, AuthError),
    ],
)
async def test_a_refusal_of_a_token_listing_drops_the_token_and_of_a_window_listing_does_not(
    status: int, with_token: type[Exception], without_token: type[Exception]
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"error": {"code": status, "message": "no"}})

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    provider = AgendizeProvider("ag", "http://x", "1", Credentials(oauth_token="t"), client=http)
    with pytest.raises(with_token):
        await provider.pull({}, {"sync_token": "s", "scope": "personal=0"}, WINDOW)
    with pytest.raises(without_token) as raised:
        await provider.pull({}, None, WINDOW)
    assert not isinstance(raised.value, TokenExpired)
