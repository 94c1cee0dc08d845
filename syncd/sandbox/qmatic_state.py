"""The business behind the Qmatic sandbox: services, branches, bookings, holds and its clock.

Tests, demos and benchmarks play the business through the plain methods here (``book``,
``move``, ``cancel``, ``corrupt``, ...): they cost no API request, so the request counter
measures syncd alone. The API side (``qmatic_api``) reads and changes the same state.

The rules kept, because syncd could trip over each of them:

* Timeslots are derived, never stored: a service's day is cut into slots of the service's
  length from the branch's opening to its closing time; a slot is free while fewer than the
  branch's ``capacity`` appointments and live holds overlap it. Past slots are never offered.
* A reservation holds its slot for ``HOLD`` (15 minutes) of the injectable clock; unconfirmed,
  it lapses by itself and the slot is free again. Confirming or rescheduling onto a
  reservation uses it up.
* ``cancel`` (the business at its desk) and the API's ``DELETE`` both remove the appointment:
  afterwards no search finds it, as the real API shows a cancelled appointment.
* Times are kept aware in the sandbox's zone and served with their UTC offset.
"""

from __future__ import annotations

import random
import secrets
import time as _time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from syncd.sandbox.qmatic_records import (
    AMSTERDAM,
    Appointment,
    Branch,
    Faults,
    Reservation,
    Service,
    sample_identifiers,
    stable_id,
)

Clock = Callable[[], float]


class QmaticState:
    """One simulated Qmatic account and tenant, with a clock tests can move."""

    def __init__(
        self,
        *,
        account: str = "sandbox",
        tenant_id: str | None = None,
        client_id: str = "syncd",
        client_secret: str | None = None,
        clock: Clock = _time.time,
        zone: ZoneInfo = AMSTERDAM,
        horizon_days: int = 90,
    ) -> None:
        self.account = account
        self.tenant_id = tenant_id or secrets.token_hex(8)
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.clock = clock
        self.zone = zone
        self.horizon = timedelta(days=horizon_days)
        self.faults = Faults()
        self.requests: Counter[str] = Counter()
        self.tokens: dict[str, float] = {}  # access token -> expiry (unix time)
        self.services = {
            s.id: s
            for s in (
                Service(
                    stable_id("service", "passport"), "Passport", 30, names=(("nl", "Paspoort"),)
                ),
                Service(stable_id("service", "licence"), "Driving licence", 60),
                Service(stable_id("service", "internal"), "Internal review", 30, False),
            )
        }
        weekdays = {day: (time(9), time(17)) for day in range(5)}
        self.branches = {
            b.id: b
            for b in (
                Branch(
                    stable_id("branch", "centrum"),
                    "Centrum",
                    "Stationsplein 1",
                    "Utrecht",
                    weekdays,
                    2,
                    frozenset(self.services),
                ),
                Branch(
                    stable_id("branch", "noord"),
                    "Noord",
                    "Kerkstraat 9",
                    "Utrecht",
                    {day: (time(10), time(16)) for day in range(6)},
                    1,
                    frozenset({stable_id("service", "passport")}),
                ),
            )
        }
        self.reservations: dict[str, Reservation] = {}
        self.lapsed: set[str] = set()  # reservations that ran out unconfirmed
        self.appointments: dict[str, Appointment] = {}
        self.offset = 0.0  # seconds ``advance`` moved the clock

    # -- time and tokens -------------------------------------------------------------------------

    def time(self) -> float:
        """Unix time of the sandbox: its clock plus whatever ``advance`` added."""
        return self.clock() + self.offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), self.zone)

    def advance(self, seconds: float) -> None:
        """Move the sandbox's time on: holds lapse and tokens expire as they would."""
        self.offset += seconds

    def issue_token(self) -> tuple[str, int]:
        token = secrets.token_urlsafe(32)
        lifetime = self.faults.token_lifetime
        self.tokens[token] = self.time() + lifetime
        return token, lifetime

    def token_valid(self, token: str) -> bool:
        expiry = self.tokens.get(token)
        return expiry is not None and self.time() < expiry

    def revoke_tokens(self) -> None:
        """Every token issued so far stops working, as after a key rotation."""
        self.tokens.clear()

    # -- slots -----------------------------------------------------------------------------------

    def service(self, service_id: str) -> Service:
        try:
            return self.services[service_id]
        except KeyError:
            raise KeyError(f"no service {service_id}") from None

    def branch(self, branch_id: str) -> Branch:
        try:
            return self.branches[branch_id]
        except KeyError:
            raise KeyError(f"no branch {branch_id}") from None

    def slots(
        self, service_id: str, branch_id: str, day: date | None = None
    ) -> Iterator[tuple[datetime, datetime, int]]:
        """(start, end, free places) of every offered slot, of ``day`` or the whole horizon."""
        service, branch = self.service(service_id), self.branch(branch_id)
        if service_id not in branch.services:
            return
        now = self.now()
        first = now.date() if day is None else day
        last = (now + self.horizon).date() if day is None else day
        length = timedelta(minutes=service.minutes)
        while first <= last:
            hours = branch.opening.get(first.weekday())
            if hours is not None:
                start = datetime.combine(first, hours[0], self.zone)
                close = datetime.combine(first, hours[1], self.zone)
                while start + length <= close:
                    free = branch.capacity - self.taken(branch_id, start, start + length)
                    if start >= now and start <= now + self.horizon and free > 0:
                        yield start, start + length, free
                    start += length
            first += timedelta(days=1)

    def taken(self, branch_id: str, start: datetime, end: datetime, ignore: str = "") -> int:
        """Appointments and live holds at the branch overlapping ``[start, end)``."""
        self.drop_lapsed()
        spans = [
            (a.id, a.start, a.end) for a in self.appointments.values() if a.branch_id == branch_id
        ]
        spans += [
            (r.id, r.start, r.end) for r in self.reservations.values() if r.branch_id == branch_id
        ]
        return sum(1 for key, s, e in spans if key != ignore and s < end and start < e)

    def offered(self, service_id: str, branch_id: str, start: datetime, end: datetime) -> bool:
        local = start.astimezone(self.zone)
        return any(
            s == local and e == end.astimezone(self.zone)
            for s, e, _ in self.slots(service_id, branch_id, local.date())
        )

    def drop_lapsed(self) -> None:
        moment = self.time()
        for key in [k for k, r in self.reservations.items() if r.expires <= moment]:
            del self.reservations[key]
            self.lapsed.add(key)

    # -- the business ----------------------------------------------------------------------------

    def book(
        self,
        start: datetime,
        end: datetime | None = None,
        *,
        personal_identifier: str,
        service: str | None = None,
        branch: str | None = None,
        first_name: str = "Sam",
        last_name: str = "Jansen",
        email: str = "sam@example.org",
        notes: str = "",
    ) -> Appointment:
        """A booking made at the business's desk: no timeslot checks."""
        service_id = service or stable_id("service", "passport")
        length = timedelta(minutes=self.service(service_id).minutes)
        moment = self.time()
        appointment = Appointment(
            id=str(uuid.uuid4()),
            service_id=service_id,
            branch_id=branch or stable_id("branch", "centrum"),
            start=start.astimezone(self.zone),
            end=(end or start + length).astimezone(self.zone),
            customer={
                "personalIdentifier": personal_identifier,
                "firstName": first_name,
                "lastName": last_name,
                "email": email,
            },
            notes=notes,
            created=moment,
            updated=moment,
        )
        self.appointments[appointment.id] = appointment
        return appointment

    def get(self, appointment_id: str) -> Appointment:
        try:
            return self.appointments[appointment_id]
        except KeyError:
            raise KeyError(f"no appointment {appointment_id} in the sandbox") from None

    def move(
        self, appointment_id: str, start: datetime, end: datetime | None = None
    ) -> Appointment:
        found = self.get(appointment_id)
        length = found.end - found.start
        found.start = start.astimezone(self.zone)
        found.end = (end or found.start + length).astimezone(self.zone)
        found.updated = self.time()
        return found

    def cancel(self, appointment_id: str) -> None:
        """Cancelled at the desk: gone from every search, like a ``DELETE``."""
        self.get(appointment_id)
        del self.appointments[appointment_id]

    def corrupt(
        self, appointment_id: str, name: str, value: Any = None, *, drop: bool = False
    ) -> None:
        """Serve field ``name`` of this appointment as ``value`` (or leave it out)."""
        found = self.get(appointment_id)
        if drop:
            found.dropped.add(name)
        else:
            found.overrides[name] = value

    def search(self, personal_identifier: str) -> list[Appointment]:
        found = [
            a for a in self.appointments.values() if a.personal_identifier == personal_identifier
        ]
        return sorted(found, key=lambda a: (a.start, a.id))

    def seed(self, count: int, seed: int = 1, customers: int = 5) -> list[Appointment]:
        """``count`` desk bookings in free slots of the coming weeks, for ``customers``
        people (``sample_identifiers``), the same ones for the same seed and clock."""
        rng = random.Random(seed)
        people = sample_identifiers(customers)
        service = stable_id("service", "passport")
        branch = stable_id("branch", "centrum")
        free = [start for start, _, _ in self.slots(service, branch)]
        made = []
        for start in sorted(rng.sample(free, min(count, len(free)))):
            made.append(self.book(start, personal_identifier=rng.choice(people)))
        return made
