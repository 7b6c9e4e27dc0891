"""The collector's policy of the worker and ``replay`` (``streams.gcpolicy``): what survives a
full collection is frozen (later passes do not walk it), objects are still freed by reference
counting, and cyclic garbage frozen alive is freed after the rescan interval."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from streams import gcpolicy


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def clock() -> Iterator[Clock]:
    c = Clock()
    gcpolicy.uninstall()
    gcpolicy.install(rescan_s=600.0, clock=c)
    try:
        yield c
    finally:
        gcpolicy.uninstall()


def test_a_full_collection_freezes_what_survives_it(clock: Clock) -> None:
    before = gc.get_freeze_count()
    # long-lived state (objects the collector tracks: a dict of ints alone is not tracked)
    state = [Node() for _ in range(1000)]
    gc.collect()
    assert gc.get_freeze_count() >= before + len(state)
    assert gcpolicy.stats()["freezes"] >= 1
    # frozen objects are still freed by reference counting at once (an evicted entity)
    probe = Node()
    ref = weakref.ref(probe)
    gc.collect()
    del probe
    assert ref() is None


def test_cyclic_garbage_frozen_alive_is_freed_after_the_rescan_interval(clock: Clock) -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: reference counting alone never frees it
    ref = weakref.ref(a)
    gc.collect()  # alive: frozen
    del a, b
    gc.collect()
    assert ref() is not None  # the cost of freezing: held until the rescan
    clock.t = 601.0
    gc.collect()  # this pass unfreezes (it did not walk the frozen cycle) ...
    assert gcpolicy.stats()["rescans"] == 1
    gc.collect()  # ... the next walks everything and frees it
    assert ref() is None


def test_without_the_policy_cpython_decides() -> None:
    gcpolicy.uninstall()
    before = gc.get_freeze_count()
    gc.collect()
    assert gc.get_freeze_count() == before


def test_what_exists_at_install_is_frozen_at_once() -> None:
    """The modules and the engine built before the input starts are never walked by a
    full pass (``install`` freezes them); ``uninstall`` gives them back to the collector."""
    gcpolicy.uninstall()
    existing = len(gc.get_objects())
    gcpolicy.install(rescan_s=600.0, clock=Clock())
    try:
        assert gc.get_freeze_count() >= existing
    finally:
        gcpolicy.uninstall()
    assert gc.get_freeze_count() == 0
