"""``syncd run``: the daemon, until SIGTERM or SIGINT; SIGHUP reloads the config file."""

from __future__ import annotations

import logging

from syncd.commands import load
from syncd.config import Config, load_config
from syncd.daemon.service import Daemon
from syncd.log import configure_logging


def _quiet_http_clients(level: str) -> None:
    # httpx logs every request at INFO: a line per provider poll each minute. Keep it for
    # debugging; redaction applies either way.
    logging.getLogger("httpx").setLevel(logging.DEBUG if level == "debug" else logging.WARNING)


async def main(config_path: str | None) -> int:
    config = load(config_path)
    _quiet_http_clients(config.log.level)

    def reload() -> Config:
        # The same file as at start (or $SYNCD_CONFIG as it was then).
        return load_config(config_path)

    def adopt(new: Config, secrets: list[str]) -> None:
        configure_logging(new.log.level, new.log.format, secrets=secrets)
        _quiet_http_clients(new.log.level)

    return await Daemon(config, reload, on_config=adopt).serve()
