"""The fault matrix's world, and a reader that checks a calendar against a provider.

``served(app)`` runs an ASGI app (a provider sandbox) with uvicorn in a thread on a loopback
port, so faults that need real sockets (timeouts, connection resets) are real. ``FaultWorld``
is the daemon's ``Runner`` over a config with two syncs, driven run by run on a clock the test
steps, the way ``tests.daemon_kit.Harness`` does:

``salon``  OnlineAfspraken (the sandbox, behind a ``FaultProxy``) -> Radicale ``team`` (behind
           the session's ``FaultProxy``): the sync the faults are injected into;
``shop``   the memory provider -> a memory calendar: a sync on other backends, which must run
           on undelayed while ``salon`` fails.

``calendar_objects``/``read_events`` read a collection with one REPORT and icalendar, no syncd
code; ``mismatches`` compares what they show with the sandbox's own bookings (lost,
duplicates, diverged), the same reckoning as ``bench/crashloop.py``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import httpx
import icalendar
import uvicorn
from starlette.types import ASGIApp

from syncd.config import Config, parse_config
from syncd.daemon.backoff import BackoffPolicy
from syncd.daemon.metrics import Metrics
from syncd.daemon.runner import Runner
from syncd.feeds import FeedStore
from syncd.log import RedactSecrets
from syncd.reconcile.cycle import Result
from syncd.runtime import Runtime, open_store
from syncd.sandbox.onlineafspraken import booking_json
from syncd.sandbox.onlineafspraken_state import SandboxState
from syncd.state.store import Store
from syncd.web.app import create_app
from syncd.web.context import WebContext
from tests.daemon_kit import StepClock
from tests.servers import PASSWORD, USER, FaultProxy, free_port

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
BUSY_TYPE = 90
API_KEY = "oa-key-Fq2vWm8Lx3"
API_SECRET = "oa-secret-Hk7pTz4Rn9Yd2Jc6"


# -- a sandbox on a real socket ------------------------------------------------------------------


@dataclass
class Served:
    """An ASGI app served on ``url``; ``app`` may be swapped between tests (``app.state``)."""

    url: str
    app: Any
    server: uvicorn.Server
    thread: threading.Thread


@contextmanager
def served(app: ASGIApp) -> Iterator[Served]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"sandbox:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the sandbox server did not start")
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", app, server, thread)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# -- reading a calendar as any client would ------------------------------------------------------

REPORT_BODY = (
    '<?xml version="1.0" encoding="utf-8"?><C:calendar-query xmlns:D="DAV:" '
    'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data/></D:prop>'
    '<C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>'
)


@dataclass(frozen=True)
class Shown:
    """One event as a person's client shows it."""

    href: str
    native_id: str
    start: datetime
    end: datetime
    cancelled: bool


def calendar_objects(collection: str) -> list[tuple[str, bytes]]:
    """Every object in a collection: one REPORT, read with the standard library."""
    headers = {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"}
    answer = httpx.request(
        "REPORT",
        collection,
        content=REPORT_BODY,
        headers=headers,
        auth=(USER, PASSWORD),
        timeout=60,
    )
    if answer.status_code != 207:
        raise RuntimeError(f"REPORT on {collection} answered {answer.status_code}")
    found = []
    for response in ElementTree.fromstring(answer.content).iter("{DAV:}response"):
        href = response.findtext("{DAV:}href") or ""
        data = response.findtext(".//{urn:ietf:params:xml:ns:caldav}calendar-data")
        if data:
            found.append((href, data.encode()))
    return found


def read_events(collection: str) -> list[Shown]:
    shown = []
    for href, data in calendar_objects(collection):
        for event in icalendar.Calendar.from_ical(data).walk("VEVENT"):
            start, end = event.decoded("DTSTART"), event.decoded("DTEND")
            shown.append(
                Shown(
                    href,
                    str(event.get("X-SYNCD-ID", "")),
                    start.astimezone(AMSTERDAM),
                    end.astimezone(AMSTERDAM),
                    str(event.get("STATUS", "")).upper() == "CANCELLED",
                )
            )
    return shown


def instant(wall: str) -> datetime:
    """A sandbox wall time (``2026-11-21 10:00:00``, Amsterdam) as an instant."""
    return datetime.fromisoformat(wall.replace(" ", "T")).replace(tzinfo=AMSTERDAM)


@dataclass
class Reckoning:
    """What differs between a provider and a calendar; ``examples`` name the first few."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def note(self, kind: str, detail: str, example: str) -> None:
        self.counts[kind] += 1
        self.counts[f"{kind}.{detail}"] += 1
        if len(self.examples) < 20:
            self.examples.append(f"{kind} ({detail}): {example}")

    def total(self, kind: str) -> int:
        return self.counts[kind]


def mismatches(
    bookings: list[dict[str, Any]],
    events: list[Shown],
    agenda: int = 1,
    now: datetime | None = None,
) -> Reckoning:
    """Compare the sandbox's bookings (``booking_json`` dicts) of ``agenda`` with the events.

    An appointment inside the sync's default window (30 days back, 365 ahead) must have exactly
    one event with its start, end and status (cancelled appointments are kept, marked); a
    deleted one (status 3) or a removed one must have none.
    """
    found = Reckoning()
    now = now or datetime.now(AMSTERDAM)
    first, last = now - timedelta(days=30), now + timedelta(days=365)
    ours = {
        str(b["id"]): b for b in bookings if b["type_id"] != BUSY_TYPE and b["agenda_id"] == agenda
    }
    by_id: dict[str, list[Shown]] = {}
    for shown in events:
        by_id.setdefault(shown.native_id, []).append(shown)
    for native_id, booking in ours.items():
        start, end = instant(booking["start"]), instant(booking["finish"])
        if not (start < last and end > first):
            continue
        seen = by_id.get(native_id, [])
        if booking["status"] == 3:
            if seen:
                found.note("diverged", "event of a deleted appointment", native_id)
            continue
        if not seen:
            found.note("lost", "appointment", f"{native_id} at {booking['start']}")
            continue
        if len(seen) > 1:
            found.note("duplicates", "appointment", f"{native_id}: {len(seen)} events")
        event = seen[0]
        cancelled = booking["label"] == 4 or booking["status"] == 2
        if (event.start, event.end, event.cancelled) != (start, end, cancelled):
            found.note(
                "diverged",
                "appointment",
                f"{native_id}: calendar {event.start:%m-%d %H:%M}-{event.end:%H:%M} "
                f"cancelled={event.cancelled}, provider {start:%m-%d %H:%M}-{end:%H:%M} "
                f"cancelled={cancelled}",
            )
    for native_id, seen in by_id.items():
        if native_id not in ours:
            found.note("diverged", "event of a removed appointment", f"{native_id}: {len(seen)}")
    return found


def read_spans(collection: str) -> list[tuple[datetime, datetime]]:
    """The start and end of every event in a collection (a person's private calendar)."""
    spans = []
    for _href, data in calendar_objects(collection):
        for event in icalendar.Calendar.from_ical(data).walk("VEVENT"):
            spans.append((event.decoded("DTSTART"), event.decoded("DTEND")))
    return spans


def busy_mismatches(
    bookings: list[dict[str, Any]],
    sources: list[tuple[datetime, datetime]],
    found: Reckoning,
    now: datetime | None = None,
) -> None:
    """Busy placeholders (active bookings of the busy type) against the private events behind
    them, span by span, from ``now`` on: one placeholder per event (two events at the same
    time make two). Fewer is ``lost``, more is ``duplicates``, one at a time no event holds is
    an ``orphan``. Events here are within one day, as the crash loop writes them."""
    now = now or datetime.now(AMSTERDAM)

    def wall(moment: datetime) -> str:
        return f"{moment.astimezone(AMSTERDAM):%Y-%m-%d %H:%M:%S}"

    held = Counter(
        (b["start"], b["finish"])
        for b in bookings
        if b["type_id"] == BUSY_TYPE and b["status"] == 1 and b["label"] != 4
    )
    wanted = Counter((wall(start), wall(end)) for start, end in sources if end > now)
    for span, count in wanted.items():
        if held[span] < count:
            found.note("lost", "busy block", f"{span[0]}-{span[1][11:]}: {held[span]} of {count}")
        elif held[span] > count:
            found.note("duplicates", "busy block", f"{span[0]}-{span[1][11:]}: {held[span]}")
    for span, count in held.items():
        if span not in wanted and instant(span[1]) > now:
            for _ in range(count):
                found.note("orphans", "busy block", f"placeholder {span[0]}-{span[1][11:]}")


# -- the daemon's runner over a faulty world -------------------------------------------------------


def config_text(database: Path, oa_url: str, team_url: str, *, busy_timeout: str = "5s") -> str:
    return f"""
[store]
url = "sqlite:///{database}"
busy_timeout = "{busy_timeout}"

[providers.salon]
kind = "onlineafspraken"
base_url = "{oa_url}/APIREST"
api_key = "${{OA_KEY}}"
api_secret = "${{OA_SECRET}}"
timeout = "1s"

[providers.shop]
kind = "memory"
seed = 6

[calendars.team]
kind = "caldav"
url = "{team_url}"
username = "{USER}"
password = "${{CALDAV_PASSWORD}}"
timeout = "1s"

[calendars.scratch]
kind = "memory"

[[syncs]]
name = "salon"
provider = "salon"
scope = {{ agenda = "1" }}
calendars = ["team"]
direction = "two-way"

[[syncs]]
name = "shop"
provider = "shop"
calendars = ["scratch"]
"""


ENVIRON = {"OA_KEY": API_KEY, "OA_SECRET": API_SECRET, "CALDAV_PASSWORD": PASSWORD}


@dataclass
class FaultWorld:
    """The runner over ``salon`` and ``shop``; ``retries`` records its early-retry requests."""

    state: SandboxState
    oa_proxy: FaultProxy
    dav_proxy: FaultProxy
    team: str  # the collection's URL on Radicale itself, not through the proxy
    config: Config
    store: Store
    runtime: Runtime
    runner: Runner
    clock: StepClock
    retries: list[tuple[str, float]] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        state: SandboxState,
        oa_proxy: FaultProxy,
        dav_proxy: FaultProxy,
        team: str,
        database: Path,
        busy_timeout: str = "5s",
    ) -> FaultWorld:
        text = config_text(database, oa_proxy.url, dav_proxy.at(team), busy_timeout=busy_timeout)
        config = parse_config(text, environ=ENVIRON)
        store = open_store(config)
        runtime = Runtime.build(config)
        feeds = FeedStore(store, config)
        clock = StepClock()
        redact = RedactSecrets(config.secrets()).redact
        runner = Runner(
            store,
            runtime.syncs,
            feeds,
            Metrics(),
            redact=redact,
            policy=BackoffPolicy(),
            clock=clock,
        )
        world = cls(state, oa_proxy, dav_proxy, team, config, store, runtime, runner, clock)
        runner.retry = lambda name, delay: world.retries.append((name, delay))
        return world

    async def close(self) -> None:
        await self.runtime.aclose()
        self.store.close()

    async def run(self, name: str, full: bool = False) -> Result | None:
        return await self.runner.run(name, full)

    async def settle(self, name: str, full: bool = False) -> None:
        """Runs until one changes nothing (our own writes come back once as echoes)."""
        for attempt in range(5):
            result = await self.run(name, full=full and attempt == 0)
            assert result is not None, self.runner.states[name].last_error
            assert result.status == "ok", result.error
            if attempt and not result.plan.actions and not result.outcome.failed:
                return
        raise AssertionError(f"{name} does not settle")

    def wait_out_backoff(self) -> None:
        """Step the runner's clock past every gate's backoff."""
        self.clock.advance(max((gate.wait() for gate in self.runner.gates.values()), default=0) + 1)

    def reckon(self) -> Reckoning:
        bookings = [booking_json(b) for b in self.state.appointments.values()]
        return mismatches(bookings, read_events(self.team))

    def metrics(self) -> str:
        ctx = WebContext(
            self.config, self.store, self.runner.feeds, self.runner, self.runner.metrics
        )
        backlog = {name: ctx.store.pending_count(name) for name in self.runner.syncs}
        text = self.runner.metrics.expose(self.runner.lag(), backlog, self.runner.breakers())
        return text.decode()

    def web(self) -> httpx.AsyncClient:
        ctx = WebContext(
            self.config, self.store, self.runner.feeds, self.runner, self.runner.metrics
        )
        ctx.scheduler_running = lambda: True
        transport = httpx.ASGITransport(app=create_app(ctx), client=("127.0.0.1", 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765")


async def concurrently(*runs: Any) -> list[tuple[float, Any]]:
    """Await ``runs`` together; each one's (seconds until it finished, result)."""
    started = time.monotonic()

    async def timed(run: Any) -> tuple[float, Any]:
        result = await run
        return time.monotonic() - started, result

    return list(await asyncio.gather(*(timed(run) for run in runs)))
