"""The Qmatic provider against the shared provider contract, on its sandbox.

Qmatic declares ``TRACKED``, ``MOVE``, ``CANCEL`` and ``INTAKE``: it cannot list a window, has
no changed-since filter, no busy blocks and no webhooks, so the contract's listing,
incremental-pull, scan and busy tests skip, each saying which capability it lacks. What it
does instead, re-reading what the engine holds, is ``test_reread_follows_what_the_engine_holds``.

The business books for a tracked customer (the only appointments Qmatic lets anyone find),
at the desk and without the API, so the sandbox's request counter measures syncd alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import pytest

from syncd.providers.base import Scope
from syncd.providers.qmatic import QmaticProvider, native_id
from syncd.sandbox.onlineafspraken_state import ManualClock
from syncd.sandbox.qmatic_state import QmaticState
from tests.contract.provider_contract import Business, ProviderContract
from tests.qmatic_kit import NOORD, T0, TRACKED, connected, make_state


@dataclass
class DeskBusiness:
    """The business at its desk: bookings made, moved and cancelled without the API."""

    state: QmaticState

    async def book(self, scope: Scope, start: datetime, end: datetime, title: str) -> str:
        made = self.state.book(
            start, end, personal_identifier=TRACKED, branch=scope.get("branch"), notes=title
        )
        return native_id(TRACKED, made.id)

    async def reschedule(self, native: str, start: datetime, end: datetime) -> None:
        self.state.move(native.partition(".")[2], start, end)

    async def cancel(self, native: str) -> None:
        self.state.cancel(native.partition(".")[2])

    async def delete(self, native: str) -> None:
        self.state.cancel(native.partition(".")[2])  # Qmatic keeps nothing of a cancel


class TestQmaticProvider(ProviderContract):
    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock(T0)

    @pytest.fixture
    def state(self, clock: ManualClock) -> QmaticState:
        return make_state(clock)

    @pytest.fixture
    async def provider(
        self, state: QmaticState, clock: ManualClock
    ) -> AsyncIterator[QmaticProvider]:
        async with connected(state, clock) as provider:
            yield provider

    @pytest.fixture
    def business(self, state: QmaticState) -> Business:
        return DeskBusiness(state)


class TestQmaticProviderForOneBranch(TestQmaticProvider):
    """Scoped to the one-place branch Noord: moves there need its own free slots."""

    @pytest.fixture
    def scope(self) -> Scope:
        return {"branch": NOORD}
