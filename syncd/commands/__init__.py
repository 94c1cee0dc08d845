"""One module per user-facing command; ``syncd.cli`` parses arguments and dispatches here."""

from __future__ import annotations

from syncd.config import Config, load_config
from syncd.log import configure_logging


def load(path: str | None) -> Config:
    """Load the config and switch logging to its level, format and secrets."""
    config = load_config(path)
    configure_logging(config.log.level, config.log.format, secrets=config.secrets())
    return config
