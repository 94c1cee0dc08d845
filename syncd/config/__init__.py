"""syncd's configuration: TOML in, frozen pydantic models out, every problem at once.

``load_config(path)`` and ``parse_config(text)`` return a ``Config`` or raise one
``syncd.errors.ConfigError`` whose ``problems`` are ``key.path: message`` lines. Values may
use ``${ENV_VAR}``; every secret ``x`` may be given as ``x_file = "path"`` instead.
``Config.secrets()`` lists the secret values so logging can redact them.

    types.py      value types: durations, zones, URLs, names, title templates, tokens
    backends.py   [providers.NAME] and [calendars.NAME], one model per kind
    models.py     store, server, log, syncs, feeds and Config
    problems.py   pydantic errors -> the user's key paths and words
    load.py       TOML, ${ENV}, *_file, cross-references, load/parse, the demo config
"""

from syncd.config.backends import (
    CALENDAR_KINDS,
    PROVIDER_KINDS,
    AgendizeConfig,
    CalDAVCalendarConfig,
    CalendarConfig,
    MemoryCalendarConfig,
    MemoryProviderConfig,
    OnlineAfsprakenConfig,
    ProviderBase,
    ProviderConfig,
    QmaticConfig,
    RecrasConfig,
)
from syncd.config.load import (
    DEFAULT_CONFIG_NAME,
    default_config_path,
    embedded_default_config,
    load_config,
    parse_config,
)
from syncd.config.models import (
    Config,
    FeedConfig,
    LogConfig,
    ServerConfig,
    StoreConfig,
    SyncConfig,
    model_classes,
    secret_field_names,
)
from syncd.config.types import TITLE_FIELDS, parse_duration

__all__ = [
    "CALENDAR_KINDS",
    "DEFAULT_CONFIG_NAME",
    "PROVIDER_KINDS",
    "TITLE_FIELDS",
    "AgendizeConfig",
    "CalDAVCalendarConfig",
    "CalendarConfig",
    "Config",
    "FeedConfig",
    "LogConfig",
    "MemoryCalendarConfig",
    "MemoryProviderConfig",
    "OnlineAfsprakenConfig",
    "ProviderBase",
    "ProviderConfig",
    "QmaticConfig",
    "RecrasConfig",
    "ServerConfig",
    "StoreConfig",
    "SyncConfig",
    "default_config_path",
    "embedded_default_config",
    "load_config",
    "model_classes",
    "parse_config",
    "parse_duration",
    "secret_field_names",
]
