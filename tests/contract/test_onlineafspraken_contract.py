"""The OnlineAfspraken provider against the shared provider contract, on its sandbox.

The sandbox runs in-process behind ``httpx.ASGITransport``; the business acts through the
sandbox's own methods, which cost no request. The provider's cursor is a watermark with an
overlap, but it remembers what the overlap re-delivers, so the strict form of the contract
(``cursor_overlap = False``: an idle pull is empty, unchanged items do not come back) holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from syncd.providers.base import Scope
from syncd.providers.onlineafspraken import OnlineAfsprakenProvider
from syncd.sandbox.onlineafspraken import create_app
from syncd.sandbox.onlineafspraken_state import ManualClock, SandboxState
from tests.contract.provider_contract import Business, ProviderContract

AMS = ZoneInfo("Europe/Amsterdam")


@dataclass
class SandboxBusiness:
    """The business at its desk: bookings made, moved and purged without the API."""

    state: SandboxState

    async def book(self, scope: Scope, start: datetime, end: datetime, title: str) -> str:
        booking = self.state.book(
            start,
            end=end,
            agenda=int(scope.get("agenda", "1")),
            type_id=int(scope.get("appointment_type", "1")),
            resources=[int(scope.get("resource", "1"))],
            name=title,
        )
        return str(booking.id)

    async def reschedule(self, native_id: str, start: datetime, end: datetime) -> None:
        self.state.move(int(native_id), start, end)

    async def cancel(self, native_id: str) -> None:
        self.state.cancel(int(native_id))

    async def delete(self, native_id: str) -> None:
        self.state.remove(int(native_id))


class TickingClock(ManualClock):
    """Every read is a second later: stamps differ, as they do on a live server."""

    def __call__(self) -> float:
        self.value += 1
        return self.value


class TestOnlineAfsprakenProvider(ProviderContract):
    cursor_overlap = False

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock(datetime(2031, 3, 1, 9, 0, tzinfo=AMS))

    @pytest.fixture
    def state(self, clock: ManualClock) -> SandboxState:
        return SandboxState(api_key="contract-key", api_secret="contract-secret", clock=clock)

    @pytest.fixture
    async def provider(
        self, state: SandboxState, clock: ManualClock
    ) -> AsyncIterator[OnlineAfsprakenProvider]:
        transport = httpx.ASGITransport(app=create_app(state))
        async with httpx.AsyncClient(transport=transport) as http:
            provider = OnlineAfsprakenProvider(
                "oa",
                "http://sandbox/APIREST",
                state.api_key,
                state.api_secret,
                client=http,
                now=clock,
                busy_appointment_type="90",
                busy_customer="90",
            )
            yield provider
            await provider.aclose()

    @pytest.fixture
    def business(self, state: SandboxState) -> Business:
        return SandboxBusiness(state)

    @pytest.fixture
    def scope(self) -> Scope:
        return {"agenda": "1"}


class TestOnlineAfsprakenProviderForOneResource(TestOnlineAfsprakenProvider):
    @pytest.fixture
    def clock(self) -> ManualClock:
        return TickingClock(datetime(2031, 3, 1, 9, 0, tzinfo=AMS))

    @pytest.fixture
    def scope(self) -> Scope:
        return {"agenda": "2", "resource": "3"}
