"""A simulated Agendize scheduling API (v2.1): an ASGI app for tests, the demo and benchmarks.

Under ``/api/2.1/scheduling/companies/{companyId}/appointments`` it lists (paged, with sync
tokens, ``showDeleted`` and filters), gets, inserts, updates and deletes appointments, and
registers watches (``.../appointments/watch``) whose deliveries ``agendize_watch`` sends.

* Every call is authenticated: headers ``apiKey`` and ``token``, or ``Authorization: Bearer``
  with the OAuth token. Refused: 401 with the API's ``error`` object. An unknown company: 404.
* Refusals are ``{"error": {"code", "message"}}`` with the matching HTTP status; the
  ``error_under_200`` switch sends one with HTTP 200, as the real API sometimes does.
* Fault switches (``state.faults``): latency, 503s, 429s with Retry-After, errors under 200,
  bodies cut off mid-document. ``state.requests`` counts every request by operation
  (``list``, ``get``, ``insert``, ``update``, ``delete``, ``watch``), refused ones included.

``/_admin`` (JSON, unauthenticated: the sandbox listens on loopback) lets a demo act as the
business; tests use the ``SandboxState`` methods directly. ``main`` serves it all on loopback,
sends watch deliveries in the background, and prints the settings to configure.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.sandbox import agendize_admin
from syncd.sandbox.agendize_api import (
    ApiError,
    delete_appointment,
    get_appointment,
    insert_appointment,
    list_appointments,
    register_watch,
    update_appointment,
)
from syncd.sandbox.agendize_state import Faults, SandboxState
from syncd.sandbox.agendize_watch import run_sender

PREFIX = "/api/2.1/scheduling"
Operation = Callable[[SandboxState, Request, Any], Any]


def authenticated(state: SandboxState, request: Request) -> bool:
    headers = request.headers
    bearer = headers.get("authorization", "")
    if bearer:
        return hmac.compare_digest(bearer.encode(), f"Bearer {state.oauth_token}".encode())
    key, token = headers.get("apikey", ""), headers.get("token", "")
    return hmac.compare_digest(key.encode(), state.api_key.encode()) and hmac.compare_digest(
        token.encode(), state.token.encode()
    )


def error(status: int, message: str, http_status: int | None = None) -> Response:
    body = {"error": {"code": status, "message": message}}
    return JSONResponse(body, status_code=status if http_status is None else http_status)


def _fires(faults: Faults, name: str, operation: str) -> bool:
    """Use up one count of a counted fault if it applies to ``operation``."""
    if getattr(faults, name) <= 0 or faults.only not in (None, operation):
        return False
    setattr(faults, name, getattr(faults, name) - 1)
    return True


def endpoint(operation: str, handler: Operation) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        state: SandboxState = request.app.state.sandbox
        state.requests[operation] += 1
        faults = state.faults
        if faults.latency:
            await anyio.sleep(faults.latency)
        if _fires(faults, "rate_limited", operation):
            return Response("slow down", 429, headers={"Retry-After": str(faults.retry_after)})
        if _fires(faults, "server_errors", operation):
            return Response("service unavailable", 503)
        if _fires(faults, "error_under_200", operation):
            return error(503, "backend unavailable, try again later", http_status=200)
        if not authenticated(state, request):
            return error(401, "invalid credentials")
        if request.path_params["company"] != state.company_id:
            return error(404, "company not found")
        body: Any = None
        if request.method in ("POST", "PUT"):
            try:
                body = json.loads(await request.body() or b"null")
            except ValueError:
                return error(400, "the body is not JSON")
        try:
            result = handler(state, request, body)
        except ApiError as failure:
            return error(failure.status, failure.message)
        if result is None:
            return Response(status_code=204)
        text = json.dumps(result, ensure_ascii=False)
        if _fires(faults, "malformed_json", operation):
            text = text[: len(text) // 2]
        return Response(text, media_type="application/json")

    return serve


def _list(state: SandboxState, request: Request, body: Any) -> Any:
    return list_appointments(state, request.query_params)


def _insert(state: SandboxState, request: Request, body: Any) -> Any:
    return insert_appointment(state, request.query_params, body)


def _get(state: SandboxState, request: Request, body: Any) -> Any:
    return get_appointment(state, request.path_params["id"], request.query_params)


def _update(state: SandboxState, request: Request, body: Any) -> Any:
    return update_appointment(state, request.path_params["id"], request.query_params, body)


def _delete(state: SandboxState, request: Request, body: Any) -> Any:
    delete_appointment(state, request.path_params["id"], request.query_params)


def _watch(state: SandboxState, request: Request, body: Any) -> Any:
    return register_watch(state, body)


def create_app(state: SandboxState | None = None, *, deliveries: bool = False) -> Starlette:
    """The sandbox app over ``state`` (a fresh company with random credentials if omitted).

    With ``deliveries`` it sends watch deliveries itself while it runs (served mode)."""
    base = PREFIX + "/companies/{company}/appointments"
    routes = [
        Route(base, endpoint("list", _list), methods=["GET"]),
        Route(base, endpoint("insert", _insert), methods=["POST"]),
        Route(base + "/watch", endpoint("watch", _watch), methods=["POST"]),
        Route(base + "/{id}", endpoint("get", _get), methods=["GET"]),
        Route(base + "/{id}", endpoint("update", _update), methods=["PUT"]),
        Route(base + "/{id}", endpoint("delete", _delete), methods=["DELETE"]),
        *agendize_admin.routes(),
    ]
    sandbox = state or SandboxState()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tasks:
            if deliveries:
                tasks.start_soon(run_sender, sandbox)
            yield
            tasks.cancel_scope.cancel()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = sandbox
    return app


def main(
    port: int = 8720,
    seed: int = 1,
    count: int = 200,
    host: str = "127.0.0.1",
    token_ttl: float | None = 86400.0,
) -> None:
    """Serve a sandbox with ``count`` seeded appointments until interrupted."""
    import uvicorn

    state = SandboxState(token_ttl=token_ttl)
    state.seed(count, seed)
    state.faults.repeat_rate = 0.2  # deliveries come twice now and then, as they do for real
    print(f"Agendize sandbox: http://{host}:{port}{PREFIX}")
    print(f"  base_url    = http://{host}:{port}{PREFIX}")
    print(f"  company_id  = {state.company_id}")
    print(f"  api_key     = {state.api_key}")
    print(f"  token       = {state.token}")
    print(f"  oauth_token = {state.oauth_token}")
    print(f"  admin       = http://{host}:{port}/_admin ({count} appointments, seed {seed})")
    uvicorn.run(create_app(state, deliveries=True), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
