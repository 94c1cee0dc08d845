"""Provider-neutral values: appointments, busy blocks, and references to calendar items.

Every datetime here is timezone-aware; a naive one is refused at construction, because a
naive time is exactly the bug this product exists to avoid (OnlineAfspraken and Agendize both
hand out naive local times). Values are frozen: the reconcile engine compares them, hashes
them and keeps them as the last agreed version, so they must not change under it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from json.encoder import encode_basestring_ascii as quote
from typing import Any
from zoneinfo import ZoneInfo

UTC = ZoneInfo("UTC")


class Status(StrEnum):
    """The appointment's state as a calendar understands it."""

    CONFIRMED = "confirmed"
    TENTATIVE = "tentative"
    CANCELLED = "cancelled"


def require_aware(name: str, value: datetime) -> None:
    """Raise ``ValueError`` naming ``name`` when ``value`` has no timezone."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


@dataclass(frozen=True, slots=True)
class Appointment:
    """One booking at a provider, as syncd understands it.

    ``account`` is the configured provider account name and ``native_id`` the provider's id:
    together they are the appointment's identity, from which its calendar UID is derived.
    ``updated`` is the provider's own change time when it gives one (used for watermarks and
    ``newest-wins``); it is not part of the content, so it does not change the hash.
    """

    account: str
    native_id: str
    start: datetime
    end: datetime
    title: str = ""
    notes: str = ""
    location: str = ""
    status: Status = Status.CONFIRMED
    customer: str = ""
    staff: str = ""
    resource: str = ""
    updated: datetime | None = None
    extra: tuple[tuple[str, str], ...] = ()
    _hash: str = field(default="", init=False, repr=False, compare=False)
    _text: str = field(default="", init=False, repr=False, compare=False)
    _utc: tuple[datetime, datetime] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.native_id:
            raise ValueError("native_id must not be empty")
        require_aware("start", self.start)
        require_aware("end", self.end)
        if self.updated is not None:
            require_aware("updated", self.updated)
            # Kept in UTC: a time in a repeated hour would not survive a JSON round trip.
            object.__setattr__(self, "updated", self.updated.astimezone(UTC))
        # Compare instants: two times in one zone compare by wall clock and ignore ``fold``,
        # which is wrong inside the repeated autumn hour.
        span = self.start.astimezone(UTC), self.end.astimezone(UTC)
        if span[1] < span[0]:
            raise ValueError(f"end {self.end.isoformat()} is before start {self.start.isoformat()}")
        object.__setattr__(self, "_utc", span)  # kept: the hash and the renderer need it too

    @property
    def utc_span(self) -> tuple[datetime, datetime]:
        """``start`` and ``end`` as UTC instants."""
        return self._utc

    @property
    def cancelled(self) -> bool:
        return self.status is Status.CANCELLED

    def content_hash(self) -> str:
        """A hash of everything a calendar shows, in UTC; ``updated`` is left out on purpose.

        Two reads of an unchanged appointment give the same hash even when the provider
        reports a different offset for the same instant, so polling never causes writes.
        Computed once per object: the engine asks for it in plan, apply and commit.
        """
        if self._hash:
            return self._hash
        start, end = self._utc
        parts = [
            self.account,
            self.native_id,
            start.isoformat(),
            end.isoformat(),
            zone_name(self.start),
            self.title,
            self.notes,
            self.location,
            self.status,  # a StrEnum is its value: no call to the Python-level ``.value``
            self.customer,
            self.staff,
            self.resource,
        ]
        if self.extra:
            parts.extend(f"{key}={value}" for key, value in self.extra)
        # Unit separators cannot be confused with text inside a field.
        digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
        object.__setattr__(self, "_hash", digest)
        return digest

    def moved(self, start: datetime, end: datetime) -> Appointment:
        return replace(self, start=start, end=end)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict that ``from_json`` turns back into an equal appointment.

        Built field by field rather than with ``dataclasses.asdict``, which deep-copies every
        value and was the largest cost of a first sync.
        """
        return {
            "account": self.account,
            "native_id": self.native_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "tz": zone_name(self.start),
            "title": self.title,
            "notes": self.notes,
            "location": self.location,
            "status": self.status.value,
            "customer": self.customer,
            "staff": self.staff,
            "resource": self.resource,
            "updated": self.updated.isoformat() if self.updated else None,
            "extra": [list(pair) for pair in self.extra],
        }

    def dumps(self) -> str:
        """``to_json`` as JSON text (exactly what ``json.dumps`` makes of it, compact), made
        once per object: the journal and the record of the same appointment both store it.

        Written directly with the json module's string encoder, which is twice as fast as
        building the dict and dumping it; ``tests/test_model.py`` holds the two equal.
        """
        if self._text:
            return self._text
        q, updated = quote, self.updated
        extra = (
            ",".join(f"[{q(key)},{q(value)}]" for key, value in self.extra) if self.extra else ""
        )
        text = (
            f'{{"account":{q(self.account)},"native_id":{q(self.native_id)},'
            f'"start":"{self.start.isoformat()}","end":"{self.end.isoformat()}",'
            f'"tz":{q(zone_name(self.start))},"title":{q(self.title)},"notes":{q(self.notes)},'
            f'"location":{q(self.location)},"status":{q(self.status)},'
            f'"customer":{q(self.customer)},"staff":{q(self.staff)},'
            f'"resource":{q(self.resource)},'
            f'"updated":{"null" if updated is None else q(updated.isoformat())},'
            f'"extra":[{extra}]}}'
        )
        object.__setattr__(self, "_text", text)
        return text

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Appointment:
        tz = data.get("tz")
        zone = ZoneInfo(tz) if tz else None
        return cls(
            account=data["account"],
            native_id=data["native_id"],
            start=_parse(data["start"], zone),
            end=_parse(data["end"], zone),
            title=data.get("title", ""),
            notes=data.get("notes", ""),
            location=data.get("location", ""),
            status=Status(data.get("status", "confirmed")),
            customer=data.get("customer", ""),
            staff=data.get("staff", ""),
            resource=data.get("resource", ""),
            updated=datetime.fromisoformat(data["updated"]) if data.get("updated") else None,
            extra=tuple((k, v) for k, v in data.get("extra", [])),
        )


@dataclass(frozen=True, slots=True)
class Deleted:
    """A provider reports (or a full scan shows) that the appointment no longer exists."""

    account: str
    native_id: str


@dataclass(frozen=True, slots=True)
class BusyBlock:
    """Time taken in a private calendar that must block bookings at the provider.

    Identity is ``(calendar, uid, recurrence_id)``: one block per occurrence, so a moved or
    cancelled instance of a series moves or removes exactly its own block. It carries no
    attendees and no text beyond ``label``.
    """

    calendar: str
    uid: str
    start: datetime
    end: datetime
    recurrence_id: str = ""
    label: str = ""

    def __post_init__(self) -> None:
        require_aware("start", self.start)
        require_aware("end", self.end)
        if self.end.astimezone(UTC) <= self.start.astimezone(UTC):  # instants, not wall clocks
            raise ValueError(f"busy block {self.uid} ends before it starts")

    @property
    def key(self) -> str:
        return f"{self.calendar}/{self.uid}/{self.recurrence_id}"


@dataclass(frozen=True, slots=True)
class ItemRef:
    """Where a calendar item lives and which version of it we saw: ``href`` plus ``etag``."""

    href: str
    etag: str


@dataclass(frozen=True, slots=True)
class CalendarItem:
    """One raw calendar object as a server holds it: the iCalendar text with its ref."""

    href: str
    etag: str
    ics: str


def zone_name(value: datetime) -> str:
    """The IANA name of ``value``'s zone, or ``UTC`` for fixed offsets and other tzinfos."""
    tz = value.tzinfo
    if isinstance(tz, ZoneInfo):
        return tz.key
    return "UTC"


def _parse(text: str, zone: ZoneInfo | None) -> datetime:
    value = datetime.fromisoformat(text)
    if zone is not None:
        value = value.astimezone(zone)
    return value
