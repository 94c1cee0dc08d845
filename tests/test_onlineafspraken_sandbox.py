"""The OnlineAfspraken sandbox as an API: authentication, envelope, filters, rules, faults."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree.ElementTree import Element, fromstring
from zoneinfo import ZoneInfo

import anyio
import httpx
import pytest

from syncd.errors import BadItem
from syncd.providers.base import Window
from syncd.providers.oa_client import sign
from syncd.providers.oa_envelope import AUTH_CODES, NOT_FOUND_CODES
from syncd.providers.onlineafspraken import OnlineAfsprakenProvider
from syncd.sandbox.onlineafspraken import create_app, main
from syncd.sandbox.onlineafspraken_state import ManualClock, SandboxState

pytestmark = pytest.mark.anyio
AMS = ZoneInfo("Europe/Amsterdam")
T0 = datetime(2031, 3, 1, 9, 0, tzinfo=AMS)
GET_RESOURCE = {"method": "getResource", "id": "1"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def state(clock: ManualClock) -> SandboxState:
    return SandboxState(api_key="key", api_secret="secret", clock=clock)


@pytest.fixture
async def http(state: SandboxState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        yield client


async def signed(
    http: httpx.AsyncClient,
    state: SandboxState,
    params: Mapping[str, str],
    salt: int | None = None,
    tamper: Mapping[str, str] | None = None,
) -> Element:
    """A signed call, optionally altered after signing; the parsed ``<Response>``."""
    query = {**params, "api_key": state.api_key}
    query["api_salt"] = str(int(state.now()) if salt is None else salt)
    query["api_signature"] = sign(query, state.api_secret, query["api_salt"])
    response = await http.get("/APIREST", params=query | dict(tamper or {}))
    assert response.status_code == 200
    return fromstring(response.content)


async def call(http: httpx.AsyncClient, state: SandboxState, method: str, **params: str) -> Element:
    return await signed(http, state, {"method": method, **params})


def status(reply: Element) -> tuple[str, str]:
    return reply.findtext("Status/Status") or "", reply.findtext("Status/Code") or ""


def ids(reply: Element) -> list[int]:
    return [int(e.findtext("Id") or 0) for e in reply.iter("Appointment")]


# -- authentication ----------------------------------------------------------------------------


async def test_a_signed_call_succeeds_and_reports_the_server_time(
    http: httpx.AsyncClient, state: SandboxState
) -> None:
    reply = await call(http, state, "getAgendas")
    assert status(reply) == ("success", "")
    assert reply.findtext("Status/Date") == "2031-03-01 09:00:00"
    assert reply.findtext("Status/Timestamp") == str(int(T0.timestamp()))
    assert [a.findtext("Name") for a in reply.iter("Agenda")] == ["Salon", "Studio"]


@pytest.mark.parametrize(
    ("tamper", "salt_shift", "code"),
    [
        ({"id": "9"}, 0, "A02"),  # a parameter changed after signing
        ({"extra": "1"}, 0, "A02"),  # a parameter added after signing
        ({"api_key": "other"}, 0, "A01"),
        ({}, -301, "A03"),  # stale
        ({}, 1, "A03"),  # from the future
    ],
    ids=["tampered", "added", "unknown key", "stale salt", "future salt"],
)
async def test_tampering_and_salts_outside_the_window_are_refused(
    http: httpx.AsyncClient, state: SandboxState, tamper: dict[str, str], salt_shift: int, code: str
) -> None:
    salt = int(state.now()) + salt_shift
    reply = await signed(http, state, GET_RESOURCE, salt, tamper)
    assert status(reply) == ("failed", code)
    assert reply.findtext("Status/Timestamp") == str(int(T0.timestamp()))
    assert reply.find("Objects") is None


async def test_the_edges_of_the_salt_window_are_accepted(
    http: httpx.AsyncClient, state: SandboxState
) -> None:
    for shift in (0, -300):
        reply = await signed(http, state, GET_RESOURCE, int(state.now()) + shift)
        assert status(reply) == ("success", "")


def test_the_client_reads_the_sandbox_codes_the_way_they_are_meant() -> None:
    assert set(AUTH_CODES) == {"A01", "A02", "A03"}  # key, signature, salt: as tested above
    assert set(NOT_FOUND_CODES) == {"N01"}


@pytest.mark.parametrize(
    ("method", "params", "code"),
    [
        ("getAppointment", {}, "B57"),
        ("getAppointment", {"Id": "x"}, "B02"),
        ("getAppointment", {"Id": "1"}, "N01"),
        ("getAppointments", {"UpdatedAfter": "2031-03-01T09:00"}, "B02"),
        ("explode", {}, "B01"),
    ],
)
async def test_bad_requests_are_failed_envelopes(
    http: httpx.AsyncClient, state: SandboxState, method: str, params: dict[str, str], code: str
) -> None:
    assert status(await call(http, state, method, **params)) == ("failed", code)


# -- listings ------------------------------------------------------------------------------------


async def test_lists_filter_page_and_carry_stats(
    http: httpx.AsyncClient, state: SandboxState, clock: ManualClock
) -> None:
    old = state.book(datetime(2031, 3, 3, 10), agenda=1, resources=[1])
    clock.advance(61)
    other = state.book(datetime(2031, 3, 4, 10), agenda=1, resources=[2])
    elsewhere = state.book(datetime(2031, 3, 3, 11), agenda=2)
    cancelled = state.cancel(state.book(datetime(2031, 3, 5, 10)).id)
    gone = state.mark_deleted(state.book(datetime(2031, 3, 6, 10)).id)
    every = await call(http, state, "getAppointments", AgendaId="1", IncludeCancelled="1")
    assert ids(every) == [old.id, other.id, cancelled.id]
    stats = {e.tag: e.text for e in every.find("Stats") or []}
    assert stats == {"Limit": "500", "Offset": "0", "Records": "3", "TotalRecords": "3"}
    assert ids(await call(http, state, "getAppointments", AgendaId="1")) == [old.id, other.id]
    changed = await call(http, state, "getAppointments", UpdatedAfter="2031-03-01 09:00:30")
    assert ids(changed) == [elsewhere.id, other.id, gone.id]  # deletions show to change lists
    changed_all = await call(
        http, state, "getAppointments", UpdatedAfter="2031-03-01 09:00:30", IncludeCancelled="1"
    )
    assert ids(changed_all) == [elsewhere.id, other.id, cancelled.id, gone.id]
    created = await call(http, state, "getAppointments", CreatedAfter="2031-03-01 09:00:00")
    assert ids(created) == [elsewhere.id, other.id]
    dated = await call(http, state, "getAppointments", StartDate="2031-03-04", EndDate="2031-03-04")
    assert ids(dated) == [other.id]
    assert ids(await call(http, state, "getAppointments", ResourceId="2")) == [other.id]
    page = await call(http, state, "getAppointments", Limit="1", Offset="1", IncludeCancelled="1")
    assert (ids(page), page.findtext("Stats/TotalRecords")) == ([elsewhere.id], "4")


async def test_times_are_local_wall_times_to_the_second(
    http: httpx.AsyncClient, state: SandboxState, clock: ManualClock
) -> None:
    clock.set(datetime(2031, 7, 1, 10, 0, 0, 900_000, tzinfo=UTC))  # summer: 12:00:00.9 local
    booking = state.book(datetime(2031, 7, 2, 10))
    reply = await call(http, state, "getAppointment", Id=str(booking.id))
    assert reply.findtext("Objects/Appointment/UpdateTime") == "2031-07-01 12:00:00"
    assert reply.findtext("Objects/Appointment/StartTime") == "2031-07-02 10:00:00"
    assert reply.findtext("Status/Date") == "2031-07-01 12:00:00"


async def test_damaged_elements_are_served_as_asked(
    http: httpx.AsyncClient, state: SandboxState
) -> None:
    booking = state.book(datetime(2031, 3, 3, 10))
    state.corrupt(booking.id, "Label", "9")
    state.corrupt(booking.id, "FinishTime", None)
    reply = await call(http, state, "getAppointment", Id=str(booking.id))
    assert reply.findtext("Objects/Appointment/Label") == "9"
    assert reply.find("Objects/Appointment/FinishTime") is None
    state.break_xml(booking.id)
    query = {"method": "getAppointment", "Id": str(booking.id), "api_key": "key"}
    query["api_salt"] = str(int(state.now()))
    query["api_signature"] = sign(query, "secret", query["api_salt"])
    raw = (await http.get("/APIREST", params=query)).text
    with pytest.raises(SyntaxError):
        fromstring(raw)


# -- business rules --------------------------------------------------------------------------------


async def test_writes_keep_the_business_rules(http: httpx.AsyncClient, state: SandboxState) -> None:
    booking = state.book(datetime(2031, 3, 3, 10))
    edit = {"Id": str(booking.id), "AgendaId": "1", "CustomerId": "1", "AppointmentTypeId": "1"}
    edit |= {"Date": "2031-03-04", "StartTime": "11:00", "EndTime": "11:30"}
    assert status(await call(http, state, "setAppointment", **edit)) == ("failed", "R04")
    wrong_agenda = edit | {"AgendaId": "2", "BookingMode": "customer"}
    assert status(await call(http, state, "setAppointment", **wrong_agenda)) == ("failed", "N01")
    moved = await call(http, state, "setAppointment", **edit, BookingMode="customer")
    assert status(moved) == ("success", "")
    assert booking.start == datetime(2031, 3, 4, 11)
    new = {"AgendaId": "1", "CustomerId": "3", "AppointmentTypeId": "2", "Date": "2031-03-04"}
    made = await call(http, state, "setAppointment", **new, StartTime="14:00", EndTime="14:05")
    created = state.appointments[int(made.findtext("Objects/Appointment/Id") or 0)]
    assert (created.finish, created.resource_ids) == (datetime(2031, 3, 4, 15, 30), [1])
    sunday = new | {"Date": "2031-03-02", "StartTime": "10:00", "EndTime": "10:30"}
    assert status(await call(http, state, "setAppointment", **sunday)) == ("failed", "R01")
    forced = await call(http, state, "setAppointment", **sunday, OverrideMode="1")
    assert status(forced) == ("success", "")


async def test_cancel_rules_customer_mode_dry_run_and_repeat(
    http: httpx.AsyncClient, state: SandboxState
) -> None:
    soon = state.book(datetime(2031, 3, 1, 15))
    assert status(await call(http, state, "cancelAppointment", Id=str(soon.id))) == (
        "failed",
        "R05",
    )
    dry = await call(http, state, "cancelAppointment", Id=str(soon.id), Mode="company", DryRun="1")
    assert (status(dry), soon.label) == (("success", ""), 2)
    done = await call(http, state, "cancelAppointment", Id=str(soon.id), Mode="company")
    assert (status(done), soon.label, soon.confirmations) == (("success", ""), 4, "")
    again = await call(http, state, "cancelAppointment", Id=str(soon.id), Mode="company")
    assert status(again) == ("failed", "R03")
    removed = await call(http, state, "removeAppointment", Id=str(soon.id))
    assert (status(removed), state.appointments) == (("success", ""), {})


async def test_blocks_are_added_and_removed_per_agenda(
    http: httpx.AsyncClient, state: SandboxState
) -> None:
    added = await call(
        http,
        state,
        "CHAddBlock",
        AgendaId="1",
        Date="2031-03-02",
        StartTime="10:00",
        EndTime="12:00",
    )
    block_id = added.findtext("Objects/Block/Id") or ""
    assert state.blocks[int(block_id)].end.hour == 12
    wrong = await call(http, state, "CHRemoveBlock", AgendaId="2", id=block_id)
    assert status(wrong) == ("failed", "N01")
    assert (
        status(await call(http, state, "CHRemoveBlock", AgendaId="1", id=block_id))[0] == "success"
    )
    assert state.blocks == {}


# -- faults ----------------------------------------------------------------------------------------


async def test_fault_switches_fire_as_counted_and_requests_are_counted(
    http: httpx.AsyncClient, state: SandboxState
) -> None:
    state.faults.server_errors, state.faults.only = 1, "getAgendas"
    assert (await http.get("/APIREST", params={"method": "getAgendas"})).status_code == 503
    assert status(await call(http, state, "getAgendas"))[0] == "success"
    state.faults.rate_limited, state.faults.retry_after, state.faults.only = 1, 12, None
    limited = await http.get("/APIREST", params={"method": "getResources"})
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "12")
    state.faults.truncated = 1
    query = {"method": "getAgendas", "api_key": "key", "api_salt": str(int(state.now()))}
    query["api_signature"] = sign(query, "secret", query["api_salt"])
    cut = (await http.get("/APIREST", params=query)).text
    assert "</Response>" not in cut
    state.faults.skew = 120
    assert (await call(http, state, "getAgendas")).findtext("Status/Date") == "2031-03-01 09:02:00"
    assert dict(state.requests) == {"getAgendas": 4, "getResources": 1}


async def test_latency_delays_every_answer(http: httpx.AsyncClient, state: SandboxState) -> None:
    state.faults.latency = 0.2
    began = time.perf_counter()
    await call(http, state, "getAgendas")
    assert time.perf_counter() - began >= 0.2


# -- admin and seeding -----------------------------------------------------------------------------


async def test_the_admin_routes_act_as_the_business(
    http: httpx.AsyncClient, state: SandboxState
) -> None:
    made = (
        await http.post("/_admin/appointments", json={"start": "2031-03-03 10:00", "minutes": 45})
    ).json()
    assert (made["start"], made["finish"]) == ("2031-03-03 10:00:00", "2031-03-03 10:45:00")
    path = f"/_admin/appointments/{made['id']}"
    moved = (await http.post(f"{path}/move", json={"start": "2031-03-04 09:00"})).json()
    assert moved["finish"] == "2031-03-04 09:45:00"
    assert (await http.post(f"{path}/cancel")).json()["label"] == 4
    assert (await http.delete(path)).json() == {"removed": made["id"]}
    assert (await http.delete(path)).status_code == 404
    seeded = (await http.post("/_admin/seed", json={"count": 5, "seed": 2})).json()
    assert len(seeded["created"]) == 5
    assert len((await http.get("/_admin/appointments")).json()) == 5
    faults = await http.post("/_admin/faults", json={"latency": 0.0, "server_errors": 2})
    assert faults.json()["server_errors"] == 2
    assert (await http.post("/_admin/faults", json={"meteor": 1})).status_code == 400
    summary: dict[str, Any] = (await http.get("/_admin")).json()
    assert (summary["appointments"], summary["now"]) == (5, "2031-03-01 09:00:00")
    assert summary["requests"] == {}  # the admin side costs no API request


def test_seeding_is_reproducible(clock: ManualClock) -> None:
    def seeded() -> list[tuple[datetime, int, int, int]]:
        fresh = SandboxState(clock=clock)
        return [(b.start, b.type_id, b.customer_id, b.label) for b in fresh.seed(50, seed=9)]

    assert seeded() == seeded()
    assert len({start.date() for start, *_ in seeded()}) > 10


def test_main_prints_the_url_and_the_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served: list[Any] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **options: served.append((app, options)))
    main(port=8799, seed=3, count=12)
    out = capsys.readouterr().out
    app, options = served[0]
    state: SandboxState = app.state.sandbox
    assert "http://127.0.0.1:8799/APIREST" in out
    assert state.api_key in out
    assert state.api_secret in out
    assert (options["host"], options["port"], len(state.appointments)) == ("127.0.0.1", 8799, 12)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
async def test_the_sandbox_serves_a_provider_over_loopback() -> None:
    import threading

    import uvicorn

    state = SandboxState()
    seeded = state.seed(40, seed=5)
    port = free_port()
    config = uvicorn.Config(
        create_app(state), host="127.0.0.1", port=port, log_level="warning", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the sandbox did not start"
            await anyio.sleep(0.05)
        provider = OnlineAfsprakenProvider(
            "oa", f"http://127.0.0.1:{port}/APIREST", state.api_key, state.api_secret
        )
        now = datetime.now(AMS)
        window = Window(now - timedelta(days=1), now + timedelta(days=40))
        pull = await provider.pull({"agenda": "1"}, None, window)
        listed = {i.native_id for i in pull.items if not isinstance(i, BadItem)}
        assert listed == {str(b.id) for b in seeded}  # all from today on: inside the window
        idle = await provider.pull({"agenda": "1"}, pull.cursor, window)
        assert (idle.items, idle.requests) == ([], 1)
        await provider.aclose()
    finally:
        server.should_exit = True
        thread.join(10)
