"""Marking an event by prefixing its title, e.g. ``[not booked: slot taken] ``."""

from __future__ import annotations

import re

from syncd.ical.load import load_calendar
from syncd.ical.text import clean_text, escape_text, fold, unescape_text

_UNFOLD = re.compile(r"\r?\n[ \t]")
_LINES = re.compile(r"\r?\n")
_EVENT = ["VCALENDAR", "VEVENT"]  # a VEVENT directly inside the VCALENDAR, not an inner one


def with_summary_prefix(
    ics: str, prefix: str, *, href: str = "ics", replacing: re.Pattern[str] | None = None
) -> str:
    """``ics`` with ``prefix`` before the SUMMARY of each VEVENT not already starting with it.

    Idempotent, so a mark survives being applied on every cycle without growing. The text is
    edited line by line rather than re-serialised by icalendar, so everything else in someone
    else's event stays as they wrote it (only line folding may change). A VEVENT without
    SUMMARY gets one (unless ``prefix`` is empty). With ``replacing``, a match of it at the
    start of the title (an older mark) is removed first; an empty ``prefix`` then only removes.
    Raises ``BadItem`` (item ``href``) when ``ics`` is not one VCALENDAR.
    """
    load_calendar(ics, href)
    prefix = clean_text(prefix)
    escaped = escape_text(prefix)
    out: list[str] = []
    stack: list[str] = []
    has_summary = False
    for line in _LINES.split(_UNFOLD.sub("", ics)):
        if not line:
            continue
        upper = line.upper()
        in_event = stack == _EVENT
        if upper.startswith("BEGIN:"):
            stack.append(upper[6:].strip())
            if stack == _EVENT:
                has_summary = False
        elif upper.startswith("END:"):
            if in_event and not has_summary and prefix:
                out.append(f"SUMMARY:{escaped}")
            if stack:
                stack.pop()
        elif in_event and _name(upper) == "SUMMARY":
            has_summary = True
            split = _value_start(line)
            value = line[split:]
            if replacing is not None:
                value = escape_text(replacing.sub("", unescape_text(value), count=1))
            if not unescape_text(value).startswith(prefix):
                value = escaped + value
            line = line[:split] + value
        out.append(line)
    return "".join(fold(line) for line in out)


def _name(line: str) -> str:
    end = len(line)
    for delimiter in ";:":
        found = line.find(delimiter)
        if found != -1:
            end = min(end, found)
    return line[:end]


def _value_start(line: str) -> int:
    """Where the value starts: after the first colon outside a quoted parameter value."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return index + 1
    return len(line)
