"""What each Agendize API call does to the sandbox state, apart from HTTP.

Each function takes the query (a mapping of strings) and, for writes, the decoded JSON body,
and returns the JSON to answer with; a refusal is an ``ApiError`` carrying the HTTP status
and a message, which the app turns into the API's ``{"error": {...}}`` object.

Listings page like Google Calendar's (which the API copies): the first request snapshots the
ids that match and issues the sync token for that moment; the pages follow by
``pageToken``; only the last page carries ``nextSyncToken``. A request carrying a
``syncToken`` is checked on every page, so a token that expires mid-listing is refused there.
A token listing reports every change after the token that matches the filters, whatever the
dates (the token stands for its own listing); a listing without one honours
``startDate``/``endDate`` (GMT only), defaulting to a month either side of now.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from syncd.sandbox.agendize_render import listed, resource
from syncd.sandbox.agendize_state import Entry, SandboxState, Token, Watch

STATUSES = ("completed", "noShow", "accepted", "pending", "declined", "cancelled", "inProgress")
_GMT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)")
_PROPERTIES_LIMIT = 22 * 1024
_PAGES_KEPT = 200
Query = Mapping[str, str]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _gmt(query: Query, name: str, default: datetime) -> datetime:
    text = query.get(name)
    if text is None:
        return default
    if not _GMT.fullmatch(text):
        raise ApiError(400, f"{name} must be an RFC 3339 timestamp in GMT, got {text!r}")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _matches(
    entry: Entry, query: Query, since: int | None, span: tuple[datetime, datetime]
) -> bool:
    if since is not None and entry.seq <= since:
        return False
    if entry.deleted and query.get("showDeleted") != "true":
        return False
    if entry.type == "personal" and query.get("personalAppointments") != "true":
        return False
    for param, value in (
        ("staffId", entry.staff_id),
        ("serviceId", entry.service_id),
        ("resourceId", entry.resource_id),
        ("clientId", entry.client_id),
        ("status", entry.status),
    ):
        if param in query and query[param] != value:
            return False
    if since is not None:
        return True
    start, end = entry.instants()
    return start < span[1] and end > span[0]


def list_appointments(state: SandboxState, query: Query) -> dict[str, Any]:
    full = query.get("levelDetail", "light") == "full"
    token_text = query.get("syncToken")
    token: Token | None = None
    if token_text is not None:
        token = state.tokens.get(token_text)
        if token is None or not state.token_valid(token):
            raise ApiError(410, "the sync token is no longer valid; list again without it")
    page_token = query.get("pageToken")
    if page_token is not None:
        try:
            ids, sync_token = state.pages.pop(page_token)
        except KeyError:
            raise ApiError(400, "invalid pageToken") from None
    else:
        now = datetime.fromtimestamp(state.now(), UTC)
        span = (
            _gmt(query, "startDate", now - timedelta(days=30)),
            _gmt(query, "endDate", now + timedelta(days=30)),
        )
        since = token.seq if token is not None else None
        found = [e for e in state.appointments.values() if _matches(e, query, since, span)]
        found.sort(key=lambda e: (e.instants()[0], int(e.id)))
        ids = [e.id for e in found]
        sync_token = secrets.token_urlsafe(12)
        state.tokens[sync_token] = Token(state.seq, state.now())
    page, rest = ids[: state.page_size], ids[state.page_size :]
    entries = [state.appointments[i] for i in page]
    shown = [e for e in entries if not e.deleted or query.get("showDeleted") == "true"]
    answer: dict[str, Any] = {"items": [listed(state, e, full) for e in shown]}
    if rest:
        next_page = secrets.token_urlsafe(12)
        state.pages[next_page] = (rest, sync_token)
        while len(state.pages) > _PAGES_KEPT:  # abandoned listings are forgotten, oldest first
            state.pages.pop(next(iter(state.pages)))
        answer["nextPageToken"] = next_page
    else:
        answer["nextSyncToken"] = sync_token
    return answer


def get_appointment(state: SandboxState, appointment_id: str, query: Query) -> dict[str, Any]:
    return resource(state, _entry(state, appointment_id), query.get("levelDetail") != "light")


def _entry(state: SandboxState, appointment_id: str) -> Entry:
    try:
        return state.get(appointment_id)
    except KeyError:
        raise ApiError(404, f"appointment {appointment_id} not found") from None


def _wall(body: Mapping[str, Any], name: str, fallback: str) -> tuple[datetime, str] | None:
    """``(naive time, zone)`` of ``body[name]``, or None when the body has no ``name``."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise ApiError(400, f"{name}.dateTime is required")
    zone = value.get("timeZone") or fallback
    try:
        ZoneInfo(zone)
        moment = datetime.fromisoformat(value["dateTime"])
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ApiError(400, f"{name} is not a valid time with a time zone") from None
    if moment.tzinfo is not None:
        raise ApiError(400, f"{name}.dateTime must not carry an offset; give timeZone")
    return moment, zone


def _private(body: Mapping[str, Any]) -> dict[str, Any]:
    props = body.get("extendedProperties") or {}
    if not isinstance(props, dict) or not isinstance(props.get("private", {}), dict):
        raise ApiError(400, "extendedProperties.private must be an object")
    if len(json.dumps(props)) > _PROPERTIES_LIMIT:
        raise ApiError(400, "extendedProperties is larger than 22KB")
    return dict(props.get("private", {}))


def refusal(state: SandboxState, entry: Entry, start: datetime, end: datetime, zone: str) -> str:
    """Why ``entry`` cannot take ``[start, end)`` (naive, in ``zone``); empty when it can:
    inside the company's opening hours and free for its staff member."""
    local = [m.replace(tzinfo=ZoneInfo(zone)).astimezone(state.zone) for m in (start, end)]
    hours = state.hours.get(local[0].weekday())
    if end <= start:
        return "the end must come after the start"
    if hours is None or local[0].date() != local[1].date():
        return "outside the staff member's working hours"
    if not (hours[0] <= local[0].time() and local[1].time() <= hours[1]):
        return "outside the staff member's working hours"
    begin, finish = (m.astimezone(UTC) for m in local)
    for other in state.appointments.values():
        if other is entry or other.deleted or other.staff_id != entry.staff_id:
            continue
        if other.status in ("cancelled", "declined"):
            continue
        o_start, o_end = other.instants()
        if o_start < finish and begin < o_end:
            return f"the slot is already taken by appointment {other.id}"
    return ""


def insert_appointment(state: SandboxState, query: Query, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be an appointment object")
    kind = body.get("type", "normal")
    staff = (body.get("staff") or {}).get("id", "")
    start = _wall(body, "start", state.zone.key)
    end = _wall(body, "end", start[1] if start else state.zone.key)
    if start is None:
        raise ApiError(400, "start is required")
    if kind == "personal" and (end is None or not staff):
        raise ApiError(400, "a personal appointment needs end and staff.id")
    if query.get("force") == "true" and not staff:
        raise ApiError(400, "force needs staff.id")
    service = (body.get("service") or {}).get("id", "")
    if kind == "normal" and (service not in state.services or not body.get("client")):
        raise ApiError(400, "an appointment needs a known service.id and a client")
    finish = end[0] if end else start[0] + timedelta(minutes=state.services[service][1])
    entry = Entry(
        id=state.new_id(),
        type=kind,
        start=start[0],
        end=finish,
        zone=start[1],
        staff_id=staff or "1",
        created=state.wall_now(),
        service_id=service if kind == "normal" else "",
        client_id=str((body.get("client") or {}).get("id", "")) if kind == "normal" else "",
        notes=str(body.get("notes", "")),
        private=_private(body),
    )
    if query.get("force") != "true":
        why = refusal(state, entry, entry.start, entry.end, entry.zone)
        if why:
            raise ApiError(400, f"not available: {why}")
    entry.silent = query.get("silent") == "true"
    state.appointments[entry.id] = entry
    state.changed(entry, "created")
    return resource(state, entry)


def update_appointment(
    state: SandboxState, appointment_id: str, query: Query, body: Any
) -> dict[str, Any]:
    entry = _entry(state, appointment_id)
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be an appointment object")
    start = _wall(body, "start", entry.zone)
    end = _wall(body, "end", start[1] if start else entry.zone)
    if start is not None or end is not None:
        zone = start[1] if start else entry.zone
        begin = start[0] if start else entry.start
        finish = end[0] if end else begin + (entry.end - entry.start)
        if end is not None and end[1] != zone:  # one zone per appointment here
            finish = finish.replace(tzinfo=ZoneInfo(end[1])).astimezone(ZoneInfo(zone))
            finish = finish.replace(tzinfo=None)
        if query.get("force") != "true":
            why = refusal(state, entry, begin, finish, zone)
            if why:
                raise ApiError(400, f"not available: {why}")
        entry.start, entry.end, entry.zone = begin, finish, zone
    if "status" in body:
        if body["status"] not in STATUSES:
            raise ApiError(400, f"unknown status {body['status']!r}")
        entry.status = body["status"]
    if "notes" in body:
        entry.notes = str(body["notes"])
    if "extendedProperties" in body:
        entry.private = _private(body)
    entry.silent = query.get("silent") == "true"
    state.changed(entry, "updated")
    return resource(state, entry)


def delete_appointment(state: SandboxState, appointment_id: str, query: Query) -> None:
    entry = _entry(state, appointment_id)
    entry.silent = query.get("silent") == "true"
    entry.deleted = True
    state.changed(entry, "deleted")


def register_watch(state: SandboxState, body: Any) -> dict[str, Any]:
    """A watch per address: registering an address again updates and revives its watch."""
    if not isinstance(body, dict) or not isinstance(body.get("address"), str):
        raise ApiError(400, "address is required")
    address = body["address"]
    if not re.match(r"https?://", address):
        raise ApiError(400, "address must be an http(s) URL")
    auth = body.get("basicAuth") or {}
    if not isinstance(auth, dict):
        raise ApiError(400, "basicAuth must be an object")
    watch = next((w for w in state.watches.values() if w.address == address), None)
    if watch is None:
        watch = Watch(f"W{len(state.watches) + 1}", address, "", "", "", state.now())
        state.watches[watch.id] = watch
    watch.name = str(body.get("name", ""))
    watch.username, watch.password = str(auth.get("username", "")), str(auth.get("password", ""))
    watch.registered = state.now()
    watch.status = "disabled" if body.get("status") == "disabled" else "enabled"
    return watch_json(watch)


def watch_json(watch: Watch) -> dict[str, Any]:
    """The watch as the API answers it; the password is never echoed."""
    return {
        "id": watch.id,
        "name": watch.name,
        "address": watch.address,
        "status": watch.status,
        "method": "POST",
        "levelDetails": "full",
        "basicAuth": {"username": watch.username},
    }
