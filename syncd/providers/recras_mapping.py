"""Recras bookings (JSON) -> appointments: one per booking, or one per booking line.

A booking is its lines (``boekingsregels``), each with its own ``begin``/``eind``. By default
one appointment spans the whole booking, from the earliest ``begin`` to the latest ``eind``;
with ``per_line`` every line is its own appointment (native id ``<booking>-<line>``).

Status: ``informatie``, ``optie`` and ``reservering`` are not final -> tentative;
``definitief`` -> confirmed; the cancelled status (``geannuleerd`` by default, or anything
with "annul" in it) -> cancelled. An unknown status is read as tentative: it is a booking,
and a wrong "confirmed" would be worse than a cautious "tentative".

The event text holds the arrangement as the title, and the reference, the number of persons
(the largest ``aantal`` of the lines: a group books every line for itself) and each line in
the notes; the sync's privacy setting decides what of it reaches a calendar. Contact data is
not in a booking and is never looked up.

Anything malformed raises ``BadItem`` naming the booking (or ``#position`` when it has no
usable id) and the field, so the rest of a listing is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from syncd.errors import BadItem
from syncd.model import Appointment, Status

_TENTATIVE = frozenset({"informatie", "optie", "reservering"})


@dataclass(frozen=True, slots=True)
class Reading:
    """How an account reads bookings: its name, zone, and the two choices above."""

    account: str
    zone: ZoneInfo
    per_line: bool = False
    cancelled_status: str = "geannuleerd"

    def status(self, value: str) -> Status:
        text = value.strip().lower()
        if text == self.cancelled_status or "annul" in text:
            return Status.CANCELLED
        if text == "definitief":
            return Status.CONFIRMED
        return Status.TENTATIVE


@dataclass(frozen=True, slots=True)
class BookedLine:
    id: str
    begin: datetime
    end: datetime
    amount: int
    description: str


def booking_id(data: object, position: int) -> str:
    """The booking's id as text, or ``#position`` when there is no usable one."""
    if isinstance(data, Mapping):
        value = data.get("id")
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return str(value)
    return f"#{position}"


def read_booking(data: object, reading: Reading, position: int = 0) -> list[Appointment]:
    """The booking's appointment(s); ``BadItem`` when it cannot be read."""
    item = booking_id(data, position)
    if not isinstance(data, Mapping):
        raise BadItem(item, "booking", f"expected an object, got {type(data).__name__}")
    if item.startswith("#"):
        raise BadItem(item, "id", "missing or not a positive number")
    status = data.get("status")
    if not isinstance(status, str):
        raise BadItem(item, "status", "missing or not text")
    lines = _lines(item, data.get("boekingsregels"), reading.zone)
    title = _text(data.get("arrangement")) or f"Booking {item}"
    reference = _text(data.get("referentie"))
    updated = _optional_time(data.get("status_updated_at"), reading.zone)
    common: dict[str, Any] = {
        "account": reading.account,
        "status": reading.status(status),
        "updated": updated,
        "location": "",
    }
    if reading.per_line:
        return [
            Appointment(
                native_id=f"{item}-{line.id}",
                start=line.begin,
                end=line.end,
                title=f"{title}: {line.description}" if line.description else title,
                notes=_notes(reference, line.amount, [line]),
                extra=_extra(reference, line.amount),
                **common,
            )
            for line in lines
        ]
    persons = max(line.amount for line in lines)
    return [
        Appointment(
            native_id=item,
            start=min(line.begin for line in lines),
            end=max(line.end for line in lines),
            title=title,
            notes=_notes(reference, persons, lines),
            extra=_extra(reference, persons),
            **common,
        )
    ]


def _lines(item: str, value: object, zone: ZoneInfo) -> list[BookedLine]:
    if not isinstance(value, list) or not value:
        raise BadItem(item, "boekingsregels", "missing or empty")
    out = []
    for index, line in enumerate(value):
        where = f"boekingsregels[{index}]"
        if not isinstance(line, Mapping):
            raise BadItem(item, where, "expected an object")
        begin = _time(item, f"{where}.begin", line.get("begin"), zone)
        end = _time(item, f"{where}.eind", line.get("eind"), zone)
        if end < begin:
            raise BadItem(item, f"{where}.eind", f"{end.isoformat()} is before begin")
        amount = line.get("aantal", 0)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise BadItem(item, f"{where}.aantal", f"not a count: {str(amount)[:40]!r}")
        line_id = line.get("id")
        out.append(
            BookedLine(
                str(line_id) if line_id is not None else str(index),
                begin,
                end,
                amount,
                _text(line.get("beschrijving")),
            )
        )
    return out


def _time(item: str, field: str, value: object, zone: ZoneInfo) -> datetime:
    """An ISO 8601 time; one without an offset is read in the account's zone."""
    if not isinstance(value, str):
        raise BadItem(item, field, "missing or not text")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadItem(item, field, f"not an ISO 8601 time: {value[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(zone)


def _optional_time(value: object, zone: ZoneInfo) -> datetime | None:
    """Metadata only: an unreadable change time is dropped, not refused."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _text(value: object) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _notes(reference: str, persons: int, lines: list[BookedLine]) -> str:
    out = [f"Reference: {reference}"] if reference else []
    out.append(f"Persons: {persons}")
    for line in lines:
        span = f"{line.begin:%H:%M}-{line.end:%H:%M}"
        out.append(f"{span} {line.amount} x {line.description}".rstrip())
    return "\n".join(out)


def _extra(reference: str, persons: int) -> tuple[tuple[str, str], ...]:
    return (("persons", str(persons)), ("reference", reference))
