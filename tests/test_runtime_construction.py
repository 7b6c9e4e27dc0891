"""The runtime's objects are built by their constructors, and configured when built.

``SideEngines`` (the combiner's scorers, the burst engines) used to subclass ``Runtime`` and
skip its ``__init__``; the runtime's methods then guarded themselves against attributes it did
not set, and ``attach`` edited the built runtime's engine configuration. Now ``Runtime`` and
``SideEngines`` both build on ``PartitionEngines`` through its constructor, and the
combiner's remote kinds and the burst detectors are given to the ``Runtime`` when it is built.
No broker here: a Faust app that never connects."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import faust
import pytest

from detectors.engine import discover
from streams import bursts, combine
from streams.runtime import PartitionEngines, Runtime
from streams.side import SideEngines
from tests.helpers import bare_runtime

ROOT = Path(__file__).resolve().parent.parent


def test_nothing_in_streams_or_tests_builds_a_runtime_without_its_init() -> None:
    """No ``X.__new__(X)`` in streams/ (but in the checkpoint decoder, streams/snapshot.py,
    which restores a saved object's state as pickle would, and builds nothing half-way), none
    of the runtime's classes in tests/."""
    runtime_classes = {"Runtime", "PartitionEngines", "SideEngines"}
    found = []
    for path in sorted([*(ROOT / "streams").rglob("*.py"), *(ROOT / "tests").rglob("*.py")]):
        in_tests = path.parent.name == "tests"
        if path == ROOT / "streams" / "snapshot.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "__new__" and node.args
                    and isinstance(node.args[0], ast.Name)
                    and (not in_tests or node.args[0].id in runtime_classes)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_side_engines_are_partition_engines_of_their_own_topic_and_table() -> None:
    rt = bare_runtime(partitions=2)
    side = SideEngines(rt.app, rt, rt.settings, "aw-side", "side-checkpoints",
                       ("bulk_lookup",))
    assert isinstance(side, PartitionEngines) and not isinstance(side, Runtime)
    assert side.input_topics == ("aw-side",) and side.check_behind == ("aw-side",)
    assert side.table.name == "side-checkpoints" and side.table is not rt.table
    assert side.config.detectors == ("bulk_lookup",) and side.config.salt == rt.config.salt
    assert side.metrics is rt.metrics and side.directory is rt.directory
    st = side.state(0)  # a fresh engine: nothing in the table, nothing committed
    assert not st.restored and side.parts == {0: st}
    assert rt.parts == {}  # the input runtime's partitions are its own


def test_the_runtime_is_configured_when_built_and_attach_leaves_it_alone() -> None:
    rt = bare_runtime(partitions=2)
    assert rt.config.remote_kinds == () and rt.config.detectors is None
    with pytest.raises(ValueError, match="remote kinds"):
        combine.attach(rt.app, rt, rt.settings)
    with pytest.raises(ValueError, match="burst detectors"):
        bursts.attach(rt.app, rt, rt.settings)

    leave = bursts.input_leave_out(rt.settings)
    assert leave == bursts.BURST_DETECTORS
    app = faust.App("accesswatch", broker="kafka://127.0.0.1:1", store="memory://")
    rt = Runtime(app, rt.settings, rt.metrics,
                 remote_kinds=combine.input_remote_kinds(rt.settings), leave_out=leave)
    before = dataclasses.replace(rt.config)
    assert rt.config.remote_kinds == combine.REMOTE_KINDS
    assert rt.config.detectors == tuple(d for d in discover() if d not in leave)
    combine.attach(rt.app, rt, rt.settings)
    bursts.attach(rt.app, rt, rt.settings)
    assert rt.config == before  # attach declared topics and agents, changed no configuration


def test_one_partition_keeps_every_detector_in_the_input_engines() -> None:
    rt = bare_runtime(partitions=1)
    assert bursts.input_leave_out(rt.settings) == ()
    assert bursts.attach(rt.app, rt, rt.settings) is None
    # and bulk_lookup scores every view in place, as replay: no combiner (h-wone)
    assert combine.input_remote_kinds(rt.settings) == ()
    assert combine.attach(rt.app, rt, rt.settings) is None
