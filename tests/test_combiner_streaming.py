"""The combiner on a real broker: 4 partitions, 2 workers in one group.

A Coupang-style source's requests are spread over every partition (access is keyed by the
customer whose token was forged). Each worker's engines hand their window views of sources,
subnets, ASes and keys to the ``<app_id>-partials`` topic, keyed by entity; the scorer of
that partition merges them. So bulk_lookup pages on each attacking source, once per entity,
as the offline replay (one engine over all the traffic) does, with the merged count.
"""

from __future__ import annotations

from typing import Any

import pytest

from local.alerts import AlertReader
from local.worker import WorkerProcess
from simulation import SimConfig
from streams.topics import TopicNames, create_topics
from tests.helpers import produce_by_topic, replay_alerts, sim_lines, start_group, wait_committed

SIM = SimConfig(seed=3, customers=400, hours=2, attacks=("coupang",), attack_start_hour=0.5)
SOURCES = ("src_ip", "subnet", "asn", "key")


def bulk_sources(alerts: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per source entity: its alert ids, severities and the largest 1 h count it stated."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for a in alerts:
        if a["detector"] != "bulk_lookup" or a["entity"]["kind"] not in SOURCES:
            continue
        e = out.setdefault((a["entity"]["kind"], a["entity"]["id"]),
                           {"ids": set(), "sev": set(), "n1h": 0})
        e["ids"].add(a["alert_id"])
        e["sev"].add(a["severity"])
        ev = {x["feature"]: x["observed"] for x in a["evidence"]}
        e["n1h"] = max(e["n1h"], ev.get("distinct_accounts_1h", 0))
    return out


@pytest.mark.broker
@pytest.mark.timeout(420)
def test_two_workers_four_partitions_page_on_the_merged_source(fresh_tansu: Any,
                                                               tmp_path: Any) -> None:
    lines = sim_lines(SIM)
    expected = bulk_sources(replay_alerts(lines))
    assert any(k[0] == "src_ip" and "critical" in v["sev"] for k, v in expected.items())
    names = TopicNames()
    create_topics(fresh_tansu.bootstrap, partitions=4)
    group = "accesswatch-combiner"
    reader = AlertReader(fresh_tansu.bootstrap, names.alerts).start()
    workers: list[WorkerProcess] = []
    try:
        workers = start_group(fresh_tansu.url, tmp_path, group, partitions=4)
        sent = produce_by_topic(fresh_tansu.bootstrap, lines)
        inputs = {t: n for t, n in sent.items() if t in (names.logins, names.access)}
        wait_committed(fresh_tansu.bootstrap, group, inputs, workers, reader, quiet=10.0)
        ident = sent.get(names.identity, 0)
        taken = [w.metric("accesswatch_events_total") - ident for w in workers]
        got = bulk_sources(list(reader.alerts))
    finally:
        reader.stop()
        rcs = [w.stop() for w in workers]
    assert all(t > 0 for t in taken), taken  # each worker had a share of the partitions
    print("replay:", {k: sorted(v["sev"]) for k, v in expected.items()})
    print("workers:", {k: (sorted(v["sev"]), v["n1h"], len(v["ids"])) for k, v in got.items()})
    # Every source, subnet, AS and key the replay pages on is paged on, and nothing else.
    for k, v in expected.items():
        if "critical" in v["sev"]:
            assert k in got and "critical" in got[k]["sev"], (k, got.get(k))
    assert set(got) <= set(expected), set(got) - set(expected)
    # One episode per entity (without the combiner: one per partition that saw it), and the
    # merged count in the evidence: past the critical threshold for hosting abroad (8/h).
    assert all(len(v["ids"]) == 1 for v in got.values()), got
    for k, v in got.items():
        if k[0] == "src_ip" and "critical" in v["sev"]:
            assert v["n1h"] >= 8, (k, v)
    assert rcs == [0, 0]
