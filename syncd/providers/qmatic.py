"""Qmatic Cloud Appointments as a syncd provider: tracked appointments, moves, cancels, intake.

What it can sync. The API lists no appointments and has no changed-since filter: the only
way to read one is ``POST /appointments/search`` by the customer's ``personalIdentifier``.
So this provider sees exactly (and only) the appointments of TRACKED customers:

* the identifiers listed in the account's ``track`` (every appointment those customers have,
  however they were booked), and
* the appointments the sync already holds (``Capability.TRACKED``: the engine hands their last
  agreed versions to ``reread``), which include every booking syncd made from an intake event.

An appointment booked by anyone else, for a customer not tracked, is never seen. Each cycle
costs one search per tracked customer, not one request per account (DESIGN promise 6 cannot
hold for an API without a listing). An appointment that is still to come and has vanished from
its customer's search was cancelled (``DELETE`` is Qmatic's cancel) and is reported so.

Native ids are ``<personalIdentifier>.<appointment id>``: the identifier is the only key the
API can find an appointment by, so carrying it in the id lets ``get`` find any appointment
after a restart without state of its own. The parts live in ``qmatic_client`` (OAuth, errors),
``qmatic_mapping`` (JSON -> appointments, events -> customers) and ``qmatic_booking``
(timeslots, 15-minute holds, confirm, reschedule).

Scope keys: ``service`` and ``branch`` (ids), overriding the account's defaults; a sync with
them sees only that service's or branch's appointments, and intake books there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import structlog

from syncd.config.backends import QmaticConfig
from syncd.errors import BadItem, ConfigError, NotFound, Refused
from syncd.intake.request import IntakeRequest
from syncd.model import Appointment, Deleted, Status
from syncd.providers.base import Capability, Cursor, Provider, Pull, Scope, Window, ensure_items
from syncd.providers.qmatic_booking import Booking
from syncd.providers.qmatic_client import Credentials, QmaticClient
from syncd.providers.qmatic_mapping import (
    PERSONAL_IDENTIFIER,
    Reading,
    customer,
    extra,
    personal_identifier,
    read_appointment,
)

log = structlog.get_logger(__name__)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
SCOPE_KEYS = frozenset({"service", "branch"})
Item = Appointment | Deleted | BadItem


def native_id(pid: str, appointment_id: str) -> str:
    return f"{pid}.{appointment_id}"


def split_id(native: str) -> tuple[str, str] | None:
    """(personalIdentifier, appointment id) of a native id; ``None`` if it is none of ours."""
    pid, dot, appointment_id = native.partition(".")
    if not dot or not appointment_id or not PERSONAL_IDENTIFIER.fullmatch(pid):
        return None
    return pid, appointment_id


class QmaticProvider(Provider):
    """One Qmatic account and tenant. ``client`` is injected in tests (an ASGI sandbox)."""

    capabilities = frozenset(
        {Capability.TRACKED, Capability.MOVE, Capability.CANCEL, Capability.INTAKE}
    )

    def __init__(
        self,
        name: str,
        base_url: str,
        credentials: Credentials,
        tenant_id: str,
        *,
        language: str = "en",
        timezone: ZoneInfo = AMSTERDAM,
        service: str = "",
        branch: str = "",
        track: Iterable[str] = (),
        client: httpx.AsyncClient | None = None,
        now: Callable[[], float] = time.time,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(name)
        self.zone = timezone
        self.service = service
        self.branch = branch
        self.track = tuple(dict.fromkeys(track))
        self._now = now
        self.api = QmaticClient(
            name,
            base_url,
            credentials,
            tenant_id,
            language=language,
            http=client,
            now=now,
            timeout=timeout,
        )
        self.booking = Booking(self.api, timezone)
        self._reading = Reading(name, timezone)
        self._booked: set[str] = set()  # identifiers booked here, until the engine holds them

    # -- reading ---------------------------------------------------------------------------------

    async def pull(self, scope: Scope, cursor: Cursor | None, window: Window) -> Pull:
        """Without the engine's records: the tracked customers' appointments only."""
        return await self.reread(scope, {}, window)

    async def reread(self, scope: Scope, known: Mapping[str, Appointment], window: Window) -> Pull:
        """Every tracked customer's appointments in ``window`` and every appointment of
        ``known`` still to come, as they are now; never ``complete``."""
        sent = self.api.sent
        service, branch = self._scope(scope)
        now = datetime.fromtimestamp(self._now(), UTC)
        live = {nid: a for nid, a in known.items() if not a.cancelled and a.end > now}
        pids = dict.fromkeys([*self.track, *sorted(self._booked)])
        for nid in sorted(live):
            pids.setdefault(_pid_of(nid), None)
        items: list[Item] = []
        for pid in pids:
            try:
                found, certain = await self._search(pid)
            except BadItem as unreadable:  # this customer's answer only: the others go on
                items.append(unreadable)
                continue
            items += [i for i in found if _wanted(i, known, window, service, branch)]
            if not certain:
                continue  # an unnamed bad item may be any of them: absence proves nothing
            seen = {i.item if isinstance(i, BadItem) else i.native_id for i in found}
            for nid, last in live.items():
                if _pid_of(nid) == pid and nid not in seen and last.start > now:
                    items.append(replace(last, status=Status.CANCELLED, updated=None))
        self._booked -= {_pid_of(nid) for nid in known}
        for bad in (i for i in items if isinstance(i, BadItem)):
            log.warning(
                "qmatic.bad_item",
                account=self.name,
                item=bad.item,
                field=bad.field,
                message=bad.message,
            )
        return Pull(ensure_items(items), {}, complete=False, requests=self.api.sent - sent)

    async def get(self, native_id: str) -> Appointment | None:
        """The appointment now; ``None`` when gone. A broken one raises ``BadItem``."""
        parts = split_id(native_id)
        if parts is None:
            return None
        found, _ = await self._search(parts[0])
        for item in found:
            if isinstance(item, BadItem) and item.item == native_id:
                raise item
            if isinstance(item, Appointment) and item.native_id == native_id:
                return item
        return None

    async def _search(self, pid: str) -> tuple[list[Appointment | BadItem], bool]:
        """The customer's appointments (broken ones as ``BadItem``), and whether every item
        of the answer could be named -- only then does an absence mean anything."""
        answer = await self.api.call(
            "POST",
            "/appointments/search",
            "search",
            body={"customer": {"personalIdentifier": pid}},
        )
        if not isinstance(answer, list):
            raise BadItem(pid, "search", "the answer is not a list of appointments")
        found: list[Appointment | BadItem] = []
        certain = True
        for position, data in enumerate(answer):
            item = read_appointment(data, self._reading, f"{pid}#{position}")
            if isinstance(item, BadItem):
                if "#" in item.item:
                    certain = False
                else:
                    item = BadItem(native_id(pid, item.item), item.field, item.message)
            else:
                item = replace(item, native_id=native_id(pid, item.native_id))
            found.append(item)
        return found, certain

    # -- writing ---------------------------------------------------------------------------------

    async def move(self, appointment: Appointment, start: datetime, end: datetime) -> Appointment:
        """Reserve the new slot, then move the appointment onto it. Only the start can move:
        the length is the service's, so an appointment already starting at ``start`` is left
        as it is (a replay is a no-op)."""
        current = await self._current(appointment.native_id)
        if current.start.timestamp() == start.timestamp():
            return current
        if current.cancelled:
            raise Refused(self.name, f"appointment {current.native_id} is cancelled")
        service, branch = extra(current, "service"), extra(current, "branch")
        slot = await self.booking.free_slot(service, branch, start)
        reservation = await self.booking.reserve(service, branch, slot)
        await self.booking.reschedule(_appointment_id(current), reservation)
        return await self._current(current.native_id)

    async def cancel(self, appointment: Appointment) -> Appointment:
        """``DELETE``; one already gone counts as cancelled, so cancelling twice is a no-op."""
        current = await self.get(appointment.native_id)
        if current is None or current.cancelled:
            return replace(current or appointment, status=Status.CANCELLED)
        with suppress(NotFound):  # gone between the read and the delete: cancelled either way
            await self.api.call("DELETE", f"/appointments/{_appointment_id(current)}", "delete")
        return replace(current, status=Status.CANCELLED)

    async def _current(self, native: str) -> Appointment:
        found = await self.get(native)
        if found is None:
            raise NotFound(self.name, f"appointment {native} does not exist")
        return found

    # -- intake ------------------------------------------------------------------------------------

    async def book_from_event(self, scope: Scope, request: IntakeRequest) -> str:
        """Timeslot check, 15-minute hold, confirm with the event's customer details.

        The customer identifier is the request's reference (or its hash), so a booking made
        for this event is found again by ``find_booking``; one found already is returned
        without booking again.
        """
        pid = personal_identifier(request.reference)
        existing = await self.find_booking(scope, request)
        if existing is not None:
            return existing
        service, branch = self._scope(scope)
        if not (service and branch):
            raise Refused(self.name, "no service and branch configured to book at")
        try:
            details = customer(request, pid)
        except ValueError as err:
            raise Refused(self.name, str(err)) from None
        slot = await self.booking.free_slot(service, branch, request.start)
        reservation = await self.booking.reserve(service, branch, slot, details.get("notes", ""))
        answer = await self.booking.confirm(reservation, details)
        self._booked.add(pid)
        made = read_appointment(answer, self._reading, "confirm")
        if isinstance(made, Appointment):
            return native_id(pid, made.native_id)
        found = await self.find_booking(scope, request)  # confirmed, but the answer is unreadable
        if found is None:
            raise BadItem(request.href, made.field, made.message)
        return found

    async def find_booking(self, scope: Scope, request: IntakeRequest) -> str | None:
        found, _ = await self._search(personal_identifier(request.reference))
        live = [i for i in found if isinstance(i, Appointment) and not i.cancelled]
        return live[0].native_id if live else None

    async def check(self) -> None:
        """A token and one ``GET /services``: credentials, tenant and URL all work."""
        await self.api.call("GET", "/services", "services")

    async def aclose(self) -> None:
        await self.api.aclose()

    def _scope(self, scope: Scope) -> tuple[str, str]:
        unknown = set(scope) - SCOPE_KEYS
        if unknown:
            raise ConfigError(
                [f"scope.{key}: not a Qmatic scope key (use service, branch)" for key in unknown],
                f"providers.{self.name}",
            )
        return scope.get("service", self.service), scope.get("branch", self.branch)


def _pid_of(native: str) -> str:
    return native.partition(".")[0]


def _appointment_id(item: Appointment) -> str:
    return item.native_id.partition(".")[2]


def _wanted(
    item: Appointment | BadItem,
    known: Mapping[str, Appointment],
    window: Window,
    service: str,
    branch: str,
) -> bool:
    """Reported: what the sync holds, what it should show, and every broken item."""
    if isinstance(item, BadItem) or item.native_id in known:
        return True
    return _overlaps(item, window) and _in_scope(item, service, branch)


def _in_scope(item: Appointment, service: str, branch: str) -> bool:
    return (not service or extra(item, "service") == service) and (
        not branch or extra(item, "branch") == branch
    )


def _overlaps(item: Appointment, window: Window) -> bool:
    return item.start < window.end and (item.end > window.start or item.start >= window.start)


def from_config(name: str, config: QmaticConfig) -> QmaticProvider:
    """The account ``[providers.NAME]`` describes, with its own HTTP client (closed by
    ``aclose``) timing out after the configured ``timeout`` per request."""
    credentials = Credentials(
        config.account, config.client_id, config.client_secret.get_secret_value()
    )
    return QmaticProvider(
        name,
        config.base_url,
        credentials,
        config.tenant_id,
        language=config.language,
        timezone=config.timezone,
        service=config.service,
        branch=config.branch,
        track=config.track,
        timeout=config.timeout.total_seconds(),
    )
