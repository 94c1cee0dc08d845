"""The Agendize end-to-end kit: one sandboxed company, its syncs, a person's calendars.

``World`` runs syncs of one sandbox company one cycle at a time on a ``ManualClock`` that moves
a minute per cycle. ``requests()`` reads and resets the sandbox's own request counter, so the
tests count what syncd asked without trusting syncd's counts. ``Person`` edits a calendar the
way a person's client does (no If-Match), on the memory calendar or on a real Radicale
collection. ``web()`` is syncd's web app over the world's provider, for watch deliveries.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from syncd.busy.options import BusyOptions
from syncd.calendars.base import Calendar
from syncd.calendars.memory import MemoryCalendar
from syncd.config import parse_config
from syncd.daemon.metrics import Metrics
from syncd.daemon.runner import Runner
from syncd.feeds import FeedStore
from syncd.ical import RenderOptions
from syncd.providers.ag_client import Credentials
from syncd.providers.agendize import AgendizeProvider
from syncd.reconcile.cycle import Result, Sync, run_cycle
from syncd.reconcile.policy import CalendarDelete, CancelledPolicy, Direction, Policy
from syncd.reconcile.render import SyncRenderer
from syncd.sandbox.agendize_state import Entry, SandboxState
from syncd.sandbox.onlineafspraken_state import ManualClock
from syncd.state.store import Store
from syncd.state.watch_vault import StoredWatchVault
from syncd.web.app import create_app
from syncd.web.context import WebContext
from tests.servers import DavServer

PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2026, 10, 19, 7, 30, tzinfo=PARIS)  # a Monday; summer time ends on the 25th
BASE = "http://sandbox/api/2.1/scheduling"
HOOK = "http://127.0.0.1:8765/hooks/agendize/ag"
OWNER = "anna@example.org"


def make_provider(
    state: SandboxState, http: httpx.AsyncClient, clock: ManualClock
) -> AgendizeProvider:
    return AgendizeProvider(
        "ag",
        BASE,
        state.company_id,
        Credentials(api_key=state.api_key, token=state.token),
        timezone=PARIS,
        client=http,
        now=clock,
        busy_staff="1",
    )


class Wrapped:
    """The sandbox app, with hooks run on each request before it is answered (a test's way
    to make something happen between two pages of one listing)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.before: list[Callable[[dict[str, Any]], None]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for hook in self.before:
                hook(scope)
        await self.app(scope, receive, send)


@dataclass
class World:
    """One company, its sandbox and clock, and syncs of it run by ``cycle``."""

    state: SandboxState
    clock: ManualClock
    provider: AgendizeProvider
    store: Store
    app: Wrapped
    pokes: list[str] = field(default_factory=list)

    def sync(
        self,
        name: str,
        calendar: Calendar,
        *,
        scope: dict[str, str] | None = None,
        busy_from: dict[str, Calendar] | None = None,
    ) -> Sync:
        policy = Policy(
            sync=name,
            account="ag",
            calendars=(calendar.name,),
            direction=Direction.TWO_WAY,
            calendar_delete=CalendarDelete.CANCEL,
            cancelled=CancelledPolicy.MARK,
        )
        renderer = SyncRenderer("ag", RenderOptions(name, title="{title} - {customer}"))
        busy = BusyOptions(owners=frozenset({OWNER}), zone=PARIS)
        return Sync(
            policy,
            self.provider,
            {calendar.name: calendar},
            renderer,
            scope or {},
            busy_from=busy_from or {},
            busy=busy,
        )

    async def cycle(self, sync: Sync, *, full: bool = False) -> Result:
        self.clock.advance(60)
        return await run_cycle(self.store, sync, full=full, now=self.now())

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), PARIS)

    async def settle(self, sync: Sync) -> None:
        """Cycles until one does nothing: syncd's own writes come back once as echoes."""
        for _ in range(4):
            if not (await self.cycle(sync)).plan.actions:
                return
        raise AssertionError("the sync does not settle")

    def requests(self) -> Counter[str]:
        seen = Counter(self.state.requests)
        self.state.requests.clear()
        return seen

    def active(self, count: int, before: datetime | None = None) -> list[Entry]:
        """``count`` accepted client bookings (starting before ``before``), by id."""
        found = [
            e
            for e in sorted(self.state.appointments.values(), key=lambda e: int(e.id))
            if not e.deleted
            and e.type == "normal"
            and e.status == "accepted"
            and (before is None or e.start < before)
        ]
        assert len(found) >= count
        return found[:count]

    def personal(self) -> list[Entry]:
        return [
            e for e in self.state.appointments.values() if e.type == "personal" and not e.deleted
        ]

    def web(self, database: Path) -> httpx.AsyncClient:
        """syncd's web app with this world's provider as account ``ag``, watching at ``HOOK``;
        a delivery that is worth a pull is recorded in ``pokes``."""
        config = parse_config(
            f"""
[store]
url = "sqlite:///{database}"
[server]
public_url = "http://127.0.0.1:8765"
[providers.ag]
kind = "agendize"
company_id = "{self.state.company_id}"
oauth_token = "unused"
[calendars.cal]
kind = "memory"
[[syncs]]
name = "ag"
provider = "ag"
calendars = ["cal"]
""",
            environ={},
        )
        self.provider.watch(HOOK, StoredWatchVault(self.store, "ag"))
        feeds = FeedStore(self.store, config)
        runner = Runner(self.store, [], feeds, Metrics())
        context = WebContext(
            config, self.store, feeds, runner, runner.metrics, {"ag": self.provider}
        )

        def poke(account: str) -> list[str]:
            self.pokes.append(account)
            return [account]

        context.poke = poke
        transport = httpx.ASGITransport(app=create_app(context))
        return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765")


@dataclass
class Person:
    """Someone editing a calendar in their own client: plain writes, no If-Match."""

    calendar: Calendar
    put: Callable[[str, str], object]
    remove: Callable[[str], object]

    @classmethod
    def on(cls, calendar: Calendar, server: DavServer | None, url: str = "") -> Person:
        """The person's view of ``calendar``; a CalDAV one at ``url`` on ``server``."""
        if isinstance(calendar, MemoryCalendar):
            return cls(calendar, calendar.user_put, calendar.user_delete)
        assert server is not None

        def put(href: str, ics: str) -> object:
            return server.put(url + href, ics)

        def remove(href: str) -> object:
            server.remove(url + href)
            return None

        return cls(calendar, put, remove)


def wall(moment: datetime, zone: ZoneInfo = PARIS) -> datetime:
    """An instant as the sandbox's naive wall time in ``zone``."""
    return moment.astimezone(zone).replace(tzinfo=None)


def local(entry: Entry) -> tuple[datetime, datetime]:
    """A sandbox entry's span as instants in its own zone (no test uses a repeated hour)."""
    zone = ZoneInfo(entry.zone)
    return entry.start.replace(tzinfo=zone), entry.end.replace(tzinfo=zone)


def days(n: int) -> timedelta:
    return timedelta(days=n)
