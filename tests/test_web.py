"""The web app in process: feed caching headers, the status page's doors, webhook dispatch."""

from __future__ import annotations

import base64
import gzip
from collections.abc import AsyncIterator
from email.utils import format_datetime
from pathlib import Path

import httpx
import icalendar
import pytest

from syncd.errors import AuthError, BadItem
from syncd.web import hooks
from syncd.web.app import create_app
from syncd.web.hooks import Delivery
from tests.daemon_kit import TOKEN, Harness, memory_config

pytestmark = pytest.mark.anyio
FEED = f"/feeds/{TOKEN}.ics"
STATUS_AUTH = '\nstatus_user = "admin"\nstatus_password = "correct-horse-battery"\n'


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness.build(memory_config(tmp_path / "state.db"))
    await harness.runner.run("shop")
    yield harness
    await harness.close()


def client_from(h: Harness, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(h.context), client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://syncd.test")


# -- feeds -----------------------------------------------------------------------------------


async def test_a_feed_is_served_with_validators_and_parses(h: Harness) -> None:
    async with h.client() as client:
        answer = await client.get(FEED, headers={"Accept-Encoding": "identity"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/calendar; charset=utf-8"
    assert "content-encoding" not in answer.headers
    assert answer.headers["cache-control"] == "private, no-cache"
    calendar = icalendar.Calendar.from_ical(answer.content)
    assert len(calendar.walk("VEVENT")) == 12
    feed = h.context.feeds.lookup(TOKEN)
    assert feed is not None
    assert answer.headers["etag"] == feed.etag
    assert answer.headers["last-modified"] == format_datetime(feed.modified, usegmt=True)


async def test_conditional_gets_get_304(h: Harness) -> None:
    async with h.client() as client:
        first = await client.get(FEED, headers={"Accept-Encoding": "gzip"})
        tag, modified = first.headers["etag"], first.headers["last-modified"]
        assert first.headers["content-encoding"] == "gzip"
        again = await client.get(FEED, headers={"If-None-Match": tag, "Accept-Encoding": "gzip"})
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", tag)
        plain = await client.get(
            FEED, headers={"If-None-Match": f'"other", W/{tag}', "Accept-Encoding": "identity"}
        )
        assert plain.status_code == 304  # either representation's tag names this version
        since = await client.get(FEED, headers={"If-Modified-Since": modified})
        assert since.status_code == 304
        stale = await client.get(FEED, headers={"If-None-Match": '"stale"'})
        assert stale.status_code == 200
        older = await client.get(
            FEED, headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}
        )
        assert older.status_code == 200


async def test_gzip_only_when_accepted(h: Harness) -> None:
    feed = h.context.feeds.lookup(TOKEN)
    assert feed is not None
    async with h.client() as client:
        for header, zipped in (("gzip, deflate", True), ("gzip;q=0", False), ("br", False)):
            answer = await client.get(FEED, headers={"Accept-Encoding": header})
            assert (answer.headers.get("content-encoding") == "gzip") is zipped, header
            assert answer.content == feed.body  # httpx undoes the gzip
        raw = await client.get(FEED, headers={"Accept-Encoding": "gzip"})
        assert raw.headers["etag"] == feed.gzip_etag
    assert gzip.decompress(feed.gzipped) == feed.body


async def test_an_unknown_token_looks_like_any_unknown_path(h: Harness) -> None:
    async with h.client() as client:
        wrong = await client.get(f"/feeds/{TOKEN[:-1]}x.ics")
        nowhere = await client.get("/no/such/path")
        head = await client.head(FEED)
    assert (
        (wrong.status_code, wrong.text) == (nowhere.status_code, nowhere.text) == (404, "Not Found")
    )
    assert set(wrong.headers) == set(nowhere.headers)
    assert head.status_code == 200


# -- the status page ----------------------------------------------------------------------------


async def test_the_status_page_lists_syncs_and_feed_links_to_local_clients(h: Harness) -> None:
    async with client_from(h, "127.0.0.1") as client:
        page = await client.get("/")
        proxied = await client.get("/", headers={"X-Forwarded-For": "203.0.113.9"})
    assert page.status_code == 200
    assert 'data-sync="shop"' in page.text
    assert f"http://syncd.test/feeds/{TOKEN}.ics" in page.text
    assert proxied.status_code == 403
    async with client_from(h, "192.0.2.7") as client:
        assert (await client.get("/")).status_code == 403


async def test_a_non_loopback_listener_needs_a_password(tmp_path: Path) -> None:
    text = memory_config(tmp_path / "state.db").replace("127.0.0.1:8765", "0.0.0.0:8765")
    open_door = Harness.build(text)
    locked = Harness.build(
        memory_config(tmp_path / "other.db").replace(
            'listen = "127.0.0.1:8765"', 'listen = "0.0.0.0:8765"' + STATUS_AUTH
        )
    )
    try:
        async with client_from(open_door, "127.0.0.1") as client:
            refused = await client.get("/")
        assert refused.status_code == 403
        assert "status_password" in refused.text
        good = base64.b64encode(b"admin:correct-horse-battery").decode()
        bad = base64.b64encode(b"admin:wrong").decode()
        async with client_from(locked, "198.51.100.3") as client:
            challenge = await client.get("/")
            wrong = await client.get("/", headers={"Authorization": f"Basic {bad}"})
            right = await client.get("/", headers={"Authorization": f"Basic {good}"})
        assert challenge.status_code == wrong.status_code == 401
        assert challenge.headers["www-authenticate"].startswith("Basic")
        assert right.status_code == 200
        assert 'data-sync="shop"' in right.text
        assert "correct-horse-battery" not in right.text
    finally:
        await open_door.close()
        await locked.close()


# -- webhooks ------------------------------------------------------------------------------------

DELIVERIES: list[Delivery] = []


async def accept(delivery: Delivery) -> None:
    if delivery.query.get("key") != "right":
        raise AuthError(delivery.account, "wrong key")
    if "id" not in delivery.query:
        raise BadItem("hook", "id", "missing")
    DELIVERIES.append(delivery)


async def test_webhooks_are_dispatched_by_provider_kind(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(hooks.HANDLERS, "memory", f"{__name__}:accept")
    DELIVERIES.clear()
    async with h.client() as client:
        assert (await client.post("/hooks/memory/nobody?key=right&id=1")).status_code == 404
        assert (await client.post("/hooks/caldav/shop?key=right&id=1")).status_code == 404
        assert (await client.post("/hooks/memory/shop?key=wrong&id=1")).status_code == 403
        assert (await client.post("/hooks/memory/shop?key=right")).status_code == 400
        assert h.pokes == []
        assert DELIVERIES == []
        answer = await client.post("/hooks/memory/shop?key=right&id=7", content=b"{}")
        assert answer.status_code == 200
        assert h.pokes == ["shop"]
        assert DELIVERIES[0].account == "shop"
        assert DELIVERIES[0].body == b"{}"
        huge = await client.post("/hooks/memory/shop?key=right&id=7", content=b"x" * 300_000)
        assert huge.status_code == 413
    monkeypatch.delitem(hooks.HANDLERS, "memory")
    async with h.client() as client:
        assert (await client.post("/hooks/memory/shop?key=right&id=1")).status_code == 404


OA = """
[providers.salon]
kind = "onlineafspraken"
base_url = "http://127.0.0.1:9/APIREST"
api_key = "oa-key-for-webhook-tests"
api_secret = "oa-secret-for-webhook-tests"

[[syncs]]
name = "salon"
provider = "salon"
scope = { agenda = "1" }
calendars = ["cal"]
"""


async def test_onlineafspraken_deliveries_reach_its_handler(tmp_path: Path) -> None:
    h = Harness.build(memory_config(tmp_path / "state.db", extra=OA))
    try:
        async with h.client() as client:
            good = "/hooks/onlineafspraken/salon?entity=appointment&id=42"
            wrong = await client.get(good + "&apiKey=guessed")
            right = await client.get(good + "&apiKey=oa-key-for-webhook-tests")
            malformed = await client.get(
                "/hooks/onlineafspraken/salon?entity=appointment&id=x"
                "&apiKey=oa-key-for-webhook-tests"
            )
        assert wrong.status_code == 403
        assert right.status_code == 200
        assert h.pokes == ["salon"]
        assert malformed.status_code == 400
    finally:
        await h.close()
