"""The OnlineAfspraken end-to-end kit: one sandboxed account, its syncs, and a person's edits.

``World`` runs syncs of one sandbox account one cycle at a time on a ``ManualClock`` that
moves a minute per cycle (the sandbox stamps each change differently, as a live server
does). ``requests()`` reads and resets the sandbox's own request counter, which is how the
tests count what syncd asked without trusting syncd's counts. The helpers read a calendar
as a person's client would and edit events as one would.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar

from syncd.calendars.base import Calendar
from syncd.ical import RenderOptions, parse_event
from syncd.ical.parse import ParsedEvent
from syncd.model import CalendarItem
from syncd.providers.base import Window
from syncd.providers.onlineafspraken import OnlineAfsprakenProvider
from syncd.reconcile.cycle import Result, Sync, run_cycle
from syncd.reconcile.policy import CalendarDelete, Direction, Policy
from syncd.reconcile.render import SyncRenderer
from syncd.sandbox.onlineafspraken_state import Booking, ManualClock, SandboxState
from syncd.state.store import Store

AMS = ZoneInfo("Europe/Amsterdam")
T0 = datetime(2026, 10, 19, 7, 30, tzinfo=AMS)  # a Monday; summer time ends on Sunday the 25th
EVERYTHING = Window(T0 - timedelta(days=400), T0 + timedelta(days=400))
Shown = dict[str, tuple[CalendarItem, ParsedEvent]]


@dataclass
class World:
    """One account, its sandbox and clock, and syncs of it run by ``cycle``."""

    state: SandboxState
    clock: ManualClock
    provider: OnlineAfsprakenProvider
    store: Store

    def sync(self, name: str, calendar: Calendar, agenda: str = "1") -> Sync:
        policy = Policy(
            sync=name,
            account="oa",
            calendars=(calendar.name,),
            direction=Direction.TWO_WAY,
            calendar_delete=CalendarDelete.CANCEL,
        )
        renderer = SyncRenderer("oa", RenderOptions(name))
        scope = {"agenda": agenda}
        return Sync(policy, self.provider, {calendar.name: calendar}, renderer, scope)

    async def cycle(self, sync: Sync, *, full: bool = False) -> Result:
        """One cycle a minute after the last: the sandbox stamps each change differently."""
        self.clock.advance(60)
        now = datetime.fromtimestamp(self.clock(), AMS)
        return await run_cycle(self.store, sync, full=full, now=now)

    async def settle(self, sync: Sync) -> None:
        """Cycles until one does nothing: our own writes come back once as echoes."""
        for _ in range(4):
            if not (await self.cycle(sync)).plan.actions:
                return
        raise AssertionError("the sync does not settle")

    def requests(self) -> Counter[str]:
        """The sandbox's requests since the last call."""
        seen = Counter(self.state.requests)
        self.state.requests.clear()
        return seen

    def active(self, count: int, before: datetime | None = None) -> list[Booking]:
        """``count`` confirmed, enabled bookings (starting before ``before``), by id."""
        found = [
            b
            for b in sorted(self.state.appointments.values(), key=lambda b: b.id)
            if b.status == 1 and b.label == 2 and (before is None or b.start < before)
        ]
        assert len(found) >= count
        return found[:count]


async def events(calendar: Calendar) -> Shown:
    """The calendar's events by native id, as a person's client would read them."""
    found: Shown = {}
    for item in await calendar.items_between(EVERYTHING):
        parsed = parse_event(item.ics, item.href)
        assert parsed.native_id is not None
        assert parsed.native_id not in found, f"two events for {parsed.native_id}"
        found[parsed.native_id] = (item, parsed)
    return found


def wall(moment: datetime) -> datetime:
    """An instant as the sandbox's naive Amsterdam wall time."""
    return moment.astimezone(AMS).replace(tzinfo=None)


def local(booking_time: datetime) -> datetime:
    """A sandbox wall time as the instant it names (no test uses the repeated hour)."""
    return booking_time.replace(tzinfo=AMS)


def moved_ics(ics: str, start: datetime, end: datetime) -> str:
    """The event as a person's calendar client saves it after dragging it elsewhere."""
    calendar = icalendar.Calendar.from_ical(ics)
    for event in calendar.walk("VEVENT"):
        for key, value in (("DTSTART", start), ("DTEND", end)):
            del event[key]
            event.add(key, value)
        event["SEQUENCE"] = int(event.get("SEQUENCE", 0)) + 1
    text: bytes = calendar.to_ical()
    return text.decode()


def snapshot(shown: Shown) -> dict[str, tuple[object, ...]]:
    """What a person sees of each event: when, what, and whether it is cancelled."""
    return {nid: (e.start, e.end, e.summary, e.cancelled) for nid, (_, e) in shown.items()}
