"""Crash recovery: a worker killed with SIGKILL mid-stream and restarted loses nothing.

The restarted worker (same consumer group) restores the engine checkpoint from the table's
changelog, skips what the checkpoint covers and processes the rest, so:

- every input offset ends up committed (no event left unprocessed);
- the alerts on the topic, from both lives of the worker, have exactly the alert_ids of a
  replay of the same file (no alert lost, none invented); alerts raised again after the
  restart carry the alert_id they had before.
"""

from __future__ import annotations

import importlib.util
import time
from collections import Counter
from typing import Any

import pytest

from detectors.simulate import SimConfig
from streams.demo import AlertReader, WorkerProcess
from streams.topics import TopicNames, create_topics

if importlib.util.find_spec("tests"):
    from tests.test_parity import produce_by_topic, replay_alerts, sim_lines, wait_committed
else:  # pytest put tests/ itself on sys.path
    from test_parity import produce_by_topic, replay_alerts, sim_lines, wait_committed

pytest_plugins = [
    "tests.broker_fixtures" if importlib.util.find_spec("tests") else "broker_fixtures"
]

SIM = SimConfig(seed=5, customers=800, hours=2, attacks=("coupang",), attack_start_hour=0.5)


@pytest.mark.broker
@pytest.mark.timeout(600)
@pytest.mark.xfail(
    strict=False,
    reason="known runtime gap (open issue): after a SIGKILL restart the worker sometimes stalls "
    "with data-access offsets behind (seen: committed 2,896 of 6,692 after 150 s) while logins "
    "are done; suspected in the two-topic event-time merge",
)
@pytest.mark.parametrize("store", ["memory", "rocksdb"])
def test_sigkill_mid_stream_then_restart_loses_nothing(fresh_tansu: Any, tmp_path: Any,
                                                       store: str) -> None:
    if store == "rocksdb" and importlib.util.find_spec("rocksdict") is None:
        pytest.skip("rocksdict not installed (pip install 'accesswatch[rocksdb]')")
    lines = sim_lines(SIM)
    replayed = replay_alerts(lines)
    expected = {a["alert_id"] for a in replayed}
    assert len(expected) >= 5
    names = TopicNames()
    create_topics(fresh_tansu.bootstrap, partitions=1)
    sent = produce_by_topic(fresh_tansu.bootstrap, lines)
    assert sum(sent.values()) == len(lines)

    group = "accesswatch-recovery"
    opts: dict[str, Any] = {"partitions": 1, "app_id": group, "checkpoint_interval": 1.0,
                            "extra": ["--log-level", "info", "--store", store]}
    first = WorkerProcess(fresh_tansu.url, data_dir=str(tmp_path / "a"),
                          log_path=str(tmp_path / "a.log"), **opts)
    (tmp_path / "a").mkdir()
    reader = AlertReader(fresh_tansu.bootstrap, names.alerts).start()
    first.start()
    try:
        first.wait_ready()
        deadline = time.monotonic() + 120
        while first.metric("accesswatch_events_total") < len(lines) // 3:
            assert first.alive(), first.log_tail(40)
            assert time.monotonic() < deadline, first.log_tail(40)
            time.sleep(0.2)
        while "checkpoint" not in (tmp_path / "a.log").read_text():  # one has landed
            assert time.monotonic() < deadline, first.log_tail(40)
            time.sleep(0.2)
        time.sleep(0.5)  # events after that checkpoint are in flight
        taken_before = first.metric("accesswatch_events_total")
        first.kill()  # SIGKILL: no last checkpoint, no commit, no flush
        assert taken_before < len(lines), "the worker finished before it was killed"
        alerts_before = len(reader.alerts)

        second = WorkerProcess(fresh_tansu.url, data_dir=str(tmp_path / "b"),
                               log_path=str(tmp_path / "b.log"), **opts)
        (tmp_path / "b").mkdir()
        second.start()
        try:
            second.wait_ready()
            inputs = {t: n for t, n in sent.items() if t in (names.logins, names.access)}
            wait_committed(fresh_tansu.bootstrap, group, inputs, [second], reader)
            taken_after = second.metric("accesswatch_events_total")
        finally:
            rc = second.stop()
    finally:
        reader.stop()
        first.stop()
    log = (tmp_path / "b.log").read_text()
    assert "engine restored from checkpoint" in log, log[-3000:]
    got = [a["alert_id"] for a in reader.alerts]
    assert set(got) == expected, (sorted(expected - set(got)), sorted(set(got) - expected))
    # The restarted worker did not start over: it took only what the checkpoint lacked
    # (plus the identity events every worker reads).
    assert taken_after < len(lines)
    # Alerts sent twice (before the crash, and again after it) kept their alert_id: each
    # (alert_id, severity) pair of the replay appears, repeats only of the same pairs.
    pairs = Counter((a["alert_id"], a["severity"]) for a in reader.alerts)
    assert set(pairs) == {(a["alert_id"], a["severity"]) for a in replayed}
    assert alerts_before > 0
    assert rc == 0
