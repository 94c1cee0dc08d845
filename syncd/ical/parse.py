"""Calendar object -> ``ParsedEvent``: what syncd needs to know about an event it reads.

Used for syncd's own events read back (to notice moves and deletions made in the calendar)
and for other people's events (busy time). Input is untrusted; the only exception raised
is ``BadItem``, naming the href and the property at fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Component, Timezone, vDDDTypes

from syncd.errors import BadItem
from syncd.ical.hashing import calendar_hash
from syncd.ical.load import describe, load_calendar, reading
from syncd.ical.text import unescape_text
from syncd.model import UTC


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """One calendar object as syncd reads it.

    ``start`` and ``end`` are instants in UTC: Python compares two local times of the same zone
    by their wall clock, ignoring DST folds, so handing out local times would invite wrong
    comparisons around the autumn change. All-day events (``all_day``) start and end at
    midnight of the calendar's default zone. ``sync``, ``account`` and ``native_id`` are the
    X-SYNCD-* links back to an appointment (``None`` on events syncd did not write).
    ``recurring`` means more than one occurrence or part of a series (RRULE, RDATE or an
    override with RECURRENCE-ID): expand it rather than reading ``start``/``end`` alone.
    ``hash`` is ``content_hash`` of the whole object.
    """

    href: str
    uid: str
    sync: str | None
    account: str | None
    native_id: str | None
    start: datetime
    end: datetime
    all_day: bool
    cancelled: bool
    transparent: bool
    summary: str
    last_modified: datetime | None
    recurring: bool
    hash: str


def parse_event(ics: str | bytes, href: str, default_tz: tzinfo = UTC) -> ParsedEvent:
    """Read one calendar object (as fetched from ``href``).

    The fields come from the master VEVENT (the one without RECURRENCE-ID; an object holding
    only overrides uses its first). Floating times and all-day dates are read in
    ``default_tz``, the calendar's own zone. A missing DTEND means DURATION, else DTSTART
    itself (a date: one day later).

    Raises ``BadItem(item=href, field=...)`` for: text that is not one VCALENDAR (field
    ``ics`` or ``VCALENDAR``), no VEVENT (``VEVENT``), no UID, no or unreadable DTSTART
    (impossible dates, an unknown TZID), an end before the start (``DTEND``/``DURATION``).
    """
    calendar = load_calendar(ics, href)
    events = [child for child in calendar.subcomponents if child.name == "VEVENT"]
    if not events:
        raise BadItem(href, "VEVENT", "the object holds no VEVENT")
    master = next((event for event in events if "RECURRENCE-ID" not in event), events[0])

    uid = _text(master, "UID", href)
    if uid is None:
        raise BadItem(href, "UID", "missing")
    start_value = _moment(calendar, master, "DTSTART", href, default_tz)
    if start_value is None:
        raise BadItem(href, "DTSTART", "missing")
    start, all_day, zone = start_value
    end = _end(calendar, master, start, all_day, zone, href, default_tz)

    status = (_text(master, "STATUS", href) or "").upper()
    transp = (_text(master, "TRANSP", href) or "").upper()
    recurring = any(name in master for name in ("RRULE", "RDATE")) or any(
        "RECURRENCE-ID" in event for event in events
    )
    with reading(href, "ics"):
        content = calendar_hash(calendar)
    return ParsedEvent(
        href=href,
        uid=uid,
        sync=_text(master, "X-SYNCD-SYNC", href),
        account=_text(master, "X-SYNCD-ACCOUNT", href),
        native_id=_text(master, "X-SYNCD-ID", href),
        start=start,
        end=end,
        all_day=all_day,
        cancelled=status == "CANCELLED",
        transparent=transp == "TRANSPARENT",
        summary=_text(master, "SUMMARY", href) or "",
        last_modified=_stamp(master),
        recurring=recurring,
        hash=content,
    )


def _single(component: Component, name: str, href: str) -> Any:
    """The property ``name`` or ``None``; ``BadItem`` when it is given more than once."""
    value = component.get(name)
    if isinstance(value, list):
        raise BadItem(href, name, f"given {len(value)} times, allowed once")
    return value


def _text(component: Component, name: str, href: str) -> str | None:
    """A TEXT property decoded (icalendar keeps X- properties escaped; they are TEXT here)."""
    value = _single(component, name, href)
    if value is None:
        return None
    with reading(href, name):
        return unescape_text(str(value)) if name.startswith("X-") else str(value)


def _moment(
    calendar: Component, component: Component, name: str, href: str, default_tz: tzinfo
) -> tuple[datetime, bool, tzinfo] | None:
    """A DATE or DATE-TIME property as a UTC instant, whether it was a date, and its zone."""
    prop = _single(component, name, href)
    if prop is None:
        return None
    if not isinstance(prop, vDDDTypes):  # vBroken: the text did not parse as a date-time
        cause = getattr(prop, "parse_error", None)
        raise BadItem(href, name, f"unreadable date-time {str(prop)[:40]!r}" + _cause(cause))
    with reading(href, name):
        value = prop.dt
        if isinstance(value, datetime):
            tzid = prop.params.get("TZID")
            if tzid is not None and value.tzinfo is not None:
                value = _own_zone(calendar, str(tzid), value)
            if value.tzinfo is None or value.utcoffset() is None:
                if tzid is not None:
                    raise BadItem(href, name, f"unknown TZID {str(tzid)[:60]!r}")
                value = value.replace(tzinfo=default_tz)  # floating: the calendar's zone
            return value.astimezone(UTC), False, value.tzinfo or default_tz
        if isinstance(value, date):
            midnight = datetime.combine(value, time(), tzinfo=default_tz)
            return midnight.astimezone(UTC), True, default_tz
        raise BadItem(href, name, f"expected a date or date-time, got {type(value).__name__}")


def _end(
    calendar: Component,
    master: Component,
    start: datetime,
    all_day: bool,
    zone: tzinfo,
    href: str,
    default_tz: tzinfo,
) -> datetime:
    """DTEND, else DTSTART + DURATION, else DTSTART (+ 1 day for a date), as a UTC instant."""
    end_value = _moment(calendar, master, "DTEND", href, default_tz)
    if end_value is not None:
        end = end_value[0]
        if end < start:
            raise BadItem(href, "DTEND", f"{end.isoformat()} is before DTSTART {start.isoformat()}")
        return end
    prop = _single(master, "DURATION", href)
    if prop is None:
        return _add(start, timedelta(days=1), zone) if all_day else start
    duration = getattr(prop, "dt", None) if isinstance(prop, vDDDTypes) else None
    if not isinstance(duration, timedelta):
        raise BadItem(href, "DURATION", f"unreadable duration {str(prop)[:40]!r}")
    if duration < timedelta(0):
        raise BadItem(href, "DURATION", f"negative duration {str(prop.to_ical())[:40]}")
    with reading(href, "DURATION"):
        return _add(start, duration, zone)


def _own_zone(calendar: Component, tzid: str, value: datetime) -> datetime:
    """``value`` in the zone this object's own VTIMEZONE ``tzid`` defines, if it has one
    for a zone the tz database does not know.

    icalendar caches such zones process-wide by TZID and keeps the first definition it saw;
    Outlook names differing zones alike ("Customized Time Zone"), so each object must be
    read with its own definition.
    """
    if isinstance(value.tzinfo, ZoneInfo):
        return value
    for child in calendar.subcomponents:
        if isinstance(child, Timezone) and str(child.get("TZID", "")) == tzid:
            return value.replace(tzinfo=child.to_tz(lookup_tzid=False))
    return value


def _add(start: datetime, duration: timedelta, zone: tzinfo) -> datetime:
    """``start + duration`` as RFC 5545 3.3.6 reads it: days (and weeks) on the wall clock
    of the event's zone, hours to seconds as elapsed time."""
    if not duration.days:
        return start + duration
    local = start.astimezone(zone)
    moved = (local.replace(tzinfo=None) + timedelta(days=duration.days)).replace(tzinfo=zone)
    return moved.astimezone(UTC) + timedelta(seconds=duration.seconds)


def _stamp(master: Component) -> datetime | None:
    """LAST-MODIFIED, else DTSTAMP, as an aware instant; ``None`` when neither is usable.

    Metadata only, so a broken value is ignored rather than refused; both are UTC by RFC
    5545, so a floating one is read as UTC.
    """
    for name in ("LAST-MODIFIED", "DTSTAMP"):
        prop = master.get(name)
        value = getattr(prop, "dt", None) if isinstance(prop, vDDDTypes) else None
        if isinstance(value, datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                value = value.replace(tzinfo=UTC)
            try:
                return value.astimezone(UTC)
            except (OverflowError, ValueError):
                continue
    return None


def _cause(error: object) -> str:
    return f": {describe(error)}" if isinstance(error, BaseException) else ""
