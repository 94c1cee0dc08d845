"""Recras as a syncd provider: bookings out, cancellations back, calendar events in.

Scope keys: ``arrangement`` (optional): only bookings of that arrangement id. The parts live
in their own modules: ``recras_client`` (HTTP, errors), ``recras_mapping`` (bookings ->
appointments), ``recras_intake`` (booking intake events, finding them again) and
``recras_webhook``.

Recras documents no changed-since filter, so every pull is ONE ``GET /api2/boekingen`` and
the change detection is ours: each booking's content hash is compared with the hashes of the
listing the cursor names. That is the least the API allows for an idle cycle: one request,
and no write and no state read in the engine. The hashes live in memory, keyed by a digest
of the listing that the cursor carries; the last few listings are kept, so a cycle that
failed and pulls again with the older cursor still sees every change since then. After a
restart (or a cursor from elsewhere) the first pull is a complete listing of the window,
which the engine compares once against what it stored.

A booking absent from a later listing is reported ``Deleted`` (``DELETES_IN_PULL``), unless
the listing held a booking too broken to name: that could be any of them. A booking that is
malformed is reported as a ``BadItem`` when it changes and is never taken for deleted.

Cancelling sets the booking's cancelled status via ``set_status``; it is never sent for one
line of a booking shown per line (it would cancel the whole booking). Moves are not offered:
Recras documents no way to move a booking.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import structlog

from syncd.config.backends import RecrasConfig
from syncd.errors import BackendError, BadItem, ConfigError, NotFound, Refused
from syncd.intake.request import IntakeRequest
from syncd.model import Appointment, Deleted
from syncd.providers.base import Capability, Cursor, Provider, Pull, Scope, Window, ensure_items
from syncd.providers.recras_client import RecrasClient
from syncd.providers.recras_intake import Booker, BookingForm
from syncd.providers.recras_mapping import Reading, booking_id, read_booking

log = structlog.get_logger(__name__)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
Item = Appointment | Deleted | BadItem
SNAPSHOTS = 4  # listings remembered for cursors not yet stored by the engine


class RecrasProvider(Provider):
    """One Recras instance. ``client`` is injected in tests (an ASGI sandbox)."""

    capabilities = frozenset(
        {
            Capability.INCREMENTAL,
            Capability.DELETES_IN_PULL,
            Capability.SCAN,
            Capability.CANCEL,
            Capability.WEBHOOKS,
            Capability.INTAKE,
        }
    )

    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str,
        *,
        timezone: ZoneInfo = AMSTERDAM,
        client: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
        per_line: bool = False,
        cancelled_status: str = "geannuleerd",
        form: BookingForm | None = None,
    ) -> None:
        super().__init__(name)
        self.zone = timezone
        self.api = RecrasClient(name, base_url, api_key, http=client, timeout=timeout)
        self.reading = Reading(name, timezone, per_line, cancelled_status)
        self.booker = Booker(self.api, form or BookingForm(), timezone)
        self._snapshots: OrderedDict[str, dict[str, str]] = OrderedDict()
        self._parsed: dict[str, list[Appointment]] = {}  # raw booking digest -> its reading

    # -- reading -------------------------------------------------------------------------------

    async def pull(self, scope: Scope, cursor: Cursor | None, window: Window) -> Pull:
        sent = self.api.sent
        items, seen, unnamed = await self._listing(_arrangement(scope, self.name))
        digest = _digest(seen)
        before = self._snapshots.get(cursor.get("listing", "")) if cursor else None
        self._remember(digest, seen)
        shown = [i for i in items if not isinstance(i, Appointment) or _overlaps(i, window)]
        if before is None:
            return Pull(
                shown,
                {"listing": digest},
                complete=not unnamed,
                window=window,
                requests=self.api.sent - sent,
            )
        # Known bookings are reported wherever they went: one moved out of the window must
        # still move its event.
        inside = {id(i) for i in shown}
        candidates = [i for i in items if _key(i) in before or id(i) in inside]
        changed: list[Item] = [i for i in candidates if before.get(_key(i)) != seen.get(_key(i))]
        if not unnamed:
            broken = {i.item for i in items if isinstance(i, BadItem)}
            changed += [
                Deleted(self.name, nid)
                for nid in before
                if nid not in seen and nid.split("-")[0] not in broken
            ]
        return Pull(changed, {"listing": digest}, requests=self.api.sent - sent)

    async def scan(self, scope: Scope, window: Window) -> Pull:
        return await self.pull(scope, None, window)

    async def get(self, native_id: str) -> Appointment | None:
        booking = native_id.split("-")[0]
        if not booking.isdigit():
            return None
        try:
            data = await self.api.get(f"/api2/boekingen/{booking}")
        except NotFound:
            return None
        found = [a for a in read_booking(data, self.reading) if a.native_id == native_id]
        return found[0] if found else None

    async def _listing(self, arrangement: int | None) -> tuple[list[Item], dict[str, str], bool]:
        """Every booking read: the items, their hashes by native id, whether one is unnamed."""
        data = await self.api.get("/api2/boekingen")
        if not isinstance(data, list):
            raise BackendError(self.name, "boekingen: the answer is not a list")
        items: list[Item] = []
        seen: dict[str, str] = {}
        unnamed = False
        parsed: dict[str, list[Appointment]] = {}
        for position, booking in enumerate(data):
            if arrangement is not None and _arrangement_of(booking) != arrangement:
                continue
            raw = json.dumps(booking, sort_keys=True, default=str)
            digest = hashlib.sha256(raw.encode()).hexdigest()
            try:
                # An unchanged booking is not read again: mapping is most of a pull's cost.
                found = self._parsed.get(digest) or read_booking(booking, self.reading, position)
            except BadItem as bad:
                log.warning("recras.bad_item", account=self.name, item=bad.item, field=bad.field)
                items.append(bad)
                unnamed = unnamed or bad.item.startswith("#")
                seen[bad.item] = "bad:" + digest
                continue
            parsed[digest] = found
            for appointment in found:
                items.append(appointment)
                seen[appointment.native_id] = appointment.content_hash()
        self._parsed = parsed
        return ensure_items(items), seen, unnamed

    def _remember(self, digest: str, seen: dict[str, str]) -> None:
        self._snapshots[digest] = seen
        self._snapshots.move_to_end(digest)
        while len(self._snapshots) > SNAPSHOTS:
            self._snapshots.popitem(last=False)

    async def refresh(self, booking: int) -> list[Appointment]:
        """Re-read one booking (a webhook named it): its appointments now, ``[]`` when gone."""
        try:
            return read_booking(await self.api.get(f"/api2/boekingen/{booking}"), self.reading)
        except NotFound:
            return []

    # -- writing -------------------------------------------------------------------------------

    async def cancel(self, appointment: Appointment) -> Appointment:
        """Set the cancelled status; a booking already cancelled is returned unchanged."""
        if self.reading.per_line:
            raise Refused(self.name, "one line of a booking cannot be cancelled on its own")
        current = await self.get(appointment.native_id)
        if current is None:
            raise NotFound(self.name, f"booking {appointment.native_id} does not exist")
        if current.cancelled:
            return current
        status = self.reading.cancelled_status
        await self.api.post(f"/api2/boekingen/{appointment.native_id}/set_status/{status}")
        after = await self.get(appointment.native_id)
        if after is None:
            raise NotFound(self.name, f"booking {appointment.native_id} is gone")
        return after

    async def book_from_event(self, scope: Scope, request: IntakeRequest) -> str:
        made = await self.booker.book(request)
        if made is None:  # the key may book but not see ids (no editBoeking): look it up
            made = await self.booker.find(request)
            if made is None:
                raise BackendError(self.name, "reserveer gave no boeking_id (needs editBoeking)")
        return await self._native_id(made, request.start)

    async def find_booking(self, scope: Scope, request: IntakeRequest) -> str | None:
        made = await self.booker.find(request)
        return None if made is None else await self._native_id(made, request.start)

    async def _native_id(self, booking: int, start: datetime) -> str:
        """Per booking its id; per line the id of the line starting first."""
        if not self.reading.per_line:
            return str(booking)
        found = sorted(await self.refresh(booking), key=lambda a: a.start)
        return found[0].native_id if found else f"{booking}-0"

    async def check(self) -> None:
        """One cheap authenticated call: a booking that cannot exist, so 404 means welcome."""
        try:
            await self.api.get("/api2/boekingen/0")
        except NotFound:
            return

    async def aclose(self) -> None:
        await self.api.aclose()


def _arrangement(scope: Scope, account: str) -> int | None:
    unknown = sorted(set(scope) - {"arrangement"})
    if unknown:
        raise ConfigError([f"scope: unknown key {unknown[0]!r}; Recras knows arrangement"], account)
    value = scope.get("arrangement")
    if value is None:
        return None
    if not value.isdigit():
        raise ConfigError([f"scope.arrangement: not an id: {value!r}"], account)
    return int(value)


def _arrangement_of(booking: object) -> int | None:
    value = booking.get("arrangement_id") if isinstance(booking, dict) else None
    return value if isinstance(value, int) else None


def _key(item: Item) -> str:
    return item.item if isinstance(item, BadItem) else item.native_id


def _digest(seen: dict[str, str]) -> str:
    text = "\n".join(f"{k}={seen[k]}" for k in sorted(seen))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _overlaps(item: Appointment, window: Window) -> bool:
    """Half-open overlap; an appointment of zero length counts when it starts inside."""
    return item.start < window.end and (item.end > window.start or item.start >= window.start)


def from_config(name: str, config: RecrasConfig) -> RecrasProvider:
    """The account ``[providers.NAME]`` describes, with its own HTTP client."""
    form = BookingForm(
        arrangement_id=config.arrangement_id,
        products={int(k): v for k, v in config.products.items()},
        persons_field=config.persons_field,
        status=config.booking_status,
        send_confirmation=config.send_confirmation,
        contact_form=dict(config.contact_form),
        voucher_field=config.voucher_field,
        discount_field=config.discount_field,
    )
    return RecrasProvider(
        name,
        config.url,
        config.api_key.get_secret_value(),
        timezone=config.timezone,
        timeout=config.timeout.total_seconds(),
        per_line=config.event_per == "line",
        cancelled_status=config.cancelled_status,
        form=form,
    )


__all__ = ["RecrasProvider", "booking_id", "from_config"]
