"""OnlineAfspraken pull throughput and idle cost on the sandbox (issue 4, acceptance 5).

    python -m bench.onlineafspraken_pull [--appointments 10000] [--page-size 500] [--json PATH]

The sandbox runs in-process behind ``httpx.ASGITransport`` (so every request is a real,
signed, XML-parsing round trip, minus the network), the calendar is ``MemoryCalendar`` and
the state store is SQLite in a temporary directory. Measured:

1. pull: one full ``provider.pull`` of the window (every page of ``getAppointments``,
   parsing, name look-ups), appointments/s;
2. first sync: one ``run_cycle`` doing that pull and reconciling every appointment into the
   empty calendar (plan, journal, render, calendar writes, commits), appointments/s;
3. idle: after the echo cycle, a cycle with nothing changed, and the requests the sandbox saw
   for it (the promise: exactly one ``getAppointments``);
4. peak RSS of the process (``resource.getrusage``).

Times include the sandbox's own work (filtering, rendering XML), reported apart as
``sandbox_seconds``: the time spent inside the ASGI app, which a real server spends instead.

Request counts come from the sandbox's own counter, not syncd's. It prints a table and writes
JSON; it reports, it does not gate: the exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx

from bench.machine import peak_rss_mib
from syncd.calendars.memory import MemoryCalendar
from syncd.ical import RenderOptions
from syncd.providers.base import Window
from syncd.providers.onlineafspraken import OnlineAfsprakenProvider
from syncd.reconcile.cycle import Result, Sync, run_cycle
from syncd.reconcile.policy import Policy
from syncd.reconcile.render import SyncRenderer
from syncd.sandbox.onlineafspraken import create_app
from syncd.sandbox.onlineafspraken_state import ManualClock, SandboxState
from syncd.state.store import Store

SCHEMA = 1
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "onlineafspraken_pull.json"
ZONE = ZoneInfo("Europe/Amsterdam")
START = datetime(2026, 3, 2, 8, 0, tzinfo=ZONE)  # 10,000 bookings run past both DST changes
BOOKINGS_A_DAY = 48  # SandboxState.seed: sixteen half-hour starts a day, three resources
SCOPE = {"agenda": "1"}
T = TypeVar("T")


async def timed(work: Callable[[], Awaitable[T]]) -> tuple[T, float]:
    began = time.perf_counter()
    result = await work()
    return result, time.perf_counter() - began


class TimedApp:
    """The sandbox app, adding up the time spent inside it: the server's share of a run."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seconds = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        began = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.seconds += time.perf_counter() - began

    def lap(self) -> float:
        """Seconds inside the sandbox since the last lap."""
        spent, self.seconds = self.seconds, 0.0
        return spent


class Bench:
    """One sandboxed account synced into a memory calendar, cycle by cycle."""

    def __init__(self, state: SandboxState, clock: ManualClock, http: httpx.AsyncClient) -> None:
        self.state, self.clock = state, clock
        self.provider = OnlineAfsprakenProvider(
            "oa", "http://sandbox/APIREST", state.api_key, state.api_secret, client=http, now=clock
        )
        self.calendar = MemoryCalendar("cal")
        policy = Policy(sync="bench", account="oa", calendars=("cal",))
        renderer = SyncRenderer("oa", RenderOptions("bench"))
        self.sync = Sync(policy, self.provider, {"cal": self.calendar}, renderer, SCOPE)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), ZONE)

    def requests(self) -> dict[str, int]:
        """The sandbox's requests since the last call, by API method."""
        seen = dict(Counter(self.state.requests))
        self.state.requests.clear()
        return seen

    async def cycle(self, store: Store) -> tuple[Result, float]:
        self.clock.advance(60)
        return await timed(lambda: run_cycle(store, self.sync, now=self.now()))


async def measure(appointments: int, page_size: int) -> dict[str, Any]:
    clock = ManualClock(START)
    state = SandboxState(api_key="bench-key", api_secret="bench-secret", clock=clock)
    state.seed(appointments, seed=1, days=max(28, math.ceil(appointments / BOOKINGS_A_DAY)))
    server = TimedApp(create_app(state))
    transport = httpx.ASGITransport(app=server)
    async with httpx.AsyncClient(transport=transport) as http:
        bench = Bench(state, clock, http)
        bench.provider.api.page_size = page_size
        window = Window(
            bench.now() - bench.sync.window_past, bench.now() + bench.sync.window_future
        )
        server.lap()
        pull, pull_s = await timed(lambda: bench.provider.pull(SCOPE, None, window))
        pull_server_s = server.lap()
        pull_requests = bench.requests()
        with tempfile.TemporaryDirectory() as folder:
            store = Store(f"sqlite:///{Path(folder) / 'state.db'}")
            try:
                first, first_s = await bench.cycle(store)
                first_server_s = server.lap()
                first_requests = bench.requests()
                echo, _ = await bench.cycle(store)
                bench.requests()
                idle, idle_s = await bench.cycle(store)
                idle_requests = bench.requests()
            finally:
                store.close()
    return {
        "schema": SCHEMA,
        "appointments": appointments,
        "page_size": page_size,
        "pull": {
            "items": len(pull.items),
            "seconds": pull_s,
            "sandbox_seconds": pull_server_s,
            "appointments_per_s": appointments / pull_s,
            "requests": pull_requests,
        },
        "first_sync": {
            "created": first.plan.counts().get("create", 0),
            "events": len(bench.calendar.items()),
            "seconds": first_s,
            "sandbox_seconds": first_server_s,
            "appointments_per_s": appointments / first_s,
            "requests": first_requests,
        },
        "echo_actions": len(echo.plan.actions),
        "idle": {"actions": len(idle.plan.actions), "seconds": idle_s, "requests": idle_requests},
        "peak_rss_mib": peak_rss_mib(),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}",
    }


def table(figures: dict[str, Any]) -> str:
    pull, first, idle = figures["pull"], figures["first_sync"], figures["idle"]
    rows = [
        ("appointments", f"{figures['appointments']:,} (pages of {figures['page_size']})"),
        ("pull only", _rate(pull)),
        ("pull requests", _requests(pull["requests"])),
        ("pull + reconcile", _rate(first)),
        ("events created", f"{first['created']:,}"),
        ("echo cycle actions", str(figures["echo_actions"])),
        ("idle cycle", f"{idle['seconds'] * 1000:.1f} ms, {idle['actions']} actions"),
        ("idle requests", _requests(idle["requests"])),
        ("peak RSS", f"{figures['peak_rss_mib']:.0f} MiB"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _rate(phase: dict[str, Any]) -> str:
    return (
        f"{phase['seconds']:.2f} s  {phase['appointments_per_s']:,.0f} appt/s"
        f"  (of which {phase['sandbox_seconds']:.2f} s inside the sandbox)"
    )


def _requests(counts: dict[str, int]) -> str:
    return ", ".join(f"{method} x{n}" for method, n in sorted(counts.items())) or "none"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.onlineafspraken_pull")
    parser.add_argument("--appointments", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=500, help="Limit per getAppointments")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write figures")
    args = parser.parse_args(argv)
    if args.appointments < 1 or args.page_size < 1:
        parser.error("--appointments and --page-size must be positive")
    figures = asyncio.run(measure(args.appointments, args.page_size))
    print(table(figures))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
