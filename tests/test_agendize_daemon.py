"""``syncd run`` with a watch: the Agendize sandbox and the daemon as real processes, Radicale
as the calendar. The sync's interval is an hour, so after the start-up run only the sandbox's
watch delivery can bring a new booking into the calendar: the daemon registers the watch at
its ``public_url`` with credentials it generated, the sandbox POSTs each change there with
them, and the daemon runs the sync at once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemon_kit import daemon_process, syncd_command
from tests.servers import PASSWORD, USER, DavServer, free_port

pytestmark = pytest.mark.slow


@dataclass
class Sandbox:
    url: str
    company_id: str
    api_key: str
    token: str

    def admin(self) -> dict[str, Any]:
        answer = httpx.get(f"{self.url}/_admin")
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def book(self, start: datetime) -> str:
        body = {"start": f"{start:%Y-%m-%dT%H:%M:%S}", "staff": "1", "service": "13"}
        answer = httpx.post(f"{self.url}/_admin/appointments", json=body)
        answer.raise_for_status()
        return str(answer.json()["id"])


def wait_for(check: Callable[[], bool], what: str, output: Callable[[], str]) -> None:
    """Poll ``check`` until it holds; the deadline only keeps a broken run from hanging."""
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}\n{output()}"
        time.sleep(0.1)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    port = free_port()
    log = tmp_path / "sandbox.log"
    with open(log, "w") as sink:
        process = subprocess.Popen(
            syncd_command("sandbox", "agendize", "--port", str(port), "--seed", "3"),
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            text=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return httpx.get(f"{url}/_admin").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, "the sandbox answers", log.read_text)
        text = log.read_text()
        found = {
            key: re.search(rf"{key}\s*=\s*(\S+)", text)
            for key in ("company_id", "api_key", "token")
        }
        assert all(found.values()), text
        yield Sandbox(url, *(m[1] for m in found.values() if m))
    finally:
        process.terminate()
        process.wait(timeout=10)


def config(tmp_path: Path, sandbox: Sandbox, port: int, calendar: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[store]
url = "sqlite:///{tmp_path / "state.db"}"

[server]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"

[providers.clinic]
kind = "agendize"
base_url = "{sandbox.url}/api/2.1/scheduling"
company_id = "{sandbox.company_id}"
api_key = "${{AG_KEY}}"
token = "${{AG_TOKEN}}"
timezone = "Europe/Paris"

[calendars.team]
kind = "caldav"
url = "{calendar}"
username = "{USER}"
password = "{PASSWORD}"

[[syncs]]
name = "clinic"
provider = "clinic"
calendars = ["team"]
# One staff member's long sessions only: a few of the sandbox's 200 bookings.
scope = {{ staff = "1", service = "13" }}
interval = "1h"
""")
    return path


def ids_in(calendar: str) -> set[str]:
    """The syncd ids of the events in a Radicale collection (a GET gives the whole of it)."""
    answer = httpx.get(calendar, auth=(USER, PASSWORD))
    answer.raise_for_status()
    return set(re.findall(r"X-SYNCD-ID:(\S+)", answer.text))


def test_a_watch_delivery_brings_a_booking_into_radicale_without_waiting_for_the_poll(
    tmp_path: Path, sandbox: Sandbox, radicale: DavServer
) -> None:
    calendar = radicale.new_collection()
    port = free_port()
    env = {"AG_KEY": sandbox.api_key, "AG_TOKEN": sandbox.token}
    with daemon_process(config(tmp_path, sandbox, port, calendar), port, env) as daemon:
        daemon.wait_healthy()
        wait_for(lambda: len(ids_in(calendar)) > 0, "the start-up run", daemon.output)
        [watch] = sandbox.admin()["watches"]
        assert watch["address"] == f"{daemon.url}/hooks/agendize/clinic"
        assert watch["basicAuth"]["username"].startswith("syncd-")
        tomorrow = (datetime.now() + timedelta(days=1)).replace(hour=8, minute=0, second=0)
        booked = sandbox.book(tomorrow.replace(microsecond=0))
        wait_for(lambda: booked in ids_in(calendar), "the booking in Radicale", daemon.output)
        assert sandbox.admin()["deliveries"] >= 1
        daemon.signal(signal.SIGTERM)
        assert daemon.process.wait(timeout=10) == 0
        assert sandbox.token not in daemon.output()
