"""Login bursts across partitions, on a real broker: every login of one source AS meets in
one burst engine (streams/bursts.py).

An address fails logins on 16 accounts in 150 s, 8 of them on each of 2 input partitions
(logins are keyed by account). credential_stuffing pages an address at 10 accounts: the replay
(one engine, all traffic) pages; an engine per input partition sees 8 and does not; the
worker, whose input engines send each login to the burst engine of its source, pages.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from detectors.engine import Engine, EngineConfig
from local.alerts import AlertReader
from local.worker import WorkerProcess
from streams.runtime import partition_for
from streams.topics import TopicNames, create_topics
from tests.helpers import produce, replay_alerts

PARTITIONS = 2
ATTACKER = "45.33.2.10"
T0 = 1750734000


def scenario() -> list[bytes]:
    """40 customers' ordinary logins, then 16 failures from one address, 8 per partition."""
    per: dict[int, list[str]] = {0: [], 1: []}
    i = 0
    while min(len(v) for v in per.values()) < 8:
        acct = f"c-{1000 + i}"
        p = partition_for(acct.encode(), PARTITIONS)
        if len(per[p]) < 8:
            per[p].append(acct)
        i += 1
    events: list[dict[str, Any]] = [
        {"event_id": f"ok{n}", "ts": T0 + 15 * n, "account_id": f"c-{n}", "outcome": "success",
         "src_ip": f"81.2.69.{10 + n}", "session_id": f"s{n}", "device_id": f"d{n}"}
        for n in range(40)]
    targets = [a for pair in zip(per[0], per[1], strict=True) for a in pair]
    events += [{"event_id": f"f{n}", "ts": T0 + 700 + 10 * n, "account_id": acct,
                "outcome": "failure", "src_ip": ATTACKER} for n, acct in enumerate(targets)]
    return [orjson.dumps(e) for e in events]


def stuffing(alerts: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(a["entity"]["kind"], a["entity"]["id"]) for a in alerts
            if a["detector"] == "credential_stuffing"}


def test_the_burst_is_only_seen_whole() -> None:
    lines = scenario()
    assert ("src_ip", ATTACKER) in stuffing(replay_alerts(lines))
    for p in range(PARTITIONS):  # what one input engine per partition would see
        eng = Engine(EngineConfig(detectors=("credential_stuffing",)))
        got: list[dict[str, Any]] = []
        for line in lines:
            if partition_for(orjson.loads(line)["account_id"].encode(), PARTITIONS) == p:
                got += eng.process_line(line)[0]
        assert not stuffing(got)


@pytest.mark.broker
@pytest.mark.timeout(300)
def test_a_worker_pages_on_a_burst_spread_over_its_partitions(fresh_tansu: Any,
                                                              tmp_path: Any) -> None:
    lines = scenario()
    want = stuffing(replay_alerts(lines))
    create_topics(fresh_tansu.bootstrap, partitions=PARTITIONS)
    assert produce(fresh_tansu.bootstrap, lines) == len(lines)
    worker = WorkerProcess(fresh_tansu.url, partitions=PARTITIONS, data_dir=str(tmp_path))
    reader = AlertReader(fresh_tansu.bootstrap, TopicNames().alerts)
    worker.start()
    reader.start()
    try:
        worker.wait_ready()
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline and stuffing(reader.alerts) != want:
            assert worker.alive(), worker.log_tail(40)
            time.sleep(0.5)
        time.sleep(3.0)  # nothing more comes (one page per burst)
        got = [a for a in reader.alerts if a["detector"] == "credential_stuffing"]
    finally:
        reader.stop()
        rc = worker.stop()
    assert stuffing(got) == want, worker.log_tail(60)
    assert len({a["alert_id"] for a in got}) == len(want)
    page = next(a for a in got if a["entity"]["id"] == ATTACKER)
    counted = {e["feature"]: e["observed"] for e in page["evidence"]}
    assert counted["distinct_failed_accounts"] >= 10  # more than either partition's 8
    assert rc == 0, worker.log_tail(40)


def test_the_source_key_groups_an_as_and_names_none_of_it() -> None:
    from types import SimpleNamespace

    from detectors.geo import default_geo
    from streams.bursts import source_key

    geo = default_geo()

    def key(ip: str, asn: int | None = None) -> bytes:
        return source_key(SimpleNamespace(net=geo.enrich(ip, None, asn)))

    a, b = key("167.71.0.10", 14061), key("167.71.2.77", 14061)  # one AS, two subnets
    assert a == b
    assert key("167.71.0.10", 14061) != key("167.71.0.10", 16509)
    assert key(ATTACKER) == key(ATTACKER)
    for raw in (b"167.71", b"14061", ATTACKER.encode()):
        assert raw not in a and raw not in key(ATTACKER)
