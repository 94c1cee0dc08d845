"""What a feed publishes next, decided from what it published last: pure, no I/O.

A subscriber's client keeps every event it has seen and replaces one only when its SEQUENCE
(or DTSTAMP) grows, and it deletes one only when it is told, or when the event silently
drops out of the feed, which many clients handle late or never. So the ledger promises:

* an event's SEQUENCE grows by one whenever what the feed publishes for it changes, and
  never otherwise, so an idle refresh rewrites nothing;
* an appointment that disappears from the feed (deleted at the provider, cancelled and then
  forgotten, or moved to another staff member than the feed's) is published as cancelled,
  with a higher SEQUENCE, for ``keep`` before it is dropped;
* an appointment the provider cancelled stays visible as cancelled for ``keep`` from the
  moment the feed first published it so, and is hidden after that.

``Entry.version`` is the appointment's content hash bound to the feed's render options (so
changing a feed from full to busy bumps every SEQUENCE); an empty version marks an entry
whose appointment is gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from syncd.model import Appointment, Status


@dataclass(frozen=True, slots=True)
class Entry:
    """One event as the feed publishes it."""

    appointment: Appointment
    version: str
    sequence: int
    changed_at: datetime
    cancelled_at: datetime | None = None

    @property
    def gone(self) -> bool:
        """The appointment is no longer in the feed's selection: kept only to say cancelled."""
        return not self.version

    def shown(self, now: datetime, keep: timedelta) -> bool:
        if self.cancelled_at is None:
            return True
        return now < self.cancelled_at + keep


@dataclass(slots=True)
class Delta:
    """Entries to write (new or changed) and native ids to forget."""

    upsert: dict[str, Entry] = field(default_factory=dict)
    delete: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.upsert or self.delete)


def revise(
    old: Entry | None, appointment: Appointment, version: str, now: datetime
) -> Entry | None:
    """The entry for ``appointment`` at ``version``; ``None`` when ``old`` already says it."""
    if old is not None and old.version == version:
        return None
    cancelled_at = None
    if appointment.cancelled:
        still = old is not None and old.appointment.cancelled and old.cancelled_at is not None
        cancelled_at = old.cancelled_at if still and old is not None else now
    sequence = 0 if old is None else old.sequence + 1
    return Entry(appointment, version, sequence, now, cancelled_at)


def vanish(old: Entry, now: datetime) -> Entry:
    """``old`` published as cancelled because its appointment left the feed."""
    if old.appointment.cancelled and old.cancelled_at is not None:
        # Already published as cancelled: nothing a client sees changes, the clock keeps running.
        return replace(old, version="")
    cancelled = replace(old.appointment, status=Status.CANCELLED)
    return Entry(cancelled, "", old.sequence + 1, now, now)


def reconcile(
    entries: Mapping[str, Entry],
    present: Mapping[str, str],
    changed: Mapping[str, Appointment | None],
    now: datetime,
    keep: timedelta,
) -> Delta:
    """The delta that brings ``entries`` up to date.

    ``present`` maps every appointment the sync holds to its version; ``changed`` holds the
    ones whose version the caller has not examined before: the appointment when it belongs
    in this feed, ``None`` when it does not (another staff member's, say).
    """
    delta = Delta()
    for native_id, appointment in changed.items():
        old = entries.get(native_id)
        if appointment is None:
            if old is not None and not old.gone:
                delta.upsert[native_id] = vanish(old, now)
            continue
        new = revise(old, appointment, present[native_id], now)
        if new is not None:
            delta.upsert[native_id] = new
    for native_id, old in entries.items():
        if native_id not in present and not old.gone and native_id not in delta.upsert:
            delta.upsert[native_id] = vanish(old, now)
    for native_id, old in entries.items():
        entry = delta.upsert.get(native_id, old)
        if entry.gone and not entry.shown(now, keep):
            delta.upsert.pop(native_id, None)
            delta.delete.add(native_id)
    return delta


def next_expiry(entries: Mapping[str, Entry], keep: timedelta, now: datetime) -> datetime | None:
    """When the next cancelled entry stops being shown: the feed must be rebuilt then."""
    moments = [
        e.cancelled_at + keep
        for e in entries.values()
        if e.cancelled_at is not None and e.cancelled_at + keep > now
    ]
    return min(moments, default=None)
