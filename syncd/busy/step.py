"""The busy step of a cycle: busy source calendars -> busy blocks at the provider.

Order, as in the appointment cycle, is the crash-safety argument:
1. Busy actions left pending by an interrupted run are applied first (``BusyApplier``).
2. Each source calendar is asked what changed since its stored token: one request when
   nothing did. Only changed objects are expanded again, and only their links are read.
   A full cycle (the window moved) lists every object with an occurrence in the window
   instead (``items_between``, or a token-less listing), and compares all links.
3. The differences become actions (``plan_busy``), journaled, then applied one by one.
4. Source tokens are stored only when every action is done, so a crash or a transient error
   means the same changes are read again, and planning them again finds the work done.

An object that cannot be read is reported (named by calendar and href) and its blocks are
left as they are: a broken event must not free the time it held. A plan that would free much
of the blocked time at once is refused whole, tokens kept, until a person allows it
(``syncd.busy.guard``).

A server without sync-collection answers every ``changes`` call with a complete listing
(``syncd.calendars.caldav_sync``); such a source is then re-read and re-planned in full
every cycle: correct, at the cost of its size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog

from syncd.busy.apply import BusyApplier, BusyOutcome
from syncd.busy.expand import busy_blocks
from syncd.busy.guard import emptied_source, too_many_removals
from syncd.busy.options import BusyOptions
from syncd.busy.plan import BusyAction, BusyLink, describe, plan_busy
from syncd.calendars.base import Calendar, CalendarCapability, CalendarChanges
from syncd.errors import BadItem, TokenExpired
from syncd.model import BusyBlock, CalendarItem
from syncd.providers.base import Provider, Scope, Window
from syncd.reconcile.actions import count_kinds
from syncd.reconcile.policy import Policy
from syncd.state.busy import BusyLinks
from syncd.state.store import Store

log = structlog.get_logger("syncd.busy")


def busy_scope(sync: str, calendar: str) -> str:
    """The name under which a busy source's sync token is stored."""
    return f"busy:{sync}:{calendar}"


@dataclass(slots=True)
class BusyReport:
    """What the busy step saw and did in one cycle."""

    actions: list[BusyAction] = field(default_factory=list)
    outcome: BusyOutcome = field(default_factory=BusyOutcome)
    bad_items: list[tuple[str, str, str]] = field(default_factory=list)
    ok_items: list[str] = field(default_factory=list)
    requests: int = 0
    refused: str = ""  # why the mass-delete guard stopped the busy plan; "" when it did not

    @property
    def lines(self) -> list[str]:
        return [describe(action) for action in self.actions]

    def counts(self) -> dict[str, int]:
        return count_kinds(self.actions)


@dataclass(frozen=True, slots=True)
class _Read:
    """One source's objects to (re)expand, the hrefs gone, and whether that is all of them."""

    items: list[CalendarItem]
    deleted: list[str]
    complete: bool
    token: str | None
    previous: str | None  # the stored token: the new one is saved only when it differs


@dataclass(slots=True)
class BusyStep:
    """The busy sources of one sync and what it takes to turn them into blocks."""

    store: Store
    sync: str
    provider: Provider
    scope: Scope
    sources: Mapping[str, Calendar]
    options: BusyOptions
    policy: Policy  # its mass-delete guard settings apply to busy blocks too

    async def resume(self) -> None:
        """Finish what an interrupted run left; re-raises the error that stops it again."""
        leftover = BusyLinks(self.store).pending(self.sync)
        if leftover:
            log.info("resuming busy actions", sync=self.sync, count=len(leftover))
            stopped = (await self._applier().run(leftover)).stopped
            if stopped is not None:
                raise stopped

    async def run(
        self, window: Window, *, full: bool, dry_run: bool, run_id: int, report: BusyReport
    ) -> None:
        """Read, plan, journal and apply; tokens move only after every action is done."""
        links = BusyLinks(self.store)
        tokens: dict[str, Mapping[str, str] | None] = {}
        refusals: list[str] = []
        for name, calendar in self.sources.items():
            read = await self._read(name, calendar, window, full, report)
            if read.token != read.previous:
                tokens[busy_scope(self.sync, name)] = {"token": read.token} if read.token else None
            report.actions += self._plan(links, name, read, window, report, refusals)
        for item, fld, message in report.bad_items:
            log.warning(
                "bad busy item skipped", sync=self.sync, item=item, field=fld, error=message
            )
        refused = "; ".join(r for r in refusals if r)
        if not refused and report.actions:
            refused = too_many_removals(self.policy, report.actions, links.count(self.sync))
        if refused and not self.policy.allow_mass_delete:
            # Nothing is journaled and no token moves: the next cycle reads the same changes
            # and asks again, until the source is back or a person allows the removals.
            report.refused, report.actions = refused, []
            log.warning("busy plan refused", sync=self.sync, reason=refused)
            return
        if dry_run:
            return
        ids = links.journal(self.sync, run_id, report.actions)
        entries = [(i, action, False) for i, action in zip(ids, report.actions, strict=True)]
        report.outcome = await self._applier().run(entries)
        if report.outcome.stopped is not None:
            raise report.outcome.stopped
        if tokens:
            self.store.save_cursors(self.sync, tokens)
        self.store.record_item_errors(self.sync, report.bad_items)
        if report.ok_items:
            self.store.clear_item_errors(self.sync, report.ok_items)
        links.prune(self.sync)

    def _applier(self) -> BusyApplier:
        return BusyApplier(self.store, self.sync, self.provider, self.scope)

    async def _read(
        self, name: str, calendar: Calendar, window: Window, full: bool, report: BusyReport
    ) -> _Read:
        stored = self.store.cursor(busy_scope(self.sync, name))
        token = (stored or {}).get("token")
        changes = await _changes(calendar, token, self.sync, name)
        report.requests += changes.requests
        if changes.complete or not full:
            found = list(changes.changed)
            return _Read(found, list(changes.deleted), changes.complete, changes.token, token)
        # A full cycle: the window moved, so occurrences may have entered or left it although
        # no object changed. Read everything with an occurrence in the window; the token from
        # above still stands, the changes it covers are included in this listing.
        if CalendarCapability.SEARCH in calendar.capabilities:
            items = await calendar.items_between(window)
            report.requests += 1
            return _Read(items, [], True, changes.token, token)
        listing = await calendar.changes(None)
        report.requests += listing.requests
        return _Read(list(listing.changed), [], True, listing.token, token)

    def _plan(
        self,
        links: BusyLinks,
        name: str,
        read: _Read,
        window: Window,
        report: BusyReport,
        refusals: list[str],
    ) -> list[BusyAction]:
        if not (read.items or read.deleted or read.complete):
            return []  # idle: no state read at all
        wanted: dict[str, tuple[str, BusyBlock]] = {}
        touched = set(read.deleted)
        unreadable: set[str] = set()
        for item in read.items:
            label = f"{name}:{item.href}"
            try:
                blocks = busy_blocks(item, name, window, self.options)
            except BadItem as err:
                report.bad_items.append((label, err.field, err.message))
                unreadable.add(item.href)
                continue
            report.ok_items.append(label)
            touched.add(item.href)
            wanted.update((block.key, (item.href, block)) for block in blocks)
        stored: dict[str, BusyLink]
        if read.complete:
            stored = links.links(self.sync, name, everything=True)
            gone = [k for k, link in stored.items() if link.href not in unreadable]
            if not read.items:
                ahead = sum(1 for link in stored.values() if link.end > window.start)
                refusals.append(emptied_source(name, ahead))
        else:
            stored = links.links(self.sync, name, hrefs=touched, keys=wanted)
            gone = [k for k, link in stored.items() if link.href in touched]
        return plan_busy(stored, wanted, gone, window)


async def _changes(calendar: Calendar, token: str | None, sync: str, name: str) -> CalendarChanges:
    try:
        return await calendar.changes(token)
    except TokenExpired:
        log.info("busy source token rejected; listing everything", sync=sync, calendar=name)
        return await calendar.changes(None)
