"""One sync cycle: resume, pull both sides, plan, journal, apply, then move the cursors.

The order is the crash-safety argument:
1. Pending journal entries from an interrupted run are applied first.
2. Changes are pulled from the provider and every calendar, each from its stored cursor.
3. ``plan()`` decides; a refused plan (mass-delete guard) stops here with nothing changed.
4. The plan is journaled, then applied; each action's effect is committed with its mark.
5. Only when every action is done are the new cursors stored. A crash or a transient error
   before that means the same changes are pulled again, and replaying them is a no-op
   because each action is idempotent and echoes are recognised by content hash.

An idle cycle costs one pull per provider scope and one ``changes`` call per calendar, and
touches no per-appointment state: no records are loaded unless something changed.

A sync with busy sources then runs the busy step (``syncd.busy.step``), with the same order
and one ``changes`` call per source calendar when idle. It comes after the appointments are
committed, so a busy source that is down never holds bookings back.

A sync with an intake calendar last runs the intake step (``syncd.intake.step``): new events
a person put there become bookings, journaled the same way, at one ``changes`` call when idle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

import structlog

from syncd.busy.options import BusyOptions
from syncd.busy.step import BusyReport, BusyStep
from syncd.calendars.base import Calendar, CalendarCapability, CalendarChanges
from syncd.errors import TokenExpired
from syncd.intake.step import IntakeReport, IntakeStep
from syncd.providers.base import Capability, Provider, Pull, Scope, Window
from syncd.reconcile.actions import Plan, describe
from syncd.reconcile.apply import Applier, Outcome, Renderer
from syncd.reconcile.collector import quiet_collector
from syncd.reconcile.plan import plan
from syncd.reconcile.policy import Policy
from syncd.reconcile.state import CalendarView, ProviderView
from syncd.reconcile.views import BadItems, calendar_view, provider_view
from syncd.state import history
from syncd.state.store import Store, utcnow

log = structlog.get_logger("syncd.cycle")


@dataclass(frozen=True, slots=True)
class Sync:
    """Everything one cycle needs: the policy, the backends and how to render.

    ``busy_from`` are the calendars whose events block time at the provider, read as
    ``busy`` says; they need a provider with ``Capability.BUSY_BLOCKS``. ``intake`` names
    one of ``calendars`` whose new events become bookings (``Capability.INTAKE``).
    """

    policy: Policy
    provider: Provider
    calendars: Mapping[str, Calendar]
    renderer: Renderer
    scope: Scope = field(default_factory=dict)
    window_past: timedelta = timedelta(days=30)
    window_future: timedelta = timedelta(days=365)
    busy_from: Mapping[str, Calendar] = field(default_factory=dict)
    busy: BusyOptions = field(default_factory=BusyOptions)
    intake: str = ""

    def __post_init__(self) -> None:
        if self.intake and self.intake not in self.calendars:
            raise ValueError(f"sync {self.name}: intake calendar {self.intake} is not synced")
        if self.intake and Capability.INTAKE not in self.provider.capabilities:
            raise ValueError(f"sync {self.name}: {self.provider.name} cannot book from events")
        if self.busy_from and Capability.BUSY_BLOCKS not in self.provider.capabilities:
            raise ValueError(
                f"sync {self.name}: busy_from needs a provider with busy blocks, "
                f"and {self.provider.name} has none"
            )

    @property
    def name(self) -> str:
        return self.policy.sync


@dataclass(slots=True)
class Result:
    sync: str
    status: str  # ok | failed | refused | dry-run
    plan: Plan = field(default_factory=Plan)
    outcome: Outcome = field(default_factory=Outcome)
    error: str = ""
    requests: int = 0
    busy: BusyReport = field(default_factory=BusyReport)
    intake: IntakeReport = field(default_factory=IntakeReport)

    @property
    def lines(self) -> list[str]:
        actions = [describe(action) for action in self.plan.actions]
        return actions + self.busy.lines + self.intake.lines

    def counts(self) -> dict[str, int]:
        return self.plan.counts() | self.busy.counts() | self.intake.counts()


def provider_scope(sync: str) -> str:
    return f"provider:{sync}"


def calendar_scope(sync: str, calendar: str) -> str:
    return f"calendar:{sync}:{calendar}"


async def run_cycle(
    store: Store,
    sync: Sync,
    *,
    full: bool = False,
    dry_run: bool = False,
    now: datetime | None = None,
    batch: int = 500,
) -> Result:
    """Run one cycle of ``sync``. Backend errors are recorded against the run and re-raised
    so the scheduler can back off; a refused plan is not an error, it is reported."""
    started = utcnow()
    run_id = history.start_run(store.engine, sync.name, started)
    result = Result(sync.name, "ok")
    try:
        with quiet_collector():
            await _cycle(store, sync, result, run_id, full, dry_run, now, batch)
    except Exception as err:
        result.status = "failed"
        result.error = f"{type(err).__name__}: {err}"
        history.finish_run(store.engine, run_id, utcnow(), "failed", result.counts(), result.error)
        raise
    history.finish_run(store.engine, run_id, utcnow(), result.status, result.counts(), result.error)
    return result


async def _cycle(
    store: Store,
    sync: Sync,
    result: Result,
    run_id: int,
    full: bool,
    dry_run: bool,
    now: datetime | None,
    batch: int,
) -> None:
    applier = Applier(store, sync.name, sync.provider, sync.calendars, sync.renderer, batch)
    if not dry_run:
        leftover = store.pending(sync.name)
        if leftover:
            log.info("resuming unfinished actions", sync=sync.name, count=len(leftover))
            resumed = await applier.run(leftover)
            if resumed.stopped is not None:
                raise resumed.stopped
    busy = _busy_step(store, sync)
    if busy is not None and not dry_run:
        await busy.resume()
    intake = _intake_step(store, sync)
    if intake is not None and not dry_run:
        await intake.resume()
    moment = now or datetime.now().astimezone()
    window = Window(moment - sync.window_past, moment + sync.window_future)
    problems = BadItems()
    cursors: dict[str, Mapping[str, str] | None] = {}

    pull = await _pull(store, sync, window, full)
    cursors[provider_scope(sync.name)] = pull.cursor
    result.requests += pull.requests
    pview = provider_view(sync.policy.account, pull, problems)
    cviews: dict[str, CalendarView] = {}
    for name, calendar in sync.calendars.items():
        changes = await _changes(store, sync, name, calendar, full)
        result.requests += changes.requests
        cursors[calendar_scope(sync.name, name)] = (
            {"token": changes.token} if changes.token else None
        )

        cviews[name] = calendar_view(
            sync.name,
            name,
            changes,
            partial(store.native_ids_by_href, sync.name, name),
            problems,
            etags=partial(store.etags_by_href, sync.name, name),
        )

    result.plan = _plan(store, sync, pview, cviews)
    result.plan.bad_items = problems.bad
    for item, fld, message in problems.bad:
        log.warning("bad item skipped", sync=sync.name, item=item, field=fld, error=message)
    if result.plan.refused:
        result.status, result.error = "refused", f"mass-delete guard: {result.plan.refused}"
        log.warning("plan refused", sync=sync.name, reason=result.plan.refused)
    elif dry_run:
        result.status = "dry-run"
    else:
        entries = list(
            zip(
                store.journal(sync.name, run_id, result.plan.actions),
                result.plan.actions,
                strict=True,
            )
        )
        result.outcome = await applier.run(entries)
        if result.outcome.stopped is not None:
            raise result.outcome.stopped
        if result.outcome.superseded:
            # A person changed an event as syncd wrote the provider's change to it. Keep the
            # provider's cursor: the next pull brings that change again, beside the person's.
            cursors.pop(provider_scope(sync.name))
        store.save_cursors(sync.name, cursors)
        store.record_item_errors(sync.name, problems.bad)
        if problems.ok:
            store.clear_item_errors(sync.name, problems.ok)
        store.prune_journal(sync.name)
    if busy is not None:
        # Busy time is for bookings still to come: the window starts now, not in the past.
        ahead = Window(moment, window.end)
        await busy.run(ahead, full=full, dry_run=dry_run, run_id=run_id, report=result.busy)
        result.requests += result.busy.requests
        if result.busy.refused:
            reason = f"mass-delete guard: {result.busy.refused}"
            refused_too = result.status == "refused"
            result.status = "refused"
            result.error = f"{result.error}; {reason}" if refused_too else reason
    if intake is not None:
        ahead = Window(moment, window.end)
        await intake.run(ahead, dry_run=dry_run, run_id=run_id, report=result.intake)
        result.requests += result.intake.requests


def _intake_step(store: Store, sync: Sync) -> IntakeStep | None:
    if not sync.intake:
        return None
    calendar = sync.calendars[sync.intake]
    return IntakeStep(
        store, sync.name, sync.provider, sync.scope, calendar, sync.renderer, sync.busy.zone
    )


def _busy_step(store: Store, sync: Sync) -> BusyStep | None:
    if not sync.busy_from:
        return None
    return BusyStep(
        store, sync.name, sync.provider, sync.scope, sync.busy_from, sync.busy, sync.policy
    )


def _plan(
    store: Store, sync: Sync, pview: ProviderView, cviews: Mapping[str, CalendarView]
) -> Plan:
    named = set(pview.items)
    for view in cviews.values():
        named.update(view.events)
    everything = pview.complete or any(v.complete for v in cviews.values())
    if not named and not everything:
        return Plan()  # idle: no state read at all
    records = store.records(sync.name, None if everything else named)
    total = store.link_count(sync.name)
    return plan(sync.policy, records, pview, cviews, sync.renderer.hash, total)


async def _pull(store: Store, sync: Sync, window: Window, full: bool) -> Pull:
    provider = sync.provider
    if Capability.TRACKED in provider.capabilities:
        # Nothing to list: the provider re-reads what this sync holds, full cycle or not.
        known = {nid: rec.appointment for nid, rec in store.records(sync.name).items()}
        return await provider.reread(sync.scope, known, window)
    if full and Capability.SCAN in provider.capabilities:
        scanned = await provider.scan(sync.scope, window)
        cursor = store.cursor(provider_scope(sync.name))
        # A scan finds deletes; it does not replace the incremental cursor unless none exists.
        if cursor is not None:
            return Pull(scanned.items, cursor, scanned.complete, scanned.window, scanned.requests)
        return scanned
    cursor = None if full else store.cursor(provider_scope(sync.name))
    try:
        return await provider.pull(sync.scope, cursor, window)
    except TokenExpired:
        log.info("provider cursor rejected; listing the window", sync=sync.name)
        return await provider.pull(sync.scope, None, window)


async def _changes(
    store: Store, sync: Sync, name: str, calendar: Calendar, full: bool
) -> CalendarChanges:
    stored = None if full else store.cursor(calendar_scope(sync.name, name))
    token = stored.get("token") if stored else None
    known = None
    if CalendarCapability.SYNC_TOKEN not in calendar.capabilities:
        known = store.known_etags(sync.name, name)
    try:
        return await calendar.changes(token, known)
    except TokenExpired:
        log.info("calendar sync token rejected; listing everything", sync=sync.name, calendar=name)
        return await calendar.changes(None, known)
