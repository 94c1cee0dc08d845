"""DTSTART, DTEND and the VTIMEZONE of a rendered event, from an appointment's span.

For ``syncd.ical.render``. A time is written with the TZID of its zone and a VTIMEZONE
bounded to the event's years, and in UTC where a TZID cannot say it: UTC itself, a fixed
offset, the repeated hour after a DST change, a zone icalendar cannot describe. Both the
lines and the VTIMEZONE text are cached.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

from icalendar import Timezone

from syncd.ical.hashing import local_stamp
from syncd.ical.text import fold
from syncd.model import Appointment

# Zone keys that mean UTC: such times are written with Z and need no VTIMEZONE.
_UTC_KEYS: Final = frozenset(
    {"UTC", "Etc/UTC", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu"}
)


def event_times(appointment: Appointment) -> tuple[str, str, str, str, str]:
    """DTSTART and DTEND lines, both instants in canonical form, and the VTIMEZONE text."""
    start, end = appointment.utc_span
    return _span_lines(start, end, appointment.start.tzinfo)


@lru_cache(maxsize=4096)
def _span_lines(
    start: datetime, end: datetime, zone: tzinfo | None
) -> tuple[str, str, str, str, str]:
    """``event_times`` of the UTC span (``start``, ``end``) shown in ``zone``.

    Cached: bookings sit on a grid of slots, so several staff or resources share a span, and
    writing these lines was a third of rendering an event.
    """
    if start.microsecond or end.microsecond:
        start, end = start.replace(microsecond=0), end.replace(microsecond=0)
    start_utc, end_utc = local_stamp(start) + "Z", local_stamp(end) + "Z"  # already in UTC
    utc_lines = f"DTSTART:{start_utc}\r\n", f"DTEND:{end_utc}\r\n"

    tzid = zone.key if isinstance(zone, ZoneInfo) else "UTC"  # = zone_name(start in zone)
    if not isinstance(zone, ZoneInfo) or not tzid or tzid in _UTC_KEYS:
        return *utc_lines, start_utc, end_utc, ""
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    if local_start.fold or local_end.fold:
        # The second pass through a repeated hour: a TZID would be read as the first pass.
        return *utc_lines, start_utc, end_utc, ""
    vtimezone = _vtimezone(tzid, local_start.year, local_end.year)
    if vtimezone is None:
        return *utc_lines, start_utc, end_utc, ""
    return (
        fold(f"DTSTART;TZID={tzid}:{local_stamp(local_start)}"),
        fold(f"DTEND;TZID={tzid}:{local_stamp(local_end)}"),
        start_utc,
        end_utc,
        vtimezone,
    )


@lru_cache(maxsize=1024)
def _vtimezone(tzid: str, first_year: int, last_year: int) -> str | None:
    """VTIMEZONE text for ``tzid`` valid from 1 January ``first_year`` to the end of
    ``last_year``, or ``None`` when icalendar cannot build one (the caller writes UTC).

    Bounded, because the default (1970-2038) makes every event ~2 KB larger; cached, because
    building one takes milliseconds and the same few zones and years recur endlessly.
    """
    try:
        component = Timezone.from_tzid(
            tzid, first_date=date(first_year, 1, 1), last_date=date(last_year + 1, 1, 1)
        )
        text: str = component.to_ical().decode()
    except Exception:  # an unknown key, or years at the edge of what datetime can hold
        return None
    return text.replace("\r\n", "\n").replace("\n", "\r\n")
