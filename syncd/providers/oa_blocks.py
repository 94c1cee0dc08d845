"""Busy time and bookable time at OnlineAfspraken, and which times it can be told at all.

Busy blocks are placeholder appointments: ``setAppointment`` with ``OverrideMode=1`` (no
bookable-time or overlap checks) on a dedicated appointment type and customer, and
``BookingMode=customer``, the only mode that accepts an ``EndTime``. ``CHAddBlock`` is the
opposite: it ADDS bookable availability (for "opening hours" calendars); its id is seen only
in its reply, so the caller must store it at once.

Promises:

* ``add_busy`` is safe to repeat. Each placeholder carries a marker derived from the block's
  key in its description; before creating one, the day's placeholders are listed and one with
  the same marker and times is adopted, so a retry after a crash never leaves a duplicate.
* A block over midnight becomes one placeholder per local day; the id returned is their ids
  joined with ``+``. A day's last placeholder ends at 23:59, the latest ``hh:mm`` there is.
  Blocks are widened to whole minutes: busy time is covered, never shortened.
* ``remove_busy`` re-reads each placeholder and refuses to remove an appointment that is not
  of the busy type: ``removeAppointment`` hard-deletes whatever id it is given. A placeholder
  already gone counts as removed.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timedelta
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

from syncd.errors import BackendError, ConfigError, NotFound, Refused
from syncd.model import BusyBlock
from syncd.providers.oa_client import OnlineAfsprakenClient
from syncd.providers.oa_mapping import parse_wall, second_pass, text

MINUTE = timedelta(minutes=1)


def wall_span(
    start: datetime, end: datetime, zone: ZoneInfo, backend: str
) -> tuple[date, str, str]:
    """``Date``, ``StartTime`` and ``EndTime`` for an appointment, or ``Refused`` saying why
    the API's naive ``hh:mm`` of one day cannot carry it (it would come back different)."""
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    if end.timestamp() <= start.timestamp():
        raise Refused(backend, "an appointment must end after it starts")
    if second_pass(start, zone) or second_pass(end, zone):
        raise Refused(backend, "the second run of the repeated autumn hour has no wall time")
    if any(m.second or m.microsecond for m in (local_start, local_end)):
        raise Refused(backend, "OnlineAfspraken takes whole minutes only")
    if local_end.date() != local_start.date():
        raise Refused(backend, "an OnlineAfspraken appointment cannot pass midnight")
    return local_start.date(), f"{local_start:%H:%M}", f"{local_end:%H:%M}"


def day_segments(start: datetime, end: datetime, zone: ZoneInfo) -> list[tuple[date, str, str]]:
    """``(day, hh:mm, hh:mm)`` per local day covered by ``[start, end)``, widened to minutes."""
    begin = start.astimezone(zone).replace(second=0, microsecond=0, tzinfo=None)
    finish = end.astimezone(zone).replace(tzinfo=None)
    if finish.second or finish.microsecond:
        finish = finish.replace(second=0, microsecond=0) + MINUTE
    segments = []
    while begin < finish:
        midnight = datetime.combine(begin.date() + timedelta(days=1), time())
        stop = min(finish, midnight)
        last = "23:59" if stop == midnight else f"{stop:%H:%M}"
        segments.append((begin.date(), f"{begin:%H:%M}", last))
        begin = stop
    return segments


class Blocks:
    """Busy placeholders and opening-hours blocks of one account."""

    def __init__(
        self,
        api: OnlineAfsprakenClient,
        zone: ZoneInfo,
        appointment_type: str,
        customer: str,
        label: str,
    ) -> None:
        self.api = api
        self.zone = zone
        self.appointment_type = appointment_type
        self.customer = customer
        self.label = label

    def _require_config(self) -> None:
        missing = [
            f"{key}: required for busy blocks"
            for key, value in (
                ("busy_appointment_type", self.appointment_type),
                ("busy_customer", self.customer),
            )
            if not value
        ]
        if missing:
            raise ConfigError(missing, source=f"providers.{self.api.backend}")

    async def add_busy(self, filters: dict[str, str], block: BusyBlock) -> str:
        """Placeholders covering ``block`` in the scope's agenda (and resource, if scoped)."""
        self._require_config()
        marker = "syncd-busy:" + hashlib.sha256(block.key.encode()).hexdigest()[:16]
        where = {"AgendaId": filters["AgendaId"], "AppointmentTypeId": self.appointment_type}
        if "ResourceId" in filters:
            where["ResourceId"] = filters["ResourceId"]
        ids = []
        for day, begin, finish in day_segments(block.start, block.end, self.zone):
            found = await self._placeholder(where, day, begin, marker)
            ids.append(found or await self._create(where, day, (begin, finish), marker))
        return "+".join(ids)

    async def _placeholder(self, where: dict[str, str], day: date, begin: str, marker: str) -> str:
        query = {**where, "StartDate": day.isoformat(), "EndDate": day.isoformat()}
        listing = await self.api.list_all("getAppointments", query, "Appointment")
        wanted = datetime.combine(day, time.fromisoformat(begin))
        for _, element in listing.elements:
            try:
                starts = parse_wall(text(element, "StartTime"))
            except ValueError:
                continue
            if marker in text(element, "Description") and starts == wanted:
                return text(element, "Id")
        return ""

    async def _create(
        self, where: dict[str, str], day: date, times: tuple[str, str], marker: str
    ) -> str:
        params = {
            **where,
            "CustomerId": self.customer,
            "Date": day.isoformat(),
            "StartTime": times[0],
            "EndTime": times[1],
            "Name": self.label,
            "Description": marker,
            "BookingMode": "customer",
            "OverrideMode": "1",
            "RequiredFieldsCheck": "0",
        }
        reply = await self.api.call("setAppointment", params)
        return _object_id(reply.objects, "Appointment", self.api.backend)

    async def remove_busy(self, native_id: str) -> None:
        self._require_config()
        for part in native_id.split("+"):
            try:
                reply = await self.api.call("getAppointment", {"Id": part})
            except NotFound:
                continue
            kinds = {text(e, "AppointmentTypeId") for e in reply.objects}
            if kinds != {self.appointment_type}:
                raise Refused(self.api.backend, f"appointment {part} is not a busy placeholder")
            try:
                await self.api.call("removeAppointment", {"Id": part})
            except NotFound:
                continue

    async def add_opening(
        self, agenda: str, resource: str, appointment_type: str, start: datetime, end: datetime
    ) -> str:
        """One ``CHAddBlock`` for a span within one local day; returns the block id."""
        day, begin, finish = wall_span(start, end, self.zone, self.api.backend)
        params = {"AgendaId": agenda, "Date": day.isoformat(), "StartTime": begin}
        params["EndTime"] = finish
        if resource:
            params["ResourceId"] = resource
        if appointment_type:
            params["AppointmentType"] = appointment_type  # this call's name lacks the "Id"
        reply = await self.api.call("CHAddBlock", params)
        return _object_id(reply.objects, "Block", self.api.backend)

    async def remove_opening(self, agenda: str, block_id: str) -> None:
        try:
            await self.api.call("CHRemoveBlock", {"AgendaId": agenda, "id": block_id})
        except NotFound:
            return


def _object_id(objects: tuple[Element, ...], tag: str, backend: str) -> str:
    for element in objects:
        if element.tag == tag and text(element, "Id"):
            return text(element, "Id")
    raise BackendError(backend, f"the reply carries no {tag} id")
