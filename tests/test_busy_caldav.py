"""Busy sources on real CalDAV servers: a person's calendar, written by a client over HTTP,
becomes exactly the expected blocks at a memory provider, and follows later edits.

The calendar holds the issue's cases at once: a weekly series with one moved and one
cancelled instance, a transparent event, a declined invitation, an all-day event (read by
two syncs, one per policy) and series across both DST changes of Europe/Amsterdam."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date

import pytest

from syncd.busy.options import AllDay
from syncd.calendars.caldav import CaldavCalendar
from syncd.providers.memory import MemoryProvider
from syncd.reconcile.cycle import run_cycle
from syncd.state.store import Store
from tests.servers import PASSWORD, USER, DavServer
from tests.test_busy import NOW, OWNER, at, busy_sync, override, source_event, spans

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

GYM = source_event(
    "gym",
    at(12, 9),
    at(12, 10),
    rrule="FREQ=WEEKLY;COUNT=4",
    overrides=[
        override("gym", at(19, 9), at(20, 15)),
        override("gym", at(26, 9), at(26, 9), cancelled=True),
    ],
)
EVENTS = {
    "gym": GYM,
    "free": source_event("free", at(13, 9), at(13, 17), transparent=True),
    "invite": source_event(
        "invite",
        at(16, 14),
        at(16, 15),
        attendees=[(OWNER, "DECLINED"), ("bob@example.org", "ACCEPTED")],
    ),
    "dayoff": source_event("dayoff", date(2026, 3, 17), date(2026, 3, 18)),
    # 09:00 on both sides of the spring change (29 March) and of the autumn one (25 October)
    "spring": source_event("spring", at(27, 9), at(27, 10), rrule="FREQ=DAILY;COUNT=4"),
    "autumn": source_event(
        "autumn", at(24, 9, month=10), at(24, 10, month=10), rrule="FREQ=DAILY;COUNT=2"
    ),
}
TIMED = [
    ("03-12 09:00", "10:00"),  # gym, first week
    ("03-20 15:00", "16:00"),  # gym, the moved instance; the cancelled one (26th) is absent
    ("03-27 09:00", "10:00"),
    ("03-28 09:00", "10:00"),
    ("03-29 09:00", "10:00"),  # the first day of summer time
    ("03-30 09:00", "10:00"),
    ("04-02 09:00", "10:00"),  # gym, last week
    ("10-24 09:00", "10:00"),
    ("10-25 09:00", "10:00"),  # the first day of winter time
]
DAY_OFF = ("03-17 00:00", "00:00")


@dataclass
class Source:
    server: DavServer
    url: str
    calendar: CaldavCalendar

    def put(self, name: str, ics: str) -> None:
        self.server.put(f"{self.url}{name}.ics", ics)


@pytest.fixture
async def source(dav_server: DavServer) -> AsyncIterator[Source]:
    url = dav_server.new_collection()
    for name, ics in EVENTS.items():
        dav_server.put(f"{url}{name}.ics", ics)
    calendar = CaldavCalendar("private", url=url, username=USER, password=PASSWORD)
    yield Source(dav_server, url, calendar)
    await calendar.aclose()


async def test_a_persons_calendar_becomes_exactly_the_expected_blocks(
    store: Store, source: Source
) -> None:
    blocking, skipping = MemoryProvider("shop"), MemoryProvider("shop")
    syncs = [
        busy_sync(blocking, source.calendar, name="block", all_day=AllDay.BLOCK),
        busy_sync(skipping, source.calendar, name="skip", all_day=AllDay.SKIP),
    ]
    for sync in syncs:
        await run_cycle(store, sync, now=NOW)
    assert spans(blocking.busy_blocks()) == sorted([*TIMED, DAY_OFF])
    assert spans(skipping.busy_blocks()) == TIMED

    # A full cycle asks the server for everything in the window (a time-range REPORT): it
    # must find the same occurrences, so nothing is added or removed.
    for sync in syncs:
        assert (await run_cycle(store, sync, full=True, now=NOW)).busy.actions == []

    # The person edits: cancels one more gym instance, accepts the invitation after all,
    # makes the free event busy, deletes the day off.
    gym = GYM.replace("END:VCALENDAR", "")
    cancel = override("gym", at(12, 9), at(12, 9), cancelled=True).to_ical().decode()
    source.put("gym", f"{gym}{cancel}END:VCALENDAR\r\n")
    source.put("invite", EVENTS["invite"].replace("PARTSTAT=DECLINED", "PARTSTAT=ACCEPTED"))
    source.put("free", EVENTS["free"].replace("TRANSP:TRANSPARENT", "TRANSP:OPAQUE"))
    source.server.remove(f"{source.url}dayoff.ics")
    before = set(blocking.busy_blocks())
    results = [await run_cycle(store, sync, now=NOW) for sync in syncs]

    edited = [*TIMED[1:], ("03-13 09:00", "17:00"), ("03-16 14:00", "15:00")]
    assert spans(blocking.busy_blocks()) == sorted(edited)
    assert spans(skipping.busy_blocks()) == sorted(edited)
    assert results[0].busy.counts() == {"busy-add": 2, "busy-remove": 2}
    untouched = before & set(blocking.busy_blocks())
    assert len(untouched) == len(TIMED) - 1, "only the changed events' blocks were redone"
