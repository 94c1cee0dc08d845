"""The Qmatic test kit: one sandboxed account on a manual clock, and a provider wired to it.

The sandbox runs in-process behind ``httpx.ASGITransport``; the provider's token clock and the
sandbox's clock are the same ``ManualClock``, so moving it expires holds and tokens on both
sides at once (``state.advance`` moves the sandbox alone, as a server whose clock runs ahead).
The business acts through ``QmaticState``'s own methods, which cost no request, so
``state.requests`` measures syncd alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from syncd.intake.request import IntakeRequest, Person, intake_reference
from syncd.providers.base import Window
from syncd.providers.qmatic import QmaticProvider
from syncd.providers.qmatic_client import Credentials
from syncd.sandbox.onlineafspraken_state import ManualClock
from syncd.sandbox.qmatic import create_app
from syncd.sandbox.qmatic_records import stable_id
from syncd.sandbox.qmatic_state import QmaticState

AMS = ZoneInfo("Europe/Amsterdam")
T0 = datetime(2031, 3, 1, 9, 0, tzinfo=AMS)  # a Saturday; Monday 3 March is bookable
MONDAY = datetime(2031, 3, 3, tzinfo=AMS)
PASSPORT = stable_id("service", "passport")  # 30 minutes
LICENCE = stable_id("service", "licence")  # 60 minutes
CENTRUM = stable_id("branch", "centrum")  # Monday-Friday 09:00-17:00, two places per slot
NOORD = stable_id("branch", "noord")  # Monday-Saturday 10:00-16:00, passports only, one place
TRACKED = "CUST0000000001"
OTHER = "CUST0000000002"
SECRET = "qmatic-secret-Zx81-distinctive"
WINDOW = Window(T0 - timedelta(days=30), T0 + timedelta(days=120))


def at(hour: int, minute: int = 0, day: datetime = MONDAY) -> datetime:
    return day.replace(hour=hour, minute=minute)


def make_state(clock: ManualClock) -> QmaticState:
    return QmaticState(
        account="acme", tenant_id="tenant-1", client_id="syncd", client_secret=SECRET, clock=clock
    )


@asynccontextmanager
async def connected(
    state: QmaticState, clock: ManualClock, **options: Any
) -> AsyncIterator[QmaticProvider]:
    """A provider talking to ``state`` through its ASGI app; ``options`` go to the provider."""
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport) as http:
        settings: dict[str, Any] = {"service": PASSPORT, "branch": CENTRUM, "track": [TRACKED]}
        provider = QmaticProvider(
            "qm",
            "http://sandbox",
            Credentials(state.account, state.client_id, state.client_secret),
            state.tenant_id,
            client=http,
            now=clock,
            **(settings | options),
        )
        try:
            yield provider
        finally:
            await provider.aclose()


def request(
    start: datetime,
    minutes: int = 30,
    *,
    uid: str = "event-1",
    name: str = "Jan Jansen",
    email: str = "jan@example.org",
    description: str = "",
    fields: dict[str, str] | None = None,
) -> IntakeRequest:
    """What the intake step would hand the provider for a person's new event."""
    return IntakeRequest(
        reference=intake_reference("office", "intake", uid),
        calendar="intake",
        href=f"{uid}.ics",
        uid=uid,
        start=start,
        end=start + timedelta(minutes=minutes),
        summary="Passport renewal",
        description=description,
        attendees=(Person(name, email),),
        fields=fields or {},
    )
