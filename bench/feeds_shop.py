"""The feeds bench's shop and its render figures: a sync of seeded appointments into a real
state store, the feed store's cold, idle and incremental refreshes, and ``render_feed`` alone;
and the feed's calendar text, split into events for Radicale and for checking what is served.

Shared constants of the feeds bench live here too; ``bench/feeds.py`` runs it all.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import hashlib
import re
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import syncd.feeds.render as feed_render
import syncd.feeds.store as feed_store
from syncd.config import Config, parse_config
from syncd.feeds import FeedStore, feed_options
from syncd.feeds.ledger import Entry
from syncd.feeds.render import EventBlocks, render_feed
from syncd.providers.memory import MemoryProvider
from syncd.reconcile.cycle import run_cycle
from syncd.runtime import Runtime, open_store
from syncd.state.store import Store

SCHEMA = 1
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JSON = ROOT / "bench" / "results" / "feeds.json"
DEFAULT_CACHE = ROOT / "bench" / "results" / "radicale-storage"
ZONE = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=ZONE)  # fixed, so two runs render the same feed
PUBLISHED = NOW + timedelta(hours=1)  # the feed store's clock: DTSTAMP of every event
SYNC, FEED, ACCOUNT, CALENDAR = "shop", "all", "shop", "cal"
BOOKINGS_A_DAY = 48  # MemoryProvider.seed
REFRESH = timedelta(minutes=5)  # the sync's interval, so the feed's REFRESH-INTERVAL
LOOPBACK = "127.0.0.1"
RADICALE_USER = "syncd"  # any name: Radicale runs with --auth-type none
RADICALE_AUTH = (RADICALE_USER, "not-a-secret")
REQUEST_TIMEOUT = 120.0  # one request; Radicale exports 10,000 events in 2 to 4 s
START_TIMEOUT = 60.0  # a server process until it answers
LOAD_TIMEOUT = 900.0  # Radicale importing the calendar (15 to 40 ms an event), at least
LOAD_TIMEOUT_PER_EVENT = 0.1
FALLBACK_EVENTS = 1000  # per-event PUTs when the collection PUT fails
STOP_TIMEOUT = 10.0


def config_text(database: Path, events: int, token: str) -> str:
    """One memory account (seeded by the bench, not the config), one memory calendar, one
    sync whose window holds every booking, one full-detail feed."""
    days = events // BOOKINGS_A_DAY + 9
    return f"""
[store]
url = "sqlite:///{database.as_posix()}"

[server]
listen = "{LOOPBACK}:8765"

[providers.{ACCOUNT}]
kind = "memory"

[calendars.{CALENDAR}]
kind = "memory"

[[syncs]]
name = "{SYNC}"
provider = "{ACCOUNT}"
calendars = ["{CALENDAR}"]
interval = "{int(REFRESH.total_seconds())}s"
window_past = "1d"
window_future = "{days}d"

[feeds.{FEED}]
sync = "{SYNC}"
token = "{token}"
"""


@dataclass
class Shop:
    """The state store with N synced appointments, and the feed store over it."""

    events: int
    config_path: Path
    token: str
    config: Config = field(init=False)
    store: Store = field(init=False)
    runtime: Runtime = field(init=False)
    provider: MemoryProvider = field(init=False)

    def __post_init__(self) -> None:
        self.config = parse_config(self.config_path.read_text(), environ={})
        self.store = open_store(self.config)
        self.runtime = Runtime.build(self.config)
        provider = self.runtime.providers[ACCOUNT]
        if not isinstance(provider, MemoryProvider):
            raise RuntimeError("bench: the account is not a memory provider")
        self.provider = provider
        self.provider.seed(self.events, NOW, rng_seed=2)

    @classmethod
    def create(cls, folder: Path, events: int) -> Shop:
        token = secrets.token_urlsafe(24)
        path = folder / "syncd.toml"
        path.write_text(config_text(folder / "state.db", events, token))
        return cls(events, path, token)

    async def sync(self) -> None:
        result = await run_cycle(self.store, self.runtime.syncs[0], now=NOW)
        if result.status != "ok" or result.outcome.failed:
            raise RuntimeError(f"bench sync did not succeed: {result.status} {result.error}")

    def move_one(self) -> str:
        """Move the first booking by an hour; its native id."""
        first = min(self.provider.appointments().values(), key=lambda a: (a.start, a.native_id))
        hour = timedelta(hours=1)
        self.provider.reschedule(first.native_id, first.start + hour, first.end + hour)
        return first.native_id

    async def close(self) -> None:
        await self.runtime.aclose()
        self.store.close()


@dataclass
class RenderCount:
    """Events rendered (``syncd.ical.render`` calls from the feed's ``EventBlocks``) and whole
    feeds assembled (``render_feed`` calls from the feed store), by wrapping both names."""

    events: int = 0
    feeds: int = 0

    def reset(self) -> None:
        self.events = self.feeds = 0

    @contextmanager
    def installed(self) -> Iterator[None]:
        targets = ((feed_render, "render", "events"), (feed_store, "render_feed", "feeds"))
        for module, name, _ in targets:
            if not callable(getattr(module, name, None)):
                raise RuntimeError(f"bench probe: {module.__name__}.{name} is gone; update it")
        saved = [(module, name, getattr(module, name)) for module, name, _ in targets]

        def counting(original: Callable[..., Any], counter: str) -> Callable[..., Any]:
            def counted(*args: Any, **kwargs: Any) -> Any:
                setattr(self, counter, getattr(self, counter) + 1)
                return original(*args, **kwargs)

            return counted

        try:
            for (module, name, counter), (_, _, original) in zip(targets, saved, strict=True):
                setattr(module, name, counting(original, counter))
            yield
        finally:
            for module, name, original in saved:
                setattr(module, name, original)


def _timed(call: Callable[[], Any]) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def measure_refresh(shop: Shop, counter: RenderCount) -> tuple[dict[str, Any], FeedStore]:
    """The feed store as the daemon drives it: after the first sync (cold), with nothing
    changed (idle), and after a sync that moved one appointment (incremental)."""
    feeds = FeedStore(shop.store, shop.config)
    out: dict[str, Any] = {}

    def step(name: str, moment: datetime) -> None:
        counter.reset()
        wall, cpu, changed = _timed(lambda: feeds.refresh(SYNC, now=moment))
        out[name] = {
            "wall_s": wall,
            "cpu_s": cpu,
            "feeds_changed": list(changed),
            "events_rendered": counter.events,
            "feeds_rendered": counter.feeds,
        }

    step("cold", PUBLISHED)
    step("idle", PUBLISHED + timedelta(minutes=1))
    out["moved"] = shop.move_one()
    asyncio.run(shop.sync())
    step("one_changed", PUBLISHED + timedelta(minutes=2))
    return out, feeds


def measure_render(shop: Shop, counter: RenderCount, repeat: int) -> dict[str, Any]:
    """``render_feed`` alone, on entries made from the provider's appointments: cold (no
    cached VEVENT), warm with nothing changed, warm with one entry changed; and the gzip
    and SHA-256 of the body on their own."""
    options = feed_options(shop.config, shop.config.feeds[FEED])
    appointments = sorted(shop.provider.appointments().values(), key=lambda a: a.native_id)
    entries = [Entry(a, "v0", 0, PUBLISHED) for a in appointments]
    blocks = EventBlocks(options)
    counter.reset()
    cold_wall, cold_cpu, feed = _timed(
        lambda: render_feed(FEED, entries, blocks, REFRESH, PUBLISHED)
    )
    cold_events = counter.events

    def median_of(make: Callable[[int], list[Entry]]) -> tuple[float, float, int]:
        walls, cpus, rendered = [], [], 0
        for i in range(repeat):
            counter.reset()
            wall, cpu, _ = _timed(
                functools.partial(render_feed, FEED, make(i), blocks, REFRESH, PUBLISHED)
            )
            walls.append(wall)
            cpus.append(cpu)
            rendered = max(rendered, counter.events)
        return statistics.median(walls), statistics.median(cpus), rendered

    def one_changed(i: int) -> list[Entry]:
        changed = list(entries)
        old = changed[0]
        hour = timedelta(hours=1 + i)
        a = old.appointment
        moved = replace(a, start=a.start + hour, end=a.end + hour)
        changed[0] = Entry(moved, f"v{i + 1}", i + 1, PUBLISHED + timedelta(minutes=i + 1))
        return changed

    same_wall, same_cpu, same_events = median_of(lambda _: entries)
    one_wall, one_cpu, one_events = median_of(one_changed)
    gzip_wall, gzip_cpu, _ = _timed(lambda: gzip.compress(feed.body, compresslevel=6, mtime=0))
    sha_wall, _, _ = _timed(lambda: hashlib.sha256(feed.body).hexdigest())
    return {
        "repeat": repeat,
        "cold": {"wall_s": cold_wall, "cpu_s": cold_cpu, "events_rendered": cold_events},
        "unchanged": {"wall_s": same_wall, "cpu_s": same_cpu, "events_rendered": same_events},
        "one_changed": {"wall_s": one_wall, "cpu_s": one_cpu, "events_rendered": one_events},
        "gzip_s": gzip_wall,
        "gzip_cpu_s": gzip_cpu,
        "sha256_s": sha_wall,
        "events": feed.events,
    }


# The feed's calendar text, as served and as loaded into Radicale.

VEVENT = re.compile(rb"BEGIN:VEVENT\r\n.*?END:VEVENT\r\n", re.DOTALL)
_UID = re.compile(rb"^UID:(.*?)\r?$", re.MULTILINE)


def split_calendar(body: bytes) -> tuple[bytes, bytes, list[bytes]]:
    """``body`` as (its head up to the first component, its VTIMEZONEs, its VEVENTs)."""
    first = body.index(b"BEGIN:V", body.index(b"BEGIN:VCALENDAR") + 1)
    events_at = body.index(b"BEGIN:VEVENT")
    return body[:first], body[first:events_at], VEVENT.findall(body)


def calendar_of(body: bytes, count: int) -> bytes:
    """The feed cut to its first ``count`` events (all of them when ``count`` is that)."""
    head, zones, events = split_calendar(body)
    return head + zones + b"".join(events[:count]) + b"END:VCALENDAR\r\n"


def uids(body: bytes) -> set[bytes]:
    found: set[bytes] = set()
    for event in VEVENT.findall(body):
        match = _UID.search(event)
        if match:
            found.add(match[1].strip())
    return found


def sha256_hex(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
