"""Booking at Qmatic: a free timeslot, a 15-minute reservation, then confirm or reschedule.

Qmatic books in two steps. ``POST /reservations`` holds a slot of a service at a branch for
15 minutes; ``PUT /reservations/{id}`` with the customer's details turns the hold into an
appointment, and ``PUT /appointments/{id}/reschedule`` moves an existing appointment onto it.
A hold that is never used lapses by itself, so a crash after reserving leaves nothing behind
and needs no clean-up.

Promises:

* The slot is looked up first (``GET /services/{id}/timeslots`` for that day) so a refusal
  says why in words a person can act on -- the free times of that day, or that there are
  none -- instead of a bare "409". A slot is matched by its start: its end is the service's
  length, whatever the event said.
* Every "no" of the API (slot gone between the lookup and the hold, invalid customer details)
  is ``Refused`` with the API's message; a hold that lapsed before the confirm is a
  ``TransientError`` (doing it again can work).
* Nothing here repeats a write. Finding out whether a booking happened after a crash is the
  caller's job (``QmaticProvider.find_booking`` searches the customer identifier).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from syncd.errors import Refused
from syncd.providers.qmatic_client import QmaticClient

SHOWN_FREE = 6  # free times of the day named in a refusal


@dataclass(frozen=True, slots=True)
class Slot:
    start: datetime
    end: datetime


@dataclass(slots=True)
class Booking:
    """The booking calls of one account; ``zone`` is where a day begins and ends."""

    api: QmaticClient
    zone: ZoneInfo

    async def free_slot(self, service: str, branch: str, start: datetime) -> Slot:
        """The free slot of ``service`` at ``branch`` starting at ``start``, or ``Refused``."""
        day = start.astimezone(self.zone).date()
        answer = await self.api.call(
            "GET",
            f"/services/{service}/timeslots",
            "timeslots",
            params={"branchId": branch, "numberOfReservations": "1", "date": day.isoformat()},
        )
        free: list[Slot] = []
        for item in answer if isinstance(answer, list) else []:
            slot = _slot(item, self.zone)
            if slot is not None and slot.start.astimezone(self.zone).date() == day:
                free.append(slot)
        for slot in free:
            if slot.start == start:
                return slot
        local = start.astimezone(self.zone)
        if not free:
            raise Refused(self.api.backend, f"no free time on {local:%Y-%m-%d} at this branch")
        times = ", ".join(f"{s.start.astimezone(self.zone):%H:%M}" for s in free[:SHOWN_FREE])
        more = ", ..." if len(free) > SHOWN_FREE else ""
        raise Refused(
            self.api.backend,
            f"{local:%Y-%m-%d %H:%M} is not a free timeslot; free that day: {times}{more}",
        )

    async def reserve(self, service: str, branch: str, slot: Slot, notes: str = "") -> str:
        """Hold ``slot`` for 15 minutes; the reservation's id."""
        body: dict[str, Any] = {
            "serviceId": service,
            "branchId": branch,
            "startTime": slot.start.isoformat(),
            "endTime": slot.end.isoformat(),
            "numberOfReservations": 1,
        }
        if notes:
            body["notes"] = notes
        answer = await self.api.call("POST", "/reservations", "reserve", body=body)
        reservation = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(reservation, str) or not reservation:
            raise Refused(self.api.backend, "reserve: the answer holds no reservation id")
        return reservation

    async def confirm(self, reservation: str, customer: dict[str, str]) -> Any:
        """Turn the hold into an appointment for ``customer``; the appointment's JSON."""
        return await self.api.call("PUT", f"/reservations/{reservation}", "confirm", body=customer)

    async def reschedule(self, appointment: str, reservation: str) -> Any:
        """Move ``appointment`` onto the held slot; the appointment's JSON."""
        return await self.api.call(
            "PUT",
            f"/appointments/{appointment}/reschedule",
            "reschedule",
            body={"reservationId": reservation},
        )


def _slot(item: Any, zone: ZoneInfo) -> Slot | None:
    """A timeslot of the answer; one that cannot be read is skipped (it cannot be booked)."""
    if not isinstance(item, dict):
        return None
    try:
        start = datetime.fromisoformat(str(item["startTime"]))
        end = datetime.fromisoformat(str(item["endTime"]))
    except (KeyError, ValueError):
        return None
    if start.tzinfo is None:
        start, end = start.replace(tzinfo=zone), end.replace(tzinfo=zone)
    return Slot(start, end)
