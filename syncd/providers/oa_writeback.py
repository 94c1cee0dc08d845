"""Calendar edits written back to OnlineAfspraken: moves and cancels, each safe to repeat.

Promises:

* Both re-read the appointment first. One already at the wanted time, or already cancelled,
  is returned as it is and nothing is sent, so a replay after a crash is a no-op.
* A move is ``setAppointment`` with the appointment's ``Id`` and ``BookingMode=customer``
  (the only mode that edits an appointment), its own agenda, customer, appointment type and
  first resource: only the time changes. The API checks bookable time and overlaps; its
  refusal is raised as ``Refused`` (an ``ApiRefused`` carrying the API's code and message).
* A time the API's naive wall clock cannot carry (seconds, past midnight, the second run of
  the repeated autumn hour) is ``Refused`` before anything is sent: it would come back
  different and the sync would loop. A cancelled appointment is not moved (``Refused``).
* A cancel is ``cancelAppointment`` with ``Mode=company`` (no cancellation deadline) and the
  configured ``Confirmations`` (0, the default, sends the customer nothing) and ``Remarks``.
* Both re-read afterwards, so they return what the provider now holds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

from syncd.errors import ConfigError, Refused
from syncd.model import Appointment
from syncd.providers.oa_blocks import wall_span
from syncd.providers.oa_client import OnlineAfsprakenClient
from syncd.providers.oa_directory import Directory
from syncd.providers.oa_mapping import resource_ids, text

#: The appointment's element and its reading, as the provider holds them now.
Current = Callable[[str], Awaitable[tuple[Element, Appointment]]]
CONFIRMATIONS = {0: "none", 1: "e-mail", 2: "SMS", 3: "e-mail and SMS"}


@dataclass(slots=True)
class WriteBack:
    api: OnlineAfsprakenClient
    directory: Directory
    zone: ZoneInfo
    current: Current
    confirmations: int = 0
    remarks: str = ""

    def __post_init__(self) -> None:
        if self.confirmations not in CONFIRMATIONS:
            raise ConfigError(
                [f"confirmations: must be 0-3, got {self.confirmations}"],
                f"providers.{self.api.backend}",
            )

    async def move(self, native_id: str, start: datetime, end: datetime) -> Appointment:
        element, now = await self.current(native_id)
        if same_span(now, start, end):
            return now
        if now.cancelled:
            raise Refused(self.api.backend, f"appointment {native_id} is cancelled")
        day, begin, finish = wall_span(start, end, self.zone, self.api.backend)
        params = {
            "Id": native_id,
            "AgendaId": await self.directory.agenda_of(
                native_id, element, now.start.astimezone(self.zone).date()
            ),
            "CustomerId": text(element, "CustomerId"),
            "AppointmentTypeId": text(element, "AppointmentTypeId"),
            "Date": day.isoformat(),
            "StartTime": begin,
            "EndTime": finish,
            "BookingMode": "customer",
        }
        if resources := resource_ids(element):
            params["ResourceId"] = resources[0]
        await self.api.call("setAppointment", params)
        return (await self.current(native_id))[1]

    async def cancel(self, native_id: str) -> Appointment:
        _, now = await self.current(native_id)
        if now.cancelled:
            return now
        params = {"Id": native_id, "Mode": "company", "Confirmations": str(self.confirmations)}
        if self.remarks:
            params["Remarks"] = self.remarks
        await self.api.call("cancelAppointment", params)
        return (await self.current(native_id))[1]


def same_span(item: Appointment, start: datetime, end: datetime) -> bool:
    """Compared as instants: same-zone datetimes compare wall times and ignore ``fold``."""
    return item.start.timestamp() == start.timestamp() and item.end.timestamp() == end.timestamp()
