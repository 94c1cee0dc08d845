"""``GET /feeds/{token}.ics``: a cached feed, with the conditional-GET rules clients rely on.

* An unknown token gets exactly the 404 any unknown path gets: nothing says whether a feed
  exists, is disabled or was mistyped.
* The ETag is strong and differs between the identity and the gzip body (they are different
  bytes); ``If-None-Match`` accepts either, since both name the same version (RFC 9110
  13.1.2 compares weakly). ``If-Modified-Since`` is used only without ``If-None-Match``.
* ``Cache-Control: private, no-cache``: a feed URL is a secret, so no shared cache keeps it,
  and clients revalidate each time, which costs a 304.
"""

from __future__ import annotations

from email.utils import format_datetime, parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from syncd.feeds import RenderedFeed
from syncd.web.context import context

NOT_FOUND = "Not Found"


def not_found() -> Response:
    """The same answer Starlette gives for a path it does not route."""
    return PlainTextResponse(NOT_FOUND, status_code=404)


def accepts_gzip(header: str) -> bool:
    """Whether ``Accept-Encoding`` allows gzip (listed, or ``*``, without ``q=0``)."""
    for part in header.split(","):
        coding, *params = (piece.strip() for piece in part.split(";"))
        if coding.lower() not in ("gzip", "x-gzip", "*"):
            continue
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q" and _zero(value.strip()):
                return False
        return True
    return False


def _zero(q: str) -> bool:
    try:
        return float(q) == 0
    except ValueError:
        return False


def not_modified(request: Request, feed: RenderedFeed) -> bool:
    match = request.headers.get("if-none-match")
    if match is not None:
        tags = {t.strip().removeprefix("W/") for t in match.split(",")}
        return "*" in tags or feed.etag in tags or feed.gzip_etag in tags
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        moment = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    return moment.tzinfo is not None and feed.modified <= moment


async def serve_feed(request: Request) -> Response:
    ctx = context(request)
    feed = ctx.feeds.lookup(str(request.path_params["token"]))
    if feed is None:
        ctx.metrics.feed_requests.labels("404").inc()
        return not_found()
    gzip = accepts_gzip(request.headers.get("accept-encoding", ""))
    headers = {
        "ETag": feed.gzip_etag if gzip else feed.etag,
        "Last-Modified": format_datetime(feed.modified, usegmt=True),
        "Cache-Control": "private, no-cache",
        "Vary": "Accept-Encoding",
    }
    if not_modified(request, feed):
        ctx.metrics.feed_requests.labels("304").inc()
        return Response(status_code=304, headers=headers)
    ctx.metrics.feed_requests.labels("200").inc()
    headers["Content-Disposition"] = f'inline; filename="{feed.name}.ics"'
    if gzip:
        headers["Content-Encoding"] = "gzip"
    body = feed.gzipped if gzip else feed.body
    return Response(body, media_type="text/calendar; charset=utf-8", headers=headers)
