"""``/_admin``: the Agendize sandbox's business desk, as JSON over HTTP.

For demos and process-level tests, which cannot reach the ``SandboxState`` methods. Times are
wall times of the company's zone (``"2031-03-03T10:00:00"``) unless an offset is given. An
unknown id is 404, a bad value 400. Nothing here is authenticated: the sandbox listens on
loopback, and the watch passwords it holds are never shown.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from syncd.sandbox.agendize_api import watch_json
from syncd.sandbox.agendize_render import resource
from syncd.sandbox.agendize_state import Faults, SandboxState

Admin = Callable[[SandboxState, Request, dict[str, Any]], Any]


def admin(handler: Admin) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        body: dict[str, Any] = {}
        if request.method in ("POST", "PUT") and await request.body():
            body = await request.json()
        try:
            result = handler(request.app.state.sandbox, request, body)
        except KeyError as err:
            return JSONResponse({"error": str(err)}, 404)
        except (TypeError, ValueError) as err:
            return JSONResponse({"error": str(err)}, 400)
        return JSONResponse(result)

    return serve


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _summary(state: SandboxState, request: Request, body: dict[str, Any]) -> Any:
    return {
        "company_id": state.company_id,
        "now": f"{state.wall_now():%Y-%m-%dT%H:%M:%S}",
        "appointments": sum(not e.deleted for e in state.appointments.values()),
        "requests": dict(state.requests),
        "faults": asdict(state.faults),
        "watches": [watch_json(w) for w in state.watches.values()],
        "deliveries": len(state.delivered),
    }


def _list(state: SandboxState, request: Request, body: dict[str, Any]) -> Any:
    return [resource(state, e) for e in state.appointments.values() if not e.deleted]


def _book(state: SandboxState, request: Request, body: dict[str, Any]) -> Any:
    start = _when(body["start"])
    if body.get("personal"):
        made = state.personal(start, _when(body["end"]), staff=str(body.get("staff", "1")))
        return resource(state, made)
    made = state.book(
        start,
        int(body.get("minutes", 30)),
        staff=str(body.get("staff", "1")),
        service=str(body.get("service", "11")),
        client=str(body.get("client", "100")),
        zone=ZoneInfo(body["zone"]) if body.get("zone") else None,
        notes=str(body.get("notes", "")),
    )
    return resource(state, made)


def _move(state: SandboxState, request: Request, body: dict[str, Any]) -> Any:
    end = _when(body["end"]) if "end" in body else None
    return resource(state, state.move(request.path_params["id"], _when(body["start"]), end))


def _status(state: SandboxState, request: Request, body: dict[str, Any]) -> Any:
    status = request.path_params["status"]
    if status not in ("cancel", "decline", "accept"):
        raise ValueError(f"unknown action {status!r}")
    value = {"cancel": "cancelled", "decline": "declined", "accept": "accepted"}[status]
    return resource(state, state.set_status(request.path_params["id"], value))


def _delete(state: SandboxState, request: Request, body: dict[str, Any]) -> Any:
    state.delete(request.path_params["id"])
    return {"deleted": request.path_params["id"]}


def _seed(state: SandboxState, request: Request, body: dict[str, Any]) -> Any:
    made = state.seed(int(body.get("count", 20)), int(body.get("seed", 0)))
    return {"created": [e.id for e in made]}


def _faults(state: SandboxState, request: Request, body: dict[str, Any]) -> Any:
    known = {f.name for f in fields(Faults)}
    unknown = set(body) - known
    if unknown:
        raise ValueError(f"unknown fault switches {sorted(unknown)}; use {sorted(known)}")
    for name, value in body.items():
        setattr(state.faults, name, value)
    return asdict(state.faults)


def _expire(state: SandboxState, request: Request, body: dict[str, Any]) -> Any:
    return {"expired": state.expire_tokens()}


def _lapse(state: SandboxState, request: Request, body: dict[str, Any]) -> Any:
    return {"lapsed": state.lapse_watches()}


def routes() -> list[BaseRoute]:
    one = "/_admin/appointments/{id}"
    return [
        Route("/_admin", admin(_summary), methods=["GET"]),
        Route("/_admin/appointments", admin(_list), methods=["GET"]),
        Route("/_admin/appointments", admin(_book), methods=["POST"]),
        Route(one + "/move", admin(_move), methods=["POST"]),
        Route(one + "/{status}", admin(_status), methods=["POST"]),
        Route(one, admin(_delete), methods=["DELETE"]),
        Route("/_admin/seed", admin(_seed), methods=["POST"]),
        Route("/_admin/faults", admin(_faults), methods=["POST"]),
        Route("/_admin/tokens/expire", admin(_expire), methods=["POST"]),
        Route("/_admin/watches/lapse", admin(_lapse), methods=["POST"]),
    ]
