"""What ``plan()`` reads: the last agreed state, and what each side looks like now.

``Record`` and ``Link`` are the base of the three-way merge: the appointment as last agreed,
and per calendar the event syncd last wrote or accepted (href, etag, normalised hash).
``ProviderView`` and ``CalendarView`` are the changes one cycle saw. Views are keyed by
native id; the engine resolves calendar hrefs to native ids before planning.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from syncd.model import Appointment, Deleted
from syncd.providers.base import Window


@dataclass(frozen=True, slots=True)
class Link:
    """One appointment's event in one calendar, as syncd last wrote or accepted it."""

    calendar: str
    href: str
    etag: str
    event_hash: str
    sequence: int = 0


class Record:
    """The last agreed version of an appointment and its events.

    The appointment may be given as stored JSON and is then read on first use: an
    incremental cycle that only compares hashes never pays for parsing it.
    """

    __slots__ = ("_appointment", "_raw", "hash", "links")

    def __init__(
        self,
        appointment: Appointment | None,
        hash: str,
        links: Mapping[str, Link] | None = None,
        raw: str = "",
    ) -> None:
        if appointment is None and not raw:
            raise ValueError("a record needs its appointment or its stored JSON")
        self._appointment = appointment
        self._raw = raw
        self.hash = hash
        self.links: Mapping[str, Link] = links if links is not None else {}

    @property
    def appointment(self) -> Appointment:
        if self._appointment is None:
            self._appointment = Appointment.from_json(json.loads(self._raw))
        return self._appointment

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (self.appointment, self.hash, dict(self.links)) == (
            other.appointment,
            other.hash,
            dict(other.links),
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Record({self.appointment!r}, {self.hash!r}, {dict(self.links)!r})"


@dataclass(frozen=True, slots=True)
class EventState:
    """An event of this sync as the calendar holds it now (parsed by ``syncd.ical``)."""

    calendar: str
    native_id: str
    href: str
    etag: str
    start: datetime
    end: datetime
    cancelled: bool
    event_hash: str
    modified: datetime | None = None


@dataclass(frozen=True, slots=True)
class EventGone:
    """An event of this sync that is no longer in its calendar."""

    calendar: str
    native_id: str
    href: str


@dataclass(frozen=True, slots=True)
class ProviderView:
    """The provider's changes this cycle.

    ``complete`` means ``items`` is every appointment overlapping ``window``: a recorded
    appointment in the window that is missing was deleted. ``unreadable`` holds the ids whose
    report could not be read: they are neither changed nor deleted this cycle.
    """

    items: Mapping[str, Appointment | Deleted] = field(default_factory=dict)
    complete: bool = False
    window: Window | None = None
    unreadable: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CalendarView:
    """One calendar's changes this cycle, for the events this sync owns."""

    events: Mapping[str, EventState | EventGone] = field(default_factory=dict)
    complete: bool = False
    unreadable: frozenset[str] = frozenset()


def overlaps(appointment: Appointment, window: Window) -> bool:
    return appointment.start < window.end and appointment.end > window.start
