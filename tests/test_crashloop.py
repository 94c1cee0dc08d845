"""The crash loop in CI: 20 SIGKILLs of real ``syncd sync`` and ``syncd run`` processes.

``bench/crashloop.py`` (which runs 200) explains the world: the OnlineAfspraken sandbox and
Radicale as processes of their own, a business booking, moving, cancelling and deleting
meanwhile, a person editing a private calendar that syncd turns into busy placeholders, and
kills at random moments or exactly at a write (dropped before the server, or applied by the
server and never heard of by syncd). After the last kill syncd settles in clean runs, and the
calendar and the provider must agree: nothing lost, duplicated, diverged or orphaned
(DESIGN.md section 6, promises 1 and 2).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.crashloop import DEFAULT_JSON, main

pytestmark = pytest.mark.slow

KILLS = 20


def test_twenty_kills_lose_duplicate_diverge_and_orphan_nothing(tmp_path: Path) -> None:
    out = tmp_path / "crashloop.json"
    assert out != DEFAULT_JSON
    args = ["--kills", str(KILLS), "--seed", "9", "--appointments", "30", "--json", str(out)]
    code = main(args)
    data = json.loads(out.read_text())
    assert data["kills"] >= KILLS
    assert sum(data["kills_by_mode"].values()) == data["kills"]
    assert set(data["kills_by_mode"]) <= {"time", "write-before", "write-after"}
    assert data["business"], "the business did nothing while syncd was killed"
    assert data["final"]["appointments"] > 0
    assert data["final"]["events"] > 0
    figures = {key: data[key] for key in ("lost", "duplicates", "diverged", "orphans")}
    assert figures == {"lost": 0, "duplicates": 0, "diverged": 0, "orphans": 0}, data["examples"]
    assert not data["problems"], data["problems"]
    assert code == 0
