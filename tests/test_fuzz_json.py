"""Fuzzing the JSON providers: Agendize, Recras and Qmatic replies, and webhook deliveries.

Each provider's sandbox answers for real; a transport in between mutates every JSON answer
as Hypothesis says: values of the wrong type (a number where a date goes, a list where a
name goes), impossible dates, huge strings, nesting a hundred thousand deep, keys missing;
or damages the whole body (cut off, Latin-1 or raw bytes, empty, an HTML error page, nested
``[`` until the parser gives up). Whatever comes, a full pull ends as a ``Pull`` whose bad
items are ``BadItem``s naming their id, or as a ``syncd.errors.BackendError`` naming the
provider -- never as any other exception (DESIGN.md 6.4).

Webhook deliveries are fuzzed through syncd's web app the same way: every answer is 200,
400, 403 or 404, never a 500.

The budget is fixed by ``max_examples``; tests/fuzz_report.py prints how many cases ran.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from syncd.errors import BackendError, BadItem
from syncd.model import Appointment, Deleted
from syncd.providers.ag_client import Credentials as AgendizeCredentials
from syncd.providers.ag_mapping import zone_named
from syncd.providers.agendize import AgendizeProvider
from syncd.providers.base import Provider, Pull, Window
from syncd.providers.qmatic import QmaticProvider
from syncd.providers.qmatic_client import Credentials as QmaticCredentials
from syncd.providers.qmatic_mapping import Reading as QmaticReading
from syncd.providers.qmatic_mapping import read_appointment
from syncd.providers.recras import RecrasProvider
from syncd.sandbox import agendize as agendize_sandbox
from syncd.sandbox import qmatic as qmatic_sandbox
from syncd.sandbox import recras as recras_sandbox
from syncd.sandbox.agendize_state import SandboxState as AgendizeState
from syncd.sandbox.qmatic_records import sample_identifiers, stable_id
from syncd.sandbox.qmatic_state import QmaticState
from syncd.sandbox.recras_state import RecrasState
from tests.daemon_kit import Harness
from tests.fuzz_report import ran

NOW = datetime.now(UTC)
WINDOW = Window(NOW - timedelta(days=30), NOW + timedelta(days=365))
FUZZ = settings(
    max_examples=70,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- mutations -----------------------------------------------------------------------------------

HUGE = "\u2063HUGE"  # made 300,000 characters long when applied: a failing case stays short
DEEP = "\u2063DEEP"  # a list nested 500 deep (deeper ones are the "deep" damage to a body)
bad_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "2026-02-30T25:61:00",
            "0000-00-00 00:00:00",
            "9999-12-31T23:59:59+99:00",
            "not a date",
            "Europe/Nowhere",
            HUGE,
            DEEP,
        ]
    ),
    st.just([]),
    st.just({}),
    st.just([1, "a", None]),
)


@dataclass(frozen=True)
class Mutation:
    """What to do to one JSON answer: ``changes`` say which values to replace (by the order
    a walk meets them) and with what; ``damage`` is what to do to the body as a whole."""

    changes: tuple[tuple[int, Any], ...]
    drop: tuple[int, ...]
    damage: str
    share: float


mutations = st.builds(
    Mutation,
    changes=st.lists(st.tuples(st.integers(0, 400), bad_values), max_size=6).map(tuple),
    drop=st.lists(st.integers(0, 400), max_size=3).map(tuple),
    damage=st.sampled_from(
        ["values"] * 8 + ["none", "cut", "latin-1", "bytes", "empty", "html", "deep", "huge"]
    ),
    share=st.floats(0, 1),
)


def real(value: Any) -> Any:
    if value == HUGE:
        return "x" * 300_000
    if value == DEEP:
        nested: list[Any] = []
        for _ in range(500):
            nested = [nested]
        return nested
    return value


def mutate(data: Any, mutation: Mutation) -> Any:
    """``data`` with the values at the mutation's positions (in walk order) replaced, and the
    keys at its ``drop`` positions removed."""
    changes = dict(mutation.changes)
    position = 0

    def walk(value: Any) -> Any:
        nonlocal position
        here = position
        position += 1
        if here in changes:
            return real(changes[here])
        if isinstance(value, dict):
            kept = {}
            for key, item in value.items():
                if position in mutation.drop:
                    position += 1
                    continue
                kept[key] = walk(item)
            return kept
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return walk(data)


def damaged(content: bytes, mutation: Mutation) -> bytes:
    damage = mutation.damage
    if damage in ("values", "none"):
        if damage == "none" or not content.strip():
            return content
        try:
            data = json.loads(content)
        except ValueError:
            return content
        return json.dumps(mutate(data, mutation), default=str).encode()
    if damage == "cut":
        return content[: int(len(content) * mutation.share)]
    if damage == "latin-1":
        return content.replace(b'"', b'"\xe9', 1)
    if damage == "bytes":
        at = int(len(content) * mutation.share)
        return content[:at] + b"\xff\xfe\x00" + content[at:]
    if damage == "empty":
        return b""
    if damage == "html":
        return b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    if damage == "deep":
        return b"[" * 100_000 + b"]" * 100_000
    return b'{"data": "' + b"x" * 5_000_000 + b'"}'  # huge


class Mutating(httpx.AsyncBaseTransport):
    """The sandbox app, with every JSON answer (but the OAuth token's) mutated."""

    def __init__(self, app: Any, mutation: Mutation) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.mutation = mutation

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        if request.url.path.endswith("/oauth2/token"):
            return httpx.Response(response.status_code, headers=response.headers, content=content)
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return httpx.Response(
            response.status_code, headers=headers, content=damaged(content, self.mutation)
        )


# -- the providers -------------------------------------------------------------------------------


def agendize(http: httpx.AsyncClient) -> tuple[Any, Provider]:
    state = AgendizeState(api_key="fuzz-key", token="fuzz-token")
    state.seed(5, seed=3)
    credentials = AgendizeCredentials(api_key=state.api_key, token=state.token)
    base = "http://sandbox/api/2.1/scheduling"
    return state, AgendizeProvider("ag", base, state.company_id, credentials, client=http)


def recras(http: httpx.AsyncClient) -> tuple[Any, Provider]:
    state = RecrasState(api_key="fuzz-key")
    state.seed(5)
    return state, RecrasProvider("recras", "http://sandbox", state.api_key, client=http)


def qmatic(http: httpx.AsyncClient) -> tuple[Any, Provider]:
    state = QmaticState(account="acme", tenant_id="t1", client_id="syncd", client_secret="s")
    state.seed(5)
    credentials = QmaticCredentials(state.account, state.client_id, state.client_secret)
    provider = QmaticProvider(
        "qm",
        "http://sandbox",
        credentials,
        state.tenant_id,
        client=http,
        service=stable_id("service", "passport"),
        branch=stable_id("branch", "centrum"),
        track=sample_identifiers(5),
    )
    return state, provider


Build = Callable[[httpx.AsyncClient], tuple[Any, Provider]]
PROVIDERS: dict[str, tuple[Build, Callable[[Any], Any]]] = {
    "agendize": (agendize, agendize_sandbox.create_app),
    "recras": (recras, recras_sandbox.create_app),
    "qmatic": (qmatic, qmatic_sandbox.create_app),
}


async def pull(name: str, mutation: Mutation) -> Pull | BackendError:
    build, app = PROVIDERS[name]
    transport = Mutating(None, mutation)
    async with httpx.AsyncClient(transport=transport) as http:
        state, provider = build(http)
        transport.inner = httpx.ASGITransport(app=app(state))
        try:
            return await provider.pull({}, None, WINDOW)
        except BackendError as err:
            return err
        finally:
            await provider.aclose()


@pytest.mark.parametrize("name", list(PROVIDERS))
def test_every_json_answer_is_items_or_a_typed_error(name: str) -> None:
    @FUZZ
    @given(mutations)
    @example(Mutation((), (), "deep", 0.0))  # found: RecursionError out of every client
    @example(Mutation((), (), "huge", 0.0))  # found: Qmatic's search failed the whole pull
    def one(mutation: Mutation) -> None:
        ran(f"{name} JSON answers")
        outcome = asyncio.run(pull(name, mutation))
        if isinstance(outcome, BackendError):
            assert outcome.backend in ("ag", "recras", "qm")
            return
        for item in outcome.items:
            assert isinstance(item, Appointment | Deleted | BadItem), item
            if isinstance(item, BadItem):
                assert item.item
                assert item.field
        if mutation.damage == "none":
            assert outcome.items, "a sound answer read as nothing"

    one()


# -- webhook deliveries --------------------------------------------------------------------------

WEBHOOK_TOKEN = "Rk7Vq2Lm9Xw4Tz8Hn3Bc6Y"
CONFIG = f"""
[store]
url = "sqlite:///{{database}}"
[providers.rooms]
kind = "recras"
base_url = "http://127.0.0.1:9"
api_key = "fuzz-key"
webhook_token = "{WEBHOOK_TOKEN}"
timeout = "1s"
[providers.clinic]
kind = "agendize"
base_url = "http://127.0.0.1:9/api/2.1/scheduling"
company_id = "48213"
api_key = "fuzz-key"
token = "fuzz-token"
timeout = "1s"
[calendars.cal]
kind = "memory"
[[syncs]]
name = "rooms"
provider = "rooms"
calendars = ["cal"]
[[syncs]]
name = "clinic"
provider = "clinic"
calendars = ["cal"]
"""

deliveries = st.one_of(
    st.binary(max_size=200),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=12,
    ).map(lambda value: json.dumps(value).encode()),
    st.builds(
        lambda booking, event: json.dumps(
            {"version": 1, "data": {"id": booking}, "meta": {"event": event}}
        ).encode(),
        bad_values.filter(lambda v: v not in (HUGE, DEEP)),
        st.text(max_size=10),
    ),
    st.sampled_from([b"[" * 200_000, b'{"data": ' * 50_000, "\u00e9".encode("latin-1")]),
)


def test_webhook_deliveries_never_make_the_web_app_fail(tmp_path: Path) -> None:
    h = Harness.build(CONFIG.format(database=tmp_path / "state.db"))
    paths = [
        f"/hooks/recras/rooms/{WEBHOOK_TOKEN}",
        "/hooks/recras/rooms/wrong-token-wrong-token",
        "/hooks/agendize/clinic",
        "/hooks/onlineafspraken/rooms?apiKey=x&id=1&entity=appointment",
    ]

    async def deliver(path: str, body: bytes) -> int:
        async with h.client() as client:
            answer = await client.post(path, content=body, auth=("syncd-x", "guess"))
            return answer.status_code

    @settings(FUZZ, max_examples=60)
    @given(st.sampled_from(paths), deliveries)
    def one(path: str, body: bytes) -> None:
        ran("webhook deliveries")
        status = asyncio.run(deliver(path, body))
        assert status in (200, 400, 403, 404, 413), status

    try:
        one()
    finally:
        asyncio.run(h.close())


def test_a_time_zone_name_longer_than_any_file_name_is_an_unknown_zone() -> None:
    """Found by this fuzzer: ``ZoneInfo`` raised ``OSError`` (file name too long) for it."""
    with pytest.raises(ValueError, match="unknown time zone"):
        zone_named("x" * 300_000)


def test_a_qmatic_status_of_the_wrong_type_is_a_bad_field() -> None:
    """Found by this fuzzer: a list as ``status`` raised ``TypeError`` (unhashable)."""
    data = {"id": "7", "startTime": "2031-03-03T10:00:00", "endTime": "2031-03-03T10:30:00"}
    reading = QmaticReading("qm", ZoneInfo("Europe/Amsterdam"))
    item = read_appointment({**data, "status": ["CONFIRMED"]}, reading, "#0")
    assert isinstance(item, BadItem)
    assert (item.item, item.field) == ("7", "status")


def test_a_genuine_delivery_while_the_provider_is_down_is_accepted(tmp_path: Path) -> None:
    """Found by this fuzzer: the Recras handler's re-read raised ``TransientError`` through
    the web app, a 500 with a traceback. The syncs of the account run anyway."""
    h = Harness.build(CONFIG.format(database=tmp_path / "state.db"))
    body = json.dumps({"version": 1, "data": {"id": 5}, "meta": {"event": "x"}}).encode()

    async def deliver() -> httpx.Response:
        async with h.client() as client:
            return await client.post(f"/hooks/recras/rooms/{WEBHOOK_TOKEN}", content=body)

    try:
        answer = asyncio.run(deliver())
    finally:
        asyncio.run(h.close())
    assert answer.status_code == 200
    assert h.pokes == ["rooms"]
