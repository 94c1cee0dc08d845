"""Booking an intake event at Recras through the online-booking API, and finding it again.

The steps, each a refusal the person can read when it fails (``Refused``, shown as
``[not booked: reason]``):

1. The configured arrangement and products; ``persons: N`` in the event's description sets
   the amount of every product line configured with a non-zero amount.
2. ``beschikbaretijden`` for the event's day: its start must be one of the free start times
   (compared as instants). Asked first because it is free of side effects and says why.
3. Vouchers (``voucher: CODE[, CODE]``) via ``controleervoucher`` and a discount code
   (``discount: CODE``) via ``controleerkortingscode``, only when the event carries them:
   ``reserveer`` would refuse an invalid one anyway, with a less precise message.
4. ``reserveer`` with ``betaalmethode=factuur`` (payment afterwards: syncd cannot pay), the
   configured status and ``stuur_bevestiging_email``, and a contact form filled from the
   event by the configured mapping. A 406 is refused with Recras's message verbatim.

The mapping must send the booking reference (source ``reference``) into a form field that
ends up on the booking: ``find`` looks for it in the bookings listing after a crash.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from syncd.errors import BadItem, Refused
from syncd.intake.request import IntakeRequest
from syncd.providers.recras_client import RecrasClient

log = structlog.get_logger(__name__)

SOURCES = (
    "contact.name",
    "contact.first_name",
    "contact.last_name",
    "contact.email",
    "organizer.name",
    "organizer.email",
    "summary",
    "description",
    "location",
    "reference",
)
DEFAULT_CONTACT_FORM: Mapping[str, str] = {
    "contactpersoon.voornaam": "contact.first_name",
    "contactpersoon.achternaam": "contact.last_name",
    "contactpersoon.email1": "contact.email",
    "contactpersoon.telefoon1": "field:phone",
    "boeking.opmerkingen": "reference",
}
_CODES = re.compile(r"[\s,;]+")


def check_source(source: str) -> None:
    """Raise ``ValueError`` unless ``source`` is a known contact-form source."""
    if source in SOURCES or source.startswith(("field:", "text:")):
        return
    known = ", ".join(SOURCES)
    raise ValueError(f"unknown source {source!r}; use {known}, field:KEY or text:VALUE")


@dataclass(frozen=True, slots=True)
class BookingForm:
    """What an account books intake events as (``RecrasConfig``'s intake keys)."""

    arrangement_id: int | None = None
    products: Mapping[int, int] = field(default_factory=dict)
    persons_field: str = "persons"
    status: str = "reservering"
    send_confirmation: bool = False
    contact_form: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CONTACT_FORM))
    voucher_field: str = "voucher"
    discount_field: str = "discount"

    def __post_init__(self) -> None:
        for source in self.contact_form.values():
            check_source(source)


def fill(source: str, request: IntakeRequest) -> str:
    """The value ``source`` takes from ``request`` (``""`` when the event lacks it)."""
    contact = request.contact
    first, _, last = contact.name.partition(" ")
    organizer = request.organizer
    values = {
        "contact.name": contact.name,
        "contact.first_name": first if last else "",
        "contact.last_name": last or first,
        "contact.email": contact.email,
        "organizer.name": organizer.name if organizer else "",
        "organizer.email": organizer.email if organizer else "",
        "summary": request.summary,
        "description": request.description,
        "location": request.location,
        "reference": request.reference,
    }
    if source.startswith("field:"):
        return request.answer(source[6:])
    if source.startswith("text:"):
        return source[5:]
    return values[source]


def contact_form(form: BookingForm, request: IntakeRequest) -> dict[str, str | None]:
    """The contact form for ``request``; an empty value is sent as null, as Recras does."""
    return {key: fill(source, request) or None for key, source in form.contact_form.items()}


def products(form: BookingForm, request: IntakeRequest, backend: str) -> list[dict[str, int]]:
    persons = request.answer(form.persons_field) if form.persons_field else ""
    count = 0
    if persons:
        if not persons.isdigit() or int(persons) < 1:
            raise Refused(backend, f"{form.persons_field}: {persons[:20]!r} is not a number")
        count = int(persons)
    return [
        {"arrangementsregel_id": line, "aantal": count if count and amount else amount}
        for line, amount in form.products.items()
    ]


@dataclass(slots=True)
class Booker:
    client: RecrasClient
    form: BookingForm
    zone: ZoneInfo

    @property
    def backend(self) -> str:
        return self.client.backend

    async def book(self, request: IntakeRequest) -> int | None:
        """The new booking's id (``None`` when the key may not see it); ``Refused`` else."""
        arrangement = self.form.arrangement_id
        if arrangement is None or not self.form.products:
            raise Refused(self.backend, "no arrangement_id and products configured for intake")
        lines = products(self.form, request, self.backend)
        local = request.start.astimezone(self.zone)
        day = local.date().isoformat()
        order = {"arrangement_id": arrangement, "producten": lines}
        times = await self.client.post(
            "/api2/onlineboeking/beschikbaretijden", {**order, "datum": day}
        )
        if request.start not in self._instants(times):
            raise Refused(self.backend, f"no free start at {local:%Y-%m-%d %H:%M}")
        vouchers = [c for c in _CODES.split(request.answer(self.form.voucher_field)) if c]
        if vouchers:
            await self._check_vouchers(order, day, vouchers)
        code = request.answer(self.form.discount_field).strip()
        if code:
            query = {"kortingscode": code, "datum": day, "arrangement": str(arrangement)}
            found = await self.client.get("/api2/onlineboeking/controleerkortingscode", query)
            if not isinstance(found, dict):
                raise Refused(self.backend, f"discount code {code} is not valid on {day}")
        body: dict[str, Any] = {
            **order,
            "begin": local.isoformat(),
            "betaalmethode": "factuur",
            "status": self.form.status,
            "stuur_bevestiging_email": self.form.send_confirmation,
            "contactformulier": contact_form(self.form, request),
        }
        if code:
            body["kortingscode"] = code
        if vouchers:
            body["vouchers"] = vouchers
        answer = await self.client.post("/api2/onlineboeking/reserveer", body)
        made = answer.get("boeking_id") if isinstance(answer, dict) else None
        return made if isinstance(made, int) and not isinstance(made, bool) else None

    async def find(self, request: IntakeRequest) -> int | None:
        """The booking carrying ``request.reference`` in the bookings listing, or ``None``."""
        listing = await self.client.get("/api2/boekingen")
        if not isinstance(listing, list):
            raise BadItem("boekingen", "listing", "expected a list")
        for booking in listing:
            if isinstance(booking, dict) and request.reference in json.dumps(booking):
                found = booking.get("id")
                if isinstance(found, int):
                    return found
        return None

    async def _check_vouchers(self, order: dict[str, Any], day: str, codes: list[str]) -> None:
        path = "/api2/onlineboeking/controleervoucher"
        results = await self.client.post(path, {**order, "datum": day, "vouchers": codes})
        for code in codes:
            result = results.get(code) if isinstance(results, dict) else None
            if not isinstance(result, dict) or result.get("valid") is not True:
                reason = (
                    result.get("reason", "not valid") if isinstance(result, dict) else "unknown"
                )
                raise Refused(self.backend, f"voucher {code}: {reason}")

    def _instants(self, times: object) -> set[datetime]:
        if not isinstance(times, list):
            raise BadItem("beschikbaretijden", "answer", "expected a list of times")
        out = set()
        for value in times:
            try:
                moment = datetime.fromisoformat(str(value))
            except ValueError:
                raise BadItem("beschikbaretijden", "time", f"{str(value)[:40]!r}") from None
            out.add(moment if moment.tzinfo else moment.replace(tzinfo=self.zone))
        return out
