"""Qmatic end to end: intake calendar -> provider -> engine -> a real calendar, and back.

The sandbox is served in-process (``httpx.ASGITransport`` into the provider's client); the
calendar is a real Radicale collection (``slow``) or, for a quick run, the memory calendar;
the state store is SQLite; each step is one ``run_cycle``, as the daemon runs it. A person
adds, drags and deletes events with the calendar's own calls; the business acts at the desk
through the sandbox's methods, which cost no request. Issue 8, acceptance 2.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import icalendar
import pytest

from syncd.calendars.base import Calendar
from syncd.calendars.caldav import CaldavCalendar
from syncd.calendars.memory import MemoryCalendar
from syncd.errors import TransientError
from syncd.ical import RenderOptions, parse_event
from syncd.ical.parse import ParsedEvent
from syncd.intake.journal import IntakeLedger
from syncd.model import CalendarItem
from syncd.providers.base import Window
from syncd.providers.qmatic import QmaticProvider
from syncd.providers.qmatic_client import Credentials
from syncd.reconcile.cycle import Result, Sync, run_cycle
from syncd.reconcile.policy import CalendarDelete, Direction, Policy
from syncd.reconcile.render import SyncRenderer
from syncd.sandbox.onlineafspraken_state import ManualClock
from syncd.sandbox.qmatic import create_app
from syncd.sandbox.qmatic_state import QmaticState
from syncd.state.history import sync_status
from syncd.state.store import Store
from tests.crash import Crash
from tests.onlineafspraken_kit import moved_ics
from tests.qmatic_kit import AMS, CENTRUM, OTHER, PASSPORT, T0, at, make_state
from tests.servers import DavServer

pytestmark = pytest.mark.anyio
EVERYTHING = Window(T0 - timedelta(days=60), T0 + timedelta(days=400))
Hook = Callable[[httpx.Response], Awaitable[None]]


@pytest.fixture(params=["memory", pytest.param("radicale", marks=pytest.mark.slow)])
async def calendar(request: pytest.FixtureRequest) -> AsyncIterator[Calendar]:
    if request.param == "memory":
        made: Calendar = MemoryCalendar("desk")
    else:
        server: DavServer = request.getfixturevalue("radicale")
        made = CaldavCalendar("desk", url=server.new_collection(), timeout=30)
    yield made
    await made.aclose()


@dataclass
class Office:
    """One Qmatic account with an intake calendar, run one cycle at a time.

    ``hooks`` run after every HTTP answer the provider gets, to change the world mid-cycle.
    """

    state: QmaticState
    clock: ManualClock
    store: Store
    calendar: Calendar
    hooks: list[Hook] = field(default_factory=list)

    @asynccontextmanager
    async def provider(self) -> AsyncIterator[QmaticProvider]:
        """A new provider object (a fresh process, as far as it can tell)."""

        async def hook(response: httpx.Response) -> None:
            for run in list(self.hooks):
                await run(response)

        transport = httpx.ASGITransport(app=create_app(self.state))
        async with httpx.AsyncClient(transport=transport, event_hooks={"response": [hook]}) as http:
            yield QmaticProvider(
                "qm",
                "http://sandbox",
                Credentials(self.state.account, self.state.client_id, self.state.client_secret),
                self.state.tenant_id,
                service=PASSPORT,
                branch=CENTRUM,
                client=http,
                now=self.clock,
            )

    def sync(self, provider: QmaticProvider) -> Sync:
        policy = Policy(
            sync="office",
            account="qm",
            calendars=(self.calendar.name,),
            direction=Direction.TWO_WAY,
            calendar_delete=CalendarDelete.CANCEL,
        )
        renderer = SyncRenderer("qm", RenderOptions("office"))
        calendars = {self.calendar.name: self.calendar}
        return Sync(policy, provider, calendars, renderer, intake=self.calendar.name)

    async def cycle(self, sync: Sync) -> Result:
        """One cycle a minute after the last."""
        self.clock.advance(60)
        return await run_cycle(self.store, sync, now=datetime.fromtimestamp(self.clock(), AMS))

    async def settle(self, sync: Sync) -> None:
        for _ in range(4):
            if not (await self.cycle(sync)).lines:
                return
        raise AssertionError("the sync does not settle")

    async def add(self, uid: str, start: datetime, minutes: int = 30) -> None:
        """A person adds an event for a customer to the intake calendar."""
        event = icalendar.Event.new(
            uid=uid, start=start, end=start + timedelta(minutes=minutes), summary="Passport"
        )
        event.add("ATTENDEE", "mailto:jan@example.org", parameters={"CN": "Jan Jansen"})
        wrapper = icalendar.Calendar()
        wrapper.add("VERSION", "2.0")
        wrapper.add("PRODID", "-//a person's calendar app//EN")
        wrapper.add_component(event)
        wrapper.add_missing_timezones()
        await self.calendar.create(uid, wrapper.to_ical().decode())

    async def shown(self) -> dict[str, tuple[CalendarItem, ParsedEvent]]:
        """Every event by native id, or by UID for a person's event not linked to a booking."""
        found = {}
        for item in await self.calendar.items_between(EVERYTHING):
            parsed = parse_event(item.ics, item.href)
            found[parsed.native_id or parsed.uid] = (item, parsed)
        return found

    def requests(self) -> dict[str, int]:
        seen = dict(self.state.requests)
        self.state.requests.clear()
        return seen


@pytest.fixture
def office(store: Store, calendar: Calendar) -> Office:
    clock = ManualClock(T0)
    return Office(make_state(clock), clock, store, calendar)


def booked_event(shown: dict[str, tuple[CalendarItem, ParsedEvent]]) -> tuple[str, CalendarItem]:
    """The one event linked to a booking: its native id and the item."""
    [(nid, (item, _))] = [(k, v) for k, v in shown.items() if v[1].native_id]
    return nid, item


# -- acceptance 2: intake, move, delete, full slot ----------------------------------------------


async def test_an_intake_event_is_booked_moved_and_cancelled_from_the_calendar(
    office: Office,
) -> None:
    state = office.state
    async with office.provider() as provider:
        sync = office.sync(provider)
        await office.cycle(sync)  # intake begins: what is there already is left alone
        await office.add("passport-jan", at(10))
        booked = await office.cycle(sync)
        assert booked.status == "ok"
        assert booked.intake.counts() == {"intake-book": 1, "intake-booked": 1}
        [made] = state.appointments.values()
        assert (made.start, made.customer["lastName"]) == (at(10), "Jansen")
        nid, item = booked_event(await office.shown())
        assert nid.endswith(made.id)
        assert "passport-jan" not in await office.shown(), "replaced by the booking's event"
        await office.settle(sync)
        office.requests()
        assert (await office.cycle(sync)).lines == []
        assert office.requests() == {"search": 1}, "an idle cycle: one search per customer"

        # The person drags the event: the appointment is rescheduled onto a new hold.
        await office.calendar.update(item.href, moved_ics(item.ics, at(14), at(14, 30)), item.etag)
        moved = await office.cycle(sync)
        assert moved.outcome.failed == []
        assert (state.get(made.id).start, state.reservations) == (at(14), {})
        sent = office.requests()
        assert (sent["reserve"], sent["reschedule"]) == (1, 1)
        await office.settle(sync)

        # The person deletes it: the appointment is cancelled.
        _, item = booked_event(await office.shown())
        await office.calendar.delete(item.href, item.etag)
        await office.cycle(sync)
        assert state.appointments == {}
        assert sync_status(office.store.engine, "office").conflicts == []
        await office.settle(sync)
        assert office.requests().get("delete") == 1


async def test_a_move_onto_a_full_slot_restores_the_event_with_the_reason(office: Office) -> None:
    state = office.state
    async with office.provider() as provider:
        sync = office.sync(provider)
        await office.cycle(sync)
        await office.add("passport-jan", at(10))
        await office.cycle(sync)
        await office.settle(sync)
        for _ in range(2):  # Centrum has two places at 15:00; the desk takes both
            state.book(at(15), personal_identifier=OTHER)
        [made] = [a for a in state.appointments.values() if a.personal_identifier != OTHER]
        nid, item = booked_event(await office.shown())
        await office.calendar.update(item.href, moved_ics(item.ics, at(15), at(15, 30)), item.etag)
        refused = await office.cycle(sync)
        assert refused.status == "ok"
        assert state.get(made.id).start == at(10)
        restored = (await office.shown())[nid][1]
        assert (restored.start, restored.end) == (at(10), at(10, 30))
        [conflict] = sync_status(office.store.engine, "office").conflicts
        assert conflict["resolution"] == "calendar restored"
        assert "15:00 is not a free timeslot; free that day:" in conflict["detail"]


async def test_an_event_on_a_full_slot_is_marked_not_booked_and_not_retried(
    office: Office,
) -> None:
    state = office.state
    for _ in range(2):
        state.book(at(11), personal_identifier=OTHER)
    async with office.provider() as provider:
        sync = office.sync(provider)
        await office.cycle(sync)
        await office.add("passport-jan", at(11))
        refused = await office.cycle(sync)
        assert refused.intake.counts().get("intake-refused") == 1
        _, event = (await office.shown())["passport-jan"]
        assert event.summary.startswith("[not booked: 2031-03-03 11:00 is not a free timeslot")
        [conflict] = sync_status(office.store.engine, "office").conflicts
        assert conflict["detail"].startswith("not booked: ")
        office.requests()
        for _ in range(3):
            await office.cycle(sync)
        assert "reserve" not in office.requests(), "never retried in a loop"
        assert len(state.appointments) == 2


# -- acceptance 2: tokens and crashes are invisible ----------------------------------------------


async def test_token_expiry_mid_run_is_invisible(office: Office) -> None:
    state = office.state
    async with office.provider() as provider:
        sync = office.sync(provider)
        await office.cycle(sync)
        await office.add("passport-jan", at(10))
        await office.add("passport-ann", at(10, 30))

        async def revoke_after_first_booking(response: httpx.Response) -> None:
            if response.request.url.path.endswith("/reservations") and state.appointments == {}:
                state.revoke_tokens()  # the server forgets every token, between two calls

        office.hooks.append(revoke_after_first_booking)
        booked = await office.cycle(sync)
        office.hooks.clear()
        assert (booked.status, booked.intake.counts()["intake-booked"]) == ("ok", 2)
        assert len(state.appointments) == 2
        assert office.requests()["token"] == 2

        # Hours later the token has run out: it is replaced before use, not after a 401.
        office.clock.advance(2 * 3600)
        office.requests()
        idle = await office.cycle(sync)
        assert (idle.status, idle.lines) == ("ok", [])
        assert office.requests() == {"token": 1, "search": 2}
        assert sync_status(office.store.engine, "office").item_errors == []


async def test_a_crash_between_confirm_and_record_books_once(office: Office) -> None:
    state = office.state
    async with office.provider() as provider:
        sync = office.sync(provider)
        await office.cycle(sync)
        await office.add("passport-jan", at(10))

        async def die_after_confirm(response: httpx.Response) -> None:
            if response.request.method == "PUT" and "/reservations/" in response.request.url.path:
                raise Crash  # the appointment exists; the process dies before recording it

        office.hooks.append(die_after_confirm)
        with pytest.raises(Crash):
            await office.cycle(sync)
        office.hooks.clear()
        [entry] = IntakeLedger(office.store).pending("office")
        assert entry.state == "started"
        assert len(state.appointments) == 1

    async with office.provider() as restarted:  # a new process: nothing in memory
        sync = office.sync(restarted)
        office.requests()
        await office.cycle(sync)
        sent = office.requests()
        assert not {"reserve", "confirm"} & sent.keys()
        assert len(state.appointments) == 1
        [made] = state.appointments.values()
        nid, _ = booked_event(await office.shown())
        assert nid.endswith(made.id)
        assert IntakeLedger(office.store).pending("office") == []
        await office.settle(sync)


async def test_a_lost_confirm_answer_is_adopted_on_the_next_cycle(office: Office) -> None:
    state = office.state
    async with office.provider() as provider:
        sync = office.sync(provider)
        await office.cycle(sync)
        await office.add("passport-jan", at(10))
        state.faults.lost_replies, state.faults.only = 1, "confirm"
        with pytest.raises(TransientError):
            await office.cycle(sync)
        await office.cycle(sync)  # resumed first: found by its personalIdentifier
        [made] = state.appointments.values()
        assert state.requests["reserve"] == 1
        nid, _ = booked_event(await office.shown())
        assert nid.endswith(made.id)
        assert "passport-jan" not in await office.shown()


# -- the business's side, and bad payloads --------------------------------------------------------


async def test_desk_changes_reach_the_calendar_and_bad_ones_are_named(office: Office) -> None:
    state = office.state
    async with office.provider() as provider:
        sync = office.sync(provider)
        await office.cycle(sync)
        await office.add("passport-jan", at(10))
        await office.add("passport-ann", at(11))
        await office.cycle(sync)
        await office.settle(sync)
        first, second = sorted(state.appointments.values(), key=lambda a: a.start)
        state.move(first.id, at(13))
        state.corrupt(second.id, "startTime", "2031-02-30T11:00:00+01:00")
        result = await office.cycle(sync)
        assert result.status == "ok"
        [(item, fld, _)] = result.plan.bad_items
        assert (item.endswith(second.id), fld) == (True, "startTime")
        shown = {nid: e for nid, (_, e) in (await office.shown()).items()}
        assert shown[next(n for n in shown if n.endswith(first.id))].start == at(13)
        assert shown[next(n for n in shown if n.endswith(second.id))].start == at(11)
        errors = sync_status(office.store.engine, "office").item_errors
        assert [e["field"] for e in errors] == ["startTime"]
        state.cancel(first.id)  # at the desk: gone from every search
        await office.cycle(sync)
        shown = {nid: e for nid, (_, e) in (await office.shown()).items()}
        assert shown[next(n for n in shown if n.endswith(first.id))].cancelled


async def test_an_event_marked_cancelled_cancels_the_appointment(office: Office) -> None:
    async with office.provider() as provider:
        sync = office.sync(provider)
        await office.cycle(sync)
        await office.add("passport-jan", at(10))
        await office.cycle(sync)
        await office.settle(sync)
        _, item = booked_event(await office.shown())
        cancelled = item.ics.replace("STATUS:CONFIRMED", "STATUS:CANCELLED")
        assert cancelled != item.ics
        await office.calendar.update(item.href, cancelled, item.etag)
        result = await office.cycle(sync)
        assert result.outcome.failed == []
        assert office.state.appointments == {}
        await office.settle(sync)
