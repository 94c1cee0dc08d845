"""The Recras sandbox over HTTP: free days and times follow capacity, codes are checked with
the documented rejection reasons, reserveer refuses the documented 406 cases, and every
change queues a webhook delivery."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from syncd.sandbox.recras import create_app
from syncd.sandbox.recras_api import deliver
from syncd.sandbox.recras_state import RecrasState
from tests.recras_kit import DAY, KEY, Clock, sandbox

pytestmark = pytest.mark.anyio
ROOM = {"arrangement_id": 1, "producten": [{"arrangementsregel_id": 1, "aantal": 4}]}
CONTACT = {"contactpersoon.achternaam": "de Vries", "contactpersoon.email1": "ann@example.org"}


@pytest.fixture
def state() -> RecrasState:
    return sandbox()


@pytest.fixture
async def api(state: RecrasState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(state))
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sandbox", headers=headers
    ) as client:
        yield client


def reservation(**changes: Any) -> dict[str, Any]:
    return {
        **ROOM,
        "begin": (DAY + timedelta(hours=4)).isoformat(),
        "betaalmethode": "factuur",
        "contactformulier": CONTACT,
    } | changes


async def times(api: httpx.AsyncClient, day: date) -> list[str]:
    answer = await api.post(
        "/api2/onlineboeking/beschikbaretijden", json={**ROOM, "datum": day.isoformat()}
    )
    assert answer.status_code == 200
    result: list[str] = answer.json()
    return result


async def test_free_times_follow_capacity_and_the_booking_window(
    api: httpx.AsyncClient, state: RecrasState
) -> None:
    free = await times(api, DAY.date())
    assert (free[0], free[-1], len(free)) == (
        "2031-03-03T10:00:00+01:00",
        "2031-03-03T20:00:00+01:00",
        21,
    )
    state.book(1, DAY + timedelta(hours=4), {1: 3})  # 14:00-15:00: 3 of 6 places left
    after = await times(api, DAY.date())
    assert {"2031-03-03T13:30:00+01:00", "2031-03-03T14:00:00+01:00"}.isdisjoint(after)
    assert "2031-03-03T15:00:00+01:00" in after
    today = await times(api, date(2031, 3, 1))  # now is 09:00; two hours ahead at least
    assert today[0] == "2031-03-01T11:00:00+01:00"
    days = await api.post(
        "/api2/onlineboeking/beschikbaredagen",
        json={**ROOM, "begin": "2031-03-01", "eind": "2031-03-04"},
    )
    assert days.json() == ["2031-03-01", "2031-03-02", "2031-03-03", "2031-03-04"]


async def test_vouchers_are_checked_with_the_documented_reasons(
    api: httpx.AsyncClient, state: RecrasState
) -> None:
    state.add_voucher("GOOD", {10}, date(2031, 12, 31))
    state.add_voucher("OLD", {10}, date(2031, 1, 1))
    state.add_voucher("SPENT", {10}, date(2031, 12, 31), used=True)
    state.add_voucher("DRINKS", {11}, date(2031, 12, 31))
    codes = ["GOOD", "OLD", "SPENT", "DRINKS", "NOPE"]
    answer = await api.post(
        "/api2/onlineboeking/controleervoucher",
        json={**ROOM, "datum": "2031-03-03", "vouchers": codes},
    )
    found = answer.json()
    assert found["GOOD"]["valid"] is True
    assert found["GOOD"]["processed"][0]["product_id"] == 10
    assert {code: found[code].get("reason") for code in codes[1:]} == {
        "OLD": "ERR_VOUCHER_EXPIRED",
        "SPENT": "ERR_VOUCHER_USED",
        "DRINKS": "ERR_VOUCHER_INVALID_PRODUCTS",
        "NOPE": "ERR_VOUCHER_INVALID",
    }


async def test_discount_codes_are_an_object_or_false(
    api: httpx.AsyncClient, state: RecrasState
) -> None:
    state.add_discount("TEST25", 25, {1})
    path = "/api2/onlineboeking/controleerkortingscode"
    good = await api.get(
        path, params={"kortingscode": "TEST25", "datum": "2031-03-03", "arrangement": 1}
    )
    wrong = await api.get(
        path, params={"kortingscode": "TEST25", "datum": "2031-03-03", "arrangement": 2}
    )
    assert good.json() == {"naam": "Korting TEST25", "percentage": 25}
    assert wrong.json() is False


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"arrangement_id": 2}, "Arrangement 2 is niet online te boeken"),
        ({"producten": [{"arrangementsregel_id": 9, "aantal": 1}]}, "Arrangementsregel 9 hoort"),
        ({"betaalmethode": "mollie"}, "Ongeldige betaalmethode"),
        ({"begin": "2031-03-03T14:10:00+01:00"}, "Ongeldig startmoment"),
        ({"begin": "2031-03-01T10:00:00+01:00"}, "te kort van tevoren"),
        ({"begin": "2033-03-03T14:00:00+01:00"}, "te ver van tevoren"),
        ({"contactformulier": {"contactpersoon.achternaam": "X"}}, "email1 is verplicht"),
        ({"contactformulier": {**CONTACT, "contactpersoon.email1": "nope"}}, "geen e-mailadres"),
        ({"contactformulier": {**CONTACT, "hobby": "x"}}, "onbekend veld hobby"),
        ({"kortingscode": "NOPE"}, "Ongeldige kortingscode: NOPE"),
        ({"vouchers": ["NOPE"]}, "Ongeldige tegoedbon NOPE: ERR_VOUCHER_INVALID"),
        ({"status": "geannuleerd"}, "Ongeldige status"),
    ],
)
async def test_reserveer_refuses_invalid_input_with_406(
    api: httpx.AsyncClient, changes: dict[str, Any], message: str
) -> None:
    answer = await api.post("/api2/onlineboeking/reserveer", json=reservation(**changes))
    assert answer.status_code == 406
    assert message in answer.json()["error"]["message"]


async def test_reserveer_books_then_refuses_an_overbooking(
    api: httpx.AsyncClient, state: RecrasState
) -> None:
    made = await api.post("/api2/onlineboeking/reserveer", json=reservation(status="definitief"))
    assert made.status_code == 200
    body = made.json()
    assert (body["status"], body["message"]) == ("definitief", "Boeking gemaakt")
    listed = (await api.get(f"/api2/boekingen/{body['boeking_id']}")).json()
    assert listed["boekingsregels"][0]["begin"] == "2031-03-03T14:00:00+01:00"
    full = await api.post("/api2/onlineboeking/reserveer", json=reservation())
    assert full.status_code == 406
    assert full.json()["error"]["message"].startswith("Overboeking")


async def test_status_changes_and_webhook_deliveries(
    api: httpx.AsyncClient, state: RecrasState
) -> None:
    state.subscribe("Boeking::postSave", "http://syncd.test/hooks/recras/a/token")
    made = state.book(1, DAY + timedelta(hours=2))
    answer = await api.post(f"/api2/boekingen/{made.id}/set_status/geannuleerd")
    assert answer.json()["status"] == "geannuleerd"
    assert (await api.post(f"/api2/boekingen/{made.id}/set_status/kwijt")).status_code == 406
    assert (await api.get("/api2/boekingen/999")).status_code == 404
    assert [payload["data"]["id"] for _, payload in state.outbox] == [made.id, made.id]
    assert set(state.outbox[0][1]) == {"version", "data", "meta"}
    received: list[bytes] = []

    async def hook(request: httpx.Request) -> httpx.Response:
        received.append(request.content)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(hook)) as client:
        assert await deliver(state, client) == 2
    assert state.outbox == []
    assert len(received) == 2


async def test_requests_need_the_key_and_faults_fire_once(
    api: httpx.AsyncClient, state: RecrasState
) -> None:
    assert (
        await api.get("/api2/boekingen", headers={"Authorization": "Bearer no"})
    ).status_code == 401
    state.faults.server_errors = 1
    assert (await api.get("/api2/boekingen")).status_code == 503
    assert (await api.get("/api2/boekingen")).status_code == 200


async def test_the_admin_interface_plays_the_business(
    api: httpx.AsyncClient, state: RecrasState
) -> None:
    made = await api.post(
        "/_admin/bookings", json={"begin": (DAY + timedelta(hours=3)).isoformat()}
    )
    booking = made.json()["id"]
    await api.post(
        f"/_admin/bookings/{booking}/move", json={"begin": (DAY + timedelta(hours=5)).isoformat()}
    )
    await api.post(f"/_admin/bookings/{booking}/status", json={"status": "definitief"})
    assert state.bookings[booking].begin == DAY + timedelta(hours=5)
    assert state.bookings[booking].status == "definitief"
    assert (await api.post("/_admin/faults", json={"nope": 1})).status_code == 400
    assert (await api.delete(f"/_admin/bookings/{booking}")).status_code == 200
    assert (await api.delete(f"/_admin/bookings/{booking}")).status_code == 404
    seeded = await api.post("/_admin/seed", json={"count": 5})
    assert len(seeded.json()["created"]) == 5
    summary = (await api.get("/_admin")).json()
    assert summary["bookings"] == 5


def test_the_sandbox_clock_moves() -> None:
    clock = Clock()
    moved = sandbox(clock)
    clock.now += timedelta(days=1)
    assert moved.now().day == 2
