"""Whole cycles on the memory backends: cost, bad input, expired tokens, failures, refusals."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from syncd.calendars.memory import MemoryCalendar
from syncd.errors import TransientError
from syncd.ical import RenderOptions, parse_event
from syncd.providers.memory import MemoryProvider
from syncd.reconcile.cycle import Sync, provider_scope, run_cycle
from syncd.reconcile.policy import CalendarDelete, Direction, Policy
from syncd.reconcile.render import SyncRenderer
from syncd.state.history import sync_status
from syncd.state.store import Store
from tests.crash import Crash, CrashingCalendar

pytestmark = pytest.mark.anyio
AMS = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 10, 20, 9, 0, tzinfo=AMS)


@pytest.fixture
def provider() -> MemoryProvider:
    p = MemoryProvider("shop", now=lambda: NOW)
    p.seed(20, NOW, rng_seed=3, tz="Europe/Amsterdam")
    return p


@pytest.fixture
def calendar() -> MemoryCalendar:
    return MemoryCalendar("cal")


def make_sync(provider: MemoryProvider, calendar: object, two_way: bool = False) -> Sync:
    policy = Policy(
        sync="s",
        account="shop",
        calendars=("cal",),
        direction=Direction.TWO_WAY if two_way else Direction.ONE_WAY,
        calendar_delete=CalendarDelete.CANCEL if two_way else CalendarDelete.RESTORE,
    )
    return Sync(policy, provider, {"cal": calendar}, SyncRenderer("shop", RenderOptions("s")))  # type: ignore[dict-item]


def events_by_id(calendar: MemoryCalendar) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for href, (_etag, ics) in calendar.items().items():
        nid = parse_event(ics, href).native_id
        assert nid is not None
        out.setdefault(nid, []).append(href)
    return out


async def test_first_sync_then_idle_cycle_costs_one_request_per_side(
    store: Store,
    provider: MemoryProvider,
    calendar: MemoryCalendar,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sync = make_sync(provider, calendar)
    first = await run_cycle(store, sync, now=NOW)
    assert first.plan.counts()["create"] == 20
    assert len(calendar.items()) == 20
    loads: list[object] = []
    real = Store.records
    monkeypatch.setattr(Store, "records", lambda self, *a: loads.append(a) or real(self, *a))
    provider.faults.reset_calls()
    calendar.faults.reset_calls()
    # Our own 20 writes come back once through the sync token: recognised, nothing to do.
    echo = await run_cycle(store, sync, now=NOW)
    assert echo.plan.actions == []
    assert echo.requests == 2
    assert provider.faults.total + calendar.faults.total == 2
    loads.clear()
    idle = await run_cycle(store, sync, now=NOW)
    assert idle.plan.actions == []
    assert idle.requests == 2
    assert loads == [], "an idle cycle loaded per-appointment state"


async def test_dry_run_changes_nothing(
    store: Store, provider: MemoryProvider, calendar: MemoryCalendar
) -> None:
    result = await run_cycle(store, make_sync(provider, calendar), dry_run=True, now=NOW)
    assert result.status == "dry-run"
    assert len(result.lines) == 20  # one create each
    assert calendar.items() == {}
    assert store.cursor(provider_scope("s")) is None
    assert store.link_count("s") == 0
    assert store.pending_count("s") == 0


async def test_bad_provider_item_is_named_and_the_rest_goes_on(
    store: Store, provider: MemoryProvider, calendar: MemoryCalendar
) -> None:
    sync = make_sync(provider, calendar)
    await run_cycle(store, sync, now=NOW)
    provider.malformed("3", "StartTime", "2026-02-31 10:00 is not a date")
    provider.reschedule("4", NOW + timedelta(days=2), NOW + timedelta(days=2, hours=1))
    result = await run_cycle(store, sync, full=True, now=NOW)
    assert ("shop/3", "StartTime", "2026-02-31 10:00 is not a date") in result.plan.bad_items
    assert "3" in events_by_id(calendar), "a bad report must not delete what is stored"
    assert parse_event(calendar.items()[events_by_id(calendar)["4"][0]][1], "x").start == (
        NOW + timedelta(days=2)
    )
    errors = sync_status(store.engine, "s").item_errors
    assert errors == [
        {"item": "shop/3", "field": "StartTime", "message": "2026-02-31 10:00 is not a date"}
    ]
    provider.repair("3")
    await run_cycle(store, sync, now=NOW)
    assert sync_status(store.engine, "s").item_errors == []


async def test_bad_calendar_item_is_skipped_not_deleted(
    store: Store, provider: MemoryProvider, calendar: MemoryCalendar
) -> None:
    sync = make_sync(provider, calendar)
    await run_cycle(store, sync, now=NOW)
    href = events_by_id(calendar)["5"][0]
    calendar.user_put(
        href, "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20261399T\r\nEND:VEVENT\r\n"
    )
    result = await run_cycle(store, sync, full=True, now=NOW)
    assert [b[0] for b in result.plan.bad_items] == [f"cal:{href}"]
    assert not result.plan.refused
    assert store.link_count("s") == 20
    assert len(calendar.items()) == 20


async def test_expired_tokens_on_both_sides_recover_without_duplicates(
    store: Store, provider: MemoryProvider, calendar: MemoryCalendar
) -> None:
    sync = make_sync(provider, calendar)
    await run_cycle(store, sync, now=NOW)
    provider.reschedule("1", NOW + timedelta(days=3), NOW + timedelta(days=3, hours=1))
    provider.expire_cursors()
    calendar.expire_tokens()
    await run_cycle(store, sync, now=NOW)
    assert all(len(v) == 1 for v in events_by_id(calendar).values())
    assert len(calendar.items()) == 20
    start = parse_event(calendar.items()[events_by_id(calendar)["1"][0]][1], "x").start
    assert start == NOW + timedelta(days=3)


async def test_transient_failure_keeps_cursors_and_the_next_cycle_converges(
    store: Store, provider: MemoryProvider, calendar: MemoryCalendar
) -> None:
    sync = make_sync(provider, calendar)
    calendar.fail_next(1, lambda: TransientError("cal", "503"), "create")
    with pytest.raises(TransientError):
        await run_cycle(store, sync, now=NOW)
    assert store.cursor(provider_scope("s")) is None
    status = sync_status(store.engine, "s")
    assert status.last_run is not None
    assert status.last_run.status == "failed"
    assert "503" in status.last_run.error
    assert status.pending > 0
    await run_cycle(store, sync, now=NOW)
    assert len(calendar.items()) == 20
    assert store.pending_count("s") == 0


async def test_crash_after_put_before_commit_does_not_duplicate(
    store: Store, provider: MemoryProvider, calendar: MemoryCalendar, tmp_path: Path
) -> None:
    crashing = CrashingCalendar(calendar, crash_at=4, after=True)
    with pytest.raises(Crash):
        await run_cycle(store, make_sync(provider, crashing), now=NOW)
    assert len(calendar.items()) == 5
    assert store.link_count("s") == 0
    restarted = Store(store.url)
    try:
        await run_cycle(restarted, make_sync(provider, calendar), now=NOW)
        assert len(calendar.items()) == 20
        assert restarted.link_count("s") == 20
        assert all(len(v) == 1 for v in events_by_id(calendar).values())
    finally:
        restarted.close()


async def test_refused_write_back_restores_the_calendar_and_records_a_conflict(
    store: Store, provider: MemoryProvider, calendar: MemoryCalendar
) -> None:
    from tests.test_sync_machine import _retime

    sync = make_sync(provider, calendar, two_way=True)
    await run_cycle(store, sync, now=NOW)
    href = events_by_id(calendar)["2"][0]
    original = parse_event(calendar.items()[href][1], href)
    provider.refuse_writes("2", "outside opening hours")
    later = original.start + timedelta(hours=5)
    calendar.user_put(href, _retime(calendar.items()[href][1], later, later + timedelta(hours=1)))
    await run_cycle(store, sync, now=NOW)
    restored = parse_event(calendar.items()[href][1], href)
    assert restored.start == original.start
    conflicts = sync_status(store.engine, "s").conflicts
    assert "outside opening hours" in conflicts[0]["detail"]
    assert conflicts[0]["resolution"] == "calendar restored"
