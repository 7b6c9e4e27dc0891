"""Parity: the same simulated file through the engine (``replay``) and through a real broker +
``accesswatch worker`` yields the same set of alert_ids.

The events are produced before the worker starts, so the worker reads identity-changes
to their end before detecting (as a replay reads them in file order) and merges logins and
access by event time. One partition, so every detector sees all traffic as in the replay
(with several partitions, bulk_lookup's views by source, subnet, AS and key meet through the
combiner: tests/test_combiner_streaming.py).
"""

from __future__ import annotations

import importlib.util
import time
from typing import Any

import orjson
import pytest

from detectors.engine import Engine
from detectors.simulate import SimConfig, simulate
from streams.demo import AlertReader, WorkerProcess
from streams.produce import Producer
from streams.topics import TopicNames, create_topics

# "tests.broker_fixtures" when the project root is importable (root conftest, python -m
# pytest), else the bare module name (pytest puts tests/ itself on sys.path).
pytest_plugins = [
    "tests.broker_fixtures" if importlib.util.find_spec("tests") else "broker_fixtures"
]

SIM = SimConfig(seed=11, customers=500, hours=2, attacks=("coupang",), attack_start_hour=0.5)


def sim_lines(cfg: SimConfig = SIM) -> list[bytes]:
    return [orjson.dumps(e) for e in simulate(cfg).events]


def replay_alerts(lines: list[bytes]) -> list[dict[str, Any]]:
    engine = Engine()
    out: list[dict[str, Any]] = []
    for line in lines:
        out.extend(engine.process_line(line)[0])
    out.extend(engine.flush())
    return out


def produce(bootstrap: str, lines: list[bytes], names: TopicNames | None = None) -> int:
    return sum(produce_by_topic(bootstrap, lines, names).values())


def produce_by_topic(bootstrap: str, lines: list[bytes], names: TopicNames | None = None
                     ) -> dict[str, int]:
    with Producer(bootstrap, topics=names or TopicNames()) as prod:
        prod.send_lines(lines)
        return dict(prod.close().sent)


def start_group(url: str, tmp_path: Any, group: str, partitions: int,
                names: tuple[str, ...] = ("a", "b")) -> list[WorkerProcess]:
    """Workers of one consumer group, started, ready, and given time to join (Tansu: about
    half the session timeout); each with its own data dir and log under ``tmp_path``."""
    workers = [
        WorkerProcess(url, partitions=partitions, app_id=group,
                      data_dir=str(tmp_path / n), log_path=str(tmp_path / f"{n}.log"))
        for n in names
    ]
    for n in names:
        (tmp_path / n).mkdir()
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.wait_ready()
    except BaseException:
        for w in workers:
            w.stop()
        raise
    time.sleep(12)
    return workers


def wait_until_done(worker: WorkerProcess, reader: AlertReader, events: int,
                    quiet: float = 6.0, timeout: float = 300.0) -> None:
    """Until the worker took ``events`` input events and no alert came for ``quiet`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.alive(), worker.log_tail(40)
        taken = worker.metric("accesswatch_events_total")
        if taken >= events and time.monotonic() - reader.last_at >= quiet:
            return
        time.sleep(0.5)
    raise AssertionError(f"worker not done in {timeout}s:\n{worker.log_tail(40)}")


@pytest.mark.broker
@pytest.mark.timeout(600)
def test_replay_and_worker_raise_the_same_alerts(fresh_tansu: Any, tmp_path: Any) -> None:
    lines = sim_lines()
    expected = {a["alert_id"] for a in replay_alerts(lines)}
    assert len(expected) >= 5  # the scenario does raise alerts

    create_topics(fresh_tansu.bootstrap, partitions=1)
    assert produce(fresh_tansu.bootstrap, lines) == len(lines)
    worker = WorkerProcess(fresh_tansu.url, partitions=1, data_dir=str(tmp_path))
    reader = AlertReader(fresh_tansu.bootstrap, TopicNames().alerts)
    worker.start()
    reader.start()
    try:
        worker.wait_ready()
        wait_until_done(worker, reader, len(lines))
        got = {a["alert_id"] for a in reader.alerts}
    finally:
        reader.stop()
        rc = worker.stop()
    assert got == expected, (sorted(expected - got), sorted(got - expected))
    assert rc == 0, worker.log_tail(40)  # SIGTERM: a clean exit


def committed(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        got = admin.list_group_offsets({group: None}).get(group, {})
        return {(tp.topic, tp.partition): om.offset for tp, om in got.items()}
    finally:
        admin.close()


def wait_committed(bootstrap: str, group: str, sent: dict[str, int],
                   workers: list[WorkerProcess], reader: AlertReader, quiet: float = 6.0,
                   timeout: float = 300.0) -> None:
    """Until the group committed all ``sent[topic]`` messages of each input topic (offsets
    count from 0 per partition) and no alert came for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    per_topic: dict[str, int] = {}
    while time.monotonic() < deadline:
        for w in workers:
            assert w.alive(), w.log_tail(40)
        per_topic = {}
        for (topic, _), off in committed(bootstrap, group).items():
            per_topic[topic] = per_topic.get(topic, 0) + max(off, 0)
        done = all(per_topic.get(t, 0) >= n for t, n in sent.items())
        if done and time.monotonic() - reader.last_at >= quiet:
            return
        time.sleep(0.5)
    raise AssertionError(f"not all committed in {timeout}s: sent {sent}, committed {per_topic}")
