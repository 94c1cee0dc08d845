"""Recras end to end: sandbox -> provider -> engine -> a real calendar, and calendar -> bookings.

The sandbox is served in-process (``httpx.ASGITransport``) on a fixed clock; the calendar is
a real Radicale collection (``slow``) or, for a quick run, the memory calendar; the state
store is SQLite; each step is one ``run_cycle``, as the daemon runs it. The business acts
through the sandbox's own methods (no request), a person through the calendar's own calls.

Issue 7, acceptance 2 and 3.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import icalendar
import pytest

from syncd.calendars.base import Calendar
from syncd.calendars.caldav import CaldavCalendar
from syncd.calendars.memory import MemoryCalendar
from syncd.commands.status import as_dict, render_text
from syncd.ical import RenderOptions, parse_event
from syncd.intake.request import IntakeRequest
from syncd.providers.base import Scope
from syncd.providers.recras import RecrasProvider
from syncd.reconcile.cycle import Result, Sync, run_cycle
from syncd.reconcile.policy import CalendarDelete, Direction, Policy
from syncd.reconcile.render import SyncRenderer
from syncd.state.history import sync_status
from syncd.state.store import Store
from tests.crash import Crash
from tests.recras_kit import DAY, NOW, provider_for, sandbox
from tests.servers import DavServer

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", pytest.param("radicale", marks=pytest.mark.slow)])
async def calendar(request: pytest.FixtureRequest) -> AsyncIterator[Calendar]:
    if request.param == "memory":
        made: Calendar = MemoryCalendar("desk")
    else:
        server: DavServer = request.getfixturevalue("radicale")
        made = CaldavCalendar("desk", url=server.new_collection(), timeout=30)
    yield made
    await made.aclose()


class CrashAfterBooking(RecrasProvider):
    """Dies once right after Recras made the booking, before syncd hears its id."""

    crash = True

    async def book_from_event(self, scope: Scope, request: IntakeRequest) -> str:
        made = await super().book_from_event(scope, request)
        if self.crash:
            self.crash = False
            raise Crash
        return made


def make_sync(provider: RecrasProvider, calendar: Calendar, intake: bool = True) -> Sync:
    policy = Policy(
        sync="escape",
        account=provider.name,
        calendars=(calendar.name,),
        direction=Direction.TWO_WAY,
        calendar_delete=CalendarDelete.CANCEL,
    )
    renderer = SyncRenderer(provider.name, RenderOptions("escape"))
    return Sync(
        policy,
        provider,
        {calendar.name: calendar},
        renderer,
        intake=calendar.name if intake else "",
    )


async def shown(calendar: Calendar) -> dict[str, icalendar.Event]:
    """Every event by href, as a person's client reads it."""
    found = {}
    for item in (await calendar.changes(None)).changed:
        found[item.href] = icalendar.Calendar.from_ical(item.ics).walk("VEVENT")[0]
    return found


def linked(events: dict[str, icalendar.Event]) -> dict[str, icalendar.Event]:
    return {str(e["X-SYNCD-ID"]): e for e in events.values() if "X-SYNCD-ID" in e}


def person_event(uid: str, start: datetime, summary: str, email: str = "ann@example.org") -> str:
    event = icalendar.Event.new(
        uid=uid, start=start, end=start + timedelta(hours=1), summary=summary
    )
    event.add("DESCRIPTION", "persons: 3\nphone: 050-1234567")
    event.add(
        "ATTENDEE", f"mailto:{email}" if email else "mailto:", parameters={"CN": "Ann de Vries"}
    )
    cal = icalendar.Calendar()
    cal.add("VERSION", "2.0")
    cal.add("PRODID", "-//a person//EN")
    cal.add_component(event)
    cal.add_missing_timezones()
    return cal.to_ical().decode()


async def cycle(store: Store, sync: Sync) -> Result:
    return await run_cycle(store, sync, now=NOW)


async def test_bookings_appear_and_follow_the_business(store: Store, calendar: Calendar) -> None:
    state = sandbox()
    made = state.seed(20, seed=3)
    async with provider_for(state) as provider:
        sync = make_sync(provider, calendar, intake=False)
        first = await cycle(store, sync)
        assert first.plan.counts()["create"] == 20
        events = linked(await shown(calendar))
        assert set(events) == {str(b.id) for b in made}
        one = made[0]
        assert events[str(one.id)].decoded("DTSTART") == one.begin
        assert "Persons:" in str(events[str(one.id)]["DESCRIPTION"])

        moved, cancelled, removed = made[1], made[2], made[3]
        state.reschedule(moved.id, moved.begin + timedelta(days=1))
        state.set_status(cancelled.id, "geannuleerd")
        state.remove(removed.id)
        state.requests.clear()
        await cycle(store, sync)
        assert dict(state.requests) == {"boekingen": 1}
        events = linked(await shown(calendar))
        assert events[str(moved.id)].decoded("DTSTART") == moved.begin
        assert str(events[str(cancelled.id)]["STATUS"]) == "CANCELLED"
        assert str(removed.id) not in events

        state.requests.clear()
        idle = await cycle(store, sync)
        assert (idle.lines, dict(state.requests)) == ([], {"boekingen": 1})

        # A booking Recras serves broken is named in status and skipped; the rest goes on.
        broken, fine = made[5], made[6]
        state.corrupt(broken.id, "eind", "gisteren")
        state.reschedule(fine.id, fine.begin + timedelta(hours=1))
        await cycle(store, sync)
        events = linked(await shown(calendar))
        assert events[str(fine.id)].decoded("DTSTART") == fine.begin
        assert str(broken.id) in events, "a broken booking is not taken for deleted"
        errors = sync_status(store.engine, "escape").item_errors
        assert [(e["item"], e["field"]) for e in errors] == [
            (f"recras/{broken.id}", "boekingsregels[0].eind")
        ]

        # A person cancels an event by deleting it: the booking's status is set.
        target = made[4]
        item = next(
            i for i in (await calendar.changes(None)).changed if f"X-SYNCD-ID:{target.id}" in i.ics
        )
        await calendar.delete(item.href, item.etag)
        await cycle(store, sync)
        assert state.bookings[target.id].status == "geannuleerd"


async def test_intake_events_become_bookings_or_are_marked_not_booked(
    store: Store, calendar: Calendar
) -> None:
    state = sandbox()
    state.book(1, DAY + timedelta(hours=6), {1: 6})  # 16:00 is full
    await calendar.create("before", person_event("before", DAY + timedelta(hours=2), "Old note"))
    async with provider_for(state) as provider:
        sync = make_sync(provider, calendar)
        await cycle(store, sync)
        assert len(state.bookings) == 1, "events already there are not booked"

        free = await calendar.create(
            "free", person_event("free", DAY + timedelta(hours=4), "Team outing")
        )
        await calendar.create("full", person_event("full", DAY + timedelta(hours=6), "Birthday"))
        await calendar.create(
            "bad", person_event("bad", DAY + timedelta(hours=8), "No mail", email="")
        )
        result = await cycle(store, sync)
        assert [href for href, _ in result.intake.outcome.booked] == [free.href]
        booked = [b for b in state.bookings.values() if b.begin == DAY + timedelta(hours=4)]
        assert len(booked) == 1
        assert [line.amount for line in booked[0].lines] == [3]

        await cycle(store, sync)  # the engine sees the booking it already shows: no change
        events = await shown(calendar)
        mine = linked(events)
        assert set(mine) == {str(booked[0].id), "1"}
        assert mine[str(booked[0].id)].decoded("DTSTART") == DAY + timedelta(hours=4)
        titles = sorted(str(e["SUMMARY"]) for e in events.values() if "X-SYNCD-ID" not in e)
        assert titles == [
            "Old note",
            "[not booked: Contactformulier ongeldig: contactpersoon.email1 is verplicht] No mail",
            "[not booked: no free start at 2031-03-03 16:00] Birthday",
        ]
        status = "\n".join(render_text(as_dict(sync_status(store.engine, "escape"), NOW)))
        assert "Contactformulier ongeldig: contactpersoon.email1 is verplicht" in status
        assert "no free start at 2031-03-03 16:00" in status

        state.requests.clear()
        for _ in range(3):
            quiet = await cycle(store, sync)
            assert quiet.intake.actions == []
        assert dict(state.requests) == {"boekingen": 3}, "refusals are not retried"


async def test_a_crash_between_reserveer_and_recording_the_id_books_once(
    store: Store, calendar: Calendar
) -> None:
    state = sandbox()
    async with provider_for(state, kind=CrashAfterBooking) as provider:
        sync = make_sync(provider, calendar)
        await cycle(store, sync)
        await calendar.create("free", person_event("free", DAY + timedelta(hours=4), "Team outing"))
        with pytest.raises(Crash):
            await cycle(store, sync)
        assert len(state.bookings) == 1

        state.requests.clear()
        await cycle(store, sync)
        assert "reserveer" not in state.requests
        assert len(state.bookings) == 1
        [booking] = state.bookings.values()
        assert booking.contact["boeking.opmerkingen"].startswith("syncd")
        await cycle(store, sync)
        mine = linked(await shown(calendar))
        assert list(mine) == [str(booking.id)]
        assert len(await shown(calendar)) == 1, "the person's event was replaced, not kept"
        assert (
            parse_event(next(i.ics for i in (await calendar.changes(None)).changed), "x").sync
            == "escape"
        )
