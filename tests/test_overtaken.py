"""A person's edit that overtakes syncd's write (a 412) is a conflict for the policy to decide,
in a sync with several calendars too: the calendars syncd did write must not make the
provider's change look agreed, or the next cycle would take the person's edit as the only
change and write it back over the business's."""

from __future__ import annotations

from datetime import timedelta

import pytest

from syncd.calendars.memory import MemoryCalendar
from syncd.ical import RenderOptions, parse_event
from syncd.model import ItemRef
from syncd.providers.memory import MemoryProvider
from syncd.reconcile.cycle import Sync, run_cycle
from syncd.reconcile.policy import Direction, Policy
from syncd.reconcile.render import SyncRenderer
from syncd.state.history import sync_status
from syncd.state.store import Store
from tests.test_cycle import NOW
from tests.test_sync_machine import _retime

pytestmark = pytest.mark.anyio

CALENDARS = ("front-desk", "owner")


class EditedMeanwhile(MemoryCalendar):
    """A calendar where a person moves an event just before syncd's next write to it lands."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.person_moves: dict[str, timedelta] = {}

    async def update(self, href: str, ics: str, etag: str) -> ItemRef:
        shift = self.person_moves.pop(href, None)
        if shift is not None:
            current = parse_event(self.items()[href][1], href)
            moved = _retime(self.items()[href][1], current.start + shift, current.end + shift)
            self.user_put(href, moved)
        return await super().update(href, ics, etag)


@pytest.mark.parametrize("edited", CALENDARS)
async def test_an_overtaken_write_in_one_of_two_calendars_is_a_conflict(
    store: Store, edited: str
) -> None:
    provider = MemoryProvider("shop", now=lambda: NOW)
    provider.seed(3, NOW, rng_seed=5, tz="Europe/Amsterdam")
    calendars = {name: EditedMeanwhile(name) for name in CALENDARS}
    policy = Policy(sync="s", account="shop", calendars=CALENDARS, direction=Direction.TWO_WAY)
    sync = Sync(policy, provider, calendars, SyncRenderer("shop", RenderOptions("s")))
    await run_cycle(store, sync, now=NOW)

    nid = "1"
    booked = provider.appointments()[nid]
    business_start = booked.start + timedelta(hours=1)
    provider.reschedule(nid, business_start, business_start + (booked.end - booked.start))
    href = next(
        h for h, (_, ics) in calendars[edited].items().items() if f"X-SYNCD-ID:{nid}\r" in ics
    )
    calendars[edited].person_moves[href] = timedelta(hours=3)  # as syncd writes the business's move

    overtaken = await run_cycle(store, sync, now=NOW)
    assert overtaken.status == "ok"
    assert overtaken.outcome.superseded == 1
    for _ in range(2):  # the next cycle decides; the one after finds nothing left to do
        await run_cycle(store, sync, now=NOW)

    assert provider.appointments()[nid].start == business_start, (
        "the person's move was written back"
    )
    for name, calendar in calendars.items():
        shown = [parse_event(ics, h) for h, (_, ics) in calendar.items().items()]
        assert [e.start for e in shown if e.native_id == nid] == [business_start], name
    conflicts = sync_status(store.engine, "s").conflicts
    assert [(c["appointment"], c["calendar"], c["resolution"]) for c in conflicts] == [
        (nid, edited, "provider kept")
    ]
