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
import urllib.request
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


#: the engine's per-kind counts compared with replay's: every event processed once. ``late``
#: is not: it depends on the order the engine sees events in (docs/operations.md)
COUNTED = ("login", "access", "identity")


def replay_alerts(lines: list[bytes]) -> list[dict[str, Any]]:
    return replay_run(lines)[0]


def replay_run(lines: list[bytes]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """``replay``'s alerts and its engine's counts of the events it processed, by kind."""
    engine = Engine()
    out: list[dict[str, Any]] = []
    for line in lines:
        out.extend(engine.process_line(line)[0])
    out.extend(engine.flush())
    return out, {k: engine.stats[k] for k in COUNTED}


def engine_events(worker: WorkerProcess) -> dict[str, int]:
    """The worker's ``accesswatch_engine_events{kind}`` (empty when unreachable)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = urllib.request.urlopen(worker.metrics_url, timeout=5).read().decode()
    except OSError:
        return {}
    for fam in text_string_to_metric_families(text):
        if fam.name == "accesswatch_engine_events":
            return {s.labels["kind"]: int(s.value) for s in fam.samples}
    return {}


def assert_engine_counts(workers: list[WorkerProcess], expected: dict[str, int],
                         partitions: int = 1, timeout: float = 90.0) -> None:
    """The engines of ``workers`` processed as many events of each kind as ``replay``: the
    sums of their ``accesswatch_engine_events`` (identity: once per partition) reach
    ``expected`` within ``timeout`` and equal it (counts only grow within a worker's life, so
    a count that passed the replay's never comes back to it). The deadline is generous: a
    worker that has just restored, on a loaded machine, can leave its metrics page unanswered
    for seconds (seen in a CI run: every poll of 30 s unanswered, so all counts read 0)."""
    want = {k: n * partitions if k == "identity" else n for k, n in expected.items()}
    got: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    while True:
        got = {k: 0 for k in want}
        for w in workers:
            for k, n in engine_events(w).items():
                if k in got:
                    got[k] += n
        if got == want or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert got == want, f"engine counts {got}, replay's {want}"


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


def wait_until_done(worker: WorkerProcess, reader: AlertReader, events: int, alerts: int = 0,
                    quiet: float = 6.0, timeout: float = 300.0) -> None:
    """Until the worker took ``events`` input events, ``alerts`` distinct alert ids came, and
    then no alert for ``quiet`` s. (All events taken is not all alerts delivered: under load
    the last event can be taken more than ``quiet`` after the reader started, before any
    alert reached it; the caller's comparison shows what is missing at the deadline.)"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.alive(), worker.log_tail(40)
        taken = worker.metric("accesswatch_events_total")
        if (taken >= events and len({a["alert_id"] for a in list(reader.alerts)}) >= alerts
                and time.monotonic() - reader.last_at >= quiet):
            return
        time.sleep(0.5)
    raise AssertionError(f"worker not done in {timeout}s:\n{worker.log_tail(40)}")


@pytest.mark.broker
@pytest.mark.timeout(600)
def test_replay_and_worker_raise_the_same_alerts(fresh_tansu: Any, tmp_path: Any) -> None:
    lines = sim_lines()
    replayed, counts = replay_run(lines)
    expected = {a["alert_id"] for a in replayed}
    assert len(expected) >= 5  # the scenario does raise alerts

    create_topics(fresh_tansu.bootstrap, partitions=1)
    assert produce(fresh_tansu.bootstrap, lines) == len(lines)
    worker = WorkerProcess(fresh_tansu.url, partitions=1, data_dir=str(tmp_path))
    reader = AlertReader(fresh_tansu.bootstrap, TopicNames().alerts)
    worker.start()
    reader.start()
    try:
        worker.wait_ready()
        wait_until_done(worker, reader, len(lines), alerts=len(expected))
        got = {a["alert_id"] for a in reader.alerts}
        assert_engine_counts([worker], counts)  # every event processed, once
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
