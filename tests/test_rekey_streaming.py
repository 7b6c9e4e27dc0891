"""Events a producer keyed differently, on a real broker: re-sent once, keyed by their
account_id / actor_id, and processed where that key maps to.

Logins and access are produced keyed by source address (a log shipper's choice, not
DESIGN.md's) to topics of 2 partitions. The worker re-sends each event found on a partition
its key field does not map to, exactly once, and processes every event once where it
belongs. Per-event checks (``revoked_credential``: a key whose owner left) page on the same
entities as the replay. Order-sensitive checks are not compared here: a re-sent event reaches
its partition after that partition's own backlog (see docs/contract.md, keying).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from local.alerts import AlertReader
from local.worker import WorkerProcess
from streams.produce import KEY_FIELDS, classify
from streams.runtime import partition_for
from streams.topics import TopicNames, create_topics
from tests.helpers import replay_alerts, sim_lines

PARTITIONS = 2


def produce_keyed_by_source(bootstrap: str, lines: list[bytes]) -> tuple[int, int]:
    """Send every event to its topic, logins and access keyed by ``src_ip``; returns
    (events sent, events that landed on a partition their key field does not map to)."""
    from kafka import KafkaProducer

    names = TopicNames()
    topic_of = {"login": names.logins, "access": names.access, "identity": names.identity}
    prod = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    futures = []
    for line in lines:
        e = orjson.loads(line)
        kind, key = classify(e)
        assert kind is not None
        if kind != "identity":
            key = e["src_ip"].encode()
        futures.append((kind, e, prod.send(topic_of[kind], key=key, value=line)))
    prod.flush()
    off = 0
    for kind, e, f in futures:
        md = f.get(timeout=30)
        if kind != "identity":
            home = partition_for(str(e[KEY_FIELDS[kind][0]]).encode(), PARTITIONS)
            off += md.partition != home
    prod.close()
    return len(futures), off


@pytest.mark.broker
@pytest.mark.timeout(420)
def test_events_keyed_by_source_are_resent_once_and_processed_where_they_belong(
        fresh_tansu: Any, tmp_path: Any) -> None:
    lines = sim_lines()
    identity = sum(1 for line in lines if b'"change"' in line)
    want = {(a["entity"]["kind"], a["entity"]["id"]) for a in replay_alerts(lines)
            if a["detector"] == "revoked_credential"}
    assert want  # the scenario's forged tokens are signed with a departed engineer's key

    create_topics(fresh_tansu.bootstrap, partitions=PARTITIONS)
    sent, off = produce_keyed_by_source(fresh_tansu.bootstrap, lines)
    assert off > (sent - identity) // 4  # about half landed off their account's partition

    worker = WorkerProcess(fresh_tansu.url, partitions=PARTITIONS, data_dir=str(tmp_path))
    reader = AlertReader(fresh_tansu.bootstrap, TopicNames().alerts)
    worker.start()
    reader.start()
    try:
        worker.wait_ready()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert worker.alive(), worker.log_tail(40)
            # every input event once, plus each re-sent one once more where it belongs
            if (worker.metric("accesswatch_events_total") >= sent + off
                    and time.monotonic() - reader.last_at >= 6.0):
                break
            time.sleep(0.5)
        time.sleep(2.0)
        taken = worker.metric("accesswatch_events_total")
        rekeyed = worker.metric("accesswatch_rekeyed_events_total")
        duplicates = worker.metric("accesswatch_duplicate_events_total")
        got = {(a["entity"]["kind"], a["entity"]["id"]) for a in reader.alerts
               if a["detector"] == "revoked_credential"}
    finally:
        reader.stop()
        rc = worker.stop()
    assert rekeyed == off, worker.log_tail(40)
    assert taken == sent + off and duplicates == 0
    assert got == want
    assert rc == 0, worker.log_tail(40)
