"""Agendize appointment resources -> syncd values: zoned wall times, statuses, names, versions.

Times. ``start.dateTime`` is a naive RFC 3339 time and ``start.timeZone`` the IANA zone it is
in (the company's zone when absent). The instant is read the way RFC 5545 reads a TZID time
(``oa_mapping.localize``): a time in a repeated hour is its first occurrence, one in a skipped
hour moves forward by the gap; an end that would then fall before its start is the second
occurrence. The appointment keeps its own zone, so the calendar shows it in that zone. A time
that carries an offset after all is taken at its word.

Statuses. ``cancelled`` and ``declined`` -> cancelled; ``pending`` -> tentative; the rest
(``accepted``, ``completed``, ``noShow``, ``inProgress``) and a status replaced by a
``customStatus`` -> confirmed. An entry marked deleted (``"deleted": true``, or a status of
``deleted``) -> ``Deleted``; the document does not say how ``showDeleted`` marks them.

What is not for syncd: a personal appointment that syncd made (a busy block, marked in
``extendedProperties.private``) is never an appointment, and other personal appointments are
the business's own busy time, read as busy-only appointments when ``personal_busy`` is on.

Every field read is checked for its type and size; a bad one is a ``BadItem`` naming the item
and the field, never an exception out of a whole pull.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from syncd.errors import BadItem
from syncd.model import UTC, Appointment, Deleted, Status
from syncd.providers.base import ensure_items
from syncd.providers.oa_mapping import localize

log = structlog.get_logger(__name__)

MARK = "syncd"  # extendedProperties.private key on syncd's busy blocks: "busy:<account>:<hash>"
STATUSES = {
    "accepted": Status.CONFIRMED,
    "completed": Status.CONFIRMED,
    "noShow": Status.CONFIRMED,
    "inProgress": Status.CONFIRMED,
    "pending": Status.TENTATIVE,
    "cancelled": Status.CANCELLED,
    "declined": Status.CANCELLED,
}
MAX_NOTES = 65_535  # the API's own limit: anything longer is not an Agendize value
MAX_TEXT = 1_000
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+){0,2}")
_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")
Version = tuple[int, float]
Item = Appointment | Deleted | BadItem


@dataclass(frozen=True, slots=True)
class Reading:
    """How resources become appointments for one account."""

    account: str
    zone: ZoneInfo  # the company's zone: for times that name none
    personal_busy: bool = False
    busy_title: str = "Busy"


@lru_cache(maxsize=256)
def zone_named(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ``ValueError`` for anything else (paths, junk, unknown)."""
    if len(name) > 64 or not _ZONE_NAME.fullmatch(name):  # a long one is a file name too long
        raise ValueError(f"unknown time zone {name[:64]!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r}") from None


def zoned_time(value: Any, name: str, default: ZoneInfo) -> datetime:
    """``{dateTime, timeZone}`` as an aware time; ``BadField`` naming the part that is wrong."""
    if value is None:
        raise BadField(name, "missing")
    if not isinstance(value, dict):
        raise BadField(name, f"not an object but {type(value).__name__}")
    zone_text, text = value.get("timeZone"), value.get("dateTime")
    zone = default
    if zone_text not in (None, ""):
        if not isinstance(zone_text, str):
            raise BadField(f"{name}.timeZone", "not a string")
        try:
            zone = zone_named(zone_text)
        except ValueError as err:
            raise BadField(f"{name}.timeZone", str(err)) from None
    if not isinstance(text, str) or not text or len(text) > 40:
        raise BadField(f"{name}.dateTime", "missing or not a date-time string")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadField(f"{name}.dateTime", f"impossible date or time {text!r}") from None
    if moment.tzinfo is not None:
        return moment.astimezone(zone)
    return localize(moment, zone)


class BadField(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def own_block(raw: dict[str, Any]) -> str:
    """The marker syncd wrote on a busy block it made, or ``""``."""
    props = raw.get("extendedProperties")
    private = props.get("private") if isinstance(props, dict) else None
    mark = private.get(MARK) if isinstance(private, dict) else None
    return mark if isinstance(mark, str) and mark.startswith("busy:") else ""


def version(raw: dict[str, Any]) -> Version:
    """How far an appointment has come: its number of history entries, then the newest
    history time. Both only grow, so the larger version is the newer one."""
    history = raw.get("history")
    if not isinstance(history, list):
        return (0, 0.0)
    newest = 0.0
    for entry in history:
        if isinstance(entry, dict):
            try:
                newest = max(newest, zoned_time(entry.get("date"), "date", UTC).timestamp())
            except BadField:
                continue
    return (len(history), newest)


def read_listing(
    raws: list[Any], reading: Reading, seen: Callable[[str, Version], None]
) -> list[Item]:
    """A listing's entries read, those not for syncd left out, bad ones named in a warning and
    kept as ``BadItem``; ``seen`` hears the version of every entry with an id."""
    items: list[Item] = []
    for position, raw in enumerate(raws):
        item = read_item(raw, reading, f"#{position}")
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            seen(raw["id"], version(raw))
        if item is None:
            continue
        if isinstance(item, BadItem):
            log.warning(
                "agendize.bad_item", account=reading.account, item=item.item, field=item.field
            )
        items.append(item)
    return ensure_items(items)


def read_item(raw: Any, reading: Reading, position: str) -> Item | None:
    """One listed entry as syncd sees it, or ``None`` when it is not for syncd at all."""
    if not isinstance(raw, dict):
        return BadItem(position, "item", f"not an object but {type(raw).__name__}")
    native_id = raw.get("id")
    if not isinstance(native_id, str) or not _ID.fullmatch(native_id):
        shown = repr(native_id)[:40]
        return BadItem(position, "id", f"missing or not an id string: {shown}")
    if own_block(raw):
        return None
    if raw.get("deleted") is True or raw.get("status") == "deleted":
        return Deleted(reading.account, native_id)
    kind = raw.get("type", "normal")
    if kind not in ("normal", "personal"):
        return BadItem(native_id, "type", f"unknown type {str(kind)[:40]!r}")
    if kind == "personal" and not reading.personal_busy:
        return None
    try:
        return _appointment(raw, reading, native_id, kind == "personal")
    except BadField as err:
        return BadItem(native_id, err.field, err.message)


def _appointment(raw: dict[str, Any], reading: Reading, native_id: str, personal: bool) -> Item:
    status_text = raw.get("status")
    if status_text is None:
        status = Status.CONFIRMED  # a customStatus stands in for it
    elif not isinstance(status_text, str) or status_text not in STATUSES:
        raise BadField("status", f"unknown status {str(status_text)[:40]!r}")
    else:
        status = STATUSES[status_text]
    start = zoned_time(raw.get("start"), "start", reading.zone)
    end = zoned_time(raw.get("end"), "end", reading.zone)
    if end.astimezone(UTC) < start.astimezone(UTC):
        late = end.replace(fold=1).astimezone(UTC)  # the second run of a repeated hour
        if late < start.astimezone(UTC):
            raise BadField("end", "ends before it starts")
        end = late
    count, newest = version(raw)
    updated = datetime.fromtimestamp(newest, UTC) if count else None
    staff = _person(raw, "staff")
    if personal:
        extra = (("type", "personal"),)
        return Appointment(
            reading.account, native_id, start, end, title=reading.busy_title, status=status,
            staff=staff, updated=updated, extra=extra,
        )  # fmt: skip
    notes = raw.get("notes", "")
    if not isinstance(notes, str) or len(notes) > MAX_NOTES:
        raise BadField("notes", "not a string" if not isinstance(notes, str) else "too long")
    title = _text(raw, "service", "name") or _text(raw, "resource", "name")
    ids = [(key, _text(raw, key, "id")) for key in ("service", "staff", "resource")]
    return Appointment(
        account=reading.account,
        native_id=native_id,
        start=start,
        end=end,
        title=title,
        notes=notes,
        location=_location(raw),
        status=status,
        customer=_person(raw, "client"),
        staff=staff,
        resource=_text(raw, "resource", "name"),
        updated=updated,
        extra=tuple((f"{key}_id", value) for key, value in ids if value),
    )


def _text(raw: dict[str, Any], holder: str, key: str) -> str:
    """``raw[holder][key]`` as text; absent is empty, a wrong type or size is ``BadField``."""
    inner = raw.get(holder)
    if inner is None:
        return ""
    if not isinstance(inner, dict):
        raise BadField(holder, f"not an object but {type(inner).__name__}")
    value = inner.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise BadField(
            f"{holder}.{key}", "not a string" if not isinstance(value, str) else "too long"
        )
    return value.strip()


def _person(raw: dict[str, Any], holder: str) -> str:
    return " ".join(
        p for p in (_text(raw, holder, "firstName"), _text(raw, holder, "lastName")) if p
    )


def _location(raw: dict[str, Any]) -> str:
    """Only what says where: a custom place or a video link; the company address is implied."""
    kind = raw.get("location")
    if kind == "custom":
        custom = raw.get("locationCustom")
        return custom.strip()[:MAX_TEXT] if isinstance(custom, str) else ""
    if kind == "videoconference":
        return _text(raw, "onlineMeeting", "videoLink")
    return ""
