"""Agendize watch deliveries: ``POST /hooks/agendize/ACCOUNT`` with the appointment as JSON.

A delivery is the appointment resource plus ``date`` (when it was sent) and ``event``
(``created``, ``updated`` or ``deleted``). It proves itself with HTTP basic auth carrying the
credentials syncd generated when it registered the watch (``ag_watch``); an account without a
registered watch accepts no delivery at all.

What a delivery may do is decide whether the account's syncs run now: it is compared with the
newest version of that appointment syncd has seen, and only a newer one is worth a pull
(``True``). A repeat, a late arrival or the echo of syncd's own write answers ``False`` and
runs nothing. Its content is never applied: the pull reads the current state with syncd's own
credentials, which is what makes repeated and reordered deliveries harmless. The periodic
poll stays the safety net for deliveries that never come.

Refusals: ``AuthError`` (403) for missing or wrong credentials, checked before the body is
read; ``BadItem`` (400) naming the field for a body that is not an appointment delivery.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import structlog

from syncd.errors import AuthError, BadItem
from syncd.providers.agendize import AgendizeProvider

if TYPE_CHECKING:  # the web app imports this module lazily, by name; not the other way round
    from syncd.web.hooks import Delivery

log = structlog.get_logger(__name__)

EVENTS = frozenset({"created", "updated", "deleted"})


def parse_delivery(body: bytes) -> dict[str, Any]:
    """The delivery as a JSON object with a known ``event``; ``BadItem`` otherwise."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # nested past the parser's depth
        raise BadItem("delivery", "body", "not JSON") from None
    if not isinstance(payload, dict):
        raise BadItem("delivery", "body", f"not a JSON object but {type(payload).__name__}")
    event = payload.get("event")
    if event not in EVENTS:
        given = payload.get("id")
        raise BadItem(
            given if isinstance(given, str) else "delivery",
            "event",
            f"not one of {sorted(EVENTS)}: {str(event)[:40]!r}",
        )
    return payload


async def handle_delivery(delivery: Delivery) -> bool:
    """Check a delivery and say whether it is worth running the account's syncs."""
    provider = delivery.provider
    if not isinstance(provider, AgendizeProvider) or delivery.config.kind != "agendize":
        raise AuthError(delivery.account, "watch delivery: not an Agendize account")
    if not provider.watcher.verify(delivery.headers.get("authorization", "")):
        raise AuthError(delivery.account, "watch delivery: basic auth missing or wrong")
    payload = parse_delivery(delivery.body)
    fresh = provider.notice(payload)
    log.info(
        "agendize.delivery",
        account=delivery.account,
        change=payload["event"],
        id=payload.get("id"),
        fresh=fresh,
    )
    return fresh
