"""The intake step of a cycle: new events in the intake calendar -> bookings at the provider.

Order, as in the appointment cycle and the busy step, is the crash-safety argument:
1. Intake entries left unfinished by an interrupted run are finished first (``apply.py`` says
   how a ``started`` booking is found instead of made twice).
2. The intake calendar is asked what changed since its stored token: one request when idle.
3. Changed objects are classified (``read.py``) and compared with stored decisions
   (``plan.py``); the actions are journaled, then applied one by one.
4. The token is stored only when every action is done, so a crash or a transient error
   means the same events are read again, and planning them again finds the work done.

The first time a sync runs with an intake calendar, the events already in it are NOT booked:
they were there before anyone asked syncd to book them. That first listing only sets the
token and the moment intake began (``since``). When a token is later rejected and the
calendar must be listed whole, only events stamped (LAST-MODIFIED or DTSTAMP) since then are
considered; booked ones are syncd's own by then and refused ones have their decision stored.

An idle cycle costs this step one ``changes`` request, apart from the appointment engine's
own request for the same calendar: the two keep separate tokens so neither can skip
changes the other has not finished with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo

import structlog

from syncd.calendars.base import Calendar, CalendarChanges
from syncd.errors import BadItem, TokenExpired
from syncd.intake.apply import IntakeApplier, IntakeOutcome
from syncd.intake.journal import Entry, IntakeLedger
from syncd.intake.plan import IntakeAction, describe, plan_intake
from syncd.intake.read import Reading, read_intake
from syncd.model import UTC
from syncd.providers.base import Provider, Scope, Window
from syncd.reconcile.actions import count_kinds
from syncd.reconcile.apply import Renderer
from syncd.state.store import Store

log = structlog.get_logger("syncd.intake")


def intake_scope(sync: str, calendar: str) -> str:
    """The name under which the intake calendar's token (and ``since``) is stored."""
    return f"intake:{sync}:{calendar}"


@dataclass(slots=True)
class IntakeReport:
    """What the intake step saw and did in one cycle."""

    actions: list[IntakeAction] = field(default_factory=list)
    outcome: IntakeOutcome = field(default_factory=IntakeOutcome)
    bad_items: list[tuple[str, str, str]] = field(default_factory=list)
    ok_items: list[str] = field(default_factory=list)
    requests: int = 0

    @property
    def lines(self) -> list[str]:
        return [describe(action) for action in self.actions]

    def counts(self) -> dict[str, int]:
        out = count_kinds(self.actions)
        if self.outcome.booked:
            out["intake-booked"] = len(self.outcome.booked)
        if self.outcome.refused:
            out["intake-refused"] = len(self.outcome.refused)
        return out


@dataclass(slots=True)
class IntakeStep:
    """The intake calendar of one sync and what it takes to turn its events into bookings."""

    store: Store
    sync: str
    provider: Provider
    scope: Scope
    calendar: Calendar
    renderer: Renderer
    zone: tzinfo = UTC

    @property
    def ledger(self) -> IntakeLedger:
        return IntakeLedger(self.store)

    async def resume(self) -> None:
        """Finish what an interrupted run left; re-raises the error that stops it again."""
        await self._apply(self.ledger.pending(self.sync))

    async def run(
        self, window: Window, *, dry_run: bool, run_id: int, report: IntakeReport
    ) -> None:
        """Read, plan, journal and apply; the token moves only after every action is done.

        ``window`` starts now: only events inside it are booked.
        """
        scope = intake_scope(self.sync, self.calendar.name)
        stored = self.store.cursor(scope)
        if stored is None:
            changes = await self.calendar.changes(None)
            report.requests += changes.requests
            if not dry_run:
                log.info("intake begins; events already there are left alone", sync=self.sync)
                self.store.save_cursors(self.sync, {scope: _cursor(changes, window.start)})
            return
        since = datetime.fromisoformat(stored["since"])
        changes = await self._changes(stored.get("token") or None)
        report.requests += changes.requests
        readings = self._read(changes, window, since, report)
        touched = [href for href, *_ in readings] + list(changes.deleted)
        stored_decisions = self.ledger.decisions(self.sync, self.calendar.name, touched)
        report.actions = plan_intake(
            readings, changes.deleted, stored_decisions, self.calendar.name
        )
        for item, fld, message in report.bad_items:
            log.warning(
                "bad intake item skipped", sync=self.sync, item=item, field=fld, error=message
            )
        if dry_run:
            return
        ids = self.ledger.journal(self.sync, run_id, report.actions)
        entries = [Entry(i, a, "pending") for i, a in zip(ids, report.actions, strict=True)]
        report.outcome = await self._apply(entries)
        if changes.token != stored.get("token"):
            self.store.save_cursors(self.sync, {scope: _cursor(changes, since)})
        self.store.record_item_errors(self.sync, report.bad_items)
        if report.ok_items:
            self.store.clear_item_errors(self.sync, report.ok_items)
        self.ledger.prune(self.sync)

    async def _apply(self, entries: list[Entry]) -> IntakeOutcome:
        if not entries:
            return IntakeOutcome()
        applier = IntakeApplier(
            self.ledger, self.sync, self.provider, self.scope, self.calendar, self.renderer
        )
        outcome = await applier.run(entries)
        if outcome.stopped is not None:
            raise outcome.stopped
        return outcome

    async def _changes(self, token: str | None) -> CalendarChanges:
        try:
            return await self.calendar.changes(token)
        except TokenExpired:
            log.info("intake token rejected; listing everything", sync=self.sync)
            return await self.calendar.changes(None)

    def _read(
        self, changes: CalendarChanges, window: Window, since: datetime, report: IntakeReport
    ) -> list[tuple[str, str, Reading, str]]:
        out = []
        for item in changes.changed:
            label = f"{self.calendar.name}:{item.href}"
            try:
                reading, parsed = read_intake(
                    item, self.sync, self.calendar.name, window, self.zone
                )
            except BadItem as err:
                report.bad_items.append((label, err.field, err.message))
                continue
            report.ok_items.append(label)
            if changes.complete and (parsed.last_modified is None or parsed.last_modified < since):
                continue  # a whole listing: only what changed since intake began can be new
            out.append((item.href, item.etag, reading, parsed.hash))
        return out


def _cursor(changes: CalendarChanges, since: datetime) -> dict[str, str]:
    return {"token": changes.token or "", "since": since.astimezone(UTC).isoformat()}
