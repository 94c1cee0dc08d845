"""Carrying out a journaled plan: the I/O, and the state each action leaves behind.

Every action is idempotent, so an entry left pending by a crash is simply run again:
    create  uses a UID derived from the appointment; ``AlreadyExists`` adopts the item found
    update  sends If-Match; a 412 re-reads: our content already there is adopted, someone
            else's change is left for the next cycle (its pull will show it) -- never overwritten.
            The appointment is then not recorded as agreed -- nor by its writes to the sync's
            other calendars, earlier or later in the run (``Change.stale``) -- and
            ``Outcome.superseded`` asks the cycle to keep the provider's cursor: the next cycle
            sees both sides changed and the sync's conflict policy decides, instead of taking
            the person's edit as the only one
    delete  sends If-Match; gone counts as done; a 412 re-reads and deletes the newer version
    write-back re-reads at the provider first (``Provider.move``/``cancel`` promise that)
Finished actions are committed in batches, each action's state change together with its
journal mark in one transaction. A transient failure stops the plan: what is done stays done,
the rest stays pending and is resumed first next cycle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from syncd.calendars.base import Calendar
from syncd.errors import (
    AlreadyExists,
    AuthError,
    NotFound,
    PreconditionFailed,
    Refused,
    TransientError,
)
from syncd.model import Appointment, ItemRef
from syncd.providers.base import Provider
from syncd.reconcile.actions import (
    Action,
    Adopt,
    DeleteEvent,
    Forget,
    NoteConflict,
    PutEvent,
    Remember,
    Target,
    Unlink,
    WriteBack,
)
from syncd.reconcile.state import Link
from syncd.state.changes import Change
from syncd.state.store import Store

log = structlog.get_logger("syncd.apply")


class Rendered(Protocol):
    @property
    def uid(self) -> str: ...

    @property
    def ics(self) -> str: ...

    @property
    def hash(self) -> str: ...


class Renderer(Protocol):
    """How a sync turns an appointment into event text (``syncd.reconcile.render``)."""

    def uid(self, native_id: str) -> str: ...

    def render(self, appointment: Appointment, calendar: str, sequence: int) -> Rendered: ...

    def hash(self, appointment: Appointment, calendar: str) -> str: ...

    def hash_text(self, ics: str) -> str: ...


@dataclass(slots=True)
class Outcome:
    """What applying a plan did. ``stopped`` holds the transient error that ended it early."""

    applied: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (native id, message)
    stopped: Exception | None = None
    superseded: int = 0  # writes overtaken by someone else's change (a 412 on update)


class _Superseded(Exception):
    """Someone changed the item after we read it; the next cycle re-plans with their change."""


@dataclass(slots=True)
class Applier:
    store: Store
    sync: str
    provider: Provider
    calendars: Mapping[str, Calendar]
    renderer: Renderer
    batch: int = 500
    superseded: int = field(default=0, init=False)
    overtaken: set[str] = field(default_factory=set, init=False)  # native ids, this cycle

    async def run(self, entries: Sequence[tuple[int, Action]]) -> Outcome:
        """Apply ``entries`` in order. Only finished actions are committed: if the process
        dies here, whatever was not committed is still pending and runs again on restart."""
        outcome = Outcome()
        superseded = self.superseded
        done: list[tuple[int, Change]] = []
        for entry_id, action in entries:
            try:
                change = await self.apply_one(action)
            except (TransientError, AuthError) as err:
                outcome.stopped = err
                break
            except Exception as err:  # one bad item must not stop the rest of the sync
                message = f"{type(err).__name__}: {err}"
                log.warning(
                    "action failed",
                    sync=self.sync,
                    action=action.kind,
                    appointment=action.native_id,
                    error=message,
                )
                self.store.commit(self.sync, done)
                done = []
                # The appointment's stored base is marked stale, so the next full scan (or its
                # next change) plans it again instead of taking the failed write as agreed.
                self.store.fail(entry_id, message, stale=action.native_id)
                outcome.failed.append((action.native_id, message))
                continue
            done.append((entry_id, change))
            outcome.applied += 1
            if len(done) >= self.batch:
                self.store.commit(self.sync, done)
                done = []
        self.store.commit(self.sync, done)
        outcome.superseded = self.superseded - superseded
        return outcome

    async def apply_one(self, action: Action) -> Change:
        change = Change()
        nid = action.native_id
        match action:
            case PutEvent(appointment=appt, target=target):
                if await self._show(change, nid, appt, target) and nid not in self.overtaken:
                    change.records[nid] = appt
            case DeleteEvent(target=target):
                await self._delete(target)
                change.links[(nid, target.calendar)] = self._detached(nid, target.calendar)
            case WriteBack():
                await self._write_back(change, action)
            case Adopt(calendar=cal, href=href, etag=etag, event_hash=h, sequence=seq):
                change.links[(nid, cal)] = (self.renderer.uid(nid), Link(cal, href, etag, h, seq))
            case Remember(appointment=appt):
                change.records[nid] = appt
            case Unlink(calendar=cal):
                change.links[(nid, cal)] = self._detached(nid, cal)
            case Forget():
                change.forget.add(nid)
            case NoteConflict(calendar=cal, detail=detail, resolution=resolution):
                change.conflicts.append((nid, cal, detail, resolution))
        return change

    def _detached(self, nid: str, calendar: str) -> tuple[str, Link]:
        return self.renderer.uid(nid), Link(calendar, "", "", "", 0)

    async def _show(self, change: Change, nid: str, appt: Appointment, target: Target) -> bool:
        """Make ``target`` show ``appt``; False when someone's change overtook the write."""
        if target.unlink:
            change.links[(nid, target.calendar)] = self._detached(nid, target.calendar)
            return True
        if target.delete:
            await self._delete(target)
            change.links[(nid, target.calendar)] = self._detached(nid, target.calendar)
            return True
        rendered = self.renderer.render(appt, target.calendar, target.sequence)
        try:
            ref = await self._put(target, rendered)
        except _Superseded:
            log.info(
                "event changed meanwhile; next cycle",
                sync=self.sync,
                appointment=nid,
                calendar=target.calendar,
            )
            self.superseded += 1
            self.overtaken.add(nid)
            change.stale.add(nid)  # a write to another calendar may have recorded it already
            return False
        link = Link(target.calendar, ref.href, ref.etag, rendered.hash, target.sequence)
        change.links[(nid, target.calendar)] = (rendered.uid, link)
        return True

    async def _put(self, target: Target, rendered: Rendered) -> ItemRef:
        calendar = self.calendars[target.calendar]
        if not target.href:
            try:
                return await calendar.create(rendered.uid, rendered.ics)
            except AlreadyExists as err:  # a replay after a crash, or a lost state database
                return await self._adopt(calendar, err.href, rendered, force=True)
        try:
            return await calendar.update(target.href, rendered.ics, target.etag)
        except PreconditionFailed:
            return await self._adopt(calendar, target.href, rendered, force=False)
        except NotFound:  # deleted meanwhile: the plan wanted it shown, so show it
            return await calendar.create(rendered.uid, rendered.ics)

    async def _adopt(
        self, calendar: Calendar, href: str, rendered: Rendered, force: bool
    ) -> ItemRef:
        found = await calendar.get([href])
        if not found:
            return await calendar.create(rendered.uid, rendered.ics)
        item = found[0]
        if self.renderer.hash_text(item.ics) == rendered.hash:
            return ItemRef(item.href, item.etag)
        if not force:
            raise _Superseded(href)
        return await calendar.update(item.href, rendered.ics, item.etag)

    async def _delete(self, target: Target) -> None:
        calendar = self.calendars[target.calendar]
        try:
            await calendar.delete(target.href, target.etag)
        except PreconditionFailed:
            found = await calendar.get([target.href])
            if found:
                await calendar.delete(found[0].href, found[0].etag)

    async def _write_back(self, change: Change, action: WriteBack) -> None:
        nid = action.native_id
        shown, targets = action.expected, action.targets
        try:
            if action.operation == "move":
                await self.provider.move(action.base, action.expected.start, action.expected.end)
            else:
                await self.provider.cancel(action.base)
        except (Refused, NotFound) as err:
            detail = f"provider refused the {action.operation}: {getattr(err, 'message', err)}"
            change.conflicts.append((nid, action.source, detail, "calendar restored"))
            shown = action.base
            targets = tuple(
                Target(t.calendar, t.href, t.etag, sequence=t.sequence + 1) for t in targets
            )
        change.records[nid] = shown
        for target in targets:
            await self._show(change, nid, shown, target)
