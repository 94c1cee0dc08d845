"""The Qmatic sandbox on its own, through raw HTTP: what a client of the real API would see.

Authentication (token endpoint, expiry, tenant, language), timeslots from opening hours and
capacity, the 15-minute hold, confirm, search, reschedule, delete, the admin interface and
the fault switches. No syncd client code is used, so a mistake in the client cannot hide a
matching one here.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from syncd.commands.sandbox import entry_point
from syncd.sandbox.onlineafspraken_state import ManualClock
from syncd.sandbox.qmatic import create_app, main
from syncd.sandbox.qmatic_records import HOLD
from syncd.sandbox.qmatic_state import QmaticState
from tests.qmatic_kit import CENTRUM, LICENCE, NOORD, PASSPORT, SECRET, T0, TRACKED, at, make_state

pytestmark = pytest.mark.anyio
API = "http://sandbox/external/v1"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def state(clock: ManualClock) -> QmaticState:
    return make_state(clock)


@pytest.fixture
async def http(state: QmaticState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        yield client


async def token(http: httpx.AsyncClient, secret: str = SECRET, account: str = "acme") -> Any:
    return await http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=("syncd", secret),
        headers={"X-ACCOUNT": account},
    )


@pytest.fixture
async def headers(http: httpx.AsyncClient) -> dict[str, str]:
    answer = await token(http)
    assert answer.status_code == 200
    bearer = answer.json()["access_token"]
    return {"Authorization": f"Bearer {bearer}", "X-TENANT-ID": "tenant-1", "Accept-Language": "en"}


def slot_body(start: Any, minutes: int = 30, service: str = PASSPORT, branch: str = CENTRUM) -> Any:
    return {
        "serviceId": service,
        "branchId": branch,
        "startTime": start.isoformat(),
        "endTime": (start + timedelta(minutes=minutes)).isoformat(),
        "numberOfReservations": 1,
    }


CUSTOMER = {
    "personalIdentifier": TRACKED,
    "firstName": "Jan",
    "lastName": "Jansen",
    "email": "jan@example.org",
}


async def book(http: httpx.AsyncClient, headers: dict[str, str], start: Any) -> Any:
    held = await http.post(f"{API}/reservations", json=slot_body(start), headers=headers)
    assert held.status_code == 201, held.text
    done = await http.put(f"{API}/reservations/{held.json()['id']}", json=CUSTOMER, headers=headers)
    assert done.status_code == 201, done.text
    return done.json()


async def test_the_token_endpoint_checks_account_client_and_grant(http: httpx.AsyncClient) -> None:
    good = await token(http)
    assert good.json()["expires_in"] == 3600
    assert good.json()["token_type"] == "Bearer"
    assert (await token(http, secret="wrong")).status_code == 401
    assert (await token(http, account="someone-else")).status_code == 401
    odd = await http.post(
        "/oauth2/token",
        data={"grant_type": "password"},
        auth=("syncd", SECRET),
        headers={"X-ACCOUNT": "acme"},
    )
    assert odd.status_code == 400


async def test_every_call_needs_a_live_token_the_tenant_and_a_language(
    http: httpx.AsyncClient, headers: dict[str, str], clock: ManualClock, state: QmaticState
) -> None:
    assert (await http.get(f"{API}/services", headers=headers)).status_code == 200
    assert (await http.get(f"{API}/services")).status_code == 401
    wrong_tenant = headers | {"X-TENANT-ID": "tenant-2"}
    assert (await http.get(f"{API}/services", headers=wrong_tenant)).status_code == 403
    no_language = {k: v for k, v in headers.items() if k != "Accept-Language"}
    assert (await http.get(f"{API}/services", headers=no_language)).status_code == 400
    clock.advance(3599)
    assert (await http.get(f"{API}/services", headers=headers)).status_code == 200
    clock.advance(1)
    expired = await http.get(f"{API}/services", headers=headers)
    assert expired.status_code == 401
    assert "invalid_token" in expired.headers["WWW-Authenticate"]
    assert state.requests["services"] == 6


async def test_services_follow_the_language_and_branches_the_service(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    listed = (
        await http.get(f"{API}/services", headers=headers | {"Accept-Language": "nl_NL"})
    ).json()
    names = {(e["branch"]["name"], e["service"]["name"]) for e in listed}
    assert ("Noord", "Paspoort") in names
    assert ("Noord", "Driving licence") not in names
    branches = (await http.get(f"{API}/services/{LICENCE}", headers=headers)).json()
    assert [b["branch"]["id"] for b in branches] == [CENTRUM]
    assert (await http.get(f"{API}/services/nope", headers=headers)).status_code == 404


async def test_timeslots_come_from_opening_hours_and_capacity(
    http: httpx.AsyncClient, headers: dict[str, str], state: QmaticState
) -> None:
    query = {"branchId": NOORD, "numberOfReservations": "1", "date": "2031-03-03"}
    url = f"{API}/services/{PASSPORT}/timeslots"
    slots = (await http.get(url, params=query, headers=headers)).json()
    starts = [s["startTime"] for s in slots]
    assert (starts[0], starts[-1]) == ("2031-03-03T10:00:00+01:00", "2031-03-03T15:30:00+01:00")
    assert len(starts) == 12
    state.book(at(10), personal_identifier=TRACKED, branch=NOORD)  # Noord has one place
    after = (await http.get(url, params=query, headers=headers)).json()
    assert "2031-03-03T10:00:00+01:00" not in [s["startTime"] for s in after]
    sunday = (await http.get(url, params=query | {"date": "2031-03-02"}, headers=headers)).json()
    assert sunday == []
    whole = (await http.get(url, params=query | {"date": ""}, headers=headers)).json()
    assert whole[0]["startTime"] == "2031-03-01T10:00:00+01:00", "today, from now on"


async def test_a_hold_lasts_fifteen_minutes_and_then_frees_the_slot(
    http: httpx.AsyncClient, headers: dict[str, str], state: QmaticState
) -> None:
    body = slot_body(at(10), branch=NOORD)
    held = await http.post(f"{API}/reservations", json=body, headers=headers)
    assert held.status_code == 201
    taken = await http.post(f"{API}/reservations", json=body, headers=headers)
    assert taken.status_code == 409
    assert "fully booked" in taken.json()["errorMessage"]
    state.advance(HOLD.total_seconds())
    again = await http.post(f"{API}/reservations", json=body, headers=headers)
    assert again.status_code == 201, "the lapsed hold no longer takes the slot"
    late = await http.put(f"{API}/reservations/{held.json()['id']}", json=CUSTOMER, headers=headers)
    assert late.status_code == 410
    assert state.appointments == {}


async def test_reservations_are_refused_with_a_reason(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    cases = {
        "is in the past": slot_body(T0 - timedelta(days=1)),
        "closed on Sundays": slot_body(at(10).replace(day=2)),
        "takes 30 minutes": slot_body(at(10), minutes=45),
        "is no timeslot": slot_body(at(10, 10)),
        "not offered at Noord": slot_body(at(10), 60, LICENCE, NOORD),
    }
    for reason, body in cases.items():
        answer = await http.post(f"{API}/reservations", json=body, headers=headers)
        assert answer.status_code == 409, reason
        assert reason in answer.json()["errorMessage"]
    bad = await http.post(f"{API}/reservations", json={"serviceId": PASSPORT}, headers=headers)
    assert bad.status_code == 400


async def test_confirm_checks_the_customer_and_search_finds_by_identifier(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    held = await http.post(f"{API}/reservations", json=slot_body(at(11)), headers=headers)
    url = f"{API}/reservations/{held.json()['id']}"
    for wrong in ({"personalIdentifier": "short"}, {"personalIdentifier": "has spaces in it"}):
        answer = await http.put(url, json=CUSTOMER | wrong, headers=headers)
        assert answer.status_code == 400
        assert "personalIdentifier" in answer.json()["errorMessage"]
    no_mail = {k: v for k, v in CUSTOMER.items() if k != "email"}
    assert (await http.put(url, json=no_mail, headers=headers)).status_code == 400
    made = (await http.put(url, json=CUSTOMER, headers=headers)).json()
    assert (made["startTime"], made["status"]) == ("2031-03-03T11:00:00+01:00", "CONFIRMED")
    search = f"{API}/appointments/search"
    found = await http.post(
        search, json={"customer": {"personalIdentifier": TRACKED}}, headers=headers
    )
    assert [a["id"] for a in found.json()] == [made["id"]]
    other = {"customer": {"personalIdentifier": "CUST9999999999"}}
    assert (await http.post(search, json=other, headers=headers)).json() == []
    assert (await http.post(search, json={}, headers=headers)).status_code == 400


async def test_reschedule_moves_onto_a_reservation_and_delete_cancels(
    http: httpx.AsyncClient, headers: dict[str, str], state: QmaticState
) -> None:
    made = await book(http, headers, at(11))
    held = await http.post(f"{API}/reservations", json=slot_body(at(14)), headers=headers)
    url = f"{API}/appointments/{made['id']}"
    moved = await http.put(
        f"{url}/reschedule", json={"reservationId": held.json()["id"]}, headers=headers
    )
    assert moved.json()["startTime"] == "2031-03-03T14:00:00+01:00"
    assert state.reservations == {}, "the reservation is used up"
    used = await http.put(
        f"{url}/reschedule", json={"reservationId": held.json()["id"]}, headers=headers
    )
    assert used.status_code == 404
    assert (await http.delete(url, headers=headers)).status_code == 204
    assert (await http.delete(url, headers=headers)).status_code == 404
    assert state.appointments == {}


async def test_fault_switches(
    http: httpx.AsyncClient, headers: dict[str, str], state: QmaticState
) -> None:
    state.faults.rate_limited, state.faults.retry_after = 1, 7
    limited = await http.get(f"{API}/services", headers=headers)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "7")
    state.faults.server_errors = 1
    assert (await http.get(f"{API}/services", headers=headers)).status_code == 503
    state.faults.lost_replies, state.faults.only = 1, "confirm"
    held = await http.post(f"{API}/reservations", json=slot_body(at(12)), headers=headers)
    lost = await http.put(f"{API}/reservations/{held.json()['id']}", json=CUSTOMER, headers=headers)
    assert lost.status_code == 502
    assert len(state.appointments) == 1, "the confirm took effect all the same"
    state.faults.truncated, state.faults.only = 1, None
    cut = await http.get(f"{API}/services", headers=headers)
    with pytest.raises(json.JSONDecodeError):
        cut.json()
    state.revoke_tokens()
    assert (await http.get(f"{API}/services", headers=headers)).status_code == 401


async def test_the_admin_interface_plays_the_business(
    http: httpx.AsyncClient, state: QmaticState
) -> None:
    body = {"start": at(9).isoformat(), "personalIdentifier": TRACKED}
    made = (await http.post("/_admin/appointments", json=body)).json()
    moved = await http.post(
        f"/_admin/appointments/{made['id']}/move", json={"start": at(13).isoformat()}
    )
    assert moved.json()["endTime"] == "2031-03-03T13:30:00+01:00"
    assert [a["id"] for a in (await http.get("/_admin/appointments")).json()] == [made["id"]]
    summary = (await http.get("/_admin")).json()
    assert (summary["appointments"], summary["branches"][NOORD]) == (1, "Noord")
    await http.post("/_admin/clock", json={"seconds": 3600})
    assert state.now() == T0 + timedelta(hours=1)
    assert (
        await http.post("/_admin/faults", json={"latency": 0, "nonsense": 1})
    ).status_code == 400
    assert (await http.delete(f"/_admin/appointments/{made['id']}")).status_code == 200
    assert (await http.delete(f"/_admin/appointments/{made['id']}")).status_code == 404
    await http.post("/_admin/tokens/revoke")
    assert state.tokens == {}


def test_seeded_bookings_are_the_same_for_the_same_seed(clock: ManualClock) -> None:
    first, second = make_state(clock), make_state(clock)
    a, b = first.seed(12, seed=3), second.seed(12, seed=3)
    assert [(x.start, x.personal_identifier) for x in a] == [
        (y.start, y.personal_identifier) for y in b
    ]
    assert len({x.start for x in a}) == 12


def test_syncd_sandbox_qmatic_takes_a_port_and_a_seed() -> None:
    serve = entry_point("qmatic")
    assert serve is main
    assert {"port", "seed"} <= set(inspect.signature(serve).parameters)
