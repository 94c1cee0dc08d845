"""Agendize as a syncd provider: pulls by sync token, scans, moves, cancels, busy blocks, watch.

Scope keys, all optional filters: ``staff``, ``service`` and ``resource``, each an id as the
API shows it (``staffId``/``serviceId``/``resourceId`` of the listing). The parts live in
their own modules: ``ag_client`` (auth, the error object, paging), ``ag_mapping`` (resources
-> appointments, zoned wall times, versions), ``ag_writeback`` (moves and cancels),
``ag_busy`` (personal appointments as busy blocks), ``ag_watch`` (the watch and what a
delivery is worth) and ``agendize_webhook`` (deliveries).

Promises beyond the ``Provider`` contract:

* A pull without a token lists the window (``startDate``/``endDate`` always sent, in GMT, a
  day wider on each side because the document's account of those bounds contradicts itself;
  what lies outside the window is dropped here) with ``showDeleted=true``, every page, and
  is ``complete``. Its cursor is the last page's ``nextSyncToken``, tied to the scope: a token
  taken under other filters is not used. The engine stores it after the changes are committed.
* A pull with a token sends ``syncToken`` (and still the dates; the listing reports changes
  outside them too) and reports deletions as ``Deleted``. A 410, or any refusal of a request
  that carried a token, raises ``TokenExpired``: the engine drops the token and lists the
  window once. That listing carries no token, so its failure is an ordinary error: no loop.
* Listings ask for ``levelDetail=full``: the light default lacks the marks that tell syncd's
  own busy blocks apart. A listing holding an item too broken to name proves no absence, so
  it is not ``complete``.
* ``personal_busy`` reads the business's own personal appointments as busy-only appointments
  (title ``Busy``, no client); syncd's own blocks are never read, whatever the setting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import structlog

from syncd.config.backends import AgendizeConfig
from syncd.errors import BadItem, ConfigError, NotFound, TokenExpired
from syncd.model import Appointment, BusyBlock, Deleted
from syncd.providers.ag_busy import Blocks, gmt
from syncd.providers.ag_client import AgendizeClient, ApiRefusal, Credentials, Listing, TokenGone
from syncd.providers.ag_mapping import Item, Reading, read_item, read_listing, version
from syncd.providers.ag_watch import Watcher
from syncd.providers.ag_writeback import WriteBack
from syncd.providers.base import (
    Capability,
    Cursor,
    Provider,
    Pull,
    Scope,
    WatchVault,
    Window,
)

log = structlog.get_logger(__name__)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
DAY = timedelta(days=1)
_FILTERS = {"staff": "staffId", "service": "serviceId", "resource": "resourceId"}


@dataclass(frozen=True, slots=True)
class AGScope:
    """A sync's scope, checked: only the known filters, each a plain id."""

    filters: Mapping[str, str]

    @classmethod
    def parse(cls, scope: Scope, account: str) -> AGScope:
        problems = [
            f"scope.{key}: unknown key (use staff, service, resource)"
            for key in scope
            if key not in _FILTERS
        ]
        problems += [
            f"scope.{key}: must be an id, got {value!r}"
            for key, value in scope.items()
            if key in _FILTERS and not (value and value.replace("-", "").isalnum())
        ]
        if problems:
            raise ConfigError(problems, source=f"providers.{account}")
        return cls({_FILTERS[key]: value for key, value in sorted(scope.items())})

    def key(self, personal: bool) -> str:
        """What a sync token was taken under: the filters and whether personal ones came."""
        parts = [f"{name}={value}" for name, value in self.filters.items()]
        return ",".join([*parts, f"personal={int(personal)}"])


class AgendizeProvider(Provider):
    """One Agendize company. ``client`` is injected in tests (an ASGI sandbox)."""

    capabilities = frozenset(
        {
            Capability.INCREMENTAL,
            Capability.DELETES_IN_PULL,
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
        company_id: str,
        credentials: Credentials,
        *,
        timezone: ZoneInfo = AMSTERDAM,
        client: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
        personal_busy: bool = False,
        busy_staff: str = "",
        silent: bool = True,
        cancel_deletes: bool = False,
        watch_renew: timedelta = timedelta(hours=6),
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name)
        self.zone = timezone
        self.busy_staff = busy_staff
        self.api = AgendizeClient(
            name, base_url, company_id, credentials, http=client, timeout=timeout, now=now
        )
        self.reading = Reading(name, timezone, personal_busy)
        self.blocks = Blocks(self.api, name, timezone)
        self.watcher = Watcher(self.api, watch_renew, now)
        self.writes = WriteBack(
            self.api, self._current, self._read_one, timezone, silent, cancel_deletes
        )

    def watch(self, address: str, vault: WatchVault) -> None:
        """Keep a watch registered at ``address``; see ``ag_watch``."""
        self.watcher.attach(address, vault)

    # -- reading -------------------------------------------------------------------------------

    async def pull(self, scope: Scope, cursor: Cursor | None, window: Window) -> Pull:
        where = AGScope.parse(scope, self.name)
        sent = self.api.sent
        await self.watcher.ensure()
        key = where.key(self.reading.personal_busy)
        token = cursor.get("sync_token") if cursor and cursor.get("scope") == key else None
        if not token:
            return replace(await self._listing(where, window), requests=self.api.sent - sent)
        params = self._params(where, window) | {"syncToken": token}
        try:
            listing = await self.api.list_all(params)
        except (TokenGone, ApiRefusal, NotFound) as err:
            log.info("agendize.token_refused", account=self.name, error=err.message)
            raise TokenExpired(self.name, f"sync token refused: {err.message}") from None
        items = self._read(listing.items)
        return Pull(items, self._cursor(listing, key), requests=self.api.sent - sent)

    async def scan(self, scope: Scope, window: Window) -> Pull:
        """The window's listing, with the sync token it ends with."""
        return await self._listing(AGScope.parse(scope, self.name), window)

    async def get(self, native_id: str) -> Appointment | None:
        """``None`` also for syncd's own busy blocks and unread personal appointments."""
        try:
            return (await self._current(native_id))[1]
        except NotFound:
            return None

    def _params(self, where: AGScope, window: Window) -> dict[str, str]:
        params = dict(where.filters)
        params |= {"startDate": gmt(window.start - DAY), "endDate": gmt(window.end + DAY)}
        params |= {"showDeleted": "true", "levelDetail": "full"}
        if self.reading.personal_busy:
            params["personalAppointments"] = "true"
        return params

    async def _listing(self, where: AGScope, window: Window) -> Pull:
        sent = self.api.sent
        listing = await self.api.list_all(self._params(where, window))
        items = [
            item
            for item in self._read(listing.items)
            if not isinstance(item, Appointment) or _overlaps(item, window)
        ]
        # An item too broken to name may be any linked appointment: its absence proves nothing.
        complete = not any(isinstance(i, BadItem) and i.item.startswith("#") for i in items)
        if not complete:
            log.warning("agendize.listing_incomplete", account=self.name)
        cursor = self._cursor(listing, where.key(self.reading.personal_busy))
        return Pull(items, cursor, complete, window, self.api.sent - sent)

    def _cursor(self, listing: Listing, key: str) -> dict[str, str]:
        if not listing.sync_token:
            log.warning("agendize.no_sync_token", account=self.name, pages=listing.pages)
            return {}  # the next pull lists the window again
        return {"sync_token": listing.sync_token, "scope": key}

    def _read(self, raws: list[Any]) -> list[Item]:
        return read_listing(raws, self.reading, self.watcher.saw)

    def _read_one(self, raw: Any) -> Appointment:
        """A resource the API answered with, as an appointment; raises what it cannot be."""
        item = read_item(raw, self.reading, "reply")
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            self.watcher.saw(raw["id"], version(raw))
        if isinstance(item, BadItem):
            raise item
        if item is None or isinstance(item, Deleted):
            shown = raw.get("id") if isinstance(raw, dict) else "?"
            raise NotFound(self.name, f"appointment {shown} is not a booking syncd reads")
        return item

    async def _current(self, native_id: str) -> tuple[dict[str, Any], Appointment]:
        """The resource and its reading now; ``NotFound`` when gone or not a booking."""
        raw = await self.api.call("get", "GET", f"/{native_id}", params={"levelDetail": "full"})
        if not isinstance(raw, dict):
            raise BadItem(native_id, "item", "get answered without an appointment object")
        return raw, self._read_one(raw)

    def notice(self, delivered: dict[str, Any]) -> bool:
        """Whether a (verified) delivery says more than syncd has seen; see ``ag_watch``.

        A deletion is read like a tombstone: it need not carry a whole appointment."""
        if delivered.get("event") == "deleted":
            delivered = {**delivered, "deleted": True}
        item = read_item(delivered, self.reading, "delivery")
        if isinstance(item, BadItem):
            raise item
        if item is None:
            return False  # syncd's own busy block, or personal time it does not read
        return self.watcher.fresh(item.native_id, version(delivered))

    # -- writing -------------------------------------------------------------------------------

    async def move(self, appointment: Appointment, start: datetime, end: datetime) -> Appointment:
        return await self.writes.move(appointment.native_id, start, end)

    async def cancel(self, appointment: Appointment) -> Appointment:
        return await self.writes.cancel(appointment.native_id)

    def _staff(self, scope: Scope) -> str:
        staff = AGScope.parse(scope, self.name).filters.get("staffId") or self.busy_staff
        if not staff:
            raise ConfigError(
                ["busy_staff: required for busy blocks unless the sync's scope names a staff"],
                source=f"providers.{self.name}",
            )
        return staff

    async def add_busy(self, scope: Scope, block: BusyBlock) -> str:
        return await self.blocks.add(self._staff(scope), block)

    async def find_busy(self, scope: Scope, block: BusyBlock) -> list[str]:
        """Blocks made for ``block`` before, as ``syncd.busy.apply`` asks after a crash."""
        return await self.blocks.find(self._staff(scope), block)

    async def remove_busy(self, scope: Scope, native_id: str) -> None:
        AGScope.parse(scope, self.name)
        await self.blocks.remove(native_id)

    async def check(self) -> None:
        """One listing of a minute: the company id and the credentials are accepted."""
        moment = datetime.now().astimezone()
        params = {"startDate": gmt(moment), "endDate": gmt(moment + timedelta(minutes=1))}
        await self.api.call("list", "GET", params=params)

    async def aclose(self) -> None:
        await self.api.aclose()


def _overlaps(item: Appointment, window: Window) -> bool:
    """Half-open overlap; an appointment of zero length counts when it starts inside."""
    return item.start < window.end and (item.end > window.start or item.start >= window.start)


def from_config(name: str, config: AgendizeConfig) -> AgendizeProvider:
    """The account ``[providers.NAME]`` describes, with its own HTTP client (closed by
    ``aclose``) timing out after the configured ``timeout`` per request."""

    def secret(value: Any) -> str:
        return value.get_secret_value() if value is not None else ""

    credentials = Credentials(
        secret(config.api_key), secret(config.token), secret(config.oauth_token)
    )
    return AgendizeProvider(
        name,
        config.base_url,
        config.company_id,
        credentials,
        timezone=config.timezone,
        timeout=config.timeout.total_seconds(),
        personal_busy=config.personal_busy,
        busy_staff=config.busy_staff,
        silent=config.silent,
        cancel_deletes=config.cancel_deletes,
        watch_renew=config.watch_renew,
    )
