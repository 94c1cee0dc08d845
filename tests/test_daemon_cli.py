"""The commands around the daemon: ``demo``, ``feeds`` and ``sandbox``."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from syncd.cli import main
from syncd.commands import sandbox
from tests.daemon_kit import BUSY_TOKEN, TOKEN, memory_config, syncd_command
from tests.servers import PASSWORD, USER, DavServer


@pytest.mark.slow
def test_demo_runs_the_daemon_prints_its_urls_and_stops_after_its_cycles(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        syncd_command("demo", "--cycles", "3", "--interval", "0.3", "--port", "0"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"status page: http://127\.0\.0\.1:\d+/\n", out)
    assert re.search(r"feed demo: http://127\.0\.0\.1:\d+/feeds/[A-Za-z0-9_-]{22,}\.ics\n", out)
    assert re.search(r"cycle 1: demo: 25 created", out)
    assert "cycle 3: demo:" in out
    assert re.search(r"business (booked|moved|cancelled) \d+", out)
    assert (tmp_path / "syncd-demo.db").exists()


@pytest.mark.slow
def test_demo_writes_into_a_caldav_calendar_when_given_one(
    tmp_path: Path, radicale: DavServer
) -> None:
    collection = radicale.new_collection()
    user, password = USER, PASSWORD
    url = collection.replace("://", f"://{user}:{password}@", 1)
    result = subprocess.run(
        syncd_command("demo", "--cycles", "1", "--interval", "2", "--port", "0", "--caldav", url),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    # Each appointment goes to the demo's memory calendar and to Radicale: twice.
    created = re.search(r"cycle 1: demo: (\d+) created", result.stdout)
    assert created, result.stdout
    assert password not in result.stdout + result.stderr
    listing = httpx.request(
        "PROPFIND", collection, auth=(user, password), headers={"Depth": "1"}, timeout=10
    )
    in_radicale = listing.text.count(".ics</")
    assert in_radicale >= 25  # the sample data, plus what the business booked meanwhile
    assert int(created[1]) == 2 * in_radicale


def test_feeds_prints_each_url_under_the_public_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    text = memory_config(tmp_path / "state.db")
    config.write_text(text)
    assert main(["feeds", "-c", str(config)]) == 0
    out, err = capsys.readouterr()
    assert f"all (sync shop, full): http://127.0.0.1:8765/feeds/{TOKEN}.ics" in out
    assert f"busy (sync shop, busy): http://127.0.0.1:8765/feeds/{BUSY_TOKEN}.ics" in out
    assert "public_url is not set" in err
    config.write_text(
        text.replace(
            'listen = "127.0.0.1:8765"',
            'listen = "127.0.0.1:8765"\npublic_url = "https://cal.example.org/"',
        )
    )
    assert main(["feeds", "-c", str(config)]) == 0
    out, err = capsys.readouterr()
    assert f"https://cal.example.org/feeds/{TOKEN}.ics" in out
    assert not err


def test_sandbox_names_the_ones_it_has(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "nosuch"]) == 2
    _, listed = capsys.readouterr().err.split("no sandbox for provider 'nosuch'; sandboxes: ")
    assert {"onlineafspraken", "qmatic"} <= set(listed.strip().split(", "))
    assert main(["sandbox", "memory"]) == 2
    assert "runs inside syncd" in capsys.readouterr().err


def test_a_sandbox_is_found_by_name_and_given_what_it_takes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[dict[str, int]] = []

    def serve(port: int = 1, seed: int = 2) -> None:
        calls.append({"port": port, "seed": seed})

    def portless() -> None:
        calls.append({})

    monkeypatch.setitem(sandbox.SANDBOXES, "fake", f"{__name__}:_serve")
    monkeypatch.setattr(f"{__name__}._serve", serve, raising=False)
    assert main(["sandbox", "fake", "--port", "9000"]) == 0
    assert calls == [{"port": 9000, "seed": 2}]
    monkeypatch.setattr(f"{__name__}._serve", portless, raising=False)
    assert main(["sandbox", "fake", "--seed", "4"]) == 2
    assert "does not take --seed" in capsys.readouterr().err
    monkeypatch.setitem(sandbox.SANDBOXES, "gone", "syncd.sandbox.nothing_here:main")
    assert main(["sandbox", "gone"]) == 2
    assert "not available in this version" in capsys.readouterr().err


def test_demo_takes_a_free_port_when_its_own_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["demo", "--cycles", "1", "--interval", "0", "--port", str(port)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "taking a free port instead" in err
    page = re.search(r"status page: http://127\.0\.0\.1:(\d+)/", out)
    assert page, out
    assert int(page[1]) != port
    cycles = [line for line in out.splitlines() if line.startswith("cycle ")]
    assert len(cycles) == 1
    assert cycles[0].startswith("cycle 1: demo: 25 created")
