"""The sandbox's writing API methods: set/cancel/remove appointments, add/remove blocks.

See ``onlineafspraken_api`` for the codes and the business rules these keep. Every write
stamps ``UpdateTime`` from the sandbox clock, so ``UpdatedAfter`` finds it, exactly as a
change the business makes at its desk.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from syncd.sandbox.onlineafspraken_api import Answer, ApiFailure, Handler, Params, booking_of
from syncd.sandbox.onlineafspraken_state import Block, Booking, SandboxState

CANCEL_NOTICE = timedelta(hours=24)  # how late a customer may still cancel


def refusal(
    state: SandboxState,
    agenda: int,
    resources: list[int],
    type_id: int | None,
    span: tuple[datetime, datetime],
    ignore: int | None = None,
) -> ApiFailure | None:
    """Why ``span`` cannot be booked (outside bookable time, or taken), or ``None``."""
    start, finish = span
    if finish <= start or finish.date() != start.date():
        return ApiFailure("B02", "the end time must follow the start time on the same day")
    hours = state.opening.get(start.weekday())
    opened = hours is not None and hours[0] <= start.time() and finish.time() <= hours[1]
    if not opened and not any(
        _inside(b, agenda, resources, type_id, span) for b in state.blocks.values()
    ):
        return ApiFailure("R01", "the chosen time is not bookable")
    for other in state.appointments.values():
        if other.id == ignore or not other.active or other.agenda_id != agenda:
            continue
        shared = not resources or not other.resource_ids or set(resources) & set(other.resource_ids)
        if shared and other.start < finish and start < other.finish:
            return ApiFailure("R02", "there is no free time slot for this appointment")
    return None


def _inside(
    block: Block,
    agenda: int,
    resources: list[int],
    type_id: int | None,
    span: tuple[datetime, datetime],
) -> bool:
    start, finish = span
    return (
        block.agenda_id == agenda
        and block.day == start.date()
        and block.start <= start.time()
        and finish.time() <= block.end
        and (block.resource_id is None or block.resource_id in resources)
        and (block.type_id is None or block.type_id == type_id)
    )


def _span(p: Params) -> tuple[datetime, datetime | None]:
    day = p.required_day("Date")
    start = datetime.combine(day, p.clock("StartTime"))
    finish = datetime.combine(day, p.clock("EndTime")) if p.get("EndTime") else None
    return start, finish


def set_appointment(state: SandboxState, p: Params) -> Answer:
    """Create (no ``Id``) or edit (``Id``, customer mode) an appointment."""
    agenda = p.ident("AgendaId")
    if agenda not in state.agendas:
        raise ApiFailure("N01", f"agenda {agenda} not found")
    override = p.get("OverrideMode") == "1"
    if p.get("Id"):
        booking = _edit(state, p, agenda, override)
    else:
        booking = _create(state, p, agenda, override)
    state.touch(booking)
    body = f"<Id>{booking.id}</Id><Status>{booking.status}</Status>"
    return Answer([f"<Appointment>{body}</Appointment>"])


def _edit(state: SandboxState, p: Params, agenda: int, override: bool) -> Booking:
    booking = booking_of(state, p)
    if p.get("BookingMode") != "customer":
        raise ApiFailure("R04", "an existing appointment can only be changed in customer mode")
    if booking.agenda_id != agenda:
        raise ApiFailure("N01", f"appointment {booking.id} not found in agenda {agenda}")
    if not booking.active:
        raise ApiFailure("R03", f"appointment {booking.id} is cancelled and cannot be changed")
    start, finish = _span(p)
    finish = finish or start + (booking.finish - booking.start)
    if not override:
        refused = refusal(
            state, agenda, booking.resource_ids, booking.type_id, (start, finish), booking.id
        )
        if refused:
            raise refused
    booking.start, booking.finish = start, finish
    if p.get("Name"):
        booking.name = p.get("Name")
    if p.get("Description"):  # the documented quirk: notes are added to, not replaced
        booking.description = "\n".join(filter(None, (booking.description, p.get("Description"))))
    return booking


def _create(state: SandboxState, p: Params, agenda: int, override: bool) -> Booking:
    customer, type_id = p.ident("CustomerId"), p.ident("AppointmentTypeId")
    if customer not in state.customers or type_id not in state.types:
        raise ApiFailure("N01", f"customer {customer} or appointment type {type_id} not found")
    start, finish = _span(p)
    if p.get("BookingMode") != "customer" or finish is None:
        finish = start + timedelta(minutes=state.types[type_id][1])  # consumers get the type
    resource = p.number("ResourceId")
    resources = [resource] if resource else []
    if not override:
        if not resources:  # the backend picks a free resource
            free = [
                r
                for r in state.resources
                if not refusal(state, agenda, [r], type_id, (start, finish))
            ]
            resources = free[:1] or [min(state.resources)]
        refused = refusal(state, agenda, resources, type_id, (start, finish))
        if refused:
            raise refused
    return state.book(
        start,
        end=finish,
        agenda=agenda,
        type_id=type_id,
        customer=customer,
        resources=resources,
        name=p.get("Name"),
        description=p.get("Description"),
    )


def cancel_appointment(state: SandboxState, p: Params) -> Answer:
    booking = booking_of(state, p)
    if not booking.active:
        raise ApiFailure("R03", f"appointment {booking.id} is already cancelled")
    mode = p.get("Mode") or "customer"
    if mode == "customer" and booking.start - state.wall_now() < CANCEL_NOTICE:
        raise ApiFailure("R05", "too late to cancel this appointment")
    if p.get("DryRun") != "1":
        booking.label = 4
        booking.confirmations = p.get("Confirmations") if mode == "company" else None
        if p.get("Remarks"):
            booking.description = "\n".join(filter(None, (booking.description, p.get("Remarks"))))
        state.touch(booking)
    return Answer(
        [f"<Appointment><Id>{booking.id}</Id><Label>{booking.label}</Label></Appointment>"]
    )


def remove_appointment(state: SandboxState, p: Params) -> Answer:
    booking = booking_of(state, p)
    state.remove(booking.id)
    return Answer([])


def add_block(state: SandboxState, p: Params) -> Answer:
    agenda = p.ident("AgendaId")
    if agenda not in state.agendas:
        raise ApiFailure("N01", f"agenda {agenda} not found")
    day = p.required_day("Date")
    start, end = p.clock("StartTime"), p.clock("EndTime")
    if end <= start:
        raise ApiFailure("B02", "the end time must follow the start time")
    block = Block(
        state.new_id(), agenda, day, start, end, p.number("ResourceId"), p.number("AppointmentType")
    )
    state.blocks[block.id] = block
    return Answer([f"<Block><Id>{block.id}</Id></Block>"])


def remove_block(state: SandboxState, p: Params) -> Answer:
    block_id, agenda = p.ident("id"), p.ident("AgendaId")
    block = state.blocks.get(block_id)
    if block is None or block.agenda_id != agenda:
        raise ApiFailure("N01", f"block {block_id} not found")
    del state.blocks[block.id]
    return Answer([])


WRITE_METHODS: dict[str, Handler] = {
    "setAppointment": set_appointment,
    "cancelAppointment": cancel_appointment,
    "removeAppointment": remove_appointment,
    "CHAddBlock": add_block,
    "CHRemoveBlock": remove_block,
}
