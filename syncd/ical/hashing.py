"""The normalised content hash: equal for two serialisations of the same event.

An etag changes whenever a server re-saves an object; syncd must only react when what the
event *says* changed (DESIGN section 4). So the hash is taken over a canonical form of each
component: properties sorted, each value decoded (text unescaped and unfolded, date-times
turned into UTC instants so ``TZID=Europe/Amsterdam:20260601T100000`` and ``20260601T080000Z``
agree), parameters sorted, and the noise below left out. Calendar-level properties (VERSION,
PRODID, METHOD, CALSCALE, X-WR-*) and VTIMEZONE components are never part of it: they say how
the object is written, not what the event is, and servers rewrite them freely.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any, Final

from icalendar import Component, vDDDLists, vDDDTypes, vText, vUnknown

from syncd.ical.load import load_calendar
from syncd.ical.text import escape_text, unescape_text

# Properties that do not change what an event says (in the manner of vdirsyncer's
# IGNORE_PROPS). Each is one a server or client rewrites on a save that changed nothing.
IGNORED_PROPERTIES: Final = frozenset(
    {
        # The time the object was serialised; every write, even an identical one, changes it.
        "DTSTAMP",
        # Bumped by servers and clients on every save, including a no-op re-save.
        "LAST-MODIFIED",
        # syncd owns SEQUENCE and increments it on each of its own writes; caldav's save() bumps
        # it too. It counts writes, so an unchanged event may carry any value.
        "SEQUENCE",
        # Set by the server on the first save; says nothing about the event.
        "CREATED",
        # Names the software that last wrote the object; any client re-saving it replaces it.
        # (A calendar-level property; listed in case a writer puts it inside the component.)
        "PRODID",
    }
)


_TWO_DIGITS: Final = tuple(f"{n:02d}" for n in range(100))


def local_stamp(value: datetime) -> str:
    """The wall-clock digits of ``value``, ``YYYYMMDDTHHMMSS``, whatever its zone."""
    # Joined from a table of two-digit strings: half the time of %-formatting six numbers,
    # and every event written or hashed needs several of these.
    two, year = _TWO_DIGITS, value.year
    return "".join(
        (
            str(year) if year >= 1000 else f"{year:04d}",
            two[value.month],
            two[value.day],
            "T",
            two[value.hour],
            two[value.minute],
            two[value.second],
        )
    )


def utc_stamp(value: datetime) -> str:
    """An aware datetime as the UTC instant ``YYYYMMDDTHHMMSSZ``, to the second."""
    return local_stamp(value.astimezone(UTC)) + "Z"


def prop_line(name: str, value: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """One property in canonical form: ``NAME;K="v":escaped value``, with sorted parameters.

    The value is escaped as TEXT, so it holds no newline and each property is one line.
    For a TEXT property without parameters this is exactly the unfolded line ``render()``
    writes, which is what lets it hash what it writes without parsing it back.
    """
    head = name + "".join(f";{key}={json.dumps(val)}" for key, val in sorted(params))
    return f"{head}:{escape_text(value)}"


def component_form(name: str, lines: Iterable[str], children: Iterable[str] = ()) -> str:
    """The canonical text of one component: BEGIN, sorted property lines, sorted children, END.

    ``render()`` builds this directly from the values it writes, and ``content_hash`` from a
    parsed object; both must meet here, which ``tests/test_ical.py`` checks for every event
    it renders.
    """
    return "\n".join([f"BEGIN:{name}", *sorted(lines), *sorted(children), f"END:{name}"])


def digest(forms: Iterable[str]) -> str:
    """The hash of a calendar object given its components' canonical texts, in any order."""
    text = "\n".join(sorted(forms))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def content_hash(ics_or_event: str | bytes | Component, *, href: str = "ics") -> str:
    """The normalised hash of an event, or of every event-like component of a calendar object.

    Given text or a VCALENDAR, every component except VTIMEZONE counts (a series is its master
    and its overrides, and a moved occurrence is a change); given one component, just that
    one. For an object holding a single VEVENT the two agree. Re-serialising (reordering
    properties or components, refolding lines, CRLF or LF, another TZID for the same instant,
    a new DTSTAMP, SEQUENCE or VTIMEZONE) leaves the hash unchanged.

    Raises ``BadItem`` (item ``href``) when text cannot be read as one VCALENDAR.
    """
    if isinstance(ics_or_event, str | bytes):
        return calendar_hash(load_calendar(ics_or_event, href))
    if ics_or_event.name == "VCALENDAR":
        return calendar_hash(ics_or_event)
    return digest([_form(ics_or_event)])


def calendar_hash(calendar: Component) -> str:
    """``content_hash`` of a parsed VCALENDAR."""
    return digest(_form(child) for child in calendar.subcomponents if child.name != "VTIMEZONE")


def _form(component: Component) -> str:
    lines: list[str] = []
    for name, value in component.items():
        key = str(name).upper()
        if key in IGNORED_PROPERTIES:
            continue
        for one in value if isinstance(value, list) else (value,):
            lines.append(_prop(key, one))
    children = [_form(child) for child in component.subcomponents]
    return component_form(str(component.name), lines, children)


def _prop(name: str, value: Any) -> str:
    params: dict[str, Any] = dict(getattr(value, "params", None) or {})
    if isinstance(value, vUnknown):
        # icalendar keeps X- and IANA properties it does not know verbatim; syncd writes its
        # own X- properties as TEXT, so decode them as TEXT too.
        text = unescape_text(str(value))
    elif isinstance(value, vText):  # also vBroken: a value that failed to parse, kept raw
        text = str(value)
    elif isinstance(value, vDDDTypes):
        moment, resolved = _moment(value.dt)
        _drop_time_params(params, resolved)
        text = _ical(value) if moment is None else moment
    elif isinstance(value, vDDDLists):
        moments = [_moment(one.dt) for one in value.dts]
        if all(moment is not None for moment, _ in moments):
            text = ",".join(str(moment) for moment, _ in moments)
            _drop_time_params(params, all(resolved for _, resolved in moments))
        else:
            text = _ical(value)
    else:
        text = _ical(value)
    return prop_line(name, text, [(str(key).upper(), _param(val)) for key, val in params.items()])


def _moment(value: object) -> tuple[str | None, bool]:
    """A date or date-time as text, and whether it was resolved to a UTC instant."""
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return utc_stamp(value), True
        # Floating, or a TZID nobody could resolve: compared as written.
        return local_stamp(value), False
    if isinstance(value, date):
        return f"{value.year:04d}{value.month:02d}{value.day:02d}", False
    return None, False  # a duration, period or time: compared as written


def _drop_time_params(params: dict[str, Any], resolved: bool) -> None:
    # VALUE=DATE-TIME/DATE is implied by the normalised text; a resolved TZID by the Z.
    for key in list(params):
        upper = str(key).upper()
        if upper == "VALUE" or (resolved and upper == "TZID"):
            del params[key]


def _param(value: object) -> str:
    if isinstance(value, list | tuple):
        return ",".join(sorted(str(one) for one in value))
    return str(value)


def _ical(value: Any) -> str:
    raw = value.to_ical()
    return raw.decode("utf-8", "surrogatepass") if isinstance(raw, bytes) else str(raw)
