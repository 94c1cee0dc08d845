"""The Agendize provider against the shared provider contract, on its sandbox.

The sandbox runs in-process behind ``httpx.ASGITransport`` with pages of three, so every
listing here is paged; the business acts through the sandbox's own methods, which cost no
request. The cursor is a sync token, exact: an idle pull is empty, and hard deletes come back
as ``Deleted`` (``showDeleted``), so the strict form of the contract holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from syncd.providers.ag_client import Credentials
from syncd.providers.agendize import AgendizeProvider
from syncd.providers.base import Scope
from syncd.sandbox.agendize import create_app
from syncd.sandbox.agendize_state import SandboxState
from syncd.sandbox.onlineafspraken_state import ManualClock
from tests.contract.provider_contract import Business, ProviderContract

AMS = ZoneInfo("Europe/Amsterdam")
BASE = "http://sandbox/api/2.1/scheduling"


@dataclass
class SandboxBusiness:
    """The business at its desk: bookings made, moved and purged without the API."""

    state: SandboxState

    async def book(self, scope: Scope, start: datetime, end: datetime, title: str) -> str:
        entry = self.state.book(
            start,
            end=end,
            staff=scope.get("staff", "1"),
            service=scope.get("service", "11"),
            resource=scope.get("resource", ""),
            notes=title,
        )
        return entry.id

    async def reschedule(self, native_id: str, start: datetime, end: datetime) -> None:
        self.state.move(native_id, start, end)

    async def cancel(self, native_id: str) -> None:
        self.state.cancel(native_id)

    async def delete(self, native_id: str) -> None:
        self.state.delete(native_id)


class TestAgendizeProvider(ProviderContract):
    cursor_overlap = False

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock(datetime(2031, 3, 1, 9, 0, tzinfo=AMS))

    @pytest.fixture
    def state(self, clock: ManualClock) -> SandboxState:
        return SandboxState(clock=clock, page_size=3)

    @pytest.fixture
    def credentials(self, state: SandboxState) -> Credentials:
        return Credentials(api_key=state.api_key, token=state.token)

    @pytest.fixture
    async def provider(
        self, state: SandboxState, clock: ManualClock, credentials: Credentials
    ) -> AsyncIterator[AgendizeProvider]:
        transport = httpx.ASGITransport(app=create_app(state))
        async with httpx.AsyncClient(transport=transport) as http:
            provider = AgendizeProvider(
                "ag",
                BASE,
                state.company_id,
                credentials,
                timezone=state.zone,
                client=http,
                now=clock,
                busy_staff="2",
            )
            yield provider
            await provider.aclose()

    @pytest.fixture
    def business(self, state: SandboxState) -> Business:
        return SandboxBusiness(state)


class TestAgendizeProviderForOneStaffWithOAuth(TestAgendizeProvider):
    """A scope narrowed to one staff member (whose agenda also gets the busy blocks), the
    business's own personal appointments read as busy time, and a bearer token."""

    @pytest.fixture
    def credentials(self, state: SandboxState) -> Credentials:
        return Credentials(oauth_token=state.oauth_token)

    @pytest.fixture
    async def provider(
        self, state: SandboxState, clock: ManualClock, credentials: Credentials
    ) -> AsyncIterator[AgendizeProvider]:
        transport = httpx.ASGITransport(app=create_app(state))
        async with httpx.AsyncClient(transport=transport) as http:
            provider = AgendizeProvider(
                "ag",
                BASE,
                state.company_id,
                credentials,
                timezone=state.zone,
                client=http,
                now=clock,
                personal_busy=True,
            )
            yield provider
            await provider.aclose()

    @pytest.fixture
    def scope(self) -> Scope:
        return {"staff": "3"}
