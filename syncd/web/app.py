"""The daemon's one Starlette app: feeds, webhooks, health, metrics and the status page.

    GET  /feeds/{token}.ics          syncd.web.feeds
    GET|POST /hooks/{provider}/{account}   syncd.web.hooks
    POST /hooks/{provider}/{account}/{token}   the same, with a secret path token (Recras)
    GET  /healthz                    200 or 503, with the reasons, as JSON
    GET  /metrics                    Prometheus text format
    GET  /                           syncd.web.status

Nothing here renders a feed or calls a provider on the request path except a webhook's own
check; everything else reads what the runner and the feed store already hold.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.web.context import WebContext, context
from syncd.web.feeds import serve_feed
from syncd.web.hooks import receive
from syncd.web.status import status_page


async def healthz(request: Request) -> Response:
    """200 while the scheduler runs and no sync fails beyond its threshold; else 503."""
    ctx = context(request)
    problems = ctx.problems()
    code = 503 if problems else 200
    body = {"status": "failing" if problems else "ok", "problems": problems}
    return JSONResponse(body, status_code=code, headers={"Cache-Control": "no-store"})


async def metrics(request: Request) -> Response:
    ctx = context(request)
    backlog = {name: ctx.store.pending_count(name) for name in ctx.runner.syncs}
    text = ctx.metrics.expose(ctx.runner.lag(), backlog, ctx.runner.breakers())
    return Response(text, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(ctx: WebContext) -> Starlette:
    app = Starlette(
        routes=[
            Route("/feeds/{token}.ics", serve_feed, methods=["GET", "HEAD"]),
            Route("/hooks/{provider}/{account}", receive, methods=["GET", "POST"]),
            Route("/hooks/{provider}/{account}/{token}", receive, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/", status_page, methods=["GET"]),
        ]
    )
    app.state.syncd = ctx
    return app
