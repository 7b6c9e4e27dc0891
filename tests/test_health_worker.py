"""/readyz of a real worker on the embedded broker: 503 while a restarted worker restores
its state, 200 after (issue 16)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from local.worker import WorkerProcess
from simulation import SimConfig
from streams.topics import TopicNames, create_topics
from tests.helpers import produce_by_topic, sim_lines

SIM = SimConfig(seed=3, customers=400, hours=1, attacks=("coupang",), attack_start_hour=0.3)
RESTORING = "Restoring state from changelog topics"
RESTORED = "Restore complete!"


def status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return None  # the web server is not up yet


def poll_until_ready(worker: WorkerProcess, log: Path, timeout: float = 240.0
                     ) -> list[tuple[int | None, int | None, str]]:
    """(healthz, readyz, what the log said by then) every few tens of ms until /readyz is 200."""
    base = f"http://127.0.0.1:{worker.port}"
    seen: list[tuple[int | None, int | None, str]] = []
    deadline = time.monotonic() + timeout
    while True:
        assert worker.alive(), worker.log_tail(40)
        assert time.monotonic() < deadline, (seen[-5:], worker.log_tail(40))
        text = log.read_text(errors="replace") if log.exists() else ""
        phase = ("restored" if RESTORED in text else
                 "restoring" if RESTORING in text else "joining")
        ready = status(base + "/readyz")
        seen.append((status(base + "/healthz"), ready, phase))
        if ready == 200:
            return seen
        time.sleep(0.02)


def wait_for(cond: Any, worker: WorkerProcess, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert worker.alive(), worker.log_tail(40)
        assert time.monotonic() < deadline, worker.log_tail(40)
        time.sleep(0.1)


@pytest.mark.broker
@pytest.mark.timeout(600)
def test_readyz_is_503_while_a_restarted_worker_restores_and_200_after(
        fresh_tansu: Any, tmp_path: Path) -> None:
    names = TopicNames()
    lines = sim_lines(SIM)
    create_topics(fresh_tansu.bootstrap, partitions=1)
    cut = len(lines) // 2
    sent = produce_by_topic(fresh_tansu.bootstrap, lines[:cut])
    inputs = sent.get(names.logins, 0) + sent.get(names.access, 0)
    opts: dict[str, Any] = {"partitions": 1, "app_id": "accesswatch-ready",
                            "checkpoint_interval": 1.0, "extra": ["--log-level", "info"]}
    a_log, b_log = tmp_path / "a.log", tmp_path / "b.log"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    first = WorkerProcess(fresh_tansu.url, data_dir=str(tmp_path / "a"), log_path=str(a_log),
                          **opts).start()
    try:
        seen = poll_until_ready(first, a_log)
        assert seen[-1][:2] == (200, 200)
        wait_for(lambda: first.metric("accesswatch_events_total") >= inputs, first)
        wait_for(lambda: "partition 0: checkpoint" in a_log.read_text(), first)
    finally:
        assert first.stop() == 0, first.log_tail(40)  # SIGTERM: a last checkpoint

    # the restarted worker (a new data directory: its table comes back from the changelog)
    second = WorkerProcess(fresh_tansu.url, data_dir=str(tmp_path / "b"), log_path=str(b_log),
                           **opts).start()
    try:
        seen = poll_until_ready(second, b_log)
        rest = produce_by_topic(fresh_tansu.bootstrap, lines[cut:])
        more = rest.get(names.logins, 0) + rest.get(names.access, 0)
        wait_for(lambda: second.metric("accesswatch_events_total") >= more, second)
        after = status(f"http://127.0.0.1:{second.port}/readyz")
    finally:
        assert second.stop() == 0, second.log_tail(40)
    # the answers of the web server (a request that timed out on this loaded machine is none)
    up = [s for s in seen if s[0] == 200 and s[1] is not None]
    tally = Counter(seen)
    assert up, tally
    # alive but not ready while it joined the group and read the changelog back ...
    assert any(r == 503 for _, r, _ in up), tally
    assert all(r == 503 for _, r, _ in up[:-1]), tally
    # ... ready only once Faust's recovery had restored the table, and still ready after
    assert up[-1] == (200, 200, "restored"), tally
    assert after == 200
    restoring = sum(1 for _, r, phase in up if r == 503 and phase == "restoring")
    print(f"/readyz: {len(up)} answers, {restoring} of them 503 during the restore itself")
    log = b_log.read_text()
    assert "engine restored from checkpoint" in log, log[-3000:]
