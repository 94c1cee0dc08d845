"""An in-process booking provider that behaves like the real ones, for tests, bench and demo.

What it promises, and why each promise mirrors a real provider:

* Every change by the business or by syncd takes the next number of one change sequence. A
  cursor is ``{"seq": "N"}``; an incremental pull returns what changed after N, whatever its
  date, as ``UpdatedAfter`` filters do. It never reports hard deletes (no
  ``DELETES_IN_PULL``): like OnlineAfspraken and Recras, only a full ``scan`` reveals them.
* Incremental pulls, moves, cancels and busy-block calls cost O(changes), never O(all): the
  change log is kept in change order, so a pull reads only its tail. First pulls and scans
  list the window and so cost what the window holds. The benchmark runs on 10,000 bookings.
* Cursors expire: older than ``history`` changes, after ``expire_cursors()``, from the future
  or unparsable, they raise ``TokenExpired`` as a rejected sync token does.
* ``move`` and ``cancel`` re-read first: repeating one that already happened changes nothing
  and does not advance the sequence, so a replay after a crash is invisible.
* Cancelled appointments stay listed with ``Status.CANCELLED``; a hard delete removes one.

The business side (``book``, ``reschedule``, ``edit``, ...) is plain synchronous methods that
cost no request, so tests can play the business without touching the counters that promise 6
is checked with. Busy blocks live apart from appointments and never appear in pulls.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from syncd.errors import BadItem, NotFound, Refused, TokenExpired
from syncd.faults import FaultInjection, Faults
from syncd.model import UTC, Appointment, BusyBlock, Deleted, Status
from syncd.providers.base import Capability, Cursor, Provider, Pull, Scope, Window

Clock = Callable[[], datetime]
_FIXED = frozenset({"account", "native_id"})
_STAFF = ("anna", "bram", "chris")
_TITLES = ("Intake", "Consult", "Follow-up", "Treatment", "Check-up")
_SLOTS_A_DAY = 16  # half-hour slots from 09:00 to 17:00 local time, per staff member


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _overlaps(item: Appointment, window: Window) -> bool:
    """Half-open overlap; an appointment of zero length counts when it starts inside."""
    return item.start < window.end and (item.end > window.start or item.start >= window.start)


def _in_scope(item: Appointment, scope: Scope) -> bool:
    return all(getattr(item, key) == scope[key] for key in ("staff", "resource") if key in scope)


class MemoryProvider(FaultInjection, Provider):
    """A provider account held in memory; ``name`` is the account name on every appointment."""

    capabilities = frozenset(
        {
            Capability.INCREMENTAL,
            Capability.SCAN,
            Capability.MOVE,
            Capability.CANCEL,
            Capability.BUSY_BLOCKS,
        }
    )

    def __init__(
        self, name: str = "memory", *, now: Clock = _utc_now, history: int | None = None
    ) -> None:
        super().__init__(name)
        self.now = now
        self.history = history
        self.faults = Faults()
        self._seq = 0
        self._oldest_cursor = 0  # cursors below this were expired by expire_cursors()
        self._next_id = 0
        self._store: dict[str, Appointment] = {}
        self._changed: dict[str, int] = {}  # native id -> seq of its last change, in seq order
        self._malformed: dict[str, tuple[str, str]] = {}
        self._refused: dict[str, str] = {}
        self._busy: dict[str, tuple[dict[str, str], BusyBlock]] = {}

    # -- the Provider contract ---------------------------------------------------------------

    async def pull(self, scope: Scope, cursor: Cursor | None, window: Window) -> Pull:
        async with self.faults.request("pull"):
            if cursor is None:
                return self._listing(scope, window)
            since = self._accept(cursor)
            ids: list[str] = []
            for native_id, seq in reversed(self._changed.items()):
                if seq <= since:
                    break
                ids.append(native_id)
            found = [self._store[i] for i in reversed(ids) if _in_scope(self._store[i], scope)]
            return Pull(self._report(found), self._cursor(), complete=False, requests=1)

    async def scan(self, scope: Scope, window: Window) -> Pull:
        async with self.faults.request("scan"):
            return self._listing(scope, window)

    async def get(self, native_id: str) -> Appointment | None:
        """The appointment, ``None`` when gone; a broken record raises ``BadItem``."""
        async with self.faults.request("get"):
            return self._current(native_id) if native_id in self._store else None

    async def move(self, appointment: Appointment, start: datetime, end: datetime) -> Appointment:
        async with self.faults.request("move"):
            current = self._current(appointment.native_id)
            if current.start == start and current.end == end:
                return current
            self._check_writable(current)
            if end < start:
                raise Refused(self.name, f"{current.native_id}: end is before start")
            zone = current.start.tzinfo  # answer in the provider's own zone, as real ones do
            return self._write(current, start=start.astimezone(zone), end=end.astimezone(zone))

    async def cancel(self, appointment: Appointment) -> Appointment:
        async with self.faults.request("cancel"):
            current = self._current(appointment.native_id)
            if current.cancelled:
                return current
            self._check_writable(current)
            return self._write(current, status=Status.CANCELLED)

    async def add_busy(self, scope: Scope, block: BusyBlock) -> str:
        """Adds a new block every time, as real providers do: the engine must not repeat it."""
        async with self.faults.request("add_busy"):
            self._next_id += 1
            block_id = f"busy-{self._next_id}"
            self._busy[block_id] = (dict(scope), block)
            return block_id

    async def remove_busy(self, scope: Scope, native_id: str) -> None:
        async with self.faults.request("remove_busy"):
            self._busy.pop(native_id, None)

    async def check(self) -> None:
        async with self.faults.request("check"):
            return

    # -- cursors, refusals, broken records -----------------------------------------------------

    def expire_cursors(self) -> None:
        """Reject every cursor handed out so far, as after a provider-side reset."""
        self._seq += 1
        self._oldest_cursor = self._seq

    def refuse_writes(self, native_id: str, reason: str = "slot not available") -> None:
        """Make ``move`` and ``cancel`` of ``native_id`` raise ``Refused(reason)``."""
        self._refused[native_id] = reason

    def allow_writes(self, native_id: str) -> None:
        self._refused.pop(native_id, None)

    def malformed(self, native_id: str, field: str, message: str) -> None:
        """From now on pulls, scans and ``get`` report ``native_id`` as a ``BadItem``.

        Counts as a change, so the next incremental pull sees the broken record, as it would
        see a booking the provider's own form saved with garbage in it.
        """
        self._require(native_id)
        self._malformed[native_id] = (field, message)
        self._bump(native_id)

    def repair(self, native_id: str) -> None:
        """Undo ``malformed``; also a change."""
        self._require(native_id)
        self._malformed.pop(native_id, None)
        self._bump(native_id)

    # -- the business side -------------------------------------------------------------------

    def book(
        self,
        start: datetime,
        end: datetime,
        *,
        title: str = "Appointment",
        customer: str = "",
        staff: str = "",
        resource: str = "",
        notes: str = "",
        location: str = "",
        native_id: str | None = None,
    ) -> Appointment:
        """A customer books; returns the appointment with a fresh native id unless given."""
        if native_id is None:
            self._next_id += 1
            while str(self._next_id) in self._store:  # a test chose this id by hand
                self._next_id += 1
            native_id = str(self._next_id)
        if native_id in self._store:
            raise ValueError(f"appointment {native_id} exists already")
        appointment = Appointment(
            account=self.name,
            native_id=native_id,
            start=start,
            end=end,
            title=title,
            notes=notes,
            location=location,
            customer=customer,
            staff=staff,
            resource=resource,
            updated=self.now(),
        )
        self._store[native_id] = appointment
        self._bump(native_id)
        return appointment

    def reschedule(self, native_id: str, start: datetime, end: datetime) -> Appointment:
        return self._write(self._require(native_id), start=start, end=end)

    def cancel_by_business(self, native_id: str) -> Appointment:
        return self._write(self._require(native_id), status=Status.CANCELLED)

    def edit(self, native_id: str, /, **fields: Any) -> Appointment:
        """Change any fields but the identity (``account``, ``native_id``, set by the provider)."""
        if _FIXED & fields.keys():
            raise ValueError(f"cannot edit {sorted(_FIXED & fields.keys())}")
        return self._write(self._require(native_id), **fields)

    def hard_delete(self, native_id: str) -> None:
        """Remove the appointment without a trace an incremental pull could see."""
        self._require(native_id)
        del self._store[native_id]
        del self._changed[native_id]
        self._malformed.pop(native_id, None)
        self._seq += 1

    def appointments(self) -> dict[str, Appointment]:
        """The business's truth: every appointment by native id, cancelled ones included."""
        return dict(self._store)

    def busy_blocks(self, scope: Scope | None = None) -> dict[str, BusyBlock]:
        """Busy blocks by the id ``add_busy`` returned, of ``scope`` only when given."""
        return {
            block_id: block
            for block_id, (placed, block) in self._busy.items()
            if scope is None or placed == dict(scope)
        }

    def seed(
        self, n: int, start: datetime, rng_seed: int = 0, tz: str = "Europe/Amsterdam"
    ) -> list[Appointment]:
        """Book ``n`` appointments from ``start``'s date on, the same ones for the same seed.

        Each day holds 48: three staff members with 16 half-hour slots from 09:00 to 17:00
        wall-clock time in ``tz``, each booking 15 or 30 minutes long. Wall-clock slots put
        some bookings on both sides of a DST change when the range crosses one.
        """
        rng = random.Random(rng_seed)
        zone = ZoneInfo(tz)
        first = start.astimezone(zone).date() if start.tzinfo else start.date()
        booked: list[Appointment] = []
        for i in range(n):
            staff = _STAFF[i % len(_STAFF)]
            slot = (i // len(_STAFF)) % _SLOTS_A_DAY
            day = first + timedelta(days=i // (len(_STAFF) * _SLOTS_A_DAY))
            begin = _wall(day, 9 * 60 + 30 * slot, zone)
            end = begin + timedelta(minutes=rng.choice((15, 30)))
            title = rng.choice(_TITLES)
            customer = f"Customer {rng.randrange(1, 10 * n + 2)}"
            booked.append(self.book(begin, end, title=title, customer=customer, staff=staff))
        return booked

    # -- inside ------------------------------------------------------------------------------

    def _listing(self, scope: Scope, window: Window) -> Pull:
        found = (a for a in self._store.values() if _overlaps(a, window) and _in_scope(a, scope))
        return Pull(self._report(found), self._cursor(), complete=True, window=window, requests=1)

    def _report(self, found: Iterable[Appointment]) -> list[Appointment | Deleted | BadItem]:
        items: list[Appointment | Deleted | BadItem] = []
        for item in found:
            broken = self._malformed.get(item.native_id)
            items.append(BadItem(item.native_id, *broken) if broken else item)
        return items

    def _cursor(self) -> Cursor:
        return {"seq": str(self._seq)}

    def _accept(self, cursor: Cursor) -> int:
        """The sequence number of a cursor this provider still honours."""
        try:
            seq = int(cursor["seq"])
        except (KeyError, ValueError):
            raise TokenExpired(self.name, f"unreadable cursor {dict(cursor)}") from None
        oldest = self._oldest_cursor
        if self.history is not None:
            oldest = max(oldest, self._seq - self.history)
        if not oldest <= seq <= self._seq:
            raise TokenExpired(self.name, f"cursor {seq} is outside {oldest}..{self._seq}")
        return seq

    def _require(self, native_id: str) -> Appointment:
        try:
            return self._store[native_id]
        except KeyError:
            raise KeyError(f"no appointment {native_id} in {self.name}") from None

    def _current(self, native_id: str) -> Appointment:
        if native_id in self._malformed:
            raise BadItem(native_id, *self._malformed[native_id])
        current = self._store.get(native_id)
        if current is None:
            raise NotFound(self.name, f"appointment {native_id} does not exist")
        return current

    def _check_writable(self, current: Appointment) -> None:
        reason = self._refused.get(current.native_id)
        if reason is not None:
            raise Refused(self.name, f"{current.native_id}: {reason}")
        if current.cancelled:
            raise Refused(self.name, f"{current.native_id} is cancelled")

    def _write(self, current: Appointment, **fields: Any) -> Appointment:
        changed = replace(current, **{"updated": self.now(), **fields})
        self._store[current.native_id] = changed
        self._bump(current.native_id)
        return changed

    def _bump(self, native_id: str) -> None:
        self._seq += 1
        self._changed.pop(native_id, None)  # re-insert so the dict stays in change order
        self._changed[native_id] = self._seq


def _wall(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=zone)
