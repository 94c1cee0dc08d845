"""The Agendize sandbox over plain HTTP, without syncd's client: it must hold syncd to the API."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from syncd.commands.sandbox import entry_point
from syncd.sandbox import agendize
from syncd.sandbox.agendize import PREFIX, create_app
from syncd.sandbox.agendize_state import SandboxState
from syncd.sandbox.agendize_watch import deliver
from syncd.sandbox.onlineafspraken_state import ManualClock

pytestmark = pytest.mark.anyio
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2031, 3, 3, 8, 0, tzinfo=PARIS)
WINDOW = {"startDate": "2031-03-01T00:00:00Z", "endDate": "2031-04-01T00:00:00Z"}


@pytest.fixture
def state() -> SandboxState:
    return SandboxState(clock=ManualClock(NOW), page_size=3)


@pytest.fixture
async def http(state: SandboxState) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"apiKey": state.api_key, "token": state.token}
    transport = httpx.ASGITransport(app=create_app(state))
    base = f"http://sandbox{PREFIX}/companies/{state.company_id}"
    async with httpx.AsyncClient(transport=transport, base_url=base, headers=headers) as client:
        yield client


def at(day: int, hour: int) -> datetime:
    return datetime(2031, 3, day, hour, 0)


async def test_every_call_needs_the_credentials_and_the_right_company(
    state: SandboxState, http: httpx.AsyncClient
) -> None:
    assert (await http.get("/appointments", params=WINDOW)).status_code == 200
    bare = await http.get("/appointments", params=WINDOW, headers={"apiKey": "", "token": ""})
    assert bare.status_code == 401
    assert bare.json() == {"error": {"code": 401, "message": "invalid credentials"}}
    wrong = await http.get("/appointments", params=WINDOW, headers={"token": "guess"})
    assert wrong.status_code == 401
    bearer = {"apiKey": "", "token": "", "Authorization": f"Bearer {state.oauth_token}"}
    assert (await http.get("/appointments", params=WINDOW, headers=bearer)).status_code == 200
    other = await http.get(f"http://sandbox{PREFIX}/companies/999/appointments", params=WINDOW)
    assert other.status_code == 404
    assert state.requests == {"list": 5}


async def test_listings_page_and_only_the_last_page_has_a_sync_token(
    state: SandboxState, http: httpx.AsyncClient
) -> None:
    for day in range(4, 11):
        state.book(at(day, 10))
    pages: list[dict[str, Any]] = []
    params = dict(WINDOW)
    while True:
        pages.append((await http.get("/appointments", params=params)).json())
        if "nextPageToken" not in pages[-1]:
            break
        assert "nextSyncToken" not in pages[-1]
        params = {**WINDOW, "pageToken": pages[-1]["nextPageToken"]}
    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    assert pages[-1]["nextSyncToken"]
    assert (await http.get("/appointments", params={"pageToken": "made-up"})).status_code == 400


async def test_dates_are_gmt_and_default_to_a_month_either_side(
    state: SandboxState, http: httpx.AsyncClient
) -> None:
    near = state.book(at(20, 10))
    state.book(datetime(2031, 5, 20, 10, 0))
    listed = (await http.get("/appointments")).json()["items"]
    assert [i["id"] for i in listed] == [near.id], "the default window misses the far one"
    local = await http.get("/appointments", params={"startDate": "2031-03-01T00:00:00+01:00"})
    assert local.status_code == 400
    assert "GMT" in local.json()["error"]["message"]


async def test_a_sync_token_reports_changes_and_tombstones_and_expires(
    state: SandboxState, http: httpx.AsyncClient
) -> None:
    kept, moved, gone = (state.book(at(4, h)) for h in (9, 10, 11))
    full = {**WINDOW, "showDeleted": "true", "levelDetail": "full"}
    token = (await http.get("/appointments", params=full)).json()["nextSyncToken"]
    state.move(moved.id, at(4, 14))
    state.delete(gone.id)
    changes = (await http.get("/appointments", params={**full, "syncToken": token})).json()
    assert sorted(i["id"] for i in changes["items"]) == sorted([moved.id, gone.id])
    tomb = next(i for i in changes["items"] if i["id"] == gone.id)
    assert tomb["deleted"] is True
    plain = (await http.get("/appointments", params={**WINDOW, "syncToken": token})).json()
    assert [i["id"] for i in plain["items"]] == [moved.id], "no tombstones unless asked"
    assert (await http.get(f"/appointments/{gone.id}")).status_code == 404
    assert kept.id not in {i["id"] for i in changes["items"]}
    state.expire_tokens()
    expired = await http.get(
        "/appointments", params={**full, "syncToken": changes["nextSyncToken"]}
    )
    assert (expired.status_code, expired.json()["error"]["code"]) == (410, 410)


async def test_a_token_expiring_between_pages_is_refused_on_the_next_page(
    state: SandboxState, http: httpx.AsyncClient
) -> None:
    token = (await http.get("/appointments", params=WINDOW)).json()["nextSyncToken"]
    for day in range(4, 9):
        state.book(at(day, 10))
    first = (await http.get("/appointments", params={**WINDOW, "syncToken": token})).json()
    state.token_ttl, state.clock = 60, ManualClock(NOW.timestamp() + 61)
    follow = {**WINDOW, "syncToken": token, "pageToken": first["nextPageToken"]}
    assert (await http.get("/appointments", params=follow)).status_code == 410


async def test_detail_levels_and_personal_appointments(
    state: SandboxState, http: httpx.AsyncClient
) -> None:
    booking = state.book(at(4, 10), notes="allergic to latex")
    state.personal(at(4, 12), at(4, 13))
    light = (await http.get("/appointments", params=WINDOW)).json()["items"]
    assert [i["id"] for i in light] == [booking.id]
    assert {"history", "notes", "extendedProperties"}.isdisjoint(light[0])
    assert light[0]["start"] == {"dateTime": "2031-03-04T10:00:00", "timeZone": "Europe/Paris"}
    full = await http.get(
        "/appointments", params={**WINDOW, "levelDetail": "full", "personalAppointments": "true"}
    )
    items = full.json()["items"]
    assert [i["type"] for i in items] == ["normal", "personal"]
    assert items[0]["notes"] == "allergic to latex"
    assert items[0]["history"][0]["type"] == "created"


async def test_writes_are_checked_as_the_api_checks_them(
    state: SandboxState, http: httpx.AsyncClient
) -> None:
    when = {"dateTime": "2031-03-09T10:00:00", "timeZone": "Europe/Paris"}  # a Sunday
    personal: dict[str, Any] = {"type": "personal", "start": when}
    assert (await http.post("/appointments", json=personal)).status_code == 400, (
        "end and staff needed"
    )
    personal |= {"end": {**when, "dateTime": "2031-03-09T11:00:00"}, "staff": {"id": "2"}}
    refused = await http.post("/appointments", json=personal)
    assert "working hours" in refused.json()["error"]["message"]
    made = await http.post(
        "/appointments", json=personal, params={"force": "true", "silent": "true"}
    )
    entry = state.get(made.json()["id"])
    assert (entry.type, entry.staff_id, entry.silent) == ("personal", "2", True)
    big = {**personal, "extendedProperties": {"private": {"x": "y" * 30_000}}}
    assert (await http.post("/appointments", json=big, params={"force": "true"})).status_code == 400

    booking = state.book(at(4, 10), staff="1")
    state.book(at(4, 14), staff="1")
    taken = {"start": {"dateTime": "2031-03-04T14:00:00", "timeZone": "Europe/Paris"}}
    clash = await http.put(f"/appointments/{booking.id}", json=taken)
    assert clash.status_code == 400
    assert "already taken" in clash.json()["error"]["message"]
    free = {"start": {"dateTime": "2031-03-04T15:00:00", "timeZone": "Europe/Paris"}}
    moved = (await http.put(f"/appointments/{booking.id}", json=free)).json()
    assert moved["end"]["dateTime"] == "2031-03-04T15:30:00", "the length is kept"
    assert (
        await http.put(f"/appointments/{booking.id}", json={"status": "gone"})
    ).status_code == 400
    assert (
        await http.delete(f"/appointments/{booking.id}", params={"silent": "false"})
    ).status_code == 204
    assert state.appointments[booking.id].deleted
    assert (await http.delete(f"/appointments/{booking.id}")).status_code == 404


async def test_watches_deliver_with_basic_auth_sometimes_twice_until_they_lapse(
    state: SandboxState, http: httpx.AsyncClient
) -> None:
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    hook = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    body = {
        "address": "https://syncd.test/hooks/agendize/a",
        "basicAuth": {"username": "u", "password": "p"},
    }
    registered = (await http.post("/appointments/watch", json=body)).json()
    assert registered["status"] == "enabled"
    assert "p" not in json.dumps(registered["basicAuth"])
    state.faults.repeat_deliveries = 1
    booking = state.book(at(4, 10))
    assert await deliver(state, hook) == 2
    payload = json.loads(seen[0].content)
    assert (payload["id"], payload["event"]) == (booking.id, "created")
    assert payload["date"]["timeZone"] == "Europe/Paris"
    assert seen[0].headers["authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    state.lapse_watches()
    state.cancel(booking.id)
    assert await deliver(state, hook) == 0
    again = (await http.post("/appointments/watch", json=body)).json()
    assert (again["id"], len(state.watches)) == (registered["id"], 1), "one watch per address"
    state.delete(booking.id)
    assert await deliver(state, hook) == 1
    assert json.loads(seen[-1].content)["event"] == "deleted"
    assert (await http.post("/appointments/watch", json={"address": "ftp://x"})).status_code == 400
    await hook.aclose()


async def test_fault_switches(state: SandboxState, http: httpx.AsyncClient) -> None:
    state.faults.rate_limited, state.faults.retry_after = 1, 7
    slow = await http.get("/appointments", params=WINDOW)
    assert (slow.status_code, slow.headers["Retry-After"]) == (429, "7")
    state.faults.server_errors = 1
    assert (await http.get("/appointments", params=WINDOW)).status_code == 503
    state.faults.error_under_200 = 1
    under = await http.get("/appointments", params=WINDOW)
    assert (under.status_code, under.json()["error"]["code"]) == (200, 503)
    state.book(at(4, 10))
    state.faults.malformed_json = 1
    broken = await http.get("/appointments", params=WINDOW)
    with pytest.raises(json.JSONDecodeError):
        broken.json()
    state.faults.only, state.faults.server_errors = "get", 1
    assert (await http.get("/appointments", params=WINDOW)).status_code == 200, "only get fails"
    assert state.requests["list"] == 5


async def test_the_admin_desk_acts_as_the_business(state: SandboxState) -> None:
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as admin:
        made = (
            await admin.post("/_admin/appointments", json={"start": "2031-03-04T10:00:00"})
        ).json()
        await admin.post(
            f"/_admin/appointments/{made['id']}/move", json={"start": "2031-03-04T11:00:00"}
        )
        await admin.post(f"/_admin/appointments/{made['id']}/cancel")
        assert (state.get(made["id"]).start, state.get(made["id"]).status) == (
            at(4, 11),
            "cancelled",
        )
        away = {"start": "2031-03-04T12:00:00", "end": "2031-03-04T13:00:00", "personal": True}
        assert (await admin.post("/_admin/appointments", json=away)).json()["type"] == "personal"
        assert (await admin.delete(f"/_admin/appointments/{made['id']}")).status_code == 200
        assert (await admin.delete("/_admin/appointments/nope")).status_code == 404
        assert (await admin.post("/_admin/faults", json={"bogus": 1})).status_code == 400
        assert (await admin.post("/_admin/seed", json={"count": 3})).status_code == 200
        summary = (await admin.get("/_admin")).json()
        assert summary["appointments"] == 4
        assert state.requests == {}, "the desk is not the API"


def test_syncd_sandbox_agendize_is_registered() -> None:
    assert entry_point("agendize") is agendize.main
