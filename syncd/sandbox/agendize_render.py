"""The JSON the Agendize sandbox serves: appointment resources, tombstones and deliveries.

The shape follows the API document: ``start``/``end`` as ``{dateTime, timeZone}`` with a naive
RFC 3339 time, people as nested objects, ``extendedProperties.private`` for the integrator's
own marks. Where the document is silent the sandbox picks one plausible answer and syncd must
cope with it:

* ``levelDetail=light`` (the listing default) leaves out ``history``, ``notes``, the client's
  e-mail and ``extendedProperties``: a client that does not ask for ``full`` cannot recognise
  its own busy blocks, and the contract tests notice.
* A deleted appointment is listed (with ``showDeleted``) as a tombstone: its ``id``,
  ``"deleted": true``, its ``type`` and, in full detail, its ``extendedProperties``.
* A watch delivery is the full resource plus ``date`` (when it was sent) and ``event``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syncd.sandbox.agendize_state import Entry, SandboxState

DROP = object()  # a ``corrupt`` value: leave the field out altogether
COMPANY_NAME = "Cabinet Lumière"


def wall_json(moment: datetime, zone: str) -> dict[str, str]:
    return {"dateTime": f"{moment:%Y-%m-%dT%H:%M:%S}", "timeZone": zone}


def resource(state: SandboxState, entry: Entry, full: bool = True) -> dict[str, Any]:
    """The appointment resource as ``get`` (full) or a listing (light by default) serves it."""
    first, last = state.staff.get(entry.staff_id, ("", ""))
    data: dict[str, Any] = {
        "id": entry.id,
        "reference": f"R-{entry.id}",
        "company": {"id": state.company_id, "name": COMPANY_NAME},
        "staff": {"id": entry.staff_id, "firstName": first, "lastName": last},
        "start": wall_json(entry.start, entry.zone),
        "end": wall_json(entry.end, entry.zone),
        "created": wall_json(entry.created, state.zone.key),
        "status": entry.status,
        "type": entry.type,
        "location": "companyAddress",
    }
    if entry.service_id:
        name = state.services.get(entry.service_id, ("", 0))[0]
        data["service"] = {"id": entry.service_id, "name": name}
    if entry.resource_id:
        data["resource"] = {"id": entry.resource_id, "name": state.resources.get(entry.resource_id)}
    if entry.client_id:
        c_first, c_last, email = state.clients.get(entry.client_id, ("", "", ""))
        data["client"] = {"id": entry.client_id, "firstName": c_first, "lastName": c_last}
        if full:
            data["client"]["email"] = email
    if full:
        data["notes"] = entry.notes
        data["history"] = [
            {"type": kind, "text": kind, "date": wall_json(when, state.zone.key)}
            for kind, when in entry.history
        ]
        data["extendedProperties"] = {"private": dict(entry.private), "public": {}}
    for path, value in entry.overrides.items():
        _override(data, path.split("."), value)
    return data


def listed(state: SandboxState, entry: Entry, full: bool) -> dict[str, Any]:
    """What a listing shows: the resource, or a tombstone for a deleted appointment."""
    if not entry.deleted:
        return resource(state, entry, full)
    data: dict[str, Any] = {"id": entry.id, "deleted": True, "type": entry.type}
    if full:
        data["extendedProperties"] = {"private": dict(entry.private), "public": {}}
    return data


def delivery(state: SandboxState, entry: Entry, event: str) -> dict[str, Any]:
    """A watch delivery: the full resource as it is now, ``date`` and ``event``."""
    body = resource(state, entry, full=True)
    body["date"] = wall_json(state.wall_now(), state.zone.key)
    body["event"] = event
    return body


def _override(data: dict[str, Any], path: list[str], value: Any) -> None:
    head, rest = path[0], path[1:]
    if rest:
        inner = data.get(head)
        if not isinstance(inner, dict):
            inner = data[head] = {}
        _override(inner, rest, value)
    elif value is DROP:
        data.pop(head, None)
    else:
        data[head] = value
