"""What a config turns into: the state store, the backends and the syncs.

Commands and the daemon build the same objects the same way: one provider object per
account and one calendar object per calendar, shared by every sync that names them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from syncd.backends import build_calendar, build_provider
from syncd.calendars.base import Calendar
from syncd.config import Config, SyncConfig
from syncd.errors import UserError
from syncd.ical import RenderOptions
from syncd.providers.base import Provider
from syncd.reconcile.cycle import Sync
from syncd.reconcile.render import SyncRenderer
from syncd.state.store import Store


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

    @classmethod
    def build(
        cls, config: Config, names: Sequence[str] = (), allow_mass_delete: bool = False
    ) -> Runtime:
        runtime = cls(config)
        for sync_config in selected(config, names):
            runtime.syncs.append(runtime._sync(sync_config, allow_mass_delete))
        return runtime

    def _provider(self, name: str) -> Provider:
        if name not in self.providers:
            self.providers[name] = build_provider(name, self.config.providers[name])
        return self.providers[name]

    def _calendar(self, name: str) -> Calendar:
        if name not in self.calendars:
            self.calendars[name] = build_calendar(name, self.config.calendars[name])
        return self.calendars[name]

    def _sync(self, sync: SyncConfig, allow_mass_delete: bool) -> Sync:
        options = RenderOptions(sync=sync.name, privacy=sync.privacy, title=sync.title)
        return Sync(
            policy=sync.policy(allow_mass_delete),
            provider=self._provider(sync.provider),
            calendars={name: self._calendar(name) for name in sync.calendars},
            renderer=SyncRenderer(sync.provider, options),
            scope=dict(sync.scope),
            window_past=sync.window_past,
            window_future=sync.window_future,
        )

    async def aclose(self) -> None:
        backends: list[Provider | Calendar] = [*self.providers.values(), *self.calendars.values()]
        for backend in backends:
            await backend.aclose()
