"""One calendar object from an intake calendar -> what to do with it (pure, no I/O).

An object is one of:

``IntakeRequest``  a person's new event to book.
``Ignored``        not a booking request: syncd's own or another sync's event (it carries
                   X-SYNCD-SYNC), a cancelled or free (transparent) event, an all-day note,
                   or one that starts before now (history, not a request) or after the window.
                   Left exactly as it is.
``Unbookable``     meant as a request but impossible as one booking (a recurring series): it
                   is marked ``[not booked: reason]`` like a refusal, without asking anyone.

Malformed text raises ``BadItem`` naming the href, as everywhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import tzinfo

from icalendar import Component

from syncd.errors import BadItem
from syncd.ical import ParsedEvent, parse_event
from syncd.ical.load import load_calendar, reading
from syncd.intake.request import IntakeRequest, Person, intake_reference
from syncd.model import UTC, CalendarItem
from syncd.providers.base import Window

#: An earlier refusal's prefix, removed before the title is handed to a provider.
NOT_BOOKED_RE = re.compile(r"^(?:\[not booked:[^\]]*\]\s*)+", re.IGNORECASE)
_FIELD = re.compile(r"^\s*([A-Za-z][\w .-]{0,40}?)\s*:\s*(.*?)\s*$")


@dataclass(frozen=True, slots=True)
class Ignored:
    why: str


@dataclass(frozen=True, slots=True)
class Unbookable:
    reason: str
    uid: str = ""


Reading = IntakeRequest | Ignored | Unbookable


def read_intake(
    item: CalendarItem, sync: str, calendar: str, window: Window, zone: tzinfo = UTC
) -> tuple[Reading, ParsedEvent]:
    """Classify ``item``; also returns its parse (its hash marks the version decided on).

    ``window`` starts now and ends where the sync stops looking ahead: a booking after its
    end would never be shown, so such an event is ignored until the window reaches it.
    """
    parsed = parse_event(item.ics, item.href, zone)
    if parsed.sync is not None or parsed.native_id is not None:
        return Ignored("written by syncd"), parsed
    if parsed.cancelled:
        return Ignored("cancelled"), parsed
    if parsed.transparent:
        return Ignored("free time"), parsed
    if parsed.all_day:
        return Ignored("all-day"), parsed
    if parsed.start < window.start:
        return Ignored("in the past"), parsed
    if parsed.start >= window.end:
        return Ignored("beyond the sync window"), parsed
    if parsed.recurring:
        return Unbookable("a recurring event cannot be one booking", parsed.uid), parsed
    master = _master(item)
    description = _text(master, "DESCRIPTION", item.href)
    organizers = _people(master, "ORGANIZER", item.href)
    request = IntakeRequest(
        reference=intake_reference(sync, calendar, parsed.uid),
        calendar=calendar,
        href=item.href,
        uid=parsed.uid,
        start=parsed.start,
        end=parsed.end,
        summary=NOT_BOOKED_RE.sub("", parsed.summary).strip(),
        description=description,
        location=_text(master, "LOCATION", item.href),
        organizer=organizers[0] if organizers else None,
        attendees=tuple(_people(master, "ATTENDEE", item.href)),
        fields=description_fields(description),
    )
    return request, parsed


def description_fields(text: str) -> dict[str, str]:
    """``key: value`` lines of a description; keys lower case, the first of a key wins."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _FIELD.match(line)
        if match and match.group(2):
            found.setdefault(match.group(1).strip().lower(), match.group(2))
    return found


def _master(item: CalendarItem) -> Component:
    calendar = load_calendar(item.ics, item.href)
    events = [c for c in calendar.subcomponents if c.name == "VEVENT"]
    return next((e for e in events if "RECURRENCE-ID" not in e), events[0])


def _text(component: Component, name: str, href: str) -> str:
    value = component.get(name)
    if value is None:
        return ""
    if isinstance(value, list):
        raise BadItem(href, name, f"given {len(value)} times, allowed once")
    with reading(href, name):
        return str(value).strip()


def _people(component: Component, name: str, href: str) -> list[Person]:
    values = component.get(name)
    if values is None:
        return []
    out = []
    with reading(href, name):
        for value in values if isinstance(values, list) else [values]:
            params = getattr(value, "params", {})
            address = str(value).strip()
            email = address[7:] if address.lower().startswith("mailto:") else ""
            out.append(Person(str(params.get("CN", "")).strip(), email.strip().lower()))
    return out
