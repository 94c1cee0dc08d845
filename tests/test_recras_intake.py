"""Booking intake events at Recras (on its sandbox): what is sent, and every refusal in words a
person can act on -- a full or impossible slot, a bad voucher or discount code, and Recras's
own 406 messages verbatim."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from syncd.errors import Refused
from syncd.intake.request import IntakeRequest, Person, intake_reference
from syncd.providers.recras_intake import BookingForm, contact_form, products
from tests.recras_kit import DAY, FORM, provider_for, sandbox

pytestmark = pytest.mark.anyio
START = DAY + timedelta(hours=4)  # 14:00, on the escape room's half-hour grid


def request(**fields: str) -> IntakeRequest:
    return IntakeRequest(
        reference=intake_reference("s", "desk", "e1"),
        calendar="desk",
        href="e1.ics",
        uid="e1",
        start=START,
        end=START + timedelta(hours=1),
        summary="Escape room",
        description="\n".join(f"{k}: {v}" for k, v in fields.items()),
        organizer=Person("Front desk", "desk@example.org"),
        attendees=(Person("Ann de Vries", "ann@example.org"),),
        fields=fields,
    )


def test_the_contact_form_is_filled_from_the_event() -> None:
    form = replace(FORM, contact_form={**FORM.contact_form, "contact.naam": "text:Walk-in"})
    filled = contact_form(form, request(phone="050-1234567"))
    assert filled == {
        "contactpersoon.voornaam": "Ann",
        "contactpersoon.achternaam": "de Vries",
        "contactpersoon.email1": "ann@example.org",
        "contactpersoon.telefoon1": "050-1234567",
        "boeking.opmerkingen": intake_reference("s", "desk", "e1"),
        "contact.naam": "Walk-in",
    }
    with pytest.raises(ValueError, match="unknown source"):
        BookingForm(contact_form={"x": "contact.age"})


def test_persons_set_every_non_zero_amount() -> None:
    form = BookingForm(arrangement_id=1, products={1: 2, 2: 0})
    assert products(form, request(persons="5"), "r") == [
        {"arrangementsregel_id": 1, "aantal": 5},
        {"arrangementsregel_id": 2, "aantal": 0},
    ]
    with pytest.raises(Refused, match="not a number"):
        products(form, request(persons="many"), "r")


async def test_a_free_slot_is_booked_as_configured_and_found_by_reference() -> None:
    state = sandbox()
    form = replace(FORM, status="definitief", send_confirmation=True)
    async with provider_for(state, form=form) as provider:
        native_id = await provider.book_from_event({}, request(persons="3"))
        booking = state.bookings[int(native_id)]
        assert (booking.begin, booking.status) == (START, "definitief")
        assert [line.amount for line in booking.lines] == [3]
        assert booking.contact["contactpersoon.email1"] == "ann@example.org"
        assert await provider.find_booking({}, request()) == native_id
        calls = dict(state.requests)
    assert calls == {"beschikbaretijden": 1, "reserveer": 1, "boekingen": 1}


@pytest.mark.parametrize(
    ("setup", "fields", "start", "reason"),
    [
        ("full", {}, START, "no free start at 2031-03-03 14:00"),
        ("", {}, START + timedelta(minutes=10), "no free start at 2031-03-03 14:10"),
        ("", {"voucher": "NOPE"}, START, "voucher NOPE: ERR_VOUCHER_INVALID"),
        ("spent", {"voucher": "SPENT"}, START, "voucher SPENT: ERR_VOUCHER_USED"),
        ("", {"discount": "NOPE"}, START, "discount code NOPE is not valid on 2031-03-03"),
    ],
)
async def test_refusals_say_why(
    setup: str, fields: dict[str, str], start: object, reason: str
) -> None:
    state = sandbox()
    if setup == "full":
        state.book(1, START, {1: 6})
    if setup == "spent":
        state.add_voucher("SPENT", {10}, date(2031, 12, 31), used=True)
    async with provider_for(state) as provider:
        with pytest.raises(Refused) as caught:
            await provider.book_from_event({}, replace(request(**fields), start=start))
    assert caught.value.message == reason
    assert "reserveer" not in state.requests


async def test_a_valid_voucher_and_discount_are_sent_and_spent() -> None:
    state = sandbox()
    state.add_voucher("GOOD", {10}, date(2031, 12, 31))
    state.add_discount("TEST25", 25, {1})
    async with provider_for(state) as provider:
        await provider.book_from_event({}, request(voucher="GOOD", discount="TEST25"))
    assert state.vouchers["GOOD"].used


async def test_a_406_is_refused_with_recras_message_verbatim() -> None:
    state = sandbox()
    no_mail = replace(request(), attendees=(Person("Ann de Vries", ""),), organizer=None)
    async with provider_for(state) as provider:
        with pytest.raises(Refused) as caught:
            await provider.book_from_event({}, no_mail)
    assert caught.value.message == "Contactformulier ongeldig: contactpersoon.email1 is verplicht"


async def test_intake_needs_an_arrangement() -> None:
    async with provider_for(sandbox(), form=BookingForm()) as provider:
        with pytest.raises(Refused, match="no arrangement_id"):
            await provider.book_from_event({}, request())


async def test_per_line_bookings_answer_with_their_first_line() -> None:
    state = sandbox()
    form = BookingForm(arrangement_id=1, products={1: 2, 2: 2})
    async with provider_for(state, per_line=True, form=form) as provider:
        native_id = await provider.book_from_event({}, request())
        booked = await provider.get(native_id)
    assert booked is not None
    assert (booked.start, booked.title) == (START, "Escape room: Escape room, 60 minuten")
