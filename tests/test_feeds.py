"""Feeds: the ledger's SEQUENCE and cancellation rules, the rendered calendar, the store."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest

from syncd.config import parse_config
from syncd.feeds import FeedStore
from syncd.feeds.ledger import Entry, reconcile, revise, vanish
from syncd.feeds.render import EventBlocks, ics_duration, render_feed
from syncd.ical import RenderOptions, event_uid
from syncd.model import Appointment, Status
from syncd.providers.memory import MemoryProvider
from syncd.reconcile.cycle import run_cycle
from syncd.runtime import Runtime, open_store
from tests.daemon_kit import BUSY_TOKEN, TOKEN, memory_config

AMS = ZoneInfo("Europe/Amsterdam")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEEP = timedelta(days=14)


def appointment(native_id: str = "1", hour: int = 9, **fields: object) -> Appointment:
    start = datetime(2026, 3, 2, hour, tzinfo=AMS)
    return Appointment("shop", native_id, start, start + timedelta(minutes=30), **fields)  # type: ignore[arg-type]


def sequence(event: icalendar.cal.Component) -> int:
    return int(event.decoded("SEQUENCE"))


# -- the ledger ------------------------------------------------------------------------------


def test_sequence_grows_only_when_what_is_published_changes() -> None:
    first = revise(None, appointment(), "v1", T0)
    assert first is not None
    assert first.sequence == 0
    assert revise(first, appointment(), "v1", T0 + timedelta(hours=1)) is None
    moved = revise(first, appointment(hour=10), "v2", T0 + timedelta(hours=1))
    assert moved is not None
    assert (moved.sequence, moved.changed_at) == (1, T0 + timedelta(hours=1))


def test_a_vanished_appointment_is_published_cancelled_then_dropped() -> None:
    entry = revise(None, appointment(), "v1", T0)
    assert entry is not None
    later = T0 + timedelta(hours=2)
    delta = reconcile({"1": entry}, {}, {}, later, KEEP)
    gone = delta.upsert["1"]
    assert gone.gone
    assert gone.appointment.status is Status.CANCELLED
    assert (gone.sequence, gone.cancelled_at) == (1, later)
    assert gone.shown(later + KEEP - timedelta(seconds=1), KEEP)
    still = reconcile({"1": gone}, {}, {}, later + timedelta(days=1), KEEP)
    assert not still
    expired = reconcile({"1": gone}, {}, {}, later + KEEP, KEEP)
    assert expired.delete == {"1"}
    assert not expired.upsert


def test_a_cancelled_appointment_is_hidden_after_keep_but_never_published_anew() -> None:
    cancelled = revise(None, appointment(status=Status.CANCELLED), "c1", T0)
    assert cancelled is not None
    assert cancelled.cancelled_at == T0
    edited = revise(cancelled, appointment(status=Status.CANCELLED, title="x"), "c2", T0 + KEEP)
    assert edited is not None
    assert edited.cancelled_at == T0
    late = T0 + KEEP + timedelta(days=1)
    assert not edited.shown(late, KEEP)
    # Still at the provider: the row stays (hidden), so it is not taken for a new booking.
    assert not reconcile({"1": edited}, {"1": "c2"}, {}, late, KEEP)


def test_vanishing_after_a_cancel_changes_nothing_a_client_sees() -> None:
    cancelled = revise(None, appointment(status=Status.CANCELLED), "c1", T0)
    assert cancelled is not None
    gone = vanish(cancelled, T0 + timedelta(days=1))
    assert (gone.sequence, gone.changed_at, gone.cancelled_at) == (0, T0, T0)
    assert gone.gone


def test_an_appointment_leaving_the_selection_is_cancelled_and_back_again_is_new() -> None:
    entry = revise(None, appointment(), "v1", T0)
    assert entry is not None
    left = reconcile({"1": entry}, {"1": "v2"}, {"1": None}, T0, KEEP).upsert["1"]
    assert left.gone
    assert left.sequence == 1
    back = reconcile({"1": left}, {"1": "v3"}, {"1": appointment()}, T0, KEEP).upsert["1"]
    assert (back.gone, back.sequence, back.cancelled_at) == (False, 2, None)
    assert back.appointment.status is Status.CONFIRMED


# -- rendering -------------------------------------------------------------------------------


def _entries() -> list[Entry]:
    winter = appointment("1", customer="Ann Example")
    summer = replace(
        appointment("2"),
        start=datetime(2027, 7, 1, 9, tzinfo=AMS),
        end=datetime(2027, 7, 1, 10, tzinfo=AMS),
    )
    utc = replace(
        appointment("3"),
        start=datetime(2026, 5, 1, 9, tzinfo=UTC),
        end=datetime(2026, 5, 1, 10, tzinfo=UTC),
    )
    return [Entry(a, "v", 0, T0) for a in (summer, utc, winter)]


def test_the_feed_parses_with_one_vtimezone_per_zone_and_its_refresh_hints() -> None:
    feed = render_feed(
        "team", _entries(), EventBlocks(RenderOptions("shop")), timedelta(minutes=5), T0
    )
    calendar = icalendar.Calendar.from_ical(feed.body)
    zones = list(calendar.walk("VTIMEZONE"))
    assert [str(z["TZID"]) for z in zones] == ["Europe/Amsterdam"]
    events = calendar.walk("VEVENT")
    assert [str(e["X-SYNCD-ID"]) for e in events] == ["1", "3", "2"]  # by start
    assert {str(e["UID"]) for e in events} == {event_uid("shop", n) for n in "123"}
    # The one zone covers both the 2026 and the 2027 event: each keeps its own instant.
    summer = next(e for e in events if str(e["X-SYNCD-ID"]) == "2")
    assert summer.decoded("DTSTART").utcoffset() == timedelta(hours=2)
    assert feed.body.count(b"REFRESH-INTERVAL;VALUE=DURATION:PT5M\r\n") == 1
    assert feed.body.count(b"X-PUBLISHED-TTL:PT5M\r\n") == 1
    assert gzip.decompress(feed.gzipped) == feed.body
    assert feed.etag != feed.gzip_etag
    assert feed.etag.startswith('"')


def test_the_same_entries_give_the_same_bytes() -> None:
    blocks = EventBlocks(RenderOptions("shop"))
    first = render_feed("team", _entries(), blocks, timedelta(minutes=5), T0)
    again = render_feed(
        "team",
        list(reversed(_entries())),
        EventBlocks(RenderOptions("shop")),
        timedelta(minutes=5),
        T0 + timedelta(hours=1),
    )
    assert (first.body, first.etag) == (again.body, again.etag)


def test_ics_durations() -> None:
    assert ics_duration(timedelta(minutes=1)) == "PT1M"
    assert ics_duration(timedelta(hours=1, minutes=30)) == "PT1H30M"
    assert ics_duration(timedelta(days=1)) == "P1D"


# -- the store, on real sync runs --------------------------------------------------------------


class Shop:
    def __init__(self, tmp_path: Path, extra: str = "") -> None:
        self.config = parse_config(memory_config(tmp_path / "state.db", extra=extra), environ={})
        self.store = open_store(self.config)
        self.runtime = Runtime.build(self.config)
        provider = self.runtime.providers["shop"]
        assert isinstance(provider, MemoryProvider)
        self.provider = provider
        self.feeds = FeedStore(self.store, self.config)

    async def sync(self, full: bool = False) -> None:
        await run_cycle(self.store, self.runtime.syncs[0], full=full)

    def events(self, token: str = TOKEN) -> dict[str, icalendar.cal.Component]:
        feed = self.feeds.lookup(token)
        assert feed is not None
        calendar = icalendar.Calendar.from_ical(feed.body)
        return {str(e["X-SYNCD-ID"]): e for e in calendar.walk("VEVENT")}


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[Shop]:
    s = Shop(tmp_path)
    await s.sync()
    yield s
    await s.runtime.aclose()
    s.store.close()


@pytest.mark.anyio
async def test_a_move_bumps_one_sequence_and_the_etag(shop: Shop) -> None:
    assert shop.feeds.refresh("shop", now=T0) == ["all", "busy"]
    events = shop.events()
    assert len(events) == 12
    assert {sequence(e) for e in events.values()} == {0}
    before = shop.feeds.lookup(TOKEN)
    assert shop.feeds.refresh("shop", now=T0 + timedelta(minutes=1)) == []  # nothing changed

    picked = shop.provider.appointments()["3"]
    shop.provider.reschedule(
        "3", picked.start + timedelta(hours=1), picked.end + timedelta(hours=1)
    )
    await shop.sync()
    later = T0 + timedelta(minutes=2)
    assert shop.feeds.refresh("shop", now=later) == ["all", "busy"]
    after = shop.feeds.lookup(TOKEN)
    assert before is not None
    assert after is not None
    assert after.etag != before.etag
    assert after.modified == later
    sequences = {nid: sequence(e) for nid, e in shop.events().items()}
    assert sequences.pop("3") == 1
    assert set(sequences.values()) == {0}


@pytest.mark.anyio
async def test_cancelled_and_deleted_appointments_stay_cancelled_for_a_while(shop: Shop) -> None:
    shop.feeds.refresh("shop", now=T0)
    shop.provider.cancel_by_business("2")
    shop.provider.hard_delete("5")
    await shop.sync(full=True)  # only a full scan sees the hard delete
    shop.feeds.refresh("shop", now=T0 + timedelta(hours=1))
    events = shop.events()
    for nid in ("2", "5"):
        assert str(events[nid]["STATUS"]) == "CANCELLED"
        assert sequence(events[nid]) == 1
    assert str(events["1"]["STATUS"]) == "CONFIRMED"
    shop.feeds.refresh("shop", now=T0 + KEEP + timedelta(hours=2))
    assert "2" not in shop.events()
    assert "5" not in shop.events()
    assert len(shop.events()) == 10


@pytest.mark.anyio
async def test_a_restart_keeps_etag_last_modified_and_sequences(shop: Shop) -> None:
    shop.feeds.refresh("shop", now=T0)
    first = shop.feeds.lookup(TOKEN)
    again = FeedStore(shop.store, shop.config)
    again.refresh_all()
    reloaded = again.lookup(TOKEN)
    assert first is not None
    assert reloaded is not None
    assert (reloaded.etag, reloaded.modified, reloaded.body) == (first.etag, T0, first.body)

    shop.provider.edit("4", title="Renamed")
    await shop.sync()
    again.refresh("shop", now=T0 + timedelta(hours=1))
    shop.feeds = again
    assert sequence(shop.events()["4"]) == 1


@pytest.mark.anyio
async def test_busy_feeds_carry_no_client_data(shop: Shop) -> None:
    shop.feeds.refresh("shop", now=T0)
    full, busy = shop.feeds.lookup(TOKEN), shop.feeds.lookup(BUSY_TOKEN)
    assert full is not None
    assert busy is not None
    assert b"Customer" in full.body
    assert b"Customer" not in busy.body
    assert {str(e["SUMMARY"]) for e in shop.events(BUSY_TOKEN).values()} == {"Busy"}
    assert shop.feeds.lookup("x" * len(TOKEN)) is None
    assert shop.feeds.lookup(TOKEN[:-1]) is None


@pytest.mark.anyio
async def test_a_staff_feed_shows_one_person_and_lets_go_of_a_reassigned_booking(
    tmp_path: Path,
) -> None:
    extra = '[feeds.anna]\nsync = "shop"\ntoken = "annaTokenAnnaTokenAnna03"\nstaff = "Anna"\n'
    shop = Shop(tmp_path, extra)
    try:
        await shop.sync()
        shop.feeds.refresh("shop", now=T0)
        mine = shop.events("annaTokenAnnaTokenAnna03")
        assert mine
        assert all("Staff: anna" in str(e["DESCRIPTION"]) for e in mine.values())
        moved = next(iter(mine))
        shop.provider.edit(moved, staff="bram")
        await shop.sync()
        shop.feeds.refresh("shop", now=T0 + timedelta(hours=1))
        assert str(shop.events("annaTokenAnnaTokenAnna03")[moved]["STATUS"]) == "CANCELLED"
        assert str(shop.events()[moved]["STATUS"]) == "CONFIRMED"
    finally:
        await shop.runtime.aclose()
        shop.store.close()


def test_a_busy_sync_is_never_published_in_full(tmp_path: Path) -> None:
    text = memory_config(tmp_path / "s.db").replace(
        'interval = "1m"', 'interval = "1m"\nprivacy = "busy"'
    )
    config = parse_config(text, environ={})
    store = open_store(config)
    try:
        feeds = FeedStore(store, config)
        assert {feeds._feeds[n].options.privacy.value for n in feeds.names()} == {"busy"}
    finally:
        store.close()
