"""The mass-delete guard on busy time: a source that comes back empty, or a plan that frees
most of the blocked time at once, changes nothing at the provider until a person allows it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from syncd.busy.guard import too_many_removals
from syncd.busy.plan import AddBusy, BusyAction, RemoveBusy
from syncd.busy.step import busy_scope
from syncd.calendars.memory import MemoryCalendar
from syncd.commands.sync import report
from syncd.model import BusyBlock
from syncd.providers.memory import MemoryProvider
from syncd.reconcile.cycle import Result, Sync, run_cycle
from syncd.reconcile.policy import Policy
from syncd.state.history import sync_status
from syncd.state.store import Store
from tests.test_busy import NOW, at, busy_sync, source_event, spans

pytestmark = pytest.mark.anyio

EVENTS = 8  # one block each, on the days 12..19 of March


@pytest.fixture
def provider() -> MemoryProvider:
    return MemoryProvider("shop", now=lambda: NOW)


@pytest.fixture
def source() -> MemoryCalendar:
    calendar = MemoryCalendar("private")
    for day in range(12, 12 + EVENTS):
        calendar.user_put(f"e{day}.ics", source_event(f"e{day}", at(day, 9), at(day, 10)))
    return calendar


def allowing(sync: Sync) -> Sync:
    return replace(sync, policy=replace(sync.policy, allow_mass_delete=True))


async def test_a_source_listed_empty_frees_nothing_until_allowed(
    store: Store, provider: MemoryProvider, source: MemoryCalendar
) -> None:
    sync = busy_sync(provider, source)
    await run_cycle(store, sync, now=NOW)
    placed = provider.busy_blocks()
    assert len(placed) == EVENTS
    token = store.cursor(busy_scope("s", "private"))

    for day in range(12, 12 + EVENTS):  # the share is re-created empty, say
        source.user_delete(f"e{day}.ics")
    source.expire_tokens()  # so the next read is a complete listing
    for _ in range(2):  # and it stays refused, cycle after cycle
        result = await run_cycle(store, sync, now=NOW)
        assert result.status == "refused"
        assert result.busy.refused == (
            f"busy source private listed no events while {EVENTS} busy blocks are tracked"
        )
        assert result.busy.actions == []
        assert provider.busy_blocks() == placed
        assert store.cursor(busy_scope("s", "private")) == token, "the token must not move"
    last = sync_status(store.engine, "s").last_run
    assert last is not None
    assert (last.status, last.error) == ("refused", f"mass-delete guard: {result.busy.refused}")

    allowed = await run_cycle(store, allowing(sync), now=NOW)
    assert allowed.status == "ok"
    assert allowed.busy.counts() == {"busy-remove": EVENTS}
    assert provider.busy_blocks() == {}


async def test_removing_most_blocks_is_refused_but_moving_them_is_not(
    store: Store, provider: MemoryProvider, source: MemoryCalendar
) -> None:
    sync = busy_sync(provider, source)
    await run_cycle(store, sync, now=NOW)

    for day in range(12, 18):  # six of eight events an hour later: remove and add, not free
        source.user_put(f"e{day}.ics", source_event(f"e{day}", at(day, 10), at(day, 11)))
    moved = await run_cycle(store, sync, now=NOW)
    assert (moved.status, moved.busy.refused) == ("ok", "")
    assert moved.busy.counts() == {"busy-remove": 6, "busy-add": 6}

    for day in range(12, 17):  # five of eight deleted: more than half, and the minimum of five
        source.user_delete(f"e{day}.ics")
    refused = await run_cycle(store, sync, now=NOW)
    assert refused.status == "refused"
    assert refused.busy.refused == "the busy plan would remove 5 of 8 busy blocks (limit 50%)"
    assert len(provider.busy_blocks()) == EVENTS

    dry = await run_cycle(store, allowing(sync), dry_run=True, now=NOW)
    assert (dry.status, dry.busy.counts()) == ("dry-run", {"busy-remove": 5})
    assert len(provider.busy_blocks()) == EVENTS
    done = await run_cycle(store, allowing(sync), now=NOW)
    assert done.status == "ok"
    assert spans(provider.busy_blocks()) == [
        ("03-17 10:00", "11:00"),
        ("03-18 09:00", "10:00"),
        ("03-19 09:00", "10:00"),
    ]


def test_forgetting_past_blocks_and_moves_do_not_count() -> None:
    policy = Policy(sync="s", account="shop", calendars=("cal",))
    block = BusyBlock("private", "e", at(12, 9), at(12, 10))
    moves: list[BusyAction] = [RemoveBusy(block.key, "1"), AddBusy(block, "e.ics")] * 5
    forgets: list[BusyAction] = [RemoveBusy(f"k{i}", str(i), forget=True) for i in range(9)]
    assert too_many_removals(policy, moves + forgets, 10) == ""
    frees = [RemoveBusy(f"k{i}", str(i)) for i in range(5)]
    assert too_many_removals(policy, frees, 10) == ""  # half is the limit, not over it
    assert too_many_removals(policy, frees, 9) != ""
    assert too_many_removals(policy, frees[:4], 4) == ""  # below the minimum of five
    assert too_many_removals(replace(policy, delete_guard_min=4), frees[:4], 4) != ""


def test_sync_command_says_the_appointments_went_ahead_and_the_busy_time_did_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = Result("salon", "refused", error="mass-delete guard: 5 of 8")
    result.busy.refused = "5 of 8"
    report(result, dry_run=False)
    assert capsys.readouterr().out.splitlines() == [
        "salon: 0 created, 0 updated, 0 deleted, 0 written back, 0 conflicts (0 requests)",
        "salon: busy time REFUSED, no busy block changed: mass-delete guard: 5 of 8",
        "  if this is intended: syncd sync --allow-mass-delete salon",
    ]
