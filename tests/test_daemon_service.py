"""The daemon in process: reload, the state lock, systemd notify, stopping mid-run."""

from __future__ import annotations

import asyncio
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from syncd.config import Config, parse_config
from syncd.daemon.lock import AlreadyRunning, StateLock
from syncd.daemon.notify import Notifier
from syncd.daemon.service import Daemon
from syncd.errors import ConfigError, UserError
from syncd.providers.base import Cursor, Pull, Scope, Window
from syncd.providers.memory import MemoryProvider
from tests.daemon_kit import TOKEN, memory_config

pytestmark = pytest.mark.anyio
NEW_TOKEN = "addedTokenAddedTokenAdded04"


def config(tmp_path: Path, extra: str = "") -> Config:
    return parse_config(memory_config(tmp_path / "state.db", extra=extra), environ={})


@pytest.fixture
def datagrams() -> Iterator[tuple[str, socket.socket]]:
    """A unix datagram socket standing in for systemd's notify socket."""
    with tempfile.TemporaryDirectory() as folder:  # short: unix socket paths max ~100 bytes
        path = str(Path(folder) / "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.setblocking(False)
        yield path, sock
        sock.close()


async def receive(sock: socket.socket, wanted: str) -> list[str]:
    """Datagrams up to and including the first holding ``wanted``."""
    seen: list[str] = []
    loop = asyncio.get_running_loop()
    with anyio.fail_after(10):
        while not any(wanted in message for message in seen):
            seen.append((await loop.sock_recv(sock, 4096)).decode())
    return seen


async def test_reload_refuses_bad_configs_and_adopts_a_good_one(tmp_path: Path) -> None:
    answers: list[Config | Exception] = [
        ConfigError(["syncs[0].interval: must be a duration"], "config.toml"),
        parse_config(
            memory_config(tmp_path / "state.db").replace("127.0.0.1:8765", "127.0.0.1:9999"),
            environ={},
        ),
        config(tmp_path, f'[feeds.added]\nsync = "shop"\ntoken = "{NEW_TOKEN}"\n'),
    ]

    def loader() -> Config:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    daemon = Daemon(config(tmp_path), loader, port=0)
    await daemon.start()
    try:
        async with httpx.AsyncClient(base_url=daemon.web.url) as client:
            assert await daemon.reload() is False  # invalid
            assert await daemon.reload() is False  # listen changes need a restart
            assert daemon.config.server.listen == "127.0.0.1:8765"
            assert (await client.get(f"/feeds/{TOKEN}.ics")).status_code == 200
            assert (await client.get(f"/feeds/{NEW_TOKEN}.ics")).status_code == 404
            assert await daemon.reload() is True
            assert (await client.get(f"/feeds/{NEW_TOKEN}.ics")).status_code == 200
            assert (await client.get("/healthz")).status_code == 200
    finally:
        await daemon.stop()


async def test_a_second_daemon_on_the_same_database_is_refused(tmp_path: Path) -> None:
    first = Daemon(config(tmp_path), port=0)
    await first.start()
    try:
        second = Daemon(config(tmp_path), port=0)
        with pytest.raises(AlreadyRunning, match="already running on the state database"):
            await second.start()
        async with httpx.AsyncClient(base_url=first.web.url) as client:
            assert (await client.get("/healthz")).status_code == 200
    finally:
        await first.stop()
    StateLock.acquire(f"sqlite:///{tmp_path / 'state.db'}").release()  # free again


def test_in_memory_databases_need_no_lock() -> None:
    one, two = StateLock.acquire("sqlite://"), StateLock.acquire("sqlite:///:memory:")
    one.release()
    two.release()


async def test_notify_ready_status_and_watchdog(datagrams: tuple[str, socket.socket]) -> None:
    path, sock = datagrams
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})
    assert notifier.watchdog_interval == 0.05
    notifier.ready("serving")
    assert (await receive(sock, "READY=1")) == ["READY=1\nSTATUS=serving"]
    pinging = asyncio.create_task(notifier.watchdog(lambda: True))
    try:
        await receive(sock, "WATCHDOG=1")
        await receive(sock, "WATCHDOG=1")
    finally:
        pinging.cancel()
    assert Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_PID": "1"}).watchdog_interval is None
    Notifier({}).ready("nowhere")  # no socket: nothing happens, nothing fails


async def test_stop_lets_the_run_in_flight_finish(tmp_path: Path) -> None:
    daemon = Daemon(config(tmp_path), port=0)
    await daemon.start()
    provider = daemon.runtime.providers["shop"]
    assert isinstance(provider, MemoryProvider)
    await daemon.runner.run("shop")  # whatever the first scheduled run did, one is done now
    entered, release = asyncio.Event(), asyncio.Event()
    real = provider.pull

    async def slow_pull(scope: Scope, cursor: Cursor | None, window: Window) -> Pull:
        entered.set()
        await release.wait()
        return await real(scope, cursor, window)

    provider.pull = slow_pull  # type: ignore[method-assign]
    provider.book(
        provider.appointments()["1"].start, provider.appointments()["1"].end, title="Late"
    )
    in_flight = asyncio.create_task(daemon.runner.run("shop"))
    await entered.wait()
    stopping = asyncio.create_task(daemon.stop())
    await asyncio.sleep(0)
    release.set()
    result = await in_flight  # a cancelled run would raise CancelledError here
    await stopping
    assert result is not None
    assert result.plan.counts().get("create") == 1


async def test_a_failed_start_undoes_what_it_did(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = Daemon(config(tmp_path), port=port)
        with pytest.raises(UserError, match=f"cannot listen on 127.0.0.1:{port}"):
            await daemon.start()
    assert not daemon.scheduler.running
    StateLock.acquire(f"sqlite:///{tmp_path / 'state.db'}").release()  # the lock was let go
