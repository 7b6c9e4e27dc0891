"""Runtime bookkeeping: records reach the engine without holes (streams.runtime.Runtime.admit /
watch_delivery); periodic checkpoints back off when pickling is slow.

Seen after a SIGKILL restart on the embedded broker: records fetched but never handed to the
agent, then later records of the same partition; Faust books the hole as a "gap" its commit
steps over, so those events would be lost for good (and the restarted worker, missing logins,
raised an unissued_session alert the replay does not have). The runtime fills the hole: seek
back, drop what was fetched beyond it, take the records in offset order. The consumer is a
stand-in that records seeks (a unit test of the runtime's bookkeeping; the broker tests in
tests/test_recovery.py run the real thing)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP
from intervaltree import IntervalTree

from streams import checkpoint as ck_mod
from streams import runtime as rt_mod
from streams.runtime import PartitionState, Runtime
from tests.helpers import bare_runtime

TOPIC = "auth-logins"


class _Consumer:
    def __init__(self, highwater: int | None = None, earliest: int | None = 0) -> None:
        self.seeks: list[tuple[TP, int]] = []
        self._gap: dict[TP, IntervalTree] = {}
        self._paused_partitions: set[TP] = set()
        self._committed_offset: dict[TP, int | None] = {}
        self.hw = highwater
        self.earliest = earliest  # the first offset the broker still has (None: no answer)
        self.asked_earliest = 0

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        self.asked_earliest += 1
        if self.earliest is None:
            raise ConnectionError("no answer")
        return dict.fromkeys(tps, self.earliest)

    def assignment(self) -> set[TP]:
        return {TP(TOPIC, 0)}

    def highwater(self, tp: TP) -> int | None:
        return self.hw


def _runtime(consumer: _Consumer) -> Runtime:
    """A runtime built by its constructor, with ``consumer`` as its Faust app's consumer."""
    rt: Runtime = bare_runtime()
    rt.app.consumer = consumer  # type: ignore[assignment]
    return rt


def _msg(offset: int) -> Any:
    return SimpleNamespace(topic=TOPIC, partition=0, offset=offset)


def _admit(rt: Runtime, st: PartitionState, offsets: list[int]) -> list[int]:
    async def run() -> list[int]:
        return [o for o in offsets if await rt.admit(st, _msg(o))]

    return asyncio.run(run())


def test_a_hole_after_a_restored_checkpoint_is_fetched_again_in_order() -> None:
    consumer = _Consumer()
    tp = TP(TOPIC, 0)
    consumer._gap[tp] = IntervalTree.from_tuples([(92, 122)])  # Faust booked the hole
    rt = _runtime(consumer)
    st = PartitionState(engine=None, offsets={TOPIC: 90}, delivered={TOPIC: 90})  # type: ignore[arg-type]
    # 122 and 123 were fetched before the seek; then the refetch delivers 91..125
    taken = _admit(rt, st, [85, 122, 123, *range(91, 126)])
    assert consumer.seeks == [(tp, 91)]
    assert rt.metrics.sample("accesswatch_refetches_total") == 1.0
    assert not consumer._gap[tp].overlaps(91, 123), "the hole left in Faust's commit books"
    assert taken == [85, *range(91, 126)]  # 85: inside the checkpoint, held for its ack
    assert _admit(rt, st, [100, 125]) == []  # taken already in this life
    assert _admit(rt, st, [126]) == [126]


def test_a_hole_the_broker_no_longer_has_is_accepted_after_a_few_tries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Retention deleted the records: each refetch starts beyond the hole again. After
    ``REFETCH_TRIES`` seeks the runtime goes on rather than seeking forever."""
    consumer = _Consumer()
    rt = _runtime(consumer)
    st = PartitionState(engine=None, offsets={TOPIC: 10}, delivered={TOPIC: 10})  # type: ignore[arg-type]
    clock = [1000.0]
    monkeypatch.setattr(rt_mod.time, "monotonic", lambda: clock[0])
    taken: list[int] = []
    for _ in range(rt_mod.REFETCH_TRIES + 1):
        clock[0] += rt_mod.REFETCH_WINDOW + 1  # nothing from before the seek is coming
        taken += _admit(rt, st, [50])
    assert len(consumer.seeks) == rt_mod.REFETCH_TRIES
    assert taken == [50]
    assert _admit(rt, st, [51]) == [51]


def test_a_fresh_partition_starting_where_the_broker_starts_has_no_hole_to_fill() -> None:
    consumer = _Consumer(earliest=500)  # retention deleted what was before 500
    rt = _runtime(consumer)
    st = PartitionState(engine=None)  # type: ignore[arg-type]
    assert _admit(rt, st, [500, 501, 502]) == [500, 501, 502]
    assert consumer.seeks == []
    assert consumer.asked_earliest == 1  # once, for the partition's first record


def test_a_hole_at_the_start_of_a_fresh_partition_is_fetched_again() -> None:
    """Nothing committed, no checkpoint (a first start, or an episode builder whose
    checkpoint the table lacked), and Faust dropped the first records it fetched (a flow
    stop during recovery; more of them with ``--fast-deliver``): the first record to arrive
    is offset 7. Taken as the start, records 0..6 were lost and Faust's commit stepped over
    them; the partition is sought back to the first offset the broker has instead."""
    consumer = _Consumer(earliest=0)
    tp = TP(TOPIC, 0)
    rt = _runtime(consumer)
    st = PartitionState(engine=None)  # type: ignore[arg-type]
    taken = _admit(rt, st, [7, 8, *range(0, 10)])  # 7, 8 fetched before the seek
    assert consumer.seeks == [(tp, 0)]
    assert taken == list(range(0, 10))
    assert st.next_offset(TOPIC) == 10


def test_a_hole_after_the_committed_offset_of_a_fresh_state_is_fetched_again() -> None:
    """The group committed 40 (the next to read) but the table held no checkpoint (a fresh
    engine takes over from the committed offsets): the first record must be 40."""
    consumer = _Consumer(earliest=0)
    tp = TP(TOPIC, 0)
    consumer._committed_offset[tp] = 40
    rt = _runtime(consumer)
    st = PartitionState(engine=None)  # type: ignore[arg-type]
    assert _admit(rt, st, [45, *range(40, 47)]) == list(range(40, 47))
    assert consumer.seeks == [(tp, 40)]
    assert consumer.asked_earliest == 0  # the commit said where to start


def _ticker(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``tick(dt)``: move the runtime's monotonic clock on by ``dt`` s, then run one
    ``watch_delivery``."""
    clock = [1000.0]
    monkeypatch.setattr(rt_mod.time, "monotonic", lambda: clock[0])

    def tick(dt: float) -> None:
        clock[0] += dt
        asyncio.run(rt.watch_delivery())

    return tick

def _restored(committed: int, covered: int) -> tuple[_Consumer, TP, Runtime, PartitionState]:
    """A runtime whose group committed ``committed`` (the next to read) and a state
    restored from a checkpoint covering up to ``covered``."""
    consumer = _Consumer(earliest=0)
    tp = TP(TOPIC, 0)
    consumer._committed_offset[tp] = committed
    st = PartitionState(engine=None, offsets={TOPIC: covered},  # type: ignore[arg-type]
                        restored=True)
    return consumer, tp, _runtime(consumer), st

def test_records_below_a_restored_checkpoint_but_not_committed_are_fetched_again() -> None:
    """The checkpoint covers up to 90, the group committed only up to 50 (the next to read),
    and Faust dropped 50..69 at a flow stop without booking a gap: the first record to
    arrive is 70. Those records need no engine, but they are acked with the next checkpoint
    and Faust's commit waits for every one of them: skipped, the commit stayed at 50 for
    good (the ten-SIGKILL test waited for it). The partition is sought back to 50."""
    consumer, tp, rt, st = _restored(committed=50, covered=90)
    assert _admit(rt, st, [70, *range(50, 95)]) == list(range(50, 95))
    assert consumer.seeks == [(tp, 50)]
    assert st.next_offset(TOPIC) == 95


def test_records_the_group_committed_beyond_a_restored_checkpoint_are_fetched_again() -> None:
    """The group committed beyond what the restored checkpoint covers (the table missed the
    newest checkpoint): Faust starts at 120, the engine needs 91 on."""
    consumer, tp, rt, st = _restored(committed=120, covered=90)
    assert _admit(rt, st, [120, *range(91, 125)]) == list(range(91, 125))
    assert consumer.seeks == [(tp, 91)]


def test_a_fresh_partition_whose_start_is_unknown_takes_what_comes() -> None:
    consumer = _Consumer(earliest=None)  # the broker did not answer
    rt = _runtime(consumer)
    st = PartitionState(engine=None)  # type: ignore[arg-type]
    assert _admit(rt, st, [3, 4]) == [3, 4]
    assert consumer.seeks == []


def test_a_partition_that_hands_over_nothing_is_fetched_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The broker reports records up to 148; the worker took up to 90 and nothing more
    arrives: after ``RESEEK_AFTER`` seconds without progress the partition is sought back
    to 91 (once per ``RESEEK_AFTER``), and not while it makes progress or is paused."""
    consumer = _Consumer(highwater=148)
    rt = _runtime(consumer)
    st = PartitionState(engine=None, offsets={TOPIC: 90}, delivered={TOPIC: 90})  # type: ignore[arg-type]
    rt.parts[0] = st
    tick = _ticker(rt, monkeypatch)
    tp = TP(TOPIC, 0)

    tick(0)
    tick(rt_mod.RESEEK_AFTER - 1)
    assert consumer.seeks == []
    st.delivered[TOPIC] = 95  # progress restarts the clock
    tick(2)
    tick(rt_mod.RESEEK_AFTER - 1)
    assert consumer.seeks == []
    tick(2)
    assert consumer.seeks == [(tp, 96)]
    assert st.refetch[TOPIC][0] == 96
    consumer._paused_partitions.add(tp)  # paused (a rebalance): not ours to fetch
    tick(rt_mod.RESEEK_AFTER * 3)
    assert consumer.seeks == [(tp, 96)]
    consumer._paused_partitions.clear()
    consumer.hw = 96  # caught up: nothing to fetch
    tick(rt_mod.RESEEK_AFTER * 3)
    assert consumer.seeks == [(tp, 96)]


def test_a_fresh_partition_that_hands_over_nothing_is_fetched_again_from_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing committed, no record taken (no state yet), the broker reports records up to
    30 and none arrives (Faust dropped what it fetched and its position is at the end): the
    partition is sought back to the first offset the broker has."""
    consumer = _Consumer(highwater=30, earliest=0)
    rt = _runtime(consumer)
    tick = _ticker(rt, monkeypatch)

    tick(0)
    tick(rt_mod.RESEEK_AFTER - 1)
    assert consumer.seeks == []
    tick(2)
    assert consumer.seeks == [(TP(TOPIC, 0), 0)]


def test_periodic_checkpoints_back_off_when_pickling_is_slow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A checkpoint whose pickling took ``spent`` seconds holds the next periodic one back
    for ``spent / CHECKPOINT_SHARE`` seconds (a state of millions of entities must not take
    the worker's time); checkpoints on a rebalance or at shutdown (not periodic) always run."""
    sent: list[bytes] = []
    rt = _runtime(_Consumer())

    async def flush() -> None:
        pass

    rt.app.producer = SimpleNamespace(flush=flush)  # type: ignore[attr-defined]
    rt.table = SimpleNamespace(changelog_topic=SimpleNamespace(  # type: ignore[assignment]
        send_soon=lambda key, value, **kw: sent.append(key)))
    clock = {"mono": 1000.0, "perf": 0.0}
    monkeypatch.setattr(rt_mod.time, "monotonic", lambda: clock["mono"])
    monkeypatch.setattr(rt_mod.time, "perf_counter", lambda: clock["perf"])

    rt.table.name = "engine-checkpoints"  # type: ignore[attr-defined]

    def slow_snapshot(engine: Any, offsets: Any, **kw: Any) -> bytes:
        clock["perf"] += 3.0  # 3 s of pickling
        return b"state"

    monkeypatch.setattr(rt_mod, "snapshot", slow_snapshot)
    st = PartitionState(engine=None)  # type: ignore[arg-type]
    rt.parts[0] = st

    def run(periodic: bool) -> int:
        st.dirty = True
        return asyncio.run(rt.checkpoint(periodic=periodic))

    assert run(periodic=True) == 1
    gap = 3.0 / ck_mod.CHECKPOINT_SHARE
    clock["mono"] += gap - 1
    assert run(periodic=True) == 0  # held back
    assert run(periodic=False) == 1  # a rebalance or shutdown: always
    clock["mono"] += gap + 1
    assert run(periodic=True) == 1
    assert ck_mod.checkpoint_gap(0.05) == pytest.approx(0.5)
