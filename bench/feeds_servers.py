"""The servers the feeds bench loads: syncd's own web app in a child process, and Radicale.

Both run on loopback on a free port; ``serve`` is the child's side
(``python -m bench.feeds --serve CONFIG URL_FILE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from bench.feeds_shop import (
    LOOPBACK,
    RADICALE_AUTH,
    RADICALE_USER,
    REQUEST_TIMEOUT,
    ROOT,
    START_TIMEOUT,
    STOP_TIMEOUT,
)
from syncd.config import Config
from syncd.daemon.metrics import Metrics
from syncd.daemon.runner import Runner
from syncd.feeds import FeedStore
from syncd.runtime import Runtime, open_store
from syncd.web.app import create_app
from syncd.web.context import WebContext
from syncd.web.server import WebServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (all threads); None off Linux."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # fields from the 3rd (state) on
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


@dataclass
class Server:
    """A server process on loopback and what the load loop sends it."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]
    auth: tuple[str, str] | None = None

    def cpu_s(self) -> float | None:
        return process_cpu_s(self.process.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self) -> str:
        """The end of what the process wrote (the file is the child's, open or closed here)."""
        return self.log_path.read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def _spawn(
    args: list[str], folder: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Path, IO[bytes]]:
    log_path = folder / "server.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    return process, log_path, log


def start_syncd(config_path: Path, folder: Path) -> Server:
    """``python -m bench.feeds --serve``: syncd's web app over the state store, port 0."""
    url_file = folder / "url"
    args = ["-m", "bench.feeds", "--serve", str(config_path), str(url_file)]
    process, log_path, log = _spawn(args, folder)
    server = Server("syncd", "", process, log_path, log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not server.alive():
            server.stop()
            raise RuntimeError(f"the syncd server exited:\n{server.tail()}")
        if url_file.exists():
            server.url = url_file.read_text().strip()
            return server
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"the syncd server did not start within {START_TIMEOUT:.0f} s")


def start_radicale(folder: Path) -> Server:
    """Radicale as tests/servers.py runs it: no config file, no auth, storage in ``folder``."""
    port = free_port()
    args = ["-m", "radicale", "-C", "", "--server-hosts", f"{LOOPBACK}:{port}"]
    args += ["--auth-type", "none", "--auth-delay", "0", "--logging-level", "warning"]
    args += ["--storage-filesystem-folder", str(folder / "storage")]
    process, log_path, log = _spawn(args, folder, {"XDG_DATA_HOME": str(folder / "xdg")})
    base = f"http://{LOOPBACK}:{port}"
    server = Server("radicale", base, process, log_path, log, RADICALE_AUTH)
    deadline = time.monotonic() + START_TIMEOUT
    with http_client(auth=RADICALE_AUTH, timeout=2) as client:
        while time.monotonic() < deadline:
            if not server.alive():
                server.stop()
                raise RuntimeError(f"radicale exited:\n{server.tail()}")
            try:
                client.request("OPTIONS", f"{base}/{RADICALE_USER}/")
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            return server
    server.stop()
    raise RuntimeError(f"radicale did not answer within {START_TIMEOUT:.0f} s")


def http_client(
    auth: tuple[str, str] | None = None, timeout: float = REQUEST_TIMEOUT
) -> httpx.Client:
    # trust_env=False: no proxy from the environment gets between us and loopback
    return httpx.Client(auth=auth, timeout=timeout, trust_env=False)


async def serve(config: Config, url_file: Path) -> None:
    """The bench's syncd server: the daemon's web app over the state store the parent wrote,
    feeds refreshed once (restored from the feed tables, as after a restart), no scheduler.
    Stops on SIGTERM/SIGINT or when the parent goes away."""
    store = open_store(config)
    runtime = Runtime.build(config)
    feeds = FeedStore(store, config)
    feeds.refresh_all()
    runner = Runner(store, runtime.syncs, feeds, Metrics())
    context = WebContext(config, store, feeds, runner, runner.metrics, runtime.providers)
    context.scheduler_running = lambda: True
    server = WebServer(create_app(context), LOOPBACK, 0)
    await server.start()
    publish(url_file, server.url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()
    try:
        while not stop.is_set() and os.getppid() == parent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    finally:
        await server.stop()
        await runtime.aclose()
        store.close()


def publish(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` at once: the parent never reads half a URL."""
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    partial.replace(path)
