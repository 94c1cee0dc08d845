"""Recras webhooks: ``Boeking::postSave`` / ``Boeking::postDelete`` as ``{version, data, meta}``.

Recras's webhooks are alpha and unsigned, so the one proof a delivery is ours is where it
was sent: ``/hooks/recras/{account}/{webhook_token}``, the token a secret of at least 22
urlsafe characters from the config, compared in constant time. Without a configured token
every delivery is refused. Even an authentic delivery is only a hint: the booking it names
is re-read with our own key (one request, a targeted re-read), and the account's syncs are
run soon, whose pull decides what changed. A forged delivery with a guessed token therefore
costs one read; a repeated one changes nothing twice.

Malformed deliveries (not JSON, no ``data``, an id that is not a positive number) raise
``BadItem`` naming the field; the web app answers 400 and logs the field, never the body.
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

import structlog

from syncd.errors import AuthError, BadItem

if TYPE_CHECKING:
    from syncd.web.hooks import Delivery

log = structlog.get_logger(__name__)
EVENTS = ("Boeking::postSave", "Boeking::postDelete")


def parse_delivery(body: bytes) -> tuple[str, int]:
    """``(event, booking id)`` of a delivery body; ``BadItem`` when it is malformed."""
    try:
        payload: Any = json.loads(body)
    except (ValueError, RecursionError):  # nested past the parser's depth
        raise BadItem("webhook", "body", "not JSON") from None
    if not isinstance(payload, dict):
        raise BadItem("webhook", "body", "not a JSON object")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise BadItem("webhook", "data", "missing or not an object")
    booking = data.get("id")
    if isinstance(booking, str) and booking.isdigit():
        booking = int(booking)
    if isinstance(booking, bool) or not isinstance(booking, int) or booking <= 0:
        raise BadItem("webhook", "data.id", "missing or not a positive number")
    meta = payload.get("meta")
    event = meta.get("event", "") if isinstance(meta, dict) else ""
    return str(event), booking


async def handle_delivery(delivery: Delivery) -> bool:
    """Authenticate by the path token, read the delivery, re-read the booking it names."""
    from syncd.providers.recras import RecrasProvider

    provider, config = delivery.provider, delivery.config
    if not isinstance(provider, RecrasProvider) or config.kind != "recras":
        raise AuthError(delivery.account, "webhook: not a Recras account")
    expected = config.webhook_token.get_secret_value() if config.webhook_token else ""
    given = delivery.path_token
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise AuthError(delivery.account, "webhook: token missing or wrong")
    event, booking = parse_delivery(delivery.body)
    found = await provider.refresh(booking)
    log.info(
        "recras.webhook",
        account=delivery.account,
        webhook_event=event if event in EVENTS else "other",
        booking=booking,
        exists=bool(found),
    )
    return True
