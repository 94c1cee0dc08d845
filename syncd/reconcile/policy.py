"""The choices a sync makes about direction, conflicts and deletes.

These enums are the values users write in ``[[syncs]]``; ``Policy`` is what ``plan()`` reads.
Kept apart from the config models so the pure engine never imports pydantic.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Direction(StrEnum):
    ONE_WAY = "one-way"  # provider -> calendars; calendar edits are restored
    TWO_WAY = "two-way"  # calendar moves and cancels flow back to the provider


class ConflictPolicy(StrEnum):
    PROVIDER_WINS = "provider-wins"
    CALENDAR_WINS = "calendar-wins"
    NEWEST_WINS = "newest-wins"


class CalendarDelete(StrEnum):
    CANCEL = "cancel"  # cancel the appointment at the provider (two-way only)
    RESTORE = "restore"  # put the event back
    IGNORE = "ignore"  # leave it deleted until the provider changes the appointment


class CancelledPolicy(StrEnum):
    DELETE = "delete"  # remove the event
    MARK = "mark"  # keep it with STATUS:CANCELLED and a prefixed title


class Privacy(StrEnum):
    FULL = "full"  # title, customer, notes, location
    BUSY = "busy"  # a busy label only: no client data


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything ``plan()`` needs to know about one sync."""

    sync: str
    account: str
    calendars: tuple[str, ...]
    direction: Direction = Direction.ONE_WAY
    conflict: ConflictPolicy = ConflictPolicy.PROVIDER_WINS
    calendar_delete: CalendarDelete = CalendarDelete.RESTORE
    cancelled: CancelledPolicy = CancelledPolicy.MARK
    max_delete_share: float = 0.5
    delete_guard_min: int = 5
    allow_mass_delete: bool = False

    @property
    def two_way(self) -> bool:
        return self.direction is Direction.TWO_WAY
