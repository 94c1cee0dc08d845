"""OnlineAfspraken.nl as a syncd provider: pulls, full scans, moves, cancels, busy blocks.

Scope keys: ``agenda`` (required), ``resource`` and ``appointment_type`` (optional filters);
each an id as the API shows it. The parts live in their own modules: ``oa_client`` (signing,
salt clock, paging), ``oa_envelope`` (replies and errors), ``oa_mapping`` (elements ->
appointments, wall times), ``oa_cursor`` (the incremental watermark and why it is one request
per idle cycle), ``oa_directory`` (scopes, cached names, agendas), ``oa_blocks`` (busy
placeholders and opening-hours blocks), ``oa_writeback`` (moves and cancels) and
``onlineafspraken_webhook``.

Promises beyond the ``Provider`` contract:

* Windowed listings ask for a day more on each side (the API filters by date, we by instant)
  and keep what overlaps the window; hard deletes show only there, as absences. A listing
  holding an item too broken to name (no ``Id``) is not ``complete``: it proves no absence.
* With ``private=True`` no customer name, appointment name or description reaches a
  calendar, and no customer is looked up.
* Appointments of the configured busy-block type are syncd's own placeholders: never pulled.
* ``move`` and ``cancel`` are safe to repeat and return what the provider then holds; what
  they send and refuse is in ``oa_writeback``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

import httpx
import structlog

from syncd.config.backends import OnlineAfsprakenConfig
from syncd.errors import BadItem, ConfigError, NotFound
from syncd.model import Appointment, BusyBlock, Deleted
from syncd.providers.base import Capability, Cursor, Provider, Pull, Scope, Window, ensure_items
from syncd.providers.oa_blocks import Blocks
from syncd.providers.oa_client import Listing, OnlineAfsprakenClient
from syncd.providers.oa_cursor import (
    ServerTime,
    Watermark,
    check_not_ahead,
    next_watermark,
    server_time,
    stamps,
)
from syncd.providers.oa_directory import Directory, OAScope
from syncd.providers.oa_envelope import Reply
from syncd.providers.oa_mapping import (
    Reading,
    TitleTemplate,
    read_appointment,
    text,
)
from syncd.providers.oa_writeback import WriteBack

log = structlog.get_logger(__name__)

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
        timeout: float = 30.0,
    ) -> None:
        super().__init__(name)
        try:
            template = TitleTemplate(title_template)
        except ValueError as err:
            raise ConfigError([f"title_template: {err}"], f"providers.{name}") from None
        self.zone = timezone
        self.overlap = overlap
        self.watch_created = watch_created
        self.api = OnlineAfsprakenClient(
            name,
            base_url,
            api_key,
            api_secret,
            http=client,
            now=now,
            page_size=page_size,
            timeout=timeout,
        )
        self.blocks = Blocks(self.api, timezone, busy_appointment_type, busy_customer, busy_label)
        self._reading = Reading(name, timezone, template, private)
        self.directory = Directory(self.api, private)
        self.writes = WriteBack(
            self.api, self.directory, timezone, self._current, confirmations, cancel_remarks
        )

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
            if not previous.already_reported(text(e, "Id"), e)
        ]
        items = await self._read(fresh, listing)
        mark = next_watermark(previous, stamps(listing.elements), server, self.overlap, self.zone)
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
        mark = next_watermark(None, stamps(listing.elements), server, self.overlap, self.zone)
        requests = self.api.sent - sent
        # An item we could not even name may be any linked appointment: its absence from the
        # listing proves nothing, so such a listing claims no deletions.
        complete = not any(isinstance(i, BadItem) and i.item.startswith("#") for i in items)
        if not complete:
            log.warning("onlineafspraken.listing_incomplete", account=self.name)
        return Pull(items, mark.to_cursor(), complete=complete, window=window, requests=requests)

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
        return server_time(reply.date, reply.timestamp, self.api.clock.now(), self.zone)

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
        return await self.writes.move(appointment.native_id, start, end)

    async def cancel(self, appointment: Appointment) -> Appointment:
        return await self.writes.cancel(appointment.native_id)

    async def _current(self, native_id: str) -> tuple[Element, Appointment]:
        element = await self._element(native_id)
        return element, await self._one(element)

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
        """One signed ``getAgendas``: the key, the secret and our clock are accepted."""
        await self.api.call("getAgendas")

    async def aclose(self) -> None:
        await self.api.aclose()


def _overlaps(item: Appointment, window: Window) -> bool:
    """Half-open overlap; an appointment of zero length counts when it starts inside."""
    return item.start < window.end and (item.end > window.start or item.start >= window.start)


def from_config(name: str, config: OnlineAfsprakenConfig) -> OnlineAfsprakenProvider:
    """The account ``[providers.NAME]`` describes, with its own HTTP client (closed by
    ``aclose``) timing out after the configured ``timeout`` per request."""
    return OnlineAfsprakenProvider(
        name,
        config.base_url,
        config.api_key.get_secret_value(),
        config.api_secret.get_secret_value(),
        timezone=config.timezone,
        timeout=config.timeout.total_seconds(),
        title_template=config.title_template,
        private=config.private,
        overlap=config.overlap,
        watch_created=config.watch_created,
        confirmations=config.confirmations,
        cancel_remarks=config.cancel_remarks,
        busy_appointment_type=config.busy_appointment_type,
        busy_customer=config.busy_customer,
    )
