"""Reading untrusted iCalendar text into icalendar objects, with ``BadItem`` as the only error.

Calendar objects come from servers and other people's clients: anything may be in them.
icalendar signals trouble with ``ValueError``, ``TypeError``, ``KeyError``, its own
``BrokenCalendarProperty`` and, for pathological input, ``RecursionError`` or
``OverflowError``; none of those may escape into the sync loop (promise 4), so every read
goes through ``reading()``, which turns them into ``BadItem`` naming the item and the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from zoneinfo import available_timezones

from icalendar import Calendar, Component

from syncd.errors import BadItem

# One calendar object larger than this is refused unread. icalendar reads some 0.3-1 MB/s
# (a 0.8 MB series with 3,000 overrides took 3 s on a busy 2-core machine), so the largest
# accepted object costs seconds, not minutes. Real objects stay far below it; only inline
# attachments come near.
MAX_ICS_CHARS = 4_000_000

# Nor more lines than this: icalendar spends some 0.1 ms on each content line, so four
# million characters of short lines ("X-A:b") took a minute; real objects, even a series
# with thousands of overrides, stay under a few tens of thousands.
MAX_LINES = 100_000

# How deep components may nest (VCALENDAR > VEVENT > VALARM is 3). Deeper input is not
# iCalendar any client writes, and walking it recursively could exhaust the stack.
MAX_DEPTH = 8

_MESSAGE_CHARS = 160

# A whole VTIMEZONE block, and a TZID line that is not folded (a folded one is left alone).
_VTIMEZONE = re.compile(r"^BEGIN:VTIMEZONE\r?\n(.*?)^END:VTIMEZONE[ \t]*(?:\r?\n|\Z)", re.M | re.S)
_TZID = re.compile(r"^TZID:([^\r\n]*)\r?\n(?![ \t])", re.M)


def describe(exc: BaseException) -> str:
    """A short, one-line account of ``exc`` for a ``BadItem`` message."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if len(text) > _MESSAGE_CHARS:
        text = text[: _MESSAGE_CHARS - 3] + "..."
    return text


@contextmanager
def reading(item: str, field: str) -> Iterator[None]:
    """Run the block; any exception but ``BadItem`` becomes ``BadItem(item, field, ...)``.

    The catch is deliberately broad: icalendar documents no closed set of exceptions, and a
    single malformed object must never stop the sync of the others.
    """
    try:
        yield
    except BadItem:
        raise
    except Exception as exc:
        raise BadItem(item, field, describe(exc)) from exc


def load_calendar(ics: str | bytes, item: str) -> Calendar:
    """Parse one calendar object (one VCALENDAR) or raise ``BadItem`` naming ``item``.

    Bytes must be UTF-8 (RFC 5545 3.1.4); a leading byte-order mark is tolerated. The
    result's components nest at most ``MAX_DEPTH`` deep. VTIMEZONEs of zones the tz database
    knows are not in the result (see ``skip_known_timezones``).
    """
    if isinstance(ics, bytes):
        try:
            ics = ics.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadItem(item, "ics", f"not UTF-8 text: {describe(exc)}") from exc
    if not isinstance(ics, str):
        raise BadItem(item, "ics", f"expected iCalendar text, got {type(ics).__name__}")
    if len(ics) > MAX_ICS_CHARS:
        raise BadItem(item, "ics", f"{len(ics)} characters, more than {MAX_ICS_CHARS}")
    lines = ics.count("\n")
    if lines > MAX_LINES:
        raise BadItem(item, "ics", f"{lines} lines, more than {MAX_LINES}")
    ics = ics.removeprefix("\ufeff")
    if not ics.strip():
        raise BadItem(item, "ics", "empty")
    if "\x00" in ics:  # icalendar would accept it; PostgreSQL text and most clients would not
        raise BadItem(item, "ics", "contains NUL characters: binary data, not iCalendar text")
    with reading(item, "ics"):
        parsed = Calendar.from_ical(skip_known_timezones(ics))
    if not isinstance(parsed, Calendar) or parsed.name != "VCALENDAR":
        name = getattr(parsed, "name", type(parsed).__name__)
        raise BadItem(item, "VCALENDAR", f"top-level component is {name}, not VCALENDAR")
    if _depth(parsed, MAX_DEPTH) > MAX_DEPTH:
        raise BadItem(item, "ics", f"components nest more than {MAX_DEPTH} deep")
    return parsed


def _depth(component: Component, limit: int) -> int:
    """Nesting depth of ``component`` (1 = no subcomponents), counting no further than past
    ``limit``; iterative, so hostile input cannot exhaust the stack."""
    deepest = 0
    stack: list[tuple[Component, int]] = [(component, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > limit:
            break
        stack.extend((child, depth + 1) for child in node.subcomponents)
    return deepest


def skip_known_timezones(ics: str) -> str:
    """``ics`` without the VTIMEZONE blocks whose TZID the tz database knows.

    icalendar resolves such a TZID through zoneinfo and ignores the block (it only uses, and
    caches, VTIMEZONEs of zones zoneinfo does not know), so dropping it changes no time;
    parsing it costs two thirds of the time of reading a typical object.
    """
    if "BEGIN:VTIMEZONE" not in ics:
        return ics
    return _VTIMEZONE.sub(_drop_if_known, ics)


def _drop_if_known(block: re.Match[str]) -> str:
    body = block.group(1)
    tzid = _TZID.search(body)
    if tzid is None or "BEGIN:VTIMEZONE" in body:
        return block.group(0)
    name = tzid.group(1).strip()
    known = _known_zones()
    return "" if name in known or name.strip("/") in known else block.group(0)


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())
