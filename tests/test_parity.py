"""Parity: the same simulated file through the engine (``replay``) and through a real broker +
``accesswatch worker`` yields the same set of alert_ids.

The events are produced before the worker starts, so the worker reads identity-changes
to their end before detecting (as a replay reads them in file order) and merges logins and
access by event time. One partition, so every detector sees all traffic as in the replay
(bulk_lookup scores its window views in the input engine, as replay does; with several
partitions its views by source, subnet, AS and key meet through the combiner:
tests/test_combiner_streaming.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from local.alerts import AlertReader
from local.worker import WorkerProcess
from streams.topics import TopicNames, create_topics
from tests.helpers import assert_engine_counts, produce, replay_run, sim_lines, wait_until_done


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




