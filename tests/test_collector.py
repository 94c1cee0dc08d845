"""The cycle collector skips what existed before a cycle, and gets it all back afterwards."""

from __future__ import annotations

import gc
import weakref

import pytest

from syncd.reconcile.collector import older_objects_frozen


def test_freeze_is_shared_by_overlapping_cycles_and_undone_by_the_last() -> None:
    assert gc.get_freeze_count() == 0
    with older_objects_frozen():
        frozen = gc.get_freeze_count()
        assert frozen > 0
        made_meanwhile = [[] for _ in range(100)]  # would be frozen by a second freeze
        # Frozen objects freed by reference counting leave the count, so it may only fall;
        # a second freeze would raise it by at least the hundred lists made meanwhile.
        with older_objects_frozen():  # a second sync starting meanwhile freezes nothing more
            assert gc.get_freeze_count() <= frozen
        assert 0 < gc.get_freeze_count() <= frozen  # the first is still running
        assert len(made_meanwhile) == 100
    assert gc.get_freeze_count() == 0


def test_a_failed_cycle_unfreezes_too() -> None:
    with pytest.raises(RuntimeError), older_objects_frozen():
        raise RuntimeError("backend down")
    assert gc.get_freeze_count() == 0


def test_garbage_made_before_the_cycle_is_collected_after_it() -> None:
    class Node:
        other: Node | None = None

    a, b = Node(), Node()
    a.other, b.other = b, a  # a reference cycle only the collector frees
    watch = weakref.ref(a)
    del a, b
    with older_objects_frozen():
        gc.collect()  # frozen: the pair survives this collection
        assert watch() is not None
    gc.collect()
    assert watch() is None
