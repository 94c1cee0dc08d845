"""Scripted failures and request counting for the in-memory backends.

The memory provider and the memory calendar stand in for real services in the engine's tests,
the state machine and the benchmark. Real services fail in a few ways that matter to syncd:
a request fails before anything happened (timeout, 5xx, 429, 401, a rejected token), or it
takes effect and the answer is lost on the way back. ``Faults`` scripts both, per method or for
any method, and counts every request so a test can assert that an idle cycle costs one request
per backend (promise 6).

A failure is scripted with an exception or a zero-argument factory. A factory gives a fresh
exception per raise, so tracebacks do not pile up on one shared instance:

    provider.fail_next(2, lambda: TransientError("memory", "503"), method="pull")
    calendar.fail_next(1, lambda: TransientError("cal", "reset"), method="create", after=True)
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

ErrorFactory = Callable[[], Exception]


@dataclass(slots=True)
class _Plan:
    """``remaining`` more matching requests raise ``error``."""

    remaining: int
    error: Exception | ErrorFactory
    method: str | None
    after: bool

    def matches(self, method: str, after: bool) -> bool:
        return self.after == after and self.method in (None, method)

    def make(self) -> Exception:
        if isinstance(self.error, Exception):
            return self.error
        return self.error()


class Faults:
    """Counts requests by method name and raises scripted errors.

    Plans are consulted in the order they were scripted; the first one that matches a request
    fires and uses up one of its count. ``calls`` counts every request that reached the
    backend, failed or not, because a failed request still cost a round trip.
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._plans: list[_Plan] = []

    def fail_next(
        self,
        count: int,
        error: Exception | ErrorFactory,
        method: str | None = None,
        *,
        after: bool = False,
    ) -> None:
        """Make the next ``count`` requests (to ``method`` only, when given) raise ``error``.

        With ``after`` the request takes effect first and then raises: the backend changed
        but the caller never heard, as when a connection drops before the response arrives.
        """
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        self._plans.append(_Plan(count, error, method, after))

    def pending(self) -> int:
        """How many scripted failures have not fired yet."""
        return sum(plan.remaining for plan in self._plans)

    def clear(self) -> None:
        """Forget every scripted failure that has not fired."""
        self._plans.clear()

    @property
    def total(self) -> int:
        """Requests of every method since the last ``reset_calls``."""
        return sum(self.calls.values())

    def reset_calls(self) -> None:
        self.calls.clear()

    def request(self, method: str) -> _Request:
        """Wrap one request: count it, yield to the event loop, and fire due failures.

        The checkpoint lets concurrent tasks interleave at every request, as they would around
        real I/O. A failure scripted ``after`` fires only when the body completed; when the
        body raised (say ``NotFound``), that error wins and the plan stays armed.

        This wraps every request the benchmark makes, so it is kept cheap: a small class
        rather than ``asynccontextmanager``, and ``asyncio.sleep(0)`` rather than anyio's
        checkpoint, which looks the event loop library up on every call (the memory backends
        run where syncd runs, on asyncio). Together they were a tenth of a memory-backed sync.
        """
        return _Request(self, method)

    def _fire(self, method: str, *, after: bool) -> None:
        for plan in self._plans:
            if plan.matches(method, after):
                plan.remaining -= 1
                if plan.remaining == 0:
                    self._plans.remove(plan)
                raise plan.make()


class _Request:
    __slots__ = ("_faults", "_method")

    def __init__(self, faults: Faults, method: str) -> None:
        self._faults, self._method = faults, method

    async def __aenter__(self) -> None:
        self._faults.calls[self._method] += 1
        await asyncio.sleep(0)
        self._faults._fire(self._method, after=False)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self._faults._fire(self._method, after=True)


class FaultInjection:
    """Gives a backend ``fail_next`` and ``calls``; it must set ``self.faults`` in ``__init__``."""

    faults: Faults

    def fail_next(
        self,
        count: int,
        error: Exception | ErrorFactory,
        method: str | None = None,
        *,
        after: bool = False,
    ) -> None:
        """See ``Faults.fail_next``; method names are those of the backend's contract."""
        self.faults.fail_next(count, error, method, after=after)

    @property
    def calls(self) -> Counter[str]:
        """Requests made so far, by method name (``pull``, ``changes``, ``get``, ...)."""
        return self.faults.calls
