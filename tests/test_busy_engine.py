"""Whole cycles with busy sources on memory backends: blocks follow the source events, an idle
cycle costs one request per source, and crashes, failures and bad items lose nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from syncd.busy.step import busy_scope
from syncd.calendars.memory import MemoryCalendar
from syncd.config import parse_config
from syncd.errors import TransientError
from syncd.model import BusyBlock
from syncd.providers.base import Capability, Scope
from syncd.providers.memory import MemoryProvider
from syncd.reconcile.cycle import Sync, run_cycle
from syncd.runtime import Runtime
from syncd.state.busy import BusyLinks
from syncd.state.history import sync_status
from syncd.state.store import Store
from tests.crash import Crash
from tests.test_busy import NOW, OWNER, at, busy_sync, override, source_event, spans

pytestmark = pytest.mark.anyio


class FindingProvider(MemoryProvider):
    """A memory provider that can also look its blocks up (``syncd.busy.apply.FindsBusy``)."""

    async def find_busy(self, scope: Scope, block: BusyBlock) -> Sequence[str]:
        async with self.faults.request("find_busy"):
            return [i for i, found in self.busy_blocks(scope).items() if found == block]


@pytest.fixture
def provider() -> MemoryProvider:
    return MemoryProvider("shop", now=lambda: NOW)


@pytest.fixture
def source() -> MemoryCalendar:
    """Anna's private calendar: a weekly gym hour with one moved instance, and a dentist."""
    calendar = MemoryCalendar("private")
    series = source_event(
        "gym",
        at(12, 9),
        at(12, 10),
        rrule="FREQ=WEEKLY;COUNT=3",
        overrides=[override("gym", at(19, 9), at(20, 15))],
    )
    calendar.user_put("gym.ics", series)
    calendar.user_put("dentist.ics", source_event("dentist", at(13, 11), at(13, 12)))
    return calendar


FIRST = [
    ("03-12 09:00", "10:00"),
    ("03-13 11:00", "12:00"),
    ("03-20 15:00", "16:00"),
    ("03-26 09:00", "10:00"),
]


async def test_blocks_follow_the_source_and_an_idle_cycle_is_one_request_per_source(
    store: Store, provider: MemoryProvider, source: MemoryCalendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync = busy_sync(provider, source)
    first = await run_cycle(store, sync, now=NOW)
    assert spans(provider.busy_blocks()) == FIRST
    assert first.counts()["busy-add"] == 4
    assert BusyLinks(store).count("s") == 4

    reads: list[object] = []
    real = BusyLinks.links
    monkeypatch.setattr(
        BusyLinks, "links", lambda self, *a, **k: reads.append(a) or real(self, *a, **k)
    )
    provider.faults.reset_calls()
    idle = await run_cycle(store, sync, now=NOW)
    # one pull, one changes() for the synced calendar, one for the busy source
    assert (idle.requests, idle.lines, reads) == (3, [], [])
    assert provider.calls["add_busy"] + provider.calls["remove_busy"] == 0

    kept = {i for i, b in provider.busy_blocks().items() if b.uid == "gym"}
    source.user_put("dentist.ics", source_event("dentist", at(13, 14), at(13, 15)))
    await run_cycle(store, sync, now=NOW)
    assert ("03-13 14:00", "15:00") in spans(provider.busy_blocks())
    assert ("03-13 11:00", "12:00") not in spans(provider.busy_blocks())
    assert kept <= provider.busy_blocks().keys(), "an unchanged event's blocks stay untouched"

    source.user_delete("gym.ics")
    source.user_put(
        "dentist.ics", source_event("dentist", at(13, 14), at(13, 15), transparent=True)
    )
    await run_cycle(store, sync, now=NOW)
    assert provider.busy_blocks() == {}
    assert BusyLinks(store).count("s") == 0


async def test_a_full_cycle_follows_the_moving_window_and_leaves_the_past_alone(
    store: Store, provider: MemoryProvider
) -> None:
    source = MemoryCalendar("private")
    source.user_put("run.ics", source_event("run", at(11, 7), at(11, 8), rrule="FREQ=WEEKLY"))
    sync = busy_sync(provider, source)
    sync = Sync(
        **{**{f: getattr(sync, f) for f in sync.__slots__}, "window_future": timedelta(days=14)}
    )  # type: ignore[arg-type]
    await run_cycle(store, sync, now=NOW)
    assert spans(provider.busy_blocks()) == [("03-11 07:00", "08:00"), ("03-18 07:00", "08:00")]
    later = NOW + timedelta(days=7)
    idle = await run_cycle(store, sync, now=later)
    assert idle.busy.actions == [], "no source changed: an incremental cycle does nothing"
    full = await run_cycle(store, sync, full=True, now=later)
    assert full.busy.counts() == {"busy-add": 1, "busy-remove": 1}
    assert full.busy.lines[0].startswith("forget past busy block private/run/")
    # the past block is forgotten, not removed: the provider's history is left as it was
    assert spans(provider.busy_blocks()) == [
        ("03-11 07:00", "08:00"),
        ("03-18 07:00", "08:00"),
        ("03-25 07:00", "08:00"),
    ]
    assert BusyLinks(store).count("s") == 2


@pytest.mark.parametrize("finds", [True, False])
async def test_crash_between_add_and_record_leaves_one_block(
    store: Store, source: MemoryCalendar, finds: bool
) -> None:
    provider = FindingProvider("shop") if finds else MemoryProvider("shop")
    # With a provider that can look blocks up, die after the add reached it; without one,
    # only a crash before the add can be replayed exactly (see syncd.busy.apply).
    provider.fail_next(1, Crash, "add_busy", after=finds)
    with pytest.raises(Crash):
        await run_cycle(store, busy_sync(provider, source), now=NOW)
    assert len(provider.busy_blocks()) == (1 if finds else 0)
    restarted = Store(store.url)
    try:
        await run_cycle(restarted, busy_sync(provider, source), now=NOW)
        assert spans(provider.busy_blocks()) == FIRST
        assert BusyLinks(restarted).count("s") == 4
        assert provider.calls["find_busy"] == (1 if finds else 0)
    finally:
        restarted.close()


async def test_an_interrupted_add_without_lookup_is_repeated_with_a_warning(
    store: Store, provider: MemoryProvider, source: MemoryCalendar
) -> None:
    provider.fail_next(1, Crash, "add_busy", after=True)
    with pytest.raises(Crash):
        await run_cycle(store, busy_sync(provider, source), now=NOW)
    with capture_logs() as logs:
        await run_cycle(store, busy_sync(provider, source), now=NOW)
    warned = [e for e in logs if e["log_level"] == "warning"]
    assert [e["block"] for e in warned] == ["private/dentist/"]
    assert BusyLinks(store).count("s") == 4


async def test_a_transient_failure_keeps_the_token_and_the_next_cycle_converges(
    store: Store, provider: MemoryProvider, source: MemoryCalendar
) -> None:
    sync = busy_sync(provider, source)
    provider.fail_next(1, lambda: TransientError("shop", "503"), "add_busy")
    with pytest.raises(TransientError):
        await run_cycle(store, sync, now=NOW)
    assert store.cursor(busy_scope("s", "private")) is None
    await run_cycle(store, sync, now=NOW)
    assert spans(provider.busy_blocks()) == FIRST
    assert store.cursor(busy_scope("s", "private")) is not None


async def test_an_unreadable_source_event_is_named_and_keeps_its_blocks(
    store: Store, provider: MemoryProvider, source: MemoryCalendar
) -> None:
    sync = busy_sync(provider, source)
    await run_cycle(store, sync, now=NOW)
    source.user_put("dentist.ics", "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:2026\r\n")
    for full in (False, True):
        result = await run_cycle(store, sync, full=full, now=NOW)
        assert [bad[0] for bad in result.busy.bad_items] == ["private:dentist.ics"]
        assert spans(provider.busy_blocks()) == FIRST
    assert [e["item"] for e in sync_status(store.engine, "s").item_errors] == [
        "private:dentist.ics"
    ]


async def test_a_rejected_token_relists_without_duplicates(
    store: Store, provider: MemoryProvider, source: MemoryCalendar
) -> None:
    sync = busy_sync(provider, source)
    await run_cycle(store, sync, now=NOW)
    source.expire_tokens()
    source.user_delete("dentist.ics")
    result = await run_cycle(store, sync, now=NOW)
    assert result.busy.counts() == {"busy-remove": 1}
    assert spans(provider.busy_blocks()) == [s for s in FIRST if s[0] != "03-13 11:00"]


async def test_dry_run_lists_busy_actions_and_changes_nothing(
    store: Store, provider: MemoryProvider, source: MemoryCalendar
) -> None:
    result = await run_cycle(store, busy_sync(provider, source), dry_run=True, now=NOW)
    assert result.status == "dry-run"
    assert sorted(result.lines)[0] == "add busy block private/dentist/ at 2026-03-13T10:00:00+00:00"
    assert provider.busy_blocks() == {}
    assert store.cursor(busy_scope("s", "private")) is None


CONFIG = """
[providers.shop]
kind = "memory"
[calendars.cal]
kind = "memory"
[calendars.private]
kind = "memory"
[[syncs]]
name = "salon"
provider = "shop"
calendars = ["cal"]
busy_from = ["private"]
busy_all_day = "skip"
busy_owner = ["MAILTO:Anna@Example.org"]
"""


async def test_runtime_builds_busy_sources_only_for_providers_that_can_block_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = Runtime.build(parse_config(CONFIG))
    (sync,) = runtime.syncs
    assert list(sync.busy_from) == ["private"]
    assert (sync.busy.all_day, sync.busy.owners) == ("skip", frozenset({OWNER}))
    await runtime.aclose()

    without = MemoryProvider.capabilities - {Capability.BUSY_BLOCKS}
    monkeypatch.setattr(MemoryProvider, "capabilities", without)
    with capture_logs() as logs:
        runtime = Runtime.build(parse_config(CONFIG))
    assert runtime.syncs[0].busy_from == {}
    assert [(e["event"], e["sync"]) for e in logs] == [
        ("busy_from ignored: the provider cannot block time", "salon")
    ]
    with pytest.raises(ValueError, match="sync s: busy_from needs a provider with busy blocks"):
        busy_sync(MemoryProvider("shop"), MemoryCalendar("private"))


async def test_without_busy_owner_the_caldav_login_address_is_the_owner() -> None:
    text = CONFIG.replace('busy_owner = ["MAILTO:Anna@Example.org"]\n', "").replace(
        '[calendars.private]\nkind = "memory"',
        '[calendars.private]\nkind = "caldav"\nurl = "https://dav.example.org/anna/private/"\n'
        'username = "anna@example.org"',
    )
    runtime = Runtime.build(parse_config(text))
    try:
        assert runtime.syncs[0].busy.owners == frozenset({OWNER})
    finally:
        await runtime.aclose()
