"""The crash loop's world: the sandbox process, the business and the person, the kill switch.

``bench/crashloop.py`` explains the loop; this module holds what it drives: the OnlineAfspraken
sandbox in a process of its own (its state outlives every kill), ``Business`` (the sandbox's
``/_admin`` routes and a person's private calendar on Radicale, written as a client would),
the config syncd runs with, and ``Trigger``, the ``FaultProxy`` hook that SIGKILLs a syncd
process at its n-th write.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import icalendar

from tests.fault_kit import BUSY_TYPE
from tests.servers import PASSWORD, USER, Fault, free_port

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
OA_WRITES = ("setAppointment", "cancelAppointment", "removeAppointment", "CHAddBlock")


# -- the servers ---------------------------------------------------------------------------------


@dataclass
class Sandbox:
    """The OnlineAfspraken sandbox process and the credentials it printed."""

    process: subprocess.Popen[str]
    url: str
    api_key: str
    api_secret: str

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = httpx.request(method, f"{self.url}/_admin{path}", json=body, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def syncd_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "syncd.cli", *args]


def start_sandbox(folder: Path, seed: int, count: int) -> Sandbox:
    """The OnlineAfspraken sandbox with ``count`` seeded appointments, in a process of its own
    (``syncd sandbox onlineafspraken`` seeds 200); waits until its admin route answers."""
    port = free_port()
    log = folder / "sandbox.log"
    serve = (
        "from syncd.sandbox.onlineafspraken import main; "
        f"main(port={port}, seed={seed}, count={count})"
    )
    with open(log, "w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", serve],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            text=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the sandbox exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/_admin", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the sandbox did not answer: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    text = log.read_text()
    key = re.search(r"api_key\s*=\s*(\S+)", text)
    secret = re.search(r"api_secret\s*=\s*(\S+)", text)
    if key is None or secret is None:
        process.kill()
        raise RuntimeError(f"the sandbox printed no credentials: {text[-2000:]}")
    return Sandbox(process, url, key[1], secret[1])


# -- the business and the person ---------------------------------------------------------------


def wall(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}"


class Business:
    """Books, moves, cancels and deletes at the sandbox; edits the person's private events.

    Every choice comes from ``rng``, so a seed replays the same sequence of intentions (their
    timing against syncd's runs is the machine's). ``done`` counts what was done, by kind.
    """

    def __init__(self, sandbox: Sandbox, private: str, rng: random.Random) -> None:
        self.sandbox = sandbox
        self.private = private  # the private calendar's collection URL
        self.rng = rng
        self.done: Counter[str] = Counter()
        self.today = datetime.now(AMSTERDAM).date()
        self._http = httpx.Client(auth=(USER, PASSWORD), timeout=30)
        self._private_events: dict[str, tuple[datetime, datetime]] = {}

    def close(self) -> None:
        self._http.close()

    def bookings(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.sandbox.admin("GET", "/appointments")
        return found

    def _slot(self) -> datetime:
        day = self.today + timedelta(days=self.rng.randrange(1, 28))
        minutes = 9 * 60 + 5 * self.rng.randrange(0, 96)  # 09:00 .. 16:55, on 5 minutes
        return datetime(day.year, day.month, day.day) + timedelta(minutes=minutes)

    def act(self) -> str:
        roll = self.rng.random()
        ours = [b for b in self.bookings() if b["type_id"] != BUSY_TYPE and b["agenda_id"] == 1]
        if roll < 0.30 or not ours:
            body = {"start": wall(self._slot()), "minutes": self.rng.choice((15, 30, 60))}
            self.sandbox.admin("POST", "/appointments", body)
            kind = "book"
        elif roll < 0.55:
            booking = self.rng.choice(ours)
            self.sandbox.admin(
                "POST", f"/appointments/{booking['id']}/move", {"start": wall(self._slot())}
            )
            kind = "move"
        elif roll < 0.68:
            booking = self.rng.choice(ours)
            self.sandbox.admin("POST", f"/appointments/{booking['id']}/cancel")
            kind = "cancel"
        elif roll < 0.76:
            booking = self.rng.choice(ours)
            self.sandbox.admin("DELETE", f"/appointments/{booking['id']}")
            kind = "delete"
        elif roll < 0.88 or not self._private_events:
            kind = self.add_private()
        elif roll < 0.94:
            kind = self.move_private()
        else:
            kind = self.remove_private()
        self.done[kind] += 1
        return kind

    # -- the person's private calendar, written as their own client would --------------------

    def add_private(self) -> str:
        start = self._slot().replace(tzinfo=AMSTERDAM)
        uid = f"private-{uuid.uuid4().hex}"
        self._put(uid, start, start + timedelta(minutes=self.rng.choice((20, 45, 90))))
        return "private-add"

    def move_private(self) -> str:
        uid = self.rng.choice(sorted(self._private_events))
        start = self._slot().replace(tzinfo=AMSTERDAM)
        old_start, old_end = self._private_events[uid]
        self._put(uid, start, start + (old_end - old_start))
        return "private-move"

    def remove_private(self) -> str:
        uid = self.rng.choice(sorted(self._private_events))
        answer = self._http.delete(f"{self.private}{uid}.ics")
        if answer.status_code not in (200, 204, 404):
            raise RuntimeError(f"deleting a private event answered {answer.status_code}")
        del self._private_events[uid]
        return "private-remove"

    def _put(self, uid: str, start: datetime, end: datetime) -> None:
        calendar = icalendar.Calendar()
        calendar.add("prodid", "-//a person's calendar client//EN")
        calendar.add("version", "2.0")
        event = icalendar.Event()
        event.add("uid", uid)
        event.add("dtstamp", datetime.now(UTC))
        event.add("dtstart", start.astimezone(UTC))
        event.add("dtend", end.astimezone(UTC))
        event.add("summary", "dentist")
        calendar.add_component(event)
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        answer = self._http.put(
            f"{self.private}{uid}.ics", content=calendar.to_ical(), headers=headers
        )
        if answer.status_code not in (201, 204):
            raise RuntimeError(f"writing a private event answered {answer.status_code}")
        self._private_events[uid] = (start, end)


@contextmanager
def acting(business: Business, pause: float, errors: list[str]) -> Iterator[None]:
    """The business acts in a thread every ``pause`` seconds (jittered) until the block ends."""
    stop = threading.Event()
    rng = random.Random(business.rng.random())

    def work() -> None:
        while not stop.wait(rng.uniform(0.2, 1.8) * pause):
            try:
                business.act()
            except (httpx.HTTPError, RuntimeError) as err:  # reported, never hidden
                errors.append(f"business: {type(err).__name__}: {err}")

    thread = threading.Thread(target=work, name="business", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)


# -- syncd, and killing it -----------------------------------------------------------------------


def config_text(folder: Path, sandbox_url: str, team: str, private: str, port: int) -> str:
    return f"""
[store]
url = "sqlite:///{folder / "state.db"}"

[server]
listen = "127.0.0.1:{port}"

[log]
format = "json"

[providers.salon]
kind = "onlineafspraken"
base_url = "{sandbox_url}/APIREST"
api_key = "${{OA_KEY}}"
api_secret = "${{OA_SECRET}}"
busy_appointment_type = "{BUSY_TYPE}"
busy_customer = "{BUSY_TYPE}"
timeout = "20s"

[calendars.team]
kind = "caldav"
url = "{team}"
username = "{USER}"
password = "${{CALDAV_PASSWORD}}"
timeout = "20s"

[calendars.private]
kind = "caldav"
url = "{private}"
username = "{USER}"
password = "${{CALDAV_PASSWORD}}"
timeout = "20s"

[[syncs]]
name = "salon"
provider = "salon"
scope = {{ agenda = "1" }}
calendars = ["team"]
busy_from = ["private"]
interval = "1s"
full_scan_interval = "4s"
"""


def is_write(method: str, path: str) -> bool:
    if method in ("PUT", "DELETE"):
        return True
    return method == "GET" and any(f"method={name}" in path for name in OA_WRITES)


class Trigger:
    """Kills ``process`` when its ``at``-th write reaches a proxy (both proxies count)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.process: subprocess.Popen[str] | None = None
        self.at = 0
        self.after = False
        self.writes = 0
        self.fired = False

    def arm(self, process: subprocess.Popen[str], at: int, after: bool) -> None:
        with self._lock:
            self.process, self.at, self.after = process, at, after
            self.writes, self.fired = 0, False

    def disarm(self) -> None:
        with self._lock:
            self.process = None

    def __call__(self, method: str, path: str, body: bytes) -> Fault | None:
        if not is_write(method, path):
            return None
        with self._lock:
            self.writes += 1
            process = self.process
            if process is None or self.fired or self.writes != self.at:
                return None
            self.fired = True
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()
            # write-after: the write goes on to the server, which applies it; syncd never hears.
            return None if self.after else Fault(reset=True)
