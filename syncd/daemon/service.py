"""The daemon's life: start, serve, reload on SIGHUP, stop on SIGTERM/SIGINT.

Start-up order, each step depending on the ones before: the state lock (so a second daemon
stops before touching anything), the store, the backends, the feeds (rendered from what the
store holds, before the first request can ask), the scheduler, the web server. Then
``READY=1``. Stopping goes the other way: the web server first (no new webhook can start a
run), then the scheduler: paused, runs in flight given ``DRAIN`` seconds to finish their
action and their cycle, the rest cancelled (their unfinished actions stay pending in the
journal and run first at the next start), then the backends, the store and the lock.
``DRAIN`` plus the web server's grace keep the whole stop under ten seconds.

A reload builds everything new beside the old (config, backends, feeds) and swaps only when
all of it worked, while no run is in flight; a bad config, or one changing what needs a
restart (``store.url``, ``server.listen``), is refused and the old one keeps running.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import anyio.to_thread
import structlog

from syncd.config import Config
from syncd.daemon.lock import StateLock
from syncd.daemon.metrics import Metrics
from syncd.daemon.notify import Notifier
from syncd.daemon.progress import Progress
from syncd.daemon.runner import Runner
from syncd.daemon.scheduler import SyncScheduler
from syncd.errors import SyncdError
from syncd.feeds import FeedStore
from syncd.log import RedactSecrets
from syncd.reconcile.cycle import Result
from syncd.runtime import Runtime, open_store
from syncd.web.app import create_app
from syncd.web.context import WebContext
from syncd.web.server import WebServer

log = structlog.get_logger("syncd.daemon")

#: Seconds runs in flight get to finish when the daemon stops.
DRAIN = 6.0

Loader = Callable[[], Config]


class Daemon:
    def __init__(
        self,
        config: Config,
        loader: Loader | None = None,
        *,
        notifier: Notifier | None = None,
        on_config: Callable[[Config, list[str]], None] | None = None,
        port: int | None = None,
    ) -> None:
        self.config = config
        self.loader = loader
        self.notifier = notifier or Notifier()
        self.on_config = on_config
        self.port = config.server.port if port is None else port
        self.secrets: list[str] = config.secrets()
        self.stop_requested = asyncio.Event()
        self._stack = AsyncExitStack()
        self._reloading = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- start and stop ---------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise

    async def _start(self) -> None:
        config = self.config
        stack = self._stack
        lock = StateLock.acquire(config.store.url)
        stack.callback(lock.release)
        self.store = open_store(config)
        stack.callback(self.store.close)
        self.runtime = Runtime.build(config, store=self.store)
        stack.push_async_callback(lambda: self.runtime.aclose())
        self.feeds = FeedStore(self.store, config)
        await anyio.to_thread.run_sync(self.feeds.refresh_all)
        self.metrics = Metrics()
        self.runner = Runner(
            self.store,
            self.runtime.syncs,
            self.feeds,
            self.metrics,
            redact=self._redact,
            progress=Progress(self.store.engine),
        )
        self.scheduler = SyncScheduler(self.runner)
        self.scheduler.plan(config, self.runner.syncs)
        self.scheduler.start()
        stack.push_async_callback(self._stop_scheduler)
        self.context = WebContext(
            config,
            self.store,
            self.feeds,
            self.runner,
            self.metrics,
            providers=self.runtime.providers,
            scheduler_running=lambda: self.scheduler.running,
            poke=self.scheduler.poke,
        )
        self.web = WebServer(create_app(self.context), config.server.host, self.port)
        await self.web.start()
        stack.push_async_callback(self.web.stop)
        self.spawn(self.notifier.watchdog(lambda: self.scheduler.running))
        self.runner.listeners.append(self._ran)
        self.notifier.ready(self._status())
        log.info("syncd started", listen=self.web.url, syncs=sorted(self.runner.syncs))

    async def stop(self) -> None:
        """Stop everything in reverse start order; safe to call more than once."""
        self.notifier.stopping()
        for task in self._tasks:
            task.cancel()
        await self._stack.aclose()
        log.info("syncd stopped")

    async def _stop_scheduler(self) -> None:
        self.scheduler.pause()
        cancelled = await self.runner.drain(DRAIN)
        if cancelled:
            log.warning(
                "runs cancelled at stop; their actions resume at next start", runs=cancelled
            )
        self.scheduler.shutdown()
        await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a loop callback

    async def serve(self, started: Callable[[Daemon], None] | None = None) -> int:
        """Run until SIGTERM or SIGINT (or ``stop_requested``); SIGHUP reloads.

        ``started`` is called once everything runs, e.g. to print the URLs. Returns the exit
        code: 0, since every way here is an orderly stop.
        """
        loop = asyncio.get_running_loop()
        await self.start()
        try:
            if started is not None:
                started(self)
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop_requested.set)
            loop.add_signal_handler(signal.SIGHUP, lambda: self.spawn(self.reload()))
            await self.stop_requested.wait()
            log.info("stop requested")
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await self.stop()
        return 0

    def spawn(self, work: Any) -> None:
        """Run ``work`` beside the daemon; it is cancelled when the daemon stops."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- reload -------------------------------------------------------------------------------

    async def reload(self) -> bool:
        """Load the config again and switch to it; False (old config kept) when refused."""
        if self.loader is None:
            return False
        async with self._reloading:
            self.notifier.reloading()
            try:
                adopted = await self._reload()
            finally:
                self.notifier.ready(self._status())
            return adopted

    async def _reload(self) -> bool:
        assert self.loader is not None
        try:
            new = self.loader()
            if (
                new.store.url != self.config.store.url
                or new.server.listen != self.config.server.listen
            ):
                raise SyncdError("store.url and server.listen change only with a restart")
            runtime = Runtime.build(new, store=self.store)
        except SyncdError as err:
            log.error("reload refused; the running config stays", error=self._redact(str(err)))
            return False
        feeds = FeedStore(self.store, new)
        await anyio.to_thread.run_sync(feeds.refresh_all)
        self.secrets = sorted({*self.secrets, *new.secrets()})
        if self.on_config is not None:
            self.on_config(new, self.secrets)
        async with AsyncExitStack() as idle:  # swap only while no run is in flight
            for state in self.runner.states.values():
                await idle.enter_async_context(state.lock)
            old = self.runtime
            self.runner.use(runtime.syncs, feeds)
            self.runtime, self.feeds, self.config = runtime, feeds, new
            self.scheduler.plan(new, self.runner.syncs)
            ctx = self.context
            ctx.config, ctx.feeds, ctx.providers = new, feeds, runtime.providers
        await old.aclose()
        log.info("config reloaded", syncs=sorted(self.runner.syncs))
        return True

    # -- helpers ------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        redacted: str = RedactSecrets(self.secrets).redact(text)
        return redacted

    def _ran(self, name: str, result: Result | None) -> None:
        outcome = result.status if result is not None else "failed or skipped"
        self.notifier.status(f"{self._status()}; last run: {name} {outcome}")

    def _status(self) -> str:
        return f"serving {self.web.url}; {len(self.runner.syncs)} syncs"
