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
    with reading(item.href, "VEVENT"):  # the library names no property when it fails
        occurrences = recurring_ical_events.of(parsed).after(window.start - _MARGIN)
        for count, occurrence in enumerate(occurrences):
            start = _instant(occurrence.get("DTSTART"), options, item.href, "DTSTART")
            if start >= window.end + _MARGIN:
                break
            if count >= MAX_OCCURRENCES:
                raise BadItem(
                    item.href, "RRULE", f"more than {MAX_OCCURRENCES} occurrences in the window"
                )
            block = _block(occurrence, start, calendar, item.href, recurring, window, options)
            if block is not None:
                blocks[block.key] = block
    return list(blocks.values())


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
