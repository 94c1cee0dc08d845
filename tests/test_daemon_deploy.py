"""What the machine can check of the deployment files without systemd or Docker running.

The systemd unit is read for its promises and, where ``systemd-analyze`` exists, verified
by it. The Dockerfile cannot be built here (no Docker engine in the test environment); it is
read for the promises a build would keep: slim Python base, an unprivileged user, state in a
volume, a health check on /healthz, ``SYNCD_CONFIG``, and no download but pip's.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "syncd.service"
DOCKERFILE = ROOT / "Dockerfile"


def unit_keys(text: str) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_the_unit_is_hardened_and_speaks_notify() -> None:
    service = unit_keys(UNIT.read_text())["Service"]

    def one(key: str) -> str:
        assert len(service.get(key, [])) == 1, key
        return service[key][0]

    assert one("Type") == "notify"
    assert re.fullmatch(r"\d+s?", one("WatchdogSec"))
    assert one("Restart") == "on-failure"
    assert one("DynamicUser") == "yes" or one("User") not in ("", "root", "0")
    assert one("StateDirectory") == "syncd"
    assert one("ProtectSystem") == "strict"
    assert one("NoNewPrivileges") == "yes"
    assert one("PrivateTmp") == "yes"
    assert one("CapabilityBoundingSet") == ""
    assert one("EnvironmentFile").lstrip("-").startswith("/")
    assert shlex.split(one("ExecReload"))[1:] == ["-HUP", "$MAINPID"]
    assert shlex.split(one("ExecStart"))[1:] == ["run"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    # verify insists that ExecStart exists: point it at this environment's syncd.
    syncd = Path(sys.executable).parent / "syncd"
    if not syncd.exists():
        pytest.skip("the syncd script is not installed next to this Python")
    unit = tmp_path / "syncd.service"
    unit.write_text(UNIT.read_text().replace("/opt/syncd/bin/syncd", str(syncd)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "syncd.service" not in result.stderr, result.stderr


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """Instructions per stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append([])
        stages[-1].append((word.upper(), rest.strip()))
    return stages


def test_the_image_runs_unprivileged_with_a_health_check() -> None:
    stages = dockerfile_stages()
    final = stages[-1]
    assert all(args.startswith("python:3.11-slim") for word, args in final if word == "FROM")
    users = [args for word, args in final if word == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    health = [args for word, args in final if word == "HEALTHCHECK"]
    assert len(health) == 1
    assert "CMD" in health[0]
    env = " ".join(args for word, args in final if word == "ENV")
    assert "SYNCD_CONFIG=/etc/syncd/config.toml" in env
    assert "SYNCD_HEALTHZ=http://127.0.0.1:8765/healthz" in env
    assert "SYNCD_HEALTHZ" in health[0]
    assert any(word == "VOLUME" and "/var/lib/syncd" in args for word, args in final)
    assert ("CMD", '["run"]') in final
    assert ("ENTRYPOINT", '["syncd"]') in final


def test_the_image_downloads_nothing_but_pip_packages() -> None:
    for stage in dockerfile_stages():
        for word, args in stage:
            assert word != "ADD", "ADD may fetch URLs; COPY only"
            if word == "RUN":
                assert not re.search(r"\b(curl|wget|git|apt-get|apk)\b", args), args
                assert "https://" not in args
                assert "http://" not in args
