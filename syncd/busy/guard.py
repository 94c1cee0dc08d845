"""The mass-delete guard for busy blocks: when freeing time needs a person's yes.

Removing a busy block lets customers book that time, so a busy plan that frees much of it at
once is stopped before anything is changed, for the same two signs of trouble as the
appointment plan (``syncd.reconcile.guard``) and under the same sync settings:

* a complete listing of a busy source that holds nothing readable while syncd tracks blocks
  still ahead for it: an expired share, a wrong calendar URL, a wiped calendar;
* a plan that removes more than ``max_delete_share`` of the sync's busy blocks, once at least
  ``delete_guard_min`` would go.

A block removed and placed again (a moved event) frees nothing and is not counted; neither is
one only forgotten because it ended before the window. ``--allow-mass-delete`` lets a person
say yes.
"""

from __future__ import annotations

from collections.abc import Sequence

from syncd.busy.plan import AddBusy, BusyAction, RemoveBusy
from syncd.reconcile.policy import Policy


def emptied_source(source: str, tracked_ahead: int) -> str:
    """The refusal for a source whose complete listing came back empty, or "" if none is due."""
    if not tracked_ahead:
        return ""
    return f"busy source {source} listed no events while {tracked_ahead} busy blocks are tracked"


def too_many_removals(policy: Policy, actions: Sequence[BusyAction], total_blocks: int) -> str:
    """The refusal for a plan that frees too large a share of the sync's blocks, or ""."""
    placed = {action.key for action in actions if isinstance(action, AddBusy)}
    freed = sum(
        1
        for action in actions
        if isinstance(action, RemoveBusy) and not action.forget and action.key not in placed
    )
    if freed < policy.delete_guard_min or total_blocks == 0:
        return ""
    if freed > policy.max_delete_share * total_blocks:
        share = round(100 * policy.max_delete_share)
        return f"the busy plan would remove {freed} of {total_blocks} busy blocks (limit {share}%)"
    return ""
