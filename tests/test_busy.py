"""Busy time: which source events block time (pure expansion), and whole cycles on memory
backends that move, remove and recover blocks. tests/test_busy_caldav.py runs the issue's
scenarios against Radicale; the helpers here build the source events for both."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest

from syncd.busy.expand import MAX_OCCURRENCES, busy_blocks
from syncd.busy.options import AllDay, BusyOptions
from syncd.calendars.memory import MemoryCalendar
from syncd.errors import BadItem
from syncd.ical import RenderOptions
from syncd.model import UTC, BusyBlock, CalendarItem
from syncd.providers.base import Window
from syncd.providers.memory import MemoryProvider
from syncd.reconcile.cycle import Sync
from syncd.reconcile.policy import Policy
from syncd.reconcile.render import SyncRenderer

AMS = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 3, 10, 8, 0, tzinfo=AMS)  # the March DST change (29th) is ahead
OWNER = "anna@example.org"
WINDOW = Window(NOW, NOW + timedelta(days=60))


# -- source events, as a person's calendar client writes them ---------------------------------


def override(
    uid: str,
    recurrence_id: datetime,
    start: datetime,
    *,
    minutes: int = 60,
    cancelled: bool = False,
) -> icalendar.Event:
    """One instance of a series moved (or cancelled) on its own."""
    event = icalendar.Event.new(
        uid=uid, start=start, end=start + timedelta(minutes=minutes), recurrence_id=recurrence_id
    )
    if cancelled:
        event.add("STATUS", "CANCELLED")
    return event


def source_event(
    uid: str,
    start: datetime | date,
    end: datetime | date,
    *,
    rrule: str = "",
    exdates: Sequence[datetime] = (),
    overrides: Sequence[icalendar.Event] = (),
    transparent: bool = False,
    attendees: Sequence[tuple[str, str]] = (),
    own: bool = False,
) -> str:
    """A calendar object with one event (a series when ``rrule`` is given), with VTIMEZONEs."""
    master = icalendar.Event.new(uid=uid, start=start, end=end, summary="Dentist (private)")
    if rrule:
        master.add("RRULE", icalendar.vRecur.from_ical(rrule))
    for moment in exdates:
        master.add("EXDATE", moment)
    if transparent:
        master.add("TRANSP", "TRANSPARENT")
    for address, partstat in attendees:
        master.add("ATTENDEE", f"mailto:{address}", parameters={"PARTSTAT": partstat})
    if own:
        master.add("X-SYNCD-SYNC", "another-sync")
    calendar = icalendar.Calendar()
    calendar.add("VERSION", "2.0")
    calendar.add("PRODID", "-//a person's calendar app//EN")
    calendar.add_component(master)
    for instance in overrides:
        calendar.add_component(instance)
    calendar.add_missing_timezones(first_date=date(2026, 1, 1), last_date=date(2027, 12, 31))
    return calendar.to_ical().decode()


def local(block: BusyBlock) -> tuple[str, str]:
    """A block as wall-clock times in Amsterdam, as the business sees it."""
    return (f"{block.start.astimezone(AMS):%m-%d %H:%M}", f"{block.end.astimezone(AMS):%H:%M}")


def spans(blocks: Sequence[BusyBlock] | dict[str, BusyBlock]) -> list[tuple[str, str]]:
    values = blocks.values() if isinstance(blocks, dict) else blocks
    return sorted(local(block) for block in values)


def at(day: int, hour: int, month: int = 3, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=AMS)


def expand(ics: str, **options: object) -> list[BusyBlock]:
    item = CalendarItem(href="/private/x.ics", etag='"1"', ics=ics)
    return busy_blocks(item, "private", WINDOW, BusyOptions(zone=AMS, **options))  # type: ignore[arg-type]


# -- which occurrences are busy --------------------------------------------------------------


def test_weekly_series_honours_its_moved_and_cancelled_instances() -> None:
    ics = source_event(
        "gym",
        at(12, 9),
        at(12, 10),
        rrule="FREQ=WEEKLY;COUNT=4",
        exdates=[at(19, 9)],
        overrides=[
            override("gym", at(26, 9), at(27, 14)),
            override("gym", at(2, 9, 4), at(2, 9, 4), cancelled=True),
        ],
    )
    blocks = expand(ics)
    assert spans(blocks) == [("03-12 09:00", "10:00"), ("03-27 14:00", "15:00")]
    moved = next(b for b in blocks if local(b)[0] == "03-27 14:00")
    assert moved.recurrence_id == "20260326T080000Z", "a moved instance keeps its identity"
    assert {b.uid for b in blocks} == {"gym"}


def test_free_cancelled_and_own_events_are_not_busy() -> None:
    assert expand(source_event("a", at(12, 9), at(12, 10), transparent=True)) == []
    assert expand(source_event("b", at(12, 9), at(12, 10), own=True)) == []
    cancelled = source_event("c", at(12, 9), at(12, 10)).replace(
        "SUMMARY:", "STATUS:CANCELLED\r\nSUMMARY:"
    )
    assert expand(cancelled) == []


def test_only_the_owners_decline_frees_the_time() -> None:
    declined = source_event(
        "meet",
        at(12, 9),
        at(12, 10),
        attendees=[(OWNER.upper(), "DECLINED"), ("bob@x.org", "ACCEPTED")],
    )
    others = source_event(
        "meet", at(12, 9), at(12, 10), attendees=[(OWNER, "ACCEPTED"), ("bob@x.org", "DECLINED")]
    )
    assert expand(declined, owners=frozenset({OWNER})) == []
    assert spans(expand(others, owners=frozenset({OWNER}))) == [("03-12 09:00", "10:00")]
    # Nobody known as the owner: a decline cannot be told apart, so the time stays blocked.
    assert spans(expand(declined)) == [("03-12 09:00", "10:00")]


def test_all_day_events_follow_the_policy_in_the_business_zone() -> None:
    ics = source_event("off", date(2026, 3, 13), date(2026, 3, 14))
    (block,) = expand(ics, all_day=AllDay.BLOCK)
    assert (block.start, block.end) == (at(13, 0), at(14, 0))
    assert expand(ics, all_day=AllDay.SKIP) == []


def test_series_keeps_its_wall_clock_time_across_dst() -> None:
    ics = source_event("yoga", at(24, 9), at(24, 10), rrule="FREQ=WEEKLY;COUNT=2")
    blocks = sorted(expand(ics), key=lambda b: b.start)
    assert spans(blocks) == [("03-24 09:00", "10:00"), ("03-31 09:00", "10:00")]
    assert [b.start.astimezone(UTC).hour for b in blocks] == [8, 7]


def test_floating_times_are_read_in_the_business_zone_and_labels_are_all_text() -> None:
    ics = source_event("f", datetime(2026, 3, 12, 9), datetime(2026, 3, 12, 10))
    (block,) = expand(ics, label="Away")
    assert block.start == at(12, 9)
    assert block.label == "Away"


def test_only_occurrences_in_the_window_count_and_floods_are_refused() -> None:
    before = source_event("old", at(1, 9), at(1, 10))
    assert expand(before) == []
    flood = source_event("spam", at(12, 9), at(12, 9, minute=1), rrule="FREQ=MINUTELY")
    with pytest.raises(BadItem, match=str(MAX_OCCURRENCES)) as caught:
        expand(flood)
    assert caught.value.item == "/private/x.ics"


# -- whole cycles on memory backends ---------------------------------------------------------


def busy_sync(
    provider: MemoryProvider,
    source: object,
    *,
    name: str = "s",
    all_day: AllDay = AllDay.BLOCK,
    owners: frozenset[str] = frozenset({OWNER}),
) -> Sync:
    """A sync of ``provider`` (no bookings) whose busy time comes from ``source``."""
    policy = Policy(sync=name, account=provider.name, calendars=("cal",))
    return Sync(
        policy,
        provider,
        {"cal": MemoryCalendar("cal")},
        SyncRenderer(provider.name, RenderOptions(name)),
        busy_from={"private": source},  # type: ignore[dict-item]
        busy=BusyOptions(all_day=all_day, owners=owners, zone=AMS),
    )
