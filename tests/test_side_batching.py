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
from streams.combine import partial_key
from streams.runtime import PartitionState
from streams.settings import Settings
from streams.side import PROGRESS

PARTS = 2


def recorded(attr: str) -> Any:
    """The side agent ``app.<attr>`` of a 2-partition worker, its sends recorded
    (``sent_log``), its dead letters (``dead``) and alerts (``emitted``) kept (no broker)."""
    s = replace(Settings.from_env({}), state_keys=("test-state-key-0123456789",),
                partitions=PARTS)
    side = getattr(create_app(s), attr)
    sent: list[tuple[bytes, bytes, int | None]] = []

    async def send(key: bytes, value: bytes, partition: int | None = None) -> None:
        sent.append((key, value, partition))

    side.topic = SimpleNamespace(send=send)
    side.sent_log = sent
    side.dead = []

    async def dead_letter(msg: Any, reason: str, field_: Any, detail: str) -> None:
        side.dead.append((msg, reason))

    side.rt.dead_letter = dead_letter
    side.emitted = []

    async def emit(a: dict[str, Any]) -> None:
        side.emitted.append(a)

    side.rt.emit = emit
    return side


def episodes() -> Any:
    return recorded("accesswatch_episodes")


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


def delivered(engines: Any, handler: Any, sent: list[tuple[bytes, bytes, int | None]]) -> None:
    """``sent`` delivered in order to ``handler`` as messages of ``engines``' internal topic
    (offsets per partition), on a fresh engine per partition."""
    offsets = [0] * PARTS
    for k in range(PARTS):
        engines.parts[k] = PartitionState(Engine(engines.config))

    async def go() -> None:
        for key, value, part in sent:
            p = part if part is not None else partition_for(key, PARTS)
            msg = SimpleNamespace(topic=engines.input_topics[0], partition=p,
                                  offset=offsets[p], key=key, value=value, headers=())
            offsets[p] += 1
            await handler(SimpleNamespace(message=msg, ack=lambda: None))
    asyncio.run(go())


def deliver(eps: Any, sent: list[tuple[bytes, bytes, int | None]]) -> None:
    """The recorded sends delivered to the builders, in order (offsets per partition)."""
    delivered(eps.engines, eps.on_message, sent)


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


# ---- bulk_lookup's views (the partials topic, h-mw) --------------------------------------


def combiner() -> Any:
    return recorded("accesswatch_combine")


def viewed(comb: Any) -> PartitionState:
    """Input partition 0's engine after a simulated coupang hour (its views not sent yet)."""
    from simulation import SimConfig, simulate

    st = PartitionState(comb.rt._fresh_engine())
    comb.rt.parts[0] = st
    sim = simulate(SimConfig(seed=3, customers=400, hours=2, attacks=("coupang",),
                             attack_start_hour=0.5))
    for e in sim.events:
        st.engine.process_obj(e)
    assert st.engine.has_partials()
    return st


def scored(comb: Any, sent: list[tuple[bytes, bytes, int | None]]) -> None:
    """``sent`` delivered to the scorers in order (offsets per partition), then every input
    partition's time past the views' windows (the scorers release and score them)."""
    progress = [(PROGRESS, orjson.dumps({"partition": p, "progress": 1e12, "flushed": True}), q)
                for p in range(PARTS) for q in range(PARTS)]
    delivered(comb.scorers, comb.on_partial, [*sent, *progress])


def test_one_drain_of_views_is_one_message_per_scorer_partition_in_order() -> None:
    """Fails on the sender of one message per view (8,894 messages for 100,000 events in
    the benchmark's 2-partition run)."""
    comb = combiner()
    st = viewed(comb)
    asyncio.run(comb.send(0))
    assert not st.engine.has_partials()
    sent = comb.sent_log
    assert 1 <= len(sent) <= PARTS and comb.sent > PARTS
    total = 0
    for key, value, part in sent:
        items = orjson.loads(value)
        items = items if type(items) is list else [items]
        for m in items:  # each where its key sends it: an entity's views meet
            assert m["from"] == {"partition": 0}
            assert partition_for(partial_key(m, comb.salt), PARTS) == part
        assert key == partial_key(items[0], comb.salt)
        total += len(items)
    assert total == comb.sent


def test_the_scorers_make_the_same_alerts_from_arrays_as_from_one_view_a_message() -> None:
    one, many = combiner(), combiner()
    viewed(one)
    viewed(many)
    asyncio.run(many.send(0))
    drained = one.rt.parts[0].engine.drain_partials()  # as the sender before: one each
    singles = []
    for m in drained:
        m["from"] = {"partition": 0}
        singles.append((partial_key(m, one.salt), orjson.dumps(m), None))
    assert len(singles) == many.sent > len(many.sent_log)
    scored(one, singles)
    scored(many, many.sent_log)
    assert one.dead == many.dead == []
    assert one.emitted  # the coupang sources page
    assert [a["alert_id"] for a in many.emitted] == [a["alert_id"] for a in one.emitted]


def test_a_bad_view_in_an_array_is_dead_lettered_alone_with_its_index() -> None:
    comb = combiner()
    viewed(comb)
    asyncio.run(comb.send(0))
    key, value, part = max(comb.sent_log, key=lambda s: len(orjson.loads(s[1])))
    items = orjson.loads(value)
    assert len(items) >= 2
    bad = {**items[1], "from": {"partition": 7}}  # no such input partition
    items[1] = bad
    scored(comb, [(key, orjson.dumps(items), part)])
    assert len(comb.dead) == 1
    msg, reason = comb.dead[0]
    assert msg.batch_index == 1 and msg.batch_size == len(items)
    assert orjson.loads(msg.value) == bad
    assert comb.emitted  # the others were scored


def test_a_checkpoint_cannot_fall_between_the_alerts_of_one_internal_message() -> None:
    """The agents of the internal topics take each message under one hold of the checkpoint
    lock (``streams.side.take_held``): a partition's time that releases several alerts sends
    them all before a checkpoint waiting for the lock covers the message (else a SIGKILL after
    that checkpoint loses the alerts not yet sent)."""
    from streams.side import take_held

    eps = episodes()
    fs = findings(12)
    made(eps, fs)
    asyncio.run(eps.send(0))
    deliver(eps, eps.sent_log)  # held: no partition's time yet
    assert eps.emitted == []
    part = eps.sent_log[0][2]
    st = eps.engines.parts[part]
    topic = eps.engines.input_topics[0]

    async def yielding_emit(a: dict[str, Any]) -> None:
        await asyncio.sleep(0)  # a send may yield to the loop (the checkpoint timer)
        eps.emitted.append(a)

    eps.rt.emit = yielding_emit
    covered: list[tuple[int, int]] = []  # what a checkpoint read: offset, alerts sent

    async def checkpoint() -> None:
        async with eps.engines._checkpoint_lock:  # what a checkpoint reads under the lock
            covered.append((st.offsets[topic], len(eps.emitted)))

    def progress(p: int, offset: int) -> Any:
        msg = SimpleNamespace(topic=topic, partition=part, offset=offset, key=PROGRESS,
                              value=orjson.dumps({"partition": p, "progress": 5000.0,
                                                  "flushed": False}), headers=())
        return SimpleNamespace(message=msg, ack=lambda: None)

    peer = SimpleNamespace(message=SimpleNamespace(  # the other builder's time (h-par8)
        topic=topic, partition=part, offset=9, key=PROGRESS, headers=(),
        value=orjson.dumps({"builder": 1 - part, "progress": 5000.0})), ack=lambda: None)

    async def go() -> None:
        await take_held(eps.engines, eps.on_message, peer)
        await take_held(eps.engines, eps.on_message, progress(0, 10))  # one of two: held
        assert eps.emitted == []
        taking = asyncio.create_task(take_held(eps.engines, eps.on_message, progress(1, 11)))
        await asyncio.sleep(0)  # the message is being taken, its first alert being sent
        await asyncio.gather(taking, asyncio.create_task(checkpoint()))

    asyncio.run(go())
    released = len(eps.emitted)
    assert released >= 2  # the time released several alerts, each sent with an await
    assert covered == [(11, released)]


# ---- h-par8: what a builder makes about another builder's episode ---------------------------


def test_a_builder_sends_what_it_makes_about_another_builders_episode_and_its_time() -> None:
    """cust-a reads from servers in two countries abroad 20 min apart, each subnet that
    account's alone: overseas_server's account ``info`` is made in the builder of each
    subnet's episode. The one made by the builder that is not the account's is sent on to
    the account's builder partition (``"builder"``), which takes it once the sender's time
    (``send_builder_times``) has passed it: one episode, ``replay``'s alert id."""
    from detectors.base import iso
    from detectors.episodes import hold_key
    from local.split import replay

    eps = episodes()
    t0 = 1_772_600_000.0

    def builder(kind: str, ident: str) -> int:
        return partition_for(hold_key(("overseas_server", kind, ident), eps.salt), PARTS)

    a = next(f"cust-a-{i}" for i in range(100) if partition_for(f"cust-a-{i}".encode(),
                                                                PARTS) == 0)
    hk, cz = "212.102.42.147", "138.199.0.125"
    assert {builder("subnet", hk[:-4] + ".0/24"), builder("subnet", cz[:-4] + ".0/24")} == {0, 1}

    def read(t: float, ip: str, sid: str) -> dict[str, Any]:
        return {"event_id": f"f-{t}", "ts": iso(t), "actor_id": a, "actor_type": "customer",
                "subject_id": a, "resource": "profile", "action": "read", "src_ip": ip,
                "session_id": sid}

    home = "121.134.20.36"
    events = [{"event_id": "l-0", "ts": iso(t0), "account_id": a, "account_type": "customer",
               "outcome": "success", "src_ip": home, "session_id": "s-home"}]
    events += [read(t0 + 1 + k, home, "s-home") for k in range(4)]
    events += [read(t0 + 600, hk, "s-far-1"), read(t0 + 1800, cz, "s-far-2"),
               read(t0 + 3000, home, "s-home")]
    one = [x["alert_id"] for x in replay(events, ("overseas_server",))
           if x["detector"] == "overseas_server"]
    assert len(one) == 1
    st = PartitionState(eps.rt._fresh_engine())
    eps.rt.parts[0] = st
    for e in events:
        st.engine.process_obj(e)
    st.engine.flush()  # the last read's wait for a late login ends
    asyncio.run(eps.send(0))
    now = st.engine.ctx.now
    for p in range(PARTS):  # both input partitions passed every finding
        value = orjson.dumps({"partition": p, "progress": now + 1})
        eps.sent_log += [(PROGRESS, value, k) for k in range(PARTS)]
    offsets = [0] * PARTS
    for k in range(PARTS):
        eps.engines.parts[k] = PartitionState(Engine(eps.engines.config))

    async def go(upto: int) -> int:
        i = upto
        while i < len(eps.sent_log):  # what the builders send is delivered in turn
            key, value, part = eps.sent_log[i]
            p = part if part is not None else partition_for(key, PARTS)
            msg = SimpleNamespace(topic=eps.engines.input_topics[0], partition=p,
                                  offset=offsets[p], key=key, value=value, headers=())
            offsets[p] += 1
            await eps.on_message(SimpleNamespace(message=msg, ack=lambda: None))
            i += 1
        return i

    i = asyncio.run(go(0))
    assert eps.emitted == []  # each builder waits for the other's time
    asyncio.run(eps.send_builder_times())  # (a watermark tick)
    i = asyncio.run(go(i))
    forwarded = [orjson.loads(v) for _, v, _ in eps.sent_log
                 if b'"builder"' in v and b'"finding"' in v]
    assert [m["finding"]["entity_id"] for m in forwarded] == [a]
    assert forwarded[0]["builder"] != builder("account", a)
    assert eps.dead == []
    asyncio.run(eps.send_builder_times())  # the sender's time passes what it sent
    asyncio.run(go(i))
    ids = [x["alert_id"] for x in eps.emitted if x["detector"] == "overseas_server"
           and x["entity"]["kind"] == "account"]
    assert ids == one and eps.dead == []


# ---- h-par9: a builder's fold time, when a hold keeps an observation of its back ----------------


def test_a_builder_reports_its_fold_time_and_the_others_take_their_observers_findings_past_it(
) -> None:
    """Builder 0 holds a subnet's overseas_server episode for input partition 0 from 4,000 s
    (a read waiting for the login stream): its time message says ``"folded": 4000`` beside
    its time (5,000 s). Builder 1, holding an overseas_server ``info`` on an account made at
    4,500 s and a key's finding made at 4,600 s, takes the key's at once (the input
    partitions and builder 0 passed it) and the account's only once builder 0 reports no
    fold time before it (what builder 0 folds when the hold lifts may come before it). A
    fold time that is not a number is dead-lettered."""
    from detectors.base import finding_message

    eps = episodes()
    topic = eps.engines.input_topics[0]
    for k in range(PARTS):
        eps.engines.parts[k] = PartitionState(Engine(eps.engines.config))
    offsets = [0] * PARTS

    def deliver_to(part: int, value: dict[str, Any]) -> None:
        msg = SimpleNamespace(topic=topic, partition=part, offset=offsets[part], key=PROGRESS,
                              value=orjson.dumps(value), headers=())
        offsets[part] += 1
        asyncio.run(eps.on_message(SimpleNamespace(message=msg, ack=lambda: None)))

    hold = ["overseas_server", "subnet", "212.102.42.0/24", 4000.0]
    deliver_to(0, {"partition": 0, "progress": 5000.0, "holds": [hold]})
    deliver_to(0, {"partition": 1, "progress": 5000.0})
    asyncio.run(eps.send_builder_times())
    to_one = [orjson.loads(v) for _, v, p in eps.sent_log if p == 1]
    assert to_one == [{"builder": 0, "progress": 5000.0, "folded": 4000.0}]

    info = Finding("overseas_server", "account", "cust-a", "info", 0.3, "s", [], ["e-1"], 4490.0)
    key = Finding("revoked_credential", "key", "kid-1", "critical", 0.9, "s", [], ["e-2"], 4600.0)
    for seq, (f, at) in enumerate(((info, 4500.0), (key, 4600.0)), 1):
        deliver_to(1, {"partition": 0, **finding_message(f, at, "origin-0", seq)})
    for p in range(PARTS):
        deliver_to(1, {"partition": p, "progress": 5000.0})
    deliver_to(1, to_one[0])
    assert [a["detector"] for a in eps.emitted] == ["revoked_credential"]
    deliver_to(1, {"builder": 0, "progress": 5000.0})  # the hold lifted
    assert [a["detector"] for a in eps.emitted] == ["revoked_credential", "overseas_server"]
    assert eps.dead == []
    deliver_to(1, {"builder": 0, "progress": 5001.0, "folded": "soon"})
    assert len(eps.dead) == 1
