"""OnlineAfspraken appointment elements -> syncd values: local times, statuses, names, titles.

Times. The API speaks wall-clock time of its zone (Europe/Amsterdam) without an offset. A wall
time is read the way RFC 5545 (section 3.3.5) reads a TZID time, so that syncd, the calendar
and every client that later reads our VEVENT agree on the instant:

* an ambiguous time (the repeated autumn hour) is its FIRST occurrence (summer time, fold=0);
* a nonexistent time (the skipped spring hour) takes the offset from before the gap, so
  02:30 on the last Sunday of March is 03:30 summer time.

One refinement: an end that the first-occurrence rule would put before its start (02:40 until
02:10 on the autumn day) is read as the second occurrence, and is returned in UTC, because a
TZID wall time cannot name the second occurrence at all.

Statuses. ``Status`` 1 enabled, 2 disabled, 3 deleted; ``Label`` 1 pending, 2 approved,
3 finished, 4 cancelled, 5 in progress. Deleted -> ``Deleted``; disabled or cancelled ->
cancelled (a disabled appointment will not take place); pending -> tentative; the rest ->
confirmed. A missing or empty ``Label`` means confirmed (accounts without labels send none);
any other unknown value is a ``BadItem``.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

from syncd.errors import BadItem
from syncd.model import UTC, Appointment, Deleted, Status

_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S")
_PLAIN_WALL = re.compile(r"\d{4}-\d\d-\d\d(?: \d\d:\d\d(?::\d\d)?|T\d\d:\d\d:\d\d)")
_LABELS = {"1": Status.TENTATIVE, "2": Status.CONFIRMED, "3": Status.CONFIRMED}
_LABELS |= {"4": Status.CANCELLED, "5": Status.CONFIRMED, "": Status.CONFIRMED}
_STATUSES = frozenset({"1", "2", "3"})
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]")


def parse_wall(text: str) -> datetime:
    """A naive wall time from the API's ``yyyy-mm-dd hh:mm[:ss]``; ``ValueError`` names why."""
    text = text.strip()
    if not text:
        raise ValueError("empty")
    if _PLAIN_WALL.fullmatch(text):  # the usual shape: parsed ~20x faster than by strptime
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"impossible date or time {text!r}") from None
    for fmt in _FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(f"impossible date or time {text!r}")


def localize(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant a wall time names under the RFC 5545 rule above, in ``zone``."""
    aware = wall.replace(tzinfo=zone, fold=0)
    # The round trip moves a nonexistent (gap) time to the real wall time of that instant.
    return aware.astimezone(UTC).astimezone(zone)


def to_wall(moment: datetime, zone: ZoneInfo) -> datetime:
    """``moment`` as the naive wall time the API expects; see ``second_pass`` for the catch."""
    return moment.astimezone(zone).replace(tzinfo=None, fold=0)


def second_pass(moment: datetime, zone: ZoneInfo) -> bool:
    """True when ``moment`` falls in the second run of a repeated hour, which the API's naive
    wall times cannot tell from the first run: writing it would come back an hour early."""
    local = moment.astimezone(zone)
    return local.fold == 1 and local.utcoffset() != local.replace(fold=0).utcoffset()


def repeated_hour(day: date, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
    """The naive wall-clock span that occurs twice on ``day`` (autumn), or ``None``."""
    step = timedelta(minutes=15)  # every zone in use changes its offset on a quarter hour
    wall = datetime(day.year, day.month, day.day)
    doubled = []
    for _ in range(24 * 4):
        first = wall.replace(tzinfo=zone, fold=0).utcoffset()
        second = wall.replace(tzinfo=zone, fold=1).utcoffset()
        if first is not None and second is not None and second < first:
            doubled.append(wall)  # fold=1 has the smaller offset only in a repeated span
        wall += step
    return (doubled[0], doubled[-1] + step) if doubled else None


def read_status(status: str, label: str) -> Status | None:
    """The calendar status, ``None`` for deleted; ``ValueError`` for a code we do not know."""
    if status not in _STATUSES:
        raise ValueError(f"unknown Status {status!r}")
    if status == "3":
        return None
    if label not in _LABELS:
        raise ValueError(f"unknown Label {label!r}")
    return Status.CANCELLED if status == "2" else _LABELS[label]


def resource_ids(element: Element) -> tuple[str, ...]:
    """Resource ids from either shape seen in the wild, one item or several.

    ``<Resource><ResourceId>`` (with ``AssignedStartTime``) and ``<Resource><Id>`` (with
    ``StartTime``); a single item may also sit directly under ``<Resources>``.
    """
    holder = element.find("Resources")
    if holder is None:
        return ()
    items = [holder] if _resource_id(holder) else list(holder)
    found = (_resource_id(item) for item in items)
    return tuple(sorted({rid for rid in found if rid}, key=lambda r: (len(r), r)))


def _resource_id(item: Element) -> str:
    return (item.findtext("ResourceId") or item.findtext("Id") or "").strip()


def text(element: Element, name: str) -> str:
    return (element.findtext(name) or "").strip()


def fingerprint(element: Element) -> str:
    """A short hash of the element as received (every tag, attribute and text, in document
    order), so a re-delivered version can be skipped."""
    parts: list[str] = []
    for node in element.iter():  # control characters cannot occur in XML: safe separators
        parts.append(node.tag)
        if node.attrib:
            parts.append("@" + "\x1d".join(f"{k}={v}" for k, v in sorted(node.attrib.items())))
        parts.append(node.text or "")
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12]


def change_stamp(element: Element) -> datetime | None:
    """The naive wall time of the element's last change (``UpdateTime``, else ``CreateTime``)."""
    for name in ("UpdateTime", "CreateTime"):
        try:
            return parse_wall(text(element, name))
        except ValueError:
            continue
    return None


@dataclass(frozen=True, slots=True)
class Names:
    """Display names by id, looked up and cached by the provider before mapping."""

    types: Mapping[str, str] = field(default_factory=dict)
    resources: Mapping[str, str] = field(default_factory=dict)
    customers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reading:
    """How elements become appointments for one account."""

    account: str
    zone: ZoneInfo
    title: TitleTemplate
    private: bool = False


def read_appointment(
    element: Element, reading: Reading, names: Names, position: str
) -> Appointment | Deleted | BadItem:
    """One element as syncd sees it; anything malformed becomes a ``BadItem`` naming it."""
    native_id = text(element, "Id")
    if not native_id.isdigit():
        return BadItem(position, "Id", f"missing or not a number: {native_id!r}")
    if element.find("Status") is None:
        return BadItem(native_id, "Status", "missing")
    code = text(element, "Status")
    try:
        status = read_status(code, text(element, "Label"))
    except ValueError as err:
        return BadItem(native_id, "Status" if code not in _STATUSES else "Label", str(err))
    if status is None:
        return Deleted(reading.account, native_id)
    times: dict[str, datetime] = {}
    for name in ("StartTime", "FinishTime"):
        if element.find(name) is None:
            return BadItem(native_id, name, "missing")
        try:
            times[name] = localize(parse_wall(text(element, name)), reading.zone)
        except ValueError as err:
            return BadItem(native_id, name, str(err))
    start, end = times["StartTime"], times["FinishTime"]
    if end.astimezone(UTC) < start.astimezone(UTC):
        late = end.replace(fold=1).astimezone(UTC)
        if late < start.astimezone(UTC):
            return BadItem(native_id, "FinishTime", "ends before it starts")
        end = late  # second run of a repeated hour: only UTC can say so
    updated = None
    if text(element, "UpdateTime"):
        try:
            updated = localize(parse_wall(text(element, "UpdateTime")), reading.zone)
        except ValueError as err:
            return BadItem(native_id, "UpdateTime", str(err))
    return _appointment(element, reading, names, native_id, (start, end, updated), status)


def _appointment(
    element: Element,
    reading: Reading,
    names: Names,
    native_id: str,
    times: tuple[datetime, datetime, datetime | None],
    status: Status,
) -> Appointment:
    type_id = text(element, "AppointmentTypeId")
    resources = resource_ids(element)
    resource = ", ".join(names.resources.get(r, "") or f"resource {r}" for r in resources)
    customer = "" if reading.private else customer_name(element, names)
    fields = {
        "type": names.types.get(type_id, ""),
        "customer": customer,
        "customer_short": short_name(customer),
        "name": "" if reading.private else text(element, "Name"),
        "resource": resource,
    }
    extra = [("appointment_type_id", type_id), ("resource_ids", ",".join(resources))]
    return Appointment(
        account=reading.account,
        native_id=native_id,
        start=times[0],
        end=times[1],
        title=reading.title.render(fields),
        notes="" if reading.private else text(element, "Description"),
        status=status,
        customer=customer,
        resource=resource,
        updated=times[2],
        extra=tuple(extra),
    )


def customer_name(element: Element, names: Names) -> str:
    return text(element, "CustomerName") or names.customers.get(text(element, "CustomerId"), "")


def short_name(full: str) -> str:
    """``Jan de Vries`` -> ``J. de Vries``: the form booking staff use in titles."""
    parts = full.split()
    if len(parts) < 2:
        return full
    return " ".join([f"{parts[0][0]}.", *parts[1:]])


class TitleTemplate:
    """A ``str.format`` title such as ``"{type} - {customer}"``, checked when configured.

    Fields: ``type``, ``customer``, ``customer_short``, ``name``, ``resource``. With privacy
    on, customer fields and ``name`` are empty. Brackets and separators left empty or dangling
    by an empty field are dropped, and an empty title falls back to ``Appointment``.
    """

    FIELDS = frozenset({"type", "customer", "customer_short", "name", "resource"})

    def __init__(self, template: str) -> None:
        try:
            used = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
        except ValueError as err:
            raise ValueError(f"title template {template!r}: {err}") from None
        unknown = used - self.FIELDS
        if unknown or "" in used:
            raise ValueError(
                f"title template {template!r}: unknown field(s) {sorted(unknown) or ['{}']}; "
                f"use {sorted(self.FIELDS)}"
            )
        self.template = template
        self.uses_customer = bool(used & {"customer", "customer_short"})

    def render(self, fields: Mapping[str, str]) -> str:
        title = _EMPTY_BRACKETS.sub("", self.template.format_map(dict(fields)))
        title = " ".join(title.split()).strip(" -–|,:/")
        return title or "Appointment"
