"""Shared pieces of the Recras tests: a sandbox on a fixed clock and a provider wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx

from syncd.providers.recras import RecrasProvider
from syncd.providers.recras_intake import BookingForm
from syncd.sandbox.recras import create_app
from syncd.sandbox.recras_state import RecrasState

AMS = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2031, 3, 1, 9, 0, tzinfo=AMS)
DAY = datetime(2031, 3, 3, 10, 0, tzinfo=AMS)  # a Monday, two days after NOW
KEY = "recras-test-key"
FORM = BookingForm(arrangement_id=1, products={1: 2, 2: 0})


class Clock:
    """The sandbox's now, moved by hand."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def sandbox(clock: Clock | None = None) -> RecrasState:
    return RecrasState(clock=clock or Clock(), api_key=KEY)


@asynccontextmanager
async def provider_for(
    state: RecrasState,
    *,
    per_line: bool = False,
    form: BookingForm = FORM,
    kind: type[RecrasProvider] = RecrasProvider,
) -> AsyncIterator[RecrasProvider]:
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport) as http:
        provider = kind("recras", "http://sandbox", KEY, client=http, per_line=per_line, form=form)
        yield provider
        await provider.aclose()
