"""What a sync asks of its busy sources, as plain values the pure parts of ``syncd.busy`` read.

Kept free of I/O and of the config package, so the config models can import ``AllDay``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from zoneinfo import ZoneInfo


class AllDay(StrEnum):
    """What an all-day event in a busy source does."""

    BLOCK = "block"  # the whole day, midnight to midnight in the business's zone, is busy
    SKIP = "skip"  # all-day events are notes (birthdays, "office closed" banners): ignored


def address(value: str) -> str:
    """A calendar user address as compared here: lower case, without ``mailto:``."""
    text = value.strip().lower()
    return text.removeprefix("mailto:")


@dataclass(frozen=True, slots=True)
class BusyOptions:
    """How busy events become blocks for one sync.

    ``owners`` are the addresses of the person whose calendars the sources are: an occurrence
    on which one of them is an ATTENDEE with ``PARTSTAT=DECLINED`` is not busy. Declines by
    other attendees never count (a meeting others declined still takes the owner's time).
    With no owners known, no event counts as declined: syncd cannot tell whose answer an
    ATTENDEE line is, and blocking too much is safer than letting customers book over a
    meeting. ``zone`` is the business's zone: all-day events and floating times are read in it.
    """

    all_day: AllDay = AllDay.BLOCK
    label: str = ""
    owners: frozenset[str] = field(default_factory=frozenset)
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))

    def __post_init__(self) -> None:
        object.__setattr__(self, "owners", frozenset(address(o) for o in self.owners if o))
