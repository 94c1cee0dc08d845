"""Runs one sync at a time, safely: the only way the daemon ever calls ``run_cycle``.

Every scheduled job, webhook delivery and retry of a sync goes through ``Runner.run``, which
promises:

* Runs of one sync never overlap (a lock per sync): the incremental job, the full scan and a
  webhook-triggered run queue behind each other instead of racing on the same state.
* Runs of different syncs never wait for each other; a failing sync only delays itself and
  the syncs sharing the failing backend, through that backend's ``Gate``.
* ``run`` never raises. A failure is counted, logged (through the redacting log handler) and
  kept, redacted, for ``/healthz`` and the status page; a ``TransientError`` asks the
  scheduler for an early retry once the backend's backoff has passed.
* On a terminal, a run that takes a while shows a progress line (``progress.py``).
* After each run the sync's feeds are refreshed in a worker thread, so a large feed's
  render never stalls the web server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio.to_thread
import structlog

from syncd.daemon.backoff import BackoffPolicy, Breaker, Gate
from syncd.daemon.metrics import Metrics
from syncd.daemon.progress import Progress
from syncd.errors import BackendError, TransientError
from syncd.feeds import FeedStore
from syncd.reconcile.cycle import Result, Sync, run_cycle
from syncd.state.history import sync_status
from syncd.state.store import Store

log = structlog.get_logger("syncd.daemon")

#: A sync whose last this-many runs failed makes /healthz answer 503.
FAILING_AFTER = 3

Listener = Callable[[str, Result | None], None]


@dataclass
class SyncState:
    """What the daemon knows about one sync beyond the state database."""

    name: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    failures: int = 0
    last_error: str = ""
    error_kind: str = ""
    last_success: datetime | None = None
    last_result: Result | None = None
    running: bool = False


class Runner:
    def __init__(
        self,
        store: Store,
        syncs: Sequence[Sync],
        feeds: FeedStore,
        metrics: Metrics,
        *,
        redact: Callable[[str], str] = str,
        policy: BackoffPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        progress: Progress | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.redact = redact
        self.policy = policy or BackoffPolicy()
        self.clock = clock
        self.progress = progress if progress is not None and progress.enabled else None
        self.retry: Callable[[str, float], None] = lambda name, delay: None
        self.listeners: list[Listener] = []
        self.stopping = False
        self.gates: dict[str, Gate] = {}
        self.states: dict[str, SyncState] = {}
        self._tasks: set[asyncio.Task[object]] = set()
        self.use(syncs, feeds)

    def use(self, syncs: Sequence[Sync], feeds: FeedStore) -> None:
        """Take (new) syncs and feeds, keeping the state of syncs and backends that stay."""
        self.syncs = {sync.name: sync for sync in syncs}
        self.feeds = feeds
        self.states = {name: self.states.get(name) or self._state(name) for name in self.syncs}
        self.metrics.declare(self.syncs)

    def _state(self, name: str) -> SyncState:
        state = SyncState(name)
        state.last_success = sync_status(self.store.engine, name).last_success
        return state

    def gates_of(self, sync: Sync) -> dict[str, Gate]:
        keys = [f"provider:{sync.provider.name}", *(f"calendar:{c}" for c in sync.calendars)]
        keys.append(f"sync:{sync.name}")
        for key in keys:
            if key not in self.gates:
                self.gates[key] = Gate(key, self.policy, self.clock)
        return {key: self.gates[key] for key in keys}

    async def run(self, name: str, full: bool = False) -> Result | None:
        """One cycle of sync ``name`` unless a backend it needs backs off; never raises."""
        sync, state = self.syncs.get(name), self.states.get(name)
        if sync is None or state is None or self.stopping:
            return None
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            async with state.lock:
                if self.stopping:
                    return None
                return await self._run(sync, state, full)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _run(self, sync: Sync, state: SyncState, full: bool) -> Result | None:
        gates = self.gates_of(sync)
        waiting = [g for g in gates.values() if not g.ready()]
        if waiting:
            self.metrics.skipped.labels(sync.name).inc()
            log.debug("run skipped: backing off", sync=sync.name, backend=waiting[0].name)
            return None
        for gate in gates.values():
            gate.begin()
        state.running = True
        started = self.clock()
        result: Result | None = None
        watch = asyncio.create_task(self.progress.watch(sync.name)) if self.progress else None
        try:
            result = await run_cycle(self.store, sync, full=full)
        except Exception as err:  # every failure is the scheduler's to count, none may escape
            self._failed(sync, state, gates, err, self.clock() - started)
        else:
            self._succeeded(sync, state, gates, result, self.clock() - started)
        finally:
            state.running = False
            if watch is not None and self.progress is not None:
                watch.cancel()
                self.progress.clear()
        await self._refresh_feeds(sync.name)
        for listener in self.listeners:
            listener(sync.name, result)
        return result

    def _succeeded(
        self, sync: Sync, state: SyncState, gates: dict[str, Gate], result: Result, took: float
    ) -> None:
        for gate in gates.values():
            gate.succeeded()
        state.failures, state.last_error, state.error_kind = 0, "", ""
        state.last_result = result
        if result.status == "ok":
            state.last_success = datetime.now(UTC)
        self.metrics.ran(result, took)
        counts = {k: v for k, v in result.plan.counts().items() if v}
        if counts or result.status != "ok":
            log.info("sync run", sync=sync.name, status=result.status, changes=counts)

    def _failed(
        self, sync: Sync, state: SyncState, gates: dict[str, Gate], err: Exception, took: float
    ) -> None:
        culprit = f"sync:{sync.name}"
        if isinstance(err, BackendError):
            if err.backend == sync.provider.name:
                culprit = f"provider:{err.backend}"
            elif err.backend in sync.calendars:
                culprit = f"calendar:{err.backend}"
        delay = gates[culprit].failed(err)
        for key, gate in gates.items():
            if key != culprit:
                gate.released()
        state.failures += 1
        state.error_kind = type(err).__name__
        state.last_error = self.redact(f"{state.error_kind}: {err}")
        self.metrics.failed(sync.name, err, took)
        log.warning(
            "sync run failed",
            sync=sync.name,
            error=state.last_error,
            failures=state.failures,
            backend=culprit,
            retry_in=round(delay, 1),
        )
        if isinstance(err, TransientError):
            self.retry(sync.name, delay)

    async def _refresh_feeds(self, name: str) -> None:
        if not self.feeds.names(name):
            return
        try:
            await anyio.to_thread.run_sync(self.feeds.refresh, name)
        except Exception as err:
            self.metrics.errors.labels(name, "feed").inc()
            log.error("feed refresh failed", sync=name, error=self.redact(str(err)))

    def problems(self) -> list[str]:
        """Why the daemon is unhealthy: one line per sync failing beyond its threshold.

        Only the error's kind is given: /healthz is often open to a whole network, and an
        error message may name internal hosts. The status page shows the message.
        """
        return [
            f"sync {s.name}: {s.failures} runs failed in a row ({s.error_kind})"
            for s in self.states.values()
            if s.failures >= FAILING_AFTER
        ]

    def lag(self) -> dict[str, float | None]:
        now = datetime.now(UTC)
        return {
            name: (now - s.last_success).total_seconds() if s.last_success else None
            for name, s in self.states.items()
        }

    def breakers(self) -> dict[str, bool]:
        return {key: gate.breaker is not Breaker.CLOSED for key, gate in self.gates.items()}

    async def drain(self, grace: float) -> int:
        """Let runs in flight finish (at most ``grace`` seconds), then cancel the rest.

        A cancelled run leaves its unfinished actions pending in the journal; the next start
        applies them first. Returns how many runs had to be cancelled.
        """
        self.stopping = True
        current = asyncio.current_task()
        tasks = {t for t in self._tasks if t is not current and not t.done()}
        if not tasks:
            return 0
        _done, late = await asyncio.wait(tasks, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=1.0)
        return len(late)
