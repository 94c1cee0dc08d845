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
import functools
import inspect
import io
import json
import os
import platform
import pstats
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event

from syncd.calendars.memory import MemoryCalendar
from syncd.ical import RenderOptions
from syncd.providers.memory import MemoryProvider
from syncd.reconcile import cycle
from syncd.reconcile.apply import Applier
from syncd.reconcile.cycle import Result, Sync, run_cycle
from syncd.reconcile.policy import Policy
from syncd.reconcile.render import SyncRenderer
from syncd.state.store import Store

SCHEMA = 1
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "reconcile.json"
TARGET_PER_S = 5000.0  # issue 2: >= 5,000 appointments/s plan + apply
IDLE_RATIO_LIMIT = 1.5  # idle CPU at N links / at N/10 links; "no per-appointment work" ~ 1.0
ZONE = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=ZONE)  # 10,000 bookings run past both 2026 DST changes
SYNC = "bench"
ACCOUNT = "shop"
CALENDAR = "cal"
BOOKINGS_A_DAY = 48  # MemoryProvider.seed: three staff, sixteen slots a day

# Top-level phases of a cycle, in order; "apply" contains render, calendar writes and commit.
TOP_PHASES = ("pull", "views", "load_records", "plan", "journal", "apply")
APPLY_PARTS = ("render", "calendar_writes", "commit")
PLAN_APPLY = ("plan", "journal", "apply")


# -- instrumentation ---------------------------------------------------------------------------


@dataclass
class Probe:
    """Time per phase, rows loaded by ``Store.records``, SQL statements run.

    Installs itself by replacing engine functions with timing wrappers for the bench's
    lifetime (``installed()``); the engine files are not touched. Phases called a few times a
    cycle get wall and CPU time; the parts called once per appointment (render, calendar
    writes) get wall time only, because ``process_time()`` costs ~2 us a call and would
    distort what it measures.
    """

    wall: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    cpu: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    records_loaded: int = 0
    sql_statements: int = 0

    def reset(self) -> None:
        self.wall.clear()
        self.cpu.clear()
        self.records_loaded = 0
        self.sql_statements = 0

    def _timed(self, label: str, func: Callable[..., Any], cpu: bool) -> Callable[..., Any]:
        wall_spent, cpu_spent = self.wall, self.cpu
        clock = time.process_time if cpu else _no_clock
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                begin, begin_cpu = time.perf_counter(), clock()
                try:
                    return await func(*args, **kwargs)
                finally:
                    wall_spent[label] += time.perf_counter() - begin
                    cpu_spent[label] += clock() - begin_cpu

            return timed_async

        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            begin, begin_cpu = time.perf_counter(), clock()
            try:
                result = func(*args, **kwargs)
            finally:
                wall_spent[label] += time.perf_counter() - begin
                cpu_spent[label] += clock() - begin_cpu
            if label == "load_records":
                self.records_loaded += len(result)
            return result

        return timed

    @contextmanager
    def installed(self, per_item: bool = True) -> Iterator[None]:
        """Wrap the engine's phases; ``per_item`` also wraps the functions called once per
        appointment (render, calendar writes), whose wrappers cost a few percent."""
        targets: list[tuple[Any, str, str, bool]] = [
            (MemoryProvider, "pull", "pull", True),
            (MemoryCalendar, "changes", "pull", True),
            (cycle, "provider_view", "views", True),
            (cycle, "calendar_view", "views", True),
            (Store, "records", "load_records", True),
            (cycle, "plan", "plan", True),
            (Store, "journal", "journal", True),
            (Applier, "run", "apply", True),
            (SyncRenderer, "render", "render", False),
            (MemoryCalendar, "create", "calendar_writes", False),
            (MemoryCalendar, "update", "calendar_writes", False),
            (MemoryCalendar, "delete", "calendar_writes", False),
            (Store, "commit", "commit", True),
        ]
        if not per_item:
            targets = [t for t in targets if t[3]]  # the per-appointment ones get no CPU clock
        for owner, name, _, _ in targets:
            if name not in vars(owner):
                raise RuntimeError(f"bench probe: {owner.__name__}.{name} is gone; update Probe")
        saved = [(owner, name, vars(owner)[name]) for owner, name, _, _ in targets]
        try:
            for owner, name, label, cpu in targets:
                setattr(owner, name, self._timed(label, vars(owner)[name], cpu))
            yield
        finally:
            for owner, name, original in saved:
                setattr(owner, name, original)

    def count_sql(self, store: Store) -> None:
        def before(*_args: Any) -> None:
            self.sql_statements += 1

        event.listen(store.engine, "before_cursor_execute", before)


def _no_clock() -> float:
    return 0.0


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


async def idle(bench: Bench, repeat: int) -> dict[str, Any]:
    """``repeat`` cycles with nothing to do: medians of the times, and the largest count of
    each kind seen in any of them (they are all the same when the engine is right)."""
    runs = [await bench.cycle() for _ in range(repeat)]
    return {
        "links": bench.n,
        "repeat": repeat,
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
            out["idle"] = await idle(bench, repeat)
            bench.store.close()
            small = Bench(max(1, n // 10), _subdirectory(tmp, "small"), probe)
            await small.cycle()  # first sync
            await small.cycle()  # its echo; from here on nothing changes
            out["idle_small"] = await idle(small, repeat)
            small.store.close()

    big_cpu, small_cpu = out["idle"]["cpu_s_median"], out["idle_small"]["cpu_s_median"]
    out["idle_cpu_ratio"] = big_cpu / small_cpu if small_cpu > 0 else None
    big_wall, small_wall = out["idle"]["wall_s_median"], out["idle_small"]["wall_s_median"]
    out["idle_wall_ratio"] = big_wall / small_wall if small_wall > 0 else None
    out["peak_rss_mib"] = peak_rss_mib()
    out["load_average_after"] = _load_average()
    out["targets"] = targets(out)
    return out, profiles


Profiles = dict[str, cProfile.Profile]


def _subdirectory(parent: str, name: str) -> Path:
    path = Path(parent, name)
    path.mkdir()
    return path


def environment() -> dict[str, Any]:
    """Where the figures come from. ``calibration_ms`` is the best of five runs of a fixed
    pure-Python loop: divide it out to compare figures taken on different machines."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": platform.system(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_before": _load_average(),
        "calibration_ms": calibration_ms(),
    }


def calibration_ms() -> float:
    best = float("inf")
    for _ in range(5):
        begin = time.process_time()
        sum(range(1_000_000))
        best = min(best, time.process_time() - begin)
    return best * 1000


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:  # not available on this platform
        return None


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


def run_median(out: dict[str, Any], cycle: str, key: str) -> float | None:
    """The median of ``key`` over the busy runs of ``cycle``; None when no run has it."""
    values = [r[cycle][key] for r in out["all_runs"] if r[cycle][key] is not None]
    return statistics.median(values) if values else None


def targets(out: dict[str, Any]) -> list[dict[str, Any]]:
    """Each figure the issue sets a target for, with the target and whether it was met."""
    rows: list[tuple[str, str, Any, bool]] = []
    at_least = f">= {TARGET_PER_S:,.0f}"
    for cycle_name, label in (("first_sync", "first sync"), ("update", "update")):
        # The figure is plan + apply; whole cycles (with the pulls and, for an update,
        # loading every record) are in the table above, not judged here. Each clock's figure
        # is its own median over the runs: the run with the median CPU time can still have
        # an outlying wall time (a checkpoint's fsync, a busy neighbour), and one run must
        # neither make nor break a target.
        for key, clock in (("plan_apply_per_s", "wall"), ("plan_apply_per_cpu_s", "CPU")):
            name = f"{label}: plan + journal + apply, appointments/s ({clock})"
            figure = run_median(out, cycle_name, key)
            rows.append((name, at_least, figure, figure is not None and figure >= TARGET_PER_S))
    big, small = out["idle"], out["idle_small"]
    both = (big, small)
    rows.append(
        (
            "idle cycle: backend requests",
            "== 2 (1 pull, 1 changes)",
            big["requests"],
            all(i["provider_requests"] == 1 and i["calendar_requests"] == 1 for i in both),
        )
    )
    rows.append(
        (
            "idle cycle: records loaded",
            "== 0",
            big["records_loaded"],
            all(i["records_loaded"] == 0 for i in both),
        )
    )
    rows.append(
        (
            f"idle cycle: SQL statements at {big['links']:,} vs {small['links']:,} links",
            "equal",
            f"{big['sql_statements']} vs {small['sql_statements']}",
            big["sql_statements"] == small["sql_statements"],
        )
    )
    ratio = out["idle_cpu_ratio"]
    rows.append(
        (
            f"idle cycle: CPU at {big['links']:,} / at {small['links']:,} links",
            f"<= {IDLE_RATIO_LIMIT} (~1.0)",
            ratio,
            ratio is not None and ratio <= IDLE_RATIO_LIMIT,
        )
    )
    return [
        {"name": name, "target": target, "measured": measured, "pass": ok}
        for name, target, measured, ok in rows
    ]


# -- output ------------------------------------------------------------------------------------

CYCLES = ("first_sync", "first_sync_echo", "update", "update_echo")
LABEL = 28
CELL = 20


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(out: dict[str, Any]) -> str:
    env = out["environment"]
    lines = [
        f"syncd reconcile bench: {out['appointments']:,} appointments, memory backends, "
        "SQLite state store (WAL) in a temp dir",
        f"Python {env['python']} on {env['system']} {env['machine']}, {env['cpus']} CPUs, "
        f"load average {_number(env['load_average_before'])} before, "
        f"{_number(out['load_average_after'])} after; "
        f"calibration sum(range(10**6)): {env['calibration_ms']:.1f} ms CPU",
        "",
    ]
    header = f"{'cycle':<{LABEL}}" + "".join(f"{name:>{CELL}}" for name in CYCLES)
    lines += [header, "-" * len(header)]

    def row(label: str, cell: Callable[[dict[str, Any]], str]) -> None:
        lines.append(f"{label:<{LABEL}}" + "".join(f"{cell(out[c]):>{CELL}}" for c in CYCLES))

    def phase(name: str) -> Callable[[dict[str, Any]], str]:
        def cell(m: dict[str, Any]) -> str:
            cpu = m["phases_cpu_s"].get(name)
            wall = _ms(m["phases_wall_s"][name])
            return f"{wall} / {_ms(cpu)}" if cpu is not None else wall

        return cell

    row("wall / CPU, ms", lambda m: f"{_ms(m['wall_s'])} / {_ms(m['cpu_s'])}")
    row("appointments/s wall / CPU", lambda m: _pair(m, "appointments_per_s", "_per_cpu_s"))
    row("  plan+journal+apply only", lambda m: _pair(m, "plan_apply_per_s", "_per_cpu_s"))
    row("actions", lambda m: f"{sum(m['actions'].values()):,}")
    row("records loaded", lambda m: f"{m['records_loaded']:,}")
    row("backend requests", lambda m: f"{m['provider_requests'] + m['calendar_requests']:,}")
    row("SQL statements", lambda m: f"{m['sql_statements']:,}")
    for name in ("first_sync", "update"):
        for key, clock in (("plan_apply_per_s", "wall"), ("plan_apply_per_cpu_s", "CPU")):
            each = " / ".join(f"{r[name][key]:,.0f}" for r in out["all_runs"])
            lines.append(f"  {name} plan+journal+apply, appointments/s {clock}, each run: {each}")
    lines.append(
        f"(each cycle above is the run with the median CPU time of {out['runs']}; the targets "
        "below take each figure's own median; render and calendar_writes come from one more "
        "run with per-appointment probes)"
    )
    lines.append("phases, ms wall / CPU:")
    for name in (*TOP_PHASES, "other"):
        row(f"  {name}", phase(name))
        if name == "apply":
            for part in APPLY_PARTS:
                row(f"    {part}", phase(part))

    small, big = out["idle_small"], out["idle"]
    lines.append("")
    header = f"{'idle cycle, median of ' + str(big['repeat']):<{LABEL}}"
    header += f"{small['links']:>{CELL - 6},} links{big['links']:>{CELL - 6},} links"
    lines += [header, "-" * len(header)]
    for label, key, fmt in (
        ("CPU, ms", "cpu_s_median", _ms),
        ("wall, ms", "wall_s_median", _ms),
        ("provider requests", "provider_requests", _number),
        ("calendar requests", "calendar_requests", _number),
        ("records loaded", "records_loaded", _number),
        ("actions", "actions", _number),
        ("SQL statements", "sql_statements", _number),
        ("journal rows in the table", "journal_rows", _number),
    ):
        lines.append(f"{label:<{LABEL}}{fmt(small[key]):>{CELL}}{fmt(big[key]):>{CELL}}")
    lines.append(f"{'CPU ratio':<{LABEL}}{'':>{CELL}}{_number(out['idle_cpu_ratio']):>{CELL}}")
    lines.append(f"{'wall ratio':<{LABEL}}{'':>{CELL}}{_number(out['idle_wall_ratio']):>{CELL}}")
    lines += ["", f"peak RSS: {out['peak_rss_mib']:,.1f} MiB", ""]

    width = max(len(t["name"]) for t in out["targets"])
    lines.append(f"{'target':<{width}}  {'wanted':>24}  {'measured':>12}  result")
    for t in out["targets"]:
        verdict = "PASS" if t["pass"] else "MISS"
        measured = _number(t["measured"])
        lines.append(f"{t['name']:<{width}}  {t['target']:>24}  {measured:>12}  {verdict}")
    return "\n".join(lines)


def _pair(m: dict[str, Any], key: str, cpu_suffix: str) -> str:
    cpu_key = key.removesuffix("_per_s") + cpu_suffix
    if m[key] is None:
        return "-"
    return f"{m[key]:,.0f} / {m[cpu_key]:,.0f}"


def profile_report(profiles: Profiles, top: int) -> str:
    buffer = io.StringIO()
    for name, profiler in profiles.items():
        buffer.write(f"\n=== cProfile of the {name} cycle: top {top} by cumulative time ===\n")
        stats = pstats.Stats(profiler, stream=buffer)
        stats.sort_stats("cumulative").print_stats(top)
        buffer.write(f"=== {name}: top {top} by own time ===\n")
        stats.sort_stats("tottime").print_stats(top)
    return buffer.getvalue()


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
