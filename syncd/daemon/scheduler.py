"""The jobs: per sync an incremental run and a full scan, plus one-off runs on request.

APScheduler 3's ``AsyncIOScheduler`` runs every job as a task on the daemon's own event loop.
Per sync:

* ``NAME:incremental`` every ``interval`` (jitter up to a tenth of it, at most 30 s, so
  syncs configured alike do not hit their providers in step), first at start-up;
* ``NAME:full`` every ``full_scan_interval``, a windowed listing that finds hard deletes;
* ``NAME:soon``, one-off: a webhook delivery (debounced: deliveries arriving before it runs
  join it) or an early retry after a transient failure.

Every job has ``max_instances=1`` and ``coalesce=True``: a run that is still going when the
next one is due makes the next one skip, and runs missed while the loop was busy collapse
into one. The jobs only call ``Runner.run``, which serialises runs of one sync and applies
backoff, so the scheduler itself never waits on a provider.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from syncd.config import Config
from syncd.daemon.runner import Runner

#: Seconds a webhook-triggered run waits for more deliveries to join it.
DEBOUNCE = 2.0
MAX_JITTER = 30.0

# APScheduler logs every job start and end at INFO; the runner logs what matters.
logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _jitter(seconds: float) -> float:
    return min(seconds / 10, MAX_JITTER)


class SyncScheduler:
    def __init__(self, runner: Runner, debounce: float = DEBOUNCE) -> None:
        self.runner = runner
        self.debounce = debounce
        self.accounts: dict[str, list[str]] = {}
        self.scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
        )
        runner.retry = self.run_soon

    @property
    def running(self) -> bool:
        return bool(self.scheduler.state == STATE_RUNNING)

    def plan(self, config: Config, names: Iterable[str]) -> None:
        """(Re)create the jobs of syncs ``names``; jobs of syncs not named are removed.

        A sync new to the scheduler runs at once; one it already had (a reload) next runs
        one interval from now, so a reload does not make every sync run at the same moment.
        """
        wanted = set(names)
        now = datetime.now(UTC)
        known = set()
        for job in self.scheduler.get_jobs():
            name = job.id.split(":", 1)[0]
            known.add(name)
            if name not in wanted:
                job.remove()
        self.accounts = {}
        for name in sorted(wanted):
            sync = config.sync(name)
            self.accounts.setdefault(sync.provider, []).append(name)
            every = sync.interval.total_seconds()
            full = sync.full_scan_interval.total_seconds()
            self.scheduler.add_job(
                self.runner.run,
                IntervalTrigger(seconds=every, jitter=_jitter(every), timezone=UTC),
                args=[name, False],
                id=f"{name}:incremental",
                name=f"{name} incremental",
                replace_existing=True,
                next_run_time=now + timedelta(seconds=every) if name in known else now,
            )
            self.scheduler.add_job(
                self.runner.run,
                IntervalTrigger(seconds=full, jitter=_jitter(full), timezone=UTC),
                args=[name, True],
                id=f"{name}:full",
                name=f"{name} full scan",
                replace_existing=True,
            )

    def start(self) -> None:
        self.scheduler.start()

    def pause(self) -> None:
        """No job starts from now on; runs in flight go on."""
        if self.scheduler.running:
            self.scheduler.pause()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def run_soon(self, name: str, delay: float) -> None:
        """Run sync ``name`` in ``delay`` seconds, unless a one-off run is due sooner."""
        if not self.scheduler.running:
            return
        when = datetime.now(UTC) + timedelta(seconds=delay + 0.05)
        job = self.scheduler.get_job(f"{name}:soon")
        if job is not None and job.next_run_time is not None and job.next_run_time <= when:
            return
        self.scheduler.add_job(
            self.runner.run,
            DateTrigger(run_date=when, timezone=UTC),
            args=[name, False],
            id=f"{name}:soon",
            name=f"{name} soon",
            replace_existing=True,
        )

    def poke(self, account: str) -> list[str]:
        """A webhook said ``account`` changed: run its syncs after the debounce delay."""
        names = self.accounts.get(account, [])
        for name in names:
            self.run_soon(name, self.debounce)
        return names
