"""The pure three-way merge: (agreed state, provider changes, calendar changes, policy) -> plan.

No I/O and no clock: the same inputs always give the same actions, which is what lets the
state machine test replay and shrink failures, and lets ``--dry-run`` show exactly what a
real run would do. Work is proportional to the number of changed items: only appointments
named by a view are visited, unless a view is ``complete`` (a full listing), in which case
every record is, to find what vanished.

Per appointment, A is the provider, B a calendar, base the ``Record``:
    A changed only          -> write A to every calendar
    B changed only          -> two-way: write B's move/cancel back to A; else restore B from A
    both changed            -> the conflict policy decides, and a conflict is recorded
    B equals what A renders -> not a change (an echo of our own write): adopt its etag
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from syncd.model import Appointment, Deleted, Status
from syncd.reconcile.actions import (
    Action,
    Adopt,
    DeleteEvent,
    Forget,
    NoteConflict,
    Plan,
    PutEvent,
    Remember,
    Target,
    Unlink,
    WriteBack,
)
from syncd.reconcile.guard import empty_side, too_many_deletes
from syncd.reconcile.policy import CalendarDelete, CancelledPolicy, ConflictPolicy, Policy
from syncd.reconcile.sides import (
    Side,
    calendar_side,
    intent_of,
    is_newer,
    keys_to_visit,
    live_link,
    provider_side,
)
from syncd.reconcile.state import CalendarView, EventGone, EventState, ProviderView, Record

RenderHash = Callable[[Appointment, str], str]
"""The content hash of the event syncd would write for an appointment in a calendar."""


def plan(
    policy: Policy,
    records: Mapping[str, Record],
    provider: ProviderView,
    calendars: Mapping[str, CalendarView],
    render_hash: RenderHash,
    total_links: int = 0,
) -> Plan:
    """Decide what to do. ``records`` must hold every record a view names (all of them when
    a view is complete); ``total_links`` is the sync's link count, for the mass-delete guard."""
    result = Plan()
    refusal = empty_side(policy, records, provider, calendars)
    keys = keys_to_visit(policy, records, provider, calendars)
    merge = _Merge(policy, render_hash)
    for native_id in sorted(keys):
        rec = records.get(native_id)
        a = provider_side(native_id, rec, provider)
        bs = {cal: calendar_side(native_id, rec, cal, calendars) for cal in policy.calendars}
        result.actions.extend(merge.one(native_id, rec, a, bs))
    refusal = refusal or too_many_deletes(policy, result.actions, total_links)
    if refusal and not policy.allow_mass_delete:
        result.refused = refusal
        result.actions = []
    return result


@dataclass(frozen=True, slots=True)
class _Merge:
    policy: Policy
    render_hash: RenderHash

    def one(
        self,
        native_id: str,
        rec: Record | None,
        a: Appointment | Deleted | None,
        bs: Mapping[str, Side],
    ) -> list[Action]:
        if isinstance(a, Deleted):
            return self._provider_deleted(native_id, rec, bs)
        if rec is None:
            return self._new(native_id, a, bs) if a is not None else []
        current = a if a is not None else rec.appointment
        a_changed = a is not None and a.content_hash() != rec.hash
        quiet: list[Action] = []
        user: list[tuple[str, EventState | EventGone]] = []
        for cal in self.policy.calendars:
            b = bs.get(cal)
            link = live_link(rec, cal)
            if b is None:
                if cal not in rec.links and a is not None and not self._hidden(current):
                    # A calendar added to the sync later: the appointment was seen, show it.
                    quiet.append(PutEvent(native_id, current, Target(cal), "new calendar"))
                continue
            if isinstance(b, EventGone):
                if link is not None:
                    user.append((cal, b))
            elif link is not None and b.event_hash == link.event_hash:
                if b.etag != link.etag or b.href != link.href:
                    quiet.append(Adopt(native_id, cal, b.href, b.etag, b.event_hash, link.sequence))
            elif b.event_hash == self.render_hash(current, cal):
                seq = link.sequence if link is not None else 0
                quiet.append(Adopt(native_id, cal, b.href, b.etag, b.event_hash, seq))
            elif link is None:
                # Ours but untracked (a create replayed after a crash): make it show A.
                target = Target(cal, b.href, b.etag, sequence=1)
                quiet.append(PutEvent(native_id, current, target, "adopt"))
            else:
                user.append((cal, b))
        if not user:
            if a_changed:
                return self._push(native_id, current, rec, bs, "changed at the provider")
            return quiet
        return quiet + self._calendar_changed(native_id, rec, current, a_changed, user, bs)

    def _new(self, native_id: str, a: Appointment, bs: Mapping[str, Side]) -> list[Action]:
        out: list[Action] = []
        for cal in self.policy.calendars:
            b = bs.get(cal)
            here = b if isinstance(b, EventState) else None
            if self._hidden(a):
                if here is not None:
                    out.append(
                        DeleteEvent(native_id, Target(cal, here.href, here.etag), "cancelled")
                    )
            elif here is not None and here.event_hash == self.render_hash(a, cal):
                out.append(Adopt(native_id, cal, here.href, here.etag, here.event_hash))
            elif here is not None:
                target = Target(cal, here.href, here.etag, sequence=1)
                out.append(PutEvent(native_id, a, target, "adopt"))
            else:
                out.append(PutEvent(native_id, a, Target(cal), "new"))
        return _recorded(native_id, a, out)

    def _provider_deleted(
        self, native_id: str, rec: Record | None, bs: Mapping[str, Side]
    ) -> list[Action]:
        if rec is None:
            return []
        out: list[Action] = []
        for cal, link in rec.links.items():
            b = bs.get(cal)
            if isinstance(b, EventGone) or not link.href:
                continue
            etag = b.etag if isinstance(b, EventState) else link.etag
            out.append(
                DeleteEvent(native_id, Target(cal, link.href, etag), "deleted at the provider")
            )
        out.append(Forget(native_id))
        return out

    def _hidden(self, appointment: Appointment) -> bool:
        """A cancelled appointment under ``cancelled = "delete"`` has no event."""
        return appointment.cancelled and self.policy.cancelled is CancelledPolicy.DELETE

    def _targets(
        self, rec: Record, shown: Appointment, bs: Mapping[str, Side], skip: Iterable[str] = ()
    ) -> list[Target]:
        out = []
        hidden = self._hidden(shown)
        for cal in self.policy.calendars:
            if cal in skip:
                continue
            link = live_link(rec, cal)
            known = rec.links.get(cal)
            sequence = known.sequence + 1 if known is not None else 0
            b = bs.get(cal)
            if isinstance(b, EventGone):
                href, etag = "", ""
            elif isinstance(b, EventState):
                href, etag = b.href, b.etag
            elif link is not None:
                href, etag = link.href, link.etag
            else:
                href, etag = "", ""
            if hidden:
                if href:
                    out.append(Target(cal, href, etag, delete=True))
                elif link is not None:
                    out.append(Target(cal, unlink=True))
            else:
                out.append(Target(cal, href, etag, sequence=sequence))
        return out

    def _push(
        self, native_id: str, shown: Appointment, rec: Record, bs: Mapping[str, Side], why: str
    ) -> list[Action]:
        out: list[Action] = []
        for t in self._targets(rec, shown, bs):
            if t.unlink:
                out.append(Unlink(native_id, t.calendar))
            elif t.delete:
                out.append(DeleteEvent(native_id, t, "cancelled at the provider"))
            else:
                out.append(PutEvent(native_id, shown, t, why))
        return _recorded(native_id, shown, out)

    def _calendar_changed(
        self,
        native_id: str,
        rec: Record,
        current: Appointment,
        a_changed: bool,
        user: list[tuple[str, EventState | EventGone]],
        bs: Mapping[str, Side],
    ) -> list[Action]:
        cal, b = user[0]  # the first calendar in config order speaks; the others are restored
        intent = intent_of(b, current)
        if a_changed:
            calendar_wins = self.policy.conflict is ConflictPolicy.CALENDAR_WINS or (
                self.policy.conflict is ConflictPolicy.NEWEST_WINS and is_newer(b, current)
            )
            if not calendar_wins or not self.policy.two_way or intent not in ("move", "cancel"):
                note = NoteConflict(
                    native_id, cal, f"both sides changed ({intent})", "provider kept"
                )
                return [note, *self._push(native_id, current, rec, bs, "conflict: provider kept")]
            note = NoteConflict(native_id, cal, f"both sides changed ({intent})", "calendar kept")
            return [note, *self._write_back(native_id, rec, current, intent, cal, b, bs)]
        if intent == "deleted":
            return self._calendar_deleted(native_id, rec, current, cal, bs)
        if intent in ("move", "cancel") and self.policy.two_way:
            return self._write_back(native_id, rec, current, intent, cal, b, bs)
        return self._push(native_id, current, rec, bs, "restored: calendar edit not allowed")

    def _calendar_deleted(
        self, native_id: str, rec: Record, current: Appointment, cal: str, bs: Mapping[str, Side]
    ) -> list[Action]:
        rule = self.policy.calendar_delete
        if current.cancelled or rule is CalendarDelete.IGNORE:
            return [Unlink(native_id, cal)]
        if rule is CalendarDelete.CANCEL and self.policy.two_way:
            gone = EventGone(cal, native_id, "")
            return self._write_back(native_id, rec, current, "cancel", cal, gone, bs)
        return self._push(native_id, current, rec, bs, "restored: deleted in calendar")

    def _write_back(
        self,
        native_id: str,
        rec: Record,
        current: Appointment,
        intent: str,
        source: str,
        b: EventState | EventGone,
        bs: Mapping[str, Side],
    ) -> list[Action]:
        operation: Literal["move", "cancel"]
        if intent == "cancel":
            expected = replace(current, status=Status.CANCELLED)
            operation = "cancel"
        else:
            assert isinstance(b, EventState)
            zone = current.start.tzinfo
            expected = current.moved(b.start.astimezone(zone), b.end.astimezone(zone))
            operation = "move"
        skip = [source] if isinstance(b, EventGone) else []
        targets = self._targets(rec, expected, bs, skip)
        if skip:
            targets.append(Target(source, unlink=True))
        return [WriteBack(native_id, operation, current, expected, source, tuple(targets))]


def _recorded(native_id: str, appointment: Appointment, actions: list[Action]) -> list[Action]:
    """Make sure the plan records ``appointment`` as agreed. A ``PutEvent`` records it when it
    succeeds, and only then: a failed write must leave the old version as the base, so the
    change is tried again. Without one, a ``Remember`` records it up front."""
    for action in actions:
        if type(action) is PutEvent:
            return actions
    return [Remember(native_id, appointment), *actions]
