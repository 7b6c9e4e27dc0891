"""Issue 14 item 5 on a real broker: a file with logins up to 60 s late (in file order) and a
few future-dated events gives the same alert ids through ``replay`` and the worker.

``replay`` reads the file in its order; the worker merges the logins and access topics by
event time (not perfectly). ``unissued_session`` waits for the login stream's event time
before it calls a session unissued, so neither order raises a finding the other does not. The
future-dated events (dated 400 days after the wall clock) are rejected by both as ``future_ts``.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from detectors.engine import Engine
from local.alerts import AlertReader
from local.worker import WorkerProcess
from simulation import SimConfig, simulate
from streams.topics import TopicNames, create_topics
from tests.helpers import (
    COUNTED,
    assert_engine_counts,
    delay_logins,
    produce,
    ts_seconds,
    wait_until_done,
)

SIM = SimConfig(seed=29, customers=1500, hours=2, attacks=("coupang",), attack_start_hour=0.5)


def late_lines() -> tuple[list[bytes], int]:
    events = sorted(simulate(SIM).events, key=lambda e: ts_seconds(e["ts"]))
    late, _ = delay_logins(events, seed=7)
    ahead = time.time() + 400 * 86400  # a forger's decoy dated 400 days ahead of today
    for i, at in enumerate((len(late) // 4, len(late) // 2, 3 * len(late) // 4)):
        e = dict(late[at], event_id=f"future-{i}", ts=ahead + i)
        late.insert(at, e)
    return [orjson.dumps(e) for e in late], 3


@pytest.mark.broker
@pytest.mark.timeout(600)
def test_replay_and_worker_agree_on_a_file_with_late_logins_and_future_dated_events(
        fresh_tansu: Any, tmp_path: Any) -> None:
    lines, future = late_lines()
    engine = Engine()
    replayed = []
    for line in lines:  # as ``replay`` reads a file: arrival = the wall clock
        replayed.extend(engine.process_line(line, None, time.time())[0])
    replayed.extend(engine.flush())
    assert engine.rejected["future_ts"] == future
    counts = {k: engine.stats[k] for k in COUNTED}
    expected = {a["alert_id"] for a in replayed}
    assert any(a["detector"] == "unissued_session" and a["severity"] == "critical"
               for a in replayed)  # the forged tokens page
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
        assert_engine_counts([worker], counts)  # every accepted event processed, once
    finally:
        reader.stop()
        rc = worker.stop()
    assert got == expected, (sorted(expected - got), sorted(got - expected))
    assert rc == 0, worker.log_tail(40)
