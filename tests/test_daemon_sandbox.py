"""``syncd run`` against the OnlineAfspraken sandbox, both as real processes on loopback.

The daemon syncs on its schedule, serves a feed that icalendar parses and that answers 304,
picks up a booking the business makes, and runs a targeted sync when a webhook says so.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import icalendar
import pytest

from tests.daemon_kit import DaemonProcess, daemon_process, syncd_command
from tests.servers import free_port

pytestmark = pytest.mark.slow
TOKEN = "salonTokenSalonTokenSalon05"


@dataclass
class Sandbox:
    url: str
    api_key: str
    api_secret: str

    def book(self, start: datetime) -> str:
        body = {"start": f"{start:%Y-%m-%d %H:%M:%S}", "minutes": 30, "agenda": 1}
        answer = httpx.post(f"{self.url}/_admin/appointments", json=body)
        answer.raise_for_status()
        return str(answer.json()["id"])


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    port = free_port()
    log = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    with open(log, "w") as sink:
        process = subprocess.Popen(
            syncd_command("sandbox", "onlineafspraken", "--port", str(port), "--seed", "3"),
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            text=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/_admin").status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        text = log.read_text()
        key = re.search(r"api_key\s*=\s*(\S+)", text)
        secret = re.search(r"api_secret\s*=\s*(\S+)", text)
        assert key, text
        assert secret, text
        yield Sandbox(url, key[1], secret[1])
    finally:
        process.terminate()
        process.wait(timeout=10)


def config(tmp_path: Path, sandbox: Sandbox, port: int, interval: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[store]
url = "sqlite:///{tmp_path / "state.db"}"

[server]
listen = "127.0.0.1:{port}"

[providers.salon]
kind = "onlineafspraken"
base_url = "{sandbox.url}/APIREST"
api_key = "${{OA_KEY}}"
api_secret = "${{OA_SECRET}}"

[calendars.cal]
kind = "memory"

[[syncs]]
name = "salon"
provider = "salon"
scope = {{ agenda = "1" }}
calendars = ["cal"]
interval = "{interval}"

[feeds.salon]
sync = "salon"
token = "{TOKEN}"
""")
    return path


def feed_ids(daemon: DaemonProcess) -> tuple[set[str], httpx.Response]:
    answer = httpx.get(f"{daemon.url}/feeds/{TOKEN}.ics")
    assert answer.status_code == 200
    events = icalendar.Calendar.from_ical(answer.content).walk("VEVENT")
    return {str(e["X-SYNCD-ID"]) for e in events}, answer


def wait_for_event(daemon: DaemonProcess, native_id: str | None) -> set[str]:
    deadline = time.monotonic() + 30
    while True:
        ids, _ = feed_ids(daemon)
        if (native_id is None and ids) or native_id in ids:
            return ids
        assert time.monotonic() < deadline, daemon.output()
        time.sleep(0.2)


def tomorrow(hour: int) -> datetime:
    return (datetime.now() + timedelta(days=1)).replace(
        hour=hour, minute=0, second=0, microsecond=0
    )


def test_the_daemon_syncs_the_sandbox_on_schedule_and_serves_the_feed(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    port = free_port()
    env = {"OA_KEY": sandbox.api_key, "OA_SECRET": sandbox.api_secret}
    with daemon_process(config(tmp_path, sandbox, port, "2s"), port, env) as daemon:
        daemon.wait_healthy()
        first = wait_for_event(daemon, None)
        _, answer = feed_ids(daemon)
        again = httpx.get(answer.url, headers={"If-None-Match": answer.headers["etag"]})
        assert again.status_code == 304
        booked = sandbox.book(tomorrow(7))
        assert booked not in first
        wait_for_event(daemon, booked)  # found by a scheduled incremental run
        daemon.signal(signal.SIGTERM)
        assert daemon.process.wait(timeout=10) == 0
        assert sandbox.api_secret not in daemon.output()


def test_a_webhook_delivery_triggers_a_targeted_run(tmp_path: Path, sandbox: Sandbox) -> None:
    port = free_port()
    env = {"OA_KEY": sandbox.api_key, "OA_SECRET": sandbox.api_secret}
    with daemon_process(config(tmp_path, sandbox, port, "1h"), port, env) as daemon:
        daemon.wait_healthy()
        wait_for_event(daemon, None)  # the start-up run; the next scheduled one is an hour away
        booked = sandbox.book(tomorrow(8))
        hook = f"{daemon.url}/hooks/onlineafspraken/salon"
        params = {"entity": "appointment", "id": booked}
        assert httpx.get(hook, params={**params, "apiKey": "guess"}).status_code == 403
        assert httpx.get(hook, params={**params, "apiKey": sandbox.api_key}).status_code == 200
        wait_for_event(daemon, booked)
        daemon.signal(signal.SIGTERM)
        assert daemon.process.wait(timeout=10) == 0
