"""The jobs APScheduler runs: one incremental and one full scan per sync, one-off runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from syncd.config import parse_config
from syncd.daemon.scheduler import DEBOUNCE, SyncScheduler
from syncd.reconcile.cycle import Result
from tests.daemon_kit import Harness, memory_config

pytestmark = pytest.mark.anyio


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness.build(memory_config(tmp_path / "state.db", interval="2m"))
    yield harness
    await harness.close()


@pytest.fixture
async def paused(h: Harness) -> AsyncIterator[SyncScheduler]:
    scheduler = SyncScheduler(h.runner)
    scheduler.plan(h.config, ["shop"])
    scheduler.scheduler.start(paused=True)
    yield scheduler
    scheduler.shutdown()
    await asyncio.sleep(0)


async def test_each_sync_gets_an_incremental_and_a_full_scan_job(paused: SyncScheduler) -> None:
    jobs = {job.id: job for job in paused.scheduler.get_jobs()}
    assert set(jobs) == {"shop:incremental", "shop:full"}
    for job in jobs.values():
        assert (job.max_instances, job.coalesce) == (1, True)
    incremental, full = jobs["shop:incremental"], jobs["shop:full"]
    assert incremental.args == ("shop", False)
    assert full.args == ("shop", True)
    assert incremental.trigger.interval == timedelta(minutes=2)
    assert incremental.trigger.jitter == 12
    assert full.trigger.interval == timedelta(hours=1)
    assert full.trigger.jitter == 30
    assert incremental.next_run_time <= datetime.now(UTC)  # the first run is at start-up
    assert not paused.running  # paused is not running: /healthz says so


async def test_webhook_runs_are_debounced_and_retries_never_postponed(
    paused: SyncScheduler,
) -> None:
    assert paused.poke("shop") == ["shop"]
    assert paused.poke("nobody") == []
    soon = paused.scheduler.get_job("shop:soon")
    first = soon.next_run_time
    assert timedelta(0) < first - datetime.now(UTC) <= timedelta(seconds=DEBOUNCE + 1)
    paused.poke("shop")  # a second delivery joins the pending run
    assert paused.scheduler.get_job("shop:soon").next_run_time == first
    paused.run_soon("shop", 300)  # a later retry does not push the pending run back
    assert paused.scheduler.get_job("shop:soon").next_run_time == first
    paused.run_soon("shop", 0)
    assert paused.scheduler.get_job("shop:soon").next_run_time < first


async def test_a_replan_starts_new_syncs_at_once_and_drops_the_ones_gone(
    paused: SyncScheduler, tmp_path: Path
) -> None:
    added = '[[syncs]]\nname = "added"\nprovider = "shop"\ncalendars = ["cal"]\n'
    config = parse_config(memory_config(tmp_path / "x.db", extra=added), environ={})
    paused.plan(config, ["added", "shop"])
    jobs = {job.id: job for job in paused.scheduler.get_jobs()}
    assert set(jobs) == {"added:incremental", "added:full", "shop:incremental", "shop:full"}
    now = datetime.now(UTC)
    assert jobs["added:incremental"].next_run_time <= now  # new: runs at once
    assert jobs["shop:incremental"].next_run_time > now + timedelta(seconds=30)  # kept: later
    paused.plan(config, ["added"])
    assert {job.id for job in paused.scheduler.get_jobs()} == {"added:incremental", "added:full"}


async def test_the_scheduler_runs_syncs_on_its_own(h: Harness) -> None:
    done = asyncio.Event()

    def ran(name: str, result: Result | None) -> None:
        if result is not None and result.status == "ok":
            done.set()

    h.runner.listeners.append(ran)
    scheduler = SyncScheduler(h.runner)
    scheduler.plan(h.config, ["shop"])
    scheduler.start()
    try:
        assert scheduler.running
        with anyio.fail_after(20):
            await done.wait()
    finally:
        scheduler.pause()
        await h.runner.drain(5)
        scheduler.shutdown()
        await asyncio.sleep(0)
    assert h.runner.states["shop"].last_success is not None
