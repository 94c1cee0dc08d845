"""The whole engine against real CalDAV servers: a memory provider -> Radicale (and Xandikos).

What a person does in their calendar goes over HTTP, unconditionally, as a calendar client
does; what the tests check is read back from the server, not from syncd's state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from syncd.calendars.base import Calendar
from syncd.calendars.caldav import CaldavCalendar
from syncd.ical import ParsedEvent, RenderOptions, parse_event
from syncd.model import Status
from syncd.providers.memory import MemoryProvider
from syncd.reconcile.cycle import Sync, calendar_scope, run_cycle
from syncd.reconcile.policy import CalendarDelete, Direction, Policy
from syncd.reconcile.render import SyncRenderer
from syncd.state.store import Store
from tests.crash import Crash, CrashingCalendar
from tests.servers import PASSWORD, USER, DavServer, FaultProxy
from tests.test_sync_machine import _retime

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
AMS = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 10, 20, 9, 0, tzinfo=AMS)
COUNT = 8


@dataclass
class Target:
    server: DavServer
    url: str
    calendar: CaldavCalendar

    async def events(self) -> dict[str, list[ParsedEvent]]:
        """Every event on the server by native id: a list, so duplicates would show."""
        listing = await self.calendar.changes(None)
        found: dict[str, list[ParsedEvent]] = {}
        for item in listing.changed:
            parsed = parse_event(item.ics, item.href)
            found.setdefault(parsed.native_id or "", []).append(parsed)
        return found

    async def one(self, native_id: str) -> ParsedEvent:
        (event,) = (await self.events())[native_id]
        return event

    async def person_moves(self, native_id: str, start: datetime) -> None:
        event = await self.one(native_id)
        (item,) = await self.calendar.get([event.href])
        moved = _retime(item.ics, start, start + (event.end - event.start))
        self.server.put(f"{self.server.base_url}{event.href}", moved)


@pytest.fixture
def provider() -> MemoryProvider:
    p = MemoryProvider("shop", now=lambda: NOW)
    p.seed(COUNT, NOW, rng_seed=5)
    return p


async def open_target(server: DavServer) -> Target:
    url = server.new_collection()
    return Target(server, url, CaldavCalendar("team", url=url, username=USER, password=PASSWORD))


@pytest.fixture
async def target(radicale: DavServer) -> AsyncIterator[Target]:
    found = await open_target(radicale)
    yield found
    await found.calendar.aclose()


def make_sync(provider: MemoryProvider, calendar: Calendar, two_way: bool = False) -> Sync:
    policy = Policy(
        sync="s",
        account="shop",
        calendars=("team",),
        direction=Direction.TWO_WAY if two_way else Direction.ONE_WAY,
        calendar_delete=CalendarDelete.CANCEL if two_way else CalendarDelete.RESTORE,
    )
    return Sync(policy, provider, {"team": calendar}, SyncRenderer("shop", RenderOptions("s")))


async def test_create_move_cancel_delete_reach_the_server(
    store: Store, provider: MemoryProvider, dav_server: DavServer
) -> None:
    target = await open_target(dav_server)
    sync = make_sync(provider, target.calendar)
    try:
        await run_cycle(store, sync, now=NOW)
        events = await target.events()
        assert sorted(events) == sorted(provider.appointments())
        assert all(len(found) == 1 for found in events.values())

        later = NOW + timedelta(days=2, hours=3)
        provider.reschedule("1", later, later + timedelta(minutes=45))
        provider.cancel_by_business("2")
        provider.hard_delete("3")
        await run_cycle(store, sync, now=NOW)
        await run_cycle(store, sync, full=True, now=NOW)  # only a scan reveals hard deletes
        moved = await target.one("1")
        assert (moved.start, moved.end) == (later, later + timedelta(minutes=45))
        assert (await target.one("2")).cancelled
        events = await target.events()
        assert "3" not in events
        assert len(events) == COUNT - 1

        idle = await run_cycle(store, sync, now=NOW)
        assert (idle.requests, idle.plan.actions) == (2, [])
    finally:
        await target.calendar.aclose()


@pytest.mark.parametrize("two_way", [True, False], ids=["two-way", "one-way"])
async def test_a_persons_move_flows_back_or_is_restored(
    store: Store, provider: MemoryProvider, target: Target, two_way: bool
) -> None:
    sync = make_sync(provider, target.calendar, two_way=two_way)
    await run_cycle(store, sync, now=NOW)
    original = provider.appointments()["4"]
    moved_to = original.start + timedelta(days=1, hours=2)
    await target.person_moves("4", moved_to)
    await run_cycle(store, sync, now=NOW)
    event = await target.one("4")
    at_provider = provider.appointments()["4"]
    if two_way:
        assert at_provider.start == moved_to
        assert event.start == moved_to
    else:
        assert at_provider.start == original.start
        assert event.start == original.start, "a one-way sync puts the event back"
    assert at_provider.status is Status.CONFIRMED


async def test_a_first_push_is_one_put_per_event_and_nothing_else(
    store: Store, provider: MemoryProvider, radicale: DavServer, proxy: FaultProxy
) -> None:
    """No UID search, no PROPFIND for an etag, no GET before a write: the ceiling of a
    first push is one PUT per event, and syncd's cost is that plus one sync REPORT."""
    url = radicale.new_collection()
    calendar = CaldavCalendar("team", url=proxy.at(url), username=USER, password=PASSWORD)
    try:
        await run_cycle(store, make_sync(provider, calendar), now=NOW)
    finally:
        await calendar.aclose()
    assert sorted(proxy.methods()) == ["PUT"] * COUNT + ["REPORT"]


async def test_crash_after_put_before_commit_does_not_duplicate(
    store: Store, provider: MemoryProvider, target: Target
) -> None:
    crashing = CrashingCalendar(target.calendar, crash_at=3, after=True)
    with pytest.raises(Crash):
        await run_cycle(store, make_sync(provider, crashing), now=NOW)
    assert len(await target.events()) == 4, "four PUTs reached the server"
    assert store.link_count("s") == 0, "none was committed"
    restarted = Store(store.url)
    try:
        result = await run_cycle(restarted, make_sync(provider, target.calendar), now=NOW)
        events = await target.events()
        assert sorted(events) == sorted(provider.appointments())
        assert all(len(found) == 1 for found in events.values())
        assert restarted.link_count("s") == COUNT
        assert result.outcome.failed == []
    finally:
        restarted.close()


async def test_an_invalid_sync_token_recovers(
    store: Store, provider: MemoryProvider, target: Target
) -> None:
    sync = make_sync(provider, target.calendar, two_way=True)
    await run_cycle(store, sync, now=NOW)
    store.save_cursors("s", {calendar_scope("s", "team"): {"token": "http://x/garbage/1"}})
    moved_to = provider.appointments()["5"].start + timedelta(hours=3)
    await target.person_moves("5", moved_to)
    result = await run_cycle(store, sync, now=NOW)
    assert result.status == "ok"
    assert provider.appointments()["5"].start == moved_to, "the relisting saw the person's move"
    events = await target.events()
    assert all(len(found) == 1 for found in events.values())
    token = store.cursor(calendar_scope("s", "team"))
    assert token is not None
    assert token["token"] != "http://x/garbage/1"
    await run_cycle(store, sync, now=NOW)  # reads back our own write of the moved event
    assert (await run_cycle(store, sync, now=NOW)).requests == 2


def test_push_bench_runs_tiny_and_reports_its_counts(radicale: DavServer, tmp_path: Path) -> None:
    """bench/caldav_push.py end to end at five appointments, vdirsyncer left out: only the
    counts are checked, never a time."""
    from bench.caldav_push import measure, table

    report = measure(radicale, tmp_path, 5, None)
    assert report["ceiling"]["requests"] == 5
    assert len(report["round_ratios"]) == 1
    syncd = report["syncd"]
    assert (syncd["echo_actions"], syncd["idle_actions"], syncd["idle_http_requests"]) == (0, 0, 1)
    assert report["ratio"] > 0
    assert "HTTP requests" in table(report)
