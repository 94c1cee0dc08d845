"""The calendar contract against real CalDAV servers: Radicale and Xandikos on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from syncd.calendars.base import Calendar
from syncd.calendars.caldav import CaldavCalendar
from tests.contract.calendar_contract import CalendarContract
from tests.servers import PASSWORD, USER, DavServer


@pytest.mark.slow
class TestCaldavContract(CalendarContract):
    """Every contract test, once per server (``dav_server`` is parametrized)."""

    @pytest.fixture
    async def calendar(self, dav_server: DavServer) -> AsyncIterator[Calendar]:
        backend = CaldavCalendar(
            dav_server.kind, url=dav_server.new_collection(), username=USER, password=PASSWORD
        )
        yield backend
        await backend.aclose()
