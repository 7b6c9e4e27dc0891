"""A side engine (an episode builder, the combiner, a burst engine) restored behind its
group's commits reads its newest checkpoint from the changelog itself, as the input engines
do (``PartitionEngines._behind_commits``). Pure: the table, the changelog and the group's
commits are stubbed; no broker.

Seen before (issue 17, ``test_sigkill_over_four_partitions_with_batches_loses_nothing``,
about 1 run in 8): after a SIGKILL, Faust's recovery of the ``episode-checkpoints`` table
stopped short of a builder's newest checkpoint (Tansu reports end offsets low) although the
findings it covers were committed; the builder restored the older one and sought its partition
back (``admit``; the records fetched before the seek wait for the missing ones): it took
nothing more (the finding of c-000044 among them) in the 1.6 s before the worker was
stopped, and that alert was missing."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

import streams.runtime as runtime
from detectors.episodes import OBSERVERS, EpisodeBuilder
from streams.checkpoint import checkpoint_records, snapshot
from streams.side import SideEngines
from tests.helpers import bare_runtime

TOPIC = "aw-findings"
PART = 1


def _finding(origin: str, seq: int, at: float) -> dict[str, Any]:
    return {"origin": origin, "seq": seq, "at": at, "finding": {
        "detector": "impossible_travel", "entity_kind": "account", "entity_id": f"c-{seq}",
        "severity": "warning", "score": 1.0, "summary": "s", "evidence": [],
        "event_ids": [f"e{seq}"], "ts": at}}


def _side(table: dict[bytes, bytes], changelog: dict[bytes, bytes], committed: int,
          monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[int]]:
    rt = bare_runtime(partitions=4)
    side = SideEngines(rt.app, rt, rt.settings, TOPIC, "episode-checkpoints", OBSERVERS,
                       episodes=True)
    side.table = SimpleNamespace(name="episode-checkpoints", get=table.get,
                                 changelog_topic=SimpleNamespace(get_topic_name=lambda: "cl"))
    monkeypatch.setattr(runtime, "_read_partition", lambda *a, **k: dict(changelog))
    # the group's commits, as Faust's consumer holds them (streams.faust_compat)
    monkeypatch.setattr(runtime.compat, "committed_offsets",
                        lambda consumer: {TP(TOPIC, PART): committed})
    sought: list[int] = []

    async def refetch(tp: Any, offset: int, upto: int | None = None) -> bool:
        sought.append(offset)
        return True

    monkeypatch.setattr(side, "_refetch", refetch)
    return side, sought


def _checkpoint(side: Any, builder: EpisodeBuilder, offset: int) -> bytes:
    return snapshot(builder.engine, {TOPIC: offset}, keys=side.state_keys,
                    context=side._context(PART))


def test_an_episode_builder_restored_behind_its_commits_reads_the_changelog(
        monkeypatch: pytest.MonkeyPatch) -> None:
    probe, _ = _side({}, {}, 0, monkeypatch)
    builder = EpisodeBuilder(probe._fresh_engine(), partitions=4)
    builder.add(_finding("o1", 1, 100.0), 0)
    old = _checkpoint(probe, builder, 55)  # what Faust's table recovery got
    builder.add(_finding("o1", 2, 200.0), 0)
    new = _checkpoint(probe, builder, 60)  # written, flushed, then offsets up to 60 acked
    table = dict(checkpoint_records(PART, old, 0))
    changelog = {**table, **dict(checkpoint_records(PART, new, 1))}  # latest value per key

    side, sought = _side(table, changelog, committed=61, monkeypatch=monkeypatch)
    st = side.state(PART)
    assert st.restored and st.offsets == {TOPIC: 60}  # the newest checkpoint, not 55's
    restored = EpisodeBuilder(st.engine, partitions=4)
    assert restored.pending == 2 and st.engine.__dict__["_relay_seen"] == {"o1": 2}
    # the first record the consumer hands over (at the committed offset) is taken at once:
    # nothing is sought back, nothing held back for REFETCH_WINDOW
    msg = SimpleNamespace(topic=TOPIC, partition=PART, offset=61)
    assert asyncio.run(side.admit(st, msg)) is True and sought == []


def test_a_builder_whose_table_is_current_does_not_read_the_changelog(
        monkeypatch: pytest.MonkeyPatch) -> None:
    probe, _ = _side({}, {}, 0, monkeypatch)
    builder = EpisodeBuilder(probe._fresh_engine(), partitions=4)
    builder.add(_finding("o1", 1, 100.0), 0)
    table = dict(checkpoint_records(PART, _checkpoint(probe, builder, 60), 0))

    def no_read(*a: Any, **k: Any) -> dict[bytes, bytes]:
        raise AssertionError("the changelog was read although the table was current")

    side, sought = _side(table, {}, committed=61, monkeypatch=monkeypatch)
    monkeypatch.setattr(runtime, "_read_partition", no_read)
    st = side.state(PART)
    assert st.offsets == {TOPIC: 60}
    assert asyncio.run(side.admit(st, SimpleNamespace(topic=TOPIC, partition=PART,
                                                      offset=61))) is True and sought == []
