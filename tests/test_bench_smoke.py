"""The reconcile bench runs end to end at a tiny size and writes every figure it promises.

Only types and counts are checked, never timings: how fast a machine is says nothing about
whether the code is right. The counts are the idle cycle's promise (DESIGN section 6): one
provider pull, one calendar ``changes`` call, no records loaded, at any number of links.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CYCLES = ("first_sync", "first_sync_echo", "update", "update_echo")
N = 200


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench") / "reconcile.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.reconcile",
            "--appointments",
            str(N),
            "--repeat",
            "2",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, json.loads(out.read_text())


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def test_every_cycle_has_its_figures(run: tuple[str, dict[str, Any]]) -> None:
    _, data = run
    assert data["appointments"] == N
    assert data["repeat"] == 2
    for name in CYCLES:
        cycle = data[name]
        for key in ("wall_s", "cpu_s", "appointments_per_s", "appointments_per_cpu_s"):
            assert _number(cycle[key]), (name, key)
        assert set(cycle["phases_wall_s"]) >= {
            "pull",
            "views",
            "load_records",
            "plan",
            "journal",
            "apply",
            "render",
            "calendar_writes",
            "commit",
            "other",
        }
        assert all(isinstance(v, float) for v in cycle["phases_wall_s"].values())
        assert all(isinstance(v, float) for v in cycle["phases_cpu_s"].values())
        assert cycle["appointments"] == N
        for key in ("provider_requests", "calendar_requests", "records_loaded", "sql_statements"):
            assert isinstance(cycle[key], int), (name, key)


def test_first_sync_and_update_touch_every_appointment(run: tuple[str, dict[str, Any]]) -> None:
    _, data = run
    first, update = data["first_sync"], data["update"]
    assert first["actions"]["create"] == N
    assert first["calendar_requests"] == 1 + N  # one changes call, one create per appointment
    assert first["records_loaded"] == 0  # a first sync has nothing stored to load
    assert update["actions"]["update"] == N
    assert "create" not in update["actions"]  # every event is updated in place
    assert update["records_loaded"] == N
    for name in ("first_sync", "update"):
        assert _number(data[name]["plan_apply_per_s"])
        assert _number(data[name]["plan_apply_per_cpu_s"])
    for name in ("first_sync_echo", "update_echo"):
        assert data[name]["actions"] == {}  # reading our own writes back changes nothing
        assert data[name]["plan_apply_per_s"] is None


def test_idle_cycle_does_no_per_appointment_work(run: tuple[str, dict[str, Any]]) -> None:
    _, data = run
    big, small = data["idle"], data["idle_small"]
    assert big["links"] == N
    assert small["links"] == N // 10
    for idle in (big, small):
        assert idle["repeat"] == 2
        assert idle["requests"] == 2
        assert idle["provider_requests"] == 1
        assert idle["calendar_requests"] == 1
        assert idle["records_loaded"] == 0
        assert idle["actions"] == 0
        assert _number(idle["cpu_s_median"])
        assert _number(idle["wall_s_median"])
        assert len(idle["cpu_s_all"]) == 2
    assert big["sql_statements"] == small["sql_statements"]
    assert _number(data["idle_cpu_ratio"])
    assert _number(data["idle_wall_ratio"])


def test_busy_figures_are_the_median_of_several_runs(run: tuple[str, dict[str, Any]]) -> None:
    _, data = run
    assert data["runs"] == 5
    assert len(data["all_runs"]) == 5
    for name in CYCLES:
        cpu = sorted(r[name]["cpu_s"] for r in data["all_runs"])
        assert data[name]["cpu_s"] == cpu[2]  # the median run stands for the cycle
        assert all(_number(r[name]["appointments_per_cpu_s"]) for r in data["all_runs"])
    targets = {t["name"]: t["measured"] for t in data["targets"]}
    for name, label in (("first_sync", "first sync"), ("update", "update")):
        for key, clock in (("plan_apply_per_s", "wall"), ("plan_apply_per_cpu_s", "CPU")):
            each = sorted(r[name][key] for r in data["all_runs"])
            # each clock's target figure is its own median, not the median-CPU run's
            assert targets[f"{label}: plan + journal + apply, appointments/s ({clock})"] == each[2]


def test_report_names_each_target(run: tuple[str, dict[str, Any]]) -> None:
    stdout, data = run
    assert _number(data["peak_rss_mib"])
    assert data["peak_rss_mib"] > 0
    assert isinstance(data["environment"]["python"], str)
    assert _number(data["environment"]["calibration_ms"])
    targets = {t["name"]: t for t in data["targets"]}
    assert len(targets) == 8  # plan + apply for two cycles by two clocks, four idle counts
    lines = stdout.splitlines()
    for name, target in targets.items():
        assert isinstance(target["target"], str)
        assert isinstance(target["pass"], bool)
        printed = [line for line in lines if line.startswith(name)]
        assert len(printed) == 1, name
        assert printed[0].endswith("PASS" if target["pass"] else "MISS")
    # Counts, not timings: these hold on any machine.
    assert targets["idle cycle: backend requests"]["pass"] is True
    assert targets["idle cycle: records loaded"]["pass"] is True
