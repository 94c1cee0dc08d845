"""The sync engine proven by a state machine (after vdirsyncer's ``SyncMachine``).

Hypothesis drives a memory provider (the business) and a memory calendar (a person with a
calendar app) with random books, moves, cancels, edits and deletes on both sides, injects
transient failures, and kills the engine between any two writes of ``apply()`` -- before the
write, or after it reached the server and before its state was committed -- then restarts it
on the same database. After every sync that completes, the invariants must hold:

* the sides agree under the policy: every appointment shown is shown exactly as syncd renders
  the provider's current version, cancelled ones are hidden or marked as the policy says;
* no appointment has two events, and no event outlives its appointment after a full scan;
* nothing acknowledged is lost: a person's move or cancel in a two-way sync, with no
  competing change at the provider, is at the provider afterwards;
* a one-way sync never writes to the provider.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from syncd.calendars.memory import MemoryCalendar
from syncd.errors import TransientError
from syncd.ical import RenderOptions, parse_event
from syncd.model import Status
from syncd.providers.memory import MemoryProvider
from syncd.reconcile.cycle import Sync, run_cycle
from syncd.reconcile.policy import (
    CalendarDelete,
    CancelledPolicy,
    ConflictPolicy,
    Direction,
    Policy,
)
from syncd.reconcile.render import SyncRenderer
from syncd.state.store import Store
from tests.crash import Crash, CrashingCalendar, CrashingProvider

AMS = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 10, 20, 9, 0, tzinfo=AMS)  # the autumn DST change is inside the window
SYNC = "s"
CAL = "cal"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


policies = st.builds(
    Policy,
    sync=st.just(SYNC),
    account=st.just("shop"),
    calendars=st.just((CAL,)),
    direction=st.sampled_from(Direction),
    conflict=st.sampled_from(ConflictPolicy),
    calendar_delete=st.sampled_from(CalendarDelete),
    cancelled=st.sampled_from(CancelledPolicy),
    allow_mass_delete=st.just(True),
).filter(
    lambda p: (
        p.two_way
        or (
            p.calendar_delete is not CalendarDelete.CANCEL
            and p.conflict is not ConflictPolicy.CALENDAR_WINS
        )
    )
)


class SyncMachine(RuleBasedStateMachine):
    appointments = Bundle("appointments")

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.db = f"sqlite:///{Path(self.tmp.name) / 'state.db'}"
        self.provider = MemoryProvider("shop", now=lambda: NOW)
        self.calendar = MemoryCalendar(CAL)
        self.store = Store(self.db)
        self.promised: dict[str, tuple[datetime, datetime] | Status] = {}
        self.touched: set[str] = set()  # changed by the business since the last full sync
        self.provider_writes = 0

    def teardown(self) -> None:
        self.store.close()
        self.tmp.cleanup()

    @initialize(policy=policies)
    def choose_policy(self, policy: Policy) -> None:
        self.policy = policy
        self.renderer = SyncRenderer("shop", RenderOptions(sync=SYNC))

    # -- the business ------------------------------------------------------------------------

    @rule(
        target=appointments,
        day=st.integers(-3, 40),
        hour=st.integers(0, 23),
        minutes=st.sampled_from([15, 30, 60, 90, 24 * 60]),
    )
    def book(self, day: int, hour: int, minutes: int) -> str:
        start = (NOW + timedelta(days=day)).replace(hour=hour, minute=0)
        return self.provider.book(
            start, start + timedelta(minutes=minutes), title=f"B{day}"
        ).native_id

    @rule(nid=appointments, hours=st.integers(-30, 30).filter(bool))
    def business_moves(self, nid: str, hours: int) -> None:
        current = self.provider.appointments().get(nid)
        if current is not None:
            delta = timedelta(hours=hours)
            self.provider.reschedule(nid, current.start + delta, current.end + delta)
            self._business_touched(nid)

    @rule(nid=appointments)
    def business_cancels(self, nid: str) -> None:
        if nid in self.provider.appointments():
            self.provider.cancel_by_business(nid)
            self._business_touched(nid)

    @rule(nid=appointments, title=st.sampled_from(["Knippen", "Kleuren", "Föhnen; kort"]))
    def business_edits(self, nid: str, title: str) -> None:
        if nid in self.provider.appointments():
            self.provider.edit(nid, title=title)
            self._business_touched(nid)

    @rule(nid=consumes(appointments))
    def business_deletes(self, nid: str) -> None:
        if nid in self.provider.appointments():
            self.provider.hard_delete(nid)
            self._business_touched(nid)

    def _business_touched(self, nid: str) -> None:
        """A competing change at the provider: the conflict policy decides, so no promise."""
        self.promised.pop(nid, None)
        self.touched.add(nid)

    def _promise(self, nid: str, what: tuple[datetime, datetime] | Status) -> None:
        if self.policy.two_way and nid not in self.touched:
            self.promised[nid] = what

    # -- the person with a calendar app ------------------------------------------------------

    def _event(self, nid: str) -> tuple[str, str] | None:
        for href, (_etag, ics) in self.calendar.items().items():
            if parse_event(ics, href).native_id == nid:
                return href, ics
        return None

    @rule(nid=appointments, hours=st.integers(-20, 20).filter(bool))
    def person_moves(self, nid: str, hours: int) -> None:
        found = self._event(nid)
        if found is None:
            return
        href, ics = found
        event = parse_event(ics, href)
        start, end = event.start + timedelta(hours=hours), event.end + timedelta(hours=hours)
        self.calendar.user_put(href, _retime(ics, start, end))
        if not event.cancelled:
            self._promise(nid, (start, end))

    @rule(nid=appointments)
    def person_cancels(self, nid: str) -> None:
        found = self._event(nid)
        if found is None:
            return
        href, ics = found
        if parse_event(ics, href).cancelled:
            return
        self.calendar.user_put(href, ics.replace("STATUS:CONFIRMED", "STATUS:CANCELLED"))
        self._promise(nid, Status.CANCELLED)

    @rule(nid=appointments, summary=st.sampled_from(["mine now", "Lunch"]))
    def person_retitles(self, nid: str, summary: str) -> None:
        found = self._event(nid)
        if found is not None:
            href, ics = found
            self.calendar.user_put(href, _resummary(ics, summary))

    @rule(nid=appointments)
    def person_deletes(self, nid: str) -> None:
        found = self._event(nid)
        if found is not None:
            self.calendar.user_delete(found[0])
            if self.policy.calendar_delete is CalendarDelete.CANCEL:
                self._promise(nid, Status.CANCELLED)
            else:
                self.promised.pop(nid, None)

    # -- failures and the engine -------------------------------------------------------------

    @rule(
        side=st.sampled_from(["provider", "calendar"]),
        method=st.sampled_from(
            ["pull", "changes", "create", "update", "delete", "move", "cancel", "get"]
        ),
    )
    def transient_failure(self, side: str, method: str) -> None:
        backend: Any = self.provider if side == "provider" else self.calendar
        backend.fail_next(1, lambda: TransientError(side, "503 Service Unavailable"), method)

    def _sync(self, *, full: bool, crash_at: int | None = None, after: bool = False) -> bool:
        provider = CrashingProvider(self.provider, crash_at, after)
        calendar = CrashingCalendar(self.calendar, crash_at, after, provider.counter)
        sync = Sync(
            self.policy,
            provider,
            {CAL: calendar},
            self.renderer,
            window_past=timedelta(days=10),
            window_future=timedelta(days=60),
        )
        try:
            run(run_cycle(self.store, sync, full=full, now=NOW, batch=3))
        except Crash:
            self.store.close()  # the process died; a new one opens the same database
            self.store = Store(self.db)
            return False
        except TransientError:
            return False
        finally:
            self.provider_writes += provider.writes
        return True

    @rule(full=st.booleans())
    def sync(self, full: bool) -> None:
        self.provider.faults.clear()
        self.calendar.faults.clear()
        if self._sync(full=full):
            self._check(full)
        else:  # a failed cycle is retried, as the scheduler would
            self.provider.faults.clear()
            self.calendar.faults.clear()
            assert self._sync(full=full)
            self._check(full)

    @rule(crash_at=st.integers(0, 6), after=st.booleans())
    def crash_then_restart(self, crash_at: int, after: bool) -> None:
        self._sync(full=False, crash_at=crash_at, after=after)

    @precondition(lambda self: hasattr(self, "policy"))
    @invariant()
    def one_way_never_writes_to_the_provider(self) -> None:
        if not self.policy.two_way:
            assert self.provider_writes == 0

    # -- the invariants ------------------------------------------------------------------

    def _check(self, full: bool) -> None:
        events: dict[str, list[Any]] = {}
        for href, (_etag, ics) in self.calendar.items().items():
            event = parse_event(ics, href)
            if event.sync == SYNC and event.native_id:
                events.setdefault(event.native_id, []).append(event)
        truth = self.provider.appointments()
        records = self.store.records(SYNC)
        for nid, found in events.items():
            assert len(found) == 1, f"appointment {nid} has {len(found)} events"
            if full:
                assert nid in truth, f"event for deleted appointment {nid} survived a full scan"
        for nid, appointment in truth.items():
            hidden = appointment.cancelled and self.policy.cancelled is CancelledPolicy.DELETE
            link = records[nid].links.get(CAL) if nid in records else None
            detached = link is not None and not link.href
            shown = events.get(nid, [])
            if hidden or detached:
                assert not shown or detached, f"cancelled {nid} still shown"
                continue
            assert shown, f"appointment {nid} has no event"
            assert shown[0].hash == self.renderer.hash(appointment, CAL), f"{nid} differs"
        for nid, promise in list(self.promised.items()):
            current = truth.get(nid)
            if current is None:
                continue
            if promise is Status.CANCELLED:
                assert current.cancelled, f"person's cancel of {nid} was lost"
            elif not current.cancelled:
                assert (current.start, current.end) == promise, f"person's move of {nid} lost"
            del self.promised[nid]
        self.touched.clear()


def _retime(ics: str, start: datetime, end: datetime) -> str:
    from icalendar import Calendar

    cal = Calendar.from_ical(ics)
    for event in cal.walk("VEVENT"):
        event["DTSTART"].dt = start  # keeps the TZID parameter in step with the value
        del event["DTSTART"]
        del event["DTEND"]
        event.add("DTSTART", start)
        event.add("DTEND", end)
    return cal.to_ical().decode()


def _resummary(ics: str, summary: str) -> str:
    from icalendar import Calendar

    cal = Calendar.from_ical(ics)
    for event in cal.walk("VEVENT"):
        del event["SUMMARY"]
        event.add("SUMMARY", summary)
    return cal.to_ical().decode()


SyncMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_sync_machine = pytest.mark.slow(SyncMachine.TestCase)
