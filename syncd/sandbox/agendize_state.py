"""The business behind the Agendize sandbox: its appointments, change log, tokens and watches.

Tests, demos and benchmarks play the business through the plain methods here (``book``,
``move``, ``cancel``, ``delete``, ``personal``, ``seed``, ...): they cost no API request, so
request counts measure syncd alone. The API side (``agendize_api``), the HTTP side
(``agendize``) and the watch sender (``agendize_watch``) read and change the same state.

Faithful where syncd could trip:

* Times are naive wall times of the appointment's own IANA zone, sent beside that zone, as
  the API does. Most appointments are in the company's zone; ``book(zone=...)`` makes others.
* Every change takes the next number of one change log; a sync token names a point in it, and
  a token listing returns what changed after that point. Tokens expire after ``token_ttl``
  seconds or at once with ``expire_tokens()``: the API then answers 410.
* ``delete`` leaves a tombstone that ``showDeleted`` listings report; ``get`` says 404.
* Every change queues one delivery per enabled watch (see ``agendize_watch``). A watch lapses
  after ``watch_ttl`` seconds or with ``lapse_watches()``; registering the same address again
  revives it.
* ``corrupt`` replaces one field of one appointment as served (dotted paths reach inside
  objects; ``agendize_render.DROP`` removes it); the stored appointment stays sound.
"""

from __future__ import annotations

import random
import secrets
import time as _time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from syncd.sandbox.agendize_render import delivery

Clock = Callable[[], float]
PARIS = ZoneInfo("Europe/Paris")
_FIRST = ("Camille", "Louis", "Chloé", "Hugo", "Léa", "Jules", "Manon", "Nathan", "Inès", "Tom")
_LAST = ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand")


@dataclass(slots=True)
class Entry:
    """One appointment as the sandbox stores it; ``start``/``end`` are naive in ``zone``."""

    id: str
    type: str  # "normal" or "personal"
    start: datetime
    end: datetime
    zone: str
    staff_id: str
    created: datetime  # naive, company zone
    seq: int = 0
    service_id: str = ""
    resource_id: str = ""
    client_id: str = ""
    status: str = "accepted"
    notes: str = ""
    private: dict[str, Any] = field(default_factory=dict)  # extendedProperties.private
    history: list[tuple[str, datetime]] = field(default_factory=list)  # (type, company wall)
    deleted: bool = False
    silent: bool | None = None  # the ``silent`` of the last API write, for tests to check
    overrides: dict[str, Any] = field(default_factory=dict)

    def instants(self) -> tuple[datetime, datetime]:
        zone = ZoneInfo(self.zone)
        return self.start.replace(tzinfo=zone), self.end.replace(tzinfo=zone)


@dataclass(slots=True)
class Token:
    seq: int
    issued: float
    expired: bool = False


@dataclass(slots=True)
class Watch:
    id: str
    address: str
    name: str
    username: str
    password: str
    registered: float
    status: str = "enabled"


@dataclass(slots=True)
class Faults:
    """Switches. Counted faults fire on the next N requests (of ``only``, when set)."""

    latency: float = 0.0  # seconds before every answer
    server_errors: int = 0  # answer 503
    rate_limited: int = 0  # answer 429 with Retry-After
    retry_after: int = 30
    error_under_200: int = 0  # answer HTTP 200 with an ``error`` object (code 503)
    malformed_json: int = 0  # answer 200 with a body cut off mid-document
    only: str | None = None  # "list", "get", "insert", "update", "delete" or "watch"
    repeat_deliveries: int = 0  # send the next N watch deliveries twice
    repeat_rate: float = 0.0  # and this share of the others (served mode uses it)


class SandboxState:
    """One simulated company. Admin methods take wall times (naive) or aware datetimes."""

    def __init__(
        self,
        *,
        company_id: str = "48213",
        api_key: str | None = None,
        token: str | None = None,
        oauth_token: str | None = None,
        clock: Clock = _time.time,
        zone: ZoneInfo = PARIS,
        page_size: int = 50,
        token_ttl: float | None = None,
        watch_ttl: float | None = None,
    ) -> None:
        self.company_id = company_id
        self.api_key = api_key or secrets.token_hex(12)
        self.token = token or secrets.token_hex(16)
        self.oauth_token = oauth_token or secrets.token_urlsafe(24)
        self.clock = clock
        self.zone = zone
        self.page_size = page_size
        self.token_ttl = token_ttl
        self.watch_ttl = watch_ttl
        self.faults = Faults()
        self.rng = random.Random(0)
        self.requests: Counter[str] = Counter()
        self.staff = {"1": ("Anna", "Martin"), "2": ("Bruno", "Petit"), "3": ("Claire", "Roux")}
        self.services = {"11": ("Consultation", 30), "12": ("Suivi", 15), "13": ("Bilan", 60)}
        self.resources = {"21": "Salle A", "22": "Salle B"}
        self.clients = {str(100 + i): _client(i) for i in range(40)}
        self.hours = {day: (time(9), time(18)) for day in range(6)}  # Monday to Saturday
        self.appointments: dict[str, Entry] = {}
        self.tokens: dict[str, Token] = {}
        self.pages: dict[str, tuple[list[str], str]] = {}  # page token -> (ids left, sync token)
        self.watches: dict[str, Watch] = {}
        self.outbox: list[tuple[str, dict[str, Any]]] = []  # (watch id, payload)
        self.delivered: list[tuple[str, int]] = []  # (event, HTTP status or 0 for no answer)
        self.seq = 0
        self._next_id = 5000

    # -- time ----------------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock()

    def wall_now(self, zone: ZoneInfo | None = None) -> datetime:
        moment = datetime.fromtimestamp(int(self.now()), zone or self.zone)
        return moment.replace(tzinfo=None)

    def wall(self, moment: datetime, zone: ZoneInfo | None = None) -> datetime:
        """A naive wall time of ``zone``: aware times are converted, naive ones kept."""
        if moment.tzinfo is not None:
            moment = moment.astimezone(zone or self.zone).replace(tzinfo=None)
        return moment.replace(microsecond=0, fold=0)

    def new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    # -- changes -------------------------------------------------------------------------------

    def changed(self, entry: Entry, event: str) -> Entry:
        """Log a change: the next sequence number, a history line and watch deliveries."""
        self.seq += 1
        entry.seq = self.seq
        entry.history.append((event, self.wall_now()))
        # A delivery carries the appointment as it is now, so it is rendered now: a delivery
        # that arrives late then says something older than what a listing already showed.
        payload = delivery(self, entry, event)
        self.outbox.extend((w.id, payload) for w in self.watches.values() if self.watch_alive(w))
        return entry

    def watch_alive(self, watch: Watch) -> bool:
        if watch.status != "enabled":
            return False
        return self.watch_ttl is None or self.now() - watch.registered < self.watch_ttl

    def token_valid(self, token: Token) -> bool:
        if token.expired:
            return False
        return self.token_ttl is None or self.now() - token.issued < self.token_ttl

    def expire_tokens(self) -> int:
        """Every sync token issued so far is refused from now on (410)."""
        for token in self.tokens.values():
            token.expired = True
        return len(self.tokens)

    def lapse_watches(self) -> int:
        """Every watch stops delivering until it is registered again."""
        for watch in self.watches.values():
            watch.status = "disabled"
        return len(self.watches)

    # -- the business ----------------------------------------------------------------------------

    def book(
        self,
        start: datetime,
        minutes: int = 30,
        *,
        end: datetime | None = None,
        staff: str = "1",
        service: str = "11",
        client: str = "100",
        resource: str = "",
        zone: ZoneInfo | None = None,
        status: str = "accepted",
        notes: str = "",
    ) -> Entry:
        """A booking made at the business's desk: no working-hours checks."""
        where = zone or self.zone
        begin = self.wall(start, where)
        finish = self.wall(end, where) if end is not None else begin + timedelta(minutes=minutes)
        entry = Entry(
            id=self.new_id(),
            type="normal",
            start=begin,
            end=finish,
            zone=where.key,
            staff_id=staff,
            created=self.wall_now(),
            service_id=service,
            resource_id=resource,
            client_id=client,
            status=status,
            notes=notes,
        )
        self.appointments[entry.id] = entry
        return self.changed(entry, "created")

    def personal(self, start: datetime, end: datetime, *, staff: str = "1") -> Entry:
        """The business's own personal appointment (a staff member away)."""
        entry = Entry(
            id=self.new_id(),
            type="personal",
            start=self.wall(start),
            end=self.wall(end),
            zone=self.zone.key,
            staff_id=staff,
            created=self.wall_now(),
        )
        self.appointments[entry.id] = entry
        return self.changed(entry, "created")

    def get(self, entry_id: str) -> Entry:
        entry = self.appointments.get(str(entry_id))
        if entry is None or entry.deleted:
            raise KeyError(f"no appointment {entry_id} in the sandbox")
        return entry

    def move(self, entry_id: str, start: datetime, end: datetime | None = None) -> Entry:
        entry = self.get(entry_id)
        zone = ZoneInfo(entry.zone)
        length = entry.end - entry.start
        entry.start = self.wall(start, zone)
        entry.end = self.wall(end, zone) if end is not None else entry.start + length
        return self.changed(entry, "updated")

    def set_status(self, entry_id: str, status: str) -> Entry:
        entry = self.get(entry_id)
        entry.status = status
        return self.changed(entry, "updated")

    def cancel(self, entry_id: str) -> Entry:
        return self.set_status(entry_id, "cancelled")

    def delete(self, entry_id: str) -> None:
        entry = self.get(entry_id)
        entry.deleted = True
        self.changed(entry, "deleted")

    def corrupt(self, entry_id: str, path: str, value: Any) -> Entry:
        """Serve ``path`` (``"start.timeZone"``) of this appointment as ``value``."""
        entry = self.get(entry_id)
        entry.overrides[path] = value
        return self.changed(entry, "updated")

    def seed(self, count: int, seed: int = 0, days: int = 28) -> list[Entry]:
        """``count`` bookings from today on, the same ones for the same seed and clock."""
        rng = random.Random(seed)
        today = self.wall_now().date()
        made = []
        for _ in range(count):
            day: date = today + timedelta(days=rng.randrange(days))
            start = datetime.combine(day, time(9)) + timedelta(minutes=30 * rng.randrange(16))
            service = rng.choice(("11", "11", "12", "13"))
            made.append(
                self.book(
                    start,
                    self.services[service][1],
                    staff=rng.choice(tuple(self.staff)),
                    service=service,
                    client=rng.choice(tuple(self.clients)),
                    status=rng.choice(("accepted",) * 4 + ("pending", "cancelled")),
                )
            )
        return made


def _client(index: int) -> tuple[str, str, str]:
    first, last = _FIRST[index % len(_FIRST)], _LAST[index % len(_LAST)]
    return first, last, f"{first.lower()}.{last.lower()}{index}@example.org"
