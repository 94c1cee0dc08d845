"""Qmatic JSON -> syncd values, and intake events -> Qmatic customer details.

Appointments. The fields read are ``id``, ``startTime``, ``endTime`` (ISO 8601; Qmatic gives
an offset, and a time without one is read in the account's ``timezone``), ``status``,
``service`` (``id``, ``name``: the title), ``branch`` (``id``, ``name``, ``address``: the
location), ``customer`` (names, ``personalIdentifier``), ``notes`` and ``updated``. Anything
else is ignored. An item that cannot be read becomes a ``BadItem`` naming the appointment (or
its position, ``#N``, when it has no id) and the field, so the rest of the answer goes on.

``extra`` keeps what writing back needs and a calendar does not show: the ``service`` and
``branch`` ids (a move reserves the new slot for the same service at the same branch) and
the customer's ``personalIdentifier`` (the only key the API can find an appointment by).

Statuses. Missing, ``CONFIRMED``, ``CREATED``, ``BOOKED``, ``ARRIVED`` and ``SERVED`` are
confirmed; ``CANCELLED``, ``DELETED`` and ``NO_SHOW`` cancelled; any other value a ``BadItem``.

Customers. ``personalIdentifier`` must be 10-48 letters and digits: the intake reference is
used as it is when it fits, else a stable hash of it. Names and the address come from the
event's attendee (or organizer), or from ``name:``, ``first name:``, ``last name:``,
``email:``, ``phone:`` and ``date of birth:`` lines in its description, which win.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from syncd.errors import BadItem
from syncd.intake.request import IntakeRequest
from syncd.model import Appointment, Status

PERSONAL_IDENTIFIER = re.compile(r"[A-Za-z0-9]{10,48}")
_CONFIRMED = frozenset({"", "CONFIRMED", "CREATED", "BOOKED", "ARRIVED", "SERVED"})
_CANCELLED = frozenset({"CANCELLED", "CANCELED", "DELETED", "NO_SHOW"})
NOTES_LIMIT = 2048


@dataclass(frozen=True, slots=True)
class Reading:
    """How one account reads appointments: its name (the ``account``) and naive-time zone."""

    account: str
    zone: ZoneInfo


def read_appointment(data: Any, reading: Reading, position: str) -> Appointment | BadItem:
    """One appointment of an answer, or a ``BadItem`` saying what is wrong with it."""
    if not isinstance(data, dict):
        return BadItem(position, "appointment", f"expected an object, got {type(data).__name__}")
    native_id = data.get("id")
    if not isinstance(native_id, str | int) or isinstance(native_id, bool) or not str(native_id):
        return BadItem(position, "id", "missing or not text")
    item = str(native_id)
    try:
        start = _moment(data, "startTime", reading.zone)
        end = _moment(data, "endTime", reading.zone)
        status = _status(data.get("status"))
        service, branch, customer = (
            _object(data, key) for key in ("service", "branch", "customer")
        )
        updated = _moment(data, "updated", reading.zone) if data.get("updated") else None
        notes = data.get("notes") or ""
        if not isinstance(notes, str):
            raise _Wrong("notes", "not text")
        pid = _text(customer, "personalIdentifier", "customer")
        return Appointment(
            account=reading.account,
            native_id=item,
            start=start,
            end=end,
            title=_text(service, "name", "service"),
            notes=notes,
            location=_location(branch),
            status=status,
            customer=" ".join(
                p for p in (_text(customer, n, "customer") for n in ("firstName", "lastName")) if p
            ),
            updated=updated,
            extra=(
                ("branch", _text(branch, "id", "branch")),
                ("personalIdentifier", pid),
                ("service", _text(service, "id", "service")),
            ),
        )
    except _Wrong as wrong:
        return BadItem(item, wrong.field, wrong.message)
    except ValueError as err:  # end before start, from Appointment itself
        return BadItem(item, "endTime", str(err))


def extra(appointment: Appointment, key: str) -> str:
    return dict(appointment.extra).get(key, "")


class _Wrong(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _moment(data: Mapping[str, Any], key: str, zone: ZoneInfo) -> datetime:
    raw = data.get(key)
    if not isinstance(raw, str) or not raw:
        raise _Wrong(key, "missing")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise _Wrong(key, f"impossible date or time {raw!r}") from None
    if value.tzinfo is None:
        return value.replace(tzinfo=zone)
    return value.astimezone(zone)


def _status(raw: Any) -> Status:
    if raw is not None and not isinstance(raw, str):  # a list or an object is no status
        raise _Wrong("status", f"expected text, got {type(raw).__name__}")
    value = raw.upper() if isinstance(raw, str) else raw
    if value is None or value in _CONFIRMED:
        return Status.CONFIRMED
    if value in _CANCELLED:
        return Status.CANCELLED
    raise _Wrong("status", f"unknown status {raw!r}")


def _object(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Wrong(key, f"expected an object, got {type(value).__name__}")
    return value


def _text(data: Mapping[str, Any], key: str, owner: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise _Wrong(f"{owner}.{key}", "not text")
    return str(value).strip()


def _location(branch: Mapping[str, Any]) -> str:
    name = _text(branch, "name", "branch")
    address = branch.get("address")
    parts = [name]
    if isinstance(address, dict):
        parts += [_text(address, k, "branch.address") for k in ("streetName", "city")]
    return ", ".join(p for p in parts if p)


# -- intake --------------------------------------------------------------------------------------


def personal_identifier(reference: str) -> str:
    """The customer identifier of an intake booking: the reference when Qmatic accepts it as
    it is, else 32 hex digits of its hash (stable too, which is what recovery needs)."""
    if PERSONAL_IDENTIFIER.fullmatch(reference):
        return reference
    return "syncd" + hashlib.sha256(reference.encode()).hexdigest()[:32]


def customer(request: IntakeRequest, pid: str) -> dict[str, str]:
    """The confirm body's customer details; ``ValueError`` says what a person must add."""
    contact = request.contact
    email = request.answer("email") or contact.email
    name = request.answer("name") or contact.name
    first, last = request.answer("first name"), request.answer("last name")
    if not (first and last) and name:
        given, _, family = name.strip().rpartition(" ")
        first, last = first or given or family, last or family
    if not email:
        raise ValueError("no e-mail address: invite the customer, or add a line 'email: ...'")
    if not (first and last):
        raise ValueError("no customer name: give the attendee a name, or add 'name: ...'")
    details = {"personalIdentifier": pid, "firstName": first, "lastName": last, "email": email}
    for key, answer in (("phoneNumber", "phone"), ("dateOfBirth", "date of birth")):
        if value := request.answer(answer):
            details[key] = value
    if request.summary or request.description:
        details["notes"] = "\n\n".join(p for p in (request.summary, request.description) if p)[
            :NOTES_LIMIT
        ]
    for key, value in details.items():
        if len(value) > (NOTES_LIMIT if key == "notes" else 255):
            raise ValueError(f"{key} is longer than Qmatic accepts")
    return details
