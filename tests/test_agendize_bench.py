"""``python -m bench.agendize_pull`` runs tiny and reports every figure it promises.

Counts are checked, timings only for their type: how fast this machine is says nothing about
whether the code is right. The counts are the promises: a full pull pages through the listing,
the first sync creates every event, and an idle cycle costs exactly one listing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
N, PAGE = 60, 25


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench") / "figures.json"
    args = ["--appointments", str(N), "--page-size", str(PAGE), "--json", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "bench.agendize_pull", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, json.loads(out.read_text())


def _seconds(value: Any) -> bool:
    return isinstance(value, float) and value >= 0


def test_the_full_pull_pages_through_the_listing(run: tuple[str, dict[str, Any]]) -> None:
    _, data = run
    assert (data["appointments"], data["page_size"]) == (N, PAGE)
    pull = data["pull"]
    assert (pull["items"], pull["complete"]) == (N, True)
    assert pull["requests"] == {"list": 3}
    assert all(_seconds(pull[key]) for key in ("seconds", "sandbox_seconds"))
    assert pull["appointments_per_s"] > 0


def test_the_first_sync_creates_every_event_and_its_echo_does_nothing(
    run: tuple[str, dict[str, Any]],
) -> None:
    _, data = run
    first = data["first_sync"]
    assert (first["created"], first["events"]) == (N, N)
    assert first["requests"] == {"list": 3}
    assert data["echo_actions"] == 0


def test_an_idle_cycle_is_one_request(run: tuple[str, dict[str, Any]]) -> None:
    stdout, data = run
    assert data["idle"] == {**data["idle"], "requests": {"list": 1}, "actions": 0}
    assert _seconds(data["idle"]["seconds"])
    assert data["peak_rss_mib"] > 0
    assert "idle requests       list x1" in stdout
    assert "written to" in stdout
