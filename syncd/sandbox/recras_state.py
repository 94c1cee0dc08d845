"""The business behind the Recras sandbox: arrangements, bookings, codes, its clock and faults.

Tests, demos and benchmarks play the business through the plain methods here (``book``,
``reschedule``, ``set_status``, ``remove``, ``seed``...): they cost no API request, so
request counts measure syncd alone. Availability and ``reserveer`` live in
``recras_booking``, the HTTP side in ``recras_api`` and ``recras``.

Faithful where syncd could trip:

* Times carry offsets (Europe/Amsterdam), as the bookings API gives them; a booking is its
  lines, each with its own ``begin``/``eind`` derived from the arrangement's line offsets.
* Capacity is per arrangement line, in units (``aantal``) at any moment: the bookable start
  times of a day are derived from it, so a booking made by anyone takes the time away.
* ``remove`` is a hard delete; ``set_status`` is how bookings are cancelled (``geannuleerd``).
* ``corrupt`` damages one field of one booking as served (the stored booking stays sound).
* Every change queues webhook deliveries ``Boeking::postSave`` / ``Boeking::postDelete`` to
  the subscribed URLs (``outbox``), as ``{version, data, meta}``.
"""

from __future__ import annotations

import random
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
Clock = Callable[[], datetime]
STATUSES = ("informatie", "optie", "reservering", "definitief", "geannuleerd")
CONTACT_FIELDS = (
    "contact.naam",
    "contact.afdeling",
    "contactpersoon.voornaam",
    "contactpersoon.achternaam",
    "contactpersoon.geslacht",
    "contactpersoon.email1",
    "contactpersoon.telefoon1",
    "contactpersoon.adres",
    "contactpersoon.postcode",
    "contactpersoon.plaats",
    "boeking.opmerkingen",
    "veel_tekst_0",
)
_NAMES = ("Jansen", "de Vries", "van Dijk", "Bakker", "Visser", "Smit", "de Boer", "Mulder")


@dataclass(frozen=True, slots=True)
class Line:
    """An arrangement line: a product taking ``minutes`` from ``offset`` after the start."""

    id: int
    product_id: int
    name: str
    offset: int  # minutes after the booking's start
    minutes: int
    capacity: int  # units of this product that may be booked at any one moment


@dataclass(frozen=True, slots=True)
class Arrangement:
    id: int
    name: str
    lines: tuple[Line, ...]
    online: bool = True  # mag_online_geboekt_worden_achteraf_betalen
    first_start: time = time(10, 0)
    last_start: time = time(20, 0)
    step: int = 30  # minutes between start times
    min_ahead: timedelta = timedelta(hours=2)  # onlineboeking_minimaal_vooruit
    max_ahead: timedelta = timedelta(days=365)  # onlineboeking_maximaal_vooruit
    required: tuple[str, ...] = ("contactpersoon.achternaam", "contactpersoon.email1")

    def line(self, line_id: int) -> Line | None:
        return next((line for line in self.lines if line.id == line_id), None)


@dataclass(slots=True)
class BookedLine:
    id: int
    line_id: int
    product_id: int
    begin: datetime
    end: datetime
    amount: int
    description: str


@dataclass(slots=True)
class Booking:
    id: int
    customer_id: int
    arrangement_id: int
    status: str
    status_updated: datetime
    reference: str
    lines: list[BookedLine]
    contact: dict[str, Any] = field(default_factory=dict)

    @property
    def begin(self) -> datetime:
        return min(line.begin for line in self.lines)


@dataclass(slots=True)
class Voucher:
    code: str
    products: frozenset[int]
    expires: date
    used: bool = False


@dataclass(slots=True)
class DiscountCode:
    code: str
    name: str
    percentage: int
    arrangements: frozenset[int]
    valid_from: date
    valid_until: date


@dataclass(slots=True)
class Faults:
    """Counted switches: the next N API requests (of ``only`` when set) fail that way."""

    server_errors: int = 0
    rate_limited: int = 0
    retry_after: int = 2
    forbidden: int = 0
    garbled: int = 0  # a 200 whose body is not JSON
    latency: float = 0.0
    only: str | None = None


def default_arrangements() -> dict[int, Arrangement]:
    room = Line(1, 10, "Escape room, 60 minuten", 0, 60, capacity=6)
    drink = Line(2, 11, "Drankje na afloop", 60, 30, capacity=40)
    bowling = Line(3, 12, "Bowlingbaan per uur", 0, 60, capacity=8)
    return {
        1: Arrangement(1, "Escape room", (room, drink)),
        2: Arrangement(2, "Bowlen (alleen telefonisch)", (bowling,), online=False),
    }


class RecrasState:
    """One Recras instance. ``clock`` gives aware "now"; ``api_key`` is what it accepts."""

    def __init__(self, clock: Clock | None = None, api_key: str | None = None) -> None:
        self.clock = clock or (lambda: datetime.now(AMSTERDAM))
        self.api_key = api_key or secrets.token_urlsafe(24)
        self.arrangements = default_arrangements()
        self.bookings: dict[int, Booking] = {}
        self.vouchers: dict[str, Voucher] = {}
        self.discounts: dict[str, DiscountCode] = {}
        self.customers: dict[str, int] = {}  # e-mail -> klant_id
        self.webhooks: dict[int, tuple[str, str]] = {}  # id -> (event name, url)
        self.outbox: list[tuple[str, dict[str, Any]]] = []
        self.broken: dict[int, tuple[str, Any]] = {}  # booking id -> (field, served value)
        self.faults = Faults()
        self.requests: Counter[str] = Counter()
        self._ids = Counter[str]()

    def now(self) -> datetime:
        return self.clock().astimezone(AMSTERDAM)

    def next_id(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    # -- the business ------------------------------------------------------------------------

    def book(
        self,
        arrangement_id: int,
        start: datetime,
        amounts: dict[int, int] | None = None,
        *,
        status: str = "reservering",
        contact: dict[str, Any] | None = None,
    ) -> Booking:
        """A booking made at the desk: no availability check, no contact form rules."""
        arrangement = self.arrangements[arrangement_id]
        amounts = amounts or {line.id: 2 for line in arrangement.lines}
        start = start.astimezone(AMSTERDAM)
        lines = [
            BookedLine(
                self.next_id("line"),
                line.id,
                line.product_id,
                start + timedelta(minutes=line.offset),
                start + timedelta(minutes=line.offset + line.minutes),
                amounts[line.id],
                line.name,
            )
            for line in arrangement.lines
            if amounts.get(line.id, 0) > 0
        ]
        if not lines:
            raise ValueError("a booking needs at least one line with a positive amount")
        contact = dict(contact or {})
        email = str(
            contact.get("contactpersoon.email1") or f"desk{len(self.customers)}@example.org"
        )
        customer = self.customers.setdefault(email.lower(), len(self.customers) + 1)
        booking_id = self.next_id("booking")
        booking = Booking(
            booking_id,
            customer,
            arrangement_id,
            status,
            self.now(),
            f"B{start:%Y}-{booking_id:05d}",
            lines,
            contact,
        )
        self.bookings[booking_id] = booking
        self.notify("Boeking::postSave", booking_id)
        return booking

    def reschedule(self, booking_id: int, start: datetime) -> Booking:
        """Move every line by the same amount, so the booking begins at ``start``."""
        booking = self.bookings[booking_id]
        shift = start.astimezone(AMSTERDAM) - booking.begin
        for line in booking.lines:
            line.begin, line.end = line.begin + shift, line.end + shift
        self.notify("Boeking::postSave", booking_id)
        return booking

    def set_status(self, booking_id: int, status: str) -> Booking:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; known: {', '.join(STATUSES)}")
        booking = self.bookings[booking_id]
        if booking.status != status:
            booking.status, booking.status_updated = status, self.now()
            self.notify("Boeking::postSave", booking_id)
        return booking

    def remove(self, booking_id: int) -> None:
        del self.bookings[booking_id]
        self.broken.pop(booking_id, None)
        self.notify("Boeking::postDelete", booking_id)

    def corrupt(self, booking_id: int, field_name: str, value: Any) -> None:
        """Serve ``field_name`` of the booking as ``value`` (``begin``/``eind``/``aantal``
        damage every line; any other name a top-level field)."""
        if booking_id not in self.bookings:
            raise KeyError(booking_id)
        self.broken[booking_id] = (field_name, value)

    def add_voucher(self, code: str, products: set[int], expires: date, used: bool = False) -> None:
        self.vouchers[code] = Voucher(code, frozenset(products), expires, used)

    def add_discount(self, code: str, percentage: int, arrangements: set[int]) -> None:
        today = self.now().date()
        self.discounts[code] = DiscountCode(
            code, f"Korting {code}", percentage, frozenset(arrangements), today, date(2099, 12, 31)
        )

    def subscribe(self, event: str, url: str) -> int:
        hook_id = self.next_id("webhook")
        self.webhooks[hook_id] = (event, url)
        return hook_id

    def notify(self, event: str, booking_id: int) -> None:
        for name, url in self.webhooks.values():
            if name == event:
                data: dict[str, Any] = {"id": booking_id}
                booking = self.bookings.get(booking_id)
                if booking is not None:
                    data |= {"status": booking.status, "arrangement_id": booking.arrangement_id}
                meta = {"event": event, "sent_at": self.now().isoformat(timespec="seconds")}
                self.outbox.append((url, {"version": "alpha", "data": data, "meta": meta}))

    def seed(self, count: int, seed: int = 1) -> list[Booking]:
        """``count`` bookings from tomorrow on, at free times of the escape room."""
        rng = random.Random(seed)
        arrangement = self.arrangements[1]
        made: list[Booking] = []
        day = self.now().date() + timedelta(days=1)
        slots = int(
            (
                datetime.combine(day, arrangement.last_start)
                - datetime.combine(day, arrangement.first_start)
            )
            / timedelta(minutes=arrangement.step)
        )
        while len(made) < count:
            start = datetime.combine(day, arrangement.first_start, AMSTERDAM) + timedelta(
                minutes=arrangement.step * rng.randrange(slots + 1)
            )
            contact = {"contactpersoon.achternaam": rng.choice(_NAMES)}
            status = rng.choice(("informatie", "reservering", "definitief", "definitief"))
            made.append(
                self.book(1, start, {1: rng.randint(2, 3), 2: 0}, status=status, contact=contact)
            )
            day += timedelta(days=rng.randrange(0, 2))
        return made
