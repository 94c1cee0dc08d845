"""When a backend may be tried again: exponential backoff with jitter, and a circuit breaker.

One ``Gate`` per backend (a provider account or a calendar), shared by every sync that uses
it, because a provider's rate limit and outage are per account, not per sync. A sync runs
only when all its gates are open; a failure closes only the gate of the backend that
failed, so a sync whose calendar is down does not hold up another sync of the same account.

Promises:

* After the n-th failure in a row the backend is left alone for a random time between half
  and all of ``base * 2**(n-1)`` (capped): full jitter, so syncs that failed together do not
  retry together.
* A ``RateLimited`` error's ``retry_after`` is a floor: never retried sooner than asked.
* After ``trip_after`` failures in a row the breaker opens: the backend is left alone for a
  cooldown that doubles each time it opens again (capped). When the cooldown ends exactly
  one run is let through (half-open); its success closes the breaker, its failure reopens it.

Time is a monotonic clock in seconds, injected so tests step it instead of sleeping.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from syncd.errors import RateLimited


class Breaker(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    base: float = 5.0
    cap: float = 300.0
    trip_after: int = 5
    cooldown: float = 300.0
    cooldown_cap: float = 3600.0


@dataclass
class Gate:
    """The health of one backend as the scheduler sees it."""

    name: str
    policy: BackoffPolicy = field(default_factory=BackoffPolicy)
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0
    not_before: float = 0.0
    breaker: Breaker = Breaker.CLOSED
    trips: int = 0
    trial: bool = False  # a half-open trial run is in flight

    def ready(self) -> bool:
        """May a run use this backend now? Has no effect; ``begin`` takes the slot."""
        if self.clock() < self.not_before:
            return False
        return not (self.breaker is Breaker.HALF_OPEN and self.trial)

    def begin(self) -> None:
        """A run that ``ready`` admitted starts; after a cooldown it is the one trial."""
        if self.breaker is Breaker.OPEN:
            self.breaker = Breaker.HALF_OPEN
        if self.breaker is Breaker.HALF_OPEN:
            self.trial = True

    def succeeded(self) -> None:
        self.failures, self.trips, self.not_before = 0, 0, 0.0
        self.breaker, self.trial = Breaker.CLOSED, False

    def released(self) -> None:
        """A run ended without telling anything about this backend (another one failed)."""
        if self.breaker is Breaker.HALF_OPEN and self.trial:
            self.trial = False
            self.breaker = Breaker.OPEN  # the cooldown is over: the next run is the trial

    def failed(self, error: BaseException) -> float:
        """Record a failure; returns the seconds until the backend may be tried again."""
        policy = self.policy
        self.failures += 1
        ceiling = min(policy.cap, policy.base * 2 ** min(self.failures - 1, 30))
        delay = self.rng.uniform(ceiling / 2, ceiling)
        if isinstance(error, RateLimited):
            delay = max(delay, error.retry_after)
        if self.breaker is Breaker.HALF_OPEN or self.failures >= policy.trip_after:
            self.trips += 1
            self.breaker = Breaker.OPEN
            cooldown = min(policy.cooldown_cap, policy.cooldown * 2 ** min(self.trips - 1, 30))
            delay = max(delay, cooldown)
        self.trial = False
        self.not_before = self.clock() + delay
        return delay

    def wait(self) -> float:
        """Seconds until ``ready`` may say yes again (0 when it may now)."""
        return max(0.0, self.not_before - self.clock())
