"""Batched input messages (contract v1.1, issue 17 items 1 and 3), without a broker.

A message carries one event or a batch (a JSON array, or JSON lines): ``streams.batch``
frames it, the worker's runtime takes each event on its own. A bad event of a batch goes to
the dead-letter topic alone (its bytes, the batch's offset, its index); an event keyed off
the message's partition is re-sent alone; a checkpoint taken part way into a batch records
how far the engine got, so a restart neither re-applies nor skips its events. The runtime
is built by ``create_app`` and driven directly; its outbound sends are recorded."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from detectors import events as E
from streams import batch
from streams.app import create_app
from streams.checkpoint import restore, snapshot
from streams.runtime import PartitionState, batch_index_key, batch_offset_key, partition_for
from streams.settings import Settings
from tests.helpers import access

T0 = 1_750_723_200  # 2025-06-24T00:00:00Z


def ev(eid: str, i: int, actor: str = "c-1") -> bytes:
    return orjson.dumps(access(eid, T0 + i, actor, f"s-{actor}"))


# ------------------------------------------------------------------------ framing


def test_split_frames_arrays_and_json_lines_and_leaves_one_event_alone() -> None:
    a, b = ev("a", 1), ev("b", 2)
    assert batch.split(a) is None
    assert batch.split(b"  " + a + b"\n") is None  # one event and its line ending
    assert batch.split(b"[" + a + b" , " + b + b"]") == [a, b]
    assert batch.split(a + b"\r\n\n" + b + b"\n") == [a, b]
    assert batch.split(b"{\n  \"event_id\": \"x\"\n}") is None  # one pretty-printed object
    assert batch.split(batch.frame([a, b])) == [a, b]
    # an element that is not an object is still framed: the event decoder rejects it alone
    assert batch.split(b"[" + a + b", 7]") == [a, b"7"]


@pytest.mark.parametrize(("data", "reason"), [
    (b"[]", "invalid_json"),
    (b"[{\"a\": 1},", "invalid_json"),
    (b"[" + b",".join([b"{}"] * 11) + b"]", "too_large"),
    (b"\n".join([b"{}"] * 11), "too_large"),
])
def test_a_batch_that_cannot_be_framed_is_rejected_whole(data: bytes, reason: str) -> None:
    got = batch.split(data, max_events=10)
    assert isinstance(got, E.Rejection) and got.reason == reason


# ------------------------------------------------------------------------ the runtime


def make_rt(tmp_path: Any, monkeypatch: Any, partitions: int = 1) -> Any:
    rt = create_app(Settings(data_dir=str(tmp_path), partitions=partitions,
                             state_keys=("test-state-key-0123456789",))).accesswatch
    rt.sent = {"dlq": [], "resend": [], "alerts": []}

    def recorder(name: str) -> Any:
        async def send(key: Any = None, value: Any = None, headers: Any = None,
                       **kw: Any) -> None:
            rt.sent[name].append((key, value, dict(headers or ())))
        return SimpleNamespace(send=send)

    async def nothing() -> None:
        return None

    monkeypatch.setattr(rt, "dlq_topic", recorder("dlq"))
    monkeypatch.setattr(rt, "alerts_topic", recorder("alerts"))
    for topic in rt.input_topics:
        rt.resend[topic] = recorder("resend")
    monkeypatch.setattr(rt, "_wait_for", lambda *a, **kw: 0.0)  # no other topic to merge
    monkeypatch.setattr(rt, "watch_delivery", nothing)
    monkeypatch.setattr(rt, "_update_lag", lambda: None)
    return rt


def message(rt: Any, offset: int, value: bytes, partition: int = 0,
            key: bytes = b"c-1") -> Any:
    msg = SimpleNamespace(topic=rt.names.access, partition=partition, offset=offset, key=key,
                          value=value, headers=(), timestamp=None)
    return SimpleNamespace(message=msg, ack=lambda: None)


def test_a_bad_event_of_a_batch_goes_to_the_dlq_alone_with_offset_and_index(
        tmp_path: Any, monkeypatch: Any) -> None:
    rt = make_rt(tmp_path, monkeypatch)
    st = rt.parts[0] = PartitionState(rt._fresh_engine())
    bad = b'{"event_id": "bad", "ts": "yesterday"}'
    single = message(rt, 6, ev("e0", 0))  # a one-event message of another producer
    batched = message(rt, 7, b"[" + b",".join([ev("e1", 1), bad, ev("e2", 2)]) + b"]")
    asyncio.run(rt.on_event(single))
    asyncio.run(rt.on_event(batched))
    assert st.engine.stats["access"] == 3  # the batch's two good events, and the single one
    [(key, value, headers)] = rt.sent["dlq"]
    assert value == bad and key == b"c-1"
    assert headers["aw-offset"] == b"7" and headers["aw-index"] == b"1"
    assert headers["aw-reason"] in {b"missing_field", b"wrong_type", b"bad_value"}
    assert st.held == [single, batched]  # each message held once, for the ack
    assert st.offsets[rt.names.access] == 7
    assert batch_offset_key(rt.names.access) not in st.offsets  # the batch is complete


def test_a_batch_that_cannot_be_framed_goes_to_the_dlq_whole(
        tmp_path: Any, monkeypatch: Any) -> None:
    rt = make_rt(tmp_path, monkeypatch)
    st = rt.parts[0] = PartitionState(rt._fresh_engine())
    broken = b"[" + ev("e1", 1) + b","
    asyncio.run(rt.on_event(message(rt, 0, broken)))
    [(_, value, headers)] = rt.sent["dlq"]
    assert value == broken and headers["aw-reason"] == b"invalid_json"
    assert "aw-index" not in headers
    assert st.engine.stats["access"] == 0 and len(st.held) == 1


def test_keying_is_checked_per_event_and_only_the_strays_are_re_sent(
        tmp_path: Any, monkeypatch: Any) -> None:
    rt = make_rt(tmp_path, monkeypatch, partitions=4)
    actors = [f"c-{i}" for i in range(12)]
    home = partition_for(b"c-0", 4)
    mine = [a for a in actors if partition_for(a.encode(), 4) == home]
    strays = [a for a in actors if partition_for(a.encode(), 4) != home]
    assert len(mine) >= 2 and strays
    st = rt.parts[home] = PartitionState(rt._fresh_engine())
    events = [ev(f"e-{a}", i, a) for i, a in enumerate(actors)]
    asyncio.run(rt.on_event(message(rt, 0, b"\n".join(events), home, key=b"c-0")))
    assert st.engine.stats["access"] == len(mine)
    assert sorted(rt.sent["resend"]) == sorted(
        (a.encode(), e, {}) for a, e in zip(actors, events, strict=True) if a in strays)
    assert rt.sent["dlq"] == []


def test_a_checkpoint_part_way_into_a_batch_resumes_after_its_last_taken_event(
        tmp_path: Any, monkeypatch: Any) -> None:
    """The worker crashes after a checkpoint written while a batch was taken part way (the
    event-time merge holds the rest back): the restored engine takes the batch's other
    events once, and the batch message is held (acked) only when its last event is taken."""
    rt = make_rt(tmp_path, monkeypatch)
    topic = rt.names.access
    st = rt.parts[0] = PartitionState(rt._fresh_engine())
    events = [ev(f"e{i}", i) for i in range(4)]
    msg = message(rt, 3, b"\n".join(events))
    items = batch.split(msg.message.value)
    assert isinstance(items, list)
    for i in range(2):  # two of four taken, the rest queued when the checkpoint is written
        asyncio.run(rt._process(st, msg, E.decode(items[i], E.ACCESS),
                                batch.BatchItem(msg.message, i, 4, items[i])))
    assert st.held == [] and topic not in st.offsets  # not acked part way
    assert st.offsets[batch_offset_key(topic)] == 3 and st.offsets[batch_index_key(topic)] == 1
    blob = snapshot(st.engine, st.offsets, keys=rt.state_keys, context=rt._context(0))

    rt2 = make_rt(tmp_path / "2", monkeypatch)
    engine, offsets = restore(blob, rt2.geo, rt2.directory, keys=rt2.state_keys,
                              context=rt2._context(0))
    st2 = rt2.parts[0] = PartitionState(engine, offsets, restored=True,
                                        delivered=dict(offsets))
    asyncio.run(rt2.on_event(msg))  # redelivered after the crash
    assert st2.engine.stats["access"] == 4  # 2 before the checkpoint, 2 after: each once
    assert st2.engine.stats.get("duplicate", 0) == 0
    assert st2.held == [msg] and st2.offsets[topic] == 3
    assert batch_offset_key(topic) not in st2.offsets


def _events_of(lines: list[bytes]) -> tuple[list[Any], list[tuple[str, bytes]]]:
    """The simulated file's identity events (as messages) and its inputs as (topic, bytes),
    with a bad event after every 97th input and a repeat of every 211th."""
    identity, inputs = [], []
    for i, line in enumerate(lines):
        obj = orjson.loads(line)
        if "change" in obj:
            identity.append(line)
            continue
        topic = "auth-logins" if "outcome" in obj else "data-access"
        inputs.append((topic, line))
        if i % 97 == 0:
            inputs.append((topic, b'{"event_id": "bad-%d", "ts": "soon"}' % i))
        if i % 211 == 0:
            inputs.append((topic, line))  # a duplicate: counted, not processed twice
    return identity, inputs


def _feed(rt: Any, identity: list[bytes], messages: list[tuple[str, bytes]]) -> None:
    async def go() -> None:
        for off, value in enumerate(identity):
            await rt.on_identity(SimpleNamespace(topic=rt.names.identity, partition=0,
                                                 offset=off, key=b"i", value=value,
                                                 headers=(), timestamp=None))
        offsets: dict[str, int] = {}
        for topic, value in messages:
            off = offsets[topic] = offsets.get(topic, -1) + 1
            msg = SimpleNamespace(topic=topic, partition=0, offset=off, key=b"k", value=value,
                                  headers=(), timestamp=None)
            await rt.on_event(SimpleNamespace(message=msg, ack=lambda: None))
        for a in rt.parts[0].engine.flush():
            await rt.emit(a)
    asyncio.run(go())


def test_a_batch_taken_in_one_step_gives_what_its_events_give_one_message_each(
        tmp_path: Any, monkeypatch: Any) -> None:
    """The same events, in the same order: as one-event messages, and as batch messages of
    up to 40 events of one topic (JSON lines): the same alerts in the same order, the same
    dead letters, the same counts and per-event metrics."""
    from tests.helpers import sim_lines

    identity, inputs = _events_of(sim_lines())
    single = make_rt(tmp_path / "single", monkeypatch)
    single.parts[0] = PartitionState(single._fresh_engine())
    _feed(single, identity, inputs)

    batches: list[tuple[str, bytes]] = []
    run: list[bytes] = []
    for i, (topic, value) in enumerate(inputs):
        run.append(value)
        if i + 1 == len(inputs) or inputs[i + 1][0] != topic or len(run) == 40:
            batches.append((topic, batch.frame(run) if len(run) > 1 else run[0]))
            run = []
    assert len(batches) < len(inputs) / 5
    batched = make_rt(tmp_path / "batched", monkeypatch)
    st = batched.parts[0] = PartitionState(batched._fresh_engine())
    _feed(batched, identity, batches)

    alerts = [orjson.loads(v)["alert_id"] for _, v, _ in single.sent["alerts"]]
    assert len(alerts) >= 5  # the scenario raises alerts
    assert [orjson.loads(v)["alert_id"] for _, v, _ in batched.sent["alerts"]] == alerts
    assert ([(v, h["aw-reason"]) for _, v, h in batched.sent["dlq"]]
            == [(v, h["aw-reason"]) for _, v, h in single.sent["dlq"]])
    assert len(single.sent["dlq"]) >= 10
    assert all("aw-index" in h for _, _, h in batched.sent["dlq"])
    assert st.engine.stats == single.parts[0].engine.stats
    assert st.engine.rejected == single.parts[0].engine.rejected
    assert st.max_ts == single.parts[0].max_ts
    assert len(st.held) == len(batches)  # each message held once, for the ack
    for rt in (single, batched):
        rt.flush_metrics()
    for name in ("accesswatch_processing_seconds_count", "accesswatch_event_lag_seconds_count",
                 "accesswatch_events_total"):
        def value(rt: Any, name: str = name) -> float:
            return sum(s.value for m in rt.metrics.registry.collect() for s in m.samples
                       if s.name == name)
        assert value(batched) == value(single) > 0, name


def test_a_batch_sends_what_it_gave_under_the_checkpoint_lock_after_it_is_covered(
        tmp_path: Any, monkeypatch: Any) -> None:
    """A batch taken in one step: its dead letters and re-sent strays go out while the
    checkpoint lock is held and the message is already counted as taken, so no checkpoint
    can cover the batch while some of what it gave is not yet in the producer (a SIGKILL
    then would lose it: the restored engine does not raise it again)."""
    rt = make_rt(tmp_path, monkeypatch, partitions=4)
    home = partition_for(b"c-0", 4)
    stray = next(a for a in (f"c-{i}" for i in range(1, 50))
                 if partition_for(a.encode(), 4) != home)
    st = rt.parts[home] = PartitionState(rt._fresh_engine())
    seen: list[tuple[str, bool, int]] = []

    def watching(name: str) -> Any:
        async def send(key: Any = None, value: Any = None, headers: Any = None,
                       **kw: Any) -> None:
            await asyncio.sleep(0)  # a send may yield to the loop (the checkpoint timer)
            seen.append((name, rt._checkpoint_lock.locked(),
                         st.offsets.get(rt.names.access, -1)))
        return SimpleNamespace(send=send)

    monkeypatch.setattr(rt, "dlq_topic", watching("dlq"))
    rt.resend[rt.names.access] = watching("resend")
    events = [ev("e0", 0, "c-0"), b'{"event_id": "bad"}', ev("e1", 1, stray),
              ev("e2", 2, "c-0")]
    asyncio.run(rt.on_event(message(rt, 5, batch.frame(events), home, key=b"c-0")))
    assert st.engine.stats["access"] == 2
    assert seen == [("dlq", True, 5), ("resend", True, 5)]


def test_a_checkpoint_waiting_for_the_lock_does_not_cover_a_batch_whose_output_is_unsent(
        tmp_path: Any, monkeypatch: Any) -> None:
    """A checkpoint is being written (the lock held) and the next one already waits for the
    lock when a batch arrives. The batch must not be applied before it holds the lock:
    else the waiting checkpoint, which the lock lets in first, would snapshot the applied
    batch and ack its message while its dead letter is not yet in the producer (a SIGKILL
    then loses it; the restored engine does not raise it again)."""
    rt = make_rt(tmp_path, monkeypatch)
    st = rt.parts[0] = PartitionState(rt._fresh_engine())
    sent: list[bytes] = []

    async def send(key: Any = None, value: Any = None, headers: Any = None,
                   **kw: Any) -> None:
        sent.append(value)

    monkeypatch.setattr(rt, "dlq_topic", SimpleNamespace(send=send))
    covered: list[tuple[int, int]] = []  # what the waiting checkpoint saw: offset, sent

    async def next_checkpoint() -> None:
        async with rt._checkpoint_lock:  # what a checkpoint reads under the lock
            covered.append((st.offsets.get(rt.names.access, -1), len(sent)))

    async def go() -> None:
        lock = rt._checkpoint_lock
        await lock.acquire()  # a checkpoint being written
        waiting = asyncio.create_task(next_checkpoint())
        taking = asyncio.create_task(rt.on_event(message(
            rt, 5, batch.frame([ev("e0", 0), b'{"event_id": "bad"}', ev("e1", 1)]))))
        for _ in range(50):  # both run until they wait for the lock (no time passes)
            await asyncio.sleep(0)
        lock.release()
        await asyncio.gather(waiting, taking)

    asyncio.run(go())
    assert st.engine.stats["access"] == 2 and len(sent) == 1
    offset, dead_letters = covered[0]
    assert offset == -1 or dead_letters == 1, "a checkpoint covered the batch before its output"
    assert offset == -1  # the batch waited for the lock: applied after that checkpoint


# ------------------------------------------------------------------------ producing


class _Done:
    is_done = True

    def add_errback(self, fn: Any) -> None:
        pass


class _RecordingKafkaProducer:
    """kafka-python's producer without a broker: records each message sent (4 partitions
    per topic); thread-safe as the real one (the lingerer sends from its thread)."""

    def __init__(self, **config: object) -> None:
        self.sent: list[tuple[str, int | None, bytes | None, bytes]] = []

    def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2, 3}

    def send(self, topic: str, value: bytes, key: bytes | None = None,
             partition: int | None = None) -> _Done:
        self.sent.append((topic, partition, key, value))
        return _Done()

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass


def _producer(monkeypatch: Any, batching: Any) -> Any:
    import kafka

    from streams.produce import Producer

    monkeypatch.setattr(kafka, "KafkaProducer", _RecordingKafkaProducer)
    return Producer("127.0.0.1:9", check_topics=False, ordered=False, batching=batching)


def test_produce_batches_by_partition_and_keeps_each_keys_order(monkeypatch: Any) -> None:
    from streams.produce import Batching

    actors = [f"c-{i}" for i in range(20)]
    lines = [ev(f"e{i}", i, actors[(i * 7) % 20]) for i in range(300)]
    prod = _producer(monkeypatch, Batching(events=16, max_bytes=1 << 20, linger=60.0))
    prod.send_lines(lines)
    stats = prod.close()
    assert stats.total_sent == 300 and stats.failed == 0
    sent = prod._producer.sent
    assert len(sent) < 300 / 8  # batched: far fewer messages than events
    got: dict[str, list[bytes]] = {}
    for topic, partition, key, value in sent:
        assert topic == "data-access"
        items = batch.split(value)
        items = [value] if items is None else items
        assert isinstance(items, list) and 1 <= len(items) <= 16
        for raw in items:
            actor = orjson.loads(raw)["actor_id"]
            assert partition_for(actor.encode(), 4) == partition  # all of the message's partition
            got.setdefault(actor, []).append(raw)
        assert key is not None and partition_for(key, 4) == partition
    for actor in actors:  # each key's events in the order read, none lost or repeated
        assert got[actor] == [raw for raw in lines if orjson.loads(raw)["actor_id"] == actor]


def test_a_batch_never_exceeds_its_byte_cap_and_a_big_event_goes_alone(
        monkeypatch: Any) -> None:
    from streams.produce import Batching

    small = [ev(f"s{i}", i) for i in range(40)]  # one key: one partition
    big = orjson.dumps({**access("big", T0, "c-1", "s-c-1"), "note": "x" * 3000})
    prod = _producer(monkeypatch, Batching(events=500, max_bytes=2048, linger=60.0))
    prod.send_lines(small[:20] + [big] + small[20:])
    prod.close()
    values = [v for *_, v in prod._producer.sent]
    assert big in values  # alone, unchanged
    assert all(len(v) <= 2048 for v in values if v != big)
    assert [r for v in values for r in (batch.split(v) or [v])] == small[:20] + [big] + small[20:]


def test_the_linger_sends_a_partial_batch_without_more_input(monkeypatch: Any) -> None:
    import time

    from streams.produce import Batching

    prod = _producer(monkeypatch, Batching(events=500, linger=0.02))
    prod.send_lines([ev("e1", 1), ev("e2", 2)])
    deadline = time.monotonic() + 10
    while not prod._producer.sent and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [v for *_, v in prod._producer.sent] == [batch.frame([ev("e1", 1), ev("e2", 2)])]
    prod.close()
    assert len(prod._producer.sent) == 1


def test_identity_changes_are_never_batched(monkeypatch: Any) -> None:
    """identity-changes takes one event a message (every worker reads it whole, one event at
    a time): batching them lost the identity events of a recovery run."""
    from streams.produce import Batching

    ids = [orjson.dumps({"event_id": f"i{i}", "ts": T0 + i, "change": "key_revoked",
                         "key_id": "k1"}) for i in range(3)]
    prod = _producer(monkeypatch, Batching(events=500, linger=60.0))
    prod.send_lines([*ids, ev("a1", 1), ev("a2", 2)])
    prod.close()
    sent = prod._producer.sent
    assert [v for t, *_, v in sent if t == "identity-changes"] == ids
    assert [v for t, *_, v in sent if t == "data-access"] == [batch.frame([ev("a1", 1),
                                                                           ev("a2", 2)])]


class _Later:
    """A send's future, done once the producer is flushed."""

    def __init__(self) -> None:
        self.is_done = False

    def add_errback(self, fn: Any) -> None:
        pass


class _AckOnFlushKafkaProducer(_RecordingKafkaProducer):
    """Records sent messages and flushes ("FLUSH"); a message is acknowledged at a flush."""

    def __init__(self, **config: object) -> None:
        super().__init__(**config)
        self.pending: list[_Later] = []

    def send(self, topic: str, value: bytes, key: bytes | None = None,
             partition: int | None = None) -> Any:
        self.sent.append((topic, partition, key, value))
        self.pending.append(_Later())
        return self.pending[-1]

    def flush(self, timeout: float | None = None) -> None:
        for f in self.pending:
            f.is_done = True
        self.pending = []
        self.sent.append(("FLUSH", None, None, b""))


def test_ordered_produce_keeps_access_batches_filling_while_logins_are_waited_for(
        monkeypatch: Any) -> None:
    """Ordered batching on a file whose event time runs fast (a login every 2 s of event
    time, more than the order slack): each wait for a login sends the logins' batches and
    flushes; the access batches keep filling (one message here, not one per wait), and no
    access record reaches the producer before every login older than it by more than the
    slack is acknowledged."""
    import kafka

    from streams.produce import ORDER_SLACK, Batching, Producer

    monkeypatch.setattr(kafka, "KafkaProducer", _AckOnFlushKafkaProducer)
    lines = []
    for i in range(30):
        lines.append(orjson.dumps({"event_id": f"l{i}", "ts": T0 + 4 * i, "outcome": "success",
                                   "account_id": "c-1", "session_id": f"s{i}",
                                   "src_ip": "10.0.0.1"}))
        lines.append(ev(f"a{i}", 4 * i + 2))
    prod = Producer("127.0.0.1:9", check_topics=False, ordered=True,
                    batching=Batching(events=500, linger=60.0))
    prod.send_lines(lines)
    assert prod.close().total_sent == 60
    sent = prod._producer.sent
    access_msgs = [v for t, *_, v in sent if t == "data-access"]
    assert len(access_msgs) == 1 and len(batch.split(access_msgs[0]) or []) == 30
    acked: set[float] = set()  # logins' ts acknowledged so far (by a flush)
    out: list[float] = []
    for topic, _, _, value in sent:
        if topic == "FLUSH":
            acked.update(out)
            out = []
        elif topic == "auth-logins":
            out.extend(orjson.loads(r)["ts"] for r in batch.split(value) or [value])
        else:
            for r in batch.split(value) or [value]:
                ts = orjson.loads(r)["ts"]
                assert all(t in acked for t in (T0 + 4 * i for i in range(30))
                           if t < ts - ORDER_SLACK)
