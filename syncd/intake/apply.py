"""Carrying out journaled intake actions: book at the provider, then replace or mark the event.

Booking is the one write in syncd whose result cannot be found by a deterministic name: the
provider picks the id. The defence against booking twice, in order:

1. The plan is journaled before anything is sent (``pending``).
2. Right before ``book_from_event`` the entry is marked ``started``; the request carries a
   reference derived from the event's UID, which the provider stores with the booking.
3. The returned id is written into the entry at once (``booked``), before any calendar work.
4. On resume, a ``started`` entry may or may not have reached the provider: it is looked up
   with ``find_booking(reference)``. Found: it is adopted and nothing is sent. Not found: the
   booking never happened, and only then is it made. A ``booked`` entry is never sent again.

A booked event is then REPLACED in the intake calendar by the booking's own event, rendered
as the sync renders every appointment (UID from account and native id, X-SYNCD-* links), and
recorded as that appointment's link in the same transaction that marks the entry done.
Replacing rather than editing: CalDAV servers refuse a new UID at an existing href (Radicale
answers 409 ``no-uid-conflict``), and syncd's UID must be the one derived from the booking
(DESIGN 4, promise 2) for every later write to find it. The person's event is deleted only
after the booking's event exists, so the calendar never lacks the booking.

A booking that cannot be shown yet (the calendar failed) stops the run like a transient
error: the entry stays ``booked`` and is finished first next time, never given up, because
giving up would let the person's next edit book again.

A refusal (``Refused``) is written into the entry (``refused``), the event's title gets
``[not booked: reason]`` -- only if it is still the version that was read; a newer version
is the person's edit and is tried next cycle -- and the decision, the etag and hash syncd
wrote and a conflict entry are committed with the journal mark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from syncd.calendars.base import Calendar
from syncd.errors import AlreadyExists, AuthError, PreconditionFailed, Refused, TransientError
from syncd.ical import parse_event
from syncd.intake.journal import Entry, IntakeLedger
from syncd.intake.mark import refused
from syncd.intake.plan import Book, Decision, Decline
from syncd.intake.request import IntakeRequest
from syncd.model import Appointment, ItemRef, Status
from syncd.providers.base import Provider, Scope
from syncd.reconcile.apply import Renderer
from syncd.reconcile.state import Link
from syncd.state.changes import Change

log = structlog.get_logger("syncd.intake")


@dataclass(slots=True)
class IntakeOutcome:
    """What applying intake actions did; ``stopped`` holds the error that ended it early."""

    booked: list[tuple[str, str]] = field(default_factory=list)  # (href, native id)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (href, reason)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (href, message)
    stopped: Exception | None = None


@dataclass(slots=True)
class IntakeApplier:
    ledger: IntakeLedger
    sync: str
    provider: Provider
    scope: Scope
    calendar: Calendar
    renderer: Renderer

    async def run(self, entries: Sequence[Entry]) -> IntakeOutcome:
        """Apply entries in order, each committed as it ends; stop at a transient error."""
        outcome = IntakeOutcome()
        for entry in entries:
            try:
                await self._apply(entry, outcome)
            except (TransientError, AuthError) as err:
                outcome.stopped = err
                break
            except Exception as err:  # one broken event must not stop the others
                message = f"{type(err).__name__}: {err}"
                href = getattr(entry.action, "href", "")
                log.warning("intake action failed", sync=self.sync, href=href, error=message)
                self.ledger.fail(entry.id, message)
                outcome.failed.append((href, message))
        return outcome

    async def _apply(self, entry: Entry, outcome: IntakeOutcome) -> None:
        action = entry.action
        if isinstance(action, Decline):
            await self._refuse(entry.id, action.href, action.uid, action.etag, action.reason)
            outcome.refused.append((action.href, action.reason))
            return
        if not isinstance(action, Book):
            self.ledger.finish(self.sync, entry.id, forget=(action.calendar, action.href))
            return
        request = action.request
        state, result = entry.state, entry.outcome
        if state in ("pending", "started"):
            state, result = await self._book(entry, request)
        if state == "refused":
            await self._refuse(entry.id, request.href, request.uid, action.etag, result)
            outcome.refused.append((request.href, result))
            return
        try:
            await self._link(entry.id, request, action.etag, result)
        except (TransientError, AuthError):
            raise
        except Exception as err:
            # Booked but not linked: giving up here would let an edit of the person's event
            # book again. The entry stays ``booked`` and is finished by a later run instead.
            message = f"booked as {result}, not yet shown: {type(err).__name__}: {err}"
            raise TransientError(self.calendar.name, message) from err
        outcome.booked.append((request.href, result))

    async def _book(self, entry: Entry, request: IntakeRequest) -> tuple[str, str]:
        """``("booked", native id)`` or ``("refused", reason)``, each recorded durably."""
        native_id = None
        if entry.state == "started":
            native_id = await self.provider.find_booking(self.scope, request)
            if native_id is not None:
                log.info("intake booking found after a crash", sync=self.sync, id=native_id)
        if native_id is None:
            self.ledger.mark(entry.id, "started")
            try:
                native_id = await self.provider.book_from_event(self.scope, request)
            except Refused as err:
                self.ledger.mark(entry.id, "refused", err.message)
                return "refused", err.message
        self.ledger.mark(entry.id, "booked", native_id)
        return "booked", native_id

    async def _link(self, entry_id: int, request: IntakeRequest, etag: str, native_id: str) -> None:
        appointment = await self.provider.get(native_id)
        if appointment is None:  # cancelled and removed already: show what was asked for
            appointment = Appointment(
                self.provider.name,
                native_id,
                request.start,
                request.end,
                title=request.summary,
                status=Status.TENTATIVE,
            )
        rendered = self.renderer.render(appointment, self.calendar.name, 0)
        try:
            ref = await self.calendar.create(rendered.uid, rendered.ics)
        except AlreadyExists as err:  # a replay after a crash: ours is there already
            ref = await self._overwrite(err.href, rendered.uid, rendered.ics)
        await self._remove(request.href, etag)
        link = Link(self.calendar.name, ref.href, ref.etag, rendered.hash, 0)
        change = Change(
            records={native_id: appointment},
            links={(native_id, self.calendar.name): (rendered.uid, link)},
        )
        self.ledger.finish(
            self.sync, entry_id, change=change, forget=(self.calendar.name, request.href)
        )
        log.info("intake event booked", sync=self.sync, href=request.href, id=native_id)

    async def _overwrite(self, href: str, uid: str, ics: str) -> ItemRef:
        found = await self.calendar.get([href])
        if not found:  # deleted between the two requests
            return await self.calendar.create(uid, ics)
        return await self.calendar.update(found[0].href, ics, found[0].etag)

    async def _remove(self, href: str, etag: str) -> None:
        """Delete the person's event; edited meanwhile, it still goes: it is booked."""
        try:
            await self.calendar.delete(href, etag)
        except PreconditionFailed:
            found = await self.calendar.get([href])
            if found:
                await self.calendar.delete(found[0].href, found[0].etag)

    async def _refuse(self, entry_id: int, href: str, uid: str, etag: str, reason: str) -> None:
        log.info("intake event not booked", sync=self.sync, href=href, reason=reason)
        conflict = (uid or href, self.calendar.name, f"not booked: {reason}", "marked in calendar")
        change = Change(conflicts=[conflict])
        found = await self.calendar.get([href])
        if not found or found[0].etag != etag:  # gone, or edited since it was read
            self.ledger.finish(self.sync, entry_id, change=change)
            return
        marked = refused(found[0].ics, reason, href)
        try:
            ref = await self.calendar.update(href, marked, etag)
        except PreconditionFailed:  # edited this very moment: the edit is tried next cycle
            self.ledger.finish(self.sync, entry_id, change=change)
            return
        written = parse_event(marked, href).hash
        decision = Decision(self.calendar.name, href, uid, reason, ref.etag, written)
        self.ledger.finish(self.sync, entry_id, change=change, decision=decision)
