"""The Qmatic sandbox's ``/_admin`` interface: the business at its desk, and the sandbox's clock.

JSON in, JSON out, unauthenticated (the sandbox listens on loopback): a demo books, moves and
cancels appointments, moves time on (holds lapse, tokens expire), revokes every token and sets
fault switches. Tests call the ``QmaticState`` methods directly instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.sandbox import qmatic_api as api
from syncd.sandbox.qmatic_records import Faults
from syncd.sandbox.qmatic_state import QmaticState

Admin = Callable[[QmaticState, Request, dict[str, Any]], Any]


def admin(handler: Admin) -> Callable[[Request], Awaitable[Response]]:
    """JSON in, JSON out; an unknown id is 404, a bad value 400."""

    async def endpoint(request: Request) -> Response:
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

    return endpoint


def _summary(state: QmaticState, request: Request, body: dict[str, Any]) -> Any:
    return {
        "now": state.now().isoformat(timespec="seconds"),
        "services": {s.id: s.name for s in state.services.values()},
        "branches": {b.id: b.name for b in state.branches.values()},
        "appointments": len(state.appointments),
        "reservations": len(state.reservations),
        "requests": dict(state.requests),
        "faults": asdict(state.faults),
    }


def _book(state: QmaticState, request: Request, body: dict[str, Any]) -> Any:
    made = state.book(
        datetime.fromisoformat(body["start"]),
        datetime.fromisoformat(body["end"]) if body.get("end") else None,
        personal_identifier=str(body["personalIdentifier"]),
        service=body.get("service"),
        branch=body.get("branch"),
    )
    return api.appointment_json(state, made)


def _move(state: QmaticState, request: Request, body: dict[str, Any]) -> Any:
    end = datetime.fromisoformat(body["end"]) if body.get("end") else None
    moved = state.move(request.path_params["id"], datetime.fromisoformat(body["start"]), end)
    return api.appointment_json(state, moved)


def _cancel(state: QmaticState, request: Request, body: dict[str, Any]) -> Any:
    state.cancel(request.path_params["id"])
    return {"cancelled": request.path_params["id"]}


def _advance(state: QmaticState, request: Request, body: dict[str, Any]) -> Any:
    state.advance(float(body["seconds"]))
    return {"now": state.now().isoformat(timespec="seconds")}


def _revoke(state: QmaticState, request: Request, body: dict[str, Any]) -> Any:
    state.revoke_tokens()
    return {"revoked": True}


def _faults(state: QmaticState, request: Request, body: dict[str, Any]) -> Any:
    known = {f.name for f in fields(Faults)}
    unknown = set(body) - known
    if unknown:
        raise ValueError(f"unknown fault switches {sorted(unknown)}; use {sorted(known)}")
    for name, value in body.items():
        setattr(state.faults, name, value)
    return asdict(state.faults)


ADMIN = [
    Route("/_admin", admin(_summary), methods=["GET"]),
    Route(
        "/_admin/appointments",
        admin(lambda s, r, b: [api.appointment_json(s, a) for a in s.appointments.values()]),
        methods=["GET"],
    ),
    Route("/_admin/appointments", admin(_book), methods=["POST"]),
    Route("/_admin/appointments/{id}/move", admin(_move), methods=["POST"]),
    Route("/_admin/appointments/{id}", admin(_cancel), methods=["DELETE"]),
    Route("/_admin/clock", admin(_advance), methods=["POST"]),
    Route("/_admin/tokens/revoke", admin(_revoke), methods=["POST"]),
    Route("/_admin/faults", admin(_faults), methods=["POST"]),
]
