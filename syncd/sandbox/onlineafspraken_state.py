"""The business behind the OnlineAfspraken sandbox: its data, its clock, its fault switches.

Tests, demos and benchmarks play the business through the plain methods here (``book``,
``move``, ``cancel``, ``remove``, ``seed``, ...): they cost no API request, so request counts
measure syncd alone. The API side (``onlineafspraken_api``) and the HTTP side
(``onlineafspraken``) read and change the same state.

Faithful where syncd could trip:

* Times are naive wall times of the zone, to the second, as the real server keeps them;
  ``CreateTime``/``UpdateTime`` come from the injectable clock (plus ``faults.skew``), so a
  test can stand the server in the repeated autumn hour.
* Creating an appointment stamps ``UpdateTime`` too (``stamp_update_on_create``; switch it off
  to play an account where only ``CreatedAfter`` finds new bookings).
* ``remove`` is a hard delete, invisible to ``UpdatedAfter``; ``mark_deleted`` is the soft
  delete (``Status`` 3) that ``UpdatedAfter`` listings do show.
* ``corrupt`` and ``break_xml`` damage one appointment's element as served, for the
  malformed-data promises; the stored booking stays sound.
"""

from __future__ import annotations

import random
import secrets
import time as _time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Clock = Callable[[], float]
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
_FIRST = ("Jan", "Anna", "Pieter", "Sanne", "Daan", "Emma", "Bram", "Fleur", "Joris", "Lotte")
_LAST = ("Jansen", "de Vries", "van Dijk", "Bakker", "Visser", "Smit", "de Boer", "Mulder")


class ManualClock:
    """A clock tests move by hand; ``clock()`` is unix seconds."""

    def __init__(self, start: datetime | float) -> None:
        self.value = start.timestamp() if isinstance(start, datetime) else float(start)

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds

    def set(self, moment: datetime) -> None:
        self.value = moment.timestamp()


@dataclass(slots=True)
class Booking:
    """One appointment as the sandbox stores it; times are naive wall times."""

    id: int
    agenda_id: int
    type_id: int
    customer_id: int
    resource_ids: list[int]
    start: datetime
    finish: datetime
    created: datetime
    updated: datetime | None  # None: created without an UpdateTime
    name: str = ""
    description: str = ""
    status: int = 1
    label: int = 2
    confirmations: str | None = None  # the Confirmations of the cancel, for tests to check
    overrides: dict[str, str | None] = field(default_factory=dict)  # None drops the element
    broken_xml: bool = False
    resources_shape: str = "assigned"  # "assigned", "plain" or "flat": all seen in the wild

    @property
    def active(self) -> bool:
        return self.status == 1 and self.label != 4


@dataclass(slots=True)
class Block:
    """Extra bookable time made by ``CHAddBlock``."""

    id: int
    agenda_id: int
    day: date
    start: time
    end: time
    resource_id: int | None = None
    type_id: int | None = None


@dataclass(slots=True)
class Faults:
    """Switches. Counted faults fire on the next N requests (of ``only``, when set)."""

    latency: float = 0.0  # seconds before every answer
    server_errors: int = 0  # answer 503
    rate_limited: int = 0  # answer 429 with Retry-After
    retry_after: int = 30
    truncated: int = 0  # answer 200 with a reply cut off mid-document
    skew: float = 0.0  # seconds added to the server's clock
    only: str | None = None


@dataclass(frozen=True, slots=True)
class Customer:
    first: str
    insertions: str
    last: str

    @property
    def full(self) -> str:
        return " ".join(p for p in (self.first, self.insertions, self.last) if p)


class SandboxState:
    """One simulated account. Admin methods take wall times (naive) or aware datetimes."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        clock: Clock = _time.time,
        zone: ZoneInfo = AMSTERDAM,
        stamp_update_on_create: bool = True,
    ) -> None:
        self.api_key = api_key or secrets.token_hex(12)
        self.api_secret = api_secret or secrets.token_hex(24)
        self.clock = clock
        self.zone = zone
        self.stamp_update_on_create = stamp_update_on_create
        self.faults = Faults()
        self.requests: Counter[str] = Counter()
        self.agendas = {1: "Salon", 2: "Studio"}
        self.resources = {1: "Anna", 2: "Bram", 3: "Chris"}
        self.types = {1: ("Knippen", 30), 2: ("Kleuren", 90), 3: ("Föhnen", 20)}
        self.types[90] = ("Bezet (syncd)", 0)  # for busy placeholders
        self.customers = {i + 1: _customer(i) for i in range(40)}
        self.customers[90] = Customer("syncd", "", "placeholder")
        self.opening = {day: (time(9), time(18)) for day in range(6)}  # Monday to Saturday
        self.appointments: dict[int, Booking] = {}
        self.blocks: dict[int, Block] = {}
        self._next_id = 1000

    # -- time ----------------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock() + self.faults.skew

    def wall_now(self) -> datetime:
        moment = datetime.fromtimestamp(int(self.now()), self.zone)
        return moment.replace(tzinfo=None)

    def wall(self, moment: datetime) -> datetime:
        """A wall time of the zone: aware times are converted, naive ones taken as they are."""
        if moment.tzinfo is not None:
            moment = moment.astimezone(self.zone).replace(tzinfo=None)
        return moment.replace(microsecond=0, fold=0)

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # -- the business ----------------------------------------------------------------------------

    def book(
        self,
        start: datetime,
        minutes: int = 30,
        *,
        end: datetime | None = None,
        agenda: int = 1,
        type_id: int = 1,
        customer: int = 1,
        resources: Iterable[int] = (1,),
        name: str = "",
        description: str = "",
        label: int = 2,
    ) -> Booking:
        """A booking made at the business's desk: no bookable-time checks."""
        begin = self.wall(start)
        finish = self.wall(end) if end is not None else begin + timedelta(minutes=minutes)
        now = self.wall_now()
        booking = Booking(
            id=self.new_id(),
            agenda_id=agenda,
            type_id=type_id,
            customer_id=customer,
            resource_ids=list(resources),
            start=begin,
            finish=finish,
            created=now,
            updated=now if self.stamp_update_on_create else None,
            name=name or self.customers.get(customer, Customer("", "", "")).full,
            description=description,
            label=label,
        )
        self.appointments[booking.id] = booking
        return booking

    def get(self, booking_id: int) -> Booking:
        try:
            return self.appointments[booking_id]
        except KeyError:
            raise KeyError(f"no appointment {booking_id} in the sandbox") from None

    def touch(self, booking: Booking) -> Booking:
        booking.updated = self.wall_now()
        return booking

    def move(self, booking_id: int, start: datetime, end: datetime | None = None) -> Booking:
        booking = self.get(booking_id)
        length = booking.finish - booking.start
        booking.start = self.wall(start)
        booking.finish = self.wall(end) if end is not None else booking.start + length
        return self.touch(booking)

    def cancel(self, booking_id: int) -> Booking:
        booking = self.get(booking_id)
        booking.label = 4
        return self.touch(booking)

    def mark_deleted(self, booking_id: int) -> Booking:
        booking = self.get(booking_id)
        booking.status = 3
        return self.touch(booking)

    def remove(self, booking_id: int) -> None:
        self.get(booking_id)
        del self.appointments[booking_id]

    def corrupt(self, booking_id: int, element: str, raw: str | None) -> Booking:
        """Serve ``element`` of this appointment as ``raw`` text (``None``: leave it out).

        For ``Resources`` the text is the element's inner XML, served as it is.
        """
        booking = self.get(booking_id)
        booking.overrides[element] = raw
        return self.touch(booking)

    def break_xml(self, booking_id: int) -> Booking:
        """Serve this appointment with an unescaped ``&``: the reply is no longer well-formed."""
        booking = self.get(booking_id)
        booking.broken_xml = True
        return self.touch(booking)

    def seed(self, count: int, seed: int = 0, days: int = 28) -> list[Booking]:
        """``count`` bookings from today on, the same ones for the same seed and clock."""
        rng = random.Random(seed)
        today = self.wall_now().date()
        made = []
        for _ in range(count):
            day = today + timedelta(days=rng.randrange(days))
            start = datetime.combine(day, time(9)) + timedelta(minutes=30 * rng.randrange(16))
            type_id = rng.choice((1, 1, 2, 3))
            booking = self.book(
                start,
                self.types[type_id][1],
                type_id=type_id,
                customer=rng.randrange(1, 41),
                resources=(rng.randrange(1, 4),),
                label=rng.choice((2, 2, 2, 2, 1, 4)),
            )
            booking.resources_shape = rng.choice(("assigned", "plain"))
            made.append(booking)
        return made


def _customer(index: int) -> Customer:
    last = _LAST[index % len(_LAST)]
    insertions, _, surname = last.rpartition(" ")
    return Customer(_FIRST[index % len(_FIRST)], insertions, surname)
