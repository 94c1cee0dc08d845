"""The Qmatic client: OAuth tokens, the headers of every call, and errors mapped to syncd's.

Every request is recorded on its way to the sandbox by a wrapping transport, so the tests see
what went over the wire (headers, statuses) without trusting the client's own counters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from structlog.testing import capture_logs

from syncd.errors import AuthError, NotFound, RateLimited, Refused, TransientError
from syncd.providers.qmatic_client import REFRESH_MARGIN, Credentials, QmaticClient
from syncd.sandbox.onlineafspraken_state import ManualClock
from syncd.sandbox.qmatic import create_app
from syncd.sandbox.qmatic_state import QmaticState
from tests.qmatic_kit import CENTRUM, PASSPORT, SECRET, T0, at, make_state

pytestmark = pytest.mark.anyio


@dataclass
class Wire(httpx.AsyncBaseTransport):
    """The sandbox behind a recorder of (path, request headers, status)."""

    inner: httpx.AsyncBaseTransport
    seen: list[tuple[str, httpx.Headers, int]] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.seen.append((request.url.path, request.headers, response.status_code))
        return response

    def statuses(self, path_end: str) -> list[int]:
        return [status for path, _, status in self.seen if path.endswith(path_end)]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def state(clock: ManualClock) -> QmaticState:
    return make_state(clock)


@pytest.fixture
def wire(state: QmaticState) -> Wire:
    return Wire(httpx.ASGITransport(app=create_app(state)))


@pytest.fixture
async def client(wire: Wire, clock: ManualClock) -> AsyncIterator[QmaticClient]:
    async with httpx.AsyncClient(transport=wire) as http:
        yield QmaticClient(
            "qm",
            "http://sandbox/",
            Credentials("acme", "syncd", SECRET),
            "tenant-1",
            language="nl_NL",
            http=http,
            now=clock,
        )


def slot(hour: int) -> dict[str, object]:
    return {
        "serviceId": PASSPORT,
        "branchId": CENTRUM,
        "startTime": at(hour).isoformat(),
        "endTime": at(hour, 30).isoformat(),
        "numberOfReservations": 1,
    }


async def test_one_token_serves_many_calls_and_every_call_carries_the_headers(
    client: QmaticClient, wire: Wire
) -> None:
    for _ in range(3):
        assert await client.call("GET", "/services", "services")
    token_request = wire.seen[0][1]
    assert token_request["X-ACCOUNT"] == "acme"
    assert token_request["Authorization"].startswith("Basic ")
    calls = [headers for path, headers, _ in wire.seen if "/external/v1/" in path]
    assert len(calls) == 3
    assert len({h["Authorization"] for h in calls}) == 1
    for headers in calls:
        assert headers["Authorization"].startswith("Bearer ")
        assert (headers["X-TENANT-ID"], headers["Accept-Language"]) == ("tenant-1", "nl_NL")
    assert client.requests == {"token": 1, "services": 3}


async def test_the_token_is_replaced_before_it_expires(
    client: QmaticClient, wire: Wire, clock: ManualClock
) -> None:
    await client.call("GET", "/services", "services")
    clock.advance(3600 - REFRESH_MARGIN - 1)
    await client.call("GET", "/services", "services")
    assert client.requests["token"] == 1, "still fresh"
    clock.advance(1)
    await client.call("GET", "/services", "services")
    assert client.requests["token"] == 2
    assert 401 not in wire.statuses("/services"), "never sent stale"


async def test_a_refused_token_is_replaced_once_and_the_write_runs_once(
    client: QmaticClient, wire: Wire, state: QmaticState
) -> None:
    await client.call("GET", "/services", "services")
    state.revoke_tokens()
    held = await client.call("POST", "/reservations", "reserve", body=slot(10))
    assert held["id"] in state.reservations
    assert wire.statuses("/reservations") == [401, 201]
    assert len(state.reservations) == 1
    assert client.requests["token"] == 2


async def test_a_token_refused_twice_is_an_auth_error(
    client: QmaticClient, state: QmaticState
) -> None:
    state.faults.token_lifetime = 0  # every token is dead on arrival
    with pytest.raises(AuthError):
        await client.call("GET", "/services", "services")
    assert client.requests == {"token": 2, "services": 2}


async def test_wrong_credentials_or_tenant_are_auth_errors_and_no_secret_is_shown(
    wire: Wire, clock: ManualClock, state: QmaticState
) -> None:
    async with httpx.AsyncClient(transport=wire) as http:
        wrong = QmaticClient(
            "qm",
            "http://sandbox",
            Credentials("acme", "syncd", "not-" + SECRET),
            "tenant-1",
            http=http,
            now=clock,
        )
        with capture_logs() as logs, pytest.raises(AuthError) as refused:
            await wrong.call("GET", "/services", "services")
        assert "invalid_client" in str(refused.value)
        tenant = QmaticClient(
            "qm",
            "http://sandbox",
            Credentials("acme", "syncd", SECRET),
            "tenant-2",
            http=http,
            now=clock,
        )
        with capture_logs() as more, pytest.raises(AuthError) as forbidden:
            await tenant.call("GET", "/services", "services")
        assert "X-TENANT-ID" in str(forbidden.value)
    tokens = list(state.tokens)
    shown = " ".join(
        [
            str(refused.value),
            str(forbidden.value),
            repr(wrong),
            repr(tenant),
            repr(logs),
            repr(more),
        ]
    )
    assert SECRET not in shown
    assert not any(token in shown for token in tokens)
    assert repr(Credentials("acme", "syncd", SECRET)).count(SECRET) == 0


async def test_http_trouble_maps_onto_syncd_errors(
    client: QmaticClient, state: QmaticState
) -> None:
    state.faults.rate_limited, state.faults.retry_after = 1, 12
    with pytest.raises(RateLimited) as limited:
        await client.call("GET", "/services", "services")
    assert limited.value.retry_after == 12
    state.faults.server_errors = 1
    with pytest.raises(TransientError):
        await client.call("GET", "/services", "services")
    with pytest.raises(NotFound):
        await client.call("DELETE", "/appointments/nope", "delete")
    await client.call("POST", "/reservations", "reserve", body=slot(10))
    await client.call("POST", "/reservations", "reserve", body=slot(10))
    with pytest.raises(Refused) as full:
        await client.call("POST", "/reservations", "reserve", body=slot(10))
    assert "fully booked" in full.value.message
    held = await client.call("POST", "/reservations", "reserve", body=slot(11))
    state.advance(15 * 60)
    customer = {"personalIdentifier": "CUST0000000001", "firstName": "J", "lastName": "J"}
    with pytest.raises(TransientError, match="expired"):
        await client.call("PUT", f"/reservations/{held['id']}", "confirm", body=customer)


async def test_an_unreadable_answer_is_named_and_transient(
    client: QmaticClient, state: QmaticState
) -> None:
    state.faults.truncated = 1
    with capture_logs() as logs, pytest.raises(TransientError, match="not JSON"):
        await client.call("GET", "/services", "services")
    [warning] = [e for e in logs if e["event"] == "qmatic.unreadable_reply"]
    assert (warning["log_level"], warning["call"]) == ("warning", "services")


async def test_transport_errors_are_transient_and_name_no_url(clock: ManualClock) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        client = QmaticClient(
            "qm", "http://sandbox", Credentials("acme", "syncd", SECRET), "t", http=http, now=clock
        )
        with pytest.raises(TransientError) as failed:
            await client.call("GET", "/services", "services")
    assert str(failed.value) == "qm: token: ConnectError"
