"""Turning what backends returned into the views ``plan()`` reads.

Provider pulls become a ``ProviderView``; calendar changes are parsed (``syncd.ical``) and
only events this sync owns are kept, keyed by native id. Anything unreadable is reported as a
bad item naming the item and the field, and marked unreadable so it is neither changed nor
deleted this cycle: nothing already stored is lost to one bad item.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from syncd.calendars.base import CalendarChanges
from syncd.errors import BadItem
from syncd.ical import parse_event
from syncd.model import Appointment, Deleted
from syncd.providers.base import Pull
from syncd.reconcile.state import CalendarView, EventGone, EventState, ProviderView


@dataclass(slots=True)
class BadItems:
    """Bad items seen this cycle, as (item, field, message); ``ok`` names items read fine."""

    bad: list[tuple[str, str, str]] = field(default_factory=list)
    ok: list[str] = field(default_factory=list)


def provider_view(account: str, pull: Pull, problems: BadItems) -> ProviderView:
    items: dict[str, Appointment | Deleted] = {}
    unreadable: set[str] = set()
    for item in pull.items:
        if isinstance(item, BadItem):
            problems.bad.append((f"{account}/{item.item}", item.field, item.message))
            unreadable.add(item.item)
            continue
        if item.account != account:
            problems.bad.append((f"{account}/{item.native_id}", "account", "wrong account"))
            continue
        items[item.native_id] = item
        problems.ok.append(f"{account}/{item.native_id}")
    return ProviderView(items, pull.complete, pull.window, frozenset(unreadable))


def calendar_view(
    sync: str,
    calendar: str,
    changes: CalendarChanges,
    resolve: Callable[[Sequence[str]], dict[str, str]],
    problems: BadItems,
    etags: Callable[[Sequence[str]], dict[str, str]] | None = None,
) -> CalendarView:
    """``resolve`` maps hrefs to the native ids of the links stored for them; ``etags`` to
    the etags syncd recorded there. An incremental change at an href whose etag is the one
    syncd recorded is the echo of its own write and is not even parsed -- the cycle after a
    large push would otherwise parse every event it just wrote. A complete listing is always
    read whole: there, an item left out would look deleted."""
    events: dict[str, EventState | EventGone] = {}
    unreadable_hrefs: list[str] = []
    changed = list(changes.changed)
    if etags is not None and not changes.complete and changed:
        ours = etags([item.href for item in changed])
        changed = [item for item in changed if ours.get(item.href) != item.etag]
    for item in changed:
        label = f"{calendar}:{item.href}"
        try:
            parsed = parse_event(item.ics, item.href)
        except BadItem as err:
            problems.bad.append((label, err.field, err.message))
            unreadable_hrefs.append(item.href)
            continue
        problems.ok.append(label)
        if parsed.sync != sync or not parsed.native_id:
            continue  # not ours: a person's own event, or another sync's
        events[parsed.native_id] = EventState(
            calendar=calendar,
            native_id=parsed.native_id,
            href=item.href,
            etag=item.etag,
            start=parsed.start,
            end=parsed.end,
            cancelled=parsed.cancelled,
            event_hash=parsed.hash,
            modified=parsed.last_modified,
        )
    owners = (
        resolve([*changes.deleted, *unreadable_hrefs])
        if (changes.deleted or unreadable_hrefs)
        else {}
    )
    for href in changes.deleted:
        nid = owners.get(href)
        if nid is not None and nid not in events:
            events[nid] = EventGone(calendar, nid, href)
    unreadable = frozenset(owners[h] for h in unreadable_hrefs if h in owners)
    return CalendarView(events, changes.complete, unreadable)
