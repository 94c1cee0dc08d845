"""Shared pieces of the daemon, web and feed tests: configs, an in-process harness, processes.

``Harness`` wires the daemon's parts the way ``Daemon.start`` does (store, backends, feeds,
runner, web app) but without the scheduler or a socket, and with a clock the test steps, so
backoff and health can be driven run by run. ``DaemonProcess`` runs the real ``syncd run``
in a subprocess for the lifecycle tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from syncd.config import Config, parse_config
from syncd.daemon.backoff import BackoffPolicy
from syncd.daemon.metrics import Metrics
from syncd.daemon.runner import Runner
from syncd.feeds import FeedStore
from syncd.runtime import Runtime, open_store
from syncd.web.app import create_app
from syncd.web.context import WebContext

TOKEN = "feedTokenFeedTokenFeedToken01"
BUSY_TOKEN = "busyTokenBusyTokenBusyToken02"


def memory_config(
    database: Path, port: int = 8765, *, seed: int = 12, interval: str = "1m", extra: str = ""
) -> str:
    """A config text: one seeded memory account, one memory calendar, one sync, two feeds."""
    return f"""
[store]
url = "sqlite:///{database}"

[server]
listen = "127.0.0.1:{port}"

[providers.shop]
kind = "memory"
seed = {seed}

[calendars.cal]
kind = "memory"

[[syncs]]
name = "shop"
provider = "shop"
calendars = ["cal"]
interval = "{interval}"

[feeds.all]
sync = "shop"
token = "{TOKEN}"

[feeds.busy]
sync = "shop"
token = "{BUSY_TOKEN}"
privacy = "busy"
{extra}
"""


class StepClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Harness:
    config: Config
    runtime: Runtime
    runner: Runner
    context: WebContext
    clock: StepClock
    scheduler_up: list[bool] = field(default_factory=lambda: [True])
    pokes: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, text: str, policy: BackoffPolicy | None = None) -> Harness:
        config = parse_config(text, environ={})
        store = open_store(config)
        runtime = Runtime.build(config)
        feeds = FeedStore(store, config)
        feeds.refresh_all()
        clock = StepClock()
        runner = Runner(store, runtime.syncs, feeds, Metrics(), policy=policy, clock=clock)
        ctx = WebContext(config, store, feeds, runner, runner.metrics, runtime.providers)
        harness = cls(config, runtime, runner, ctx, clock)
        ctx.scheduler_running = lambda: harness.scheduler_up[0]

        def poke(account: str) -> list[str]:
            harness.pokes.append(account)
            return [account]

        ctx.poke = poke
        return harness

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=create_app(self.context))
        return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765")

    async def close(self) -> None:
        await self.runtime.aclose()
        self.context.store.close()


def syncd_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "syncd.cli", *args]


@dataclass
class DaemonProcess:
    process: subprocess.Popen[str]
    url: str
    log: Path

    def wait_healthy(self, limit: float = 20.0) -> httpx.Response:
        """Poll /healthz until the daemon answers 200 (start-up, not an assertion on time)."""
        deadline = time.monotonic() + limit
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"daemon exited early:\n{self.output()}")
            try:
                answer = httpx.get(f"{self.url}/healthz", timeout=2)
                if answer.status_code == 200:
                    return answer
            except httpx.HTTPError as err:
                last = err
            time.sleep(0.1)
        raise AssertionError(f"daemon not healthy ({last}):\n{self.output()}")

    def output(self) -> str:
        """What the daemon wrote so far (stdout and stderr, to a file: a pipe could fill)."""
        return self.log.read_text(errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)


@contextmanager
def daemon_process(
    config: Path, port: int, env: dict[str, str] | None = None
) -> Iterator[DaemonProcess]:
    environ = {**os.environ, **(env or {})}
    log = config.with_suffix(f".{port}.log")
    with open(log, "w") as sink:
        process = subprocess.Popen(
            syncd_command("run", "-c", str(config)),
            cwd=config.parent,
            env=environ,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        yield DaemonProcess(process, f"http://127.0.0.1:{port}", log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
