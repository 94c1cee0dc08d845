"""Backends that kill the process at the N-th write, before or after the write happened.

``Crash`` is a ``BaseException`` so that no ``except Exception`` in syncd can swallow it, and
nothing after it runs: the same as SIGKILL, as far as the state database can tell.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from syncd.calendars.base import Calendar, CalendarChanges
from syncd.model import Appointment, CalendarItem, ItemRef
from syncd.providers.base import Cursor, Provider, Pull, Scope, Window

T = TypeVar("T")


class Crash(BaseException):
    """The process died here."""


class Counter:
    """Counts writes across backends; the ``crash_at``-th one (from 0) kills the process."""

    def __init__(self, crash_at: int | None, after: bool) -> None:
        self.crash_at = crash_at
        self.after = after
        self.seen = 0

    async def write(self, call: Callable[[], Awaitable[T]]) -> T:
        hit = self.crash_at is not None and self.seen == self.crash_at
        self.seen += 1
        if hit and not self.after:
            raise Crash
        result = await call()
        if hit:
            raise Crash
        return result


class CrashingProvider(Provider):
    def __init__(self, inner: Provider, crash_at: int | None, after: bool) -> None:
        super().__init__(inner.name)
        self.inner = inner
        self.capabilities = inner.capabilities
        self.counter = Counter(crash_at, after)
        self.writes = 0

    async def pull(self, scope: Scope, cursor: Cursor | None, window: Window) -> Pull:
        return await self.inner.pull(scope, cursor, window)

    async def scan(self, scope: Scope, window: Window) -> Pull:
        return await self.inner.scan(scope, window)

    async def get(self, native_id: str) -> Appointment | None:
        return await self.inner.get(native_id)

    async def move(self, appointment: Appointment, start: datetime, end: datetime) -> Appointment:
        self.writes += 1
        return await self.counter.write(lambda: self.inner.move(appointment, start, end))

    async def cancel(self, appointment: Appointment) -> Appointment:
        self.writes += 1
        return await self.counter.write(lambda: self.inner.cancel(appointment))


class CrashingCalendar(Calendar):
    def __init__(
        self, inner: Calendar, crash_at: int | None, after: bool, counter: Counter | None = None
    ) -> None:
        super().__init__(inner.name)
        self.inner = inner
        self.capabilities = inner.capabilities
        self.counter = counter or Counter(crash_at, after)

    async def changes(
        self, token: str | None, known: Mapping[str, str] | None = None
    ) -> CalendarChanges:
        return await self.inner.changes(token, known)

    async def get(self, hrefs: Sequence[str]) -> list[CalendarItem]:
        return await self.inner.get(hrefs)

    async def create(self, uid: str, ics: str) -> ItemRef:
        return await self.counter.write(lambda: self.inner.create(uid, ics))

    async def update(self, href: str, ics: str, etag: str) -> ItemRef:
        return await self.counter.write(lambda: self.inner.update(href, ics, etag))

    async def delete(self, href: str, etag: str) -> None:
        await self.counter.write(lambda: self.inner.delete(href, etag))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
