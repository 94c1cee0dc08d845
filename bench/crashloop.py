"""Crash loop: real syncd processes killed with SIGKILL at random moments, then a reckoning.

    python -m bench.crashloop [--kills 200] [--seed 1] [--json PATH] [--keep]

Issue 9, acceptance item 1; DESIGN.md section 6, promises 1 and 2. The world is three real
processes on loopback, none of them syncd, whose state outlives every kill:

* the OnlineAfspraken sandbox (``syncd sandbox onlineafspraken``), 200 seeded appointments;
* Radicale with two calendars: ``team`` (syncd writes the appointments there) and
  ``private`` (a person's own events, which syncd turns into busy placeholders at the
  provider: the one place syncd *creates* things at the provider);
* two ``FaultProxy``s, one in front of each server, through which syncd talks to them.

Meanwhile a business thread books, moves, cancels and hard-deletes appointments through the
sandbox's ``/_admin`` routes and adds, moves and removes private events, every few tenths of
a second. The loop starts ``syncd sync`` (now and then ``--full``, which finds hard deletes)
or ``syncd run`` and kills it with SIGKILL, in one of three ways:

``time``          after a random time, anywhere in its life (start-up, pulls, writes, commits);
``write-before``  when its n-th write (CalDAV PUT/DELETE, OnlineAfspraken setAppointment, ...)
                  reaches a proxy, which then drops it: the server never sees the write;
``write-after``   at its n-th write too, but the proxy passes the write on: the server applies
                  it and syncd never hears. This is the hard case for idempotence.

A process that finishes before its kill counts as a run, not a kill; the loop goes on until
the wanted number of kills. Then the business stops, two clean runs (``--full``, then
incremental until nothing changes) let syncd settle, and calendar and provider are compared:

``lost``        an appointment (or a private event) with no event (no busy placeholder);
``duplicates``  an appointment with two or more events; a private event with two or more
                placeholders;
``diverged``    an event with the wrong start, end or status (including an event left for an
                appointment that no longer exists);
``orphans``     a busy placeholder at the provider with no private event behind it.

Target: all zero. It prints a table and writes the figures as JSON, by default to
``bench/results/crashloop.json`` (git-ignored). The exit status is 0 when all four are zero.
``tests/test_crashloop.py`` runs the same loop with 20 kills.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from bench.crashloop_world import (
    Business,
    Trigger,
    acting,
    config_text,
    start_sandbox,
    syncd_command,
)
from tests.fault_kit import BUSY_TYPE, busy_mismatches, mismatches, read_events, read_spans
from tests.servers import PASSWORD, DavServer, FaultProxy, free_port, start_radicale

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "crashloop.json"
KILL_MODES = ("time", "write-before", "write-after")
RUN_LIMIT = 120.0  # seconds a single syncd process may take before the loop gives up on it
SETTLE_RUNS = 6


@dataclass
class Figures:
    lost: int = 0
    duplicates: int = 0
    diverged: int = 0
    orphans: int = 0
    details: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicates or self.diverged or self.orphans)


@dataclass
class Report:
    kills: int = 0
    runs_finished: int = 0
    by_mode: Counter[str] = field(default_factory=Counter)
    by_command: Counter[str] = field(default_factory=Counter)
    exit_codes: Counter[str] = field(default_factory=Counter)
    business: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    figures: Figures = field(default_factory=Figures)
    appointments: int = 0
    events: int = 0
    placeholders: int = 0
    private_events: int = 0
    settle_runs: int = 0
    seconds: float = 0.0
    timeline: list[str] = field(default_factory=list)


class Loop:
    """One world: sandbox, Radicale, proxies, the config; ``run`` kills syncd ``kills`` times."""

    def __init__(
        self, folder: Path, seed: int, appointments: int = 200, daemon_share: float = 0.25
    ) -> None:
        self.folder = folder
        self.rng = random.Random(seed)
        self.daemon_share = daemon_share
        self.report = Report()
        self.sandbox = start_sandbox(folder, seed, appointments)
        self.radicale: DavServer | None = None
        self.proxies: list[FaultProxy] = []
        try:
            (folder / "radicale").mkdir()
            self.radicale = start_radicale(folder / "radicale")
            self.team = self.radicale.new_collection("team")
            self.private = self.radicale.new_collection("private")
            self.trigger = Trigger()
            for upstream in (self.sandbox.url, self.radicale.base_url):
                proxy = FaultProxy(upstream)
                proxy.hook = self.trigger
                self.proxies.append(proxy)
            dav = self.proxies[1]
            self.config = folder / "config.toml"
            self.port = free_port()
            self.config.write_text(
                config_text(
                    folder, self.proxies[0].url, dav.at(self.team), dav.at(self.private), self.port
                )
            )
        except BaseException:
            self.close()
            raise
        self.business = Business(self.sandbox, self.private, random.Random(seed + 1))
        self.env = {
            **os.environ,
            "OA_KEY": self.sandbox.api_key,
            "OA_SECRET": self.sandbox.api_secret,
            "CALDAV_PASSWORD": PASSWORD,
            "PYTHONUNBUFFERED": "1",
        }
        self.typical = 4.0  # seconds the last finished ``syncd sync`` took; kills aim there

    def close(self) -> None:
        for proxy in self.proxies:
            proxy.close()
        if self.radicale is not None:
            self.radicale.stop()
        self.sandbox.stop()

    # -- one process -------------------------------------------------------------------------

    def start(self, *args: str) -> subprocess.Popen[str]:
        log = self.folder / "syncd.log"
        with open(log, "a") as sink:
            sink.write(f"\n--- {' '.join(args)}\n")
            sink.flush()
            return subprocess.Popen(
                syncd_command(*args, "-c", str(self.config)),
                cwd=self.folder,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                text=True,
            )

    def one(self) -> bool:
        """Start one syncd process and end it; True when it was killed while alive."""
        daemon = self.rng.random() < self.daemon_share
        if daemon:
            command = "run"
            args: tuple[str, ...] = ("run",)
        else:
            command = "sync --full" if self.rng.random() < 0.2 else "sync"
            args = tuple(command.split())
        mode = self.rng.choice(KILL_MODES)
        limit = (6.0 if daemon else self.typical * 1.2) + 0.5
        delay = self.rng.uniform(0.3, limit)
        started = time.monotonic()
        process = self.start(*args)
        if mode != "time":
            self.trigger.arm(process, self.rng.choice((1, 1, 2, 3)), after=mode == "write-after")
        try:
            code = process.wait(timeout=delay if mode == "time" or daemon else RUN_LIMIT)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            self.trigger.disarm()
        killed = code is None or (mode != "time" and self.trigger.fired)
        if code is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
        took = round(time.monotonic() - started, 2)
        outcome = "killed" if killed else f"exit {code}"
        self.report.timeline.append(f"{command} [{mode}] {took} s: {outcome}")
        if killed:
            self.report.kills += 1
            self.report.by_mode[mode if self.trigger.fired or mode == "time" else "time"] += 1
            self.report.by_command[command] += 1
        else:
            self.report.runs_finished += 1
            self.report.exit_codes[str(code)] += 1
            if not daemon:
                self.typical = time.monotonic() - started
        return killed

    # -- the whole loop ----------------------------------------------------------------------

    def run(self, kills: int, pause: float = 0.4, progress: bool = False) -> Report:
        began = time.monotonic()
        errors: list[str] = []
        attempts = 0
        with acting(self.business, pause, errors):
            while self.report.kills < kills and attempts < kills * 4:
                attempts += 1
                if self.one() and progress:
                    print(
                        f"\rkills: {self.report.kills}/{kills}", end="", file=sys.stderr, flush=True
                    )
        if progress:
            print(file=sys.stderr)
        self.report.problems += errors
        if self.report.kills < kills:
            self.report.problems.append(f"only {self.report.kills} kills in {attempts} attempts")
        self.settle()
        self.report.business = Counter(self.business.done)
        self.report.figures = self.reckon()
        self.report.seconds = round(time.monotonic() - began, 1)
        return self.report

    def settle(self) -> None:
        """Clean runs until one changes nothing: a full one first, to find hard deletes."""
        for attempt in range(SETTLE_RUNS):
            args = ("sync", "--full") if attempt == 0 else ("sync",)
            process = self.start(*args)
            try:
                code = process.wait(timeout=RUN_LIMIT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                self.report.problems.append("a settling run did not finish")
                return
            self.report.settle_runs += 1
            status = self.status()
            if code != 0:
                self.report.problems.append(f"settling run {attempt} exited {code}")
                continue
            last = status.get("last_run") or {}
            if (
                attempt
                and not any((last.get("counts") or {}).values())
                and not status.get("pending_actions")
            ):
                return
        self.report.problems.append(f"syncd did not settle in {SETTLE_RUNS} runs")

    def status(self) -> dict[str, Any]:
        found = subprocess.run(
            syncd_command("status", "--json", "-c", str(self.config)),
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        data = json.loads(found.stdout or "[]")
        rows = data if isinstance(data, list) else data.get("syncs", [])
        for row in rows:
            if row.get("sync") == "salon":
                return dict(row)
        return {}

    # -- the reckoning -----------------------------------------------------------------------

    def reckon(self) -> Figures:
        """Calendar against provider, with ``tests.fault_kit``'s reckoning (no syncd code reads
        the calendar: one REPORT, parsed with icalendar)."""
        bookings = self.business.bookings()
        events = read_events(self.team)
        sources = read_spans(self.private)
        found = mismatches(bookings, events)
        busy_mismatches(bookings, sources, found)
        self.report.appointments = sum(
            1 for b in bookings if b["type_id"] != BUSY_TYPE and b["agenda_id"] == 1
        )
        self.report.events = len(events)
        self.report.placeholders = sum(
            1 for b in bookings if b["type_id"] == BUSY_TYPE and b["status"] == 1
        )
        self.report.private_events = len(sources)
        return Figures(
            lost=found.total("lost"),
            duplicates=found.total("duplicates"),
            diverged=found.total("diverged"),
            orphans=found.total("orphans"),
            details={key: n for key, n in sorted(found.counts.items()) if "." in key},
            examples=found.examples,
        )


# -- output --------------------------------------------------------------------------------------


def as_json(report: Report, seed: int) -> dict[str, Any]:
    figures = report.figures
    return {
        "schema": 1,
        "seed": seed,
        "kills": report.kills,
        "kills_by_mode": dict(report.by_mode),
        "kills_by_command": dict(report.by_command),
        "runs_finished": report.runs_finished,
        "exit_codes_of_finished_runs": dict(report.exit_codes),
        "settle_runs": report.settle_runs,
        "business": dict(report.business),
        "final": {
            "appointments": report.appointments,
            "events": report.events,
            "busy_placeholders": report.placeholders,
            "private_events": report.private_events,
        },
        "lost": figures.lost,
        "duplicates": figures.duplicates,
        "diverged": figures.diverged,
        "orphans": figures.orphans,
        "details": figures.details,
        "examples": figures.examples,
        "problems": report.problems,
        "seconds": report.seconds,
        "timeline": report.timeline,
        "environment": {
            "python": platform.python_version(),
            "system": platform.platform(),
            "cpus": os.cpu_count(),
            "date": date.today().isoformat(),
        },
    }


def table(data: dict[str, Any]) -> str:
    lines = [
        f"crash loop: {data['kills']} SIGKILLs ({_pairs(data['kills_by_mode'])}), "
        f"{data['runs_finished']} runs finished unkilled, {data['seconds']} s",
        f"  processes killed: {_pairs(data['kills_by_command'])}",
        f"  business: {_pairs(data['business'])}",
        "  at the end: {appointments} appointments, {events} events, {busy_placeholders} busy "
        "placeholders for {private_events} private events".format(**data["final"]),
        "",
        f"  {'':<12}{'count':>6}   target",
    ]
    for key in ("lost", "duplicates", "diverged", "orphans"):
        verdict = "PASS" if data[key] == 0 else "MISS"
        lines.append(f"  {key:<12}{data[key]:>6}   0 {verdict}")
    for example in data["examples"]:
        lines.append(f"    {example}")
    for problem in data["problems"]:
        lines.append(f"  problem: {problem}")
    return "\n".join(lines)


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counts.items())) or "none"


def crashloop(
    kills: int, seed: int, folder: Path, appointments: int = 200, progress: bool = False
) -> dict[str, Any]:
    """Run the loop in ``folder`` and return the figures (``as_json``)."""
    loop = Loop(folder, seed, appointments)
    try:
        report = loop.run(kills, progress=progress)
    finally:
        loop.business.close()
        loop.close()
    return as_json(report, seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=200, help="SIGKILLs to deliver (default 200)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--appointments", type=int, default=200, help="seeded at the sandbox (default 200)"
    )
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help="default: bench/results/crashloop.json"
    )
    parser.add_argument("--keep", action="store_true", help="keep the working folder and print it")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="syncd-crashloop-"))
    try:
        data = crashloop(args.kills, args.seed, folder, args.appointments, progress=True)
    finally:
        if args.keep:
            print(f"working folder: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print(table(data))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2) + "\n")
    print(f"figures written to {args.json}")
    clean = not any(data[k] for k in ("lost", "duplicates", "diverged", "orphans"))
    return 0 if clean and not data["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
