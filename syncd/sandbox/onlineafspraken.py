"""A simulated OnlineAfspraken.nl API: an ASGI app for tests, the demo and benchmarks.

``GET /APIREST?method=...`` behaves as the API documents say and public clients observed:

* Every call is authenticated: a known ``api_key``, then the signature (recomputed here on
  its own, not with the client's code, so a mistake in one is caught by the other), then the
  salt, which must lie within the server's last 300 seconds. Every reply, refused or not,
  carries the server's ``Date`` and unix ``Timestamp``, so a client can correct its clock.
* Replies are the documented ``<Response><Status>..</Status><Objects>..</Objects>`` envelope,
  with ``<Stats>`` on lists; refusals are ``failed`` with a ``Code`` and ``Message``, HTTP 200.
* Fault switches (``state.faults``): latency, 503s, 429s with Retry-After, replies cut off
  mid-document, server clock skew. ``state.requests`` counts every request by method,
  refused ones included, for the one-request-per-idle-cycle promise.

``/_admin`` (JSON, unauthenticated: the sandbox listens on loopback) lets a demo act as the
business; tests use the ``SandboxState`` methods directly. ``main`` serves it all on loopback
and prints the URL and the credentials to configure.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.sandbox.onlineafspraken_api import READ_METHODS, Answer, ApiFailure, Params
from syncd.sandbox.onlineafspraken_state import Booking, Faults, SandboxState
from syncd.sandbox.onlineafspraken_writes import WRITE_METHODS

SALT_WINDOW = 300
METHODS = {**READ_METHODS, **WRITE_METHODS}
_UNSIGNED = ("api_key", "api_salt", "api_signature")


def expected_signature(params: Mapping[str, str], api_secret: str) -> str:
    signed = sorted((k, v) for k, v in params.items() if k not in _UNSIGNED)
    text = "".join(k + re.sub(r"\s+", "", v) for k, v in signed)
    return hashlib.sha256((text + api_secret + params.get("api_salt", "")).encode()).hexdigest()


def authenticate(state: SandboxState, params: Mapping[str, str]) -> None:
    if not hmac.compare_digest(params.get("api_key", "").encode(), state.api_key.encode()):
        raise ApiFailure("A01", "unknown api_key")
    wanted = expected_signature(params, state.api_secret)
    if not hmac.compare_digest(params.get("api_signature", "").encode(), wanted.encode()):
        raise ApiFailure("A02", "invalid api_signature")
    salt, now = params.get("api_salt", ""), int(state.now())
    if not salt.isdigit() or not 0 <= now - int(salt) <= SALT_WINDOW:
        raise ApiFailure("A03", f"api_salt {salt!r} is outside the valid window")


def envelope(state: SandboxState, answer: Answer | ApiFailure) -> str:
    ok = isinstance(answer, Answer)
    status = f"<Status>{'success' if ok else 'failed'}</Status>"
    status += f"<Date>{state.wall_now():%Y-%m-%d %H:%M:%S}</Date>"
    status += f"<Timestamp>{int(state.now())}</Timestamp>"
    body = ""
    if isinstance(answer, ApiFailure):
        status += f"<Message>{escape(answer.message)}</Message><Code>{answer.code}</Code>"
    else:
        body = "<Objects>" + "".join(answer.objects) + "</Objects>"
        if answer.stats:
            names = ("Limit", "Offset", "Records", "TotalRecords")
            body += (
                "<Stats>"
                + "".join(f"<{n}>{v}</{n}>" for n, v in zip(names, answer.stats, strict=True))
                + "</Stats>"
            )
    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    return f"{head}<Response><Status>{status}</Status>{body}</Response>"


def _fires(faults: Faults, name: str, method: str) -> bool:
    """Use up one count of a counted fault if it applies to ``method``."""
    if getattr(faults, name) <= 0 or faults.only not in (None, method):
        return False
    setattr(faults, name, getattr(faults, name) - 1)
    return True


async def api(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    params = dict(request.query_params)
    method = params.get("method", "")
    state.requests[method] += 1
    faults = state.faults
    if faults.latency:
        await anyio.sleep(faults.latency)
    if _fires(faults, "rate_limited", method):
        return Response("slow down", 429, headers={"Retry-After": str(faults.retry_after)})
    if _fires(faults, "server_errors", method):
        return Response("service unavailable", 503)
    try:
        authenticate(state, params)
        handler = METHODS.get(method)
        if handler is None:
            raise ApiFailure("B01", f"unknown method {method!r}")
        body = envelope(state, handler(state, Params(params)))
    except ApiFailure as failure:
        body = envelope(state, failure)
    if _fires(faults, "truncated", method):
        body = body[: len(body) // 2]
    return Response(body, media_type="text/xml; charset=utf-8")


# -- admin ---------------------------------------------------------------------------------------


def booking_json(b: Booking) -> dict[str, Any]:
    data = asdict(b)
    for key in ("start", "finish", "created", "updated"):
        data[key] = f"{data[key]:%Y-%m-%d %H:%M:%S}" if data[key] else None
    return data


def _wall(text: str) -> datetime:
    return datetime.fromisoformat(text.replace(" ", "T"))


Admin = Callable[[SandboxState, Request, dict[str, Any]], Awaitable[Any]]


def admin(handler: Admin) -> Callable[[Request], Awaitable[Response]]:
    """JSON in, JSON out; an unknown id is 404, a bad value 400."""

    async def endpoint(request: Request) -> Response:
        body: dict[str, Any] = {}
        if request.method in ("POST", "PUT") and await request.body():
            body = await request.json()
        try:
            result = await handler(request.app.state.sandbox, request, body)
        except KeyError as err:
            return JSONResponse({"error": str(err)}, 404)
        except (TypeError, ValueError) as err:
            return JSONResponse({"error": str(err)}, 400)
        return JSONResponse(result)

    return endpoint


def _id(request: Request) -> int:
    return int(request.path_params["id"])


async def _summary(state: SandboxState, request: Request, body: dict[str, Any]) -> Any:
    return {
        "now": f"{state.wall_now():%Y-%m-%d %H:%M:%S}",
        "timestamp": int(state.now()),
        "appointments": len(state.appointments),
        "blocks": len(state.blocks),
        "requests": dict(state.requests),
        "faults": asdict(state.faults),
    }


async def _list(state: SandboxState, request: Request, body: dict[str, Any]) -> Any:
    return [booking_json(b) for b in state.appointments.values()]


async def _book(state: SandboxState, request: Request, body: dict[str, Any]) -> Any:
    booking = state.book(
        _wall(body["start"]),
        int(body.get("minutes", 30)),
        agenda=int(body.get("agenda", 1)),
        type_id=int(body.get("type", 1)),
        customer=int(body.get("customer", 1)),
        resources=[int(r) for r in body.get("resources", [1])],
        name=str(body.get("name", "")),
    )
    return booking_json(booking)


async def _move(state: SandboxState, request: Request, body: dict[str, Any]) -> Any:
    end = _wall(body["end"]) if "end" in body else None
    return booking_json(state.move(_id(request), _wall(body["start"]), end))


async def _cancel(state: SandboxState, request: Request, body: dict[str, Any]) -> Any:
    return booking_json(state.cancel(_id(request)))


async def _remove(state: SandboxState, request: Request, body: dict[str, Any]) -> Any:
    state.remove(_id(request))
    return {"removed": _id(request)}


async def _seed(state: SandboxState, request: Request, body: dict[str, Any]) -> Any:
    made = state.seed(int(body.get("count", 20)), int(body.get("seed", 0)))
    return {"created": [b.id for b in made]}


async def _faults(state: SandboxState, request: Request, body: dict[str, Any]) -> Any:
    known = {f.name for f in fields(Faults)}
    unknown = set(body) - known
    if unknown:
        raise ValueError(f"unknown fault switches {sorted(unknown)}; use {sorted(known)}")
    for name, value in body.items():
        setattr(state.faults, name, value)
    return asdict(state.faults)


def create_app(state: SandboxState | None = None) -> Starlette:
    """The sandbox app over ``state`` (a fresh account with random credentials if omitted)."""
    app = Starlette(
        routes=[
            Route("/APIREST", api, methods=["GET"]),
            Route("/_admin", admin(_summary), methods=["GET"]),
            Route("/_admin/appointments", admin(_list), methods=["GET"]),
            Route("/_admin/appointments", admin(_book), methods=["POST"]),
            Route("/_admin/appointments/{id:int}/move", admin(_move), methods=["POST"]),
            Route("/_admin/appointments/{id:int}/cancel", admin(_cancel), methods=["POST"]),
            Route("/_admin/appointments/{id:int}", admin(_remove), methods=["DELETE"]),
            Route("/_admin/seed", admin(_seed), methods=["POST"]),
            Route("/_admin/faults", admin(_faults), methods=["POST"]),
        ]
    )
    app.state.sandbox = state or SandboxState()
    return app


def main(port: int = 8710, seed: int = 1, count: int = 200, host: str = "127.0.0.1") -> None:
    """Serve a sandbox with ``count`` seeded appointments until interrupted."""
    import uvicorn

    state = SandboxState()
    state.seed(count, seed)
    print(f"OnlineAfspraken sandbox: http://{host}:{port}/APIREST")
    print(f"  api_key    = {state.api_key}")
    print(f"  api_secret = {state.api_secret}")
    print(f"  admin      = http://{host}:{port}/_admin ({count} appointments, seed {seed})")
    uvicorn.run(create_app(state), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
