"""``syncd run`` as a real process: feeds, 304s, signals, the lock, systemd notify.

Each test starts the daemon on a free port with its own state database. Waiting for start-up
polls /healthz; the only bound on time asserted is the issue's: a stop within ten seconds.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import icalendar
import pytest

from tests.daemon_kit import TOKEN, daemon_process, memory_config, syncd_command
from tests.servers import free_port

pytestmark = pytest.mark.slow
ADDED = "addedTokenAddedTokenAdded04"


def write_config(tmp_path: Path, port: int, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(memory_config(tmp_path / "state.db", port, extra=extra))
    return path


def stop_within_ten_seconds(process: subprocess.Popen[str], sig: signal.Signals) -> int:
    started = time.monotonic()
    process.send_signal(sig)
    code = process.wait(timeout=10)
    assert time.monotonic() - started < 10
    return code


def test_run_serves_feeds_with_304s_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    with daemon_process(write_config(tmp_path, port), port) as daemon:
        daemon.wait_healthy()
        feed = f"{daemon.url}/feeds/{TOKEN}.ics"
        deadline = time.monotonic() + 20
        while True:  # the first scheduled run fills the feed
            answer = httpx.get(feed)
            events = icalendar.Calendar.from_ical(answer.content).walk("VEVENT")
            if events or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert answer.status_code == 200
        assert len(events) == 12
        again = httpx.get(feed, headers={"If-None-Match": answer.headers["etag"]})
        assert again.status_code == 304
        since = httpx.get(feed, headers={"If-Modified-Since": answer.headers["last-modified"]})
        assert since.status_code == 304
        assert httpx.get(f"{daemon.url}/feeds/{'x' * 30}.ics").status_code == 404
        assert stop_within_ten_seconds(daemon.process, signal.SIGTERM) == 0
        log = daemon.output()
        assert "syncd stopped" in log
        assert "Traceback" not in log
        assert TOKEN not in log


def test_sigint_stops_cleanly_too(tmp_path: Path) -> None:
    port = free_port()
    with daemon_process(write_config(tmp_path, port), port) as daemon:
        daemon.wait_healthy()
        assert stop_within_ten_seconds(daemon.process, signal.SIGINT) == 0


def test_a_second_daemon_on_the_same_database_exits_with_a_clear_message(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = write_config(tmp_path, port)
    with daemon_process(config, port) as daemon:
        daemon.wait_healthy()
        second = tmp_path / "second.toml"
        second.write_text(config.read_text().replace(str(port), str(free_port())))
        result = subprocess.run(
            syncd_command("run", "-c", str(second)), capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2
        assert f"another syncd (pid {daemon.process.pid}) is already running" in result.stderr
        assert "Traceback" not in result.stderr
        assert httpx.get(f"{daemon.url}/healthz").status_code == 200


def test_sighup_keeps_the_old_config_when_the_new_one_is_bad(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port)
    good = config.read_text()
    with daemon_process(config, port) as daemon:
        daemon.wait_healthy()
        config.write_text(good.replace('interval = "1m"', 'interval = "often"'))
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "reload refused" in daemon.output(), daemon)
        assert httpx.get(f"{daemon.url}/healthz").status_code == 200
        assert httpx.get(f"{daemon.url}/feeds/{TOKEN}.ics").status_code == 200

        config.write_text(good + f'\n[feeds.added]\nsync = "shop"\ntoken = "{ADDED}"\n')
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "config reloaded" in daemon.output(), daemon)
        assert httpx.get(f"{daemon.url}/feeds/{ADDED}.ics").status_code == 200
        assert stop_within_ten_seconds(daemon.process, signal.SIGTERM) == 0


def wait_for(condition: object, daemon: object, limit: float = 20) -> None:
    deadline = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, daemon.output()  # type: ignore[attr-defined]
        time.sleep(0.1)


@pytest.fixture
def notify_socket() -> Iterator[tuple[str, socket.socket]]:
    with tempfile.TemporaryDirectory() as folder:  # short: unix socket paths max ~100 bytes
        path = str(Path(folder) / "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(20)
        yield path, sock
        sock.close()


def test_systemd_gets_ready_status_and_watchdog_pings(
    tmp_path: Path, notify_socket: tuple[str, socket.socket]
) -> None:
    path, sock = notify_socket
    port = free_port()
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}
    with daemon_process(write_config(tmp_path, port), port, env) as daemon:
        messages = [sock.recv(4096).decode()]
        while sum(m == "WATCHDOG=1" for m in messages) < 2:  # the socket times out at 20 s
            messages.append(sock.recv(4096).decode())
        assert messages[0].startswith("READY=1\nSTATUS=serving http://127.0.0.1:")
        daemon.wait_healthy()
        daemon.signal(signal.SIGTERM)
        seen: list[str] = []
        while "STOPPING=1" not in "".join(seen):
            seen.append(sock.recv(4096).decode())
        assert daemon.process.wait(timeout=10) == 0
