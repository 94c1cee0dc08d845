"""``syncd demo``: the whole sync on built-in sample data, with no account and no server.

A simulated business (the memory provider, seeded with sample appointments) books, moves
and cancels while syncd keeps a calendar in step, printing each cycle's changes. The state
database ``syncd-demo.db`` in the current directory is started afresh each time, because
the simulated business and calendar live only as long as the process.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from pathlib import Path

from syncd.commands.sync import summary
from syncd.config import embedded_default_config
from syncd.log import configure_logging
from syncd.providers.memory import MemoryProvider
from syncd.reconcile.cycle import run_cycle
from syncd.runtime import Runtime, open_store


def _fresh_database(url: str) -> None:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)


def business_day(provider: MemoryProvider, rng: random.Random) -> str:
    """One thing the simulated business does; returns what, for the demo's output."""
    current = [a for a in provider.appointments().values() if not a.cancelled]
    choice = rng.random()
    if choice < 0.4 or not current:
        start = rng.choice(current).start + timedelta(days=1) if current else None
        if start is None:
            return "nothing"
        booked = provider.book(start, start + timedelta(minutes=30), title="Walk-in")
        return f"business booked {booked.native_id}"
    picked = rng.choice(current)
    if choice < 0.8:
        provider.reschedule(
            picked.native_id, picked.start + timedelta(hours=1), picked.end + timedelta(hours=1)
        )
        return f"business moved {picked.native_id} by an hour"
    provider.cancel_by_business(picked.native_id)
    return f"business cancelled {picked.native_id}"


async def main(cycles: int, interval: float) -> int:
    config = embedded_default_config()
    configure_logging(config.log.level, config.log.format, secrets=config.secrets())
    _fresh_database(config.store.url)
    store = open_store(config)
    runtime = Runtime.build(config)
    rng = random.Random(1)
    print(f"syncd demo: {len(runtime.syncs)} sync(s) on sample data; Ctrl-C stops")
    done = 0
    try:
        while True:
            for sync in runtime.syncs:
                result = await run_cycle(store, sync)
                print(f"cycle {done + 1}: {sync.name}: {summary(result)}")
            done += 1
            if cycles and done >= cycles:
                return 0
            await asyncio.sleep(interval)
            for provider in runtime.providers.values():
                if isinstance(provider, MemoryProvider):
                    print(business_day(provider, rng))
    finally:
        await runtime.aclose()
        store.close()
