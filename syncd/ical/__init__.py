"""Appointment <-> VEVENT: rendering, reading, stable UIDs and the normalised content hash.

render.py   Appointment -> calendar object text (+ UID, + hash), VTIMEZONEs cached
parse.py    calendar object -> ParsedEvent; BadItem is the only error
hashing.py  content_hash: what an event says, not how it was written
load.py     untrusted text -> icalendar objects, errors -> BadItem
text.py     TEXT escaping and line folding (RFC 5545 3.1, 3.3.11)
"""

from __future__ import annotations

from syncd.ical.hashing import IGNORED_PROPERTIES, content_hash
from syncd.ical.load import MAX_ICS_CHARS
from syncd.ical.parse import ParsedEvent, parse_event
from syncd.ical.prefix import with_summary_prefix
from syncd.ical.render import (
    SYNCD_PRODID,
    RenderedEvent,
    RenderOptions,
    check_title_template,
    event_uid,
    render,
)

__all__ = [
    "IGNORED_PROPERTIES",
    "MAX_ICS_CHARS",
    "SYNCD_PRODID",
    "ParsedEvent",
    "RenderOptions",
    "RenderedEvent",
    "check_title_template",
    "content_hash",
    "event_uid",
    "parse_event",
    "render",
    "with_summary_prefix",
]
