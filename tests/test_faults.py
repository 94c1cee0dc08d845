"""The fault matrix, provider side: OnlineAfspraken failing in every way DESIGN.md 6.5 names.

Each fault is injected for real: the sandbox's own switches (503s, 429 with Retry-After,
latency past the client's timeout, replies cut off mid-document, a server clock ten minutes
off) and a ``FaultProxy`` in front of it for connection resets. The daemon's ``Runner`` runs
the syncs of ``tests.fault_kit.FaultWorld`` run by run on a clock the test steps, and each
test shows the same five things:

1. the run fails with the typed error the fault means, and nothing is half-written;
2. retries: a transient error asks the scheduler for an early retry, never sooner than the
   server's Retry-After;
3. backoff: until then the failing backend's runs are skipped, not hammered;
4. reports: the error is in the runner's state, the status page and ``/metrics``;
5. convergence: once the fault clears, the calendar holds every change the business made
   meanwhile (lost, duplicates and diverged all zero) -- and all along the other sync, on
   other backends, ran undelayed.

A server clock ten minutes off is not a failure at all: the salt clock corrects itself and the
watermark notices a clock that went back, so those tests check the last point only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from syncd.errors import RateLimited, TransientError
from syncd.sandbox.onlineafspraken import create_app
from syncd.sandbox.onlineafspraken_state import AMSTERDAM, SandboxState
from syncd.state.history import sync_status
from tests.fault_kit import API_KEY, API_SECRET, FaultWorld, Served, concurrently, served
from tests.servers import DavServer, Fault, FaultProxy

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[Served]:
    with served(create_app(SandboxState(api_key=API_KEY, api_secret=API_SECRET))) as server:
        yield server


@pytest.fixture
async def world(
    sandbox_server: Served, radicale: DavServer, proxy: FaultProxy, tmp_path: Path
) -> AsyncIterator[FaultWorld]:
    state = SandboxState(api_key=API_KEY, api_secret=API_SECRET)
    state.seed(8, seed=5)
    sandbox_server.app.state.sandbox = state
    oa_proxy = FaultProxy(sandbox_server.url)
    built = FaultWorld.build(state, oa_proxy, proxy, radicale.new_collection(), tmp_path / "s.db")
    try:
        await built.settle("salon")
        await built.settle("shop")
        built.retries.clear()
        yield built
    finally:
        await built.close()
        oa_proxy.close()


def business(state: SandboxState) -> None:
    """What the business does while syncd cannot see it: a booking, a move, a cancel."""
    tomorrow = datetime.now(AMSTERDAM).replace(hour=11, minute=0, second=0, microsecond=0)
    state.book(tomorrow + timedelta(days=1), 45)
    active = [b for b in state.appointments.values() if b.active]
    state.move(active[0].id, active[0].start + timedelta(hours=1))
    state.cancel(active[1].id)


Inject = Callable[[FaultWorld], None]


def sandbox_switch(**switches: float) -> Inject:
    def inject(world: FaultWorld) -> None:
        for name, value in switches.items():
            setattr(world.state.faults, name, value)

    return inject


def resets(world: FaultWorld) -> None:
    world.oa_proxy.inject(Fault(reset=True))


def heal(world: FaultWorld) -> None:
    world.state.faults = type(world.state.faults)()
    world.oa_proxy.reset()


FAULTS = {
    "5xx": (sandbox_switch(server_errors=99), TransientError, "HTTP 503", 0.0),
    "429 with Retry-After": (
        sandbox_switch(rate_limited=99, retry_after=120),
        RateLimited,
        "HTTP 429",
        120.0,
    ),
    "timeout": (sandbox_switch(latency=2.5), TransientError, "timed out", 0.0),
    "connection reset": (resets, TransientError, "getAppointments", 0.0),
    "malformed body": (sandbox_switch(truncated=99), TransientError, "cannot be salvaged", 0.0),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_failing_provider_is_retried_backs_off_reports_and_converges(
    world: FaultWorld, fault: str
) -> None:
    inject, kind, words, floor = FAULTS[fault]
    business(world.state)
    inject(world)

    # 1. the run fails with the fault's typed error; shop, on other backends, is not held up
    (salon_took, salon), (shop_took, shop) = await concurrently(
        world.run("salon"), world.run("shop")
    )
    state = world.runner.states["salon"]
    assert salon is None
    assert state.failures == 1
    assert state.error_kind == kind.__name__
    assert words in state.last_error, state.last_error
    assert shop is not None
    assert shop.status == "ok"
    if fault == "timeout":  # salon waited out its timeout; shop did not wait for it
        assert shop_took < salon_took

    # 2. an early retry is asked for, never before the server's Retry-After
    assert len(world.retries) == 1
    name, delay = world.retries[0]
    assert name == "salon"
    assert delay >= floor
    assert delay > 0

    # 3. until then runs of salon are skipped (no request reaches the provider)
    gate = world.runner.gates["provider:salon"]
    assert gate.wait() >= floor
    world.state.requests.clear()
    assert await world.run("salon") is None
    assert state.failures == 1  # skipped, not failed again
    assert sum(world.state.requests.values()) == 0
    assert world.runner.gates["calendar:team"].wait() == 0  # only the culprit backs off

    # 4. reported: runner state, status page, metrics, run history
    metrics = world.metrics()
    assert f'syncd_errors_total{{kind="{state.error_kind}",sync="salon"}} 1.0' in metrics
    assert 'syncd_runs_skipped_total{sync="salon"} 1.0' in metrics
    async with world.web() as web:
        page = (await web.get("/")).text
    assert "failing (1 in a row)" in page
    assert words in page
    last = sync_status(world.store.engine, "salon").last_run
    assert last is not None
    assert last.status == "failed"

    # 5. healed: one retry after the backoff converges with nothing lost
    heal(world)
    world.wait_out_backoff()
    await world.settle("salon")
    assert state.failures == 0
    found = world.reckon()
    assert not found.counts, found.examples
    assert len(world.retries) == 1  # no retry while it worked


async def test_the_breaker_opens_after_five_failures_and_healthz_says_why(
    world: FaultWorld,
) -> None:
    world.state.faults.server_errors = 99
    for _ in range(5):
        world.wait_out_backoff()
        await world.run("salon")
    assert world.runner.states["salon"].failures == 5
    assert world.runner.breakers()["provider:salon"]
    gate = world.runner.gates["provider:salon"]
    assert gate.wait() >= 300 / 2  # a cooldown of minutes, not seconds
    async with world.web() as web:
        health = await web.get("/healthz")
    assert health.status_code == 503
    assert "sync salon: 5 runs failed in a row (TransientError)" in health.json()["problems"]
    assert (await world.run("shop")) is not None  # the other sync runs on
    heal(world)
    world.wait_out_backoff()
    await world.settle("salon")
    assert not world.runner.breakers()["provider:salon"]
    assert not world.reckon().counts


@pytest.mark.parametrize("skew", [600, -600])
async def test_a_server_clock_ten_minutes_off_loses_nothing(world: FaultWorld, skew: int) -> None:
    """+600: the salt is refused once and resent with the server's time; later the clock comes
    back and stamps changes before the stored watermark. -600: that at once. Either way the
    cursor is found to lie after the server's clock and the window is listed again."""
    world.state.faults.skew = skew
    business(world.state)
    await world.settle("salon")
    assert not world.reckon().counts
    world.state.faults.skew = 0
    business(world.state)
    await world.settle("salon")
    found = world.reckon()
    assert not found.counts, found.examples
    assert not world.retries
    assert world.runner.states["salon"].failures == 0
