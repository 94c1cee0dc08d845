"""The Recras provider against the shared provider contract, on its sandbox.

The sandbox runs in-process behind ``httpx.ASGITransport`` on a fixed clock; the business
acts through the sandbox's own methods, which cost no request. The contract books half-hour
slots, so the business books a half-hour arrangement the sandbox gets for these tests, and
intake books that same arrangement.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from syncd.providers.base import Scope
from syncd.providers.recras import RecrasProvider
from syncd.providers.recras_intake import BookingForm
from syncd.sandbox.recras import create_app
from syncd.sandbox.recras_state import Arrangement, Line, RecrasState
from tests.contract.provider_contract import Business, ProviderContract

AMS = ZoneInfo("Europe/Amsterdam")
SLOTS = Arrangement(3, "Half hour", (Line(5, 15, "Half an hour", 0, 30, capacity=10),))


@dataclass
class SandboxBusiness:
    """Bookings made at the desk, moved, cancelled and purged without the API."""

    state: RecrasState

    async def book(self, scope: Scope, start: datetime, end: datetime, title: str) -> str:
        return str(self.state.book(SLOTS.id, start, {5: 1}).id)

    async def reschedule(self, native_id: str, start: datetime, end: datetime) -> None:
        self.state.reschedule(int(native_id), start)

    async def cancel(self, native_id: str) -> None:
        self.state.set_status(int(native_id), "geannuleerd")

    async def delete(self, native_id: str) -> None:
        self.state.remove(int(native_id))


def sandbox() -> RecrasState:
    state = RecrasState(clock=lambda: datetime(2031, 3, 1, 9, 0, tzinfo=AMS), api_key="key")
    state.arrangements[SLOTS.id] = SLOTS
    return state


class TestRecrasProvider(ProviderContract):
    @pytest.fixture
    def state(self) -> RecrasState:
        return sandbox()

    @pytest.fixture
    async def provider(self, state: RecrasState) -> AsyncIterator[RecrasProvider]:
        transport = httpx.ASGITransport(app=create_app(state))
        async with httpx.AsyncClient(transport=transport) as http:
            form = BookingForm(arrangement_id=SLOTS.id, products={5: 1})
            provider = RecrasProvider("recras", "http://sandbox", "key", client=http, form=form)
            yield provider
            await provider.aclose()

    @pytest.fixture
    def business(self, state: RecrasState) -> Business:
        return SandboxBusiness(state)


class TestRecrasProviderForOneArrangement(TestRecrasProvider):
    """A scope of one arrangement: bookings of the others are not this sync's."""

    @pytest.fixture
    def state(self) -> RecrasState:
        state = sandbox()
        state.book(1, datetime(2031, 3, 3, 12, 0, tzinfo=AMS))  # another arrangement's
        return state

    @pytest.fixture
    def scope(self) -> Scope:
        return {"arrangement": "3"}
