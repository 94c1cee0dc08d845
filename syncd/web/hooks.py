"""``/hooks/{provider}/{account}``: webhook deliveries, dispatched by provider kind.

Handlers are found by name and imported lazily, like backends: ``HANDLERS`` maps a provider
kind to ``"module:function"``. Adding a provider's webhooks is writing that function and one
line here. A handler gets a ``Delivery`` and must authenticate it (raising ``AuthError``)
before trusting anything in it; the route then runs every sync of the account soon
(debounced, see ``syncd.daemon.scheduler``), which re-reads the provider with our own
credentials. A delivery is only ever a hint to look again, so a forged one costs one pull.

Answers: 200 accepted (also when the provider could not be reached to look at what the
delivery names: the syncs run anyway); 404 for an unknown account, a kind mismatch or a kind
without webhooks (the same body as any 404); 403 when authentication fails; 400 for a
malformed delivery. Nothing in an answer or a log line repeats what the delivery carried.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from syncd.config import ProviderConfig
from syncd.errors import AuthError, BackendError, BadItem
from syncd.providers.base import Provider
from syncd.web.context import context
from syncd.web.feeds import not_found

log = structlog.get_logger("syncd.web")

MAX_BODY = 256 * 1024

HANDLERS: dict[str, str] = {
    "onlineafspraken": "syncd.web.hooks:onlineafspraken",
    "agendize": "syncd.providers.agendize_webhook:handle_delivery",
    "recras": "syncd.providers.recras_webhook:handle_delivery",
}


@dataclass(frozen=True, slots=True)
class Delivery:
    account: str
    provider: Provider
    config: ProviderConfig
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    path_token: str = ""  # the secret last path segment, for providers that sign nothing


#: A handler may answer False: authentic, but nothing new (a repeat), so no sync is run.
Handler = Callable[[Delivery], Awaitable[bool | None]]


def handler_for(kind: str) -> Handler | None:
    target = HANDLERS.get(kind)
    if target is None:
        return None
    module, _, name = target.partition(":")
    try:
        found: Handler = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    return found


async def onlineafspraken(delivery: Delivery) -> None:
    """OnlineAfspraken signs nothing; the account's api key in ``apiKey`` is the proof."""
    from syncd.providers.onlineafspraken import OnlineAfsprakenProvider
    from syncd.providers.onlineafspraken_webhook import handle_webhook

    provider, config = delivery.provider, delivery.config
    if not isinstance(provider, OnlineAfsprakenProvider) or config.kind != "onlineafspraken":
        raise AuthError(delivery.account, "webhook: not an OnlineAfspraken account")
    await handle_webhook(provider, delivery.query, config.api_key.get_secret_value())


async def _body(request: Request) -> bytes | None:
    """The body, or None past ``MAX_BODY``: a delivery is a hint, never a bulk upload."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def receive(request: Request) -> Response:
    ctx = context(request)
    kind, account = request.path_params["provider"], request.path_params["account"]
    config = ctx.config.providers.get(account)
    provider = ctx.providers.get(account)
    handler = handler_for(kind) if config is not None and config.kind == kind else None
    if handler is None or config is None or provider is None:
        return not_found()
    body = await _body(request)
    if body is None:
        return JSONResponse({"error": "too large"}, status_code=413)
    delivery = Delivery(
        account,
        provider,
        config,
        dict(request.query_params),
        request.headers,
        body,
        request.path_params.get("token", ""),
    )
    try:
        fresh = await handler(delivery)
    except AuthError:
        log.warning("webhook refused: authentication failed", provider=kind, account=account)
        ctx.metrics.webhooks.labels(kind, "forbidden").inc()
        return JSONResponse({"error": "forbidden"}, status_code=403)
    except BadItem as err:
        log.warning("webhook refused: malformed", provider=kind, account=account, field=err.field)
        ctx.metrics.webhooks.labels(kind, "malformed").inc()
        return JSONResponse({"error": "bad request"}, status_code=400)
    except BackendError as err:
        # The delivery was genuine, but looking at what it names failed (the provider is
        # down): the account's syncs still run soon, and their pull finds the change.
        log.warning(
            "webhook accepted, provider unavailable",
            provider=kind,
            account=account,
            error=type(err).__name__,
        )
        fresh = True
    if fresh is False:
        ctx.metrics.webhooks.labels(kind, "repeat").inc()
        log.info("webhook accepted, nothing new", provider=kind, account=account)
        return JSONResponse({"accepted": True, "syncs": 0})
    ctx.metrics.webhooks.labels(kind, "accepted").inc()
    syncs = ctx.poke(account)
    log.info("webhook accepted", provider=kind, account=account, syncs=syncs)
    return JSONResponse({"accepted": True, "syncs": len(syncs)})
