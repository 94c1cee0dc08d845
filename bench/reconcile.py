"""Reconcile throughput and idle-cycle cost on the memory backends (issue 2, acceptance 5).

    python -m bench.reconcile [--appointments 10000] [--repeat 11] [--runs 5] [--json PATH]
                              [--profile N]

Runs real cycles (``syncd.reconcile.cycle.run_cycle``) against ``MemoryProvider`` and
``MemoryCalendar`` with a real SQLite state store in a temporary directory, and measures:

1. first sync: N seeded appointments into an empty calendar (plan + journal + apply + commits),
   then the echo cycle that reads syncd's own N creates back;
2. update: every appointment rescheduled at the provider, one cycle, then its echo cycle;
3. idle: a cycle with no changes at N links and at N/10 links, median of ``--repeat`` runs,
   with the backend requests it made, the records it loaded and the SQL statements it ran;
4. peak RSS of the process.

Phases are timed by wrapping engine functions (no profiler; see ``Probe``). It prints a table
and writes JSON; it reports, it does not gate: the exit status is 0 whether or not a target is
met. ``--profile N`` also runs cProfile over the four non-idle cycles and prints each one's top
N functions.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.machine import environment, load_average, peak_rss_mib
from bench.reconcile_probe import APPLY_PARTS, PLAN_APPLY, TOP_PHASES, Probe
from bench.reconcile_report import CYCLES, Profiles, profile_report, table, targets
from syncd.calendars.memory import MemoryCalendar
from syncd.ical import RenderOptions
from syncd.providers.memory import MemoryProvider
from syncd.reconcile.cycle import Result, Sync, run_cycle
from syncd.reconcile.policy import Policy
from syncd.reconcile.render import SyncRenderer
from syncd.state.store import Store

SCHEMA = 1
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "reconcile.json"
ZONE = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=ZONE)  # 10,000 bookings run past both 2026 DST changes
SYNC = "bench"
ACCOUNT = "shop"
CALENDAR = "cal"
BOOKINGS_A_DAY = 48  # MemoryProvider.seed: three staff, sixteen slots a day

# Top-level phases of a cycle, in order; "apply" contains render, calendar writes and commit.


# -- scenarios ---------------------------------------------------------------------------------


@dataclass
class Bench:
    """One sync over memory backends and a SQLite store in ``directory``."""

    n: int
    directory: Path
    probe: Probe
    provider: MemoryProvider = field(init=False)
    calendar: MemoryCalendar = field(init=False)
    store: Store = field(init=False)
    sync: Sync = field(init=False)

    def __post_init__(self) -> None:
        self.provider = MemoryProvider(ACCOUNT, now=lambda: NOW)
        self.calendar = MemoryCalendar(CALENDAR)
        self.store = Store(f"sqlite:///{self.directory / 'state.db'}")
        self.probe.count_sql(self.store)
        days = self.n // BOOKINGS_A_DAY + 2
        self.sync = Sync(
            policy=Policy(sync=SYNC, account=ACCOUNT, calendars=(CALENDAR,)),
            provider=self.provider,
            calendars={CALENDAR: self.calendar},
            renderer=SyncRenderer(ACCOUNT, RenderOptions(sync=SYNC)),
            window_past=timedelta(days=1),
            window_future=timedelta(days=days + 7),  # every seeded booking is in the window
        )
        self.provider.seed(self.n, NOW, rng_seed=2)

    async def cycle(self, profiler: cProfile.Profile | None = None) -> Measured:
        """One timed cycle; raises if it did not succeed, so no figure is of a failure."""
        self.probe.reset()
        self.provider.faults.reset_calls()
        self.calendar.faults.reset_calls()
        if profiler is not None:
            profiler.enable()
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            result = await run_cycle(self.store, self.sync, now=NOW)
        finally:
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if profiler is not None:
                profiler.disable()
        if result.status != "ok" or result.outcome.failed:
            raise RuntimeError(f"bench cycle did not succeed: {result.status} {result.error}")
        return Measured.of(self, result, wall, cpu)

    def reschedule_all(self, by: timedelta) -> None:
        for appointment in self.provider.appointments().values():
            self.provider.reschedule(
                appointment.native_id, appointment.start + by, appointment.end + by
            )

    def journal_rows(self) -> int:
        with self.store.engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM journal").scalar_one())


@dataclass
class Measured:
    """What one cycle cost."""

    appointments: int
    wall_s: float
    cpu_s: float
    actions: dict[str, int]
    provider_requests: int
    calendar_requests: int
    records_loaded: int
    sql_statements: int
    phases_wall_s: dict[str, float]
    phases_cpu_s: dict[str, float]

    @classmethod
    def of(cls, bench: Bench, result: Result, wall: float, cpu: float) -> Measured:
        probe = bench.probe
        phases_wall = {name: probe.wall[name] for name in (*TOP_PHASES, *APPLY_PARTS)}
        phases_wall["other"] = wall - sum(probe.wall[name] for name in TOP_PHASES)
        phases_cpu = {name: probe.cpu[name] for name in (*TOP_PHASES, "commit")}
        phases_cpu["other"] = cpu - sum(probe.cpu[name] for name in TOP_PHASES)
        return cls(
            appointments=bench.n,
            wall_s=wall,
            cpu_s=cpu,
            actions=result.plan.counts(),
            provider_requests=bench.provider.faults.total,
            calendar_requests=bench.calendar.faults.total,
            records_loaded=probe.records_loaded,
            sql_statements=probe.sql_statements,
            phases_wall_s=phases_wall,
            phases_cpu_s=phases_cpu,
        )

    def to_json(self) -> dict[str, Any]:
        plan_apply = sum(self.phases_wall_s[name] for name in PLAN_APPLY)
        plan_apply_cpu = sum(self.phases_cpu_s[name] for name in PLAN_APPLY)
        acted = sum(self.actions.values()) > 0  # an echo cycle plans nothing: no rate to give
        return {
            "appointments": self.appointments,
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "appointments_per_s": _rate(self.appointments, self.wall_s),
            "appointments_per_cpu_s": _rate(self.appointments, self.cpu_s),
            "plan_apply_wall_s": plan_apply,
            "plan_apply_cpu_s": plan_apply_cpu,
            "plan_apply_per_s": _rate(self.appointments, plan_apply) if acted else None,
            "plan_apply_per_cpu_s": _rate(self.appointments, plan_apply_cpu) if acted else None,
            "actions": self.actions,
            "provider_requests": self.provider_requests,
            "calendar_requests": self.calendar_requests,
            "records_loaded": self.records_loaded,
            "sql_statements": self.sql_statements,
            "phases_wall_s": self.phases_wall_s,
            "phases_cpu_s": self.phases_cpu_s,
        }


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


async def idle(big: Bench, small: Bench, repeat: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """``repeat`` cycles with nothing to do at each size, taken in turns (big, small, big, ...)
    so both sizes see the machine in the same state: a shared machine's speed drifts by a
    factor of two over seconds, which measuring one size after the other turned into the
    ratio. Medians of the times, and the largest count of each kind seen in any cycle (they
    are all the same when the engine is right)."""
    runs: dict[int, list[Measured]] = {id(big): [], id(small): []}
    for _ in range(repeat):
        for bench in (big, small):
            runs[id(bench)].append(await bench.cycle())
    return _idle_figures(big, runs[id(big)]), _idle_figures(small, runs[id(small)])


def _idle_figures(bench: Bench, runs: list[Measured]) -> dict[str, Any]:
    return {
        "links": bench.n,
        "repeat": len(runs),
        "cpu_s_median": statistics.median(r.cpu_s for r in runs),
        "wall_s_median": statistics.median(r.wall_s for r in runs),
        "cpu_s_all": [r.cpu_s for r in runs],
        "wall_s_all": [r.wall_s for r in runs],
        "requests": max(r.provider_requests + r.calendar_requests for r in runs),
        "provider_requests": max(r.provider_requests for r in runs),
        "calendar_requests": max(r.calendar_requests for r in runs),
        "records_loaded": max(r.records_loaded for r in runs),
        "actions": max(sum(r.actions.values()) for r in runs),
        "sql_statements": max(r.sql_statements for r in runs),
        "journal_rows": bench.journal_rows(),
    }


RUN_KEYS = (
    "cpu_s",
    "wall_s",
    "appointments_per_s",
    "appointments_per_cpu_s",
    "plan_apply_per_s",
    "plan_apply_per_cpu_s",
)


async def busy(
    bench: Bench, profiler: Callable[[str], cProfile.Profile | None] | None
) -> dict[str, Any]:
    """First sync, its echo, every appointment moved, its echo: each cycle's figures."""
    out: dict[str, Any] = {}
    for name in ("first_sync", "first_sync_echo"):
        out[name] = (await bench.cycle(profiler(name) if profiler else None)).to_json()
    bench.reschedule_all(timedelta(hours=1))
    for name in ("update", "update_echo"):
        out[name] = (await bench.cycle(profiler(name) if profiler else None)).to_json()
    return out


async def measure(
    n: int, repeat: int, profile: bool, runs: int = 5
) -> tuple[dict[str, Any], Profiles]:
    probe = Probe()
    profiles: Profiles = {}

    def profiler(name: str) -> cProfile.Profile | None:
        if not profile:
            return None
        return profiles.setdefault(name, cProfile.Profile())

    out: dict[str, Any] = {"schema": SCHEMA, "appointments": n, "repeat": repeat, "runs": runs}
    out["environment"] = environment()
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        # The figures: ``runs`` busy runs on fresh stores, probed per phase only; the run
        # with the median CPU time stands for each cycle. Then one run with the per-appointment
        # probes too, for the render and calendar-write times inside apply.
        measured: list[dict[str, dict[str, Any]]] = []
        bench: Bench | None = None
        for run in range(runs):
            with probe.installed(per_item=False):
                if bench is not None:
                    bench.store.close()
                bench = Bench(n, _subdirectory(tmp, f"run{run}"), probe)
                measured.append(await busy(bench, None))
        with probe.installed():
            detail = Bench(n, _subdirectory(tmp, "detail"), probe)
            parts = await busy(detail, profiler)
            detail.store.close()
        for name in CYCLES:
            chosen = sorted((m[name] for m in measured), key=lambda m: m["cpu_s"])[runs // 2]
            for part in ("render", "calendar_writes"):
                chosen["phases_wall_s"][part] = parts[name]["phases_wall_s"][part]
            out[name] = chosen
        out["all_runs"] = [
            {name: {key: m[name][key] for key in RUN_KEYS} for name in CYCLES} for m in measured
        ]
        assert bench is not None
        with probe.installed(per_item=False):
            small = Bench(max(1, n // 10), _subdirectory(tmp, "small"), probe)
            await small.cycle()  # first sync
            await small.cycle()  # its echo; from here on nothing changes
            out["idle"], out["idle_small"] = await idle(bench, small, repeat)
            bench.store.close()
            small.store.close()

    big_cpu, small_cpu = out["idle"]["cpu_s_median"], out["idle_small"]["cpu_s_median"]
    out["idle_cpu_ratio"] = big_cpu / small_cpu if small_cpu > 0 else None
    big_wall, small_wall = out["idle"]["wall_s_median"], out["idle_small"]["wall_s_median"]
    out["idle_wall_ratio"] = big_wall / small_wall if small_wall > 0 else None
    out["peak_rss_mib"] = peak_rss_mib()
    out["load_average_after"] = load_average()
    out["targets"] = targets(out)
    return out, profiles


def _subdirectory(parent: str, name: str) -> Path:
    path = Path(parent, name)
    path.mkdir()
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reconcile", description=(__doc__ or "").split("\n", 1)[0]
    )
    parser.add_argument("--appointments", type=int, default=10_000, help="default: 10000")
    parser.add_argument(
        "--repeat", type=int, default=11, help="idle cycles to take the median of (default: 11)"
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=5,
        help=(
            "busy runs on fresh stores; each cycle's table shows its median run, each target "
            "figure is its own median (default: 5)"
        ),
    )
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help="default: bench/results/reconcile.json"
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also cProfile the non-idle cycles and print each one's top N functions",
    )
    args = parser.parse_args(argv)
    if args.appointments < 10:
        parser.error("--appointments must be at least 10")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.profile < 0:
        parser.error("--profile must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out, profiles = asyncio.run(
        measure(args.appointments, args.repeat, args.profile > 0, args.runs)
    )
    print(table(out))
    if profiles:
        print(profile_report(profiles, args.profile))
        print("(profiled cycles run slower: their figures above include cProfile's overhead)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0  # a benchmark reports; it does not gate


if __name__ == "__main__":
    sys.exit(main())
