"""``syncd feeds``: the published feed URLs, under ``server.public_url``.

The URLs are secrets (the token is the only thing guarding a feed), so they are printed only
here, on request, to whoever can read the config anyway; never in a log line.
"""

from __future__ import annotations

import sys

from syncd.commands import load
from syncd.config import Config


def base_url(config: Config) -> str:
    """``server.public_url``, or the listener's own address when none is set."""
    if config.server.public_url:
        return config.server.public_url
    host = config.server.host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{config.server.port}"


def feed_url(config: Config, name: str) -> str:
    token = config.feeds[name].token.get_secret_value()
    return f"{base_url(config)}/feeds/{token}.ics"


def main(config_path: str | None) -> int:
    config = load(config_path)
    if not config.feeds:
        print("no feeds configured: add a [feeds.NAME] table (see config.example.toml)")
        return 0
    for name, feed in config.feeds.items():
        only = [f"{k} {v}" for k, v in (("staff", feed.staff), ("resource", feed.resource)) if v]
        what = ", ".join([f"sync {feed.sync}", feed.privacy.value, *only])
        print(f"{name} ({what}): {feed_url(config, name)}")
    if not config.server.public_url:
        print(
            "note: server.public_url is not set; these are the listener's own addresses",
            file=sys.stderr,
        )
    return 0
