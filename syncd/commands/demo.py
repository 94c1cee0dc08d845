"""``syncd demo``: the real daemon on built-in sample data, with no account and no server.

A simulated business (the memory provider, seeded with sample appointments) books, moves and
cancels every ``interval`` seconds while the daemon keeps a calendar in step, publishes a
feed and serves the status page on 127.0.0.1, exactly as ``syncd run`` would. Given a CalDAV
URL (``--caldav https://user:password@host/path/``) it writes to that calendar too.

The state database ``syncd-demo.db`` in the current directory is started afresh each time,
because the simulated business and calendar live only as long as the process. The feed
token is made anew each time as well. When the port is taken the demo takes a free one: it
prints its URLs anyway.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from syncd.commands.sync import summary
from syncd.config import CalDAVCalendarConfig, Config, FeedConfig, embedded_default_config
from syncd.daemon.service import Daemon
from syncd.errors import UserError
from syncd.log import configure_logging
from syncd.providers.memory import MemoryProvider
from syncd.reconcile.cycle import Result
from syncd.web.server import AddressInUse

#: The fastest the demo goes: ``--interval 0`` means "as fast as is sensible".
MIN_INTERVAL = 0.1


def _fresh_database(url: str) -> None:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)


def business_day(provider: MemoryProvider, rng: random.Random) -> str:
    """One thing the simulated business does; returns what, for the demo's output."""
    current = [a for a in provider.appointments().values() if not a.cancelled]
    choice = rng.random()
    if choice < 0.4 or not current:
        start = rng.choice(current).start + timedelta(days=1) if current else None
        if start is None:
            return "nothing"
        booked = provider.book(start, start + timedelta(minutes=30), title="Walk-in")
        return f"business booked {booked.native_id}"
    picked = rng.choice(current)
    if choice < 0.8:
        provider.reschedule(
            picked.native_id, picked.start + timedelta(hours=1), picked.end + timedelta(hours=1)
        )
        return f"business moved {picked.native_id} by an hour"
    provider.cancel_by_business(picked.native_id)
    return f"business cancelled {picked.native_id}"


def caldav_calendar(url: str) -> CalDAVCalendarConfig:
    """A CalDAV calendar from ``https://user:password@host/path/`` (credentials optional)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError("--caldav must be an http(s) URL of a calendar collection")
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    password = SecretStr(parts.password) if parts.password else None
    return CalDAVCalendarConfig(
        url=urlunsplit(parts._replace(netloc=netloc)),
        username=parts.username or "",
        password=password,
    )


def demo_config(interval: float, caldav: str = "") -> Config:
    """The embedded config, syncing every ``interval`` seconds, with one feed per sync."""
    base = embedded_default_config()
    calendars = dict(base.calendars)
    extra: tuple[str, ...] = ()
    if caldav:
        calendars["caldav"] = caldav_calendar(caldav)
        extra = ("caldav",)
    every = timedelta(seconds=max(interval, MIN_INTERVAL))
    syncs = tuple(
        s.model_copy(update={"interval": every, "calendars": s.calendars + extra})
        for s in base.syncs
    )
    feeds = {s.name: FeedConfig(sync=s.name, token=secrets.token_urlsafe(24)) for s in syncs}
    return base.model_copy(update={"calendars": calendars, "syncs": syncs, "feeds": feeds})


async def main(cycles: int, interval: float, port: int = 8765, caldav: str = "") -> int:
    """Run until Ctrl-C, or until every sync has run ``cycles`` times (0: run on)."""
    config = demo_config(interval, caldav)
    configure_logging(config.log.level, config.log.format, secrets=config.secrets())
    _fresh_database(config.store.url)
    runs: Counter[str] = Counter()
    rng = random.Random(1)

    def ran(name: str, result: Result | None) -> None:
        if cycles and runs[name] >= cycles:
            return  # a run that started while the demo was stopping
        runs[name] += 1
        print(f"cycle {runs[name]}: {name}: {summary(result) if result else 'failed'}", flush=True)
        if cycles and all(runs[s] >= cycles for s in daemon.runner.syncs):
            daemon.stop_requested.set()

    async def business() -> None:
        while True:
            await asyncio.sleep(max(interval, MIN_INTERVAL))
            for provider in daemon.runtime.providers.values():
                if isinstance(provider, MemoryProvider):
                    print(business_day(provider, rng), flush=True)

    def started(daemon: Daemon) -> None:
        daemon.runner.listeners.append(ran)
        url = daemon.web.url
        print(f"syncd demo: {len(daemon.runner.syncs)} sync(s) on sample data; Ctrl-C stops")
        print(f"  status page: {url}/")
        for name, feed in config.feeds.items():
            print(f"  feed {name}: {url}/feeds/{feed.token.get_secret_value()}.ics")
        print(f"  health: {url}/healthz  metrics: {url}/metrics", flush=True)
        daemon.spawn(business())

    daemon = Daemon(config, port=port)
    try:
        return await daemon.serve(started)
    except AddressInUse as err:
        if port == 0:
            raise
        print(f"syncd demo: {err}; taking a free port instead", file=sys.stderr)
    daemon = Daemon(config, port=0)
    return await daemon.serve(started)
