"""The online-booking rules of the Recras sandbox: free days and times, codes, ``reserveer``.

Pure functions over ``RecrasState``. Everything the API would answer 406 for raises
``Rejected`` with a message in the instance's language; the HTTP side sends it verbatim.
The cases follow the API document: an arrangement that may not be booked online, lines not
of the arrangement, a payment method other than ``factuur`` (the sandbox has no Mollie),
a start that is not one of the arrangement's start times, too soon or too far ahead
(``onlineboeking_minimaal_vooruit``/``maximaal_vooruit``), a contact form with unknown or
missing fields or a malformed e-mail address, an invalid discount code or voucher, and an
overbooking of any line's capacity.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from syncd.sandbox.recras_state import (
    AMSTERDAM,
    CONTACT_FIELDS,
    Arrangement,
    Booking,
    RecrasState,
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
BOOKABLE_STATUSES = ("informatie", "optie", "reservering", "definitief")


class Rejected(Exception):
    """Invalid input: the API answers 406 with this message."""


@dataclass(frozen=True, slots=True)
class Order:
    """What a request asks for: an online arrangement and positive amounts per line."""

    arrangement: Arrangement
    amounts: dict[int, int]


def order(state: RecrasState, body: Mapping[str, Any]) -> Order:
    arrangement = state.arrangements.get(_int(body.get("arrangement_id"), "arrangement_id"))
    if arrangement is None or not arrangement.online:
        raise Rejected(f"Arrangement {body.get('arrangement_id')} is niet online te boeken")
    products = body.get("producten")
    if not isinstance(products, list) or not products:
        raise Rejected("producten ontbreekt of is leeg")
    amounts: dict[int, int] = {}
    for product in products:
        if not isinstance(product, dict):
            raise Rejected("producten bevat een ongeldig element")
        line_id = _int(product.get("arrangementsregel_id"), "arrangementsregel_id")
        amount = _int(product.get("aantal"), "aantal")
        if arrangement.line(line_id) is None:
            raise Rejected(
                f"Arrangementsregel {line_id} hoort niet bij arrangement {arrangement.id}"
            )
        if amount < 0:
            raise Rejected(f"Ongeldig aantal voor arrangementsregel {line_id}")
        if amount:
            amounts[line_id] = amount
    return Order(arrangement, amounts)


def starts(arrangement: Arrangement, day: date) -> list[datetime]:
    """Every start time of ``day`` the arrangement offers, regardless of capacity."""
    moment = datetime.combine(day, arrangement.first_start, AMSTERDAM)
    last = datetime.combine(day, arrangement.last_start, AMSTERDAM)
    out = []
    while moment <= last:
        out.append(moment)
        moment += timedelta(minutes=arrangement.step)
    return out


def overbooked(state: RecrasState, wanted: Order, start: datetime, skip: int = 0) -> str:
    """The name of the first line ``wanted`` would overbook at ``start``, or ``""``."""
    for line_id, amount in wanted.amounts.items():
        line = wanted.arrangement.line(line_id)
        assert line is not None
        begin = start + timedelta(minutes=line.offset)
        end = begin + timedelta(minutes=line.minutes)
        taken = sum(
            booked.amount
            for booking in _active(state, skip)
            for booked in booking.lines
            if booked.product_id == line.product_id and booked.begin < end and begin < booked.end
        )
        if taken + amount > line.capacity:
            return line.name
    return ""


def free_times(state: RecrasState, wanted: Order, day: date) -> list[datetime]:
    now = state.now()
    a = wanted.arrangement
    return [
        start
        for start in starts(a, day)
        if now + a.min_ahead <= start <= now + a.max_ahead and not overbooked(state, wanted, start)
    ]


def free_days(state: RecrasState, wanted: Order, first: date, last: date) -> list[date]:
    days: list[date] = []
    day = first
    while day <= last and len(days) < 400:
        if free_times(state, wanted, day):
            days.append(day)
        day += timedelta(days=1)
    return days


def check_vouchers(
    state: RecrasState, wanted: Order, codes: list[str], day: date
) -> dict[str, dict[str, Any]]:
    products = {wanted.arrangement.line(i).product_id for i in wanted.amounts}  # type: ignore[union-attr]
    out: dict[str, dict[str, Any]] = {}
    for code in codes:
        voucher = state.vouchers.get(code)
        reason = ""
        if voucher is None:
            reason = "ERR_VOUCHER_INVALID"
        elif voucher.expires < day:
            reason = "ERR_VOUCHER_EXPIRED"
        elif voucher.used:
            reason = "ERR_VOUCHER_USED"
        elif not voucher.products & products:
            reason = "ERR_VOUCHER_INVALID_PRODUCTS"
        if reason:
            out[code] = {"valid": False, "reason": reason}
            continue
        assert voucher is not None
        processed = [
            {"regel_id": line_id, "product_id": line.product_id, "prijs_per_stuk": 20, "aantal": n}
            for line_id, n in wanted.amounts.items()
            if (line := wanted.arrangement.line(line_id)) and line.product_id in voucher.products
        ]
        out[code] = {"valid": True, "processed": processed}
    return out


def check_discount(
    state: RecrasState, code: str, day: date, arrangement: int
) -> dict[str, Any] | None:
    found = state.discounts.get(code)
    if found is None or arrangement not in found.arrangements:
        return None
    if not found.valid_from <= day <= found.valid_until:
        return None
    return {"naam": found.name, "percentage": found.percentage}


def reserve(state: RecrasState, body: Mapping[str, Any]) -> Booking:
    """Make an online booking, or raise ``Rejected`` naming the first thing wrong."""
    wanted = order(state, body)
    if body.get("betaalmethode") != "factuur":
        raise Rejected(f"Ongeldige betaalmethode: {body.get('betaalmethode')!r}")
    status = body.get("status", "reservering")
    if status not in BOOKABLE_STATUSES:
        raise Rejected(f"Ongeldige status: {status!r}")
    start = _start(body.get("begin"))
    a = wanted.arrangement
    if start not in starts(a, start.date()):
        raise Rejected(f"Ongeldig startmoment: {body.get('begin')}")
    now = state.now()
    if start < now + a.min_ahead:
        raise Rejected("De boeking wordt te kort van tevoren gemaakt")
    if start > now + a.max_ahead:
        raise Rejected("De boeking wordt te ver van tevoren gemaakt")
    contact = _contact_form(a, body.get("contactformulier"))
    code = body.get("kortingscode")
    if code and check_discount(state, str(code), start.date(), a.id) is None:
        raise Rejected(f"Ongeldige kortingscode: {code}")
    vouchers = [str(v) for v in body.get("vouchers") or []]
    for voucher, result in check_vouchers(state, wanted, vouchers, start.date()).items():
        if not result["valid"]:
            raise Rejected(f"Ongeldige tegoedbon {voucher}: {result['reason']}")
    full = overbooked(state, wanted, start)
    if full:
        raise Rejected(f"Overboeking: {full} is vol op {start:%Y-%m-%d %H:%M}")
    for voucher in vouchers:
        state.vouchers[voucher].used = True
    return state.book(a.id, start, wanted.amounts, status=str(status), contact=contact)


def _contact_form(arrangement: Arrangement, form: object) -> dict[str, Any]:
    if not isinstance(form, dict):
        raise Rejected("Contactformulier ontbreekt")
    unknown = sorted(set(form) - set(CONTACT_FIELDS))
    if unknown:
        raise Rejected(f"Contactformulier ongeldig: onbekend veld {unknown[0]}")
    for name in arrangement.required:
        if not str(form.get(name) or "").strip():
            raise Rejected(f"Contactformulier ongeldig: {name} is verplicht")
    email = form.get("contactpersoon.email1")
    if email and not _EMAIL.match(str(email)):
        raise Rejected("Contactformulier ongeldig: contactpersoon.email1 is geen e-mailadres")
    return dict(form)


def _active(state: RecrasState, skip: int) -> list[Booking]:
    return [b for b in state.bookings.values() if b.id != skip and b.status != "geannuleerd"]


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Rejected(f"{name} moet een geheel getal zijn")
    return value


def _start(value: object) -> datetime:
    try:
        start = datetime.fromisoformat(str(value))
    except ValueError:
        raise Rejected(f"Ongeldig startmoment: {value}") from None
    if start.tzinfo is None:
        raise Rejected(f"Ongeldig startmoment (geen tijdzone): {value}")
    return start.astimezone(AMSTERDAM)
