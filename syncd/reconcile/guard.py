"""The mass-delete guard: when a plan is too destructive to apply without a person's yes.

Two signs of trouble stop a sync before anything is changed (promise 3 of the design):
a plan that deletes or cancels more than ``max_delete_share`` of the sync's linked items
(once at least ``delete_guard_min`` would go), and a full listing that comes back empty
while syncd tracks items there. ``--allow-mass-delete`` lets a person say yes.
"""

from __future__ import annotations

from collections.abc import Mapping

from syncd.reconcile.actions import Action, DeleteEvent, WriteBack
from syncd.reconcile.policy import Policy
from syncd.reconcile.state import CalendarView, ProviderView, Record, overlaps


def empty_side(
    policy: Policy,
    records: Mapping[str, Record],
    provider: ProviderView,
    calendars: Mapping[str, CalendarView],
) -> str:
    """A full listing that comes back empty while syncd tracks items there is a red flag:
    an expired account, a wrong scope, a wiped calendar. Stop rather than delete everything."""
    window = provider.window
    if provider.complete and window is not None and not provider.items and not provider.unreadable:
        tracked = sum(1 for rec in records.values() if overlaps(rec.appointment, window))
        if tracked:
            return f"the provider listed no appointments in the window while {tracked} are tracked"
    for cal, view in calendars.items():
        if cal in policy.calendars and view.complete and not view.events and not view.unreadable:
            tracked = sum(1 for rec in records.values() if cal in rec.links)
            if tracked:
                return f"calendar {cal} listed none of syncd's events while {tracked} are tracked"
    return ""


def too_many_deletes(policy: Policy, actions: list[Action], total_links: int) -> str:
    deletes = sum(1 for action in actions if _destructive(action))
    if deletes < policy.delete_guard_min or total_links == 0:
        return ""
    if deletes > policy.max_delete_share * total_links:
        share = round(100 * policy.max_delete_share)
        return (
            f"the plan would delete or cancel {deletes} of {total_links} linked items"
            f" (limit {share}%)"
        )
    return ""


def _destructive(action: Action) -> bool:
    if isinstance(action, WriteBack):
        return action.operation == "cancel"
    return isinstance(action, DeleteEvent)
