"""What the web app reads: the daemon's current config, feeds, runner and metrics.

One mutable object the daemon owns and updates on reload; handlers look it up per request
(``context(request)``), so a reload takes effect for the next request without a restart of
the web server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from starlette.requests import Request

from syncd.config import Config
from syncd.daemon.metrics import Metrics
from syncd.daemon.runner import Runner
from syncd.feeds import FeedStore
from syncd.providers.base import Provider
from syncd.state.store import Store


def _never() -> bool:
    return False


def _nobody(account: str) -> list[str]:
    return []


@dataclass
class WebContext:
    config: Config
    store: Store
    feeds: FeedStore
    runner: Runner
    metrics: Metrics
    providers: Mapping[str, Provider] = field(default_factory=dict)
    scheduler_running: Callable[[], bool] = _never
    poke: Callable[[str], list[str]] = _nobody  # a webhook says an account changed

    def problems(self) -> list[str]:
        """Why the daemon is unhealthy; empty when it is healthy."""
        down = [] if self.scheduler_running() else ["scheduler not running"]
        return down + self.runner.problems()


def context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.syncd
    return ctx
