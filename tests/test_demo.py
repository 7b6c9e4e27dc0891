"""`accesswatch demo` end to end, as a user runs it (subprocess, embedded Tansu)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streams.broker import BrokerUnavailable, find_tansu

ROOT = Path(__file__).resolve().parent.parent


def _need_tansu() -> None:
    try:
        find_tansu()
    except BrokerUnavailable as e:
        pytest.skip(f"embedded broker unavailable: {e}")


def _demo(*args: str, timeout: float = 200) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "streams.cli", "demo", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.broker
@pytest.mark.timeout(240)
def test_demo_shows_the_coupang_attack_alerted() -> None:
    _need_tansu()
    r = _demo("--customers", "600", "--hours", "2", "--alerting", "off")
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    assert "metrics: http://127.0.0.1:" in out
    assert "[critical]" in out  # alerts printed as they arrive, one line each
    assert "attack detected: yes" in out, out[-3000:]
    assert "revoked_credential" in out or "overseas_server" in out or "bulk_lookup" in out
    assert "Traceback" not in r.stderr


@pytest.mark.broker
@pytest.mark.prom
@pytest.mark.timeout(300)
def test_demo_starts_the_alerting_chain_and_on_call_gets_paged() -> None:
    _need_tansu()
    from local import chain

    why = chain.available()
    if why is not None:
        pytest.skip(f"alerting chain unavailable: {why}")
    r = _demo("--customers", "600", "--hours", "2", "--alerting", "on")
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    assert "prometheus: http://127.0.0.1:" in out and "alertmanager: http://127.0.0.1:" in out
    assert "on-call receiver: http://127.0.0.1:" in out
    pages = [ln for ln in out.splitlines() if ln.startswith("pages received by the on-call")]
    assert pages and "oncall-pager" in pages[0], out[-3000:]


@pytest.mark.broker
@pytest.mark.timeout(240)
def test_demo_json_plays_a_file(tmp_path: Any) -> None:
    _need_tansu()
    from simulation import SimConfig, simulate

    sim = simulate(SimConfig(seed=2, customers=300, hours=1.5, attacks=("coupang",),
                             attack_start_hour=0.5))
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in sim.events))
    r = _demo("--json", "--events", str(events))
    assert r.returncode == 0, r.stderr[-3000:]
    alerts = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert alerts, r.stderr[-3000:]
    assert all({"alert_id", "detector", "severity", "entity", "summary"} <= set(a) for a in alerts)
    assert "summary" in r.stderr and "events:" in r.stderr


def test_demo_missing_events_file_is_one_line() -> None:
    r = _demo("--events", "/nonexistent/events.jsonl", timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no such file" in lines[0]



@pytest.mark.broker
@pytest.mark.timeout(480)
def test_two_demo_runs_on_one_broker_give_the_same_alert_ids(fresh_tansu: Any,
                                                            tmp_path: Any) -> None:
    """issue 16: a second `demo --broker` run read the first run's events too (321 alert ids
    instead of 185 on Apache Kafka). Each run now has topics and a group of its own."""
    from simulation import SimConfig, simulate

    sim = simulate(SimConfig(seed=2, customers=300, hours=1.5, attacks=("coupang",),
                             attack_start_hour=0.5))
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in sim.events))
    runs = []
    for _ in range(2):
        r = _demo("--json", "--events", str(events), "--broker", fresh_tansu.url,
                  "--alerting", "off")
        assert r.returncode == 0, r.stderr[-3000:]
        assert "topics of this run: accesswatch-demo-" in r.stderr
        runs.append({json.loads(line)["alert_id"] for line in r.stdout.splitlines()
                     if line.strip()})
    assert runs[0], "the first run raised no alert"
    assert runs[1] == runs[0]
    # the second run's worker took its own events only, not the first run's too
    import re

    m = re.search(r"events: ([\d,]+) produced, ([\d,]+) taken by the worker", r.stderr)
    assert m, r.stderr[-2000:]
    assert m.group(1) == m.group(2) == f"{len(sim.events):,}"
