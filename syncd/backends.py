"""Backends by name: ``kind = "..."`` in the config maps to a module, imported lazily.

Each backend module offers ``from_config(name, config) -> Provider | Calendar``. Adding a
provider is writing that module and one line here. A kind whose module is missing is a clear
error naming the config key, not an ImportError.
"""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta
from typing import Any

from syncd.calendars.base import Calendar
from syncd.config import CalendarConfig, Config, ProviderConfig
from syncd.errors import UserError
from syncd.providers.base import Provider

PROVIDER_MODULES: dict[str, str] = {
    "memory": "syncd.backends",
    "onlineafspraken": "syncd.providers.onlineafspraken",
    "agendize": "syncd.providers.agendize",
    "recras": "syncd.providers.recras",
    "qmatic": "syncd.providers.qmatic",
}
CALENDAR_MODULES: dict[str, str] = {
    "memory": "syncd.backends",
    "caldav": "syncd.calendars.caldav",
}


class Unavailable(UserError):
    """The config names a backend kind this version of syncd does not implement yet."""


def _factory(table: str, name: str, kind: str, modules: dict[str, str], what: str) -> Any:
    module_name = modules[kind]
    attribute = f"{what}_from_config" if module_name == __name__ else "from_config"
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attribute)
    except (ImportError, AttributeError):
        raise Unavailable(
            f"{table}.{name}: kind {kind!r} is not available in this version of syncd"
        ) from None


def build_provider(name: str, config: ProviderConfig) -> Provider:
    factory = _factory("providers", name, config.kind, PROVIDER_MODULES, "memory_provider")
    provider: Provider = factory(name, config)
    return provider


def build_calendar(name: str, config: CalendarConfig) -> Calendar:
    factory = _factory("calendars", name, config.kind, CALENDAR_MODULES, "memory_calendar")
    calendar: Calendar = factory(name, config)
    return calendar


def memory_provider_from_config(name: str, config: Any) -> Provider:
    """A memory account seeded with ``seed`` sample appointments from today on."""
    from syncd.providers.memory import MemoryProvider

    provider = MemoryProvider(name)
    if config.seed:
        today = datetime.now(config.timezone).replace(hour=0, minute=0, second=0, microsecond=0)
        provider.seed(
            config.seed, today - timedelta(days=1), config.seed_random, config.timezone.key
        )
    return provider


def memory_calendar_from_config(name: str, config: Any) -> Calendar:
    from syncd.calendars.memory import MemoryCalendar

    return MemoryCalendar(name)


def endpoint(config: ProviderConfig | CalendarConfig) -> str:
    """The URL a backend talks to, for messages; never includes credentials."""
    for attr in ("url", "base_url", "server_url"):
        value = getattr(config, attr, None)
        if isinstance(value, str) and value:
            return value
    return f"({config.kind}, in memory)"


__all__ = ["Config", "build_calendar", "build_provider", "endpoint"]
