"""OnlineAfspraken webhook deliveries: the apiKey check, what they ask for, repeats."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from syncd.errors import AuthError, BadItem
from syncd.providers.onlineafspraken import OnlineAfsprakenProvider
from syncd.providers.onlineafspraken_webhook import WebhookNotice, handle_webhook
from syncd.sandbox.onlineafspraken import create_app
from syncd.sandbox.onlineafspraken_state import ManualClock, SandboxState

pytestmark = pytest.mark.anyio
AMS = ZoneInfo("Europe/Amsterdam")
KEY = "account-api-key"


@pytest.fixture
def state() -> SandboxState:
    clock = ManualClock(datetime(2031, 3, 1, 9, tzinfo=AMS))
    return SandboxState(api_key=KEY, api_secret="secret", clock=clock)


@pytest.fixture
async def provider(state: SandboxState) -> AsyncIterator[OnlineAfsprakenProvider]:
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport) as http:
        yield OnlineAfsprakenProvider(
            "oa", "http://sandbox/APIREST", KEY, "secret", client=http, now=state.clock
        )


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"entity": "appointment", "id": "5", "apiKey": "wrong"}, KEY),
        ({"entity": "appointment", "id": "5"}, KEY),
        ({"entity": "appointment", "id": "5", "apiKey": KEY + "x"}, KEY),
        ({"entity": "appointment", "id": "5", "apiKey": ""}, ""),  # none configured: refuse all
    ],
)
async def test_a_wrong_or_missing_api_key_is_refused(
    provider: OnlineAfsprakenProvider, state: SandboxState, params: dict[str, str], expected: str
) -> None:
    with pytest.raises(AuthError, match="apiKey"):
        await handle_webhook(provider, params, expected)
    assert sum(state.requests.values()) == 0


async def test_the_key_is_compared_in_constant_time(
    provider: OnlineAfsprakenProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return a == b

    monkeypatch.setattr(hmac, "compare_digest", spy)
    await handle_webhook(provider, {"entity": "appointment", "id": "5", "apiKey": KEY}, KEY)
    assert compared == [(KEY.encode(), KEY.encode())]


async def test_an_appointment_delivery_names_it_for_a_reread_and_repeats_are_harmless(
    provider: OnlineAfsprakenProvider, state: SandboxState
) -> None:
    booking = state.book(datetime(2031, 3, 3, 10))
    params = {"entity": "Appointment", "id": str(booking.id), "apiKey": KEY}
    notices = [await handle_webhook(provider, params, KEY) for _ in range(3)]
    assert notices == [WebhookNotice("appointment", str(booking.id), (str(booking.id),))] * 3
    assert sum(state.requests.values()) == 0  # the re-read is the caller's, one per delivery
    reread = await provider.get(notices[0].native_ids[0])
    assert reread is not None
    assert reread.start == datetime(2031, 3, 3, 10, tzinfo=AMS)


async def test_a_customer_delivery_refreshes_the_name_at_once(
    provider: OnlineAfsprakenProvider, state: SandboxState
) -> None:
    booking = state.book(datetime(2031, 3, 3, 10), customer=2)
    state.corrupt(booking.id, "CustomerName", "")
    before = await provider.get(str(booking.id))
    assert before is not None
    assert before.customer == "Anna de Vries"
    state.customers[2] = type(state.customers[2])("Anna", "", "Smit")
    params = {"entity": "customer", "id": "2", "apiKey": KEY}
    assert await handle_webhook(provider, params, KEY) == WebhookNotice("customer", "2")
    after = await provider.get(str(booking.id))
    assert after is not None
    assert after.customer == "Anna Smit"


async def test_odd_deliveries_are_named_or_ignored(provider: OnlineAfsprakenProvider) -> None:
    with pytest.raises(BadItem, match="id"):
        await handle_webhook(
            provider, {"entity": "appointment", "id": "1;drop", "apiKey": KEY}, KEY
        )
    with pytest.raises(BadItem):
        await handle_webhook(provider, {"entity": "appointment", "apiKey": KEY}, KEY)
    ignored = await handle_webhook(provider, {"entity": "invoice", "id": "9", "apiKey": KEY}, KEY)
    assert ignored == WebhookNotice("invoice", "9")
