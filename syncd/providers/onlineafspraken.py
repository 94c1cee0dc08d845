"""OnlineAfspraken.nl as a syncd provider: pulls, full scans, moves, cancels, busy blocks.

Scope keys: ``agenda`` (required), ``resource`` and ``appointment_type`` (optional filters);
each an id as the API shows it. The parts live in their own modules: ``oa_client`` (signing,
salt clock, paging), ``oa_envelope`` (replies and errors), ``oa_mapping`` (elements ->
appointments, wall times), ``oa_cursor`` (the incremental watermark and why it is one request
per idle cycle), ``oa_directory`` (scopes, cached names, agendas), ``oa_blocks`` (busy
placeholders and opening-hours blocks) and ``onlineafspraken_webhook``.

Promises beyond the ``Provider`` contract:

* Windowed listings ask for a day more on each side (the API filters by date, we by instant)
  and keep what overlaps the window; hard deletes show only there, as absences.
* With ``private=True`` no customer name, appointment name or description reaches a
  calendar, and no customer is looked up.
* Appointments of the configured busy-block type are syncd's own placeholders: never pulled.
* ``move`` and ``cancel`` re-read first (repeating one that happened is a no-op) and re-read
  after, so they return what the provider now holds. A time the API's naive wall clock cannot
  express (seconds, past midnight, the second run of the repeated autumn hour) is ``Refused``
  before anything is sent, because it would come back different and loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

import httpx
import structlog

from syncd.errors import BadItem, ConfigError, NotFound, Refused
from syncd.model import Appointment, BusyBlock, Deleted
from syncd.providers.base import Capability, Cursor, Provider, Pull, Scope, Window, ensure_items
from syncd.providers.oa_blocks import Blocks, wall_span
from syncd.providers.oa_client import Listing, OnlineAfsprakenClient
from syncd.providers.oa_cursor import ServerTime, Watermark, check_not_ahead, next_watermark
from syncd.providers.oa_directory import Directory, OAScope
from syncd.providers.oa_envelope import Reply
from syncd.providers.oa_mapping import (
    Reading,
    TitleTemplate,
    change_stamp,
    fingerprint,
    parse_wall,
    read_appointment,
    resource_ids,
    text,
)

log = structlog.get_logger(__name__)

DEFAULT_BASE_URL = "https://agenda.onlineafspraken.nl/APIREST"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
Item = Appointment | Deleted | BadItem


class OnlineAfsprakenProvider(Provider):
    """One OnlineAfspraken account. ``client`` is injected in tests (an ASGI sandbox)."""

    capabilities = frozenset(
        {
            Capability.INCREMENTAL,
            Capability.SCAN,
            Capability.MOVE,
            Capability.CANCEL,
            Capability.BUSY_BLOCKS,
            Capability.WEBHOOKS,
        }
    )

    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str,
        api_secret: str,
        *,
        timezone: ZoneInfo = AMSTERDAM,
        client: httpx.AsyncClient | None = None,
        title_template: str = "{type} - {customer}",
        private: bool = False,
        overlap: timedelta = timedelta(minutes=2),
        watch_created: bool = False,
        page_size: int = 500,
        confirmations: int = 0,
        cancel_remarks: str = "",
        busy_appointment_type: str = "",
        busy_customer: str = "",
        busy_label: str = "Busy",
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name)
        if confirmations not in (0, 1, 2, 3):
            raise ConfigError(
                [f"confirmations: must be 0-3, got {confirmations}"], f"providers.{name}"
            )
        try:
            template = TitleTemplate(title_template)
        except ValueError as err:
            raise ConfigError([f"title_template: {err}"], f"providers.{name}") from None
        self.zone = timezone
        self.overlap = overlap
        self.watch_created = watch_created
        self.confirmations = confirmations
        self.cancel_remarks = cancel_remarks
        self.api = OnlineAfsprakenClient(
            name, base_url, api_key, api_secret, http=client, now=now, page_size=page_size
        )
        self.blocks = Blocks(self.api, timezone, busy_appointment_type, busy_customer, busy_label)
        self._reading = Reading(name, timezone, template, private)
        self.directory = Directory(self.api, private)

    # -- reading -------------------------------------------------------------------------------

    async def pull(self, scope: Scope, cursor: Cursor | None, window: Window) -> Pull:
        where = OAScope.parse(scope, self.name)
        if cursor is None:
            return await self._listing(where, window)
        sent = self.api.sent
        previous = Watermark.parse(cursor, self.name)
        query = {**where.filters(), "IncludeCancelled": "1"}
        listing = await self.api.list_all(
            "getAppointments", {**query, "UpdatedAfter": previous.param()}, "Appointment"
        )
        server = self._server_time(listing.first)
        check_not_ahead(previous, server, self.name)
        if self.watch_created:
            created = await self.api.list_all(
                "getAppointments", {**query, "CreatedAfter": previous.param()}, "Appointment"
            )
            listing.elements += created.elements
            listing.broken += created.broken
        self.directory.learn(listing, where.agenda)
        fresh = [
            (pos, e)
            for pos, e in listing.elements
            if not previous.already_reported(text(e, "Id"), fingerprint(e))
        ]
        items = await self._read(fresh, listing)
        mark = next_watermark(previous, _stamps(listing), server, self.overlap, self.zone)
        return Pull(items, mark.to_cursor(), complete=False, requests=self.api.sent - sent)

    async def scan(self, scope: Scope, window: Window) -> Pull:
        """The window's listing. Its cursor is the one a full pull of the window gives: it does
        not cover changes outside the window made before the scan, so an engine that already
        holds an incremental cursor should keep that one."""
        return await self._listing(OAScope.parse(scope, self.name), window)

    async def get(self, native_id: str) -> Appointment | None:
        """``None`` also for a busy placeholder: syncd's own, never an appointment to it."""
        try:
            return await self._one(await self._element(native_id))
        except NotFound:
            return None

    async def _listing(self, where: OAScope, window: Window) -> Pull:
        sent = self.api.sent
        first = window.start.astimezone(self.zone).date() - timedelta(days=1)
        last = window.end.astimezone(self.zone).date() + timedelta(days=1)
        query = {**where.filters(), "IncludeCancelled": "1"}
        query |= {"StartDate": first.isoformat(), "EndDate": last.isoformat()}
        listing = await self.api.list_all("getAppointments", query, "Appointment")
        self.directory.learn(listing, where.agenda)
        items = [
            item
            for item in await self._read(listing.elements, listing)
            if not isinstance(item, Appointment) or _overlaps(item, window)
        ]
        server = self._server_time(listing.first)
        mark = next_watermark(None, _stamps(listing), server, self.overlap, self.zone)
        requests = self.api.sent - sent
        return Pull(items, mark.to_cursor(), complete=True, window=window, requests=requests)

    async def _read(
        self, elements: list[tuple[int, Element]], listing: Listing | None = None
    ) -> list[Item]:
        """Map elements, skipping busy placeholders; broken ones become named ``BadItem``s."""
        busy_type = self.blocks.appointment_type
        kept = [
            (pos, e)
            for pos, e in elements
            if not busy_type or text(e, "AppointmentTypeId") != busy_type
        ]
        names = await self.directory.names(e for _, e in kept)
        items: list[Item] = [read_appointment(e, self._reading, names, f"#{p}") for p, e in kept]
        for fragment in listing.broken if listing else ():
            item = fragment.native_id or f"#{fragment.position}"
            items.append(BadItem(item, "xml", fragment.message))
        for bad in (i for i in items if isinstance(i, BadItem)):
            log.warning(
                "onlineafspraken.bad_item",
                account=self.name,
                item=bad.item,
                field=bad.field,
                message=bad.message,
            )
        return ensure_items(items)

    async def refresh_customer(self, customer_id: str) -> None:
        """Look a customer's name up again (a webhook said it changed)."""
        await self.directory.refresh_customer(customer_id)

    def _server_time(self, reply: Reply) -> ServerTime:
        stamp = float(reply.timestamp) if reply.timestamp is not None else self.api.clock.now()
        try:
            wall = parse_wall(reply.date)
        except ValueError:
            wall = datetime.fromtimestamp(stamp, self.zone).replace(tzinfo=None)
        return ServerTime(wall, stamp)

    async def _element(self, native_id: str) -> Element:
        """The appointment's element now; ``NotFound`` when it is gone or marked deleted."""
        reply = await self.api.call("getAppointment", {"Id": native_id}, items="Appointment")
        for fragment in reply.broken:
            raise BadItem(native_id, "xml", fragment.message)
        found = [e for e in reply.objects if e.tag == "Appointment"]
        if not found:
            raise BadItem(native_id, "Objects", "getAppointment answered without an appointment")
        if text(found[0], "Status") == "3":
            raise NotFound(self.name, f"appointment {native_id} is deleted")
        return found[0]

    # -- writing -------------------------------------------------------------------------------

    async def move(self, appointment: Appointment, start: datetime, end: datetime) -> Appointment:
        native_id = appointment.native_id
        element = await self._element(native_id)
        current = await self._one(element)
        if _same_span(current, start, end):
            return current
        if current.cancelled:
            raise Refused(self.name, f"appointment {native_id} is cancelled")
        day, begin, finish = wall_span(start, end, self.zone, self.name)
        params = {
            "Id": native_id,
            "AgendaId": await self.directory.agenda_of(
                native_id, element, current.start.astimezone(self.zone).date()
            ),
            "CustomerId": text(element, "CustomerId"),
            "AppointmentTypeId": text(element, "AppointmentTypeId"),
            "Date": day.isoformat(),
            "StartTime": begin,
            "EndTime": finish,
            "BookingMode": "customer",
        }
        if resources := resource_ids(element):
            params["ResourceId"] = resources[0]
        await self.api.call("setAppointment", params)
        return await self._one(await self._element(native_id))

    async def cancel(self, appointment: Appointment) -> Appointment:
        native_id = appointment.native_id
        current = await self._one(await self._element(native_id))
        if current.cancelled:
            return current
        params = {"Id": native_id, "Mode": "company", "Confirmations": str(self.confirmations)}
        if self.cancel_remarks:
            params["Remarks"] = self.cancel_remarks
        await self.api.call("cancelAppointment", params)
        return await self._one(await self._element(native_id))

    async def _one(self, element: Element) -> Appointment:
        """The element as an appointment; ``NotFound`` for a deletion or a busy placeholder."""
        items = await self._read([(0, element)])
        if not items:
            raise NotFound(self.name, f"appointment {text(element, 'Id')} is a busy placeholder")
        item = items[0]
        if isinstance(item, BadItem):
            raise item
        if isinstance(item, Deleted):
            raise NotFound(self.name, f"appointment {item.native_id} is deleted")
        return item

    async def add_busy(self, scope: Scope, block: BusyBlock) -> str:
        return await self.blocks.add_busy(OAScope.parse(scope, self.name).filters(), block)

    async def remove_busy(self, scope: Scope, native_id: str) -> None:
        OAScope.parse(scope, self.name)
        await self.blocks.remove_busy(native_id)

    async def add_opening_block(self, scope: Scope, start: datetime, end: datetime) -> str:
        """Bookable time via ``CHAddBlock``; the id is returned once, so store it at once."""
        where = OAScope.parse(scope, self.name)
        return await self.blocks.add_opening(
            where.agenda, where.resource, where.appointment_type, start, end
        )

    async def remove_opening_block(self, scope: Scope, block_id: str) -> None:
        """``CHRemoveBlock``; a block already gone counts as removed."""
        await self.blocks.remove_opening(OAScope.parse(scope, self.name).agenda, block_id)

    async def check(self) -> None:
        await self.api.call("getAgendas")

    async def aclose(self) -> None:
        await self.api.aclose()


def _stamps(listing: Listing) -> list[tuple[str, datetime | None, str]]:
    return [(text(e, "Id"), change_stamp(e), fingerprint(e)) for _, e in listing.elements]


def _overlaps(item: Appointment, window: Window) -> bool:
    """Half-open overlap; an appointment of zero length counts when it starts inside."""
    return item.start < window.end and (item.end > window.start or item.start >= window.start)


def _same_span(item: Appointment, start: datetime, end: datetime) -> bool:
    """Compared as instants: same-zone datetimes compare wall times and ignore ``fold``."""
    return item.start.timestamp() == start.timestamp() and item.end.timestamp() == end.timestamp()
