"""The provider contract (``syncd/providers/base.py``) as tests every provider must pass.

Subclass ``ProviderContract`` in a ``Test*`` class and override two fixtures:

    provider    the ``Provider`` under test (sync or async fixture; close it when done)
    business    a ``Business``: the hooks that change the provider behind syncd's back, as the
                business or its customers do (a sandbox's admin API, a memory backend's helpers)

and, when the defaults do not suit, ``scope`` (the sync scope the tests pull, default ``{}``)
and ``day`` (an aware datetime on a bookable day: every test books from it on, hourly).
``cursor_overlap = True`` declares a watermark cursor with an overlap: an incremental pull may
then repeat recent changes, so "only later changes" is not asserted.

Each test needs only the capabilities it names and skips, saying which, when one is missing.
The tests assert what the engine relies on, never how a backend keeps its data.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import ClassVar, Protocol
from zoneinfo import ZoneInfo

import pytest

from syncd.errors import NotFound
from syncd.intake.request import IntakeRequest, Person, intake_reference
from syncd.model import Appointment, BusyBlock, Deleted
from syncd.providers.base import Capability, Cursor, Provider, Pull, Scope, Window


class Business(Protocol):
    """What the business does to its bookings, outside syncd. Ids are native ids."""

    async def book(self, scope: Scope, start: datetime, end: datetime, title: str) -> str: ...

    async def reschedule(self, native_id: str, start: datetime, end: datetime) -> None: ...

    async def cancel(self, native_id: str) -> None: ...

    async def delete(self, native_id: str) -> None:
        """Remove the booking without a trace, as an admin purging it does."""


def appointments(pull: Pull) -> dict[str, Appointment]:
    return {item.native_id: item for item in pull.items if isinstance(item, Appointment)}


def deleted(pull: Pull) -> set[str]:
    return {item.native_id for item in pull.items if isinstance(item, Deleted)}


def through_json(cursor: Cursor) -> Cursor:
    """The cursor as the state store gives it back: stored as JSON text, read in again."""
    restored: dict[str, str] = json.loads(json.dumps(dict(cursor)))
    return restored


@pytest.mark.anyio
class ProviderContract:
    cursor_overlap: ClassVar[bool] = False

    @pytest.fixture
    def provider(self) -> Provider:
        raise NotImplementedError("a ProviderContract subclass must override `provider`")

    @pytest.fixture
    def business(self) -> Business:
        raise NotImplementedError("a ProviderContract subclass must override `business`")

    @pytest.fixture
    def scope(self) -> Scope:
        return {}

    @pytest.fixture
    def day(self) -> datetime:
        return datetime(2031, 3, 3, 10, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))  # a Monday

    @pytest.fixture
    def window(self, day: datetime) -> Window:
        return Window(day - timedelta(days=1), day + timedelta(days=14))

    @staticmethod
    def need(provider: Provider, *needed: Capability) -> None:
        missing = [c.value for c in needed if c not in provider.capabilities]
        if missing:
            pytest.skip(f"{type(provider).__name__} lacks {', '.join(missing)}")

    @staticmethod
    def lists(provider: Provider) -> None:
        """Skip unless ``pull`` without a cursor lists a window: a ``TRACKED`` provider only
        re-reads what it is told about (tested by ``test_reread_...`` instead)."""
        if Capability.TRACKED in provider.capabilities:
            pytest.skip(f"{type(provider).__name__} cannot list a window (it is tracked)")

    @staticmethod
    def slot(day: datetime, hour: int) -> tuple[datetime, datetime]:
        start = day + timedelta(hours=hour)
        return start, start + timedelta(minutes=30)

    async def book(self, business: Business, scope: Scope, day: datetime, hour: int) -> str:
        return await business.book(scope, *self.slot(day, hour), f"contract booking {hour}")

    # -- pulls -------------------------------------------------------------------------------

    async def test_first_pull_lists_the_window_completely(
        self, provider: Provider, business: Business, scope: Scope, day: datetime, window: Window
    ) -> None:
        self.lists(provider)
        ids = [await self.book(business, scope, day, hour) for hour in (0, 1, 2)]
        pull = await provider.pull(scope, None, window)
        assert pull.complete
        found = appointments(pull)
        assert set(ids) <= found.keys()
        first = found[ids[0]]
        assert (first.start, first.end) == self.slot(day, 0)
        assert first.account == provider.name
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in pull.cursor.items())

    async def test_incremental_pull_returns_the_later_changes(
        self, provider: Provider, business: Business, scope: Scope, day: datetime, window: Window
    ) -> None:
        self.need(provider, Capability.INCREMENTAL)
        moved, untouched = [await self.book(business, scope, day, hour) for hour in (0, 1)]
        cursor = (await provider.pull(scope, None, window)).cursor
        added = await self.book(business, scope, day, 2)
        await business.reschedule(moved, *self.slot(day, 4))
        pull = await provider.pull(scope, cursor, window)
        assert not pull.complete
        found = appointments(pull)
        assert {moved, added} <= found.keys()
        assert (found[moved].start, found[moved].end) == self.slot(day, 4)
        if not self.cursor_overlap:
            assert untouched not in found

    async def test_cursor_survives_storage_and_an_idle_pull_is_empty(
        self, provider: Provider, business: Business, scope: Scope, day: datetime, window: Window
    ) -> None:
        self.need(provider, Capability.INCREMENTAL)
        await self.book(business, scope, day, 0)
        first = await provider.pull(scope, None, window)
        again = await provider.pull(scope, through_json(first.cursor), window)
        if not self.cursor_overlap:
            assert appointments(again) == {}
        added = await self.book(business, scope, day, 1)
        later = await provider.pull(scope, through_json(again.cursor), window)
        assert added in appointments(later)

    async def test_incremental_pull_reports_a_cancel_by_the_business(
        self, provider: Provider, business: Business, scope: Scope, day: datetime, window: Window
    ) -> None:
        self.need(provider, Capability.INCREMENTAL)
        native_id = await self.book(business, scope, day, 0)
        cursor = (await provider.pull(scope, None, window)).cursor
        await business.cancel(native_id)
        pull = await provider.pull(scope, cursor, window)
        found = appointments(pull)
        assert native_id in deleted(pull) or found[native_id].cancelled

    async def test_incremental_pull_reports_a_hard_delete(
        self, provider: Provider, business: Business, scope: Scope, day: datetime, window: Window
    ) -> None:
        self.need(provider, Capability.INCREMENTAL, Capability.DELETES_IN_PULL)
        native_id = await self.book(business, scope, day, 0)
        cursor = (await provider.pull(scope, None, window)).cursor
        await business.delete(native_id)
        assert native_id in deleted(await provider.pull(scope, cursor, window))

    async def test_scan_is_complete_and_leaves_out_hard_deletes(
        self, provider: Provider, business: Business, scope: Scope, day: datetime, window: Window
    ) -> None:
        self.need(provider, Capability.SCAN)
        kept, gone = [await self.book(business, scope, day, hour) for hour in (0, 1)]
        await business.delete(gone)
        pull = await provider.scan(scope, window)
        assert pull.complete
        assert kept in appointments(pull)
        assert gone not in appointments(pull)

    async def test_reread_follows_what_the_engine_holds(
        self, provider: Provider, business: Business, scope: Scope, day: datetime, window: Window
    ) -> None:
        self.need(provider, Capability.TRACKED)
        ids = [await self.book(business, scope, day, hour) for hour in (0, 1, 2, 3)]
        known = {nid: read for nid in ids if (read := await provider.get(nid)) is not None}
        assert known.keys() == set(ids)
        moved, cancelled, gone, untouched = ids
        await business.reschedule(moved, *self.slot(day, 5))
        await business.cancel(cancelled)
        await business.delete(gone)
        pull = await provider.reread(scope, known, window)
        assert not pull.complete
        found = appointments(pull)
        assert (found[moved].start, found[moved].end) == self.slot(day, 5)
        for nid in (cancelled, gone):
            assert nid in deleted(pull) or found[nid].cancelled
        assert not found[untouched].cancelled
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in pull.cursor.items())

    # -- reads and writes --------------------------------------------------------------------

    async def test_get_returns_the_appointment_as_it_is_now(
        self, provider: Provider, business: Business, scope: Scope, day: datetime
    ) -> None:
        native_id = await self.book(business, scope, day, 0)
        await business.reschedule(native_id, *self.slot(day, 3))
        found = await provider.get(native_id)
        assert found is not None
        assert (found.native_id, found.start, found.end) == (native_id, *self.slot(day, 3))

    async def test_get_of_a_deleted_appointment_is_none(
        self, provider: Provider, business: Business, scope: Scope, day: datetime
    ) -> None:
        native_id = await self.book(business, scope, day, 0)
        await business.delete(native_id)
        assert await provider.get(native_id) is None

    async def test_move_and_repeating_it_is_a_no_op(
        self, provider: Provider, business: Business, scope: Scope, day: datetime
    ) -> None:
        self.need(provider, Capability.MOVE)
        native_id = await self.book(business, scope, day, 0)
        before = await provider.get(native_id)
        assert before is not None
        target = self.slot(day, 5)
        moved = await provider.move(before, *target)
        assert (moved.start, moved.end) == target
        again = await provider.move(before, *target)  # a replay, with the stale value
        assert (again.start, again.end) == target
        now = await provider.get(native_id)
        assert now is not None
        assert (now.start, now.end) == target

    async def test_move_of_a_deleted_appointment_is_not_found(
        self, provider: Provider, business: Business, scope: Scope, day: datetime
    ) -> None:
        self.need(provider, Capability.MOVE)
        native_id = await self.book(business, scope, day, 0)
        before = await provider.get(native_id)
        assert before is not None
        await business.delete(native_id)
        with pytest.raises(NotFound):
            await provider.move(before, *self.slot(day, 5))

    async def test_cancel_and_cancelling_again_is_a_no_op(
        self, provider: Provider, business: Business, scope: Scope, day: datetime
    ) -> None:
        self.need(provider, Capability.CANCEL)
        native_id = await self.book(business, scope, day, 0)
        before = await provider.get(native_id)
        assert before is not None
        assert (await provider.cancel(before)).cancelled
        assert (await provider.cancel(before)).cancelled
        now = await provider.get(native_id)
        assert now is None or now.cancelled

    async def test_busy_blocks_are_added_removed_and_never_pulled(
        self, provider: Provider, scope: Scope, day: datetime, window: Window
    ) -> None:
        self.need(provider, Capability.BUSY_BLOCKS)
        start, end = self.slot(day, 6)
        block = BusyBlock(calendar="private", uid="contract-busy", start=start, end=end)
        block_id = await provider.add_busy(scope, block)
        assert block_id
        pull = await provider.pull(scope, None, window)
        assert block_id not in appointments(pull)
        assert all(a.start != start for a in appointments(pull).values())
        await provider.remove_busy(scope, block_id)
        await provider.remove_busy(scope, block_id)  # gone already counts as removed

    # -- intake ------------------------------------------------------------------------------

    @pytest.fixture
    def intake_start(self, day: datetime) -> datetime:
        """A free start the provider books intake events at (override when it differs)."""
        return day + timedelta(hours=4)

    async def test_book_from_event_books_once_and_find_booking_finds_it(
        self, provider: Provider, scope: Scope, intake_start: datetime
    ) -> None:
        self.need(provider, Capability.INTAKE)
        ann = Person("Ann de Vries", "ann@example.org")
        request = IntakeRequest(
            reference=intake_reference("contract", "desk", "contract-intake"),
            calendar="desk",
            href="contract-intake.ics",
            uid="contract-intake",
            start=intake_start,
            end=intake_start + timedelta(minutes=30),
            summary="contract intake",
            attendees=(ann,),
            fields={"phone": "0501234567"},
        )
        native_id = await provider.book_from_event(scope, request)
        booked = await provider.get(native_id)
        assert booked is not None
        assert booked.start == intake_start
        assert await provider.find_booking(scope, request) == native_id
        other = replace(request, reference=intake_reference("contract", "desk", "never-booked"))
        assert await provider.find_booking(scope, other) is None
