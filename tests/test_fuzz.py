"""Fuzzing the OnlineAfspraken path: hostile XML replies through the real client and provider.

DESIGN.md 6.4: bad input is rejected with a clear error naming the item, and the rest of the
sync goes on. Hypothesis builds ``getAppointments`` replies from appointment elements whose
fields may be right, missing, empty, of the wrong type, impossible (February 30th, hour 25),
huge, or full of nested elements, inside envelopes that may be cut off, re-encoded as Latin-1,
nested thousands deep, preceded by a DTD declaring entities (billion laughs) or an external
entity (``SYSTEM "file:..."``), or sprinkled with raw bytes. Every other call (names of
agendas, types, customers) is answered by the sandbox.

Whatever comes, a full pull ends in one of two ways only:

* a ``Pull`` whose items are appointments, deletions or ``BadItem``s, each naming its item
  (the appointment's id, or ``#position`` when not even that could be read) and field, with
  every well-formed appointment of the reply among them;
* a ``syncd.errors.BackendError`` naming the call, when the reply as a whole cannot be read
  (refused, never salvaged, for a DTD or entities).

And the daemon never dies: the last test feeds such replies to the runner of a real config
and checks that every run returns and the other sync goes on. The budget is fixed by
``max_examples``; tests/fuzz_report.py prints the number of cases run.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.errors import BackendError, BadItem
from syncd.model import Appointment, Deleted
from syncd.providers.base import Pull, Window
from syncd.providers.onlineafspraken import OnlineAfsprakenProvider
from syncd.sandbox.onlineafspraken import create_app
from syncd.sandbox.onlineafspraken_state import SandboxState
from tests.fuzz_report import ran

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
EVERYTHING = Window(datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
HUGE = "\u2063HUGE\u2063"  # markers, expanded by ``expand``: a failing case's repr stays short
NESTED = "\u2063NESTED"
STATE = SandboxState(api_key="fuzz-key", api_secret="fuzz-secret-0123456789")
FIELDS = (
    "Id",
    "Name",
    "Description",
    "StartTime",
    "FinishTime",
    "AppointmentTypeId",
    "CustomerId",
    "CustomerName",
    "Status",
    "Label",
    "CreateTime",
    "UpdateTime",
)

# -- strategies -------------------------------------------------------------------------------

walls = st.builds(
    lambda d, m: f"{d:%Y-%m-%d} {m // 60:02d}:{m % 60:02d}:00",
    st.dates(min_value=datetime(2020, 1, 1).date(), max_value=datetime(2035, 1, 1).date()),
    st.integers(0, 24 * 60 - 1),
)
impossible_walls = st.sampled_from(
    [
        "2026-02-30 10:00:00",
        "2026-13-01 10:00:00",
        "2026-11-23 25:61:00",
        "0000-00-00 00:00:00",
        "9999-12-31 23:59:59",
        "2026-11-23",
        "23-11-2026 10:00",
        "1e309",
        "2026-03-29 02:30:00",  # the skipped spring hour
        "2026-10-25 02:30:00",  # the repeated autumn hour
    ]
)
xml_text = st.text(alphabet=st.characters(codec="utf-8", blacklist_characters="\x00"), max_size=40)


def good_value(tag: str) -> st.SearchStrategy[str]:
    if tag in ("StartTime", "FinishTime", "CreateTime", "UpdateTime"):
        return walls
    if tag == "Status":
        return st.sampled_from(["1", "1", "1", "2", "3"])
    if tag == "Label":
        return st.sampled_from(["1", "2", "2", "3", "4", "5", ""])
    if tag in ("Id", "AppointmentTypeId", "CustomerId"):
        return st.integers(1, 10**6).map(str)
    return xml_text.map(_escape)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def bad_value(tag: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.just(""),
        xml_text.map(_escape),
        st.integers(-(10**30), 10**30).map(str),
        impossible_walls,
        st.just(HUGE),  # 200,000 characters, made when the reply is built
        st.integers(1, 3000).map(lambda n: f"{NESTED}{n}"),  # that many nested elements
        st.just("<Id>7</Id><Id>8</Id>"),  # a field that is itself elements
        st.just("&unknown;"),  # an undeclared entity: not well-formed
        st.just("1 & 2"),  # an unescaped ampersand: not well-formed
    )


@st.composite
def appointment(draw: st.DrawFn) -> tuple[str, bool]:
    """An ``<Appointment>`` element and whether every field of it is sound."""
    parts, sound = [], True
    for tag in FIELDS:
        how = draw(st.sampled_from(["good"] * 6 + ["missing", "bad"]))
        if how == "missing":
            sound = sound and tag not in ("Id", "Status", "StartTime", "FinishTime")
            continue
        value = draw(good_value(tag) if how == "good" else bad_value(tag))
        sound = sound and how == "good"
        parts.append(f"<{tag}>{value}</{tag}>")
    element = "<Appointment>" + "".join(parts) + "</Appointment>"
    return element, sound


def envelope(objects: str, count: int) -> str:
    stats = f"<Stats><Limit>500</Limit><Offset>0</Offset><Records>{count}</Records>"
    stats += f"<TotalRecords>{count}</TotalRecords></Stats>"
    status = "<Status><Status>success</Status><Date>2026-11-21 10:00:00</Date>"
    status += "<Timestamp>1795251600</Timestamp></Status>"
    return f"<Response>{status}<Objects>{objects}</Objects>{stats}</Response>"


LAUGHS = (
    '<!DOCTYPE Response [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
    '<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">]>'
)
EXTERNAL = '<!DOCTYPE Response [<!ENTITY x SYSTEM "file:///etc/passwd">]>'


@dataclass(frozen=True)
class Recipe:
    """How to build one reply: small to show when a case fails (the reply may be megabytes)."""

    elements: list[tuple[str, bool]]  # each ``<Appointment>`` and whether it is sound
    damage: str
    cut: float = 1.0  # "cut": the share of the reply kept
    depth: int = 0  # "deep": nested elements
    noise: bytes = b""  # "bytes": inserted at ``at`` (a share of the length)
    at: float = 0.0


def expand(text: str) -> str:
    """The markers of huge and nested values, made real."""
    text = text.replace(HUGE, "x" * 200_000)
    return re.sub(f"{NESTED}(\\d+)", lambda m: "<a>" * int(m[1]) + "1" + "</a>" * int(m[1]), text)


@st.composite
def reply(draw: st.DrawFn) -> Recipe:
    """A ``getAppointments`` reply's recipe: its elements and the damage done to the whole."""
    damage = draw(
        st.sampled_from(
            ["none"] * 4
            + ["cut", "latin-1", "laughs", "external", "deep", "bytes", "huge", "empty", "html"]
        )
    )
    return Recipe(
        draw(st.lists(appointment(), max_size=5)),
        damage,
        cut=draw(st.floats(0, 1)),
        depth=draw(st.integers(1000, 100_000)),
        noise=draw(st.binary(min_size=1, max_size=8)),
        at=draw(st.floats(0, 1)),
    )


def build(recipe: Recipe) -> bytes:
    elements, damage = recipe.elements, recipe.damage
    text = expand(envelope("".join(e for e, _ in elements), len(elements)))
    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    if damage == "cut":
        text = text[: int(len(text) * recipe.cut)]
    elif damage == "laughs":
        head += LAUGHS
        text = text.replace("<Objects>", "<Objects>&f;", 1)
    elif damage == "external":
        head += EXTERNAL
        text = text.replace("<Objects>", "<Objects>&x;", 1)
    elif damage == "deep":
        depth = recipe.depth
        text = text.replace("<Objects>", "<Objects>" + "<x>" * depth + "</x>" * depth, 1)
    elif damage == "huge":
        text = text.replace("<Objects>", "<Objects><Padding>" + "p" * 5_000_000 + "</Padding>")
    elif damage == "empty":
        text, head = "", ""
    elif damage == "html":
        text, head = "<html><body>502 Bad Gateway</body></html>", ""
    body = (head + text).encode("latin-1" if damage == "latin-1" else "utf-8", "replace")
    if damage == "latin-1":
        body = body.replace(b"<Name>", b"<Name>caf\xe9 ", 1)
    if damage == "bytes":
        at = int(len(body) * recipe.at)
        body = body[:at] + recipe.noise + body[at:]
    return body


# -- the pull -----------------------------------------------------------------------------------


class Replying(httpx.AsyncBaseTransport):
    """``getAppointments`` answered with ``body``; every other call by the sandbox."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.sandbox = httpx.ASGITransport(app=create_app(STATE))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.params.get("method") == "getAppointments":
            return httpx.Response(200, content=self.body, headers={"Content-Type": "text/xml"})
        return await self.sandbox.handle_async_request(request)


async def pull(body: bytes) -> Pull | BackendError:
    async with httpx.AsyncClient(transport=Replying(body)) as http:
        provider = OnlineAfsprakenProvider(
            "oa", "http://sandbox/APIREST", STATE.api_key, STATE.api_secret, client=http
        )
        try:
            return await provider.pull({"agenda": "1"}, None, EVERYTHING)
        except BackendError as err:
            return err


def _id(element: str) -> str:
    start = element.find("<Id>")
    return element[start + 4 : element.find("</Id>", start)] if start >= 0 else ""


@FUZZ
@given(reply())
def test_every_reply_is_items_or_a_typed_error_naming_the_call(recipe: Recipe) -> None:
    body, elements, damage = build(recipe), recipe.elements, recipe.damage
    ran("onlineafspraken XML replies")
    outcome = asyncio.run(pull(body))
    if isinstance(outcome, BackendError):
        assert "getAppointments" in str(outcome) or outcome.backend == "oa", outcome
        if damage in ("laughs", "external"):
            assert "DTD or entities" in str(outcome)
        assert "root:" not in str(outcome)  # nothing of /etc/passwd
        return
    assert damage not in ("laughs", "external"), "entities were accepted"
    seen: set[str] = set()
    for item in outcome.items:
        assert isinstance(item, Appointment | Deleted | BadItem)
        if isinstance(item, BadItem):
            assert item.item
            assert item.field
            seen.add(item.item)
        else:
            seen.add(item.native_id)
    if damage == "none":
        wanted = {_id(e) for e, sound in elements if sound}
        assert wanted <= seen, f"well-formed appointments went missing: {wanted - seen}"


def test_a_reply_with_entities_is_refused_and_nothing_is_expanded() -> None:
    body = (
        '<?xml version="1.0"?>' + LAUGHS + envelope("<Appointment><Id>&f;</Id></Appointment>", 1)
    ).encode()
    outcome = asyncio.run(pull(body))
    assert isinstance(outcome, BackendError)
    assert "DTD or entities" in str(outcome)


def test_fuzzed_items_are_named_in_the_runner_and_the_daemon_runs_on(tmp_path: Any) -> None:
    """Through the daemon's runner, with a config: bad replies fail or skip their items, every
    run returns, and the memory sync beside it keeps running."""
    from syncd.config import parse_config
    from syncd.daemon.metrics import Metrics
    from syncd.daemon.runner import Runner
    from syncd.feeds import FeedStore
    from syncd.runtime import Runtime, open_store

    config = parse_config(
        f"""
[store]
url = "sqlite:///{tmp_path / "state.db"}"
[providers.oa]
kind = "onlineafspraken"
base_url = "http://sandbox/APIREST"
api_key = "${{KEY}}"
api_secret = "${{SECRET}}"
[providers.shop]
kind = "memory"
seed = 3
[calendars.cal]
kind = "memory"
[calendars.other]
kind = "memory"
[[syncs]]
name = "oa"
provider = "oa"
scope = {{ agenda = "1" }}
calendars = ["cal"]
[[syncs]]
name = "shop"
provider = "shop"
calendars = ["other"]
""",
        environ={"KEY": STATE.api_key, "SECRET": STATE.api_secret},
    )
    store = open_store(config)
    runtime = Runtime.build(config)
    provider = runtime.providers["oa"]
    assert isinstance(provider, OnlineAfsprakenProvider)
    runner = Runner(store, runtime.syncs, FeedStore(store, config), Metrics())
    transport = Replying(b"")
    provider.api._http = httpx.AsyncClient(transport=transport)  # the sandbox, fuzzed

    @settings(FUZZ, max_examples=25)
    @given(reply())
    def one(recipe: Recipe) -> None:
        ran("onlineafspraken replies through the runner")
        transport.body = build(recipe)
        for gate in runner.gates.values():
            gate.succeeded()  # no backoff between examples
        asyncio.run(runner.run("oa", full=True))
        assert asyncio.run(runner.run("shop")) is not None

    try:
        one()
    finally:
        asyncio.run(runtime.aclose())
        store.close()
    exposed = runner.metrics.expose({}, {}, {}).decode()
    assert 'syncd_runs_total{status="ok",sync="shop"} 25.0' in exposed


def test_a_customer_id_too_long_for_a_url_costs_only_its_name() -> None:
    """Found by this fuzzer: a 200,000-digit CustomerId made the name lookup build a URL httpx
    refuses (``InvalidURL``, no syncd error at all) and the whole pull failed with it."""
    element = (
        "<Appointment><Id>5</Id><Status>1</Status><Label>2</Label><CustomerId>"
        + "7" * 200_000
        + "</CustomerId><StartTime>2026-11-23 10:00:00</StartTime>"
        "<FinishTime>2026-11-23 11:00:00</FinishTime></Appointment>"
    )
    outcome = asyncio.run(pull(envelope(element, 1).encode()))
    assert isinstance(outcome, Pull), outcome
    [item] = outcome.items
    assert isinstance(item, Appointment)
    assert item.native_id == "5"
