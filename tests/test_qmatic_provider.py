"""The Qmatic provider on its sandbox: what it can see, bad payloads, moves and cancels.

Issue 8, acceptance 3 ("bad payloads named and skipped") is
``test_bad_appointments_are_named_and_skipped``. Booking from intake events is in
``test_qmatic_intake.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from syncd.backends import build_provider
from syncd.config import parse_config
from syncd.errors import BadItem, ConfigError, NotFound, Refused
from syncd.model import Appointment, Status
from syncd.providers.qmatic import QmaticProvider, native_id
from syncd.sandbox.onlineafspraken_state import ManualClock
from syncd.sandbox.qmatic_state import QmaticState
from tests.qmatic_kit import (
    CENTRUM,
    NOORD,
    OTHER,
    T0,
    TRACKED,
    WINDOW,
    at,
    connected,
    make_state,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def state(clock: ManualClock) -> QmaticState:
    return make_state(clock)


@pytest.fixture
async def provider(state: QmaticState, clock: ManualClock) -> AsyncIterator[QmaticProvider]:
    async with connected(state, clock) as made:
        yield made


def found(items: object) -> dict[str, Appointment]:
    assert isinstance(items, list)
    return {i.native_id: i for i in items if isinstance(i, Appointment)}


async def test_it_sees_tracked_customers_and_nobody_else(
    provider: QmaticProvider, state: QmaticState
) -> None:
    mine = state.book(at(10), personal_identifier=TRACKED, first_name="Ada", last_name="Lovelace")
    state.book(at(11), personal_identifier=OTHER)
    far = state.book(T0 + timedelta(days=200), personal_identifier=TRACKED)
    pull = await provider.pull({}, None, WINDOW)
    assert not pull.complete
    [seen] = found(pull.items).values()
    assert seen.native_id == native_id(TRACKED, mine.id)
    assert (seen.start, seen.end, seen.title) == (at(10), at(10, 30), "Passport")
    assert (seen.customer, seen.location) == ("Ada Lovelace", "Centrum, Stationsplein 1, Utrecht")
    assert dict(seen.extra)["personalIdentifier"] == TRACKED
    assert native_id(TRACKED, far.id) not in found(pull.items), "outside the window"
    assert state.requests["search"] == 1


async def test_reread_follows_known_appointments_and_reads_each_customer_once(
    provider: QmaticProvider, state: QmaticState
) -> None:
    booked = [state.book(at(h), personal_identifier=OTHER) for h in (9, 10, 11, 12)]
    late = state.book(T0 + timedelta(days=200), personal_identifier=OTHER)
    known = {
        nid: a
        for b in [*booked, late]
        if (a := await provider.get(nid := native_id(OTHER, b.id))) is not None
    }
    moved, cancelled, untouched, past = booked
    state.move(moved.id, at(15))
    state.cancel(cancelled.id)
    state.requests.clear()
    pull = await provider.reread({}, known, WINDOW)
    assert state.requests["search"] == 2, "one per customer: the tracked one and OTHER"
    items = found(pull.items)
    assert items[native_id(OTHER, moved.id)].start == at(15)
    assert items[native_id(OTHER, cancelled.id)].status is Status.CANCELLED
    assert items[native_id(OTHER, untouched.id)].status is Status.CONFIRMED
    assert native_id(OTHER, late.id) in items, "known ones are read outside the window too"

    # An appointment that is over is no longer searched for, nor called cancelled.
    state.cancel(past.id)
    later = T0.replace(day=3, hour=13)
    provider._now = lambda: later.timestamp()
    done = {k: v for k, v in known.items() if k != native_id(OTHER, late.id)}
    pull = await provider.reread({}, done, WINDOW)
    assert native_id(OTHER, past.id) not in found(pull.items)


async def test_a_sync_scoped_to_a_branch_sees_only_that_branch(
    provider: QmaticProvider, state: QmaticState
) -> None:
    state.book(at(10), personal_identifier=TRACKED, branch=CENTRUM)
    north = state.book(at(11), personal_identifier=TRACKED, branch=NOORD)
    pull = await provider.reread({"branch": NOORD}, {}, WINDOW)
    assert list(found(pull.items)) == [native_id(TRACKED, north.id)]
    with pytest.raises(ConfigError, match=r"scope\.agenda"):
        await provider.reread({"agenda": "1"}, {}, WINDOW)


async def test_bad_appointments_are_named_and_skipped(
    provider: QmaticProvider, state: QmaticState
) -> None:
    good, *bad = [
        state.book(at(9) + timedelta(minutes=30 * i), personal_identifier=TRACKED) for i in range(6)
    ]
    impossible, missing, status, customer, backwards = bad
    state.corrupt(impossible.id, "startTime", "2031-02-30T10:00:00+01:00")
    state.corrupt(missing.id, "endTime", drop=True)
    state.corrupt(status.id, "status", "TELEPORTED")
    state.corrupt(customer.id, "customer", "Jan")
    state.corrupt(backwards.id, "endTime", "2031-03-03T08:00:00+01:00")
    with capture_logs() as logs:
        pull = await provider.pull({}, None, WINDOW)
    named = {i.item: i.field for i in pull.items if isinstance(i, BadItem)}
    assert named == {
        native_id(TRACKED, impossible.id): "startTime",
        native_id(TRACKED, missing.id): "endTime",
        native_id(TRACKED, status.id): "status",
        native_id(TRACKED, customer.id): "customer",
        native_id(TRACKED, backwards.id): "endTime",
    }
    assert list(found(pull.items)) == [native_id(TRACKED, good.id)], "the rest goes on"
    warned = {e["item"] for e in logs if e["event"] == "qmatic.bad_item"}
    assert warned == set(named)
    with pytest.raises(BadItem):
        await provider.get(native_id(TRACKED, status.id))


async def test_an_item_without_an_id_proves_no_cancellation(
    provider: QmaticProvider, state: QmaticState
) -> None:
    kept, nameless = (state.book(at(h), personal_identifier=TRACKED) for h in (10, 11))
    known = {n: a for n in (native_id(TRACKED, kept.id),) if (a := await provider.get(n))}
    state.corrupt(kept.id, "id", drop=True)  # still there, but the answer cannot say so
    pull = await provider.reread({}, known, WINDOW)
    assert [i.field for i in pull.items if isinstance(i, BadItem)] == ["id"]
    assert list(found(pull.items)) == [native_id(TRACKED, nameless.id)], "kept is not cancelled"


async def test_get_finds_by_native_id_alone_and_none_when_gone(
    provider: QmaticProvider, state: QmaticState
) -> None:
    made = state.book(at(10), personal_identifier=OTHER)  # not tracked: the id is enough
    nid = native_id(OTHER, made.id)
    got = await provider.get(nid)
    assert got is not None
    assert got.start == at(10)
    state.cancel(made.id)
    assert await provider.get(nid) is None
    assert await provider.get("not-a-qmatic-id") is None


async def test_a_move_reserves_then_reschedules_and_a_replay_sends_nothing(
    provider: QmaticProvider, state: QmaticState
) -> None:
    made = state.book(at(10), personal_identifier=TRACKED)
    before = await provider.get(native_id(TRACKED, made.id))
    assert before is not None
    moved = await provider.move(before, at(14), at(14, 30))
    assert (moved.start, moved.end) == (at(14), at(14, 30))
    assert (state.get(made.id).start, state.reservations) == (at(14), {})
    state.requests.clear()
    again = await provider.move(before, at(14), at(14, 30))
    assert again.start == at(14)
    assert state.requests == {"search": 1}


async def test_a_move_to_a_slot_that_is_gone_is_refused_with_the_free_times(
    provider: QmaticProvider, state: QmaticState
) -> None:
    made = state.book(at(10), personal_identifier=TRACKED, branch=NOORD)
    state.book(at(12), personal_identifier=OTHER, branch=NOORD)  # Noord has one place
    before = await provider.get(native_id(TRACKED, made.id))
    assert before is not None
    with pytest.raises(Refused) as refused:
        await provider.move(before, at(12), at(12, 30))
    assert "2031-03-03 12:00 is not a free timeslot; free that day: 10:30, 11:00" in str(
        refused.value
    )
    with pytest.raises(Refused, match="no free time on 2031-03-09"):
        await provider.move(before, at(10, day=T0.replace(day=9)), at(11, day=T0.replace(day=9)))
    assert state.get(made.id).start == at(10)
    state.cancel(made.id)
    with pytest.raises(NotFound):
        await provider.move(before, at(11), at(11, 30))


async def test_cancel_deletes_and_cancelling_again_sends_nothing(
    provider: QmaticProvider, state: QmaticState
) -> None:
    made = state.book(at(10), personal_identifier=TRACKED)
    before = await provider.get(native_id(TRACKED, made.id))
    assert before is not None
    assert (await provider.cancel(before)).status is Status.CANCELLED
    assert state.appointments == {}
    state.requests.clear()
    assert (await provider.cancel(before)).cancelled
    assert state.requests == {"search": 1}


async def test_the_config_builds_a_provider_that_works(
    state: QmaticState, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QM_SECRET", state.client_secret)
    text = f"""
[providers.office]
kind = "qmatic"
base_url = "http://sandbox"
account = "acme"
tenant_id = "tenant-1"
client_id = "syncd"
client_secret = "${{QM_SECRET}}"
language = "nl_NL"
service = "{CENTRUM}"
track = ["{TRACKED}", "{OTHER}"]
"""
    config = parse_config(text)
    built = build_provider("office", config.providers["office"])
    assert isinstance(built, QmaticProvider)
    assert (built.track, built.branch, built.api.language) == ((TRACKED, OTHER), "", "nl_NL")
    assert state.client_secret not in repr(built.api)
    await built.aclose()
    with pytest.raises(ConfigError, match="personalIdentifier"):
        parse_config(text.replace(f'"{OTHER}"', '"short"'))
