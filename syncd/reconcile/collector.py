"""Keeping Python's cycle collector off what was there before a sync cycle started.

A cycle of 10,000 appointments allocates a few hundred thousand small containers (actions,
targets, state changes) that stay alive until the cycle ends. Each time enough of them pile
up, CPython's collector runs a full collection, which walks every tracked object in the
process: all the modules, the loaded configuration, the backends' clients -- work that grows
with the process, not with the cycle, and that found nothing to free. On the memory-backend
benchmark it was about a tenth of a first sync.

``gc.freeze()`` moves every object that exists now into a permanent generation that
collections skip; ``gc.unfreeze()`` hands them back afterwards, so garbage among them is
collected later, not leaked. Objects made during the cycle are collected as usual. Cycles
running at the same time share one freeze: the first to start freezes, the last to finish
unfreezes.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_running = 0


@contextmanager
def older_objects_frozen() -> Iterator[None]:
    """Within this block, collections skip the objects that existed when the first of the
    running blocks was entered."""
    global _running
    if _running == 0:
        gc.freeze()
    _running += 1
    try:
        yield
    finally:
        _running -= 1
        if _running == 0:
            gc.unfreeze()
