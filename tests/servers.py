"""Real CalDAV servers for tests: Radicale and Xandikos as subprocesses on loopback.

Each server runs from ``sys.executable`` (so CI's venv is the one used), on a free port, with
its storage in a temporary directory, and is stopped at the end of the session: SIGTERM, then
SIGKILL if it does not go within ten seconds. Tests get a fresh calendar collection each from
``DavServer.new_collection()`` so they never see each other's items.

``FaultProxy`` sits between a client and a server and misbehaves on request (statuses, delays,
rewritten bodies, a server that "lacks" sync-collection); it also logs every request it sees,
which is how tests count round trips without trusting the code under test.

tests/conftest.py registers this module as a plugin, so its fixtures are there everywhere.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import httpx
import pytest

# Radicale lets any Basic credentials in with ``--auth-type none``; its calendars live under
# ``/<user>/``. Xandikos has no authentication; ``--autocreate`` makes ``/user/calendars/``.
USER, PASSWORD = "syncd", "not-a-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class DavServer:
    """A running server: where it is and where new calendars go."""

    kind: str
    base_url: str
    home: str  # URL of the collection that holds calendars
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    auth: tuple[str, str] | None = (USER, PASSWORD)

    def new_collection(self, name: str | None = None) -> str:
        """Make a fresh calendar collection (MKCALENDAR) and return its URL."""
        url = f"{self.home}{name or uuid.uuid4().hex}/"
        response = httpx.request("MKCALENDAR", url, auth=self.auth, timeout=10)
        assert response.status_code == 201, response.text
        return url

    def put(self, url: str, ics: str) -> str:
        """Write ``ics`` unconditionally, as a person's calendar client does; the new etag."""
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        response = httpx.put(url, content=ics.encode(), headers=headers, auth=self.auth)
        assert response.status_code in (201, 204), response.text
        return str(response.headers.get("ETag", ""))

    def remove(self, url: str) -> None:
        response = httpx.delete(url, auth=self.auth)
        assert response.status_code in (200, 204), response.text

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def _start(kind: str, args: list[str], port: int, home: str, folder: Path) -> DavServer:
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "XDG_DATA_HOME": str(folder / "xdg")},
    )
    base = f"http://127.0.0.1:{port}"
    server = DavServer(kind, base, f"{base}{home}", process, log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server.stop()
            raise RuntimeError(f"{kind} exited: {(folder / 'server.log').read_text()[-2000:]}")
        try:
            httpx.request("OPTIONS", server.home, auth=server.auth, timeout=1)
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        return server
    server.stop()
    raise RuntimeError(f"{kind} did not answer on port {port} within 20 s")


def start_radicale(folder: Path, *extra: str) -> DavServer:
    port = free_port()
    args = ["-m", "radicale", "-C", "", "--server-hosts", f"127.0.0.1:{port}"]
    args += ["--storage-filesystem-folder", str(folder / "storage"), "--logging-level", "warning"]
    # Radicale holds every 401 for ``auth.delay`` (1 s), even the one that asks an anonymous
    # first request for credentials; tests have no brute force to slow down.
    args += ["--auth-delay", "0", *(extra or ("--auth-type", "none"))]
    return _start("radicale", args, port, f"/{USER}/", folder)


def start_xandikos(folder: Path) -> DavServer:
    port = free_port()
    args = ["-m", "xandikos", "serve", "-d", str(folder / "storage"), "--autocreate"]
    args += ["-l", "127.0.0.1", "-p", str(port), "--state-dir", str(folder / "state")]
    return _start("xandikos", args, port, "/user/calendars/", folder)


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DavServer]:
    server = start_radicale(tmp_path_factory.mktemp("radicale"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def xandikos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DavServer]:
    server = start_xandikos(tmp_path_factory.mktemp("xandikos"))
    yield server
    server.stop()


@pytest.fixture(params=["radicale", "xandikos"])
def dav_server(request: pytest.FixtureRequest) -> DavServer:
    """Each test that asks for this runs once against each server."""
    server: DavServer = request.getfixturevalue(request.param)
    return server


# -- a proxy that misbehaves on purpose ------------------------------------------------------


@dataclass
class Fault:
    """What the proxy does to matching requests: answer ``status`` itself (None: forward),
    after ``delay`` seconds, or forward and change the answer (``replace`` bytes, ``drop``
    headers)."""

    status: int | None = None
    method: str | None = None
    marker: bytes | None = None  # only requests whose body contains this
    times: int | None = None  # None: until cleared
    delay: float = 0.0
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    replace: tuple[bytes, bytes] | None = None
    drop: frozenset[str] = frozenset()  # response headers to leave out, lower case
    reset: bool = False  # close the connection without an answer (a connection reset)
    after: bool = False  # with ``reset``: forward the request first, then drop the answer

    def matches(self, method: str, body: bytes) -> bool:
        if self.times == 0 or (self.method is not None and self.method != method):
            return False
        return self.marker is None or self.marker in body


_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


class FaultProxy:
    """A loopback HTTP proxy to ``upstream`` with scripted faults; ``seen`` logs requests.

    ``hook``, when set, sees each request first as (method, path with query, body) and may
    return the ``Fault`` to apply to it instead of the scripted ones (the crash loop uses it
    to kill a process at its n-th write).
    """

    def __init__(self, upstream: str, certificate: tuple[Path, Path] | None = None) -> None:
        self.upstream = urlsplit(upstream).netloc
        self.seen: list[tuple[str, bytes]] = []
        self.faults: list[Fault] = []
        self.hook: Callable[[str, str, bytes], Fault | None] | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        scheme = "http"
        if certificate is not None:  # serve HTTPS with this (cert, key) pair
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*certificate)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        serve = partial(self._server.serve_forever, poll_interval=0.02)  # quick to shut down
        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()

    def at(self, url: str) -> str:
        """``url`` (on the upstream server) as seen through this proxy."""
        parts = urlsplit(url)
        return f"{self.url}{parts.path}"

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def methods(self) -> list[str]:
        with self._lock:
            return [method for method, _ in self.seen]

    def reset(self) -> None:
        with self._lock:
            self.seen.clear()
            self.faults.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _pick(self, method: str, body: bytes) -> Fault | None:
        with self._lock:
            self.seen.append((method, body))
            for fault in self.faults:
                if fault.matches(method, body):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
            return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except OSError:  # the client went away, or ``hang_up`` closed the socket
                    self.close_connection = True

            def __getattr__(self, name: str) -> object:
                if name.startswith("do_"):
                    return self.relay
                raise AttributeError(name)

            def relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._pick(self.command, body)
                hook = proxy.hook
                if hook is not None:
                    fault = hook(self.command, self.path, body) or fault
                if fault is not None and fault.delay:
                    time.sleep(fault.delay)
                if fault is not None and fault.reset and not fault.after:
                    self.hang_up()
                    return
                if fault is not None and fault.status is not None:
                    self.answer(fault.status, fault.headers, fault.body)
                    return
                connection = http.client.HTTPConnection(proxy.upstream, timeout=30)
                try:
                    # no Accept-Encoding: bodies stay plain, so ``replace`` can work on them
                    drop = {*_HOP, "accept-encoding"}
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in drop}
                    connection.request(self.command, self.path, body, headers)
                    reply = connection.getresponse()
                    content = reply.read()
                    kept = {k: v for k, v in reply.getheaders() if k.lower() not in _HOP}
                finally:
                    connection.close()
                if fault is not None and fault.reset:
                    self.hang_up()
                    return
                if fault is not None and fault.replace is not None:
                    content = content.replace(*fault.replace)
                if fault is not None:
                    kept = {k: v for k, v in kept.items() if k.lower() not in fault.drop}
                self.answer(reply.status, kept, content)

            def hang_up(self) -> None:
                """Close the connection at once, with a TCP reset rather than a clean FIN."""
                self.close_connection = True
                linger = struct.pack("ii", 1, 0)
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                self.connection.close()

            def answer(self, status: int, headers: dict[str, str], content: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

        return Handler


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with the openssl command."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
    args += ["-keyout", str(key), "-out", str(cert), "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(["openssl", *args], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def proxy(radicale: DavServer) -> Iterator[FaultProxy]:
    """A ``FaultProxy`` in front of the session's Radicale."""
    fault_proxy = FaultProxy(radicale.base_url)
    yield fault_proxy
    fault_proxy.close()
