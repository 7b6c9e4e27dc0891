"""A checkpoint never lands before the alerts of the events it covers: the worker flushes
its producer (the alerts) before it writes the checkpoint's records, so a SIGKILL between
the two cannot leave a restored engine that already raised an alert whose message died in
the producer's buffer (seen as two missing escalations in the SIGKILL recovery test)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from streams.app import create_app
from streams.runtime import PartitionState
from streams.settings import Settings


def _race_a_checkpoint(work: Any, lock: asyncio.Lock, gate: asyncio.Event,
                       look: Any) -> tuple[Any, list[Any]]:
    """Run ``work`` (a coroutine) to its first suspension (inside its first send), then a
    checkpoint's first step (under ``lock``, it records ``look()``), then let the producer
    answer (``gate``): ``work``'s result and what the checkpoint saw."""
    seen: list[Any] = []

    async def checkpoint() -> None:  # what PartitionEngines.checkpoint does first
        async with lock:
            seen.append(look())

    async def main() -> Any:
        working = asyncio.ensure_future(work)
        await asyncio.sleep(0)
        encoding = asyncio.ensure_future(checkpoint())
        for _ in range(5):
            await asyncio.sleep(0)
        gate.set()
        await encoding
        return await working

    return asyncio.run(main()), seen


def _fake_broker(rt: Any, monkeypatch: Any, flush: Any, send_soon: Any) -> None:
    """The runtime's producer flush and changelog sends replaced by the test's recorders."""
    monkeypatch.setattr(rt.app, "_producer", SimpleNamespace(flush=flush), raising=False)
    monkeypatch.setattr(type(rt.app), "producer", property(lambda app: app._producer))
    monkeypatch.setattr(rt.table, "_changelog_topic",
                        SimpleNamespace(send_soon=send_soon), raising=False)
    monkeypatch.setattr(type(rt.table), "changelog_topic",
                        property(lambda table: table._changelog_topic))


def test_alerts_are_flushed_before_the_checkpoint_records_are_written(
        tmp_path: Any, monkeypatch: Any) -> None:
    rt = create_app(Settings(data_dir=str(tmp_path),
                             state_keys=("test-state-key-0123456789",))).accesswatch
    order: list[str] = []

    async def flush() -> None:
        order.append("flush")

    def send_soon(**kw: Any) -> None:
        order.append("checkpoint")

    _fake_broker(rt, monkeypatch, flush, send_soon)
    st = rt.parts[0] = PartitionState(rt._fresh_engine())
    st.dirty = True
    assert asyncio.run(rt.checkpoint()) == 1
    assert "checkpoint" in order
    assert order[0] == "flush", order  # the alerts first, then the checkpoint's records


def test_events_are_taken_while_a_checkpoint_waits_for_the_broker_and_it_covers_none_of_them(
        tmp_path: Any, monkeypatch: Any) -> None:
    """A checkpoint encodes the engines under the checkpoint lock, then waits for the
    producer's flushes (the broker's answers) without it (h-lbs): an event arriving meanwhile
    is taken at once, not after two broker round trips; it is not in that checkpoint
    (offsets, acks), and the next checkpoint waits until the first is written."""
    import orjson

    from tests.helpers import access

    rt = create_app(Settings(data_dir=str(tmp_path),
                             state_keys=("test-state-key-0123456789",))).accesswatch
    gate = asyncio.Event()
    order: list[str] = []

    async def flush() -> None:
        order.append("flush")
        await gate.wait()  # the broker has not answered yet

    def send_soon(**kw: Any) -> None:
        order.append("checkpoint")

    async def nothing(*a: Any, **kw: Any) -> None:
        return None

    _fake_broker(rt, monkeypatch, flush, send_soon)
    monkeypatch.setattr(rt, "_wait_for", lambda *a, **kw: 0.0)
    monkeypatch.setattr(rt, "alerts_topic", SimpleNamespace(send=nothing))
    st = rt.parts[0] = PartitionState(rt._fresh_engine())
    acked: list[int] = []

    def message(offset: int) -> Any:
        value = orjson.dumps(access(f"e{offset}", 1_750_723_200 + offset, "c-1", "s-1"))
        msg = SimpleNamespace(topic=rt.names.access, partition=0, offset=offset, key=b"c-1",
                              value=value, headers=(), timestamp=None)
        return SimpleNamespace(message=msg, ack=lambda: acked.append(offset))

    async def go() -> tuple[int, int]:
        await rt.on_event(message(0))
        first = asyncio.create_task(rt.checkpoint())
        for _ in range(20):  # it encodes, then waits for the broker
            await asyncio.sleep(0)
        assert order == ["flush"]
        await asyncio.wait_for(rt.on_event(message(1)), 1.0)  # not held up by the flush
        taken = st.engine.stats["access"]
        second = asyncio.create_task(rt.checkpoint())
        for _ in range(20):
            await asyncio.sleep(0)
        assert order == ["flush"]  # the next one waits for the first to be written
        gate.set()
        n = await first
        await second
        return taken, n

    taken, n = asyncio.run(go())
    assert taken == 2 and n == 1
    assert acked == [0, 1]  # the first checkpoint acked offset 0 only; the second, 1
    # one after the other, whole: flush, records, flush; then flush, records, flush
    assert order.count("flush") == 4
    runs = [o for i, o in enumerate(order) if i == 0 or order[i - 1] != o]  # a blob's records
    assert runs == ["flush", "checkpoint", "flush", "checkpoint", "flush"]


def test_a_checkpoint_never_sees_drained_findings_that_are_not_in_the_producer() -> None:
    """What an input engine hands out to an internal topic (findings for the episode
    builders, views for the combiner) is drained and sent by the agent after the event, or
    by the watermark tick. A checkpoint that encoded the engine between the drain and the
    hand-over to the producer covered the event without its finding anywhere (not in the
    engine, not in the producer it flushes first): a SIGKILL then lost the finding and the
    alert a builder would have made of it. With the runtime's checkpoint lock held from the
    drain to the last send, the checkpoint sees the findings either still in the engine or
    already in the producer."""
    from streams.side import send_drained

    class Engine:
        def __init__(self) -> None:
            self.box = [{"f": 1}, {"f": 2}]

        def has(self) -> bool:
            return bool(self.box)

        def drain(self) -> list[dict[str, Any]]:
            out, self.box = self.box, []
            return out

    engine = Engine()
    produced: list[bytes] = []
    gate = asyncio.Event()

    class Topic:
        async def send(self, key: bytes, value: bytes, partition: int | None = None) -> None:
            await gate.wait()  # the producer takes its time (a full batch, metadata)
            produced.append(value)

    rt: Any = SimpleNamespace(parts={0: SimpleNamespace(engine=engine)},
                              _checkpoint_lock=asyncio.Lock(),
                              _internal_error=lambda what: None)
    # seen: (findings in the engine, findings in the producer)
    got, seen = _race_a_checkpoint(
        send_drained(rt, 0, Topic(), "findings", Engine.has, Engine.drain, lambda m: b"k"),
        rt._checkpoint_lock, gate, lambda: (len(engine.box), len(produced)))
    assert got == 2
    assert seen and seen[0] in ((2, 0), (0, 2)), seen


def test_a_checkpoint_never_sees_timers_fired_whose_alerts_are_not_in_the_producer(
        monkeypatch: Any) -> None:
    """The watermark advances a quiet partition's engine (its timers fire: grace windows,
    episode ends) and sends the alerts that gives. A checkpoint that encoded the engine while
    those alerts were still being sent covered the fired timers without the alerts in the
    producer it flushes first: after a SIGKILL the restored engine does not fire them
    again. With the advance and the sends in one hold of the checkpoint lock, the
    checkpoint sees the timers either not fired or their alerts sent."""
    from tests.helpers import bare_runtime

    class Engine:
        def __init__(self) -> None:
            self.timers = 2

        def advance(self, now: float) -> list[dict[str, Any]]:
            fired, self.timers = self.timers, 0
            return [{"alert_id": f"a{i}"} for i in range(fired)]

        def drain_touched(self) -> list[str]:
            return []

    rt = bare_runtime()
    engine = Engine()
    st = rt.parts[0] = PartitionState(engine, max_ts=1000.0)  # type: ignore[arg-type]
    st.wall_at_max = -1e9  # quiet for long: its time moves on
    sent: list[str] = []
    gate = asyncio.Event()

    async def emit(alert: dict[str, Any]) -> None:
        await gate.wait()  # the producer takes its time
        sent.append(alert["alert_id"])

    async def nothing() -> None:
        return None

    monkeypatch.setattr(rt, "emit", emit)
    monkeypatch.setattr(rt, "watch_delivery", nothing)
    monkeypatch.setattr(rt, "_unread", lambda p, st: False)
    monkeypatch.setattr(rt, "update_gauges", lambda: None)
    monkeypatch.setattr(rt, "flush_metrics", lambda: None)
    # seen: (timers not fired, alerts in the producer)
    _, seen = _race_a_checkpoint(rt.watermark(), rt._checkpoint_lock, gate,
                                 lambda: (engine.timers, len(sent)))
    assert sent == ["a0", "a1"]
    assert seen and seen[0] in ((2, 0), (0, 2)), seen


def test_a_checkpoint_never_sees_an_identity_change_applied_whose_alerts_are_not_sent(
        monkeypatch: Any) -> None:
    """An identity change (a key revoked, say) released into a partition's engine can raise
    alerts; the checkpoint records the identity offset with the engine. Applied and sent in
    one hold of the checkpoint lock, a checkpoint sees the change either not applied or its
    alerts in the producer."""
    from detectors import events as E
    from tests.helpers import bare_runtime

    rt = bare_runtime()
    st = rt.parts[0] = PartitionState(SimpleNamespace(ctx=SimpleNamespace(now=10.0)))  # type: ignore[arg-type]
    applied: list[int] = []
    sent: list[str] = []
    gate = asyncio.Event()

    def release(st: Any, until: float) -> list[dict[str, Any]]:
        st.identity.clear()
        applied.append(1)
        return [{"alert_id": "a0"}, {"alert_id": "a1"}]

    async def emit(alert: dict[str, Any]) -> None:
        await gate.wait()
        sent.append(alert["alert_id"])

    monkeypatch.setattr(rt, "_release_identity", release)
    monkeypatch.setattr(rt, "emit", emit)
    monkeypatch.setattr(rt.directory, "apply", lambda ev: None)
    value = b'{"event_id": "i1", "ts": "2025-06-24T03:12:45Z", "change": "key_revoked", ' \
        b'"key_id": "k1"}'
    msg = SimpleNamespace(value=value, partition=0, offset=3, topic=rt.names.identity)
    assert not isinstance(E.decode(value, E.IDENTITY, rt.policy_of[rt.names.identity],
                                   1.8e9), E.Rejection)
    # seen: (changes applied, alerts in the producer)
    _, seen = _race_a_checkpoint(rt.on_identity(msg), rt._checkpoint_lock, gate,
                                 lambda: (len(applied), len(sent)))
    assert sent == ["a0", "a1"] and st.offsets == {}
    assert seen and seen[0] in ((0, 0), (1, 2)), seen
