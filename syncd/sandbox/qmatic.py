"""A simulated Qmatic Cloud Appointments API: an ASGI app for tests, the demo and benchmarks.

``POST /oauth2/token`` and ``/external/v1/...`` behave as the API documents and public clients
describe them:

* The token endpoint takes the client credentials grant with HTTP Basic ``client_id:secret``
  and the ``X-ACCOUNT`` header, and issues a bearer token living ``faults.token_lifetime``
  seconds (3,600 unless a test shortens it) of the sandbox's clock.
* Every API call needs a live bearer token (else 401), the right ``X-TENANT-ID`` (else 403)
  and an ``Accept-Language`` (else 400); service names follow the language.
* The operations and their refusals are in ``qmatic_api``.
* Fault switches (``state.faults``): latency, 503s, 429s with Retry-After, replies lost after
  the work was done, bodies cut off mid-document, short-lived tokens; ``revoke_tokens`` makes
  every issued token fail. ``state.requests`` counts every request by route name, refused or
  not: ``token services branches timeslots reserve confirm reschedule search delete``.

``/_admin`` (``qmatic_admin``) lets a demo act as the business and move the sandbox's time
on; tests use the ``QmaticState`` methods directly.
``main`` serves it all on loopback and prints the URL and what to configure.
"""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.sandbox import qmatic_api as api
from syncd.sandbox.qmatic_admin import ADMIN
from syncd.sandbox.qmatic_api import Rejected
from syncd.sandbox.qmatic_records import Faults, sample_identifiers
from syncd.sandbox.qmatic_state import QmaticState

Handler = Callable[[QmaticState, Request, Any], Any]


def _fires(faults: Faults, name: str, route: str) -> bool:
    """Use up one count of a counted fault if it applies to ``route``."""
    if getattr(faults, name) <= 0 or faults.only not in (None, route):
        return False
    setattr(faults, name, getattr(faults, name) - 1)
    return True


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"errorCode": code, "errorMessage": message}, status)


def _basic(header: str) -> tuple[str, str]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        user, _, password = base64.b64decode(value).decode().partition(":")
    except ValueError:
        return "", ""
    return user, password


def _same(given: str, wanted: str) -> bool:
    return hmac.compare_digest(given.encode(), wanted.encode())


async def _token(state: QmaticState, request: Request) -> Response:
    user, password = _basic(request.headers.get("Authorization", ""))
    # Parsed by hand: Starlette's form parser needs python-multipart, syncd does not.
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
    if not _same(request.headers.get("X-ACCOUNT", ""), state.account):
        return JSONResponse(
            {"error": "invalid_client", "error_description": "unknown account"}, 401
        )
    if not (_same(user, state.client_id) and _same(password, state.client_secret)):
        return JSONResponse({"error": "invalid_client"}, 401)
    if form.get("grant_type") != "client_credentials":
        return JSONResponse({"error": "unsupported_grant_type"}, 400)
    token, lifetime = state.issue_token()
    return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": lifetime})


def _refusal(state: QmaticState, request: Request) -> Response | None:
    """The 401/403/400 an unauthenticated or incomplete API call gets, else ``None``."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not state.token_valid(token):
        return Response(
            '{"errorCode":"token.invalid","errorMessage":"missing, unknown or expired token"}',
            401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            media_type="application/json",
        )
    if not _same(request.headers.get("X-TENANT-ID", ""), state.tenant_id):
        return _error(403, "tenant.unknown", "X-TENANT-ID is not a tenant of this account")
    if not request.headers.get("Accept-Language"):
        return _error(400, "request.invalid", "Accept-Language is required")
    return None


def route(
    name: str, handler: Handler, *, status: int = 200
) -> Callable[[Request], Awaitable[Response]]:
    """An API endpoint: count it, apply the fault switches, authenticate, answer in JSON."""

    async def endpoint(request: Request) -> Response:
        state: QmaticState = request.app.state.sandbox
        state.requests[name] += 1
        faults = state.faults
        if faults.latency:
            await anyio.sleep(faults.latency)
        if _fires(faults, "rate_limited", name):
            return Response("slow down", 429, headers={"Retry-After": str(faults.retry_after)})
        if _fires(faults, "server_errors", name):
            return Response("service unavailable", 503)
        if name == "token":
            return await _token(state, request)
        refusal = _refusal(state, request)
        if refusal is not None:
            return refusal
        body: Any = None
        if request.method in ("POST", "PUT"):
            try:
                body = json.loads(await request.body() or b"{}")
            except ValueError:
                return _error(400, "request.invalid", "the body is not JSON")
            if not isinstance(body, dict):
                return _error(400, "request.invalid", "the body must be a JSON object")
        try:
            answer = handler(state, request, body)
        except Rejected as err:
            return _error(err.status, err.code, err.message)
        if _fires(faults, "lost_replies", name):
            return Response("bad gateway", 502)
        if answer is None:
            return Response(status_code=204)
        text = json.dumps(answer)
        if _fires(faults, "truncated", name):
            text = text[: len(text) // 2]
        return Response(text, status, media_type="application/json")

    return endpoint


def _language(request: Request) -> str:
    return request.headers.get("Accept-Language", "en")


ROUTES = [
    Route("/oauth2/token", route("token", lambda s, r, b: None), methods=["POST"]),
    Route(
        "/external/v1/services",
        route("services", lambda s, r, b: api.services(s, _language(r))),
        methods=["GET"],
    ),
    Route(
        "/external/v1/services/{service}",
        route("branches", lambda s, r, b: api.branches(s, r.path_params["service"])),
        methods=["GET"],
    ),
    Route(
        "/external/v1/services/{service}/timeslots",
        route(
            "timeslots",
            lambda s, r, b: api.timeslots(s, r.path_params["service"], dict(r.query_params)),
        ),
        methods=["GET"],
    ),
    Route(
        "/external/v1/reservations",
        route("reserve", lambda s, r, b: api.reserve(s, b), status=201),
        methods=["POST"],
    ),
    Route(
        "/external/v1/reservations/{id}",
        route("confirm", lambda s, r, b: api.confirm(s, r.path_params["id"], b), status=201),
        methods=["PUT"],
    ),
    Route(
        "/external/v1/appointments/search",
        route("search", lambda s, r, b: api.search(s, b)),
        methods=["POST"],
    ),
    Route(
        "/external/v1/appointments/{id}/reschedule",
        route("reschedule", lambda s, r, b: api.reschedule(s, r.path_params["id"], b)),
        methods=["PUT"],
    ),
    Route(
        "/external/v1/appointments/{id}",
        route("delete", lambda s, r, b: api.delete(s, r.path_params["id"])),
        methods=["DELETE"],
    ),
]


def create_app(state: QmaticState | None = None) -> Starlette:
    """The sandbox app over ``state`` (a fresh account with random credentials if omitted)."""
    app = Starlette(routes=[*ROUTES, *ADMIN])
    app.state.sandbox = state or QmaticState()
    return app


def main(port: int = 8713, seed: int = 1, count: int = 20, host: str = "127.0.0.1") -> None:
    """Serve a sandbox with ``count`` seeded bookings until interrupted, printing what to put
    in ``[providers.NAME]``."""
    import uvicorn

    state = QmaticState()
    state.seed(count, seed)
    print(f"Qmatic sandbox: http://{host}:{port}")
    print(f"  base_url      = http://{host}:{port}")
    print(f"  account       = {state.account}")
    print(f"  tenant_id     = {state.tenant_id}")
    print(f"  client_id     = {state.client_id}")
    print(f"  client_secret = {state.client_secret}")
    for service in state.services.values():
        print(f"  service {service.id} = {service.name}")
    for branch in state.branches.values():
        print(f"  branch  {branch.id} = {branch.name}")
    people = ", ".join(f'"{p}"' for p in sample_identifiers(5))
    print(f"  track         = [{people}]  ({count} bookings, seed {seed})")
    print(f"  admin         = http://{host}:{port}/_admin")
    uvicorn.run(create_app(state), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
