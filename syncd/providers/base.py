"""The contract every booking provider implements.

Terms
    ACCOUNT     a configured provider account (``[providers.NAME]``); ``Provider.name``.
    SCOPE       the part of an account one sync covers (an agenda, a staff member, filters),
                given as a flat mapping of strings from the sync's ``scope`` table.
    NATIVE ID   the provider's id of an appointment; with the account it is the identity.
    CURSOR      provider-specific progress (a watermark, a sync token) as a mapping of strings.
                The engine stores the cursor returned by ``pull`` only after every change that
                pull reported is committed, so a crash replays changes instead of losing them.

Errors (from ``syncd.errors``)
    AuthError           credentials refused; not retried.
    TransientError      timeouts, 5xx, resets; ``RateLimited`` carries Retry-After.
    TokenExpired        the cursor was rejected: the engine calls ``pull`` again with no cursor.
    Refused             a write the provider understood and declined (slot taken, outside hours).
    NotFound            the appointment does not exist.
    BadItem             never raised for a whole pull: a malformed appointment is returned in
                        ``Pull.items`` as a ``BadItem`` so the rest of the pull goes on.

Capabilities say which parts of the contract a provider implements; the engine and the shared
contract tests (``tests/contract/``) read them, and never call what a provider lacks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from syncd.errors import BadItem
from syncd.intake.request import IntakeRequest
from syncd.model import Appointment, BusyBlock, Deleted

Scope = Mapping[str, str]
Cursor = Mapping[str, str]


class Capability(StrEnum):
    INCREMENTAL = "incremental"  # pull(cursor) returns only what changed since the cursor
    DELETES_IN_PULL = "deletes-in-pull"  # incremental pulls report hard deletes as Deleted
    SCAN = "scan"  # scan(window) lists every appointment of a window: finds hard deletes
    MOVE = "move"  # move() reschedules an appointment
    CANCEL = "cancel"  # cancel() cancels an appointment
    BUSY_BLOCKS = "busy-blocks"  # add_busy()/remove_busy() make time unbookable
    WEBHOOKS = "webhooks"  # the provider can push change notifications
    INTAKE = "intake"  # book_from_event()/find_booking(): calendar events become bookings
    TRACKED = "tracked"  # no listing: reread() re-reads what the engine holds (see there)


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open time range ``[start, end)`` used for full scans and busy time."""

    start: datetime
    end: datetime

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True, slots=True)
class Pull:
    """What one pull saw.

    ``complete`` is true when ``items`` lists every appointment of ``window`` (a first pull or
    a full scan): a linked appointment inside the window that is absent was deleted. For an
    incremental pull it is false and absence means nothing.
    """

    items: Sequence[Appointment | Deleted | BadItem]
    cursor: Cursor
    complete: bool = False
    window: Window | None = None
    requests: int = field(default=0, compare=False)


class Provider(ABC):
    """One provider account. Instances are cheap; they hold an ``httpx.AsyncClient``."""

    capabilities: frozenset[Capability] = frozenset()

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    async def pull(self, scope: Scope, cursor: Cursor | None, window: Window) -> Pull:
        """Changes since ``cursor``; with no cursor, every appointment of ``window``."""

    async def reread(self, scope: Scope, known: Mapping[str, Appointment], window: Window) -> Pull:
        """Needs ``Capability.TRACKED``, and then the engine calls it instead of ``pull``.

        For a provider that cannot list appointments (Qmatic): ``known`` is the last agreed
        version of every appointment the sync holds, by native id; the answer is how those
        are now, plus whatever the provider tracks of itself, and is never ``complete``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not track appointments")

    async def scan(self, scope: Scope, window: Window) -> Pull:
        """Every appointment of ``window`` (``complete=True``); needs ``Capability.SCAN``."""
        raise NotImplementedError(f"{type(self).__name__} cannot scan")

    @abstractmethod
    async def get(self, native_id: str) -> Appointment | None:
        """The appointment as it is now, or ``None`` when it is gone."""

    async def move(self, appointment: Appointment, start: datetime, end: datetime) -> Appointment:
        """Reschedule; re-reads first, so repeating a move that already happened is a no-op."""
        raise NotImplementedError(f"{type(self).__name__} cannot move appointments")

    async def cancel(self, appointment: Appointment) -> Appointment:
        """Cancel; re-reads first, so cancelling twice is a no-op."""
        raise NotImplementedError(f"{type(self).__name__} cannot cancel appointments")

    async def add_busy(self, scope: Scope, block: BusyBlock) -> str:
        """Make ``block`` unbookable; returns the provider's id for it."""
        raise NotImplementedError(f"{type(self).__name__} has no busy blocks")

    async def remove_busy(self, scope: Scope, native_id: str) -> None:
        """Remove a block made by ``add_busy``; a block already gone counts as removed."""
        raise NotImplementedError(f"{type(self).__name__} has no busy blocks")

    async def book_from_event(self, scope: Scope, request: IntakeRequest) -> str:
        """Book what a person put in the intake calendar; returns the new native id.

        Needs ``Capability.INTAKE``. Raises ``Refused`` with a reason a person can read (it is
        shown in the event's title as ``[not booked: reason]`` and as a conflict) when the
        provider says no: slot taken, invalid code, bad contact data. Must store
        ``request.reference`` with the booking so ``find_booking`` can find it. Never retried
        by the engine after ``Refused``; after a transient error it is called again only when
        ``find_booking`` found nothing.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot book from calendar events")

    async def find_booking(self, scope: Scope, request: IntakeRequest) -> str | None:
        """The native id of a booking made for ``request.reference``, or ``None``.

        Asked only after a crash (or a lost answer) left it unknown whether
        ``book_from_event`` reached the provider; it may cost a listing.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot book from calendar events")

    async def check(self) -> None:
        """Prove the credentials work with one cheap authenticated call."""

    async def aclose(self) -> None:
        """Release connections."""


class WatchVault(Protocol):
    """Where a provider keeps what its push subscription needs across restarts (the hook
    credentials syncd generated, the subscription's id and age): a mapping of strings."""

    def load(self) -> Mapping[str, str] | None: ...

    def save(self, value: Mapping[str, str]) -> None: ...


@runtime_checkable
class Watches(Protocol):
    """A provider that subscribes to its own change notifications (an Agendize watch).

    The daemon calls ``watch`` once, when ``server.public_url`` is set, with the account's
    hook URL and a vault in the state store; the provider then keeps the subscription alive
    itself and checks deliveries against what the vault holds.
    """

    def watch(self, address: str, vault: WatchVault) -> None: ...


def scope_key(account: str, scope: Scope) -> str:
    """A stable text key for an account scope, used to name its stored cursor."""
    parts = ",".join(f"{k}={scope[k]}" for k in sorted(scope))
    return f"{account}[{parts}]"


def ensure_items(
    items: Sequence[Appointment | Deleted | BadItem],
) -> list[Appointment | Deleted | BadItem]:
    """Keep the last report per native id: a pull may see an appointment twice across pages."""
    seen: dict[str, Appointment | Deleted | BadItem] = {}
    for item in items:
        key = item.item if isinstance(item, BadItem) else item.native_id
        seen[key] = item
    return list(seen.values())
