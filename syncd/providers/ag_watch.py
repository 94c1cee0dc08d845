"""The Agendize watch: one per account, kept registered, and what its deliveries are worth.

Registration. With an address (syncd's ``/hooks/agendize/ACCOUNT`` under
``server.public_url``) and a vault (``syncd.state.watch_vault``), the first pull of the
account registers a watch whose deliveries use HTTP basic auth with credentials syncd
generates (a random user and a 256-bit password). They are saved in the vault BEFORE the
registration is sent, so a delivery that arrives at once, or after a crash, can be checked.
The watch is registered again every ``renew`` (the API has no call to ask whether a watch
still lives, and a lapsed one delivers nothing), at once when the address changed, and an
hour after a failed attempt: a failure is a warning, never a failed pull, because the poll is
the safety net. An idle cycle that is not due costs no request, and the vault is read once
per renewal period, not per cycle.

Deliveries. They arrive at least once and in any order. A delivery is checked (basic auth,
in constant time) and then compared by ``ag_mapping.version`` with the newest version of that
appointment syncd has seen, from pulls or earlier deliveries: only a newer one is worth a
pull. A repeat, a late one, or the echo of syncd's own write is dropped. The delivery itself
is never written anywhere: the pull it triggers reads the current state with syncd's own
credentials, so a forged or stale delivery cannot put old data into a calendar.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import structlog

from syncd.errors import BackendError
from syncd.providers.ag_client import AgendizeClient
from syncd.providers.ag_mapping import Version
from syncd.providers.base import WatchVault

log = structlog.get_logger(__name__)

RETRY_AFTER_FAILURE = 3600.0


@dataclass(slots=True)
class Watcher:
    api: AgendizeClient
    renew: timedelta = timedelta(hours=6)
    now: Callable[[], float] = time.time
    address: str = ""
    vault: WatchVault | None = None
    versions: dict[str, Version] = field(default_factory=dict)
    _not_before: float = 0.0  # no need to look at the vault before then

    @property
    def account(self) -> str:
        return self.api.backend

    def attach(self, address: str, vault: WatchVault) -> None:
        self.address, self.vault = address, vault
        self._not_before = 0.0

    async def ensure(self) -> None:
        """Register the watch when it is due; never raises for the provider's refusal."""
        if not self.address or self.vault is None or self.now() < self._not_before:
            return
        stored = dict(self.vault.load() or {})
        due = float(stored.get("registered_at") or 0) + self.renew.total_seconds()
        if stored.get("address") == self.address and self.now() < due:
            self._not_before = due
            return
        if not stored.get("username") or not stored.get("password"):
            stored["username"] = f"syncd-{secrets.token_hex(4)}"
            stored["password"] = secrets.token_urlsafe(32)
        stored["address"] = self.address
        self.vault.save(stored)
        body = {
            "address": self.address,
            "name": f"syncd {self.account}",
            "method": "POST",
            "status": "enabled",
            "levelDetails": "full",
            "basicAuth": {"username": stored["username"], "password": stored["password"]},
        }
        try:
            reply = await self.api.call("watch", "POST", "/watch", body=body)
        except BackendError as err:
            self._not_before = self.now() + RETRY_AFTER_FAILURE
            said = err.message.replace(stored["password"], "***")  # were it ever echoed
            log.warning("agendize.watch_failed", account=self.account, error=said)
            return
        watch_id = reply.get("id") if isinstance(reply, dict) else None
        stored["watch_id"] = watch_id if isinstance(watch_id, str) else ""
        stored["registered_at"] = str(self.now())
        self.vault.save(stored)
        self._not_before = self.now() + self.renew.total_seconds()
        log.info("agendize.watch_registered", account=self.account, watch=stored["watch_id"])

    def verify(self, authorization: str) -> bool:
        """Whether ``authorization`` is basic auth with the credentials in the vault."""
        stored = self.vault.load() if self.vault is not None else None
        if not stored or not stored.get("username") or not stored.get("password"):
            return False
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        good_user = hmac.compare_digest(user, stored["username"].encode())
        good_password = hmac.compare_digest(password, stored["password"].encode())
        return bool(sep) and good_user and good_password

    def saw(self, native_id: str, seen: Version) -> None:
        """Remember the newest version of ``native_id`` a pull or a delivery showed."""
        if seen > self.versions.get(native_id, (0, 0.0)):
            self.versions[native_id] = seen

    def fresh(self, native_id: str, delivered: Version) -> bool:
        """Whether a delivery says more than syncd has seen; remembers it when it does. A
        delivery without a history (version 0) cannot be compared and always counts."""
        if delivered == (0, 0.0):
            return True
        if delivered <= self.versions.get(native_id, (0, 0.0)):
            return False
        self.versions[native_id] = delivered
        return True
