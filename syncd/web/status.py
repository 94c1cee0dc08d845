"""``GET /``: the status page, plain HTML and CSS, for a person checking on the daemon.

It shows feed links, which are secrets, and error texts, which may name internal hosts, so
it is served only to someone allowed to read the config:

* with ``server.status_user`` and ``status_password`` set, to HTTP basic auth (compared in
  constant time), wherever the daemon listens;
* without them, only when the listener is a loopback address, the peer is loopback too and
  the request carries no proxy header (a reverse proxy on the same host would otherwise
  make every internet client look local). Anything else gets 403 saying what to set.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import ipaddress
from datetime import UTC, datetime
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from syncd.config import ServerConfig
from syncd.daemon.runner import SyncState
from syncd.state.history import SyncStatus, sync_status
from syncd.web.context import WebContext, context

PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")
REFUSED = (
    "The status page is served without a password only on a loopback listener, to local\n"
    "clients. Set server.status_user and server.status_password to serve it elsewhere.\n"
)

STYLE = """
body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; background: #fafafa; }
h1 { font-size: 1.4rem; margin: 0 0 .5rem; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #ddd; }
td { vertical-align: top; }
th { background: #eee; font-weight: 600; }
.ok { color: #17692b; } .bad { color: #a11; font-weight: 600; } .muted { color: #777; }
code, a { word-break: break-all; }
ul { margin: 0; padding-left: 1.1rem; }
"""


def _loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def refusal(request: Request, server: ServerConfig) -> Response | None:
    """None when ``request`` may see the page, else the answer to give instead."""
    if server.status_password is not None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        user = password = ""
        if scheme.lower() == "basic":
            with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        good_user = hmac.compare_digest(user.encode(), server.status_user.encode())
        secret = server.status_password.get_secret_value().encode()
        good_password = hmac.compare_digest(password.encode(), secret)
        if good_user and good_password:
            return None
        challenge = {"WWW-Authenticate": 'Basic realm="syncd", charset="UTF-8"'}
        return PlainTextResponse("authentication required\n", 401, headers=challenge)
    peer = request.client.host if request.client else ""
    proxied = any(name in request.headers for name in PROXY_HEADERS)
    if server.loopback and _loopback(peer) and not proxied:
        return None
    return PlainTextResponse(REFUSED, 403)


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = (now - moment).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{max(seconds, 0):.0f}s ago"


def _row(ctx: WebContext, status: SyncStatus, state: SyncState | None, base: str) -> str:
    now = datetime.now(UTC)
    run = status.last_run
    if state is not None and state.failures:
        health = f'<span class="bad">failing ({state.failures} in a row)</span>'
    elif run is None:
        health = '<span class="muted">not run yet</span>'
    elif run.status in ("failed", "refused"):
        health = f'<span class="bad">{escape(run.status)}</span>'
    else:
        health = f'<span class="ok">{escape(run.status)}</span>'
    if state is not None and state.running:
        health += ' <span class="muted">(running)</span>'
    changes = ", ".join(f"{v} {escape(k)}" for k, v in sorted((run.counts if run else {}).items()))
    errors = []
    if state is not None and state.last_error:
        errors.append(escape(state.last_error))
    elif run is not None and run.error:
        errors.append(escape(run.error))
    errors += [
        f"{escape(e['item'])}: {escape(e['field'])}: {escape(e['message'])}"
        for e in status.item_errors
    ]
    conflicts = [
        f"{escape(c['appointment'])} in {escape(c['calendar'])}: {escape(c['detail'])} "
        f"&rarr; {escape(c['resolution'])}"
        for c in status.conflicts
    ]
    feeds = []
    for name in ctx.feeds.names(status.sync):
        token = ctx.config.feeds[name].token.get_secret_value()
        url = escape(f"{base}/feeds/{token}.ics")
        feeds.append(f'<a class="feed" href="{url}">{escape(name)}</a> <code>{url}</code>')
    cells = [
        f"<th scope=row>{escape(status.sync)}</th>",
        f"<td>{health}</td>",
        f"<td>{_ago(run.started_at if run else None, now)}</td>",
        f"<td>{_ago(status.last_success, now)}</td>",
        f"<td>{changes or '-'}</td>",
        f"<td>{status.links}</td>",
        f"<td>{status.pending}</td>",
        f"<td>{_list(errors)}</td>",
        f"<td>{_list(conflicts)}</td>",
        f"<td>{_list(feeds)}</td>",
    ]
    return f'<tr class="sync" data-sync="{escape(status.sync)}">{"".join(cells)}</tr>'


def _list(items: list[str]) -> str:
    if not items:
        return '<span class="muted">none</span>'
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


async def status_page(request: Request) -> Response:
    ctx = context(request)
    refused = refusal(request, ctx.config.server)
    if refused is not None:
        return refused
    base = ctx.config.server.public_url or str(request.base_url).rstrip("/")
    rows = [
        _row(ctx, sync_status(ctx.store.engine, sync.name), ctx.runner.states.get(sync.name), base)
        for sync in ctx.config.syncs
    ]
    problems = ctx.problems()
    health = (
        '<p class="ok">healthy</p>'
        if not problems
        else "<p class=bad>unhealthy</p>" + _list([escape(p) for p in problems])
    )
    heads = "sync state last-run last-success last-changes linked pending errors conflicts feeds"
    head = "".join(f"<th>{h.replace('-', ' ')}</th>" for h in heads.split())
    body = "".join(rows) or '<tr><td colspan="10">no syncs configured</td></tr>'
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="refresh" content="30"><title>syncd</title>'
        f"<style>{STYLE}</style></head><body><h1>syncd</h1>{health}"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></body></html>"
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})
