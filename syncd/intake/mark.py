"""The two edits syncd makes to a person's intake event (pure, text in, text out).

``linked``   the booking was made: the event gets X-SYNCD-SYNC, X-SYNCD-ACCOUNT and X-SYNCD-ID,
             which make it the booking's event in that calendar (the appointment engine then
             keeps it in step) and tell every later intake read that it is done. Any
             ``[not booked: ...]`` title prefix from an earlier refusal is removed.
``refused``  the provider said no: the title gets ``[not booked: reason]`` in front, replacing
             an older such prefix, so the mark never grows and always shows the latest reason.

Both edit the text line by line (via ``with_summary_prefix``) instead of re-serialising it, so
the rest of someone else's event stays as they wrote it, and both are idempotent.
"""

from __future__ import annotations

import re

from syncd.ical import with_summary_prefix
from syncd.ical.text import escape_text, fold
from syncd.intake.read import NOT_BOOKED_RE
from syncd.intake.request import not_booked_prefix

_UNFOLD = re.compile(r"\r?\n[ \t]")
_LINES = re.compile(r"\r?\n")
_MARKERS = ("X-SYNCD-SYNC", "X-SYNCD-ACCOUNT", "X-SYNCD-ID")


def refused(ics: str, reason: str, href: str = "ics") -> str:
    """``ics`` with its title prefixed ``[not booked: reason]`` (an older prefix replaced)."""
    return with_summary_prefix(ics, not_booked_prefix(reason), href=href, replacing=NOT_BOOKED_RE)


def linked(ics: str, sync: str, account: str, native_id: str, href: str = "ics") -> str:
    """``ics`` marked as the event of booking ``native_id`` of ``account`` in ``sync``."""
    text = with_summary_prefix(ics, "", href=href, replacing=NOT_BOOKED_RE)
    values = dict(zip(_MARKERS, (sync, account, native_id), strict=True))
    out: list[str] = []
    stack: list[str] = []
    for line in _LINES.split(_UNFOLD.sub("", text)):
        if not line:
            continue
        upper = line.upper()
        if upper.startswith("BEGIN:"):
            stack.append(upper[6:].strip())
        elif upper.startswith("END:"):
            if stack == ["VCALENDAR", "VEVENT"]:
                out.extend(f"{name}:{escape_text(value)}" for name, value in values.items())
            if stack:
                stack.pop()
        elif stack == ["VCALENDAR", "VEVENT"] and upper.split(":", 1)[0].split(";")[0] in values:
            continue  # an older marker: replaced by the one written at END:VEVENT
        out.append(line)
    return "".join(fold(line) for line in out)
