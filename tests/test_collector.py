"""During a cycle the collector skips what existed before it and runs less often; afterwards
everything is as it was."""

from __future__ import annotations

import gc
import weakref

import pytest

from syncd.reconcile.collector import YOUNG_THRESHOLD, quiet_collector


def test_freeze_is_shared_by_overlapping_cycles_and_undone_by_the_last() -> None:
    assert gc.get_freeze_count() == 0
    with quiet_collector():
        frozen = gc.get_freeze_count()
        assert frozen > 0
        made_meanwhile = [[] for _ in range(100)]  # would be frozen by a second freeze
        # Frozen objects freed by reference counting leave the count, so it may only fall;
        # a second freeze would raise it by at least the hundred lists made meanwhile.
        with quiet_collector():  # a second sync starting meanwhile freezes nothing more
            assert gc.get_freeze_count() <= frozen
        assert 0 < gc.get_freeze_count() <= frozen  # the first is still running
        assert len(made_meanwhile) == 100
    assert gc.get_freeze_count() == 0


def test_a_failed_cycle_unfreezes_too() -> None:
    with pytest.raises(RuntimeError), quiet_collector():
        raise RuntimeError("backend down")
    assert gc.get_freeze_count() == 0


def test_garbage_made_before_the_cycle_is_collected_after_it() -> None:
    class Node:
        other: Node | None = None

    a, b = Node(), Node()
    a.other, b.other = b, a  # a reference cycle only the collector frees
    watch = weakref.ref(a)
    del a, b
    with quiet_collector():
        gc.collect()  # frozen: the pair survives this collection
        assert watch() is not None
    gc.collect()
    assert watch() is None


def test_young_threshold_is_raised_meanwhile_and_restored_by_the_last() -> None:
    before = gc.get_threshold()
    with quiet_collector():
        assert gc.get_threshold() == (max(before[0], YOUNG_THRESHOLD), *before[1:])
        with quiet_collector():
            pass
        assert gc.get_threshold()[0] == max(before[0], YOUNG_THRESHOLD)  # the first still runs
    assert gc.get_threshold() == before


def test_a_collector_switched_off_stays_off() -> None:
    before = gc.get_threshold()
    gc.set_threshold(0)
    try:
        with quiet_collector():
            assert gc.get_threshold()[0] == 0
        assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*before)
