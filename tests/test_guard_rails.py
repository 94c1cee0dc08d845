"""Guard rails end to end, on every provider (DESIGN.md 6.3: nothing destructive without one).

For OnlineAfspraken, Agendize, Recras and Qmatic in turn, each sandbox served on loopback and
a real Radicale calendar, through ``syncd``'s own command line (the memory provider has the
same story in tests/test_cli.py):

1. ``sync --dry-run`` prints what a first sync would create and changes nothing: the calendar
   stays empty and the provider sees no write.
2. ``sync`` does it.
3. The business deletes most appointments (the sync deletes the events of cancelled ones,
   so a provider that reports a deletion as a cancellation counts too). ``sync --full``
   refuses (exit 1, the reason said, also in ``status``) and the calendar keeps every event;
   ``--dry-run --allow-mass-delete`` shows the deletions and still changes nothing;
   ``--allow-mass-delete`` carries them out.
4. A person empties the calendar of a two-way sync whose deletes cancel appointments. The
   next sync refuses: no appointment is cancelled at the provider, nothing is restored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd import cli
from syncd.sandbox import agendize as agendize_sandbox
from syncd.sandbox import onlineafspraken as oa_sandbox
from syncd.sandbox import qmatic as qmatic_sandbox
from syncd.sandbox import recras as recras_sandbox
from syncd.sandbox.agendize_state import SandboxState as AgendizeState
from syncd.sandbox.onlineafspraken_state import SandboxState as OAState
from syncd.sandbox.qmatic_records import sample_identifiers
from syncd.sandbox.qmatic_state import QmaticState
from syncd.sandbox.recras_state import RecrasState
from tests.fault_kit import calendar_objects, served
from tests.servers import PASSWORD, USER, DavServer

pytestmark = pytest.mark.slow

SEEDED = 14
KEPT = 6  # after the business deleted the rest: more than the guard's minimum of 5


@dataclass
class Kind:
    """One provider: its sandbox, its config, and the business's hand on it."""

    name: str
    state: Any
    app: Callable[[Any], Any]
    config: Callable[[Any, str], str]  # state, served URL -> the [providers.x] table's body
    live: Callable[[Any], set[str]]  # ids of the appointments that take place
    delete: Callable[[Any, str], None]
    writes: Callable[[Any], int]  # writes the sandbox has seen (its request counter)
    scope: str = ""


def oa_state() -> OAState:
    state = OAState(api_key="guard-key", api_secret="guard-secret")
    for booking in state.seed(SEEDED, seed=4):
        booking.label = 2  # confirmed: the seed makes some cancelled, which stay as marked
    return state


def agendize_state() -> AgendizeState:
    state = AgendizeState(api_key="guard-key", token="guard-token")
    for entry in state.seed(SEEDED, seed=4):
        entry.status = "accepted"
    return state


def qmatic_state() -> QmaticState:
    state = QmaticState(account="acme", tenant_id="t1", client_id="syncd", client_secret="s")
    state.seed(SEEDED, seed=4)
    return state


def recras_state() -> RecrasState:
    state = RecrasState(api_key="guard-key")
    for booking in state.seed(SEEDED, seed=4):
        state.set_status(booking.id, "definitief")
    return state


KINDS: dict[str, Callable[[], Kind]] = {
    "onlineafspraken": lambda: Kind(
        "onlineafspraken",
        oa_state(),
        oa_sandbox.create_app,
        lambda s, url: (
            f'base_url = "{url}/APIREST"\napi_key = "{s.api_key}"\napi_secret = "{s.api_secret}"'
        ),
        lambda s: {str(b.id) for b in s.appointments.values() if b.active},
        lambda s, i: s.remove(int(i)),
        lambda s: sum(n for m, n in s.requests.items() if m.startswith(("set", "cancel", "rem"))),
        'scope = { agenda = "1" }',
    ),
    "agendize": lambda: Kind(
        "agendize",
        agendize_state(),
        agendize_sandbox.create_app,
        lambda s, url: (
            f'base_url = "{url}/api/2.1/scheduling"\ncompany_id = "{s.company_id}"\n'
            f'api_key = "{s.api_key}"\ntoken = "{s.token}"'
        ),
        lambda s: {
            e.id
            for e in s.appointments.values()
            if not e.deleted and e.type == "normal" and e.status != "cancelled"
        },
        lambda s, i: s.delete(i),
        lambda s: sum(s.requests[m] for m in ("insert", "update", "delete")),
    ),
    "recras": lambda: Kind(
        "recras",
        recras_state(),
        recras_sandbox.create_app,
        lambda s, url: f'base_url = "{url}"\napi_key = "{s.api_key}"',
        lambda s: {str(b.id) for b in s.bookings.values() if b.status != "geannuleerd"},
        lambda s, i: s.remove(int(i)),
        lambda s: sum(n for m, n in s.requests.items() if "status" in m or "reserveer" in m),
    ),
    "qmatic": lambda: Kind(
        "qmatic",
        qmatic_state(),
        qmatic_sandbox.create_app,
        lambda s, url: (
            f'base_url = "{url}"\naccount = "{s.account}"\ntenant_id = "{s.tenant_id}"'
            f'\nclient_id = "{s.client_id}"\nclient_secret = "{s.client_secret}"\n'
            f"track = {sample_identifiers(5)!r}".replace("'", '"')
        ),
        lambda s: {a.id for a in s.appointments.values()},
        lambda s, i: s.cancel(i),
        lambda s: sum(s.requests[m] for m in ("reserve", "confirm", "reschedule", "delete")),
    ),
}


def config_text(folder: Path, kind: Kind, url: str, calendar: str) -> str:
    return f"""
[store]
url = "sqlite:///{folder / "state.db"}"

[providers.biz]
kind = "{kind.name}"
{kind.config(kind.state, url)}

[calendars.team]
kind = "caldav"
url = "{calendar}"
username = "{USER}"
password = "{PASSWORD}"

[[syncs]]
name = "biz"
provider = "biz"
calendars = ["team"]
direction = "two-way"
calendar_delete = "cancel"
cancelled = "delete"
{kind.scope}
"""


@pytest.fixture(params=list(KINDS))
def kind(request: pytest.FixtureRequest) -> Kind:
    return KINDS[request.param]()


@pytest.fixture
def sandbox(kind: Kind) -> Iterator[str]:
    with served(kind.app(kind.state)) as server:
        yield server.url


def syncd(capfd: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str]:
    code = cli.main([*args, "-c", str(config)])
    out, _err = capfd.readouterr()
    return code, out


def test_dry_run_and_the_mass_delete_guard_on_each_provider(
    kind: Kind,
    sandbox: str,
    radicale: DavServer,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    calendar = radicale.new_collection()
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, kind, sandbox, calendar))
    live = kind.live(kind.state)
    assert len(live) == SEEDED, live

    # 1. dry run: the plan, and no change anywhere
    writes = kind.writes(kind.state)
    code, out = syncd(capfd, config, "sync", "--dry-run")
    assert code == 0, out
    assert out.startswith(f"biz (dry run, nothing changed): {len(live)} created"), out
    assert out.count("  create event for ") == len(live)
    assert calendar_objects(calendar) == []
    assert kind.writes(kind.state) == writes

    # 2. the real thing
    code, out = syncd(capfd, config, "sync")
    assert code == 0, out
    assert out.startswith(f"biz: {len(live)} created"), out
    assert len(calendar_objects(calendar)) == len(live)

    # 3. most appointments deleted at the provider: refused until a person says yes
    gone = sorted(live)[: len(live) - KEPT]
    for native_id in gone:
        kind.delete(kind.state, native_id)
    code, out = syncd(capfd, config, "sync", "--full")
    assert code == 1, out
    assert out.startswith("biz: REFUSED, nothing changed: mass-delete guard: "), out
    assert "syncd sync --allow-mass-delete biz" in out
    assert len(calendar_objects(calendar)) == len(live)
    code, status = syncd(capfd, config, "status")
    assert code == 1
    assert "refused: mass-delete guard" in status

    code, out = syncd(capfd, config, "sync", "--full", "--dry-run", "--allow-mass-delete")
    assert code == 0, out
    assert f"{len(gone)} deleted" in out, out
    assert len(calendar_objects(calendar)) == len(live)

    code, out = syncd(capfd, config, "sync", "--full", "--allow-mass-delete")
    assert code == 0, out
    assert f"{len(gone)} deleted" in out, out
    assert len(calendar_objects(calendar)) == KEPT

    # 4. a person empties the calendar: the two-way sync would cancel the rest; refused
    kept = kind.live(kind.state)
    assert len(kept) == KEPT
    writes = kind.writes(kind.state)
    for href, _data in calendar_objects(calendar):
        answer = httpx.delete(f"{radicale.base_url}{href}", auth=(USER, PASSWORD))
        assert answer.status_code in (200, 204)
    code, out = syncd(capfd, config, "sync")
    assert code == 1, out
    assert "REFUSED, nothing changed: mass-delete guard: " in out, out
    assert kind.live(kind.state) == kept, "appointments were cancelled"
    assert kind.writes(kind.state) == writes
    assert calendar_objects(calendar) == []
