"""One calendar object from a busy source -> the busy blocks of its occurrences in a window.

Pure: text in, ``BusyBlock``s out. Recurrences are expanded by ``recurring-ical-events``,
which applies RDATEs, EXDATEs and overridden instances (RECURRENCE-ID) as RFC 5545 says.
An occurrence is busy unless it is:

* cancelled (``STATUS:CANCELLED``) or free (``TRANSP:TRANSPARENT``);
* declined by the calendar's owner (``BusyOptions.owners``, see there);
* all-day while the sync's ``AllDay`` policy is ``skip``;
* of zero length;
* part of an object syncd wrote itself (``X-SYNCD-SYNC``): an appointment must never come
  back to the provider as busy time that blocks its own slot.

A block's identity is ``(calendar, uid, recurrence id)``; the recurrence id is empty for a
single event, so moving it keeps its identity, and for a series it is the occurrence's
original start, so a moved or cancelled instance changes exactly its own block. Blocks carry
no attendees and no text: only the sync's optional label.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import recurring_ical_events
from icalendar import Component

from syncd.busy.options import AllDay, BusyOptions, address
from syncd.errors import BadItem
from syncd.ical.load import load_calendar, reading
from syncd.model import UTC, BusyBlock, CalendarItem
from syncd.providers.base import Window

# More occurrences than this in one window is not a person's calendar (an every-minute
# rule, say); the object is reported as a bad item instead of flooding the provider.
MAX_OCCURRENCES = 1000

# A rule is refused unexpanded when reaching the window's end takes more steps than this,
# counted from its DTSTART by its frequency, interval and BY* lists: the library walks every
# step from the first instance, and a rule of every second begun in 1900 would never end.
MAX_STEPS = 100_000
_FREQ_SECONDS = {
    "SECONDLY": 1,
    "MINUTELY": 60,
    "HOURLY": 3600,
    "DAILY": 86400,
    "WEEKLY": 7 * 86400,
    "MONTHLY": 28 * 86400,
    "YEARLY": 365 * 86400,
}
_FAN_OUT = (
    "BYMONTH",
    "BYWEEKNO",
    "BYYEARDAY",
    "BYMONTHDAY",
    "BYDAY",
    "BYHOUR",
    "BYMINUTE",
    "BYSECOND",
)

# Floating times and all-day dates are compared by the library in a zone of its own choosing;
# ask it for a day more on each side and cut exactly here, in the business's zone.
_MARGIN = timedelta(days=1)


def busy_blocks(
    item: CalendarItem, calendar: str, window: Window, options: BusyOptions
) -> list[BusyBlock]:
    """The blocks ``item`` (from the busy source ``calendar``) makes in ``window``.

    Raises ``BadItem`` naming the href and the property when the object cannot be read or
    expanded; an object without VEVENTs (a task, a journal entry) makes no blocks.
    """
    parsed = load_calendar(item.ics, item.href)
    events = [c for c in parsed.subcomponents if c.name == "VEVENT"]
    if not events or any("X-SYNCD-SYNC" in event for event in events):
        return []
    recurring = any(
        "RRULE" in event or "RDATE" in event or "RECURRENCE-ID" in event for event in events
    )
    blocks: dict[str, BusyBlock] = {}
    with reading(item.href, "RRULE"):  # a broken DTSTART raises on first touch
        step = _shortest_step(events, window.end + _MARGIN, options, item.href)
    with reading(item.href, "VEVENT"):  # the library names no property when it fails
        occurrences = _occurrences(
            parsed, window.start - _MARGIN, window.end + _MARGIN, step, options, item.href
        )
        for count, (start, occurrence) in enumerate(occurrences):
            if count >= MAX_OCCURRENCES:
                raise BadItem(
                    item.href, "RRULE", f"more than {MAX_OCCURRENCES} occurrences in the window"
                )
            block = _block(occurrence, start, calendar, item.href, recurring, window, options)
            if block is not None:
                blocks[block.key] = block
    return list(blocks.values())


def _shortest_step(
    events: list[Component], end: datetime, options: BusyOptions, href: str
) -> float | None:
    """The least seconds between two candidate instances of any rule here (None: no rule);
    ``BadItem`` for a rule that takes more than ``MAX_STEPS`` steps to reach ``end`` (or
    its UNTIL, or its COUNT)."""
    shortest: float | None = None
    for event in events:
        rules = event.get("RRULE")
        for rule in rules if isinstance(rules, list) else [rules]:
            if not isinstance(rule, dict) or "FREQ" not in rule:
                continue  # none, or unreadable: the library decides
            seconds = _FREQ_SECONDS.get(str(rule["FREQ"][0]).upper())
            if seconds is None:
                continue
            try:
                interval = max(1, int(rule.get("INTERVAL", [1])[0]))
            except (TypeError, ValueError):
                interval = 1
            fan_out = 1
            for part in _FAN_OUT:
                fan_out *= max(1, len(rule.get(part, [])))
            step = seconds * interval / fan_out
            begins = _instant(event.get("DTSTART"), options, href, "DTSTART")
            until = rule.get("UNTIL", [None])[0]
            last = end
            if isinstance(until, datetime):
                last = until if until.tzinfo else until.replace(tzinfo=options.zone)
            elif isinstance(until, date):
                last = datetime.combine(until, time(), tzinfo=options.zone)
            last = min(end, last.astimezone(UTC))
            steps = max(0.0, (last - begins).total_seconds() / step)
            count = rule.get("COUNT", [None])[0]
            if isinstance(count, int) and fan_out == 1:
                steps = min(steps, count)
            if steps > MAX_STEPS:
                message = f"some {steps:.0f} steps from DTSTART to expand, more than {MAX_STEPS}"
                raise BadItem(href, "RRULE", message)
            shortest = step if shortest is None else min(shortest, step)
    return shortest


def _occurrences(
    parsed: Component,
    start: datetime,
    end: datetime,
    step: float | None,
    options: BusyOptions,
    href: str,
) -> Iterator[tuple[datetime, Component]]:
    """The occurrences overlapping ``[start, end)``, each once with its start, in order.

    Read a span at a time with ``between``, the spans doubling from 15 minutes, but never
    wider than half ``MAX_OCCURRENCES`` rule ``step``s. The library's own ``after`` narrows
    its span around every occurrence it finds, and every query scans the series from its
    first instance: a daily event begun years ago cost seconds per object (quadratic), on
    the event loop. Here a year is some sixteen queries, and a rule firing every second
    stops at ``MAX_OCCURRENCES`` after reading little more than that many.
    """
    query = recurring_ical_events.of(parsed)
    seen: set[tuple[str, datetime]] = set()
    seconds = (end - start).total_seconds()
    if step is not None:
        seconds = min(seconds, step * (MAX_OCCURRENCES // 2))
    widest = timedelta(seconds=max(seconds, 1.0))
    span = min(timedelta(minutes=15), widest)
    while start < end:
        stop = min(start + span, end)
        found = []
        for occurrence in query.between(start, stop):
            begins = _instant(occurrence.get("DTSTART"), options, href, "DTSTART")
            original = occurrence.get("RECURRENCE-ID")
            ident = _instant(original, options, href, "RECURRENCE-ID") if original else begins
            key = (str(occurrence.get("UID") or ""), ident)
            if key not in seen:  # one that spans two reads is found by both
                seen.add(key)
                found.append((begins, occurrence))
        found.sort(key=lambda pair: pair[0])
        yield from found
        start, span = stop, min(span * 2, widest)


def _block(
    occurrence: Component,
    start: datetime,
    calendar: str,
    href: str,
    recurring: bool,
    window: Window,
    options: BusyOptions,
) -> BusyBlock | None:
    """The block of one expanded occurrence, or None when it does not make the time busy."""
    all_day = not isinstance(getattr(occurrence.get("DTSTART"), "dt", None), datetime)
    if all_day and options.all_day is AllDay.SKIP:
        return None
    if _word(occurrence, "STATUS") == "CANCELLED" or _word(occurrence, "TRANSP") == "TRANSPARENT":
        return None
    if _declined(occurrence, options.owners):
        return None
    end = (
        _instant(occurrence.get("DTEND"), options, href, "DTEND")
        if "DTEND" in occurrence
        else start
    )
    if end <= start or end <= window.start or start >= window.end:
        return None
    recurrence_id = ""
    if recurring and "RECURRENCE-ID" in occurrence:
        recurrence_id = _stamp(
            _instant(occurrence["RECURRENCE-ID"], options, href, "RECURRENCE-ID")
        )
    uid = str(occurrence.get("UID") or "") or href  # a UID-less object is named by its href
    return BusyBlock(calendar, uid, start, end, recurrence_id=recurrence_id, label=options.label)


def _instant(prop: Any, options: BusyOptions, href: str, name: str) -> datetime:
    """A DATE or DATE-TIME property as a UTC instant; dates and floating times in the zone."""
    value = getattr(prop, "dt", None)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            value = value.replace(tzinfo=options.zone)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=options.zone).astimezone(UTC)
    raise BadItem(href, name, "missing or not a date")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _word(component: Component, name: str) -> str:
    value = component.get(name)
    return str(value).strip().upper() if isinstance(value, str) else ""


def _declined(occurrence: Component, owners: frozenset[str]) -> bool:
    if not owners:
        return False
    attendees = occurrence.get("ATTENDEE") or []
    if not isinstance(attendees, list):
        attendees = [attendees]
    for attendee in attendees:
        partstat = str(getattr(attendee, "params", {}).get("PARTSTAT", "")).upper()
        if partstat == "DECLINED" and address(str(attendee)) in owners:
            return True
    return False
