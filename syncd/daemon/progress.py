"""A progress line on a terminal while a run takes long, as a first sync of a big account does.

The cycle itself reports no progress, but it journals its whole plan before applying it and
marks each action done as it goes, so the journal of the running run is the progress: done
over total. Before the plan exists (the first pull of a large window) the line says so. It
appears only on a terminal, only after ``delay`` seconds, costs one small query per redraw,
and is wiped when the run ends, so under systemd or Docker nothing of it reaches the logs.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from sqlalchemy import Engine, func, select

from syncd.state.tables import JournalRow, RunRow

J = JournalRow.__table__  # type: ignore[attr-defined]
R = RunRow.__table__  # type: ignore[attr-defined]
WIDTH = 30


def bar(sync: str, done: int, total: int) -> str:
    if total == 0:
        return f"{sync}: reading changes..."
    filled = WIDTH * done // total
    return f"{sync}: [{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{total} actions"


class Progress:
    def __init__(
        self, engine: Engine, stream: TextIO | None = None, delay: float = 2.0, every: float = 0.5
    ) -> None:
        self.engine = engine
        self.stream = sys.stderr if stream is None else stream
        self.delay = delay
        self.every = every
        self._width = 0

    @property
    def enabled(self) -> bool:
        try:
            return self.stream.isatty()
        except (AttributeError, ValueError):
            return False

    def count(self, sync: str) -> tuple[int, int]:
        """(done, total) actions of the sync's running run; (0, 0) before its plan exists."""
        with self.engine.begin() as conn:
            run = conn.execute(
                select(func.max(R.c.id)).where(R.c.sync == sync, R.c.status == "running")
            ).scalar_one_or_none()
            if run is None:
                return 0, 0
            rows = conn.execute(
                select(J.c.state, func.count()).where(J.c.run_id == run).group_by(J.c.state)
            ).all()
        states = {state: int(n) for state, n in rows}
        return sum(n for s, n in states.items() if s != "pending"), sum(states.values())

    def draw(self, text: str) -> None:
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)

    def clear(self) -> None:
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    async def watch(self, sync: str) -> None:
        """Redraw until cancelled (when the run ends); the caller then calls ``clear``."""
        await asyncio.sleep(self.delay)
        while True:
            self.draw(bar(sync, *self.count(sync)))
            await asyncio.sleep(self.every)
