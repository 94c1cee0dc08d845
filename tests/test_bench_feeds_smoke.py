"""The feed bench runs end to end at a tiny size and writes every figure it promises.

It starts syncd's web server and a real Radicale, so it is slow. Only types, counts and
statuses are checked, never timings: a 304 loop must have been answered with 304s (counted
by the client), the cached 200s with gzip 200s, and Radicale must hold the feed's events.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
N = 50
REQUESTS = 150
LOOPS = ("get_200", "get_200_sequential", "get_304", "get_304_sequential")


def _bench(out: Path, *args: str) -> tuple[str, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.feeds", "--quiet", "--json", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, json.loads(out.read_text())


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("radicale-cache")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> tuple[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench") / "feeds.json"
    args = ("--events", str(N), "--requests", str(REQUESTS), "--seconds", "10", "--repeat", "2")
    return _bench(out, *args, "--radicale-cache", str(cache))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _loop_figures(loop: dict[str, Any]) -> None:
    for key in ("requests", "clients"):
        assert isinstance(loop[key], int), key
    for key in ("seconds", "requests_per_s", "client_cpu_s", "client_cpu_share"):
        assert _number(loop[key]), key
    assert loop["requests"] > 0
    assert loop["requests"] <= REQUESTS
    assert loop["stopped_by"] in ("count", "time")
    assert sum(loop["statuses"].values()) == loop["requests"]
    assert loop["errors"] == {}
    for key in ("p50", "p90", "p99", "max"):
        assert _number(loop["latency_ms"][key]), key
    for key in ("server_cpu_s", "server_cpu_ms_per_request"):
        assert loop[key] is None or _number(loop[key]), key  # None off Linux
    if loop["clients"] == 1:
        assert loop["idle_ms_per_request"] is None or _number(loop["idle_ms_per_request"])


def test_render_figures_and_counts(run: tuple[str, dict[str, Any]]) -> None:
    _, data = run
    assert data["events"] == N
    refresh, render = data["refresh"], data["render"]
    for step in ("cold", "idle", "one_changed"):
        assert _number(refresh[step]["wall_s"])
        assert _number(refresh[step]["cpu_s"])
    assert refresh["cold"]["events_rendered"] == N
    assert refresh["cold"]["feeds_changed"] == ["all"]
    assert (refresh["idle"]["feeds_rendered"], refresh["idle"]["feeds_changed"]) == (0, [])
    assert refresh["one_changed"]["events_rendered"] == 1
    assert refresh["one_changed"]["feeds_changed"] == ["all"]
    for step, rendered in (("cold", N), ("unchanged", 0), ("one_changed", 1)):
        assert _number(render[step]["wall_s"])
        assert render[step]["events_rendered"] == rendered, step
    for key in ("gzip_s", "sha256_s"):
        assert _number(render[key])
    feed = data["feed"]
    assert feed["events"] == N
    assert 0 < feed["gzip_bytes"] < feed["body_bytes"]


def test_syncd_answers_gzip_200s_and_304s(run: tuple[str, dict[str, Any]]) -> None:
    _, data = run
    syncd = data["syncd"]
    assert syncd["events_served"] == N
    assert syncd["served_is_rendered"] is True
    assert syncd["conditional_get"] is True
    assert syncd["etag"] == data["feed"]["gzip_etag"]
    assert "<token>" in syncd["url"]
    for key in LOOPS:
        _loop_figures(syncd["loops"][key])
    for key in ("get_200", "get_200_sequential"):
        loop = syncd["loops"][key]
        assert loop["statuses"] == {"200": loop["requests"]}
        assert loop["content_encodings"] == {"gzip": loop["requests"]}
        assert loop["bytes_per_200"] == data["feed"]["gzip_bytes"]
    for key in ("get_304", "get_304_sequential"):
        loop = syncd["loops"][key]
        assert loop["statuses"] == {"304": loop["requests"]}  # every one, counted by the client
        assert loop["bytes_per_200"] is None
    assert syncd["loops"]["get_200"]["clients"] == 4
    assert syncd["loops"]["get_304_sequential"]["clients"] == 1


def test_radicale_serves_the_same_events_side_by_side(run: tuple[str, dict[str, Any]]) -> None:
    _, data = run
    radicale = data["radicale"]
    assert "error" not in radicale, radicale.get("error")
    assert radicale["load"]["method"] == "collection PUT"
    assert radicale["load"]["events"] == N
    assert radicale["load"]["cached"] is False
    assert _number(radicale["load"]["seconds"])
    assert radicale["events_served"] == N
    assert radicale["same_events"] is True
    assert isinstance(radicale["conditional_get"], bool)
    for key in LOOPS:
        loop = radicale["loops"][key]
        _loop_figures(loop)
        assert set(loop["statuses"]) <= {"200", "304"}
    comparison = data["comparison"]
    assert comparison["like_for_like"] is True
    for key in LOOPS:
        assert _number(comparison[key]["requests_per_s_ratio"])


def test_report_names_each_target(run: tuple[str, dict[str, Any]]) -> None:
    stdout, data = run
    assert _number(data["peak_rss_mib"])
    assert isinstance(data["environment"]["python"], str)
    targets = {t["name"]: t for t in data["targets"]}
    assert len(targets) >= 10
    lines = stdout.splitlines()
    for name, target in targets.items():
        assert isinstance(target["target"], str)
        assert isinstance(target["pass"], bool)
        printed = [line for line in lines if line.startswith(name)]
        assert len(printed) == 1, name
        assert printed[0].endswith("PASS" if target["pass"] else "MISS")
    # Counts and statuses, not timings: these hold on any machine.
    for name in (
        "feed: events served by syncd",
        "render: cold refresh renders every event once",
        "render: idle refresh renders nothing",
        "render: one appointment moved renders one event",
        "syncd get_304: every answer a 304",
        "syncd get_200: every answer a gzip 200",
        "radicale: serves the same events",
    ):
        assert targets[name]["pass"] is True, name


def test_a_second_run_restores_radicale_from_the_cache(
    run: tuple[str, dict[str, Any]], cache: Path, tmp_path: Path
) -> None:
    _, first = run
    args = ("--events", str(N), "--requests", "10", "--seconds", "5", "--repeat", "1")
    _, again = _bench(tmp_path / "feeds.json", *args, "--radicale-cache", str(cache))
    load = again["radicale"]["load"]
    assert load["cached"] is True
    assert load["seconds"] == first["radicale"]["load"]["seconds"]  # the load it restored
    assert again["radicale"]["events_served"] == N
    assert again["radicale"]["same_events"] is True
    assert again["feed"]["etag"] == first["feed"]["etag"]  # the same bytes, run after run


def test_per_event_loading_says_how_many_events_radicale_holds(tmp_path: Path) -> None:
    args = ["--events", "12", "--radicale-load", "per-event", "--radicale-events", "5"]
    args += ["--requests", "20", "--seconds", "5", "--repeat", "1", "--no-radicale-cache"]
    stdout, data = _bench(tmp_path / "feeds.json", *args)
    radicale = data["radicale"]
    assert radicale["load"]["method"] == "per-event PUT"
    assert radicale["load"]["events"] == radicale["events_served"] == 5
    assert radicale["same_events"] is False
    assert data["comparison"]["like_for_like"] is False
    assert "not like for like" in stdout
