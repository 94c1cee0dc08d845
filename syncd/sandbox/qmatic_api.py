"""The Qmatic ``external/v1`` operations the sandbox answers, as plain functions over the state.

Each takes the state and the request's JSON (or query) and returns the answer's JSON; a refusal
raises ``Rejected(status, code, message)``, which the HTTP side (``qmatic``) turns into that
status with ``{"errorCode", "errorMessage"}``. The real error codes are not public; these are
the sandbox's own, and the client reads only the HTTP status and the message.

    400 request.invalid           a field missing or unreadable (the field is named)
    404 service/branch/reservation/appointment.notFound
    409 timeslot.unavailable      not a slot of the service, in the past, or fully booked
    410 reservation.expired       the 15-minute hold lapsed before the confirm

Appointments are served as ``{"id", "status", "startTime", "endTime", "service", "branch",
"customer", "notes", "created", "updated"}``, times ISO 8601 with their offset; damage set with
``QmaticState.corrupt`` is applied on the way out, never stored.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from syncd.sandbox.qmatic_records import HOLD, Appointment, Reservation
from syncd.sandbox.qmatic_state import QmaticState

PERSONAL_IDENTIFIER = re.compile(r"[A-Za-z0-9]{10,48}")


class Rejected(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def invalid(message: str) -> Rejected:
    return Rejected(400, "request.invalid", message)


def text(body: dict[str, Any], name: str, *, required: bool = True, limit: int = 255) -> str:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise invalid(f"{name} is required")
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise invalid(f"{name} must be text")
    value = str(value)
    if len(value) > limit:
        raise invalid(f"{name} is longer than {limit} characters")
    return value


def moment(body: dict[str, Any], name: str) -> datetime:
    raw = text(body, name)
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise invalid(f"{name} is not an ISO 8601 date and time: {raw!r}") from None
    if parsed.tzinfo is None:
        raise invalid(f"{name} needs a UTC offset: {raw!r}")
    return parsed


def stamp(value: datetime | float) -> str:
    if isinstance(value, float | int):
        value = datetime.fromtimestamp(value, UTC)
    return value.isoformat(timespec="seconds")


# -- catalogue ----------------------------------------------------------------------------------


def branch_json(state: QmaticState, branch_id: str) -> dict[str, Any]:
    branch = state.branch(branch_id)
    return {
        "id": branch.id,
        "name": branch.name,
        "address": {"streetName": branch.street, "city": branch.city, "country": "NL"},
    }


def services(state: QmaticState, language: str) -> list[dict[str, Any]]:
    """One entry per service and branch offering it, as ``GET /services`` lists them."""
    out = []
    for branch in state.branches.values():
        for service_id in sorted(branch.services):
            service = state.services[service_id]
            out.append(
                {
                    "branch": branch_json(state, branch.id),
                    "service": {
                        "id": service.id,
                        "name": service.title(language),
                        "config": {
                            "maxNumberOfReservations": 1,
                            "onlineBookable": service.online_bookable,
                        },
                    },
                }
            )
    return out


def branches(state: QmaticState, service_id: str) -> list[dict[str, Any]]:
    found = state.services.get(service_id)
    if found is None:
        raise Rejected(404, "service.notFound", f"no service {service_id}")
    return [
        {"branch": branch_json(state, b.id)}
        for b in state.branches.values()
        if service_id in b.services
    ]


def timeslots(state: QmaticState, service_id: str, query: dict[str, str]) -> list[dict[str, Any]]:
    if service_id not in state.services:
        raise Rejected(404, "service.notFound", f"no service {service_id}")
    branch_id = query.get("branchId", "")
    if branch_id not in state.branches:
        raise Rejected(404, "branch.notFound", f"no branch {branch_id!r}")
    if not query.get("numberOfReservations", "").isdigit():
        raise invalid("numberOfReservations is required")
    day = None
    if query.get("date"):  # a narrowing hint; without it the whole horizon is listed
        try:
            day = datetime.fromisoformat(query["date"]).date()
        except ValueError:
            raise invalid(f"date is not a date: {query['date']!r}") from None
    return [
        {"startTime": stamp(start), "endTime": stamp(end), "availableReservations": free}
        for start, end, free in state.slots(service_id, branch_id, day)
    ]


# -- reservations, appointments -----------------------------------------------------------------


def reserve(state: QmaticState, body: dict[str, Any]) -> dict[str, Any]:
    service_id, branch_id = text(body, "serviceId"), text(body, "branchId")
    start, end = moment(body, "startTime"), moment(body, "endTime")
    count = body.get("numberOfReservations")
    if count != 1:
        raise invalid("numberOfReservations must be 1 in the sandbox")
    if service_id not in state.services:
        raise Rejected(404, "service.notFound", f"no service {service_id}")
    if branch_id not in state.branches:
        raise Rejected(404, "branch.notFound", f"no branch {branch_id}")
    if not state.offered(service_id, branch_id, start, end):
        raise Rejected(
            409, "timeslot.unavailable", why_not(state, service_id, branch_id, start, end)
        )
    held = Reservation(
        id=str(uuid.uuid4()),
        service_id=service_id,
        branch_id=branch_id,
        start=start.astimezone(state.zone),
        end=end.astimezone(state.zone),
        expires=state.time() + HOLD.total_seconds(),
        notes=text(body, "notes", required=False, limit=2048),
    )
    state.reservations[held.id] = held
    return {
        "id": held.id,
        "serviceId": service_id,
        "branchId": branch_id,
        "startTime": stamp(held.start),
        "endTime": stamp(held.end),
        "expiresAt": stamp(held.expires),
    }


def why_not(
    state: QmaticState, service_id: str, branch_id: str, start: datetime, end: datetime
) -> str:
    """Why ``[start, end)`` is no free slot, in words a person can act on."""
    service, branch = state.service(service_id), state.branch(branch_id)
    local = start.astimezone(state.zone)
    if service_id not in branch.services:
        return f"{service.name} is not offered at {branch.name}"
    if local < state.now():
        return f"{local:%Y-%m-%d %H:%M} is in the past"
    hours = branch.opening.get(local.weekday())
    if hours is None:
        return f"{branch.name} is closed on {local:%A}s"
    if (end - start).total_seconds() != service.minutes * 60:
        return f"{service.name} takes {service.minutes} minutes"
    first = datetime.combine(local.date(), hours[0], state.zone)
    steps, rest = divmod((local - first).total_seconds(), service.minutes * 60)
    if (
        steps < 0
        or rest
        or local.time() >= hours[1]
        or end.astimezone(state.zone).time() > hours[1]
    ):
        return f"{local:%H:%M} is no timeslot of {service.name} at {branch.name}"
    return f"{local:%Y-%m-%d %H:%M} at {branch.name} is fully booked"


def _reservation(state: QmaticState, reservation_id: str) -> Reservation:
    state.drop_lapsed()
    held = state.reservations.get(reservation_id)
    if held is not None:
        return held
    if reservation_id in state.lapsed:
        raise Rejected(410, "reservation.expired", f"reservation {reservation_id} has expired")
    raise Rejected(404, "reservation.notFound", f"no reservation {reservation_id}")


def confirm(state: QmaticState, reservation_id: str, body: dict[str, Any]) -> dict[str, Any]:
    held = _reservation(state, reservation_id)
    pid = text(body, "personalIdentifier", limit=48)
    if not PERSONAL_IDENTIFIER.fullmatch(pid):
        raise invalid("personalIdentifier must be 10-48 letters and digits")
    customer = {"personalIdentifier": pid}
    for name in ("firstName", "lastName", "email"):
        customer[name] = text(body, name)
    for name in ("phoneNumber", "dateOfBirth"):
        if value := text(body, name, required=False):
            customer[name] = value
    del state.reservations[held.id]
    now = state.time()
    made = Appointment(
        id=str(uuid.uuid4()),
        service_id=held.service_id,
        branch_id=held.branch_id,
        start=held.start,
        end=held.end,
        customer=customer,
        notes=text(body, "notes", required=False, limit=2048) or held.notes,
        created=now,
        updated=now,
    )
    state.appointments[made.id] = made
    return appointment_json(state, made)


def reschedule(state: QmaticState, appointment_id: str, body: dict[str, Any]) -> dict[str, Any]:
    found = state.appointments.get(appointment_id)
    if found is None:
        raise Rejected(404, "appointment.notFound", f"no appointment {appointment_id}")
    held = _reservation(state, text(body, "reservationId"))
    del state.reservations[held.id]
    found.service_id, found.branch_id = held.service_id, held.branch_id
    found.start, found.end = held.start, held.end
    found.updated = state.time()
    return appointment_json(state, found)


def search(state: QmaticState, body: dict[str, Any]) -> list[dict[str, Any]]:
    customer = body.get("customer")
    if not isinstance(customer, dict):
        raise invalid("customer.personalIdentifier is required")
    pid = text(customer, "personalIdentifier", limit=48)
    return [appointment_json(state, a) for a in state.search(pid)]


def delete(state: QmaticState, appointment_id: str) -> None:
    if appointment_id not in state.appointments:
        raise Rejected(404, "appointment.notFound", f"no appointment {appointment_id}")
    del state.appointments[appointment_id]


def appointment_json(state: QmaticState, a: Appointment) -> dict[str, Any]:
    service = state.services[a.service_id]
    served: dict[str, Any] = {
        "id": a.id,
        "status": "CONFIRMED",
        "startTime": stamp(a.start),
        "endTime": stamp(a.end),
        "service": {"id": service.id, "name": service.name},
        "branch": branch_json(state, a.branch_id),
        "customer": dict(a.customer),
        "notes": a.notes,
        "created": stamp(a.created),
        "updated": stamp(a.updated),
    }
    served |= a.overrides
    return {k: v for k, v in served.items() if k not in a.dropped}
