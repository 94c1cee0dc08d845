"""What a config turns into: the state store, the backends and the syncs.

Commands and the daemon build the same objects the same way: one provider object per
account and one calendar object per calendar, shared by every sync that names them.

A sync whose provider cannot hold busy blocks keeps its appointments in step but gets no
busy sources, and one whose provider cannot book gets no intake calendar; a warning naming
the sync says so each time the config is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from syncd.backends import build_calendar, build_provider
from syncd.busy.options import BusyOptions
from syncd.calendars.base import Calendar
from syncd.config import CalDAVCalendarConfig, Config, SyncConfig
from syncd.errors import UserError
from syncd.ical import RenderOptions
from syncd.providers.base import Capability, Provider, Watches
from syncd.reconcile.cycle import Sync
from syncd.reconcile.render import SyncRenderer
from syncd.state.store import Store
from syncd.state.watch_vault import StoredWatchVault

log = structlog.get_logger("syncd.runtime")


def open_store(config: Config) -> Store:
    return Store(config.store.url, config.store.busy_timeout.total_seconds())


def selected(config: Config, names: Sequence[str]) -> list[SyncConfig]:
    """The enabled syncs, or exactly the ones named (an unknown name is a user error)."""
    if not names:
        return [s for s in config.syncs if s.enabled]
    known = {s.name: s for s in config.syncs}
    missing = [n for n in names if n not in known]
    if missing:
        choices = ", ".join(sorted(known)) or "none configured"
        raise UserError(f"unknown sync {', '.join(missing)} (syncs: {choices})")
    return [known[n] for n in names]


@dataclass
class Runtime:
    """The backends for some syncs of a config; close it to release connections."""

    config: Config
    syncs: list[Sync] = field(default_factory=list)
    providers: dict[str, Provider] = field(default_factory=dict)
    calendars: dict[str, Calendar] = field(default_factory=dict)
    store: Store | None = None  # the daemon's: providers keep their push subscriptions in it

    @classmethod
    def build(
        cls,
        config: Config,
        names: Sequence[str] = (),
        allow_mass_delete: bool = False,
        store: Store | None = None,
    ) -> Runtime:
        runtime = cls(config, store=store)
        for sync_config in selected(config, names):
            runtime.syncs.append(runtime._sync(sync_config, allow_mass_delete))
        return runtime

    def _provider(self, name: str) -> Provider:
        if name not in self.providers:
            self.providers[name] = build_provider(name, self.config.providers[name])
            self._subscribe(name, self.providers[name])
        return self.providers[name]

    def _subscribe(self, name: str, provider: Provider) -> None:
        """With ``server.public_url`` and a store (the daemon passes its own), a provider that
        keeps its own push subscription gets its hook URL and a vault for its credentials."""
        public = self.config.server.public_url
        if self.store is None or not public or not isinstance(provider, Watches):
            return
        kind = self.config.providers[name].kind
        provider.watch(f"{public}/hooks/{kind}/{name}", StoredWatchVault(self.store, name))

    def _calendar(self, name: str) -> Calendar:
        if name not in self.calendars:
            self.calendars[name] = build_calendar(name, self.config.calendars[name])
        return self.calendars[name]

    def _sync(self, sync: SyncConfig, allow_mass_delete: bool) -> Sync:
        options = RenderOptions(sync=sync.name, privacy=sync.privacy, title=sync.title)
        provider = self._provider(sync.provider)
        busy_from = {name: self._calendar(name) for name in sync.busy_from}
        if busy_from and Capability.BUSY_BLOCKS not in provider.capabilities:
            log.warning(
                "busy_from ignored: the provider cannot block time",
                sync=sync.name,
                provider=sync.provider,
                kind=self.config.providers[sync.provider].kind,
            )
            busy_from = {}
        intake = sync.intake
        if intake and Capability.INTAKE not in provider.capabilities:
            log.warning(
                "intake ignored: the provider cannot book from calendar events",
                sync=sync.name,
                provider=sync.provider,
                kind=self.config.providers[sync.provider].kind,
            )
            intake = ""
        return Sync(
            policy=sync.policy(allow_mass_delete),
            provider=provider,
            calendars={name: self._calendar(name) for name in sync.calendars},
            renderer=SyncRenderer(sync.provider, options),
            scope=dict(sync.scope),
            window_past=sync.window_past,
            window_future=sync.window_future,
            busy_from=busy_from,
            busy=self._busy_options(sync),
            intake=intake,
        )

    def _busy_options(self, sync: SyncConfig) -> BusyOptions:
        """The sync's busy settings; without ``busy_owner`` the owners are the CalDAV
        usernames of its busy sources that are addresses (most servers log in by e-mail)."""
        owners = set(sync.busy_owner)
        if not owners:
            for name in sync.busy_from:
                calendar = self.config.calendars[name]
                if isinstance(calendar, CalDAVCalendarConfig) and "@" in calendar.username:
                    owners.add(calendar.username)
        return BusyOptions(
            all_day=sync.busy_all_day,
            label=sync.busy_label,
            owners=frozenset(owners),
            zone=self.config.providers[sync.provider].timezone,
        )

    async def aclose(self) -> None:
        backends: list[Provider | Calendar] = [*self.providers.values(), *self.calendars.values()]
        for backend in backends:
            await backend.aclose()
