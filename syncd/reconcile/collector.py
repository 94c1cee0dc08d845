"""Keeping Python's cycle collector out of the way while a sync cycle runs.

A cycle of 10,000 appointments allocates a few hundred thousand small containers (actions,
targets, state changes) that stay alive until the cycle ends. Two costs follow, and this
module takes both away for the length of a cycle:

* Each time enough of them pile up, CPython runs a full collection, which walks every tracked
  object in the process: all the modules, the loaded configuration, the backends' clients --
  work that grows with the process, not with the cycle, and that found nothing to free. On the
  memory-backend benchmark it was about a tenth of a first sync. ``gc.freeze()`` moves every
  object that exists now into a permanent generation that collections skip;
  ``gc.unfreeze()`` hands them back afterwards, so garbage among them is collected later,
  not leaked.
* The youngest generation is collected every 700 allocations by default: about 240 times in
  a cycle of 10,000 updates, each walking survivors that are all still in use. Its threshold
  is raised to ``YOUNG_THRESHOLD`` meanwhile, which cut the collector's time in such a cycle
  from about 80 ms to about 35 ms. Garbage in reference cycles still goes, a little later.

Objects made during the cycle are collected as usual. Cycles running at the same time share
one setting: the first to start applies it, the last to finish puts back what was there.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

YOUNG_THRESHOLD: Final = 5000

_running = 0
_saved_thresholds: tuple[int, int, int] = (0, 0, 0)


@contextmanager
def quiet_collector() -> Iterator[None]:
    """Within this block, collections skip the objects that existed when the first of the
    running blocks was entered, and the youngest generation is collected less often."""
    global _running, _saved_thresholds
    if _running == 0:
        gc.freeze()
        young, middle, old = _saved_thresholds = gc.get_threshold()
        if young:  # 0 means collection is switched off: leave it that way
            gc.set_threshold(max(young, YOUNG_THRESHOLD), middle, old)
    _running += 1
    try:
        yield
    finally:
        _running -= 1
        if _running == 0:
            gc.set_threshold(*_saved_thresholds)
            gc.unfreeze()
