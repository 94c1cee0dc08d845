"""OnlineAfspraken webhooks: ``GET ...?entity=&id=&apiKey=``, unsigned, delivered up to 3 times.

The provider sends only which object changed, never what changed, and signs nothing: the one
proof is the account's api key in ``apiKey``. So a delivery is trusted only to say "look at
this id again", and the look is a signed call of our own. That makes a forged delivery with a
guessed key harmless beyond one re-read, and a repeated delivery (the provider retries after
5 minutes and after an hour) costs one idempotent re-read and changes nothing twice.

The web app (not written yet) routes ``/hooks/onlineafspraken/{account}`` here and answers
200 as soon as this returns: within the provider's 10 seconds, because this function makes at
most one request (a customer re-read) and leaves appointment re-reads to the caller.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from syncd.errors import AuthError, BadItem
from syncd.providers.onlineafspraken import OnlineAfsprakenProvider

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class WebhookNotice:
    """What a delivery asks for: ``native_ids`` are appointments to re-read with ``get``."""

    entity: str
    object_id: str
    native_ids: tuple[str, ...] = ()


async def handle_webhook(
    provider: OnlineAfsprakenProvider, params: Mapping[str, str], expected_api_key: str
) -> WebhookNotice:
    """Check the delivery's ``apiKey`` and say which appointments to re-read.

    Raises ``AuthError`` for a wrong or missing key (and always when none is configured), and
    ``BadItem`` when ``id`` is not an id. ``entity=customer`` refreshes the cached name at
    once; its appointments change title at their next change. Other entities are accepted and
    ignored, so the provider stops retrying them.
    """
    given = params.get("apiKey", "")
    if not expected_api_key or not hmac.compare_digest(given.encode(), expected_api_key.encode()):
        raise AuthError(provider.name, "webhook: apiKey missing or wrong")
    entity = params.get("entity", "").strip().lower()
    object_id = params.get("id", "").strip()
    if not object_id.isdigit():
        raise BadItem(object_id or "webhook", "id", "missing or not a number")
    log.info("onlineafspraken.webhook", account=provider.name, entity=entity, id=object_id)
    if entity == "appointment":
        return WebhookNotice(entity, object_id, (object_id,))
    if entity == "customer":
        await provider.refresh_customer(object_id)
    return WebhookNotice(entity, object_id)
