"""The OnlineAfspraken client: signing, the salt clock, the envelope, errors and paging."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from structlog.testing import capture_logs

from syncd.errors import (
    AuthError,
    BackendError,
    NotFound,
    RateLimited,
    Refused,
    TransientError,
)
from syncd.providers.oa_client import OnlineAfsprakenClient, SaltClock, sign, signature_base
from syncd.providers.oa_envelope import ApiAuthError, ApiNotFound, ApiRefused, parse_reply
from syncd.sandbox.onlineafspraken import create_app
from syncd.sandbox.onlineafspraken_state import ManualClock, SandboxState

pytestmark = pytest.mark.anyio
AMS = ZoneInfo("Europe/Amsterdam")
SECRET = "s3cret-never-shown"
URL = "http://sandbox/APIREST"


def envelope(status: str = "success", objects: str = "", extra: str = "", ts: int = 0) -> bytes:
    head = f"<Status>{status}</Status><Date>2031-03-01 09:00:00</Date><Timestamp>{ts}</Timestamp>"
    return (
        f"<Response><Status>{head}{extra}</Status><Objects>{objects}</Objects></Response>".encode()
    )


def mocked(
    handler: Callable[[httpx.Request], httpx.Response], now: float = 1_000_000.0
) -> OnlineAfsprakenClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return OnlineAfsprakenClient("oa", URL, "key", SECRET, http=http, now=lambda: now)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2031, 3, 1, 9, 0, tzinfo=AMS))


@pytest.fixture
def state(clock: ManualClock) -> SandboxState:
    return SandboxState(api_key="key", api_secret=SECRET, clock=clock)


def on_sandbox(
    state: SandboxState, now: Callable[[], float], page_size: int = 500
) -> OnlineAfsprakenClient:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(state)))
    return OnlineAfsprakenClient("oa", URL, "key", SECRET, http=http, now=now, page_size=page_size)


# -- signing -------------------------------------------------------------------------------


def test_the_documented_getresource_example_is_reproduced() -> None:
    params = {"method": "getResource", "id": "8", "api_key": "k", "api_salt": "SALT"}
    assert signature_base(params, "APISECRET", "SALT") == "id8methodgetResourceAPISECRETSALT"
    expected = "9e7996d5b85cdd4ad4706de302516af480a62d0c274b145094453abfc62bcbb9"
    assert sign(params, "APISECRET", "SALT") == expected
    salted = sign({"id": "8", "method": "getResource"}, "APISECRET", "1714118395")
    assert salted == "a862a7d8e56052b4467a4be9ff7da8e95a3873ac0a04e4fde9d65a0229db37fa"


def test_signing_sorts_by_code_point_and_strips_whitespace_from_values() -> None:
    params = {"method": "getAppointments", "UpdatedAfter": "2031-03-01 10:00:00"}
    params |= {"AgendaId": " 1\t", "api_signature": "ignored"}
    base = signature_base(params, "S", "9")
    assert base == "AgendaId1UpdatedAfter2031-03-0110:00:00methodgetAppointmentsS9"
    assert sign(params, "S", "9") == hashlib.sha256(base.encode()).hexdigest()


async def test_a_request_carries_values_unstripped_and_never_the_secret() -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, content=envelope(ts=1_000_000))

    client = mocked(answer)
    await client.call("getAppointments", {"UpdatedAfter": "2031-03-01 10:00:00"})
    query = dict(sent[0].url.params)
    assert query["UpdatedAfter"] == "2031-03-01 10:00:00"
    assert query["method"] == "getAppointments"
    assert query["api_salt"] == "1000000"
    assert query["api_signature"] == sign(query, SECRET, "1000000")
    assert SECRET not in str(sent[0].url)


# -- the salt clock ------------------------------------------------------------------------


def test_the_salt_clock_follows_the_server_and_errs_early() -> None:
    local = [1000.7]
    clock = SaltClock(lambda: local[0])
    assert clock.salt() == 1000
    clock.observe(5000)  # the server is 3999.3 s ahead, as far as we can tell
    local[0] = 1010.2
    assert clock.salt() == 5009


@pytest.mark.parametrize("skew", [-1000.0, 1000.0], ids=["stale", "future"])
async def test_a_skewed_clock_is_corrected_by_one_retry(
    state: SandboxState, clock: ManualClock, skew: float
) -> None:
    client = on_sandbox(state, lambda: clock() + skew)
    with capture_logs() as logs:
        await client.call("getAgendas")
    assert state.requests["getAgendas"] == 2
    assert [log["event"] for log in logs] == ["onlineafspraken.salt_retry"]
    await client.call("getAgendas")
    assert state.requests["getAgendas"] == 3  # the corrected clock holds: no retry


async def test_the_salt_retry_happens_once_and_never_loops() -> None:
    calls = []

    def always_elsewhere(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        salt = int(request.url.params["api_salt"])
        body = envelope("failed", extra="<Code>A03</Code><Message>bad salt</Message>")
        return httpx.Response(
            200, content=body.replace(b"<Timestamp>0", f"<Timestamp>{salt + 9999}".encode())
        )

    client = mocked(always_elsewhere)
    with pytest.raises(ApiAuthError) as raised:
        await client.call("getAgendas")
    assert len(calls) == 2
    assert raised.value.code == "A03"


async def test_a_refusal_unrelated_to_the_salt_is_not_retried(
    state: SandboxState, clock: ManualClock
) -> None:
    client = on_sandbox(state, clock)
    with pytest.raises(ApiRefused) as raised:
        await client.call("getAppointment")
    assert (raised.value.code, state.requests["getAppointment"]) == ("B57", 1)


# -- the envelope and its errors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        ("B57", "missing required parameter Id", ApiRefused),
        ("R01", "the chosen time is not bookable", ApiRefused),
        ("N01", "appointment 9 not found", ApiNotFound),
        ("A02", "invalid api_signature", ApiAuthError),
        ("X99", "Signature mismatch", ApiAuthError),  # an unknown code, but plainly about auth
        ("", "", ApiRefused),
    ],
)
async def test_a_failed_status_becomes_a_typed_error_with_code_and_message(
    code: str, message: str, kind: type[BackendError]
) -> None:
    body = envelope("failed", extra=f"<Message>{message}</Message><Code>{code}</Code>")
    client = mocked(lambda request: httpx.Response(200, content=body))
    with pytest.raises(kind) as raised:
        await client.call("getAppointment", {"Id": "9"})
    error = raised.value
    assert isinstance(error, ApiAuthError | ApiNotFound | ApiRefused)
    assert (error.code, error.api_message, error.backend) == (code, message, "oa")
    assert message in str(error)
    family: dict[type[BackendError], type[BackendError]] = {
        ApiRefused: Refused,
        ApiNotFound: NotFound,
        ApiAuthError: AuthError,
    }
    assert isinstance(error, family[kind])


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (httpx.Response(503, text="busy"), TransientError),
        (httpx.Response(500), TransientError),
        (httpx.Response(401), AuthError),
        (httpx.Response(403), AuthError),
        (httpx.Response(404), BackendError),
        (httpx.Response(200, text="<html>proxy error</html>"), TransientError),
        (httpx.Response(200, text="<Response><Status><Status>succ"), TransientError),
        (httpx.Response(200, text="not xml at all"), TransientError),
    ],
)
async def test_http_trouble_maps_onto_the_error_tree(
    response: httpx.Response, kind: type[BackendError]
) -> None:
    client = mocked(lambda request: response)
    with pytest.raises(BackendError) as raised:
        await client.call("getAgendas")
    assert type(raised.value) is kind


@pytest.mark.parametrize(
    ("header", "wanted"),
    [("17", 17.0), ("Thu, 01 Jan 1970 12:00:00 GMT", 43200.0 - 1000), ("", 0.0)],
)
async def test_429_carries_retry_after_in_seconds_or_as_a_date(header: str, wanted: float) -> None:
    def limited(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": header} if header else {})

    with pytest.raises(RateLimited) as raised:
        await mocked(limited, now=1000.0).call("getAgendas")
    assert raised.value.retry_after == wanted


@pytest.mark.parametrize("error", [httpx.ReadTimeout("slow"), httpx.ConnectError("refused")])
async def test_timeouts_and_resets_are_transient_and_name_no_url(error: Exception) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(TransientError) as raised:
        await mocked(fail).call("getAgendas")
    assert "key" not in str(raised.value)
    assert "http" not in str(raised.value)


async def test_entities_and_dtds_are_refused_whole_and_not_retried() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><Response>&a;</Response>'
    client = mocked(lambda request: httpx.Response(200, content=bomb))
    with pytest.raises(BackendError) as raised:
        await client.call("getAppointments", items="Appointment")
    assert not isinstance(raised.value, TransientError)


def test_a_broken_list_reply_is_salvaged_item_by_item() -> None:
    items = "<Appointment><Id>1</Id></Appointment>"
    items += "<Appointment><Id>2</Id><Name>A & B</Name></Appointment>"
    items += (
        "<Appointment><Name>no id <b></Name></Appointment><Appointment><Id>4</Id></Appointment>"
    )
    body = envelope(objects=items, ts=5).replace(
        b"</Response>", b"<Stats><TotalRecords>4</TotalRecords></Stats></Response>"
    )
    reply = parse_reply(body, "Appointment")
    assert [e.findtext("Id") for e in reply.objects] == ["1", "4"]
    assert [(f.position, f.native_id) for f in reply.broken] == [(1, "2"), (2, "")]
    assert (reply.ok, reply.timestamp, reply.total) == (True, 5, 4)
    with pytest.raises(ValueError, match="salvaged"):
        parse_reply(body[:-20], "Appointment")  # cut off: nothing may go missing silently


async def test_no_message_or_log_ever_holds_the_secret(
    state: SandboxState, clock: ManualClock
) -> None:
    client = on_sandbox(state, lambda: clock() - 5000)
    errors: list[Exception] = []
    with capture_logs() as logs:
        for method, params in (("getAppointment", {"Id": "1"}), ("nope", {}), ("getAgendas", {})):
            try:
                await client.call(method, params)
            except BackendError as err:
                errors.append(err)
        state.faults.server_errors = 1
        with pytest.raises(TransientError) as raised:
            await client.call("getAgendas")
        errors.append(raised.value)
    assert len(errors) == 3
    assert all(SECRET not in f"{e!s}{e!r}" for e in errors)
    assert SECRET not in repr(client) + repr(logs)


# -- paging ------------------------------------------------------------------------------------


async def test_a_listing_is_read_page_by_page(state: SandboxState, clock: ManualClock) -> None:
    state.seed(23, seed=4)
    client = on_sandbox(state, clock, page_size=5)
    query = {"AgendaId": "1", "IncludeCancelled": "1"}
    listing = await client.list_all("getAppointments", query, "Appointment")
    ids = [e.findtext("Id") for _, e in listing.elements]
    assert len(ids) == len(set(ids)) == 23
    assert [pos for pos, _ in listing.elements] == list(range(23))
    assert state.requests["getAppointments"] == 5


async def test_a_listing_that_shifts_while_paged_is_read_again(
    state: SandboxState, clock: ManualClock
) -> None:
    booked = state.seed(10, seed=1)
    first = min(booked, key=lambda b: (b.start, b.id))
    app = create_app(state)
    served = [0]

    async def business_moves_the_first_booking_last(scope: Any, receive: Any, send: Any) -> None:
        served[0] += 1
        if served[0] == 2:  # between the first and the second page
            state.move(first.id, datetime(2031, 12, 1, 9))
        await app(scope, receive, send)

    transport = httpx.ASGITransport(app=business_moves_the_first_booking_last)
    http = httpx.AsyncClient(transport=transport)
    client = OnlineAfsprakenClient("oa", URL, "key", SECRET, http=http, now=clock, page_size=4)
    with capture_logs() as logs:
        listing = await client.list_all("getAppointments", {"IncludeCancelled": "1"}, "Appointment")
    assert len({e.findtext("Id") for _, e in listing.elements}) == 10
    assert "onlineafspraken.listing_shifted" in [log["event"] for log in logs]
    assert served[0] == 3 + 3  # a first read of three pages, found wanting; a second one


async def test_a_server_ignoring_offset_cannot_make_paging_loop() -> None:
    page = "".join(f"<Appointment><Id>{i}</Id></Appointment>" for i in range(3))
    client = mocked(lambda request: httpx.Response(200, content=envelope(objects=page, ts=1)))
    client.page_size = 3
    with pytest.raises(TransientError, match="kept changing"):
        await client.list_all("getAppointments", {}, "Appointment")


async def test_a_listing_whose_total_keeps_changing_gives_up_after_three_reads() -> None:
    served = [0]

    def growing(request: httpx.Request) -> httpx.Response:
        served[0] += 1
        offset = int(request.url.params["Offset"])
        items = "".join(f"<Appointment><Id>{offset + i}</Id></Appointment>" for i in range(2))
        stats = f"<Stats><TotalRecords>{10 + served[0]}</TotalRecords></Stats>"
        return httpx.Response(
            200,
            content=envelope(objects=items, ts=1).replace(
                b"</Response>", stats.encode() + b"</Response>"
            ),
        )

    client = mocked(growing)
    client.page_size = 2
    with pytest.raises(TransientError):
        await client.list_all("getAppointments", {}, "Appointment")
