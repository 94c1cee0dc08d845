"""The state change an applied action leaves behind, committed with its journal mark."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from syncd.model import Appointment
from syncd.reconcile.state import Link


@dataclass(slots=True)
class Change:
    """Upserts and deletes for one or more actions.

    ``links`` maps (native id, calendar) to (uid, link); a link with an empty href records a
    detached event. ``forget`` deletes an appointment and all its links before the upserts.
    ``stale`` names appointments whose stored version must not count as agreed (its hash is
    cleared after the upserts), so the next time the provider reports them they are planned
    again as changed.
    """

    records: dict[str, Appointment] = field(default_factory=dict)
    links: dict[tuple[str, str], tuple[str, Link]] = field(default_factory=dict)
    forget: set[str] = field(default_factory=set)
    conflicts: list[tuple[str, str, str, str]] = field(default_factory=list)
    stale: set[str] = field(default_factory=set)

    @staticmethod
    def merge(changes: Iterable[Change]) -> Change:
        """Fold changes in order into one, as if each had been committed in turn."""
        out = Change()
        for change in changes:
            for nid in change.forget:
                out.records.pop(nid, None)
                for key in [k for k in out.links if k[0] == nid]:
                    del out.links[key]
                out.forget.add(nid)
                out.stale.discard(nid)
            out.records.update(change.records)
            out.stale |= change.stale
            out.links.update(change.links)
            out.conflicts.extend(change.conflicts)
        return out
