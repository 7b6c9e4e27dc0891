"""Issue 17 item 5: a partition's engine takes the identity changes in event-time order, as a
replay of the file does, however the worker's reader hands over the partitions of
identity-changes (one after another). Without a broker: the runtime is built by
``create_app`` and driven directly (``tests.test_batch.make_rt``)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson

from local.split import replay
from streams.runtime import PartitionState
from tests.helpers import access
from tests.test_batch import make_rt

T0 = 1_750_723_200  # 2025-06-24T00:00:00Z
HOUR = 3600


def issued(eid: str, ts: float, key: str) -> dict[str, Any]:
    return {"event_id": eid, "ts": ts, "change": "key_issued", "key_id": key}


def test_identity_changes_of_several_partitions_reach_the_engine_in_time_order(
        tmp_path: Any, monkeypatch: Any) -> None:
    """identity-changes partition 0 announces ``kid-a`` in the first second and has its next
    change hours later; partition 1 announces ``kid-x`` a second in. The reader hands over
    partition 0's changes, then partition 1's. Queued in the order read, ``kid-x``'s
    announcement waited behind the change of hours later: a customer's request signed by it
    two hours in was judged "signed by a key the key store never announced"."""
    part0 = [issued("i0", T0 + 1, "kid-a"), issued("i1", T0 + 5 * HOUR, "kid-z")]
    part1 = [issued("i2", T0 + 2, "kid-x")]
    reads = [access(f"a{i}", T0 + 2 * HOUR + i, f"c-{i}", f"s-{i}") for i in range(3)]
    for r in reads:
        r["token_issued_at"] = r["ts"] - 10
    rt = make_rt(tmp_path, monkeypatch)
    rt.parts[0] = PartitionState(rt._fresh_engine())

    async def go() -> None:
        for partition, changes in ((0, part0), (1, part1)):
            for off, obj in enumerate(changes):
                await rt.on_identity(SimpleNamespace(
                    topic=rt.names.identity, partition=partition, offset=off, key=b"i",
                    value=orjson.dumps(obj), headers=(), timestamp=None))
        for off, obj in enumerate(reads):
            msg = SimpleNamespace(topic=rt.names.access, partition=0, offset=off, key=b"k",
                                  value=orjson.dumps(obj), headers=(), timestamp=None)
            await rt.on_event(SimpleNamespace(message=msg, ack=lambda: None))
        for a in rt.parts[0].engine.flush():
            await rt.emit(a)

    asyncio.run(go())
    file = sorted(part0 + part1 + reads, key=lambda o: o["ts"])
    want = sorted((a["alert_id"], a["summary"]) for a in replay(file, ("unissued_session",)))
    got = [orjson.loads(v) for _, v, _ in rt.sent["alerts"]]
    assert want  # the sessions no login issued are judged, in both
    assert sorted((a["alert_id"], a["summary"]) for a in got
                  if a["detector"] == "unissued_session") == want
    assert not any("never announced" in a["summary"] for a in got)
