"""The fault matrix for Agendize, Recras and Qmatic (OnlineAfspraken: tests/test_faults.py).

Each sandbox is served on a real loopback socket and made to fail by its own switches: 503s,
429 with Retry-After, answers slower than the client's timeout, bodies cut off or not JSON,
a 403 (Recras: the key lost its right), and tokens that expire or are revoked (an Agendize
sync token answered 410, Qmatic's OAuth token refused). The daemon's ``Runner`` runs two
syncs run by run on a clock the test steps: ``biz`` (the provider into a memory calendar)
and ``shop`` (the memory provider), and each test shows what tests/test_faults.py shows:
the typed error, an early retry no sooner than Retry-After (none for a refusal of the key),
the backoff, the report, ``shop`` undelayed, and after the fault clears every appointment
the provider holds -- the one booked during the fault included -- once in the calendar.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar
import pytest

from syncd.calendars.memory import MemoryCalendar
from syncd.config import parse_config
from syncd.daemon.backoff import BackoffPolicy
from syncd.daemon.metrics import Metrics
from syncd.daemon.runner import Runner
from syncd.feeds import FeedStore
from syncd.runtime import Runtime, open_store
from syncd.sandbox import agendize as agendize_sandbox
from syncd.sandbox import qmatic as qmatic_sandbox
from syncd.sandbox import recras as recras_sandbox
from syncd.sandbox.agendize_state import SandboxState as AgendizeState
from syncd.sandbox.qmatic_records import sample_identifiers
from syncd.sandbox.qmatic_state import QmaticState
from syncd.sandbox.recras_state import RecrasState
from syncd.state.store import Store
from tests.daemon_kit import StepClock
from tests.fault_kit import concurrently, served

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@dataclass
class Kind:
    state: Any
    app: Callable[[Any], Any]
    config: Callable[[Any, str], str]
    live: Callable[[Any], set[str]]
    book: Callable[[Any], str]
    heal: Callable[[Any], None]


def agendize() -> Kind:
    state = AgendizeState(api_key="fault-key", token="fault-token")
    for entry in state.seed(5, seed=8):
        entry.status = "accepted"

    def book(s: AgendizeState) -> str:
        entry = s.seed(1, seed=99)[0]
        entry.status = "accepted"
        return entry.id

    return Kind(
        state,
        agendize_sandbox.create_app,
        lambda s, url: (
            f'kind = "agendize"\nbase_url = "{url}/api/2.1/scheduling"\n'
            f'company_id = "{s.company_id}"\napi_key = "{s.api_key}"\ntoken = "{s.token}"'
        ),
        lambda s: {
            e.id
            for e in s.appointments.values()
            if not e.deleted and e.type == "normal" and e.status != "cancelled"
        },
        book,
        lambda s: setattr(s, "faults", type(s.faults)()),
    )


def recras() -> Kind:
    state = RecrasState(api_key="fault-key")
    for booking in state.seed(5, seed=8):
        state.set_status(booking.id, "definitief")

    def book(s: RecrasState) -> str:
        start = datetime.combine(s.now().date() + timedelta(days=40), datetime.min.time())
        made = s.book(1, start.replace(hour=14, tzinfo=s.now().tzinfo), {1: 2, 2: 0})
        s.set_status(made.id, "definitief")
        return str(made.id)

    return Kind(
        state,
        recras_sandbox.create_app,
        lambda s, url: f'kind = "recras"\nbase_url = "{url}"\napi_key = "{s.api_key}"',
        lambda s: {str(b.id) for b in s.bookings.values() if b.status != "geannuleerd"},
        book,
        lambda s: setattr(s, "faults", type(s.faults)()),
    )


def qmatic() -> Kind:
    state = QmaticState(account="acme", tenant_id="t1", client_id="syncd", client_secret="s")
    state.seed(5, seed=8)

    def book(s: QmaticState) -> str:
        before = set(s.appointments)
        s.seed(1, seed=99)
        (made,) = set(s.appointments) - before
        return str(made)

    return Kind(
        state,
        qmatic_sandbox.create_app,
        lambda s, url: (
            f'kind = "qmatic"\nbase_url = "{url}"\naccount = "{s.account}"\n'
            f'tenant_id = "{s.tenant_id}"\nclient_id = "{s.client_id}"\n'
            f'client_secret = "{s.client_secret}"\n'
            + "track = ["
            + ", ".join(f'"{p}"' for p in sample_identifiers(5))
            + "]"
        ),
        lambda s: set(s.appointments),
        book,
        lambda s: setattr(s, "faults", type(s.faults)()),
    )


KINDS = {"agendize": agendize, "recras": recras, "qmatic": qmatic}

# provider -> fault -> (switches, error kind, Retry-After floor); switches set attributes of
# ``state.faults``, or call a method of the state when the value is None.
FAULTS: dict[str, dict[str, tuple[dict[str, Any], str, float]]] = {
    "agendize": {
        "5xx": ({"server_errors": 99}, "TransientError", 0.0),
        "429": ({"rate_limited": 99, "retry_after": 120}, "RateLimited", 120.0),
        "timeout": ({"latency": 2.5}, "TransientError", 0.0),
        "malformed body": ({"malformed_json": 99}, "TransientError", 0.0),
        "error object under 200": ({"error_under_200": 99}, "TransientError", 0.0),
    },
    "recras": {
        "5xx": ({"server_errors": 99}, "TransientError", 0.0),
        "429": ({"rate_limited": 99, "retry_after": 120}, "RateLimited", 120.0),
        "timeout": ({"latency": 2.5}, "TransientError", 0.0),
        "malformed body": ({"garbled": 99}, "TransientError", 0.0),
        "403": ({"forbidden": 99}, "AuthError", 0.0),
    },
    "qmatic": {
        "5xx": ({"server_errors": 99}, "TransientError", 0.0),
        "429": ({"rate_limited": 99, "retry_after": 120}, "RateLimited", 120.0),
        "timeout": ({"latency": 2.5}, "TransientError", 0.0),
        "malformed body": ({"truncated": 99}, "TransientError", 0.0),
    },
}
CASES = [(name, fault) for name, faults in FAULTS.items() for fault in faults]


@dataclass
class World:
    name: str
    kind: Kind
    store: Store
    runtime: Runtime
    runner: Runner
    clock: StepClock
    retries: list[tuple[str, float]] = field(default_factory=list)

    async def settle(self, name: str) -> None:
        for attempt in range(5):
            result = await self.runner.run(name)
            assert result is not None, self.runner.states[name].last_error
            assert result.status == "ok", result.error
            if attempt and not result.plan.actions:
                return
        raise AssertionError(f"{name} does not settle")

    def shown(self) -> dict[str, int]:
        """Events of live appointments in the calendar, by the sandbox's id: how many each."""
        calendar = self.runtime.calendars["cal"]
        assert isinstance(calendar, MemoryCalendar)
        counts: dict[str, int] = {}
        for _etag, ics in calendar.items().values():
            for event in icalendar.Calendar.from_ical(ics).walk("VEVENT"):
                if str(event.get("X-SYNCD-SYNC")) != "biz":
                    continue
                if str(event.get("STATUS", "")).upper() == "CANCELLED":
                    continue
                ident = str(event["X-SYNCD-ID"]).rpartition(".")[2]  # Qmatic: pid.id
                counts[ident] = counts.get(ident, 0) + 1
        return counts

    def agrees(self) -> None:
        live = self.kind.live(self.kind.state)
        shown = self.shown()
        assert set(shown) == live, (sorted(live - set(shown)), sorted(set(shown) - live))
        assert all(count == 1 for count in shown.values()), shown


@pytest.fixture
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    name = request.param
    kind = KINDS[name]()
    with served(kind.app(kind.state)) as server:
        text = f"""
[store]
url = "sqlite:///{tmp_path / "state.db"}"
[providers.biz]
{kind.config(kind.state, server.url)}
timeout = "1s"
[providers.shop]
kind = "memory"
seed = 4
[calendars.cal]
kind = "memory"
[calendars.other]
kind = "memory"
[[syncs]]
name = "biz"
provider = "biz"
calendars = ["cal"]
[[syncs]]
name = "shop"
provider = "shop"
calendars = ["other"]
"""
        config = parse_config(text, environ={})
        store = open_store(config)
        runtime = Runtime.build(config)
        clock = StepClock()
        runner = Runner(
            store,
            runtime.syncs,
            FeedStore(store, config),
            Metrics(),
            policy=BackoffPolicy(),
            clock=clock,
        )
        built = World(name, kind, store, runtime, runner, clock)
        runner.retry = lambda sync, delay: built.retries.append((sync, delay))
        try:
            await built.settle("biz")
            await built.settle("shop")
            built.agrees()
            yield built
        finally:
            await runtime.aclose()
            store.close()


@pytest.mark.parametrize(("world", "fault"), CASES, indirect=["world"])
async def test_a_failing_provider_is_retried_backs_off_reports_and_converges(
    world: World, fault: str
) -> None:
    switches, kind, floor = FAULTS[world.name][fault]
    booked = world.kind.book(world.kind.state)
    for key, value in switches.items():
        setattr(world.kind.state.faults, key, value)

    (biz_took, biz), (shop_took, shop) = await concurrently(
        world.runner.run("biz"), world.runner.run("shop")
    )
    state = world.runner.states["biz"]
    assert biz is None
    assert state.error_kind.endswith(kind), state.last_error
    assert shop is not None
    assert shop.status == "ok"
    if fault == "timeout":  # biz waited out its timeout; shop did not wait for it
        assert shop_took < biz_took

    transient = kind != "AuthError"
    assert [sync for sync, _ in world.retries] == (["biz"] if transient else [])
    if transient:
        assert world.retries[0][1] >= max(floor, 1.0)
    gate = world.runner.gates["provider:biz"]
    assert gate.wait() >= floor
    assert gate.wait() > 0
    assert await world.runner.run("biz") is None
    assert state.failures == 1  # skipped, not tried again
    exposed = world.runner.metrics.expose({}, {}, {}).decode()
    assert f'syncd_errors_total{{kind="{state.error_kind}",sync="biz"}} 1.0' in exposed

    world.kind.heal(world.kind.state)
    world.clock.advance(gate.wait() + 1)
    await world.settle("biz")
    world.agrees()
    assert booked in world.shown()


@pytest.mark.parametrize("world", ["agendize", "qmatic"], indirect=True)
async def test_an_expired_or_revoked_token_costs_no_failure(world: World) -> None:
    """Agendize answers an expired sync token with 410: the window is listed again. Qmatic
    refuses a revoked OAuth token with 401: a new one is fetched and the call made again."""
    booked = world.kind.book(world.kind.state)
    state = world.kind.state
    if isinstance(state, AgendizeState):
        assert state.expire_tokens() > 0
    else:
        state.revoke_tokens()
    await world.settle("biz")
    assert world.runner.states["biz"].failures == 0
    assert not world.retries
    world.agrees()
    assert booked in world.shown()
