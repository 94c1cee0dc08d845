"""The one edit syncd makes to a person's intake event: ``[not booked: reason]`` (pure).

The title gets the prefix in front, replacing an older such prefix, so the mark never grows
and always shows the latest reason. The text is edited line by line (``with_summary_prefix``)
rather than re-serialised, so the rest of someone else's event stays as they wrote it.

A booked event is not edited but replaced (see ``apply.py``): a CalDAV server will not let
an event at an href take on the booking's UID.
"""

from __future__ import annotations

from syncd.ical import with_summary_prefix
from syncd.intake.read import NOT_BOOKED_RE
from syncd.intake.request import not_booked_prefix


def refused(ics: str, reason: str, href: str = "ics") -> str:
    """``ics`` with its title prefixed ``[not booked: reason]`` (an older prefix replaced)."""
    return with_summary_prefix(ics, not_booked_prefix(reason), href=href, replacing=NOT_BOOKED_RE)
