"""The OnlineAfspraken API methods the sandbox answers, as the API documents describe them.

Each handler takes the state and the request's parameters and returns the reply's objects
(XML text) and, for lists, its ``Stats``; a refusal raises ``ApiFailure(code, message)``. The
real failure codes are not public beyond ``B57`` (a missing parameter), so the others are
the sandbox's own; the client recognises them by the same table (``oa_envelope``):

    A01 unknown api_key    A02 wrong signature    A03 salt outside the 300 s window
    B57 missing parameter  B01 unknown method     B02 a value that cannot be read
    N01 no such object     R01 not bookable       R02 time taken      R03 not changeable
    R04 consumer mode cannot change an appointment              R05 too late to cancel

Business rules kept: editing needs ``BookingMode=customer``; without ``OverrideMode=1`` a new
or moved appointment must lie in opening hours or a ``CHAddBlock`` block and must not overlap
an active appointment of the same resource (or, without resources, of the agenda); a
customer-mode cancel closer than 24 hours to the start is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import TypeVar
from xml.sax.saxutils import escape

from syncd.sandbox.onlineafspraken_state import Booking, SandboxState

WALL = "%Y-%m-%d %H:%M:%S"
T = TypeVar("T")
MAX_LIMIT = 500


class ApiFailure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Answer:
    objects: list[str]
    stats: tuple[int, int, int, int] | None = None  # Limit, Offset, Records, TotalRecords


class Params:
    """The request's parameters; names are matched without case (the docs mix ``id``/``Id``)."""

    def __init__(self, raw: Mapping[str, str]) -> None:
        self._raw = {key.lower(): value for key, value in raw.items()}

    def get(self, key: str) -> str:
        return self._raw.get(key.lower(), "").strip()

    def require(self, key: str) -> str:
        if not self.get(key):
            raise ApiFailure("B57", f"missing required parameter {key}")
        return self.get(key)

    def ident(self, key: str) -> int:
        return _read(key, self.require(key), int)

    def number(self, key: str) -> int | None:
        return _read(key, self.get(key), int) if self.get(key) else None

    def wall(self, key: str) -> datetime | None:
        value = self.get(key)
        return _read(key, value, lambda v: datetime.strptime(v, WALL)) if value else None

    def day(self, key: str) -> date | None:
        return _read(key, self.get(key), date.fromisoformat) if self.get(key) else None

    def required_day(self, key: str) -> date:
        return _read(key, self.require(key), date.fromisoformat)

    def clock(self, key: str) -> time:
        return _read(key, self.require(key), lambda v: datetime.strptime(v, "%H:%M").time())


def _read(key: str, value: str, parse: Callable[[str], T]) -> T:
    try:
        return parse(value)
    except ValueError:
        raise ApiFailure("B02", f"parameter {key} has an unreadable value {value!r}") from None


def _element(tag: str, value: str) -> str:
    return f"<{tag}>{escape(value)}</{tag}>"


def render_booking(state: SandboxState, b: Booking) -> str:
    """The ``<Appointment>`` element, with any ``corrupt``/``break_xml`` damage applied."""
    customer = state.customers.get(b.customer_id)
    fields: dict[str, str] = {
        "Id": str(b.id),
        "Name": b.name,
        "Description": b.description,
        "StartTime": f"{b.start:{WALL}}",
        "FinishTime": f"{b.finish:{WALL}}",
        "BlockedTime": f"{b.finish:{WALL}}",
        "Capacity": "1",
        "AppointmentTypeId": str(b.type_id),
        "CustomerId": str(b.customer_id),
        "CustomerName": customer.full if customer else "",
        "Status": str(b.status),
        "Label": str(b.label),
        "CreateTime": f"{b.created:{WALL}}",
        "UpdateTime": f"{b.updated:{WALL}}" if b.updated else "",
    }
    parts = []
    for tag, value in fields.items():
        raw = b.overrides.get(tag, value)
        if raw is not None:
            parts.append(_element(tag, raw))
        if tag == "Label":
            parts.append(_resources(b, b.overrides.get("Resources", "")))
    body = "".join(parts)
    if b.broken_xml:
        body = body.replace(_element("Name", b.name), f"<Name>{b.name} & Zn</Name>")
    return f"<Appointment>{body}</Appointment>"


def _resources(b: Booking, raw: str | None) -> str:
    """Resources in the booking's shape; a non-empty ``raw`` is served as its inner XML."""
    if raw is None or raw:
        return "" if raw is None else f"<Resources>{raw}</Resources>"
    start, finish = f"{b.start:{WALL}}", f"{b.finish:{WALL}}"
    if b.resources_shape == "plain":
        items = [
            f"<Id>{r}</Id><StartTime>{start}</StartTime><FinishTime>{finish}</FinishTime>"
            for r in b.resource_ids
        ]
    else:
        items = [
            f"<ResourceId>{r}</ResourceId><AssignedStartTime>{start}</AssignedStartTime>"
            f"<AssignedFinishTime>{finish}</AssignedFinishTime>"
            for r in b.resource_ids
        ]
    if b.resources_shape == "flat" and len(items) == 1:
        return f"<Resources>{items[0]}</Resources>"
    return "<Resources>" + "".join(f"<Resource>{i}</Resource>" for i in items) + "</Resources>"


def booking_of(state: SandboxState, p: Params) -> Booking:
    """The appointment named by ``Id``; ``N01`` when there is none."""
    booking_id = p.ident("Id")
    if booking_id not in state.appointments:
        raise ApiFailure("N01", f"appointment {booking_id} not found")
    return state.appointments[booking_id]


def get_appointments(state: SandboxState, p: Params) -> Answer:
    agenda, customer = p.number("AgendaId"), p.number("CustomerId")
    type_id, resource = p.number("AppointmentTypeId"), p.number("ResourceId")
    first, last = p.day("StartDate"), p.day("EndDate")
    updated, created = p.wall("UpdatedAfter"), p.wall("CreatedAfter")
    cancelled = p.get("IncludeCancelled") == "1"

    def wanted(b: Booking) -> bool:
        return all(
            (
                agenda is None or b.agenda_id == agenda,
                customer is None or b.customer_id == customer,
                type_id is None or b.type_id == type_id,
                resource is None or resource in b.resource_ids,
                first is None or b.start.date() >= first,
                last is None or b.start.date() <= last,
                updated is None or (b.updated is not None and b.updated > updated),
                created is None or b.created > created,
                cancelled or b.active or b.status == 3,
                b.status != 3 or updated is not None,  # deletions show to change listings
            )
        )

    rows = sorted((b for b in state.appointments.values() if wanted(b)), key=_order)
    limit = min(p.number("Limit") or MAX_LIMIT, MAX_LIMIT)
    offset = p.number("Offset") or 0
    page = rows[offset : offset + limit]
    return Answer([render_booking(state, b) for b in page], (limit, offset, len(page), len(rows)))


def _order(b: Booking) -> tuple[datetime, int]:
    return b.start, b.id


def get_appointment(state: SandboxState, p: Params) -> Answer:
    return Answer([render_booking(state, booking_of(state, p))])


Rows = Callable[[SandboxState], Mapping[int, str]]
Handler = Callable[[SandboxState, Params], Answer]


def _named(kind: str, tag: str, rows: Rows) -> Handler:
    """A list method (``getResources``) or, with ``Id``, its single form (``getResource``)."""

    def handler(state: SandboxState, p: Params) -> Answer:
        names = rows(state)
        wanted = p.number("Id")
        if wanted is not None and wanted not in names:
            raise ApiFailure("N01", f"{kind} {wanted} not found")
        ids = [wanted] if wanted is not None else sorted(names)
        return Answer(
            [f"<{tag}>{_element('Id', str(i))}{_element('Name', names[i])}</{tag}>" for i in ids]
        )

    return handler


def _type_names(state: SandboxState) -> Mapping[int, str]:
    return {i: name for i, (name, _) in state.types.items()}


def get_customer(state: SandboxState, p: Params) -> Answer:
    customer_id = p.ident("Id")
    customer = state.customers.get(customer_id)
    if customer is None:
        raise ApiFailure("N01", f"customer {customer_id} not found")
    fields = {"Id": str(customer_id), "FirstName": customer.first}
    fields |= {"Insertions": customer.insertions, "LastName": customer.last, "Status": "1"}
    body = "".join(_element(tag, value) for tag, value in fields.items())
    return Answer([f"<Customer>{body}</Customer>"])


def _agendas(state: SandboxState) -> Mapping[int, str]:
    return state.agendas


def _resources_of(state: SandboxState) -> Mapping[int, str]:
    return state.resources


READ_METHODS: dict[str, Handler] = {
    "getAppointments": get_appointments,
    "getAppointment": get_appointment,
    "getCustomer": get_customer,
    "getAgendas": _named("agenda", "Agenda", _agendas),
    "getAgenda": _named("agenda", "Agenda", _agendas),
    "getResources": _named("resource", "Resource", _resources_of),
    "getResource": _named("resource", "Resource", _resources_of),
    "getAppointmentTypes": _named("appointment type", "AppointmentType", _type_names),
    "getAppointmentType": _named("appointment type", "AppointmentType", _type_names),
}
