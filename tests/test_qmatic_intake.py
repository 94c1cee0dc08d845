"""Qmatic's side of intake: ``book_from_event`` and ``find_booking``, on the sandbox.

A person's event becomes a confirmed appointment (timeslot, 15-minute hold, confirm with the
event's customer); a refusal says why in words a person can act on; and neither a lost
confirm answer nor an unconfirmed hold ever leads to a second booking. The engine's intake
step around these calls is tested end to end in ``test_qmatic_e2e.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from syncd.errors import Refused, TransientError
from syncd.providers.qmatic import QmaticProvider, native_id
from syncd.providers.qmatic_mapping import PERSONAL_IDENTIFIER, personal_identifier
from syncd.sandbox.onlineafspraken_state import ManualClock
from syncd.sandbox.qmatic_records import HOLD
from syncd.sandbox.qmatic_state import QmaticState
from tests.qmatic_kit import CENTRUM, NOORD, OTHER, T0, at, connected, make_state, request

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


async def test_an_event_becomes_a_confirmed_appointment_for_its_attendee(
    provider: QmaticProvider, state: QmaticState
) -> None:
    asked = request(at(11), 45, description="Bring the old passport.")
    nid = await provider.book_from_event({}, asked)
    [made] = state.appointments.values()
    assert nid == native_id(asked.reference, made.id)
    assert made.customer == {
        "personalIdentifier": asked.reference,
        "firstName": "Jan",
        "lastName": "Jansen",
        "email": "jan@example.org",
    }
    assert (made.start, made.end) == (at(11), at(11, 30)), "the service's length, not the event's"
    assert made.notes == "Passport renewal\n\nBring the old passport."
    seen = await provider.get(nid)
    assert seen is not None
    assert seen.customer == "Jan Jansen"
    assert state.requests == {"token": 1, "search": 2, "timeslots": 1, "reserve": 1, "confirm": 1}


async def test_description_lines_fill_in_and_override_the_customer(
    provider: QmaticProvider, state: QmaticState
) -> None:
    answers = {
        "name": "Piet de Vries",
        "email": "piet@example.org",
        "phone": "+31612345678",
        "date of birth": "1980-01-31",
    }
    await provider.book_from_event({"branch": NOORD}, request(at(10), name="", fields=answers))
    [made] = state.appointments.values()
    assert made.branch_id == NOORD
    assert {k: v for k, v in made.customer.items() if k != "personalIdentifier"} == {
        "firstName": "Piet de",
        "lastName": "Vries",
        "email": "piet@example.org",
        "phoneNumber": "+31612345678",
        "dateOfBirth": "1980-01-31",
    }


async def test_a_booked_event_is_never_booked_twice(
    provider: QmaticProvider, state: QmaticState
) -> None:
    asked = request(at(11))
    first = await provider.book_from_event({}, asked)
    assert await provider.find_booking({}, asked) == first
    assert await provider.book_from_event({}, asked) == first
    assert len(state.appointments) == 1
    assert state.requests["reserve"] == 1


async def test_a_lost_confirm_answer_is_found_by_the_identifier_not_booked_again(
    provider: QmaticProvider, state: QmaticState
) -> None:
    asked = request(at(11))
    state.faults.lost_replies, state.faults.only = 1, "confirm"
    with pytest.raises(TransientError):
        await provider.book_from_event({}, asked)
    [made] = state.appointments.values()  # the confirm took effect; syncd never heard
    found = await provider.find_booking({}, asked)
    assert found == native_id(asked.reference, made.id)
    assert await provider.book_from_event({}, asked) == found
    assert len(state.appointments) == 1
    assert state.requests["reserve"] == 1


async def test_an_unconfirmed_hold_lapses_by_itself_and_books_nothing(
    provider: QmaticProvider, state: QmaticState
) -> None:
    asked = request(at(11, day=at(0).replace(day=7)))  # a Friday
    state.faults.server_errors, state.faults.only = 1, "confirm"
    with pytest.raises(TransientError):
        await provider.book_from_event({}, asked)
    assert (len(state.reservations), state.appointments) == (1, {})
    state.advance(HOLD.total_seconds())
    assert await provider.find_booking({}, asked) is None
    assert state.taken(CENTRUM, asked.start, asked.end) == 0, "lapsed without any clean-up"
    await provider.book_from_event({}, asked)
    assert len(state.appointments) == 1


async def test_refusals_say_why(provider: QmaticProvider, state: QmaticState) -> None:
    state.book(at(10), personal_identifier=OTHER, branch=NOORD)  # Noord's one place at 10:00
    cases = [
        ({"branch": NOORD}, request(at(10)), "is not a free timeslot; free that day: 10:30"),
        ({}, request(at(10, day=at(0).replace(day=2))), "no free time on 2031-03-02"),
        ({}, request(at(11), email=""), "no e-mail address"),
        ({}, request(at(11), name=""), "no customer name"),
        ({}, request(T0 - timedelta(days=1)), "no free time on 2031-02-28"),
    ]
    for scope, asked, reason in cases:
        with pytest.raises(Refused) as refused:
            await provider.book_from_event(scope, asked)
        assert reason in refused.value.message, asked
    assert len(state.appointments) == 1
    assert state.reservations == {}


async def test_without_a_service_nothing_is_booked(state: QmaticState, clock: ManualClock) -> None:
    async with connected(state, clock, service="") as provider:
        with pytest.raises(Refused, match="no service and branch"):
            await provider.book_from_event({}, request(at(11)))


def test_the_customer_identifier_is_the_reference_or_its_stable_hash() -> None:
    fitting = "syncd" + "0" * 32
    assert personal_identifier(fitting) == fitting
    odd = personal_identifier("not-a-fitting reference")
    assert odd == personal_identifier("not-a-fitting reference")
    assert PERSONAL_IDENTIFIER.fullmatch(odd)
    assert odd != personal_identifier("another reference")
