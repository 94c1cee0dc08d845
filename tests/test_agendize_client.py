"""The Agendize HTTP client on scripted answers: credentials, errors, paging, hostile replies."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from syncd.errors import AuthError, BackendError, NotFound, RateLimited, TransientError
from syncd.providers import ag_client
from syncd.providers.ag_client import AgendizeClient, ApiRefusal, Credentials, TokenGone

pytestmark = pytest.mark.anyio
KEYS = Credentials(api_key="key-123456", token="tok-abcdef")
SEEN: list[httpx.Request] = []


def client(
    answer: Callable[[httpx.Request], httpx.Response], creds: Credentials = KEYS
) -> AgendizeClient:
    def handler(request: httpx.Request) -> httpx.Response:
        SEEN.append(request)
        return answer(request)

    SEEN.clear()
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return AgendizeClient(
        "ag", "https://api.example/api/2.1/scheduling/", "co 1", creds, http=http, now=lambda: 0.0
    )


def reply(
    status: int = 200, body: Any = None, **headers: str
) -> Callable[[httpx.Request], httpx.Response]:
    content = (
        b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    return lambda request: httpx.Response(status, content=content, headers=headers)


async def test_credentials_go_in_headers_and_nowhere_else() -> None:
    api = client(reply(body={"items": []}))
    await api.call("list", "GET", params={"staffId": "1"})
    [sent] = SEEN
    assert (sent.headers["apiKey"], sent.headers["token"]) == ("key-123456", "tok-abcdef")
    assert "authorization" not in sent.headers
    assert (
        str(sent.url)
        == "https://api.example/api/2.1/scheduling/companies/co%201/appointments?staffId=1"
    )
    oauth = client(reply(body={}), Credentials(oauth_token="bearer-xyz"))
    await oauth.call("get", "GET", "/7")
    assert SEEN[0].headers["authorization"] == "Bearer bearer-xyz"
    assert "apikey" not in SEEN[0].headers
    for secret in ("key-123456", "tok-abcdef", "bearer-xyz"):
        assert secret not in repr(api) + repr(oauth) + repr(KEYS)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, {"error": {"code": 401, "message": "invalid credentials"}}, AuthError),
        (403, None, AuthError),
        (404, {"error": {"code": 404, "message": "no such appointment"}}, NotFound),
        (410, {"error": {"code": 410, "message": "token expired"}}, TokenGone),
        (503, b"<html>down</html>", TransientError),
        (400, {"error": {"code": 400, "message": "slot taken"}}, ApiRefusal),
        # The same errors as objects under HTTP 200: the object's code decides.
        (200, {"error": {"code": 401, "message": "expired key"}}, AuthError),
        (200, {"error": {"code": 410, "message": "bad sync token"}}, TokenGone),
        (200, {"error": {"code": 500, "message": "oops"}}, TransientError),
        (200, {"error": {"code": 409, "message": "slot taken"}}, ApiRefusal),
        (200, {"error": "unspecified"}, ApiRefusal),
    ],
)
async def test_failures_map_onto_syncd_errors(
    status: int, body: Any, error: type[Exception]
) -> None:
    api = client(reply(status, body))
    with pytest.raises(error) as raised:
        await api.call("update", "PUT", "/9", body={"status": "cancelled"})
    assert type(raised.value) is error
    assert "key-123456" not in str(raised.value)


async def test_a_refusal_carries_the_providers_words_and_a_429_its_wait() -> None:
    api = client(reply(200, {"error": {"code": 400, "message": "not available:\n slot taken"}}))
    with pytest.raises(ApiRefusal) as refused:
        await api.call("update", "PUT", "/9")
    assert (refused.value.code, refused.value.reason) == (400, "not available: slot taken")
    slow = client(reply(429, b"slow down", **{"Retry-After": "17"}))
    with pytest.raises(RateLimited) as limited:
        await slow.call("list", "GET")
    assert limited.value.retry_after == 17


async def test_a_reply_that_is_not_json_is_named_and_transient() -> None:
    api = client(reply(200, b'{"items": [{"id": "1"'))
    with capture_logs() as logs, pytest.raises(TransientError, match="not JSON"):
        await api.call("list", "GET")
    assert [log["event"] for log in logs] == ["agendize.unreadable_reply"]
    assert logs[0]["op"] == "list"


async def test_an_oversized_reply_is_refused_unread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ag_client, "MAX_REPLY", 1000)
    api = client(reply(200, {"items": [{"notes": "x" * 2000}]}))
    with pytest.raises(BackendError, match="larger than 1000 bytes"):
        await api.call("list", "GET")


async def test_transport_failures_are_transient_and_name_no_url() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused to https://api.example/?apiKey=key-123456")

    with pytest.raises(TransientError) as raised:
        await client(fail).call("list", "GET")
    assert str(raised.value) == "ag: list: ConnectError"


async def test_list_all_follows_pages_and_keeps_the_last_sync_token() -> None:
    pages = {
        None: {"items": [{"id": "1"}, {"id": "2"}], "nextPageToken": "p2"},
        "p2": {"items": [{"id": "3"}], "nextPageToken": "p3"},
        "p3": {"nextSyncToken": "s-final"},  # the last page may hold no items at all
    }
    api = client(lambda r: httpx.Response(200, json=pages[r.url.params.get("pageToken")]))
    listing = await api.list_all({"showDeleted": "true"})
    assert [i["id"] for i in listing.items] == ["1", "2", "3"]
    assert (listing.sync_token, listing.pages) == ("s-final", 3)
    assert all(r.url.params["showDeleted"] == "true" for r in SEEN), "every page, same query"
    assert api.requests == {"list": 3}


async def test_list_all_refuses_a_page_loop_and_a_reply_without_items() -> None:
    looping = client(reply(200, {"items": [], "nextPageToken": "again"}))
    with pytest.raises(TransientError, match="repeated a page token"):
        await looping.list_all({})
    assert len(SEEN) == 2
    shapeless = client(reply(200, {"items": {"id": "1"}}))
    with pytest.raises(BackendError, match="no list of items"):
        await shapeless.list_all({})
