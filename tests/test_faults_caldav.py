"""The fault matrix, calendar and database side: Radicale behind a misbehaving proxy, and a
state database someone else holds locked.

The world is ``tests.fault_kit.FaultWorld`` (see ``tests/test_faults.py`` for the five things
every fault test shows). Here the culprit is the calendar: its gate alone backs off, so the
provider account stays usable for other syncs, and ``shop`` (memory provider and calendar)
runs on undelayed. Also here: a person editing an event between syncd's read and its write
(a real 412 from Radicale, resolved by the sync's conflict policy), an expired sync token,
and SQLite's "database is locked", before a run and in the middle of one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import icalendar
import pytest

from syncd.errors import RateLimited, StoreError, TransientError
from syncd.sandbox.onlineafspraken import create_app
from syncd.sandbox.onlineafspraken_state import AMSTERDAM, SandboxState
from syncd.state.history import sync_status
from tests.fault_kit import (
    API_KEY,
    API_SECRET,
    FaultWorld,
    Served,
    calendar_objects,
    concurrently,
    served,
)
from tests.servers import PASSWORD, USER, DavServer, Fault, FaultProxy

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[Served]:
    with served(create_app(SandboxState(api_key=API_KEY, api_secret=API_SECRET))) as server:
        yield server


async def build(
    sandbox_server: Served, radicale: DavServer, proxy: FaultProxy, tmp_path: Path, **options: str
) -> FaultWorld:
    state = SandboxState(api_key=API_KEY, api_secret=API_SECRET)
    state.seed(6, seed=7)
    sandbox_server.app.state.sandbox = state
    oa_proxy = FaultProxy(sandbox_server.url)
    world = FaultWorld.build(
        state, oa_proxy, proxy, radicale.new_collection(), tmp_path / "s.db", **options
    )
    await world.settle("salon")
    await world.settle("shop")
    world.retries.clear()
    return world


@pytest.fixture
async def world(
    sandbox_server: Served, radicale: DavServer, proxy: FaultProxy, tmp_path: Path
) -> AsyncIterator[FaultWorld]:
    built = await build(sandbox_server, radicale, proxy, tmp_path)
    try:
        yield built
    finally:
        await built.close()
        built.oa_proxy.close()


def business(state: SandboxState) -> None:
    tomorrow = datetime.now(AMSTERDAM).replace(hour=11, minute=0, second=0, microsecond=0)
    state.book(tomorrow + timedelta(days=1), 45)
    active = [b for b in state.appointments.values() if b.active]
    state.move(active[0].id, active[0].start + timedelta(hours=1))


SYNC_TOKEN_REFUSED = b'<D:error xmlns:D="DAV:"><D:valid-sync-token/></D:error>'

FAULTS: dict[str, tuple[Fault, type[Exception], str, float]] = {
    "5xx": (Fault(status=503), TransientError, "HTTP 503", 0.0),
    "429 with Retry-After": (
        Fault(status=429, headers={"Retry-After": "90"}),
        RateLimited,
        "rate limited",
        90.0,
    ),
    "507 on writes": (Fault(status=507, method="PUT"), TransientError, "HTTP 507", 0.0),
    "timeout": (Fault(delay=2.5), TransientError, "Timeout", 0.0),
    "connection reset": (Fault(reset=True), TransientError, "Error", 0.0),
    "malformed body": (
        Fault(method="REPORT", replace=(b"multistatus>", b"multistatus")),
        TransientError,
        "malformed XML",
        0.0,
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_failing_calendar_is_retried_backs_off_reports_and_converges(
    world: FaultWorld, fault: str
) -> None:
    injected, kind, words, floor = FAULTS[fault]
    business(world.state)
    world.dav_proxy.inject(injected)

    (salon_took, salon), (shop_took, shop) = await concurrently(
        world.run("salon"), world.run("shop")
    )
    state = world.runner.states["salon"]
    assert salon is None
    assert state.error_kind == kind.__name__, state.last_error
    assert words in state.last_error, state.last_error
    assert PASSWORD not in state.last_error
    assert shop is not None
    assert shop.status == "ok"
    if fault == "timeout":  # salon waited out its timeout; shop did not wait for it
        assert shop_took < salon_took

    [(name, delay)] = world.retries
    assert name == "salon"
    assert delay >= max(floor, 1.0)
    assert world.runner.gates["calendar:team"].wait() >= floor
    assert world.runner.gates["provider:salon"].wait() == 0  # the account stays usable
    assert await world.run("salon") is None
    assert state.failures == 1

    metrics = world.metrics()
    assert f'syncd_errors_total{{kind="{kind.__name__}",sync="salon"}} 1.0' in metrics
    async with world.web() as web:
        page = (await web.get("/")).text
    assert "failing (1 in a row)" in page

    world.dav_proxy.reset()
    world.wait_out_backoff()
    await world.settle("salon")
    found = world.reckon()
    assert not found.counts, found.examples
    assert world.store.pending_count("salon") == 0


async def test_an_expired_sync_token_means_one_listing_and_nothing_lost(
    world: FaultWorld,
) -> None:
    business(world.state)
    # Radicale's tokens are URLs under /ns/sync/: only requests carrying one are refused.
    world.dav_proxy.inject(
        Fault(status=403, method="REPORT", marker=b"/ns/sync/", body=SYNC_TOKEN_REFUSED, times=1)
    )
    await world.settle("salon")
    assert not world.reckon().counts
    assert world.runner.states["salon"].failures == 0


def person_moves(href_url: str, hours: int) -> None:
    """A person's client saves the event moved, without If-Match."""
    current = httpx.get(href_url, auth=(USER, PASSWORD))
    calendar = icalendar.Calendar.from_ical(current.content)
    for event in calendar.walk("VEVENT"):
        start, end = event.decoded("DTSTART"), event.decoded("DTEND")
        for key, value in (("DTSTART", start), ("DTEND", end)):
            del event[key]
            event.add(key, value + timedelta(hours=hours))
    headers = {"Content-Type": "text/calendar; charset=utf-8"}
    answer = httpx.put(href_url, content=calendar.to_ical(), headers=headers, auth=(USER, PASSWORD))
    assert answer.status_code in (201, 204)


async def test_a_412_from_a_concurrent_edit_is_a_conflict_the_policy_decides(
    world: FaultWorld,
) -> None:
    """The business moves an appointment; just as syncd writes that to the calendar, a person
    moves the same event there. Radicale answers syncd's If-Match PUT with 412. Both sides
    changed, so the sync's policy (provider-wins) keeps the provider's time, records a
    conflict, and the person's time is not written back."""
    booking = next(b for b in world.state.appointments.values() if b.active)
    provider_start = booking.start + timedelta(hours=1)
    world.state.move(booking.id, provider_start)
    base = world.team.split("/", 3)[2]
    edited: list[str] = []

    def hook(method: str, path: str, body: bytes) -> Fault | None:
        if method == "PUT" and not edited:
            edited.append(path)
            person_moves(f"http://{base}{path}", hours=3)
        return None

    world.dav_proxy.hook = hook
    result = await world.run("salon")
    world.dav_proxy.hook = None
    assert edited, "syncd wrote nothing"
    assert result is not None
    assert result.status == "ok"
    await world.settle("salon")
    assert world.state.get(booking.id).start == provider_start, "the person's move won"
    found = world.reckon()
    assert not found.counts, found.examples
    recorded = sync_status(world.store.engine, "salon").conflicts
    assert [(c["appointment"], c["resolution"]) for c in recorded] == [
        (str(booking.id), "provider kept")
    ]


@contextmanager
def locked(database: Path) -> Iterator[sqlite3.Connection]:
    """Another process's write transaction on the state database, held until the block ends."""
    connection = sqlite3.connect(database, isolation_level=None, timeout=0, check_same_thread=False)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield connection
    finally:
        connection.rollback()
        connection.close()


async def test_a_locked_state_database_is_reported_and_the_next_run_converges(
    sandbox_server: Served, radicale: DavServer, proxy: FaultProxy, tmp_path: Path
) -> None:
    world = await build(sandbox_server, radicale, proxy, tmp_path, busy_timeout="1s")
    try:
        business(world.state)
        database = tmp_path / "s.db"
        with locked(database):
            assert await world.run("salon") is None
        state = world.runner.states["salon"]
        assert state.error_kind == StoreError.__name__
        assert "database is locked" in state.last_error
        assert world.runner.gates["sync:salon"].wait() > 0
        metrics = world.metrics()
        assert 'syncd_errors_total{kind="StoreError",sync="salon"} 1.0' in metrics

        # Locked again in the middle of a run: the calendar took the write, the commit failed.
        world.wait_out_backoff()
        business(world.state)
        holder: list[Callable[[], None]] = []

        def hook(method: str, path: str, body: bytes) -> Fault | None:
            if method == "PUT" and not holder:
                lock = ExitStack()
                lock.enter_context(locked(database))
                holder.append(lock.close)
            return None

        world.dav_proxy.hook = hook
        assert await world.run("salon") is None
        world.dav_proxy.hook = None
        assert holder, "syncd wrote nothing"
        holder[0]()
        assert "database is locked" in state.last_error
        world.wait_out_backoff()
        await world.settle("salon")
        found = world.reckon()
        assert not found.counts, found.examples
        assert len(calendar_objects(world.team)) == len(
            [b for b in world.state.appointments.values() if b.status != 3]
        )
    finally:
        await world.close()
        world.oa_proxy.close()
