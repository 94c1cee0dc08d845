"""What the CalDAV backend promises beyond the shared contract, against real servers.

Request counts are checked twice: by ``CalendarChanges.requests`` and by a ``FaultProxy`` that
logs what actually went over the wire, so a miscounting backend cannot pass.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import structlog

from syncd.calendars.caldav import CaldavCalendar
from syncd.calendars.caldav_http import canonical, item_name
from syncd.errors import (
    AlreadyExists,
    AuthError,
    BackendError,
    NotFound,
    PreconditionFailed,
    RateLimited,
    TokenExpired,
    TransientError,
)
from syncd.model import UTC
from syncd.providers.base import Window
from tests.contract.calendar_contract import event, says
from tests.servers import (
    PASSWORD,
    USER,
    DavServer,
    Fault,
    FaultProxy,
    free_port,
    self_signed,
    start_radicale,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
DAY = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)
SYNC = b"sync-collection"
MULTIGET = b"calendar-multiget"
Factory = Callable[..., CaldavCalendar]


@pytest.fixture
async def make() -> AsyncIterator[Factory]:
    """Builds calendars and closes every one of them after the test."""
    made: list[CaldavCalendar] = []

    def build(url: str | None = None, **options: object) -> CaldavCalendar:
        options.setdefault("username", USER)
        options.setdefault("password", PASSWORD)
        calendar = CaldavCalendar("work", url=url, **options)  # type: ignore[arg-type]
        made.append(calendar)
        return calendar

    yield build
    for calendar in made:
        await calendar.aclose()


@pytest.fixture
def proxied(proxy: FaultProxy, radicale: DavServer, make: Factory) -> CaldavCalendar:
    """A calendar on a fresh Radicale collection, reached through the fault proxy."""
    return make(proxy.at(radicale.new_collection()))


async def warm(calendar: CaldavCalendar, proxy: FaultProxy) -> None:
    """Negotiate credentials (the 401 round trip happens once per process) and forget it."""
    await calendar.check()
    proxy.reset()


# -- writes ----------------------------------------------------------------------------------


async def test_a_replayed_create_adopts_and_never_duplicates(
    dav_server: DavServer, make: Factory
) -> None:
    calendar = make(dav_server.new_collection())
    ics = event("booking-1@syncd", "first", DAY).replace("DTSTAMP", "SEQUENCE:3\r\nDTSTAMP")
    ref = await calendar.create("booking-1@syncd", ics)
    with pytest.raises(AlreadyExists) as raised:
        await calendar.create("booking-1@syncd", ics)
    assert raised.value.href == ref.href
    listing = await calendar.changes(None)
    assert [item.href for item in listing.changed] == [ref.href]
    assert "SEQUENCE:3\r\n" in listing.changed[0].ics  # written as given, never bumped


async def test_a_uid_held_at_another_href_is_adopted_from_there(
    dav_server: DavServer, make: Factory
) -> None:
    collection = dav_server.new_collection()
    dav_server.put(f"{collection}made-by-a-person.ics", event("shared-uid", "theirs", DAY))
    calendar = make(collection)
    with pytest.raises(AlreadyExists) as raised:
        await calendar.create("shared-uid", event("shared-uid", "ours", DAY))
    assert raised.value.href == canonical(f"{collection}made-by-a-person.ics")


async def test_an_unsafe_uid_gets_a_stable_hashed_href(
    dav_server: DavServer, make: Factory
) -> None:
    calendar = make(dav_server.new_collection())
    uid = "a/b c+ü"
    ref = await calendar.create(uid, event(uid, "odd", DAY))
    assert ref.href.endswith("/" + item_name(uid))
    assert item_name(uid) == item_name(uid) != item_name("a/b c+u")
    assert says((await calendar.get([ref.href]))[0]) == (uid, "odd")


async def test_a_create_answered_without_etag_reads_it_back(
    proxied: CaldavCalendar, proxy: FaultProxy
) -> None:
    await warm(proxied, proxy)
    proxy.inject(Fault(method="PUT", drop=frozenset({"etag"})))
    ref = await proxied.create("u1", event("u1", "x", DAY))
    assert proxy.methods() == ["PUT", "PROPFIND"]
    assert ref.etag
    assert [item.etag for item in await proxied.get([ref.href])] == [ref.etag]


async def test_update_after_a_concurrent_change_fails_and_leaves_theirs(
    dav_server: DavServer, make: Factory
) -> None:
    collection = dav_server.new_collection()
    calendar = make(collection)
    ref = await calendar.create("u1", event("u1", "ours", DAY))
    dav_server.put(f"{collection}u1.ics", event("u1", "a person's edit", DAY))
    with pytest.raises(PreconditionFailed) as raised:
        await calendar.update(ref.href, event("u1", "ours again", DAY), ref.etag)
    assert not isinstance(raised.value, NotFound)
    assert says((await calendar.get([ref.href]))[0]) == ("u1", "a person's edit")


async def test_delete_of_a_missing_item_is_done(dav_server: DavServer, make: Factory) -> None:
    collection = dav_server.new_collection()
    calendar = make(collection)
    ref = await calendar.create("u1", event("u1", "x", DAY))
    dav_server.remove(f"{collection}u1.ics")
    await calendar.delete(ref.href, ref.etag)
    await calendar.delete(canonical(f"{collection}never-there.ics"), ref.etag)


async def test_writes_refuse_a_wildcard_etag(radicale: DavServer, make: Factory) -> None:
    calendar = make(radicale.new_collection())
    with pytest.raises(ValueError, match="etag"):
        await calendar.update("/x.ics", event("x", "x", DAY), "*")


# -- changes ---------------------------------------------------------------------------------


async def test_sync_fetches_changes_with_one_multiget_and_idles_on_one_request(
    proxied: CaldavCalendar, proxy: FaultProxy, radicale: DavServer
) -> None:
    await warm(proxied, proxy)
    refs = [await proxied.create(f"u{n}", event(f"u{n}", f"n{n}", DAY)) for n in range(5)]
    proxy.reset()
    first = await proxied.changes(None)
    assert (first.complete, len(first.changed), first.requests) == (True, 5, 2)
    assert [SYNC in body for _, body in proxy.seen] == [True, False]
    assert [MULTIGET in body for _, body in proxy.seen] == [False, True]

    base = radicale.base_url
    radicale.put(base + refs[0].href, event("u0", "moved by a person", DAY + timedelta(hours=1)))
    radicale.remove(base + refs[1].href)
    radicale.put(base + refs[1].href.replace("u1", "new"), event("new", "new", DAY))
    proxy.reset()
    later = await proxied.changes(first.token)
    assert later.requests == len(proxy.seen) == 2
    assert not later.complete
    assert sorted(says(item) for item in later.changed) == [
        ("new", "new"),
        ("u0", "moved by a person"),
    ]
    assert list(later.deleted) == [refs[1].href]

    proxy.reset()
    idle = await proxied.changes(later.token)
    assert (list(idle.changed), list(idle.deleted), idle.token) == ([], [], later.token)
    assert idle.requests == len(proxy.seen) == 1


async def test_own_writes_read_back_cost_no_multiget_when_known(
    proxied: CaldavCalendar, proxy: FaultProxy
) -> None:
    token = (await proxied.changes(None)).token
    refs = [await proxied.create(f"u{n}", event(f"u{n}", "x", DAY)) for n in range(3)]
    proxy.reset()
    echo = await proxied.changes(token, {ref.href: ref.etag for ref in refs})
    assert (list(echo.changed), echo.requests, proxy.methods()) == ([], 1, ["REPORT"])


async def test_a_rejected_token_is_token_expired_and_recovers(
    dav_server: DavServer, make: Factory
) -> None:
    calendar = make(dav_server.new_collection())
    ref = await calendar.create("u1", event("u1", "x", DAY))
    token = (await calendar.changes(None)).token
    assert token
    with pytest.raises(TokenExpired):
        await calendar.changes(token + "-not-any-more")
    again = await calendar.changes(None)
    assert (again.complete, [item.href for item in again.changed]) == (True, [ref.href])
    assert again.token
    assert not again.token.startswith("fake-")


async def test_without_sync_collection_etags_are_listed_and_diffed(
    proxied: CaldavCalendar, proxy: FaultProxy, radicale: DavServer
) -> None:
    refusal = b'<D:error xmlns:D="DAV:"><D:supported-report/></D:error>'
    proxy.inject(Fault(status=403, method="REPORT", marker=SYNC, body=refusal))
    refs = [await proxied.create(f"u{n}", event(f"u{n}", "x", DAY)) for n in range(3)]
    first = await proxied.changes(None)
    assert (first.complete, first.token, len(first.changed)) == (True, None, 3)

    known = {item.href: item.etag for item in first.changed}
    proxy.seen.clear()
    idle = await proxied.changes(None, known)
    assert (list(idle.changed), list(idle.deleted)) == ([], [])
    assert idle.requests == 1
    assert proxy.methods() == ["PROPFIND"]  # the refused report is not asked again

    radicale.put(radicale.base_url + refs[0].href, event("u0", "edited", DAY))
    radicale.remove(radicale.base_url + refs[1].href)
    proxy.seen.clear()
    diff = await proxied.changes(None, known)
    assert [says(item) for item in diff.changed] == [("u0", "edited")]
    assert (list(diff.deleted), diff.complete, diff.requests) == ([refs[1].href], False, 2)


async def test_a_malformed_item_is_returned_as_the_server_sent_it(
    proxied: CaldavCalendar, proxy: FaultProxy
) -> None:
    ref = await proxied.create("u1", event("u1", "fine", DAY))
    proxy.inject(Fault(method="REPORT", marker=MULTIGET, replace=(b"DTSTART:", b"DTSTART:x")))
    [item] = await proxied.get([ref.href])
    assert "DTSTART:x2031" in item.ics
    assert item.ics.endswith("END:VCALENDAR\r\n")


# -- search ----------------------------------------------------------------------------------


async def test_items_between_asks_the_server_once(
    proxied: CaldavCalendar, proxy: FaultProxy
) -> None:
    inside = await proxied.create("in", event("in", "in", DAY + timedelta(hours=1)))
    await proxied.create("out", event("out", "out", DAY + timedelta(days=3)))
    proxy.reset()
    found = await proxied.items_between(Window(DAY, DAY + timedelta(days=1)))
    assert ([item.href for item in found], proxy.methods()) == ([inside.href], ["REPORT"])
    with pytest.raises(ValueError, match="timezone-aware"):
        await proxied.items_between(Window(datetime(2031, 1, 1), datetime(2031, 1, 2)))


# -- finding and making the calendar ---------------------------------------------------------


async def test_a_missing_collection_says_which_setting_to_check(
    dav_server: DavServer, make: Factory
) -> None:
    calendar = make(f"{dav_server.home}does-not-exist/")
    for call in (
        calendar.check(),
        calendar.changes(None),
        calendar.create("u", event("u", "x", DAY)),
    ):
        with pytest.raises(NotFound, match=r"calendars\.work\.url.*create = true"):
            await call


async def test_create_true_makes_the_calendar_once(dav_server: DavServer, make: Factory) -> None:
    options = {"server_url": dav_server.base_url + "/", "calendar": "Bookings Test"}
    with pytest.raises(NotFound, match="create = true"):
        await make(**options).check()
    first = make(**options, create=True)
    ref = await first.create("u1", event("u1", "x", DAY))
    second = make(**options, create=True)  # finds it by display name: no second calendar
    assert [item.href for item in (await second.changes(None)).changed] == [ref.href]
    listing = await make(**options).changes(None)
    assert [item.href for item in listing.changed] == [ref.href]


def test_the_calendar_is_named_one_way_only() -> None:
    with pytest.raises(ValueError, match="either url, or server_url and calendar"):
        CaldavCalendar("work", url="http://h/c/", server_url="http://h/", calendar="c")
    with pytest.raises(ValueError, match="either url, or server_url and calendar"):
        CaldavCalendar("work", server_url="http://h/")


# -- errors ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DavServer]:
    """Radicale with a password file: it answers 401 to wrong credentials."""
    folder: Path = tmp_path_factory.mktemp("radicale-auth")
    (folder / "users").write_text(f"{USER}:{PASSWORD}\n")
    server = start_radicale(
        folder,
        *("--auth-type", "htpasswd", "--auth-htpasswd-filename", str(folder / "users")),
        *("--auth-htpasswd-encryption", "plain"),
    )
    yield server
    server.stop()


async def test_refused_credentials_name_the_calendar_and_never_the_password(
    guarded: DavServer, make: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    collection = guarded.new_collection()
    await make(collection).check()  # the right password works
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="caldav")  # the library logs requests at DEBUG
    with structlog.testing.capture_logs() as events, pytest.raises(AuthError) as raised:
        await make(collection, password="wrong-horse-battery").changes(None)
    message = str(raised.value)
    assert message.startswith("work:")
    assert "401" in message
    assert "sending request" in caplog.text  # the library's request log was captured
    assert "wrong-horse-battery" not in message + caplog.text + repr(events)


@pytest.mark.parametrize(
    ("status", "error"),
    [(403, AuthError), (500, TransientError), (503, TransientError), (507, TransientError)],
)
async def test_http_failures_map_to_syncd_errors(
    proxied: CaldavCalendar, proxy: FaultProxy, status: int, error: type[Exception]
) -> None:
    proxy.inject(Fault(status=status))
    with pytest.raises(error) as raised:
        await proxied.changes(None)
    assert str(raised.value).startswith("work:")
    with pytest.raises(error):
        await proxied.create("u1", event("u1", "x", DAY))


async def test_429_carries_retry_after(proxied: CaldavCalendar, proxy: FaultProxy) -> None:
    proxy.inject(Fault(status=429, headers={"Retry-After": "7"}))
    with pytest.raises(RateLimited) as raised:
        await proxied.check()
    assert raised.value.retry_after == 7


async def test_timeouts_and_refused_connections_are_transient(
    proxy: FaultProxy, radicale: DavServer, make: Factory
) -> None:
    slow = make(proxy.at(radicale.new_collection()), timeout=0.3)
    proxy.inject(Fault(delay=1.0, status=504))
    with pytest.raises(TransientError, match="Timeout"):
        await slow.check()
    nobody = make(f"http://127.0.0.1:{free_port()}/{USER}/cal/")
    with pytest.raises(TransientError, match="ConnectionError"):
        await nobody.check()


async def test_ca_bundle_lets_a_private_certificate_in(
    radicale: DavServer, make: Factory, tmp_path: Path
) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = self_signed(tmp_path)
    tls = FaultProxy(radicale.base_url, certificate=(cert, key))
    try:
        url = tls.at(radicale.new_collection())
        await make(url, ca_bundle=cert).check()
        with pytest.raises(BackendError, match="check ca_bundle") as raised:
            await make(url).check()
        assert not isinstance(raised.value, TransientError)  # retrying will not help
    finally:
        tls.close()
