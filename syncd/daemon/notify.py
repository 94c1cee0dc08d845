"""systemd's notify protocol: READY=1, STATUS=, RELOADING=1, STOPPING=1 and WATCHDOG=1.

Datagrams go to the unix socket named by ``$NOTIFY_SOCKET`` (a leading ``@`` means the
abstract namespace). Without that variable every call does nothing, so the daemon runs the
same under systemd, Docker or a terminal. A failed send is logged and ignored: the service
manager going away must not take the daemon with it.

The watchdog is fed from the event loop, and only while the scheduler runs, so a wedged loop
or a dead scheduler stops the pings and systemd restarts the service (``WatchdogSec``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Mapping

import structlog

log = structlog.get_logger("syncd.daemon")


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + path[1:] if path.startswith("@") else path
        self.watchdog_interval: float | None = None
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 1_000_000 / 2  # ping twice per period

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *fields: str) -> None:
        if not self.address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(fields).encode(), self.address)
        except OSError as err:
            log.warning("systemd notify failed", error=str(err))

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    async def watchdog(self, alive: Callable[[], bool]) -> None:
        """Ping every half ``WATCHDOG_USEC`` while ``alive()``; returns at once without one."""
        if self.watchdog_interval is None or not self.address:
            return
        while True:
            if alive():
                self.send("WATCHDOG=1")
            await asyncio.sleep(self.watchdog_interval)
