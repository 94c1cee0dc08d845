"""A simulated Recras instance: an ASGI app for tests, the demo and benchmarks.

``/api2/...`` behaves as the online-booking document and the public facts about the bookings
API say (routes in ``recras_api``, booking rules in ``recras_booking``, the business in
``recras_state``). ``/_admin`` (JSON, unauthenticated: the sandbox listens on loopback) lets a
demo act as the business: book at the desk, move, change status, remove, corrupt a booking,
add vouchers and discount codes, subscribe webhooks and set fault switches. Tests use the
``RecrasState`` methods directly.

With ``deliver=True`` the webhook deliveries queued by each change are POSTed to their URLs
after the response that caused them (fire and forget, as the alpha webhooks are); otherwise
they stay in ``state.outbox`` for a test to hand over itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, fields
from datetime import date, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.sandbox.recras_api import ROUTES, booking_json, with_deliveries
from syncd.sandbox.recras_state import Faults, RecrasState

Admin = Callable[[RecrasState, Request, dict[str, Any]], Awaitable[Any]]


def admin(handler: Admin) -> Callable[[Request], Awaitable[Response]]:
    """JSON in, JSON out; an unknown id is 404, a bad value 400."""

    async def endpoint(request: Request) -> Response:
        body: dict[str, Any] = {}
        if request.method in ("POST", "PUT") and await request.body():
            body = await request.json()
        try:
            result = await handler(request.app.state.sandbox, request, body)
        except KeyError as err:
            return JSONResponse({"error": f"not found: {err}"}, 404)
        except (TypeError, ValueError) as err:
            return JSONResponse({"error": str(err)}, 400)
        return with_deliveries(request, JSONResponse(result))

    return endpoint


def _id(request: Request) -> int:
    return int(request.path_params["id"])


async def _summary(state: RecrasState, request: Request, body: dict[str, Any]) -> Any:
    return {
        "now": state.now().isoformat(timespec="seconds"),
        "bookings": len(state.bookings),
        "arrangements": {a.id: a.name for a in state.arrangements.values()},
        "webhooks": len(state.webhooks),
        "requests": dict(state.requests),
        "faults": asdict(state.faults),
    }


async def _list(state: RecrasState, request: Request, body: dict[str, Any]) -> Any:
    return [booking_json(state, b) for b in state.bookings.values()]


async def _book(state: RecrasState, request: Request, body: dict[str, Any]) -> Any:
    amounts = {int(k): int(v) for k, v in body.get("amounts", {}).items()} or None
    booking = state.book(
        int(body.get("arrangement_id", 1)),
        datetime.fromisoformat(body["begin"]),
        amounts,
        status=str(body.get("status", "reservering")),
        contact=dict(body.get("contact", {})),
    )
    return booking_json(state, booking)


async def _move(state: RecrasState, request: Request, body: dict[str, Any]) -> Any:
    return booking_json(
        state, state.reschedule(_id(request), datetime.fromisoformat(body["begin"]))
    )


async def _status(state: RecrasState, request: Request, body: dict[str, Any]) -> Any:
    return booking_json(state, state.set_status(_id(request), str(body["status"])))


async def _remove(state: RecrasState, request: Request, body: dict[str, Any]) -> Any:
    state.remove(_id(request))
    return {"removed": _id(request)}


async def _corrupt(state: RecrasState, request: Request, body: dict[str, Any]) -> Any:
    state.corrupt(_id(request), str(body["field"]), body.get("value"))
    return {"corrupted": _id(request)}


async def _voucher(state: RecrasState, request: Request, body: dict[str, Any]) -> Any:
    products = {int(p) for p in body.get("products", [10])}
    state.add_voucher(str(body["code"]), products, date.fromisoformat(body["expires"]))
    return {"voucher": body["code"]}


async def _discount(state: RecrasState, request: Request, body: dict[str, Any]) -> Any:
    arrangements = {int(a) for a in body.get("arrangements", [1])}
    state.add_discount(str(body["code"]), int(body.get("percentage", 10)), arrangements)
    return {"discount": body["code"]}


async def _subscribe(state: RecrasState, request: Request, body: dict[str, Any]) -> Any:
    return {"id": state.subscribe(str(body["naam"]), str(body["url"]))}


async def _seed(state: RecrasState, request: Request, body: dict[str, Any]) -> Any:
    made = state.seed(int(body.get("count", 20)), int(body.get("seed", 1)))
    return {"created": [b.id for b in made]}


async def _faults(state: RecrasState, request: Request, body: dict[str, Any]) -> Any:
    known = {f.name for f in fields(Faults)}
    unknown = set(body) - known
    if unknown:
        raise ValueError(f"unknown fault switches {sorted(unknown)}; use {sorted(known)}")
    for name, value in body.items():
        setattr(state.faults, name, value)
    return asdict(state.faults)


def create_app(state: RecrasState | None = None, *, deliver: bool = False) -> Starlette:
    """The sandbox app over ``state`` (a fresh instance with a random API key if omitted)."""
    app = Starlette(
        routes=[
            *ROUTES,
            Route("/_admin", admin(_summary), methods=["GET"]),
            Route("/_admin/bookings", admin(_list), methods=["GET"]),
            Route("/_admin/bookings", admin(_book), methods=["POST"]),
            Route("/_admin/bookings/{id:int}/move", admin(_move), methods=["POST"]),
            Route("/_admin/bookings/{id:int}/status", admin(_status), methods=["POST"]),
            Route("/_admin/bookings/{id:int}/corrupt", admin(_corrupt), methods=["POST"]),
            Route("/_admin/bookings/{id:int}", admin(_remove), methods=["DELETE"]),
            Route("/_admin/vouchers", admin(_voucher), methods=["POST"]),
            Route("/_admin/discounts", admin(_discount), methods=["POST"]),
            Route("/_admin/webhooks", admin(_subscribe), methods=["POST"]),
            Route("/_admin/seed", admin(_seed), methods=["POST"]),
            Route("/_admin/faults", admin(_faults), methods=["POST"]),
        ]
    )
    app.state.sandbox = state or RecrasState()
    app.state.webhook_client = httpx.AsyncClient() if deliver else None
    return app


def main(port: int = 8712, seed: int = 1, count: int = 50, host: str = "127.0.0.1") -> None:
    """Serve a sandbox instance with ``count`` seeded bookings until interrupted."""
    import uvicorn

    state = RecrasState()
    state.seed(count, seed)
    print(f"Recras sandbox: http://{host}:{port}  (base_url for [providers.NAME])")
    print(f"  api_key        = {state.api_key}")
    print("  arrangement_id = 1 (Escape room; lines 1 = room, 2 = drinks)")
    print(f"  admin          = http://{host}:{port}/_admin ({count} bookings, seed {seed})")
    uvicorn.run(create_app(state, deliver=True), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
