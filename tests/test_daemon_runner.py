"""The runner in process: health flips with failures, metrics move, syncs stay independent."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from syncd.daemon.backoff import BackoffPolicy
from syncd.daemon.progress import Progress, bar
from syncd.daemon.runner import FAILING_AFTER
from syncd.errors import RateLimited, TransientError
from syncd.providers.base import Cursor, Pull, Scope, Window
from syncd.providers.memory import MemoryProvider
from syncd.reconcile.actions import Forget
from syncd.state import history
from syncd.state.changes import Change
from syncd.state.store import Store, utcnow
from tests.daemon_kit import TOKEN, Harness, memory_config

POLICY = BackoffPolicy(base=10, cap=60, trip_after=10)

SECOND_SYNC = """
[providers.other]
kind = "memory"
seed = 3

[calendars.other-cal]
kind = "memory"

[[syncs]]
name = "other"
provider = "other"
calendars = ["other-cal"]
"""


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness.build(memory_config(tmp_path / "state.db", extra=SECOND_SYNC), POLICY)
    yield h
    await h.close()


def provider(h: Harness, name: str = "shop") -> MemoryProvider:
    found = h.runtime.providers[name]
    assert isinstance(found, MemoryProvider)
    return found


async def metrics(h: Harness) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with h.client() as client:
        text = (await client.get("/metrics")).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def runs(values: dict[tuple[str, tuple[tuple[str, str], ...]], float], status: str) -> float:
    return values[("syncd_runs_total", (("status", status), ("sync", "shop")))]


async def run_after_backoff(h: Harness, name: str = "shop") -> object:
    h.clock.advance(max((g.wait() for g in h.runner.gates.values()), default=0))
    return await h.runner.run(name)


@pytest.mark.anyio
async def test_healthz_flips_to_503_while_a_provider_keeps_failing_and_back(h: Harness) -> None:
    async with h.client() as client:
        assert (await client.get("/healthz")).status_code == 200
        provider(h).fail_next(FAILING_AFTER, lambda: TransientError("shop", "503"), "pull")
        for attempt in range(FAILING_AFTER):
            assert (await client.get("/healthz")).status_code == 200, attempt
            assert await run_after_backoff(h) is None
        answer = await client.get("/healthz")
        assert answer.status_code == 503
        assert answer.json()["problems"] == [
            f"sync shop: {FAILING_AFTER} runs failed in a row (TransientError)"
        ]
        assert await run_after_backoff(h) is not None  # the provider recovered
        assert (await client.get("/healthz")).json() == {"status": "ok", "problems": []}
        h.scheduler_up[0] = False
        assert (await client.get("/healthz")).json()["problems"] == ["scheduler not running"]


@pytest.mark.anyio
async def test_metrics_move_with_a_sync(h: Harness) -> None:
    before = await metrics(h)
    assert runs(before, "ok") == 0
    await h.runner.run("shop")
    after = await metrics(h)
    assert runs(after, "ok") == 1
    created = ("syncd_items_total", (("change", "created"), ("sync", "shop")))
    assert after[created] == 12
    assert after[("syncd_journal_backlog", (("sync", "shop"),))] == 0
    assert after[("syncd_lag_seconds", (("sync", "shop"),))] >= 0
    assert after[("syncd_run_duration_seconds_count", (("sync", "shop"),))] == 1

    shop = provider(h)
    moved = shop.appointments()["1"]
    shop.reschedule("1", moved.start, moved.end + timedelta(minutes=1))
    shop.fail_next(1, lambda: RateLimited("shop", "429", retry_after=5), "pull")
    await h.runner.run("shop")
    await run_after_backoff(h)
    final = await metrics(h)
    assert final[("syncd_items_total", (("change", "updated"), ("sync", "shop")))] == 1
    assert final[("syncd_errors_total", (("kind", "RateLimited"), ("sync", "shop")))] == 1
    assert runs(final, "failed") == 1
    assert not any(TOKEN in name + str(labels) for name, labels in final)


@pytest.mark.anyio
async def test_retry_after_is_honoured_and_an_early_retry_is_asked_for(h: Harness) -> None:
    asked: list[tuple[str, float]] = []
    h.runner.retry = lambda name, delay: asked.append((name, delay))
    provider(h).fail_next(1, lambda: RateLimited("shop", "429", retry_after=90), "pull")
    assert await h.runner.run("shop") is None
    assert asked == [("shop", 90)]
    h.clock.advance(89)
    calls = provider(h).calls["pull"]
    assert await h.runner.run("shop") is None  # skipped: still inside Retry-After
    assert provider(h).calls["pull"] == calls
    h.clock.advance(1)
    assert await h.runner.run("shop") is not None


@pytest.mark.anyio
async def test_a_stuck_or_failing_sync_never_delays_another(h: Harness) -> None:
    release = asyncio.Event()
    shop = provider(h)
    real_pull = shop.pull

    async def stuck(scope: Scope, cursor: Cursor | None, window: Window) -> Pull:
        await release.wait()
        return await real_pull(scope, cursor, window)

    shop.pull = stuck  # type: ignore[method-assign]
    blocked = asyncio.create_task(h.runner.run("shop"))
    other = await h.runner.run("other")
    assert other is not None
    assert other.status == "ok"
    assert not blocked.done()
    # A second run of the stuck sync queues behind the first instead of overlapping it.
    queued = asyncio.create_task(h.runner.run("shop"))
    await asyncio.sleep(0)
    assert h.runner.states["shop"].lock.locked()
    assert not queued.done()
    release.set()
    assert (await blocked) is not None
    assert (await queued) is not None

    shop.pull = real_pull  # type: ignore[method-assign]
    shop.fail_next(5, lambda: TransientError("shop", "down"), "pull")
    assert await h.runner.run("shop") is None
    other_again = await h.runner.run("other")  # no backoff leaks across accounts
    assert other_again is not None
    assert other_again.status == "ok"


@pytest.mark.anyio
async def test_a_run_invalidates_the_feed_cache(h: Harness) -> None:
    await h.runner.run("shop")
    first = h.context.feeds.lookup(TOKEN)
    assert first is not None
    assert first.events == 12
    provider(h).cancel_by_business("2")
    await h.runner.run("shop")
    second = h.context.feeds.lookup(TOKEN)
    assert second is not None
    assert second.etag != first.etag
    assert b"STATUS:CANCELLED" in second.body
    assert b"STATUS:CANCELLED" not in first.body


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_long_run_shows_its_journal_as_a_progress_line(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        screen = Terminal()
        progress = Progress(store.engine, screen)
        assert progress.enabled
        assert not Progress(store.engine, io.StringIO()).enabled  # not a terminal: no line
        assert progress.count("shop") == (0, 0)
        run = history.start_run(store.engine, "shop", utcnow())
        assert bar("shop", *progress.count("shop")) == "shop: reading changes..."
        ids = store.journal("shop", run, [Forget(str(n)) for n in range(4)])
        store.commit("shop", [(ids[0], Change()), (ids[1], Change())])
        assert progress.count("shop") == (2, 4)
        line = bar("shop", 2, 4)
        assert line == "shop: [" + "#" * 15 + "." * 15 + "] 2/4 actions"
        progress.draw(line)
        progress.clear()
        assert screen.getvalue() == "\r" + line + "\r" + " " * len(line) + "\r"
    finally:
        store.close()
