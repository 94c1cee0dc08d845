"""The Qmatic sandbox's records: services, branches, holds, appointments and the fault
switches, plain data that ``QmaticState`` keeps and ``qmatic_api`` serves.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

HOLD = timedelta(minutes=15)
TOKEN_LIFETIME = 3600
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
_IDS = uuid.UUID("6f1d3c52-6a53-4c43-9a57-8f0e4b8e2c11")


def stable_id(kind: str, name: str) -> str:
    """A GUID the same on every run, so a demo's config keeps working after a restart."""
    return str(uuid.uuid5(_IDS, f"{kind}:{name}"))


@dataclass(frozen=True, slots=True)
class Service:
    id: str
    name: str
    minutes: int
    online_bookable: bool = True
    names: tuple[tuple[str, str], ...] = ()  # (language, name) translations

    def title(self, language: str) -> str:
        return dict(self.names).get(language[:2].lower(), self.name)


@dataclass(frozen=True, slots=True)
class Branch:
    id: str
    name: str
    street: str
    city: str
    opening: dict[int, tuple[time, time]]  # weekday (Monday 0) -> open, close
    capacity: int
    services: frozenset[str]


@dataclass(slots=True)
class Reservation:
    id: str
    service_id: str
    branch_id: str
    start: datetime
    end: datetime
    expires: float  # unix time of the clock
    notes: str = ""


@dataclass(slots=True)
class Appointment:
    id: str
    service_id: str
    branch_id: str
    start: datetime
    end: datetime
    customer: dict[str, str]
    notes: str = ""
    created: float = 0.0
    updated: float = 0.0
    overrides: dict[str, Any] = field(default_factory=dict)  # served instead of the real value
    dropped: set[str] = field(default_factory=set)  # served without these fields

    @property
    def personal_identifier(self) -> str:
        return self.customer.get("personalIdentifier", "")


@dataclass(slots=True)
class Faults:
    """Switches. Counted faults fire on the next N requests (of route ``only``, when set)."""

    latency: float = 0.0  # seconds before every answer
    server_errors: int = 0  # answer 503 before doing anything
    rate_limited: int = 0  # answer 429 with Retry-After
    retry_after: int = 30
    lost_replies: int = 0  # do the work, then answer 503: the client never hears it happened
    truncated: int = 0  # answer 200 with a JSON body cut off in the middle
    token_lifetime: int = TOKEN_LIFETIME  # seconds a newly issued token lives
    only: str | None = None


def sample_identifiers(count: int) -> list[str]:
    """The personalIdentifiers of the seeded customers: ``SANDBOX`` and seven digits."""
    return [f"SANDBOX{n:07d}" for n in range(1, count + 1)]
