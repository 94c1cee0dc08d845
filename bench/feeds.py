"""ICS feeds: render cost, and requests/s served by syncd and by Radicale (issue 5, acceptance 5).

    python -m bench.feeds [--events 10000] [--concurrency 4] [--requests 5000] [--seconds 8]
                          [--radicale-load collection|per-event] [--radicale-events N]
                          [--radicale-cache DIR | --no-radicale-cache] [--json PATH]

In one run:

1. Render: a memory provider seeded with N appointments is synced into a real SQLite state
   store; then the feed store's cold refresh (every event rendered), an idle refresh, and the
   refresh after one appointment moved (incremental: one event rendered again), plus the pure
   ``render_feed`` figures behind them. Feed size raw and gzipped.
2. syncd serving: the state store is served by syncd's own web app (``create_app`` under
   ``WebServer``, uvicorn on 127.0.0.1, a free port) in a child process, so the load client
   and the server do not share an interpreter; bounded load loops of ``--concurrency``
   httpx clients and of one client, for cached 200s (``Accept-Encoding: gzip``) and for
   conditional GETs (``If-None-Match``) that should be 304s.
3. Radicale serving the same events: a real Radicale on loopback, the feed's calendar PUT
   onto a collection URL in one request (per-event PUTs of fewer events if that fails, said
   in the output), then the same loops against a GET on the collection, which exports the
   whole calendar. The ratio syncd/Radicale per loop.

Every loop stops at ``--requests`` requests or ``--seconds`` seconds, whichever comes first
(requests in flight then finish, each within a timeout). Only loopback addresses are used. It
prints a table and writes JSON; it reports, it does not gate: the exit status is 0 whether or
not a target is met.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gzip
import hashlib
import importlib.metadata
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import httpx

import syncd.feeds.render as feed_render
import syncd.feeds.store as feed_store
from bench.machine import environment, load_average, peak_rss_mib
from syncd.config import Config, parse_config
from syncd.daemon.metrics import Metrics
from syncd.daemon.runner import Runner
from syncd.feeds import FeedStore, feed_options
from syncd.feeds.ledger import Entry
from syncd.feeds.render import EventBlocks, render_feed
from syncd.providers.memory import MemoryProvider
from syncd.reconcile.cycle import run_cycle
from syncd.runtime import Runtime, open_store
from syncd.state.store import Store
from syncd.web.app import create_app
from syncd.web.context import WebContext
from syncd.web.server import WebServer

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


# -- the shop: a sync and its feed over a real state store ----------------------------------------


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


# -- render ---------------------------------------------------------------------------------------


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


# -- servers --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (all threads); None off Linux."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # fields from the 3rd (state) on
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


@dataclass
class Server:
    """A server process on loopback and what the load loop sends it."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]
    auth: tuple[str, str] | None = None

    def cpu_s(self) -> float | None:
        return process_cpu_s(self.process.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self) -> str:
        """The end of what the process wrote (the file is the child's, open or closed here)."""
        return self.log_path.read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def _spawn(
    args: list[str], folder: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Path, IO[bytes]]:
    log_path = folder / "server.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    return process, log_path, log


def start_syncd(config_path: Path, folder: Path) -> Server:
    """``python -m bench.feeds --serve``: syncd's web app over the state store, port 0."""
    url_file = folder / "url"
    args = ["-m", "bench.feeds", "--serve", str(config_path), str(url_file)]
    process, log_path, log = _spawn(args, folder)
    server = Server("syncd", "", process, log_path, log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not server.alive():
            server.stop()
            raise RuntimeError(f"the syncd server exited:\n{server.tail()}")
        if url_file.exists():
            server.url = url_file.read_text().strip()
            return server
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"the syncd server did not start within {START_TIMEOUT:.0f} s")


def start_radicale(folder: Path) -> Server:
    """Radicale as tests/servers.py runs it: no config file, no auth, storage in ``folder``."""
    port = free_port()
    args = ["-m", "radicale", "-C", "", "--server-hosts", f"{LOOPBACK}:{port}"]
    args += ["--auth-type", "none", "--auth-delay", "0", "--logging-level", "warning"]
    args += ["--storage-filesystem-folder", str(folder / "storage")]
    process, log_path, log = _spawn(args, folder, {"XDG_DATA_HOME": str(folder / "xdg")})
    base = f"http://{LOOPBACK}:{port}"
    server = Server("radicale", base, process, log_path, log, RADICALE_AUTH)
    deadline = time.monotonic() + START_TIMEOUT
    with _client(auth=RADICALE_AUTH, timeout=2) as client:
        while time.monotonic() < deadline:
            if not server.alive():
                server.stop()
                raise RuntimeError(f"radicale exited:\n{server.tail()}")
            try:
                client.request("OPTIONS", f"{base}/{RADICALE_USER}/")
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            return server
    server.stop()
    raise RuntimeError(f"radicale did not answer within {START_TIMEOUT:.0f} s")


def _client(auth: tuple[str, str] | None = None, timeout: float = REQUEST_TIMEOUT) -> httpx.Client:
    # trust_env=False: no proxy from the environment gets between us and loopback
    return httpx.Client(auth=auth, timeout=timeout, trust_env=False)


# -- the calendar text ----------------------------------------------------------------------------

_VEVENT = re.compile(rb"BEGIN:VEVENT\r\n.*?END:VEVENT\r\n", re.DOTALL)
_UID = re.compile(rb"^UID:(.*?)\r?$", re.MULTILINE)


def split_calendar(body: bytes) -> tuple[bytes, bytes, list[bytes]]:
    """``body`` as (its head up to the first component, its VTIMEZONEs, its VEVENTs)."""
    first = body.index(b"BEGIN:V", body.index(b"BEGIN:VCALENDAR") + 1)
    events_at = body.index(b"BEGIN:VEVENT")
    return body[:first], body[first:events_at], _VEVENT.findall(body)


def calendar_of(body: bytes, count: int) -> bytes:
    """The feed cut to its first ``count`` events (all of them when ``count`` is that)."""
    head, zones, events = split_calendar(body)
    return head + zones + b"".join(events[:count]) + b"END:VCALENDAR\r\n"


def uids(body: bytes) -> set[bytes]:
    found: set[bytes] = set()
    for event in _VEVENT.findall(body):
        match = _UID.search(event)
        if match:
            found.add(match[1].strip())
    return found


@dataclass
class RadicaleLoad:
    method: str  # "collection PUT" or "per-event PUT"
    events: int
    seconds: float
    collection: str
    note: str = ""
    cached: bool = False  # storage restored from an earlier run's load; ``seconds`` is that one's

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "events": self.events,
            "seconds": self.seconds,
            "ms_per_event": self.seconds * 1000 / self.events if self.events else None,
            "note": self.note,
            "cached": self.cached,
        }


def load_radicale(server: Server, body: bytes, events: int, method: str) -> RadicaleLoad:
    """Put the first ``events`` events of the feed into a Radicale calendar collection.

    ``collection``: one PUT of the whole VCALENDAR onto the collection URL, which Radicale
    takes as "replace the collection with this calendar" (and creates it). When that is
    refused, or with ``per-event``: MKCALENDAR, then one PUT per event (of at most
    ``FALLBACK_EVENTS`` after a refused collection PUT), each carrying the VTIMEZONEs.
    """
    collection = f"{server.url}/{RADICALE_USER}/{FEED}/"
    headers = {"Content-Type": "text/calendar; charset=utf-8"}
    note = ""
    timeout = max(LOAD_TIMEOUT, events * LOAD_TIMEOUT_PER_EVENT)
    with _client(auth=server.auth, timeout=timeout) as client:
        if method == "collection":
            begin = time.perf_counter()
            answer = client.put(collection, content=calendar_of(body, events), headers=headers)
            seconds = time.perf_counter() - begin
            if answer.status_code in (200, 201, 204):
                return RadicaleLoad("collection PUT", events, seconds, collection)
            events = min(events, FALLBACK_EVENTS)
            note = (
                f"the collection PUT was answered {answer.status_code}; "
                f"fell back to one PUT per event, for the first {events:,} events only"
            )
            client.delete(collection)
        head, zones, vevents = split_calendar(body)
        begin = time.perf_counter()
        made = client.request("MKCALENDAR", collection)
        if made.status_code != 201:
            raise RuntimeError(f"radicale MKCALENDAR answered {made.status_code}: {made.text}")
        for i, event in enumerate(vevents[:events]):
            item = head + zones + event + b"END:VCALENDAR\r\n"
            answer = client.put(f"{collection}{i:06d}.ics", content=item, headers=headers)
            if answer.status_code not in (201, 204):
                raise RuntimeError(f"radicale PUT answered {answer.status_code}: {answer.text}")
        seconds = time.perf_counter() - begin
    return RadicaleLoad("per-event PUT", events, seconds, collection, note)


@dataclass
class StorageCache:
    """Radicale's storage after a load, kept as one ``.tar.gz`` for the next run.

    Radicale parses every event it is given with vobject, which rebuilds the event's
    VTIMEZONE on the way (some 15 to 30 ms an event): 10,000 events take minutes to load and
    a few seconds to serve. The feed is byte-identical between runs of the same code (fixed
    dates, seeded data), so the storage a load produced is kept, keyed by the SHA-256 of what
    was PUT, the load method and Radicale's version, and restored instead of loading again.
    Only a full, clean load is kept; ``--no-radicale-cache`` loads afresh.
    """

    folder: Path

    @staticmethod
    def key(calendar: bytes, method: str) -> str:
        version = importlib.metadata.version("radicale")
        return _sha(calendar + f"\0{method}\0radicale {version}".encode())

    def restore(self, key: str, storage: Path) -> dict[str, Any] | None:
        """The cached load's figures after unpacking its storage to ``storage``, or None."""
        try:
            meta = json.loads((self.folder / "meta.json").read_text())
        except (OSError, ValueError):
            return None
        archive = self.folder / "storage.tar.gz"
        if not isinstance(meta, dict) or meta.get("key") != key or not archive.is_file():
            return None
        with tarfile.open(archive, "r:gz") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(storage.parent, filter="data")
            else:  # Python before 3.11.4: our own archive, no filter to ask for
                tar.extractall(storage.parent)
        return meta

    def save(self, key: str, load: RadicaleLoad, storage: Path) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / "storage.tar.gz.partial"
        with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
            tar.add(storage, arcname=storage.name)
        meta = {"key": key, "method": load.method, "events": load.events, "seconds": load.seconds}
        (self.folder / "meta.json").unlink(missing_ok=True)
        partial.replace(self.folder / "storage.tar.gz")
        _publish(self.folder / "meta.json", json.dumps(meta, indent=2) + "\n")


def radicale_side(
    args: argparse.Namespace, body: bytes, folder: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """Radicale with the feed's first ``--radicale-events`` events, and its load loops."""
    wanted = min(args.radicale_events or args.events, args.events)
    storage = folder / "storage"
    cache = None if args.no_radicale_cache else StorageCache(args.radicale_cache)
    key = StorageCache.key(calendar_of(body, wanted), args.radicale_load)
    cached = cache.restore(key, storage) if cache is not None else None
    if cached is not None:
        log(f"starting Radicale with the storage an earlier run loaded ({wanted:,} events) ...")
    else:
        log(f"starting Radicale and loading {wanted:,} events ({args.radicale_load}) ...")
    try:
        radicale = start_radicale(folder)
    except RuntimeError as err:
        return {"error": str(err)}
    try:
        collection = f"{radicale.url}/{RADICALE_USER}/{FEED}/"
        if cached is not None:
            load = RadicaleLoad(
                str(cached["method"]),
                int(cached["events"]),
                float(cached["seconds"]),
                collection,
                cached=True,
            )
        else:
            load = load_radicale(radicale, body, wanted, args.radicale_load)
            log(f"  loaded in {load.seconds:.1f} s ({load.method})")
        out = serve_figures(
            radicale, load.collection, args.concurrency, args.requests, args.seconds, log
        )
    except (RuntimeError, httpx.HTTPError) as err:
        return {"error": f"{type(err).__name__}: {err}"}
    finally:
        radicale.stop()
    out["load"] = load.to_json()
    out["url"] = load.collection
    out["radicale_version"] = importlib.metadata.version("radicale")
    clean = not load.note and load.events == wanted == out["events_served"]
    if cache is not None and not load.cached and clean:
        cache.save(key, load, storage)
    return out


# -- load loops -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loop:
    key: str
    label: str
    conditional: bool  # send If-None-Match with the server's current ETag
    single: bool  # one sequential client instead of --concurrency


LOOPS = (
    Loop("get_200", "200, gzip", conditional=False, single=False),
    Loop("get_200_sequential", "200, gzip, 1 client", conditional=False, single=True),
    Loop("get_304", "If-None-Match", conditional=True, single=False),
    Loop("get_304_sequential", "If-None-Match, 1 client", conditional=True, single=True),
)


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    encodings: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    bytes_200: int = 0
    started: int = 0


async def _worker(
    url: str,
    headers: dict[str, str],
    auth: tuple[str, str] | None,
    tally: Tally,
    limit: int,
    deadline: float,
) -> None:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(
        auth=auth, timeout=REQUEST_TIMEOUT, limits=limits, trust_env=False
    ) as client:
        while tally.started < limit and time.monotonic() < deadline:
            tally.started += 1
            begin = time.perf_counter()
            try:
                # raw bytes, not decoded: the client must not spend its time un-gzipping
                async with client.stream("GET", url, headers=headers) as answer:
                    size = 0
                    async for chunk in answer.aiter_raw():
                        size += len(chunk)
            except httpx.HTTPError as err:
                tally.errors[type(err).__name__] += 1
                continue
            tally.latencies.append(time.perf_counter() - begin)
            tally.statuses[answer.status_code] += 1
            tally.encodings[answer.headers.get("content-encoding", "identity")] += 1
            if answer.status_code == 200:
                tally.bytes_200 += size


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def _run_loop(
    server: Server, url: str, headers: dict[str, str], clients: int, limit: int, seconds: float
) -> dict[str, Any]:
    tally = Tally()
    server_cpu = server.cpu_s()
    cpu, wall = time.process_time(), time.perf_counter()
    deadline = time.monotonic() + seconds
    workers = (_worker(url, headers, server.auth, tally, limit, deadline) for _ in range(clients))
    await asyncio.gather(*workers)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    server_after = server.cpu_s()
    done = sum(tally.statuses.values())
    spent = None if server_after is None or server_cpu is None else server_after - server_cpu
    ordered = sorted(tally.latencies)
    ok = tally.statuses.get(200, 0)
    idle = None
    if clients == 1 and done and spent is not None:
        # one request at a time: what neither process spent on a CPU (kernel, scheduling,
        # and stalls such as Nagle's algorithm waiting for a delayed ACK)
        idle = max(0.0, wall - cpu - spent) * 1000 / done
    return {
        "clients": clients,
        "requests": done,
        "stopped_by": "count" if tally.started >= limit else "time",
        "seconds": wall,
        "requests_per_s": done / wall if wall > 0 else None,
        "statuses": {str(code): n for code, n in sorted(tally.statuses.items())},
        "content_encodings": dict(sorted(tally.encodings.items())),
        "errors": dict(sorted(tally.errors.items())),
        "bytes_per_200": tally.bytes_200 / ok if ok else None,
        "latency_ms": {
            "p50": _ms(_percentile(ordered, 0.5)),
            "p90": _ms(_percentile(ordered, 0.9)),
            "p99": _ms(_percentile(ordered, 0.99)),
            "max": _ms(ordered[-1] if ordered else None),
        },
        "server_cpu_s": spent,
        "server_cpu_ms_per_request": spent * 1000 / done if spent is not None and done else None,
        "client_cpu_s": cpu,
        "client_cpu_share": cpu / wall if wall > 0 else None,
        "idle_ms_per_request": idle,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def serve_figures(
    server: Server,
    url: str,
    concurrency: int,
    limit: int,
    seconds: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """The server's validators, whether it answers a conditional GET with 304, and every
    load loop against ``url``."""
    gzip_only = {"Accept-Encoding": "gzip"}
    with _client(auth=server.auth) as client:
        for _ in range(2):  # warm up: caches, imports, the first connection
            first = client.get(url, headers=gzip_only)
        plain = client.get(url, headers={"Accept-Encoding": "identity"})
        etag = first.headers.get("etag", "")
        probe = client.get(url, headers={**gzip_only, "If-None-Match": etag}) if etag else None
    if first.status_code != 200 or plain.status_code != 200:
        raise RuntimeError(f"{server.name}: GET {first.status_code}/{plain.status_code}")
    out: dict[str, Any] = {
        "etag": etag,
        "content_encoding": first.headers.get("content-encoding", "identity"),
        "body_bytes": len(plain.content),
        "gzip_bytes": int(first.headers.get("content-length") or 0) or None,
        "events_served": len(_VEVENT.findall(plain.content)),
        "conditional_get": probe is not None and probe.status_code == 304,
        "conditional_probe_status": probe.status_code if probe is not None else None,
        "body_sha256": hashlib.sha256(plain.content).hexdigest(),
        "loops": {},
    }
    out["_uids"] = uids(plain.content)
    for loop in LOOPS:
        headers = dict(gzip_only)
        if loop.conditional and etag:
            headers["If-None-Match"] = etag
        clients = 1 if loop.single else concurrency
        log(f"  {server.name}: {loop.label} ({clients} client{'s' if clients > 1 else ''})")
        figures = asyncio.run(_run_loop(server, url, headers, clients, limit, seconds))
        out["loops"][loop.key] = figures
        if not server.alive():
            raise RuntimeError(f"{server.name} exited during the load loop:\n{server.tail()}")
    return out


# -- the run --------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    n = args.events
    out: dict[str, Any] = {
        "schema": SCHEMA,
        "events": n,
        "concurrency": args.concurrency,
        "max_requests": args.requests,
        "max_seconds": args.seconds,
        "environment": environment(),
    }
    counter = RenderCount()
    with tempfile.TemporaryDirectory(prefix="syncd-bench-feeds-") as tmp:
        folder = Path(tmp)
        shop = Shop.create(folder, n)
        try:
            log(f"syncing {n:,} appointments into the state store ...")
            asyncio.run(shop.sync())
            log("rendering ...")
            with counter.installed():
                out["refresh"], feeds = measure_refresh(shop, counter)
                out["render"] = measure_render(shop, counter, args.repeat)
            rendered = feeds.rendered(FEED)
            if rendered is None:
                raise RuntimeError("bench: the feed store rendered no feed")
            out["feed"] = {
                "events": rendered.events,
                "body_bytes": len(rendered.body),
                "gzip_bytes": len(rendered.gzipped),
                "gzip_share": len(rendered.gzipped) / len(rendered.body),
                "etag": rendered.etag,
                "gzip_etag": rendered.gzip_etag,
            }
            body = rendered.body
        finally:
            asyncio.run(shop.close())

        syncd_dir, radicale_dir = folder / "syncd", folder / "radicale"
        syncd_dir.mkdir()
        radicale_dir.mkdir()
        log("starting syncd's web server ...")
        syncd = start_syncd(shop.config_path, syncd_dir)
        try:
            url = f"{syncd.url}/feeds/{shop.token}.ics"
            out["syncd"] = serve_figures(
                syncd, url, args.concurrency, args.requests, args.seconds, log
            )
            out["syncd"]["url"] = f"{syncd.url}/feeds/<token>.ics"  # no secret in the JSON
        finally:
            syncd.stop()
        out["syncd"]["served_is_rendered"] = out["syncd"]["body_sha256"] == _sha(body)

        out["radicale"] = radicale_side(args, body, radicale_dir, log)

    syncd_uids = out["syncd"].pop("_uids")
    if "error" not in out["radicale"]:
        radicale_uids = out["radicale"].pop("_uids")
        out["radicale"]["same_events"] = radicale_uids == syncd_uids
        out["radicale"]["events_missing"] = len(syncd_uids - radicale_uids)
    out["comparison"] = compare(out)
    out["peak_rss_mib"] = peak_rss_mib()
    out["load_average_after"] = load_average()
    out["targets"] = targets(out)
    return out


def _sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def compare(out: dict[str, Any]) -> dict[str, Any]:
    """Per loop: syncd's requests/s over Radicale's, and Radicale's server CPU per request
    over syncd's. Like for like only when Radicale holds every event of the feed."""
    radicale = out["radicale"]
    like = "error" not in radicale and radicale["events_served"] == out["feed"]["events"]
    rows: dict[str, Any] = {"like_for_like": like}
    for loop in LOOPS:
        mine = out["syncd"]["loops"][loop.key]
        theirs = radicale.get("loops", {}).get(loop.key) if "error" not in radicale else None
        rows[loop.key] = {
            "requests_per_s_ratio": _ratio(mine["requests_per_s"], theirs, "requests_per_s"),
            "server_cpu_per_request_ratio": _ratio(
                theirs["server_cpu_ms_per_request"] if theirs else None,
                mine,
                "server_cpu_ms_per_request",
            ),
        }
    return rows


def _ratio(top: float | None, bottom_of: dict[str, Any] | None, key: str) -> float | None:
    bottom = bottom_of.get(key) if bottom_of else None
    if top is None or not bottom:
        return None
    return float(top) / float(bottom)


def targets(out: dict[str, Any]) -> list[dict[str, Any]]:
    """What the issue asks for, as checks; the speed ones are syncd against Radicale (the
    issue sets no number)."""
    n = out["events"]
    refresh, render, s, r = out["refresh"], out["render"], out["syncd"], out["radicale"]
    rows: list[tuple[str, str, Any, bool]] = [
        ("feed: events served by syncd", f"== {n:,}", s["events_served"], s["events_served"] == n),
        (
            "feed: served bytes are the rendered feed",
            "same SHA-256",
            s["served_is_rendered"],
            bool(s["served_is_rendered"]),
        ),
        (
            "render: cold refresh renders every event once",
            f"== {n:,}",
            refresh["cold"]["events_rendered"],
            refresh["cold"]["events_rendered"] == n,
        ),
        (
            "render: idle refresh renders nothing",
            "== 0 feeds",
            refresh["idle"]["feeds_rendered"],
            refresh["idle"]["feeds_rendered"] == 0,
        ),
        (
            "render: one appointment moved renders one event",
            "== 1",
            refresh["one_changed"]["events_rendered"],
            refresh["one_changed"]["events_rendered"] == 1
            and render["one_changed"]["events_rendered"] == 1,
        ),
    ]
    for key in ("get_200", "get_200_sequential"):
        loop = s["loops"][key]
        good = loop["statuses"] == {"200": loop["requests"]} and loop["content_encodings"] == {
            "gzip": loop["requests"]
        }
        rows.append((f"syncd {key}: every answer a gzip 200", "all", _statuses(loop), good))
    for key in ("get_304", "get_304_sequential"):
        loop = s["loops"][key]
        good = loop["requests"] > 0 and loop["statuses"] == {"304": loop["requests"]}
        rows.append((f"syncd {key}: every answer a 304", "all", _statuses(loop), good))
    if "error" in r:
        rows.append(("radicale: loaded and served", "no error", r["error"][:40], False))
        return _rows(rows)
    rows.append(
        (
            "radicale: serves the same events",
            f"== {n:,}",
            r["events_served"],
            r["events_served"] == n and bool(r["same_events"]),
        )
    )
    like = out["comparison"]["like_for_like"]
    for key, what in (("get_200", "200s"), ("get_304", "conditional GETs")):
        ratio = out["comparison"][key]["requests_per_s_ratio"]
        rows.append(
            (
                f"syncd/Radicale {what}/s, {out['concurrency']} clients",
                ">= 1" + ("" if like else " (not like for like)"),
                ratio,
                ratio is not None and ratio >= 1 and like,
            )
        )
    return _rows(rows)


def _statuses(loop: dict[str, Any]) -> str:
    return " ".join(f"{code}x{n}" for code, n in loop["statuses"].items()) or "none"


def _rows(rows: list[tuple[str, str, Any, bool]]) -> list[dict[str, Any]]:
    return [
        {"name": name, "target": target, "measured": measured, "pass": ok}
        for name, target, measured, ok in rows
    ]


# -- output ---------------------------------------------------------------------------------------


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if value < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _msec(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def table(out: dict[str, Any]) -> str:
    env, n, feed = out["environment"], out["events"], out["feed"]
    lines = [
        f"syncd feed bench: {n:,} events, one full-detail feed, SQLite state store in a temp dir",
        f"Python {env['python']} on {env['system']} {env['machine']}, {env['cpus']} CPUs, "
        f"load average {_num(env['load_average_before'], 2)} before, "
        f"{_num(out['load_average_after'], 2)} after; "
        f"calibration sum(range(10**6)): {env['calibration_ms']:.1f} ms CPU",
        "",
    ]
    refresh, render = out["refresh"], out["render"]
    lines.append(f"{'render':<52}{'wall ms':>12}{'CPU ms':>12}{'events rendered':>18}")
    lines.append("-" * 94)
    for label, m in (
        ("FeedStore.refresh, cold (after the first sync)", refresh["cold"]),
        ("FeedStore.refresh, nothing changed", refresh["idle"]),
        ("FeedStore.refresh, one appointment moved", refresh["one_changed"]),
        ("render_feed alone, cold (no VEVENT cached)", render["cold"]),
        (f"render_feed alone, unchanged (median of {render['repeat']})", render["unchanged"]),
        (f"render_feed alone, one changed (median of {render['repeat']})", render["one_changed"]),
    ):
        lines.append(
            f"{label:<52}{_msec(m['wall_s']):>12}{_msec(m['cpu_s']):>12}{m['events_rendered']:>18,}"
        )
    lines.append(f"{'  of which gzip of the body':<52}{_msec(render['gzip_s']):>12}")
    sha = _msec(render["sha256_s"])
    lines.append(f"{'  of which SHA-256 of the body (the ETag)':<52}{sha:>12}")
    lines.append(
        f"feed size: {feed['body_bytes']:,} bytes, {feed['gzip_bytes']:,} gzipped "
        f"({feed['gzip_share']:.1%}); {feed['events']:,} events"
    )
    lines.append("")

    s, r = out["syncd"], out["radicale"]
    if "error" in r:
        lines.append(f"Radicale: not measured: {r['error']}")
    else:
        load = r["load"]
        how = f"{load['method']} in {load['seconds']:,.1f} s"
        if load["cached"]:
            how = f"restoring the storage of an earlier run's {how}"
        lines += [
            f"Radicale {r['radicale_version']}: {load['events']:,} events loaded by {how} "
            f"({_num(load['ms_per_event'])} ms an event)",
            f"  serves {r['events_served']:,} events, {r['body_bytes']:,} bytes, "
            f"{_num(r['gzip_bytes'])} gzipped; same UIDs as the feed: {r['same_events']}; "
            "answers a conditional GET with "
            + ("304" if r["conditional_get"] else f"{r['conditional_probe_status']} (no 304)"),
        ]
        if load["note"]:
            lines.append(f"  NOTE: {load['note']}")
        if not out["comparison"]["like_for_like"]:
            lines.append("  NOTE: Radicale holds fewer events than the feed: not like for like")
    lines.append(
        f"load loops: at most {out['max_requests']:,} requests or {out['max_seconds']:g} s "
        f"each, {LOOPBACK}, httpx clients in this process, servers in their own"
    )
    lines.append("")
    head = (
        f"{'loop':<26}{'server':<10}{'clients':>8}{'requests':>10}{'s':>7}{'req/s':>10}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'srv CPU ms/req':>16}{'client CPU':>12}  statuses"
    )
    lines += [head, "-" * (len(head) + 10)]
    servers = [("syncd", s)] + ([("radicale", r)] if "error" not in r else [])
    for loop in LOOPS:
        for name, figures in servers:
            m = figures["loops"][loop.key]
            label = loop.label if name == "syncd" else ""
            lines.append(
                f"{label:<26}{name:<10}{m['clients']:>8}{m['requests']:>10,}"
                f"{m['seconds']:>7.1f}{_num(m['requests_per_s']):>10}"
                f"{_num(m['latency_ms']['p50'], 2):>9}{_num(m['latency_ms']['p99'], 2):>9}"
                f"{_num(m['server_cpu_ms_per_request'], 3):>16}"
                f"{_pct(m['client_cpu_share']):>12}  {_statuses(m)}"
                + (f"  errors {m['errors']}" if m["errors"] else "")
            )
    idle = [
        f"{name} {loop.label.removesuffix(', 1 client')}: "
        f"{_num(figures['loops'][loop.key]['idle_ms_per_request'], 2)}"
        for name, figures in servers
        for loop in LOOPS
        if loop.single
    ]
    lines.append("1 client, ms a request spent on neither CPU: " + "; ".join(idle))
    if "error" not in r:
        lines.append("")
        lines.append(
            f"{'syncd / Radicale':<40}{'req/s ratio':>14}{'server CPU per request, R/s':>30}"
        )
        for loop in LOOPS:
            c = out["comparison"][loop.key]
            lines.append(
                f"{loop.label:<40}{_times(c['requests_per_s_ratio']):>14}"
                f"{_times(c['server_cpu_per_request_ratio']):>30}"
            )
    lines += ["", f"peak RSS of the bench process: {out['peak_rss_mib']:,.1f} MiB", ""]
    width = max(len(t["name"]) for t in out["targets"])
    lines.append(f"{'target':<{width}}  {'wanted':>28}  {'measured':>16}  result")
    for t in out["targets"]:
        verdict = "PASS" if t["pass"] else "MISS"
        lines.append(
            f"{t['name']:<{width}}  {t['target']:>28}  {_num(t['measured'], 2):>16}  {verdict}"
        )
    return "\n".join(lines)


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:,.1f}x"


# -- the server child -----------------------------------------------------------------------------


async def serve(config: Config, url_file: Path) -> None:
    """The bench's syncd server: the daemon's web app over the state store the parent wrote,
    feeds refreshed once (restored from the feed tables, as after a restart), no scheduler.
    Stops on SIGTERM/SIGINT or when the parent goes away."""
    store = open_store(config)
    runtime = Runtime.build(config)
    feeds = FeedStore(store, config)
    feeds.refresh_all()
    runner = Runner(store, runtime.syncs, feeds, Metrics())
    context = WebContext(config, store, feeds, runner, runner.metrics, runtime.providers)
    context.scheduler_running = lambda: True
    server = WebServer(create_app(context), LOOPBACK, 0)
    await server.start()
    _publish(url_file, server.url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()
    try:
        while not stop.is_set() and os.getppid() == parent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    finally:
        await server.stop()
        await runtime.aclose()
        store.close()


def _publish(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` at once: the parent never reads half a URL."""
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    partial.replace(path)


# -- command line ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.feeds", description=(__doc__ or "").split("\n", 1)[0]
    )
    parser.add_argument("--events", type=int, default=10_000, help="default: 10000")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="clients in the concurrent loops (default: 4)"
    )
    parser.add_argument(
        "--requests", type=int, default=5000, help="most requests in a loop (default: 5000)"
    )
    parser.add_argument(
        "--seconds", type=float, default=8.0, help="longest a loop starts requests (default: 8)"
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="warm render_feed runs to take the median of"
    )
    parser.add_argument(
        "--radicale-load",
        choices=("collection", "per-event"),
        default="collection",
        help="one PUT of the whole calendar (default), or one PUT per event",
    )
    parser.add_argument(
        "--radicale-events",
        type=int,
        default=0,
        metavar="N",
        help="load only the feed's first N events into Radicale (default: all; fewer is "
        "faster to load but not like for like)",
    )
    parser.add_argument(
        "--radicale-cache",
        type=Path,
        default=DEFAULT_CACHE,
        metavar="DIR",
        help="keep Radicale's loaded storage here for the next run "
        "(default: bench/results/radicale-storage)",
    )
    parser.add_argument(
        "--no-radicale-cache",
        action="store_true",
        help="load Radicale afresh and keep nothing",
    )
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help="default: bench/results/feeds.json"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--serve", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is None:
        if args.events < 1:
            parser.error("--events must be at least 1")
        if args.concurrency < 1 or args.requests < 1 or args.repeat < 1:
            parser.error("--concurrency, --requests and --repeat must be at least 1")
        if not 0 < args.seconds <= 600:
            parser.error("--seconds must be more than 0 and at most 600")
        if args.radicale_events < 0:
            parser.error("--radicale-events must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve is not None:
        config_path, url_file = args.serve
        asyncio.run(serve(parse_config(config_path.read_text(), environ={}), url_file))
        return 0

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    out = measure(args, log)
    print(table(out))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0  # a benchmark reports; it does not gate


if __name__ == "__main__":
    sys.exit(main())
