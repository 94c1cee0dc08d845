"""Agendize end to end: sandbox -> provider -> engine -> a real calendar, and back.

The sandbox is served in-process (``httpx.ASGITransport`` into the provider's client) with
pages of 25; the calendars are real Radicale collections (``slow``) or, for a quick run, the
memory calendar; the state store is SQLite; each step is one ``run_cycle``, as the daemon runs
it. The business acts through the sandbox's own methods, which cost no request, so the
sandbox's request counter measures syncd alone. Watch deliveries go from the sandbox into
syncd's own web app (ASGI), which pokes the account exactly as the daemon's scheduler is
poked.

Issue 6, acceptance 2 and 3.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from structlog.testing import capture_logs

from syncd.calendars.base import Calendar
from syncd.calendars.caldav import CaldavCalendar
from syncd.calendars.memory import MemoryCalendar
from syncd.errors import TransientError
from syncd.model import UTC
from syncd.sandbox.agendize import create_app
from syncd.sandbox.agendize_render import DROP
from syncd.sandbox.agendize_state import SandboxState
from syncd.sandbox.agendize_watch import deliver
from syncd.sandbox.onlineafspraken_state import ManualClock
from syncd.state.busy import BusyLinks
from syncd.state.history import sync_status
from syncd.state.store import Store
from tests.agendize_kit import PARIS, T0, Person, World, Wrapped, local, make_provider, wall
from tests.onlineafspraken_kit import events, moved_ics, snapshot
from tests.servers import DavServer
from tests.test_busy import source_event

pytestmark = pytest.mark.anyio
LONDON = "Europe/London"


@dataclass
class Calendars:
    target: Calendar  # where appointments go
    private: Calendar  # a person's own calendar, a busy source
    person: Person  # that person, editing the private calendar


@pytest.fixture(params=["memory", pytest.param("radicale", marks=pytest.mark.slow)])
async def cals(request: pytest.FixtureRequest) -> AsyncIterator[Calendars]:
    if request.param == "memory":
        target, private = MemoryCalendar("cal"), MemoryCalendar("private")
        yield Calendars(target, private, Person.on(private, None))
        return
    server: DavServer = request.getfixturevalue("radicale")
    url = server.new_collection()
    target = CaldavCalendar("cal", url=server.new_collection(), timeout=30)
    private = CaldavCalendar("private", url=url, timeout=30)
    yield Calendars(target, private, Person.on(private, server, url))
    for calendar in (target, private):
        await calendar.aclose()


@pytest.fixture
async def world(store: Store) -> AsyncIterator[World]:
    clock = ManualClock(T0)
    state = SandboxState(clock=clock, page_size=25)
    app = Wrapped(create_app(state))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        world = World(state, clock, make_provider(state, http, clock), store, app)
        yield world
        await world.provider.aclose()


# -- acceptance 2: changes flow both ways ------------------------------------------------------


async def test_the_calendar_follows_the_business_and_the_business_follows_the_calendar(
    world: World, cals: Calendars
) -> None:
    calendar, state = cals.target, world.state
    sync = world.sync("clinic", calendar)
    state.seed(40, seed=4, days=10)
    london = state.book(datetime(2026, 10, 21, 9, 0), 30, zone=ZoneInfo(LONDON), staff="3")
    first = await world.cycle(sync)
    assert first.plan.counts()["create"] == 41
    assert world.requests() == Counter({"list": 2}), "41 appointments in pages of 25"
    shown = await events(calendar)
    for native_id, (_, event) in shown.items():
        assert (event.start, event.end) == local(state.get(native_id))
    assert shown[london.id][1].start == datetime(2026, 10, 21, 8, 0, tzinfo=UTC)
    await world.settle(sync)

    # The business books, moves across the DST change, cancels, declines and deletes.
    booked = state.book(datetime(2026, 10, 30, 16, 0), 30)
    summer, cancelled, declined, removed = world.active(4, before=datetime(2026, 10, 24))
    summer_start = local(summer)[0]
    state.move(summer.id, summer.start + timedelta(days=7))
    state.cancel(cancelled.id)
    state.set_status(declined.id, "declined")
    state.delete(removed.id)
    world.requests()
    changed = await world.cycle(sync)
    assert world.requests() == Counter({"list": 1}), "one page of changes by sync token"
    assert (changed.plan.counts()["create"], changed.plan.counts()["delete"]) == (1, 1)
    shown = await events(calendar)
    assert shown[booked.id][1].start == datetime(2026, 10, 30, 16, 0, tzinfo=PARIS)
    moved = shown[summer.id][1]
    assert moved.start - summer_start == timedelta(days=7, hours=1), "same wall time, CET"
    assert shown[cancelled.id][1].cancelled
    assert shown[declined.id][1].cancelled
    assert removed.id not in shown, "a delete comes with the token listing (showDeleted)"
    await world.settle(sync)

    # A person moves one event (across the DST change too) and deletes another.
    dragged, deleted = world.active(2, before=datetime(2026, 10, 24))
    item, event = (await events(calendar))[dragged.id]
    start = datetime(2026, 11, 24, 11, 0, tzinfo=PARIS)  # a Tuesday past every seeded booking
    length = event.end - event.start
    await calendar.update(item.href, moved_ics(item.ics, start, start + length), item.etag)
    gone, _ = (await events(calendar))[deleted.id]
    await calendar.delete(gone.href, gone.etag)
    world.requests()
    written = await world.cycle(sync)
    assert written.outcome.failed == []
    assert world.requests() == Counter({"list": 1, "get": 2, "update": 2})
    assert (state.get(dragged.id).start, state.get(dragged.id).end) == (
        wall(start),
        wall(start + length),
    )
    assert (state.get(deleted.id).status, state.get(deleted.id).silent) == ("cancelled", True)
    assert state.get(dragged.id).silent is True, "the client is not told"
    await world.settle(sync)
    shown = await events(calendar)
    assert shown[dragged.id][1].start == start
    assert deleted.id not in shown, "the person's deletion stands"

    # Nothing changed anywhere: one listing and nothing else at the provider.
    world.requests()
    idle = await world.cycle(sync)
    assert idle.plan.actions == []
    assert world.requests() == Counter({"list": 1})


async def test_a_move_agendize_refuses_is_a_conflict_with_its_reason(
    world: World, cals: Calendars
) -> None:
    calendar, sync = cals.target, world.sync("clinic", cals.target)
    world.state.seed(20, seed=9)
    await world.cycle(sync)
    await world.settle(sync)
    [entry] = world.active(1)
    before = (entry.start, entry.end)
    item, event = (await events(calendar))[entry.id]
    sunday = datetime(2026, 11, 22, 10, 0, tzinfo=PARIS)  # closed on Sundays
    await calendar.update(
        item.href, moved_ics(item.ics, sunday, sunday + timedelta(hours=1)), item.etag
    )
    refused = await world.cycle(sync)
    assert refused.status == "ok"
    assert (entry.start, entry.end) == before
    restored = (await events(calendar))[entry.id][1]
    assert (restored.start, restored.end) == (event.start, event.end)
    [conflict] = sync_status(world.store.engine, "clinic").conflicts
    assert conflict["appointment"] == entry.id
    assert "outside the staff member's working hours" in conflict["detail"]
    await world.settle(sync)
    assert len(sync_status(world.store.engine, "clinic").conflicts) == 1, "recorded once"


# -- busy time ----------------------------------------------------------------------------------


async def test_a_busy_event_becomes_a_personal_appointment_and_goes_with_it(
    world: World, cals: Calendars
) -> None:
    sync = world.sync("clinic", cals.target, busy_from={"private": cals.private})
    dentist = (
        datetime(2026, 10, 21, 14, 0, tzinfo=PARIS),
        datetime(2026, 10, 21, 15, 0, tzinfo=PARIS),
    )
    cals.person.put("dentist.ics", source_event("dentist", *dentist))
    await world.cycle(sync)
    [block] = world.personal()
    assert (block.staff_id, block.start, block.end) == ("1", wall(dentist[0]), wall(dentist[1]))
    assert block.private["syncd"].startswith("busy:ag:")
    assert block.silent is True
    await world.settle(sync)
    assert block.id not in await events(cals.target), "syncd's own block is never an event"
    world.requests()
    assert (await world.cycle(sync)).plan.actions == []
    assert world.requests() == Counter({"list": 1})

    cals.person.remove("dentist.ics")
    removed = await world.cycle(sync)
    assert removed.counts().get("busy-remove") == 1
    assert world.personal() == []
    assert world.state.appointments[block.id].deleted


async def test_a_block_made_just_before_a_crash_is_adopted_not_made_twice(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = MemoryCalendar("private")
    sync = world.sync("clinic", MemoryCalendar("cal"), busy_from={"private": private})
    private.user_put(
        "gym.ics", source_event("gym", T0 + timedelta(days=1), T0 + timedelta(days=1, hours=1))
    )
    real_add = world.provider.blocks.add

    async def answer_lost(staff: str, block: Any) -> str:
        await real_add(staff, block)
        raise TransientError("ag", "insert: ReadError")  # made, but syncd never heard

    monkeypatch.setattr(world.provider.blocks, "add", answer_lost)
    with pytest.raises(TransientError):
        await world.cycle(sync)
    assert len(world.personal()) == 1
    monkeypatch.undo()
    await world.cycle(sync)
    [block] = world.personal()
    assert BusyLinks(world.store).count("clinic") == 1
    private.user_delete("gym.ics")
    await world.cycle(sync)
    assert world.personal() == []
    assert world.state.appointments[block.id].deleted


# -- tokens ---------------------------------------------------------------------------------------


async def test_a_token_expiring_mid_listing_recovers_with_no_duplicate_and_no_loss(
    world: World, cals: Calendars
) -> None:
    calendar, state, sync = cals.target, world.state, world.sync("clinic", cals.target)
    state.page_size = 10
    state.seed(25, seed=7)
    await world.cycle(sync)
    await world.settle(sync)
    changed = world.active(12)
    for entry in changed:
        state.move(entry.id, entry.start + timedelta(hours=1))
    added = state.book(datetime(2026, 10, 28, 17, 0), 30)

    def expire_on_second_page(scope: dict[str, Any]) -> None:
        if b"syncToken" in scope["query_string"] and b"pageToken" in scope["query_string"]:
            state.expire_tokens()

    world.app.before.append(expire_on_second_page)
    world.requests()
    with capture_logs() as logs:
        result = await world.cycle(sync)
    assert result.status == "ok"
    assert any(log["event"] == "agendize.token_refused" for log in logs)
    # two pages by token (the second refused), then the window again: three pages
    assert world.requests() == Counter({"list": 5})
    assert len(changed) + 1 > state.page_size, "the changes did fill more than a page"
    shown = await events(calendar)  # raises on two events for one appointment
    live = {e.id: e for e in state.appointments.values() if not e.deleted}
    assert set(shown) == set(live)
    for native_id, (_, event) in shown.items():
        assert (event.start, event.end) == local(live[native_id])
    assert added.id in shown
    world.app.before.clear()
    await world.settle(sync)
    world.requests()
    await world.cycle(sync)
    assert world.requests() == Counter({"list": 1}), "the new token is in use"


# -- acceptance 2: a watch delivery, without waiting for the poll -------------------------------


async def test_a_watch_delivery_reaches_the_calendar_without_waiting_for_the_poll(
    world: World, cals: Calendars, tmp_path: Path
) -> None:
    calendar, state, sync = cals.target, world.state, world.sync("clinic", cals.target)
    state.seed(10, seed=3)
    async with world.web(tmp_path / "state.db") as web:
        await world.cycle(sync)  # registers the watch, lists the window
        assert world.requests()["watch"] == 1
        [watch] = state.watches.values()
        assert watch.address.endswith("/hooks/agendize/ag")
        await world.settle(sync)
        booked = state.book(datetime(2026, 10, 22, 15, 0), 30)
        state.faults.repeat_deliveries = 1  # it arrives twice
        await deliver(state, web)
        assert state.delivered[-2:] == [("created", 200), ("created", 200)]
        assert world.pokes == ["ag"], "the repeat runs nothing"
        assert booked.id not in await events(calendar)
        await world.cycle(sync)  # the run the poke starts
        assert booked.id in await events(calendar)

        # Two changes delivered in reverse: the older one, arriving last, runs nothing.
        state.move(booked.id, datetime(2026, 10, 22, 16, 0))
        state.cancel(booked.id)
        state.outbox.reverse()
        world.pokes.clear()
        await deliver(state, web)
        assert world.pokes == ["ag"]
        await world.cycle(sync)
        event = (await events(calendar))[booked.id][1]
        assert event.cancelled
        assert event.start == datetime(2026, 10, 22, 16, 0, tzinfo=PARIS)

        # Wrong credentials are refused, and change nothing.
        watch.password = "guessed"
        state.book(datetime(2026, 10, 23, 15, 0), 30)
        world.pokes.clear()
        await deliver(state, web)
        assert state.delivered[-1] == ("created", 403)
        assert world.pokes == []


# -- acceptance 3: malformed and hostile payloads ------------------------------------------------


async def test_malformed_and_hostile_items_are_named_and_skipped_and_the_sync_goes_on(
    world: World, cals: Calendars
) -> None:
    calendar, state, sync = cals.target, world.state, world.sync("clinic", cals.target)
    state.seed(30, seed=5)
    await world.cycle(sync)
    await world.settle(sync)
    before = snapshot(await events(calendar))

    # Whole replies that cannot be read: the cycle fails, says why, and changes nothing.
    state.faults.malformed_json, state.faults.only = 1, "list"
    with capture_logs() as logs, pytest.raises(TransientError):
        await world.cycle(sync)
    assert any(log["event"] == "agendize.unreadable_reply" for log in logs)
    state.faults.error_under_200 = 1
    with pytest.raises(TransientError, match="backend unavailable"):
        await world.cycle(sync)
    assert snapshot(await events(calendar)) == before

    # Bad single items: each is named, the rest goes on.
    zone, start, types, client, status, huge, impossible, good = world.active(8)
    state.corrupt(zone.id, "start.timeZone", "Mars/Olympus_Mons")
    state.corrupt(start.id, "start", DROP)
    state.corrupt(types.id, "end", "tomorrow")
    state.corrupt(client.id, "client.firstName", ["not", "a", "name"])
    state.corrupt(status.id, "status", "lost")
    state.corrupt(huge.id, "notes", "x" * 10_000_000)
    state.corrupt(impossible.id, "end.dateTime", "2026-02-30T10:00:00")
    state.move(good.id, good.start + timedelta(days=1))
    named = {
        f"ag/{zone.id}": "start.timeZone",
        f"ag/{start.id}": "start",
        f"ag/{types.id}": "end",
        f"ag/{client.id}": "client.firstName",
        f"ag/{status.id}": "status",
        f"ag/{huge.id}": "notes",
        f"ag/{impossible.id}": "end.dateTime",
    }
    result = await world.cycle(sync)
    assert result.status == "ok"
    assert {item: field for item, field, _ in result.plan.bad_items} == named
    errors = sync_status(world.store.engine, "clinic").item_errors
    assert {e["item"]: e["field"] for e in errors} == named
    assert (
        "Mars/Olympus_Mons" in next(e for e in errors if e["field"] == "start.timeZone")["message"]
    )
    after = snapshot(await events(calendar))
    assert after[good.id][0] == local(good)[0], "the good change arrived"
    assert {k: v for k, v in after.items() if k != good.id} == {
        k: v for k, v in before.items() if k != good.id
    }, "nothing stored was changed or lost"

    # An item without a usable id in a full listing: named, and it deletes nothing.
    state.corrupt(good.id, "id", 12345)
    scan = await world.cycle(sync, full=True)
    assert [f for i, f, _ in scan.plan.bad_items if i.startswith("ag/#")] == ["id"]
    assert scan.plan.counts().get("delete", 0) == 0
    assert set(await events(calendar)) == set(before)
