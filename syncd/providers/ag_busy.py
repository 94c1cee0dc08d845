"""Busy blocks at Agendize: personal appointments on a staff member, marked as syncd's own.

A block is a ``type: "personal"`` appointment (the API requires ``end`` and ``staff.id`` for
those), inserted with ``force`` (no working-hours check: busy time is busy whatever the
opening hours say) and ``silent`` (nobody is told). Its ``extendedProperties.private`` holds
``syncd = "busy:<account>:<hash of the block's key and times>"``. That mark is the whole
point:

* pulls recognise syncd's own blocks by it and never read them back as busy time or as
  appointments (``ag_mapping.read_item``);
* ``find`` lists the staff member's personal appointments around the block and returns those
  with the block's mark, so an add interrupted between the provider's answer and syncd's
  record is adopted on resume instead of made twice (``syncd.busy.apply``);
* ``remove`` re-reads the appointment first and refuses to delete one without a mark: a
  client's booking is never deleted as a busy block.

Times are sent in the company's zone, widened to whole minutes (busy time is covered, never
shortened); a time in the second run of a repeated autumn hour, which a naive wall time cannot
name, is sent in UTC instead.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from syncd.errors import BackendError, NotFound, Refused
from syncd.model import UTC, BusyBlock
from syncd.providers.ag_client import AgendizeClient
from syncd.providers.ag_mapping import MARK, own_block
from syncd.providers.oa_mapping import second_pass

MINUTE = timedelta(minutes=1)


def wire_time(moment: datetime, zone: ZoneInfo) -> dict[str, str]:
    """``{dateTime, timeZone}`` naming ``moment`` exactly: in ``zone``, or in UTC where the
    zone's wall clock is ambiguous."""
    if second_pass(moment, zone):
        zone = ZoneInfo("UTC")
    wall = moment.astimezone(zone).replace(tzinfo=None)
    return {"dateTime": f"{wall:%Y-%m-%dT%H:%M:%S}", "timeZone": zone.key}


def gmt(moment: datetime) -> str:
    """RFC 3339 in GMT, as the listing's ``startDate``/``endDate`` want it."""
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def whole_minutes(block: BusyBlock) -> tuple[datetime, datetime]:
    start = block.start.astimezone(UTC).replace(second=0, microsecond=0)
    end = block.end.astimezone(UTC)
    if end.second or end.microsecond:
        end = end.replace(second=0, microsecond=0) + MINUTE
    return start, end


class Blocks:
    """The busy blocks of one account; ``staff`` picks the staff member per call."""

    def __init__(self, api: AgendizeClient, account: str, zone: ZoneInfo) -> None:
        self.api = api
        self.account = account
        self.zone = zone

    def mark(self, block: BusyBlock) -> str:
        start, end = whole_minutes(block)
        basis = f"{block.key}\x1f{start.isoformat()}\x1f{end.isoformat()}"
        return f"busy:{self.account}:{hashlib.sha256(basis.encode()).hexdigest()[:24]}"

    async def add(self, staff: str, block: BusyBlock) -> str:
        start, end = whole_minutes(block)
        body = {
            "type": "personal",
            "staff": {"id": staff},
            "start": wire_time(start, self.zone),
            "end": wire_time(end, self.zone),
            "notes": block.label,
            "extendedProperties": {"private": {MARK: self.mark(block)}},
        }
        params = {"force": "true", "silent": "true", "personalAppointmentSync": "false"}
        reply = await self.api.call("insert", "POST", params=params, body=body)
        native_id = reply.get("id") if isinstance(reply, dict) else None
        if not isinstance(native_id, str) or not native_id:
            raise BackendError(self.account, "insert: the reply carries no appointment id")
        return native_id

    async def find(self, staff: str, block: BusyBlock) -> list[str]:
        """Ids of personal appointments on ``staff`` that carry this block's mark."""
        start, end = whole_minutes(block)
        params = {
            "staffId": staff,
            "personalAppointments": "true",
            "levelDetail": "full",
            "startDate": gmt(start - timedelta(days=1)),
            "endDate": gmt(end + timedelta(days=1)),
        }
        listing = await self.api.list_all(params)
        wanted = self.mark(block)
        return [str(raw["id"]) for raw in listing.items if _marked(raw) == wanted]

    async def remove(self, native_id: str) -> None:
        try:
            raw = await self.api.call("get", "GET", f"/{native_id}", params={"levelDetail": "full"})
        except NotFound:
            return
        if not _marked(raw):
            raise Refused(self.account, f"appointment {native_id} is not a busy block syncd made")
        try:
            await self.api.call("delete", "DELETE", f"/{native_id}", params={"silent": "true"})
        except NotFound:
            return


def _marked(raw: Any) -> str:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        return ""
    return own_block(raw) if raw.get("deleted") is not True else ""
