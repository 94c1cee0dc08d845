"""The calendar contract (``syncd/calendars/base.py``) as tests every calendar backend passes.

Subclass ``CalendarContract`` in a ``Test*`` class and override the ``calendar`` fixture with
the backend under test, pointed at an empty collection (sync or async fixture; close it when
done). ``day`` (an aware datetime, default in 2031) places the events of the search tests.

Items are built here as plain iCalendar text, not with ``syncd.ical``, so the contract checks
the backend alone. Servers may rewrite what they store (Radicale reorders properties), so
content is compared by what it says (UID, SUMMARY), never byte for byte. Each test needs only
the capabilities it names and skips, saying which, when one is missing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest

from syncd.calendars.base import Calendar, CalendarCapability
from syncd.errors import AlreadyExists, NotFound, PreconditionFailed
from syncd.model import CalendarItem, ItemRef
from syncd.providers.base import Window

UTC = ZoneInfo("UTC")


def event(uid: str, summary: str, start: datetime, minutes: int = 60, rrule: str = "") -> str:
    """One VEVENT in a VCALENDAR, times in UTC, lines ended with CRLF as RFC 5545 asks."""
    end = start + timedelta(minutes=minutes)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//syncd//contract tests//EN",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20240101T000000Z",
        f"DTSTART:{start.astimezone(UTC):%Y%m%dT%H%M%SZ}",
        f"DTEND:{end.astimezone(UTC):%Y%m%dT%H%M%SZ}",
        f"SUMMARY:{summary}",
        *([f"RRULE:{rrule}"] if rrule else []),
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"


def says(item: CalendarItem) -> tuple[str, str]:
    """(UID, SUMMARY) of the item's first VEVENT, however the server formatted it."""
    first = icalendar.Calendar.from_ical(item.ics).events[0]
    return str(first["UID"]), str(first["SUMMARY"])


def new_uid() -> str:
    return f"contract-{uuid.uuid4().hex}"


@pytest.mark.anyio
class CalendarContract:
    @pytest.fixture
    def calendar(self) -> Calendar:
        raise NotImplementedError("a CalendarContract subclass must override `calendar`")

    @pytest.fixture
    def day(self) -> datetime:
        return datetime(2031, 3, 3, 9, 0, tzinfo=UTC)

    @staticmethod
    def need(calendar: Calendar, *needed: CalendarCapability) -> None:
        missing = [c.value for c in needed if c not in calendar.capabilities]
        if missing:
            pytest.skip(f"{type(calendar).__name__} lacks {', '.join(missing)}")

    async def put(self, calendar: Calendar, summary: str, day: datetime) -> tuple[str, ItemRef]:
        uid = new_uid()
        return uid, await calendar.create(uid, event(uid, summary, day))

    async def one(self, calendar: Calendar, href: str) -> CalendarItem:
        found = await calendar.get([href])
        assert [item.href for item in found] == [href]
        return found[0]

    # -- conditional writes ------------------------------------------------------------------

    async def test_create_then_get(self, calendar: Calendar, day: datetime) -> None:
        uid, ref = await self.put(calendar, "first", day)
        assert ref.href
        assert ref.etag
        item = await self.one(calendar, ref.href)
        assert item.etag == ref.etag
        assert says(item) == (uid, "first")

    async def test_create_twice_raises_already_exists_with_the_href(
        self, calendar: Calendar, day: datetime
    ) -> None:
        uid, ref = await self.put(calendar, "first", day)
        with pytest.raises(AlreadyExists) as raised:
            await calendar.create(uid, event(uid, "replayed", day))
        assert raised.value.href == ref.href
        assert says(await self.one(calendar, ref.href)) == (uid, "first")

    async def test_update_with_the_current_etag(self, calendar: Calendar, day: datetime) -> None:
        uid, ref = await self.put(calendar, "first", day)
        new = await calendar.update(ref.href, event(uid, "second", day), ref.etag)
        assert new.href == ref.href
        assert new.etag != ref.etag
        item = await self.one(calendar, ref.href)
        assert (item.etag, says(item)) == (new.etag, (uid, "second"))

    async def test_update_with_a_stale_etag_fails(self, calendar: Calendar, day: datetime) -> None:
        uid, ref = await self.put(calendar, "first", day)
        await calendar.update(ref.href, event(uid, "theirs", day), ref.etag)
        with pytest.raises(PreconditionFailed):
            await calendar.update(ref.href, event(uid, "ours", day), ref.etag)
        assert says(await self.one(calendar, ref.href)) == (uid, "theirs")

    async def test_update_of_a_missing_item_is_not_found(
        self, calendar: Calendar, day: datetime
    ) -> None:
        uid, ref = await self.put(calendar, "first", day)
        await calendar.delete(ref.href, ref.etag)
        with pytest.raises(NotFound):
            await calendar.update(ref.href, event(uid, "again", day), ref.etag)

    async def test_delete_with_the_current_etag(self, calendar: Calendar, day: datetime) -> None:
        _, ref = await self.put(calendar, "first", day)
        await calendar.delete(ref.href, ref.etag)
        assert await calendar.get([ref.href]) == []

    async def test_delete_with_a_stale_etag_fails(self, calendar: Calendar, day: datetime) -> None:
        uid, ref = await self.put(calendar, "first", day)
        await calendar.update(ref.href, event(uid, "theirs", day), ref.etag)
        with pytest.raises(PreconditionFailed):
            await calendar.delete(ref.href, ref.etag)
        assert says(await self.one(calendar, ref.href)) == (uid, "theirs")

    async def test_delete_of_a_gone_item_is_fine(self, calendar: Calendar, day: datetime) -> None:
        _, ref = await self.put(calendar, "first", day)
        await calendar.delete(ref.href, ref.etag)
        await calendar.delete(ref.href, ref.etag)

    async def test_get_leaves_out_missing_hrefs(self, calendar: Calendar, day: datetime) -> None:
        _, kept = await self.put(calendar, "kept", day)
        _, gone = await self.put(calendar, "gone", day)
        await calendar.delete(gone.href, gone.etag)
        found = await calendar.get([gone.href, kept.href])
        assert [item.href for item in found] == [kept.href]
        assert await calendar.get([]) == []

    # -- changes -----------------------------------------------------------------------------

    async def test_changes_without_a_token_lists_everything(
        self, calendar: Calendar, day: datetime
    ) -> None:
        refs = [(await self.put(calendar, name, day))[1] for name in ("a", "b")]
        changes = await calendar.changes(None)
        assert changes.complete
        listed = {item.href: item.etag for item in changes.changed}
        assert listed == {ref.href: ref.etag for ref in refs}
        if CalendarCapability.SYNC_TOKEN in calendar.capabilities:
            assert changes.token

    async def test_changes_since_a_token_are_exactly_the_later_ones(
        self, calendar: Calendar, day: datetime
    ) -> None:
        self.need(calendar, CalendarCapability.SYNC_TOKEN)
        (uid_a, a), (_, b), (_, c) = [await self.put(calendar, n, day) for n in ("a", "b", "c")]
        token = (await calendar.changes(None)).token
        a2 = await calendar.update(a.href, event(uid_a, "a2", day), a.etag)
        a3 = await calendar.update(a.href, event(uid_a, "a3", day), a2.etag)
        await calendar.delete(b.href, b.etag)
        _, d = await self.put(calendar, "d", day)
        changes = await calendar.changes(token)
        assert not changes.complete
        changed = {item.href: item for item in changes.changed}
        assert sorted(changed) == sorted([a.href, d.href])  # each once, c untouched
        assert changed[a.href].etag == a3.etag
        assert says(changed[a.href]) == (uid_a, "a3")
        assert list(changes.deleted) == [b.href]
        assert c.href not in changed

    async def test_an_item_created_and_deleted_since_the_token_is_not_changed(
        self, calendar: Calendar, day: datetime
    ) -> None:
        self.need(calendar, CalendarCapability.SYNC_TOKEN)
        token = (await calendar.changes(None)).token
        _, ref = await self.put(calendar, "brief", day)
        await calendar.delete(ref.href, ref.etag)
        changes = await calendar.changes(token)
        assert ref.href not in {item.href for item in changes.changed}

    async def test_the_token_after_writes_round_trips(
        self, calendar: Calendar, day: datetime
    ) -> None:
        self.need(calendar, CalendarCapability.SYNC_TOKEN)
        token = (await calendar.changes(None)).token
        _, ref = await self.put(calendar, "new", day)
        seen = await calendar.changes(token)
        assert [item.href for item in seen.changed] == [ref.href]
        assert seen.token
        assert seen.token != token
        idle = await calendar.changes(seen.token)
        assert (list(idle.changed), list(idle.deleted)) == ([], [])

    # -- search ------------------------------------------------------------------------------

    async def test_items_between_finds_overlaps_and_recurring_events(
        self, calendar: Calendar, day: datetime
    ) -> None:
        self.need(calendar, CalendarCapability.SEARCH)
        window = Window(day, day + timedelta(days=1))

        async def add(summary: str, start: datetime, minutes: int = 60, rrule: str = "") -> str:
            uid = new_uid()
            return (await calendar.create(uid, event(uid, summary, start, minutes, rrule))).href

        inside = await add("inside", day + timedelta(hours=2))
        across = await add("across the start", day - timedelta(minutes=30))
        weekly = await add("weekly", day - timedelta(weeks=3), rrule="FREQ=WEEKLY")
        await add("ends at the start", day - timedelta(hours=1))
        await add("next day", day + timedelta(days=1, hours=2))
        await add("series starts later", day + timedelta(days=2), rrule="FREQ=DAILY")
        found = {item.href for item in await calendar.items_between(window)}
        assert found == {inside, across, weekly}
