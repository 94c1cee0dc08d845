"""Backoff with jitter, Retry-After and the circuit breaker of one backend (``Gate``)."""

from __future__ import annotations

import random

from syncd.daemon.backoff import BackoffPolicy, Breaker, Gate
from syncd.errors import RateLimited, TransientError
from tests.daemon_kit import StepClock

POLICY = BackoffPolicy(base=10, cap=80, trip_after=4, cooldown=300, cooldown_cap=1000)


def gate(clock: StepClock, seed: int = 1) -> Gate:
    return Gate("provider:shop", POLICY, clock, random.Random(seed))


def boom() -> TransientError:
    return TransientError("shop", "503")


def test_delays_double_up_to_the_cap_with_full_jitter() -> None:
    clock = StepClock()
    g = gate(clock)
    ceilings = [10, 20, 40]
    for ceiling in ceilings:
        delay = g.failed(boom())
        assert ceiling / 2 <= delay <= ceiling
        assert not g.ready()
        clock.advance(delay)
        assert g.ready()
    jittered = {round(gate(StepClock(), seed).failed(boom()), 3) for seed in range(5)}
    assert len(jittered) > 1  # not every backend retries at the same moment


def test_retry_after_is_a_floor() -> None:
    clock = StepClock()
    g = gate(clock)
    delay = g.failed(RateLimited("shop", "429", retry_after=120))
    assert delay == 120
    clock.advance(119)
    assert not g.ready()
    clock.advance(1)
    assert g.ready()


def test_the_breaker_opens_lets_one_trial_through_and_closes_on_success() -> None:
    clock = StepClock()
    g = gate(clock)
    for _ in range(3):
        clock.advance(g.failed(boom()))
    assert g.breaker is Breaker.CLOSED
    delay = g.failed(boom())  # the fourth failure in a row trips the breaker
    assert g.breaker is Breaker.OPEN
    assert delay >= 300
    clock.advance(delay)
    assert g.ready()
    g.begin()
    assert g.breaker is Breaker.HALF_OPEN
    assert not g.ready()  # one trial at a time
    g.succeeded()
    assert (g.breaker, g.failures, g.ready()) == (Breaker.CLOSED, 0, True)


def test_a_failed_trial_reopens_for_longer() -> None:
    clock = StepClock()
    g = gate(clock)
    for _ in range(4):
        clock.advance(g.failed(boom()))
    g.begin()
    delay = g.failed(boom())
    assert g.breaker is Breaker.OPEN
    assert delay >= 600
    clock.advance(delay)
    g.begin()
    g.released()  # the run failed elsewhere: this backend's trial is still owed
    assert g.breaker is Breaker.OPEN
    assert g.ready()
