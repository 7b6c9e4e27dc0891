"""The findings the input engines hand to the episode builders go one Kafka message per
destination partition and drain, not one per finding (h-wone: 10,352 findings for 100,000
events of the simulated day, one message each before, cost the two workers of a 2-partition
group about as much Faust work as the events themselves). Pure: no broker; the topic's sends
are recorded.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import orjson

from detectors.base import Finding
from detectors.engine import Engine
from detectors.episodes import EpisodeBuilder, finding_key
from streams.app import create_app
from streams.batch import partition_for
from streams.runtime import PartitionState
from streams.settings import Settings

PARTS = 2


def episodes() -> Any:
    s = replace(Settings.from_env({}), state_keys=("test-state-key-0123456789",),
                partitions=PARTS)
    app = create_app(s)
    eps = app.accesswatch_episodes  # type: ignore[attr-defined]
    sent: list[tuple[bytes, bytes, int | None]] = []

    async def send(key: bytes, value: bytes, partition: int | None = None) -> None:
        sent.append((key, value, partition))

    eps.topic = SimpleNamespace(send=send)
    eps.sent_log = sent
    dead: list[Any] = []

    async def dead_letter(msg: Any, reason: str, field_: Any, detail: str) -> None:
        dead.append((msg, reason))

    eps.rt.dead_letter = dead_letter
    eps.dead = dead
    emitted: list[dict[str, Any]] = []

    async def emit(a: dict[str, Any]) -> None:
        emitted.append(a)

    eps.rt.emit = emit
    eps.emitted = emitted
    return eps


def findings(n: int) -> list[Finding]:
    """``n`` findings about ``n`` keys (spread over both builder partitions)."""
    return [Finding("revoked_credential", "key", f"kid-{i}", "critical", 0.9, "s", [],
                    [f"e-{i}"], 1000.0 + i) for i in range(n)]


def made(eps: Any, fs: list[Finding]) -> PartitionState:
    """Input partition 0's engine, having made ``fs`` (relayed, not alerted)."""
    st = PartitionState(eps.rt._fresh_engine())
    eps.rt.parts[0] = st
    st.engine.ctx.now = 1000.0 + len(fs)
    assert st.engine._alerts(fs) == []
    return st


def deliver(eps: Any, sent: list[tuple[bytes, bytes, int | None]]) -> None:
    """The recorded sends delivered to the builders, in order (offsets per partition)."""
    offsets = [0] * PARTS
    for k in range(PARTS):
        eps.engines.parts[k] = PartitionState(Engine(eps.engines.config))

    async def go() -> None:
        for key, value, part in sent:
            p = part if part is not None else partition_for(key, PARTS)
            msg = SimpleNamespace(topic=eps.engines.input_topics[0], partition=p,
                                  offset=offsets[p], key=key, value=value, headers=())
            offsets[p] += 1
            await eps.on_message(SimpleNamespace(message=msg, ack=lambda: None))
    asyncio.run(go())


def test_one_drain_is_one_message_per_builder_partition_in_order() -> None:
    eps = episodes()
    made(eps, findings(40))
    asyncio.run(eps.send(0))
    sent = eps.sent_log
    assert len(sent) == PARTS  # 40 findings, 2 messages (one per builder partition)
    total = []
    for key, value, part in sent:
        items = orjson.loads(value)
        assert type(items) is list and len(items) > 1
        for m in items:  # each where its key sends it: an episode's findings meet
            assert partition_for(finding_key(m, eps.salt), PARTS) == part
        assert key == finding_key(items[0], eps.salt)
        total += [m["seq"] for m in items]
    assert sorted(total) == list(range(1, 41))
    for _, value, _ in sent:  # drain order kept inside each message
        seqs = [m["seq"] for m in orjson.loads(value)]
        assert seqs == sorted(seqs)
    assert eps.sent == 40


def test_the_builders_make_the_same_alerts_from_arrays_as_from_one_finding_a_message() -> None:
    one, many = episodes(), episodes()
    fs = findings(30)
    made(one, fs)
    made(many, fs)
    asyncio.run(many.send(0))
    drained = one.rt.parts[0].engine.drain_findings()  # as the sender before: one each
    for m in drained:
        m["partition"] = 0
    singles = [(finding_key(m, one.salt), orjson.dumps(m), None) for m in drained]
    assert len(singles) == 30 and len(many.sent_log) == PARTS
    deliver(one, singles)
    deliver(many, many.sent_log)
    for eps in (one, many):
        for k in range(PARTS):
            builder = EpisodeBuilder(eps.engines.parts[k].engine, PARTS)
            for p in range(PARTS):
                eps.emitted.extend(builder.advance(p, 5000.0))
    assert one.dead == many.dead == []
    assert len(one.emitted) == 30
    assert sorted(a["alert_id"] for a in many.emitted) == \
        sorted(a["alert_id"] for a in one.emitted)


def test_a_bad_finding_in_an_array_is_dead_lettered_alone_with_its_index() -> None:
    eps = episodes()
    good = {"at": 1000.0, "origin": "o", "seq": 1, "partition": 0,
            "finding": {"detector": "revoked_credential", "entity_kind": "key",
                        "entity_id": "kid-1", "severity": "critical", "score": 0.9,
                        "summary": "s", "evidence": [], "event_ids": ["e-1"], "ts": 1000.0}}
    bad = {**good, "seq": 2, "partition": 7}  # no such input partition
    later = {**good, "seq": 3}
    deliver(eps, [(b"k", orjson.dumps([good, bad, later]), 0)])
    assert len(eps.dead) == 1
    msg, reason = eps.dead[0]
    assert reason == "invalid_finding" and msg.batch_index == 1 and msg.batch_size == 3
    assert orjson.loads(msg.value) == bad
    assert EpisodeBuilder(eps.engines.parts[0].engine, PARTS).pending == 2
