"""The logins the input engines relay to the burst engines (``<app_id>-logins-by-source``,
streams/bursts.py) go one Kafka message per burst partition and input message (or merge
drain), not one per login: 2,796 one-login messages in the 2-worker benchmark of 100,000
simulated events, each costing the sending and the receiving worker Faust's per-message
work (h-lbs). A login alone still goes as its bytes with the ``aw-from`` header, and that form
is still read. Pure: no broker; the runtime is built by ``create_app`` and driven directly,
its sends recorded.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson

from streams import batch
from streams.app import create_app
from streams.batch import partition_for
from streams.bursts import FROM, source_key
from streams.runtime import PartitionState
from streams.settings import Settings
from streams.side import PROGRESS, send_progress

PARTS = 2
T0 = 1_750_734_000
ATTACKER = "45.33.2.10"
#: sources in several ASes / countries of the bundled GeoIP data: both burst partitions
SOURCES = ["45.33.2.10", "81.2.69.10", "52.95.110.1", "8.8.8.8", "1.1.1.1", "104.16.0.1",
           "13.107.4.1", "31.13.64.1", "185.60.216.1", "91.198.174.1", "151.101.1.1",
           "17.253.144.10", "23.32.0.1", "41.203.64.1", "200.160.2.3", "202.12.27.33"]


def runtime(tmp_path: Any) -> Any:
    """A 2-partition worker's runtime; its alerts, dead letters and logins-by-source sends
    recorded (``rt.sent``), the burst engines' dead letters too; no other topic to merge."""
    rt = create_app(Settings(data_dir=str(tmp_path), partitions=PARTS,
                             state_keys=("test-state-key-0123456789",))).accesswatch
    rt.sent = {"alerts": [], "dlq": [], "bursts": []}

    def recorder(name: str) -> Any:
        async def send(key: Any = None, value: Any = None, headers: Any = None,
                       partition: int | None = None, **kw: Any) -> None:
            rt.sent[name].append((key, value, dict(headers or ()), partition))
        return SimpleNamespace(send=send)

    async def nothing() -> None:
        return None

    rt.alerts_topic = recorder("alerts")
    rt.dlq_topic = recorder("dlq")
    rt.bursts.topic = recorder("bursts")
    rt._wait_for = lambda *a, **kw: 0.0
    rt.watch_delivery = nothing
    rt.bursts.engines.watch_delivery = nothing
    rt._update_lag = lambda: None
    for p in range(PARTS):
        rt.parts[p] = PartitionState(rt._fresh_engine())
        rt.bursts.engines.parts[p] = PartitionState(rt.bursts.engines._fresh_engine())
    return rt


def accounts(partition: int, n: int) -> list[str]:
    """``n`` account ids keyed to input partition ``partition``."""
    out: list[str] = []
    i = 0
    while len(out) < n:
        if partition_for(f"c-{i}".encode(), PARTS) == partition:
            out.append(f"c-{i}")
        i += 1
    return out


def logins(partition: int, start: int = 0) -> list[bytes]:
    """Input partition ``partition``'s logins: one success from each source, then 8 failures
    from ``ATTACKER`` on 8 accounts of that partition (16 over both: credential_stuffing's
    threshold is 10)."""
    accts = accounts(partition, 8)
    out = [orjson.dumps({"event_id": f"ok-{partition}-{n}", "ts": T0 + start + 5 * n,
                         "account_id": accts[n % 8], "outcome": "success", "src_ip": ip,
                         "session_id": f"s-{partition}-{n}", "device_id": f"d-{n}"})
           for n, ip in enumerate(SOURCES)]
    out += [orjson.dumps({"event_id": f"f-{partition}-{n}", "ts": T0 + start + 200 + 10 * n,
                          "account_id": a, "outcome": "failure", "src_ip": ATTACKER})
            for n, a in enumerate(accts)]
    return out


def message(rt: Any, partition: int, offset: int, value: bytes, topic: str = "") -> Any:
    msg = SimpleNamespace(topic=topic or rt.names.logins, partition=partition, offset=offset,
                          key=b"k", value=value, headers=(), timestamp=None)
    return SimpleNamespace(message=msg, ack=lambda: None)


def take(rt: Any, batched: bool) -> None:
    """Each input partition's logins: as one batch message, or one message each."""
    async def go() -> None:
        for p in range(PARTS):
            lines = logins(p)
            values = [batch.frame(lines)] if batched else lines
            for off, value in enumerate(values):
                await rt.on_event(message(rt, p, off, value))
    asyncio.run(go())


def burst_alerts(rt: Any) -> list[dict[str, Any]]:
    """What the burst engines make of the recorded sends, delivered in order, then each input
    partition's time (flushed: every login released), then the engines flushed."""
    bursts = rt.bursts
    emitted: list[dict[str, Any]] = []

    async def emit(a: dict[str, Any]) -> None:
        emitted.append(a)

    bursts.engines.emit = emit

    async def go() -> None:
        for st in rt.parts.values():
            st.flushed = True
        await send_progress(rt, bursts.topic, PARTS)
        offsets = [0] * PARTS
        for key, value, headers, part in rt.sent["bursts"]:
            p = part if part is not None else partition_for(key, PARTS)
            msg = SimpleNamespace(topic=bursts.name, partition=p, offset=offsets[p], key=key,
                                  value=value, headers=list(headers.items()), timestamp=None)
            offsets[p] += 1
            await bursts.on_login(SimpleNamespace(message=msg, ack=lambda: None))
        for st in bursts.engines.parts.values():
            emitted.extend(st.engine.flush())
    asyncio.run(go())
    return emitted


def test_the_logins_of_one_message_go_as_one_message_per_burst_partition_in_order(
        tmp_path: Any) -> None:
    rt = runtime(tmp_path)
    take(rt, batched=True)
    sent = rt.sent["bursts"]
    n = len(logins(0)) + len(logins(1))
    # 2 input messages, each split into one message per burst partition (not one per login)
    assert 2 <= len(sent) <= 2 * PARTS and {part for *_, part in sent} == set(range(PARTS))
    got: list[tuple[int, int]] = []
    for key, value, headers, part in sent:
        items = orjson.loads(value)
        assert type(items) is list and len(items) > 1 and FROM not in headers
        for one in items:  # each where its source sends it: a source's logins meet
            p, at, ts, seq = one["from"]
            assert ts == one["login"]["ts"] and at >= ts
            got.append((p, seq))
        assert {partition_for(source_key_of(rt, one["login"]), PARTS) for one in items} == \
            {part}
        assert key == source_key_of(rt, items[0]["login"])
        seqs = [one["from"][3] for one in items]
        assert seqs == sorted(seqs)  # the order taken, inside each message
    assert sorted(got) == [(p, s) for p in range(PARTS)
                           for s in range(1, len(logins(p)) + 1)]
    assert rt.bursts.sent == n


def source_key_of(rt: Any, login: dict[str, Any]) -> bytes:
    """The burst key of a login as its input engine enriched it."""
    from detectors import events as E

    engine = rt._fresh_engine()
    ev = E.decode(orjson.dumps(login), E.LOGIN, rt.policy_of[rt.names.logins])
    engine.process(ev)
    return source_key(ev, rt.bursts.salt)


def test_the_burst_engines_page_the_same_from_arrays_as_from_one_login_a_message(
        tmp_path: Any) -> None:
    one, many = runtime(tmp_path / "one"), runtime(tmp_path / "many")
    take(one, batched=False)
    take(many, batched=True)
    n = len(logins(0)) + len(logins(1))
    assert len(one.sent["bursts"]) == n  # one login a message
    assert all(FROM in h for _, _, h, _ in one.sent["bursts"])
    assert len(many.sent["bursts"]) <= 2 * PARTS
    a1, a2 = burst_alerts(one), burst_alerts(many)
    assert one.sent["dlq"] == many.sent["dlq"] == []
    stuffing = [a for a in a1 if a["detector"] == "credential_stuffing"]
    assert stuffing and any(a["entity"]["id"] == ATTACKER for a in stuffing)
    assert [a["alert_id"] for a in a2] == [a["alert_id"] for a in a1]


def test_a_bad_login_in_an_array_is_dead_lettered_alone_with_its_index(tmp_path: Any) -> None:
    rt = runtime(tmp_path)
    login = orjson.loads(logins(0)[0])
    good = {"from": [0, float(T0), float(T0), 1], "login": login}
    bad = {"from": [7, float(T0), float(T0), 2], "login": login}  # no such input partition
    later = {"from": [1, float(T0 + 1), float(T0 + 1), 1], "login": login}
    value = orjson.dumps([good, bad, later])
    msg = SimpleNamespace(topic=rt.bursts.name, partition=0, offset=0, key=b"k", value=value,
                          headers=[], timestamp=None)
    asyncio.run(rt.bursts.on_login(SimpleNamespace(message=msg, ack=lambda: None)))
    [(_, dead, headers, _)] = rt.sent["dlq"]
    assert orjson.loads(dead) == bad
    assert headers["aw-index"] == b"1" and headers["aw-reason"] == b"invalid_burst_message"
    from detectors.episodes import InOrder

    assert InOrder(rt.bursts.engines.parts[0].engine, PARTS).pending == 2


def test_an_input_engines_time_goes_to_the_burst_engines_only_after_the_logins_it_took(
        tmp_path: Any) -> None:
    """The logins of a lock hold are sent at its end, with the engine time each was taken at;
    the progress of the watermark tick (each input engine's time, which lets the burst engines
    release what it passed) waits for the lock: it never overtakes the logins taken before."""
    rt = runtime(tmp_path)

    for st in rt.parts.values():
        st.max_ts = float(T0)

    async def go() -> list[bytes]:
        async with rt._checkpoint_lock:  # as a drain applying and sending logins holds it
            tick = asyncio.create_task(rt.bursts.tick())
            for _ in range(5):
                await asyncio.sleep(0)
            before = [k for k, *_ in rt.sent["bursts"]]
        await tick
        return before

    assert asyncio.run(go()) == []  # nothing while the lock is held
    assert [k for k, *_ in rt.sent["bursts"]] == [PROGRESS] * PARTS * PARTS
