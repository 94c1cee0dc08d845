"""OnlineAfspraken end to end: sandbox -> provider -> engine -> a real calendar, and back.

The sandbox is served in-process (``httpx.ASGITransport`` into the provider's client); the
calendar is a real Radicale collection (``slow``) or, for a quick run, the memory calendar;
the state store is SQLite; each step is one ``run_cycle``, as the daemon runs it. The business
acts through the sandbox's own methods, which cost no request, so the sandbox's request
counter measures syncd alone. A person edits the calendar through the calendar's own update
and delete calls, with the etag they last saw.

Issue 4, acceptance 3 and 4, and refusals shown by ``syncd status``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import pytest
from structlog.testing import capture_logs

from syncd.calendars.base import Calendar
from syncd.calendars.caldav import CaldavCalendar
from syncd.calendars.memory import MemoryCalendar
from syncd.commands.status import as_dict, render_text
from syncd.errors import TransientError
from syncd.providers.onlineafspraken import OnlineAfsprakenProvider
from syncd.sandbox.onlineafspraken import create_app
from syncd.sandbox.onlineafspraken_state import ManualClock, SandboxState
from syncd.state.history import sync_status
from syncd.state.store import Store
from tests.onlineafspraken_kit import AMS, T0, World, events, local, moved_ics, snapshot, wall
from tests.servers import DavServer

pytestmark = pytest.mark.anyio
DST_DAY = datetime(2026, 10, 25).date()


@pytest.fixture(params=["memory", pytest.param("radicale", marks=pytest.mark.slow)])
async def calendars(request: pytest.FixtureRequest) -> AsyncIterator[list[Calendar]]:
    """Two fresh calendars of the parametrised kind (most tests use the first)."""
    made: list[Calendar] = []
    for name in ("cal", "cal2"):
        if request.param == "memory":
            made.append(MemoryCalendar(name))
        else:
            server: DavServer = request.getfixturevalue("radicale")
            made.append(CaldavCalendar(name, url=server.new_collection(), timeout=30))
    yield made
    for calendar in made:
        await calendar.aclose()


@pytest.fixture
async def world(store: Store) -> AsyncIterator[World]:
    clock = ManualClock(T0)
    state = SandboxState(api_key="e2e-key", api_secret="e2e-secret", clock=clock)
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport) as http:
        provider = OnlineAfsprakenProvider(
            "oa", "http://sandbox/APIREST", "e2e-key", "e2e-secret", client=http, now=clock
        )
        yield World(state, clock, provider, store)
        await provider.aclose()


# -- acceptance 3: changes flow both ways ------------------------------------------------------


async def test_the_calendar_follows_the_business_and_the_business_follows_the_calendar(
    world: World, calendars: list[Calendar]
) -> None:
    calendar = calendars[0]
    state, sync = world.state, world.sync("salon", calendars[0])
    state.seed(200, seed=4)
    assert any(b.start.date() > DST_DAY for b in state.appointments.values())

    first = await world.cycle(sync)
    assert first.plan.counts()["create"] == 200
    shown = await events(calendar)
    assert set(shown) == {str(i) for i in state.appointments}
    for native_id, (_, event) in shown.items():
        booking = state.get(int(native_id))
        assert (event.start, event.end) == (local(booking.start), local(booking.finish))
    await world.settle(sync)

    # The business books, moves across the DST change, cancels and removes.
    booked = state.book(datetime(2026, 10, 30, 16, 0), 30, customer=3)
    summer, cancelled, removed = world.active(3, before=datetime(2026, 10, 24))
    summer_start = local(summer.start)
    state.move(summer.id, summer.start + timedelta(days=7))
    state.cancel(cancelled.id)
    state.remove(removed.id)
    world.requests()
    changed = await world.cycle(sync)
    assert changed.plan.counts()["create"] == 1
    assert world.requests()["getAppointments"] == 1
    shown = await events(calendar)
    assert shown[str(booked.id)][1].start == datetime(2026, 10, 30, 16, 0, tzinfo=AMS)
    moved = shown[str(summer.id)][1]
    assert moved.start - summer_start == timedelta(days=7, hours=1), "same wall time, CET"
    assert moved.start.astimezone(AMS).utcoffset() == timedelta(hours=1)
    assert summer_start.utcoffset() == timedelta(hours=2)
    assert shown[str(cancelled.id)][1].cancelled
    assert str(removed.id) in shown, "a hard delete is invisible to UpdatedAfter"
    scan = await world.cycle(sync, full=True)
    assert scan.plan.counts().get("delete") == 1
    assert str(removed.id) not in await events(calendar)
    await world.settle(sync)

    # A person moves one event (across the DST change too) and deletes another.
    dragged, deleted = world.active(2, before=datetime(2026, 10, 24))
    item, event = (await events(calendar))[str(dragged.id)]
    start = datetime(2026, 11, 24, 11, 0, tzinfo=AMS)  # a Tuesday past every seeded booking
    length = event.end - event.start
    await calendar.update(item.href, moved_ics(item.ics, start, start + length), item.etag)
    gone, _ = (await events(calendar))[str(deleted.id)]
    await calendar.delete(gone.href, gone.etag)
    world.requests()
    written = await world.cycle(sync)
    assert written.outcome.failed == []
    sent = world.requests()
    assert (sent["setAppointment"], sent["cancelAppointment"]) == (1, 1)
    assert (state.get(dragged.id).start, state.get(dragged.id).finish) == (
        wall(start),
        wall(start + length),
    )
    assert (state.get(deleted.id).label, state.get(deleted.id).confirmations) == (4, "0")
    await world.settle(sync)
    shown = await events(calendar)
    assert shown[str(dragged.id)][1].start == start
    assert str(deleted.id) not in shown, "the person's deletion stands"

    # Nothing changed anywhere: one getAppointments and nothing else at the provider.
    world.requests()
    idle = await world.cycle(sync)
    assert idle.plan.actions == []
    assert world.requests() == Counter({"getAppointments": 1})


async def test_an_idle_cycle_is_one_getappointments_per_agenda(
    world: World, calendars: list[Calendar]
) -> None:
    salon = world.sync("salon", calendars[0], agenda="1")
    studio = world.sync("studio", calendars[1], agenda="2")
    world.state.seed(30, seed=2)
    for hour in (9, 11, 14):
        world.state.book(datetime(2026, 10, 21, hour, 0), 60, agenda=2, resources=(3,))
    for sync in (salon, studio):
        await world.cycle(sync)
        await world.settle(sync)
    assert len(await events(calendars[0])) == 30
    assert len(await events(calendars[1])) == 3
    world.requests()
    for sync in (salon, studio):
        assert (await world.cycle(sync)).plan.actions == []
    assert world.requests() == Counter({"getAppointments": 2})


async def test_a_move_the_provider_refuses_is_a_conflict_shown_by_status(
    world: World, calendars: list[Calendar]
) -> None:
    calendar, sync = calendars[0], world.sync("salon", calendars[0])
    world.state.seed(20, seed=9)
    await world.cycle(sync)
    await world.settle(sync)
    [booking] = world.active(1)
    before = (booking.start, booking.finish)
    item, event = (await events(calendar))[str(booking.id)]
    sunday = datetime(2026, 11, 22, 10, 0, tzinfo=AMS)  # closed on Sundays
    await calendar.update(
        item.href, moved_ics(item.ics, sunday, sunday + timedelta(hours=1)), item.etag
    )
    refused = await world.cycle(sync)
    assert refused.status == "ok"
    assert (booking.start, booking.finish) == before
    restored = (await events(calendar))[str(booking.id)][1]
    assert (restored.start, restored.end) == (event.start, event.end)
    [conflict] = sync_status(world.store.engine, "salon").conflicts
    assert conflict["appointment"] == str(booking.id)
    assert conflict["resolution"] == "calendar restored"
    assert "not bookable" in conflict["detail"]
    assert "R01" in conflict["detail"]
    shown = render_text(as_dict(sync_status(world.store.engine, "salon"), datetime.now(AMS)))
    assert any(str(booking.id) in line and "not bookable" in line for line in shown), shown
    await world.settle(sync)
    assert len(sync_status(world.store.engine, "salon").conflicts) == 1, "recorded once"


# -- acceptance 4: bad data is named, the sync goes on, nothing stored is lost -------------------


async def test_bad_replies_and_bad_items_are_named_and_lose_nothing(
    world: World, calendars: list[Calendar]
) -> None:
    calendar, state, sync = calendars[0], world.state, world.sync("salon", calendars[0])
    state.seed(30, seed=5)
    await world.cycle(sync)
    await world.settle(sync)
    before = snapshot(await events(calendar))

    # A whole reply that is not XML: the cycle fails, says why, and changes nothing.
    state.faults.truncated, state.faults.only = 1, "getAppointments"
    with capture_logs() as logs, pytest.raises(TransientError):
        await world.cycle(sync)
    assert any(
        log["event"] == "onlineafspraken.unreadable_reply" and log["log_level"] == "warning"
        for log in logs
    )
    run = sync_status(world.store.engine, "salon").last_run
    assert run is not None
    assert run.status == "failed"
    assert "not well-formed" in run.error
    assert snapshot(await events(calendar)) == before

    # Bad single items: each is named, the rest of the sync goes on.
    broken, status, label, missing, impossible, nameless, good = world.active(7)
    state.break_xml(broken.id)
    state.corrupt(status.id, "Status", "7")
    state.corrupt(label.id, "Label", "9")
    state.corrupt(missing.id, "StartTime", None)
    state.corrupt(impossible.id, "FinishTime", "2026-02-30 10:00:00")
    state.corrupt(nameless.id, "Id", None)
    state.move(good.id, good.start + timedelta(days=1))
    named = {
        f"oa/{broken.id}": "xml",
        f"oa/{status.id}": "Status",
        f"oa/{label.id}": "Label",
        f"oa/{missing.id}": "StartTime",
        f"oa/{impossible.id}": "FinishTime",
    }
    with capture_logs() as logs:
        result = await world.cycle(sync)
    assert result.status == "ok"
    reported = {item: field for item, field, _ in result.plan.bad_items}
    assert {k: v for k, v in reported.items() if not k.startswith("oa/#")} == named
    assert [v for k, v in reported.items() if k.startswith("oa/#")] == ["Id"]
    warned = {log["item"] for log in logs if log["event"] == "bad item skipped"}
    assert warned == set(reported)
    errors = sync_status(world.store.engine, "salon").item_errors
    assert {e["item"]: e["field"] for e in errors} == reported
    assert "2026-02-30" in next(e for e in errors if e["field"] == "FinishTime")["message"]
    after = snapshot(await events(calendar))
    assert after[str(good.id)][0] == local(good.start), "the good change arrived"
    assert {k: v for k, v in after.items() if k != str(good.id)} == {
        k: v for k, v in before.items() if k != str(good.id)
    }, "nothing stored was changed or lost"

    # A full scan with the same damage deletes nothing either. (The nameless item has a test
    # of its own below.)
    nameless.overrides.clear()
    scan = await world.cycle(sync, full=True)
    assert scan.plan.counts().get("delete", 0) == 0
    assert set(await events(calendar)) == set(before)

    # Once the business's data is sound again, the items sync and their errors clear.
    for booking in (broken, status, label, missing, impossible):
        booking.overrides.clear()
        booking.broken_xml = False
        state.move(booking.id, booking.start + timedelta(hours=1))
    await world.cycle(sync)
    await world.settle(sync)
    left = {e["item"] for e in sync_status(world.store.engine, "salon").item_errors}
    assert not left & set(named)
    repaired = snapshot(await events(calendar))
    assert repaired[str(missing.id)][0] == local(missing.start)


async def test_a_full_scan_holding_an_item_without_an_id_deletes_nothing(
    world: World, calendars: list[Calendar]
) -> None:
    calendar, sync = calendars[0], world.sync("salon", calendars[0])
    world.state.seed(10, seed=6)
    await world.cycle(sync)
    await world.settle(sync)
    [nameless] = world.active(1)
    world.state.corrupt(nameless.id, "Id", None)
    scan = await world.cycle(sync, full=True)
    assert [field for _, field, _ in scan.plan.bad_items] == ["Id"]
    assert str(nameless.id) in await events(calendar)
