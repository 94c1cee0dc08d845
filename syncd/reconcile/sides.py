"""What each side says about one appointment, as ``plan()`` reads it.

The provider's side is its appointment, ``Deleted`` (a complete listing of the window no
longer holds it) or nothing to say; a calendar's side is its ``EventState``, ``EventGone`` (a
complete listing no longer holds syncd's event) or nothing to say. Pure, like the plan.
"""

from __future__ import annotations

from collections.abc import Mapping

from syncd.model import Appointment, Deleted
from syncd.reconcile.policy import Policy
from syncd.reconcile.state import (
    CalendarView,
    EventGone,
    EventState,
    Link,
    ProviderView,
    Record,
    overlaps,
)

Side = EventState | EventGone | None


def keys_to_visit(
    policy: Policy,
    records: Mapping[str, Record],
    provider: ProviderView,
    calendars: Mapping[str, CalendarView],
) -> set[str]:
    keys = set(provider.items)
    for view in calendars.values():
        keys.update(view.events)
    if provider.complete and provider.window is not None:
        window = provider.window
        keys.update(nid for nid, rec in records.items() if overlaps(rec.appointment, window))
    for cal, view in calendars.items():
        if view.complete and cal in policy.calendars:
            keys.update(nid for nid, rec in records.items() if cal in rec.links)
    keys -= provider.unreadable
    return keys


def provider_side(
    native_id: str, rec: Record | None, provider: ProviderView
) -> Appointment | Deleted | None:
    seen = provider.items.get(native_id)
    if seen is not None:
        return seen
    window = provider.window
    if rec is not None and provider.complete and window and overlaps(rec.appointment, window):
        return Deleted(rec.appointment.account, native_id)
    return None


def calendar_side(
    native_id: str, rec: Record | None, calendar: str, calendars: Mapping[str, CalendarView]
) -> Side:
    view = calendars.get(calendar)
    if view is None or native_id in view.unreadable:
        return None
    seen = view.events.get(native_id)
    if seen is not None:
        return seen
    link = live_link(rec, calendar) if rec else None
    if view.complete and link is not None:
        return EventGone(calendar, native_id, link.href)
    return None


def live_link(rec: Record, calendar: str) -> Link | None:
    """The record's link to ``calendar`` if its event exists; an unlinked (detached) link has
    no href: the person deleted the event and the policy said to leave it deleted."""
    link = rec.links.get(calendar)
    return link if link is not None and link.href else None


def intent_of(b: EventState | EventGone, current: Appointment) -> str:
    """What the person did to the event, in the terms a provider understands."""
    if isinstance(b, EventGone):
        return "deleted"
    if b.cancelled and not current.cancelled:
        return "cancel"
    if b.cancelled == current.cancelled and (b.start != current.start or b.end != current.end):
        return "move" if not current.cancelled else "edit"
    return "edit"


def is_newer(b: EventState | EventGone, current: Appointment) -> bool:
    if isinstance(b, EventGone) or b.modified is None:
        return False
    return current.updated is None or b.modified > current.updated
