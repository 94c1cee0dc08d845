"""The Recras sandbox's API routes: bookings, online booking and webhook subscriptions.

Every route is authenticated with ``Authorization: Bearer <api key>`` (401 without it),
counted in ``state.requests`` by route name, and subject to the fault switches: 503, 429
with Retry-After, 403 (the key lacks a right) and a garbled 200. Invalid input is 406 with
``{"error": {"message": ...}}``; an unknown booking 404.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import anyio
import httpx
import structlog
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.sandbox.recras_booking import (
    Rejected,
    check_discount,
    check_vouchers,
    free_days,
    free_times,
    order,
    reserve,
)
from syncd.sandbox.recras_state import Booking, Faults, RecrasState

Handler = Callable[[RecrasState, Request], Awaitable[Any]]
log = structlog.get_logger("syncd.sandbox.recras")


async def deliver(state: RecrasState, client: httpx.AsyncClient) -> int:
    """POST every queued delivery once; a failed one is logged and dropped. The count sent."""
    sent = 0
    while state.outbox:
        url, payload = state.outbox.pop(0)
        try:
            response = await client.post(url, json=payload, timeout=10)
            sent += response.status_code < 300
        except httpx.HTTPError as err:
            log.warning("webhook delivery failed", error=type(err).__name__)
    return sent


def with_deliveries(request: Request, response: Response) -> Response:
    """``response``, sending the queued webhook deliveries after it when the app delivers."""
    state: RecrasState = request.app.state.sandbox
    client: httpx.AsyncClient | None = request.app.state.webhook_client
    if client is not None and state.outbox:
        response.background = BackgroundTask(deliver, state, client)
    return response


def booking_json(state: RecrasState, booking: Booking) -> dict[str, Any]:
    """A booking as ``GET /api2/boekingen`` serves it, damaged if ``corrupt`` said so."""
    arrangement = state.arrangements[booking.arrangement_id]
    lines = [
        {
            "id": line.id,
            "arrangementsregel_id": line.line_id,
            "product_id": line.product_id,
            "begin": line.begin.isoformat(),
            "eind": line.end.isoformat(),
            "aantal": line.amount,
            "beschrijving": line.description,
        }
        for line in booking.lines
    ]
    data: dict[str, Any] = {
        "id": booking.id,
        "klant_id": booking.customer_id,
        "datum": booking.begin.date().isoformat(),
        "status": booking.status,
        "arrangement": arrangement.name,
        "arrangement_id": arrangement.id,
        "status_updated_at": booking.status_updated.isoformat(timespec="seconds"),
        "referentie": booking.reference,
        "opmerkingen": str(booking.contact.get("boeking.opmerkingen") or ""),
        "boekingsregels": lines,
    }
    broken = state.broken.get(booking.id)
    if broken is not None:
        name, value = broken
        targets = lines if name in ("begin", "eind", "aantal") else [data]
        for target in targets:
            target[name] = value
    return data


def _fires(faults: Faults, name: str, route: str) -> bool:
    if getattr(faults, name) <= 0 or faults.only not in (None, route):
        return False
    setattr(faults, name, getattr(faults, name) - 1)
    return True


def endpoint(route: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        state: RecrasState = request.app.state.sandbox
        state.requests[route] += 1
        faults = state.faults
        if faults.latency:
            await anyio.sleep(faults.latency)
        if _fires(faults, "rate_limited", route):
            return Response("slow down", 429, headers={"Retry-After": str(faults.retry_after)})
        if _fires(faults, "server_errors", route):
            return Response("service unavailable", 503)
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {state.api_key}".encode()):
            return JSONResponse({"error": {"message": "Niet ingelogd"}}, 401)
        if _fires(faults, "forbidden", route):
            return JSONResponse({"error": {"message": "Onvoldoende rechten"}}, 403)
        try:
            result = await handler(state, request)
        except Rejected as err:
            return JSONResponse({"error": {"message": str(err)}}, 406)
        except KeyError:
            return JSONResponse({"error": {"message": "Niet gevonden"}}, 404)
        if _fires(faults, "garbled", route):
            return Response('{"id": 1, "boekingsregels": [', media_type="application/json")
        return with_deliveries(request, JSONResponse(result))

    return serve


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise Rejected("Ongeldige JSON") from None
    if not isinstance(body, dict):
        raise Rejected("Verwacht een JSON-object")
    return body


def _date(value: object, name: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise Rejected(f"{name}: geen ISO 8601-datum: {value}") from None


async def _bookings(state: RecrasState, request: Request) -> Any:
    return [booking_json(state, b) for b in state.bookings.values()]


async def _booking(state: RecrasState, request: Request) -> Any:
    return booking_json(state, state.bookings[int(request.path_params["id"])])


async def _set_status(state: RecrasState, request: Request) -> Any:
    booking_id = int(request.path_params["id"])
    if booking_id not in state.bookings:
        raise KeyError(booking_id)
    try:
        booking = state.set_status(booking_id, request.path_params["status"])
    except ValueError as err:
        raise Rejected(str(err)) from None
    return booking_json(state, booking)


async def _days(state: RecrasState, request: Request) -> Any:
    body = await _json(request)
    today = state.now().date()
    first = _date(body["begin"], "begin") if "begin" in body else today
    last = _date(body["eind"], "eind") if "eind" in body else today + timedelta(days=90)
    return [d.isoformat() for d in free_days(state, order(state, body), first, last)]


async def _times(state: RecrasState, request: Request) -> Any:
    body = await _json(request)
    day = _date(body.get("datum"), "datum")
    return [t.isoformat() for t in free_times(state, order(state, body), day)]


async def _vouchers(state: RecrasState, request: Request) -> Any:
    body = await _json(request)
    codes = body.get("vouchers")
    if not isinstance(codes, list):
        raise Rejected("vouchers ontbreekt")
    wanted = order(state, body)
    return check_vouchers(state, wanted, [str(c) for c in codes], _date(body.get("datum"), "datum"))


async def _discount(state: RecrasState, request: Request) -> Any:
    q = request.query_params
    try:
        arrangement = int(q.get("arrangement", ""))
    except ValueError:
        raise Rejected("arrangement moet een geheel getal zijn") from None
    found = check_discount(
        state, q.get("kortingscode", ""), _date(q.get("datum"), "datum"), arrangement
    )
    return found if found is not None else False


async def _reserve(state: RecrasState, request: Request) -> Any:
    booking = reserve(state, await _json(request))
    return {
        "status": booking.status,
        "message": "Boeking gemaakt",
        "boeking_id": booking.id,
        "klant_id": booking.customer_id,
    }


async def _webhooks(state: RecrasState, request: Request) -> Any:
    return [{"id": i, "naam": name, "url": url} for i, (name, url) in state.webhooks.items()]


async def _subscribe(state: RecrasState, request: Request) -> Any:
    body = await _json(request)
    name, url = body.get("naam"), body.get("url")
    if name not in ("Boeking::postSave", "Boeking::postDelete") or not isinstance(url, str):
        raise Rejected("naam moet Boeking::postSave of Boeking::postDelete zijn, met een url")
    return {"id": state.subscribe(name, url), "naam": name, "url": url}


async def _unsubscribe(state: RecrasState, request: Request) -> Any:
    del state.webhooks[int(request.path_params["id"])]
    return {"deleted": True}


ROUTES = [
    Route("/api2/boekingen", endpoint("boekingen", _bookings), methods=["GET"]),
    Route("/api2/boekingen/{id:int}", endpoint("boeking", _booking), methods=["GET"]),
    Route(
        "/api2/boekingen/{id:int}/set_status/{status}",
        endpoint("set_status", _set_status),
        methods=["POST"],
    ),
    Route(
        "/api2/onlineboeking/beschikbaredagen",
        endpoint("beschikbaredagen", _days),
        methods=["POST"],
    ),
    Route(
        "/api2/onlineboeking/beschikbaretijden",
        endpoint("beschikbaretijden", _times),
        methods=["POST"],
    ),
    Route(
        "/api2/onlineboeking/controleervoucher",
        endpoint("controleervoucher", _vouchers),
        methods=["POST"],
    ),
    Route(
        "/api2/onlineboeking/controleerkortingscode",
        endpoint("controleerkortingscode", _discount),
        methods=["GET"],
    ),
    Route("/api2/onlineboeking/reserveer", endpoint("reserveer", _reserve), methods=["POST"]),
    Route("/api2/webhooks", endpoint("webhooks", _webhooks), methods=["GET"]),
    Route("/api2/webhooks", endpoint("webhooks", _subscribe), methods=["POST"]),
    Route("/api2/webhooks/{id:int}", endpoint("webhooks", _unsubscribe), methods=["DELETE"]),
]
