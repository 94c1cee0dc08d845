"""uvicorn inside the daemon's event loop, started and stopped by the daemon, not by uvicorn.

``uvicorn.Server.serve()`` installs its own SIGINT/SIGTERM handlers; the daemon owns the
signals (SIGTERM stops the syncs too, SIGHUP reloads), so ``_Server`` captures none and the
daemon stops it by setting ``should_exit``. The socket is bound here, which turns "address
in use" into one clear line, and lets tests ask for port 0.

``log_config=None`` keeps uvicorn from replacing the logging set-up, so its lines go through
syncd's redacting handler; access logs are off because every feed URL holds its token.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from syncd.errors import UserError

#: Seconds open connections get to finish when the server stops.
GRACE = 2.0


class AddressInUse(UserError):
    """The listen address is taken (or not ours to take)."""


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off only for sockets that say they
    # are TCP, and without that every small kept-alive response waited ~40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise AddressInUse(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebServer:
    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._loop: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """Where the server listens; after ``start`` with the real port when ``port`` was 0."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        self._socket = bind(self.host, self.port)
        self.port = int(self._socket.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            proxy_headers=False,  # the status page judges the real peer, see syncd.web.status
            server_header=False,
            timeout_graceful_shutdown=int(GRACE),
        )
        self._server = _Server(config)
        self._loop = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:  # uvicorn offers no start-up event to wait on
            if self._loop.done():
                await self._loop  # raises what failed
                raise UserError(f"the web server on {self.url} stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        server, loop = self._server, self._loop
        if server is None or loop is None:
            return
        server.should_exit = True
        await loop
        if self._socket is not None:
            self._socket.close()
        self._server = self._loop = self._socket = None
