"""The Agendize watch: registered and renewed with generated credentials kept in the state
store, deliveries checked and weighed by version, and the daemon's wiring of it all."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from structlog.testing import capture_logs

from syncd.config import parse_config
from syncd.model import BusyBlock
from syncd.providers.ag_client import Credentials
from syncd.providers.agendize import AgendizeProvider
from syncd.providers.base import Window
from syncd.runtime import Runtime
from syncd.sandbox.agendize import create_app
from syncd.sandbox.agendize_state import SandboxState
from syncd.sandbox.agendize_watch import deliver
from syncd.sandbox.onlineafspraken_state import ManualClock
from syncd.state.store import Store
from syncd.state.watch_vault import StoredWatchVault
from tests.agendize_kit import HOOK, World, Wrapped

pytestmark = pytest.mark.anyio
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2031, 3, 3, 8, 0, tzinfo=PARIS)
WINDOW = Window(NOW, NOW + timedelta(days=30))
BLOCK = BusyBlock("private", "dentist", NOW + timedelta(days=2), NOW + timedelta(days=2, hours=1))


class Vault:
    """A vault in memory that remembers every save, to see what was kept when."""

    def __init__(self) -> None:
        self.saves: list[dict[str, str]] = []

    def load(self) -> Mapping[str, str] | None:
        return self.saves[-1] if self.saves else None

    def save(self, value: Mapping[str, str]) -> None:
        self.saves.append(dict(value))


@pytest.fixture
async def world(store: Store) -> AsyncIterator[World]:
    clock = ManualClock(NOW)
    state = SandboxState(clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(state))) as http:
        provider = AgendizeProvider(
            "ag", "http://sb/api/2.1/scheduling", state.company_id,
            Credentials(oauth_token=state.oauth_token), client=http, now=clock,
            watch_renew=timedelta(hours=6),
        )  # fmt: skip
        yield World(state, clock, provider, store, Wrapped(None))


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_the_watch_is_registered_once_renewed_when_due_and_on_a_new_address(
    world: World,
) -> None:
    vault, watcher = Vault(), world.provider.watcher
    world.provider.watch("https://syncd.example/hooks/agendize/ag", vault)
    with capture_logs() as logs:
        await watcher.ensure()
    [watch] = world.state.watches.values()
    stored = vault.load()
    assert stored is not None
    assert (watch.username, watch.password) == (stored["username"], stored["password"])
    assert len(stored["password"]) >= 40
    assert stored["username"].startswith("syncd-")
    assert vault.saves[0]["password"] == stored["password"], "kept before it was sent"
    assert "registered_at" not in vault.saves[0]
    assert stored["watch_id"] == watch.id
    assert all(stored["password"] not in str(log) for log in logs)

    world.requests()
    world.clock.advance(5 * 3600)
    await watcher.ensure()
    assert world.requests() == {}, "not due: no request"
    world.state.lapse_watches()
    world.clock.advance(3600)
    await watcher.ensure()
    assert world.requests() == {"watch": 1}
    assert watch.status == "enabled", "registering again revives a lapsed watch"
    assert vault.load()["password"] == stored["password"], "the same credentials"  # type: ignore[index]
    world.provider.watch("https://new.example/hooks/agendize/ag", vault)
    await watcher.ensure()
    assert world.requests() == {"watch": 1}
    assert len(world.state.watches) == 2


async def test_a_failed_registration_is_a_warning_and_waits_an_hour(world: World) -> None:
    vault = Vault()
    world.provider.watch("https://syncd.example/hooks/agendize/ag", vault)
    world.state.faults.server_errors, world.state.faults.only = 1, "watch"
    with capture_logs() as logs:
        pull = await world.provider.pull({}, None, WINDOW)
    assert pull.complete, "the pull went on"
    assert [log["event"] for log in logs if log["log_level"] == "warning"] == [
        "agendize.watch_failed"
    ]
    assert vault.load() is not None, "the credentials were kept all the same"
    world.requests()
    world.clock.advance(1800)
    await world.provider.watcher.ensure()
    assert world.requests() == {}
    world.clock.advance(1801)
    await world.provider.watcher.ensure()
    assert world.requests() == {"watch": 1}
    assert world.state.watches


async def test_deliveries_are_verified_against_the_vault_in_constant_time(world: World) -> None:
    watcher = world.provider.watcher
    assert not watcher.verify(basic("u", "p")), "no watch registered: nothing is accepted"
    vault = Vault()
    vault.save({"username": "syncd-1", "password": "long-random"})
    world.provider.watch(HOOK, vault)
    assert watcher.verify(basic("syncd-1", "long-random"))
    for wrong in (
        basic("syncd-1", "long-randoM"),
        basic("syncd-2", "long-random"),
        basic("syncd-1long-random", ""),
        "Bearer long-random",
        "Basic !!!",
        "",
    ):
        assert not watcher.verify(wrong), wrong


async def test_only_a_newer_version_is_fresh(world: World) -> None:
    watcher = world.provider.watcher
    watcher.saw("7", (2, 100.0))
    assert not watcher.fresh("7", (2, 100.0)), "a repeat"
    assert not watcher.fresh("7", (1, 50.0)), "a late one"
    assert watcher.fresh("7", (3, 160.0))
    assert not watcher.fresh("7", (3, 160.0))
    assert watcher.fresh("8", (1, 10.0)), "never seen"
    assert watcher.fresh("9", (0, 0.0)), "no history to compare: it counts"


def test_the_vault_lives_in_the_state_store(store: Store) -> None:
    vault = StoredWatchVault(store, "clinic")
    assert vault.load() is None
    vault.save({"username": "u", "password": "p", "registered_at": "1.0"})
    assert StoredWatchVault(store, "clinic").load() == {
        "username": "u",
        "password": "p",
        "registered_at": "1.0",
    }
    assert StoredWatchVault(store, "other").load() is None
    assert "p" not in repr(vault).replace("StoredWatchVault", "")


CONFIG = """
[store]
url = "sqlite:///{db}"
[server]
public_url = "{public}"
[providers.clinic]
kind = "agendize"
company_id = "48213"
oauth_token = "t"
[providers.shop]
kind = "memory"
[calendars.cal]
kind = "memory"
[[syncs]]
name = "clinic"
provider = "clinic"
calendars = ["cal"]
[[syncs]]
name = "shop"
provider = "shop"
calendars = ["cal"]
"""


@pytest.mark.parametrize(
    ("public", "with_store", "address"),
    [
        ("https://syncd.example.org", True, "https://syncd.example.org/hooks/agendize/clinic"),
        ("https://syncd.example.org", False, ""),
        ("", True, ""),
    ],
)
async def test_the_daemon_runtime_gives_the_watch_its_address_and_vault(
    store: Store, tmp_path: Path, public: str, with_store: bool, address: str
) -> None:
    config = parse_config(CONFIG.format(db=tmp_path / "x.db", public=public), environ={})
    runtime = Runtime.build(config, store=store if with_store else None)
    try:
        provider = runtime.providers["clinic"]
        assert isinstance(provider, AgendizeProvider)
        assert provider.watcher.address == address
        assert (provider.watcher.vault is not None) == bool(address)
    finally:
        await runtime.aclose()


async def test_the_hook_refuses_bad_deliveries_and_runs_nothing_for_echoes(
    world: World, tmp_path: Path
) -> None:
    state = world.state
    booking = state.book(datetime(2031, 3, 4, 10, 0))
    async with world.web(tmp_path / "state.db") as web:
        hook = "/hooks/agendize/ag"
        stranger = await web.post(hook, json={"id": booking.id, "event": "created"})
        assert stranger.status_code == 403, "no watch yet: no delivery is trusted"
        await world.provider.pull({}, None, WINDOW)  # registers, and sees the booking
        [watch] = state.watches.values()
        auth = {"Authorization": basic(watch.username, watch.password)}
        assert (await web.post(hook, content=b"{", headers=auth)).status_code == 400
        unknown = await web.post(hook, json={"id": booking.id, "event": "moved"}, headers=auth)
        assert unknown.status_code == 400
        huge = await web.post(hook, content=b" " * 10_000_000, headers=auth)
        assert huge.status_code == 413
        state.outbox.clear()
        current = await world.provider.get(booking.id)
        assert current is not None
        later = datetime(2031, 3, 4, 11, 0, tzinfo=PARIS)
        await world.provider.move(current, later, later + timedelta(minutes=30))
        await world.provider.add_busy({"staff": "1"}, BLOCK)
        assert len(state.outbox) == 2
        await deliver(state, web)
        assert state.delivered == [("updated", 200), ("created", 200)]
        assert world.pokes == [], "syncd's own move and busy block run nothing"
        bare = {"id": booking.id, "event": "deleted"}  # a deletion need not carry the rest
        gone = await web.post(hook, json=bare, headers=auth)
        assert (gone.status_code, gone.json()["syncs"], world.pokes) == (200, 1, ["ag"])
