"""Calendar edits written back to Agendize: moves and cancels, each safe to repeat.

Promises:

* Both re-read the appointment first. One already at the wanted time, or already cancelled
  (or declined), is returned as it is and nothing is sent: a replay after a crash is a no-op.
* A move is a ``PUT`` of ``start`` and ``end`` only, each ``{dateTime, timeZone}`` in the
  appointment's own zone (UTC where that zone's wall clock cannot name the instant). The API
  checks working hours and overlaps; its refusal becomes ``Refused`` carrying the API's own
  words, which the engine records as a conflict. A cancelled appointment is not moved, and a
  time with a fraction of a second is refused before anything is sent (it would come back
  different and the sync would go round in circles).
* A cancel sets ``status: "cancelled"``; with ``cancel_deletes`` it deletes the appointment
  instead, which only a business that wants no trace of it should choose.
* Every write sends ``silent`` as configured: by default the client is told nothing, since
  the person who moved the event is the business itself.
* Both return what the provider holds afterwards (the PUT's reply, read like a listing).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from syncd.errors import Refused
from syncd.model import Appointment, Status
from syncd.providers.ag_busy import wire_time
from syncd.providers.ag_client import AgendizeClient, ApiRefusal
from syncd.providers.ag_mapping import zone_named

#: The appointment's resource and its reading, as the provider holds them now.
Current = Callable[[str], Awaitable[tuple[dict[str, Any], Appointment]]]
#: A resource the API answered with, read as an appointment (``BadItem`` raised).
Read = Callable[[Any], Appointment]


@dataclass(slots=True)
class WriteBack:
    api: AgendizeClient
    current: Current
    read: Read
    zone: ZoneInfo
    silent: bool = True
    cancel_deletes: bool = False

    @property
    def backend(self) -> str:
        return self.api.backend

    def _params(self) -> dict[str, str]:
        return {"silent": "true" if self.silent else "false"}

    async def move(self, native_id: str, start: datetime, end: datetime) -> Appointment:
        raw, now = await self.current(native_id)
        if same_span(now, start, end):
            return now
        if now.cancelled:
            raise Refused(self.backend, f"appointment {native_id} is cancelled")
        if start.microsecond or end.microsecond:
            raise Refused(self.backend, "Agendize takes whole seconds only")
        if end.timestamp() <= start.timestamp():
            raise Refused(self.backend, "an appointment must end after it starts")
        zone = self._zone_of(raw)
        body = {"start": wire_time(start, zone), "end": wire_time(end, zone)}
        reply = await self._send("update", "PUT", native_id, body, f"move of {native_id}")
        return self.read(reply)

    async def cancel(self, native_id: str) -> Appointment:
        _, now = await self.current(native_id)
        if now.cancelled:
            return now
        if self.cancel_deletes:
            await self._send("delete", "DELETE", native_id, None, f"delete of {native_id}")
            return replace(now, status=Status.CANCELLED)
        body = {"status": "cancelled"}
        reply = await self._send("update", "PUT", native_id, body, f"cancel of {native_id}")
        return self.read(reply)

    async def _send(self, op: str, method: str, native_id: str, body: Any, what: str) -> Any:
        try:
            return await self.api.call(
                op, method, f"/{native_id}", params=self._params(), body=body
            )
        except ApiRefusal as err:
            raise Refused(self.backend, f"{what} refused: {err.reason or err.message}") from None

    def _zone_of(self, raw: dict[str, Any]) -> ZoneInfo:
        """The zone the appointment is kept in: its start's, else the company's."""
        start = raw.get("start")
        name = start.get("timeZone") if isinstance(start, dict) else None
        if isinstance(name, str) and name:
            try:
                return zone_named(name)
            except ValueError:
                pass
        return self.zone


def same_span(item: Appointment, start: datetime, end: datetime) -> bool:
    """Compared as instants: same-zone datetimes compare wall times and ignore ``fold``."""
    return item.start.timestamp() == start.timestamp() and item.end.timestamp() == end.timestamp()
