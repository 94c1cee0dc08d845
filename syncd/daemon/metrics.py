"""The daemon's Prometheus metrics, in a registry of its own (not the process-global one),
so two daemons in one test process never share a counter.

Labels are sync names, backend names, change kinds, error class names and HTTP statuses:
never a token, a URL or an error message, so nothing secret can reach ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from syncd.reconcile.cycle import Result

# Plan counts -> the change label of syncd_items_total.
CHANGES = {"create": "created", "update": "updated", "delete": "deleted"}
STATUSES = ("ok", "failed", "refused")
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter("syncd_runs", "Sync runs by outcome.", ["sync", "status"], registry=r)
        self.skipped = Counter(
            "syncd_runs_skipped", "Runs not started: a backend backs off.", ["sync"], registry=r
        )
        self.duration = Histogram(
            "syncd_run_duration_seconds",
            "Duration of sync runs.",
            ["sync"],
            buckets=BUCKETS,
            registry=r,
        )
        self.items = Counter(
            "syncd_items", "Calendar events changed by runs.", ["sync", "change"], registry=r
        )
        self.write_backs = Counter(
            "syncd_write_backs",
            "Calendar edits written back to the provider.",
            ["sync"],
            registry=r,
        )
        self.conflicts = Counter(
            "syncd_conflicts", "Conflicts resolved by policy.", ["sync"], registry=r
        )
        self.errors = Counter(
            "syncd_errors", "Failed runs and actions by error kind.", ["sync", "kind"], registry=r
        )
        self.lag = Gauge(
            "syncd_lag_seconds", "Seconds since the last successful run.", ["sync"], registry=r
        )
        self.backlog = Gauge(
            "syncd_journal_backlog", "Journaled actions not applied yet.", ["sync"], registry=r
        )
        self.breaker = Gauge(
            "syncd_breaker_open",
            "1 while a backend's circuit breaker is open.",
            ["backend"],
            registry=r,
        )
        self.feed_requests = Counter(
            "syncd_feed_requests", "Feed requests by HTTP status.", ["status"], registry=r
        )
        self.webhooks = Counter(
            "syncd_webhooks",
            "Webhook deliveries by provider and answer.",
            ["provider", "answer"],
            registry=r,
        )

    def declare(self, syncs: Iterable[str]) -> None:
        """Create every sync's series at zero, so a scrape before the first run sees them."""
        for sync in syncs:
            for status in STATUSES:
                self.runs.labels(sync, status)
            for change in CHANGES.values():
                self.items.labels(sync, change)
            self.write_backs.labels(sync)
            self.conflicts.labels(sync)
            self.skipped.labels(sync)

    def ran(self, result: Result, seconds: float) -> None:
        sync = result.sync
        self.runs.labels(sync, result.status).inc()
        self.duration.labels(sync).observe(seconds)
        if result.status == "refused":
            self.errors.labels(sync, "refused").inc()
        if result.status != "ok":
            return
        counts = result.plan.counts()
        for key, change in CHANGES.items():
            self.items.labels(sync, change).inc(counts.get(key, 0))
        self.write_backs.labels(sync).inc(counts.get("write-back", 0))
        self.conflicts.labels(sync).inc(counts.get("conflict", 0))
        if result.outcome.failed:
            self.errors.labels(sync, "action").inc(len(result.outcome.failed))

    def failed(self, sync: str, error: BaseException, seconds: float) -> None:
        self.runs.labels(sync, "failed").inc()
        self.duration.labels(sync).observe(seconds)
        self.errors.labels(sync, type(error).__name__).inc()

    def expose(
        self,
        lag: Mapping[str, float | None],
        backlog: Mapping[str, int],
        breakers: Mapping[str, bool],
    ) -> bytes:
        """The text exposition, with the gauges that are read at scrape time set first."""
        for sync, seconds in lag.items():
            if seconds is not None:
                self.lag.labels(sync).set(seconds)
        for sync, count in backlog.items():
            self.backlog.labels(sync).set(count)
        for backend, is_open in breakers.items():
            self.breaker.labels(backend).set(1 if is_open else 0)
        return generate_latest(self.registry)
