"""The reconcile bench's instrument: phase times, rows loaded and SQL statements of a cycle.

Phases are timed by wrapping engine functions for the bench's lifetime; the engine's files
are not changed. See ``bench/README.md`` for what each phase holds.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event

from syncd.calendars.memory import MemoryCalendar
from syncd.providers.memory import MemoryProvider
from syncd.reconcile import cycle
from syncd.reconcile.apply import Applier
from syncd.reconcile.render import SyncRenderer
from syncd.state.store import Store

TOP_PHASES = ("pull", "views", "load_records", "plan", "journal", "apply")
APPLY_PARTS = ("render", "calendar_writes", "commit")
PLAN_APPLY = ("plan", "journal", "apply")


@dataclass
class Probe:
    """Time per phase, rows loaded by ``Store.records``, SQL statements run.

    Installs itself by replacing engine functions with timing wrappers for the bench's
    lifetime (``installed()``); the engine files are not touched. Phases called a few times a
    cycle get wall and CPU time; the parts called once per appointment (render, calendar
    writes) get wall time only, because ``process_time()`` costs ~2 us a call and would
    distort what it measures.
    """

    wall: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    cpu: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    records_loaded: int = 0
    sql_statements: int = 0

    def reset(self) -> None:
        self.wall.clear()
        self.cpu.clear()
        self.records_loaded = 0
        self.sql_statements = 0

    def _timed(self, label: str, func: Callable[..., Any], cpu: bool) -> Callable[..., Any]:
        wall_spent, cpu_spent = self.wall, self.cpu
        clock = time.process_time if cpu else _no_clock
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                begin, begin_cpu = time.perf_counter(), clock()
                try:
                    return await func(*args, **kwargs)
                finally:
                    wall_spent[label] += time.perf_counter() - begin
                    cpu_spent[label] += clock() - begin_cpu

            return timed_async

        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            begin, begin_cpu = time.perf_counter(), clock()
            try:
                result = func(*args, **kwargs)
            finally:
                wall_spent[label] += time.perf_counter() - begin
                cpu_spent[label] += clock() - begin_cpu
            if label == "load_records":
                self.records_loaded += len(result)
            return result

        return timed

    @contextmanager
    def installed(self, per_item: bool = True) -> Iterator[None]:
        """Wrap the engine's phases; ``per_item`` also wraps the functions called once per
        appointment (render, calendar writes), whose wrappers cost a few percent."""
        targets: list[tuple[Any, str, str, bool]] = [
            (MemoryProvider, "pull", "pull", True),
            (MemoryCalendar, "changes", "pull", True),
            (cycle, "provider_view", "views", True),
            (cycle, "calendar_view", "views", True),
            (Store, "records", "load_records", True),
            (cycle, "plan", "plan", True),
            (Store, "journal", "journal", True),
            (Applier, "run", "apply", True),
            (SyncRenderer, "render", "render", False),
            (MemoryCalendar, "create", "calendar_writes", False),
            (MemoryCalendar, "update", "calendar_writes", False),
            (MemoryCalendar, "delete", "calendar_writes", False),
            (Store, "commit", "commit", True),
        ]
        if not per_item:
            targets = [t for t in targets if t[3]]  # the per-appointment ones get no CPU clock
        for owner, name, _, _ in targets:
            if name not in vars(owner):
                raise RuntimeError(f"bench probe: {owner.__name__}.{name} is gone; update Probe")
        saved = [(owner, name, vars(owner)[name]) for owner, name, _, _ in targets]
        try:
            for owner, name, label, cpu in targets:
                setattr(owner, name, self._timed(label, vars(owner)[name], cpu))
            yield
        finally:
            for owner, name, original in saved:
                setattr(owner, name, original)

    def count_sql(self, store: Store) -> None:
        def before(*_args: Any) -> None:
            self.sql_statements += 1

        event.listen(store.engine, "before_cursor_execute", before)


def _no_clock() -> float:
    return 0.0
