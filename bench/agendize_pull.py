"""Agendize pull throughput and idle cost on the sandbox (issue 6, acceptance 4).

    python -m bench.agendize_pull [--appointments 10000] [--page-size 100] [--json PATH]

The sandbox runs in-process behind ``httpx.ASGITransport`` (every request a real HTTP round
trip through the app, JSON encoded and decoded, minus the network), the calendar is
``MemoryCalendar`` and the state store is SQLite in a temporary directory. Measured:

1. pull: one full ``provider.pull`` of the window without a token (every page, mapping),
   appointments/s, and the pages it took;
2. first sync: one ``run_cycle`` doing that pull and reconciling every appointment into the
   empty calendar (plan, journal, render, calendar writes, commits), appointments/s;
3. idle: after the echo cycle, a cycle with nothing changed, and the requests the sandbox saw
   for it (the promise: exactly one listing, by sync token);
4. peak RSS of the process.

The sandbox's own share of the time (filtering, JSON rendering) is reported apart as
``sandbox_seconds``. Request counts come from the sandbox's counter, not syncd's. It prints a
table and writes JSON; it reports, it does not gate: the exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import platform
import sys
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from bench.machine import peak_rss_mib
from bench.onlineafspraken_pull import TimedApp, table, timed
from syncd.calendars.memory import MemoryCalendar
from syncd.ical import RenderOptions
from syncd.providers.ag_client import Credentials
from syncd.providers.agendize import AgendizeProvider
from syncd.providers.base import Window
from syncd.reconcile.cycle import Result, Sync, run_cycle
from syncd.reconcile.policy import Policy
from syncd.reconcile.render import SyncRenderer
from syncd.sandbox.agendize import create_app
from syncd.sandbox.agendize_state import SandboxState
from syncd.sandbox.onlineafspraken_state import ManualClock
from syncd.state.store import Store

SCHEMA = 1
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "agendize_pull.json"
ZONE = ZoneInfo("Europe/Paris")
START = datetime(2026, 3, 2, 8, 0, tzinfo=ZONE)  # 10,000 bookings run past both DST changes
BOOKINGS_A_DAY = 48


class Bench:
    """One sandboxed company synced into a memory calendar, cycle by cycle."""

    def __init__(self, state: SandboxState, clock: ManualClock, http: httpx.AsyncClient) -> None:
        self.state, self.clock = state, clock
        creds = Credentials(api_key=state.api_key, token=state.token)
        self.provider = AgendizeProvider(
            "ag", "http://sandbox/api/2.1/scheduling", state.company_id, creds,
            timezone=ZONE, client=http, now=clock,
        )  # fmt: skip
        self.calendar = MemoryCalendar("cal")
        policy = Policy(sync="bench", account="ag", calendars=("cal",))
        renderer = SyncRenderer("ag", RenderOptions("bench"))
        self.sync = Sync(policy, self.provider, {"cal": self.calendar}, renderer)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), ZONE)

    def requests(self) -> dict[str, int]:
        seen = dict(Counter(self.state.requests))
        self.state.requests.clear()
        return seen

    async def cycle(self, store: Store) -> tuple[Result, float]:
        self.clock.advance(60)
        return await timed(lambda: run_cycle(store, self.sync, now=self.now()))


async def measure(appointments: int, page_size: int) -> dict[str, Any]:
    clock = ManualClock(START)
    state = SandboxState(clock=clock, page_size=page_size)
    state.seed(appointments, seed=1, days=max(28, math.ceil(appointments / BOOKINGS_A_DAY)))
    server = TimedApp(create_app(state))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server)) as http:
        bench = Bench(state, clock, http)
        window = Window(
            bench.now() - bench.sync.window_past, bench.now() + bench.sync.window_future
        )
        server.lap()
        pull, pull_s = await timed(lambda: bench.provider.pull({}, None, window))
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
            "complete": pull.complete,
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.agendize_pull")
    parser.add_argument("--appointments", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=100, help="the sandbox's page size")
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
