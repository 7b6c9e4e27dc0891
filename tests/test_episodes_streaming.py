"""Issue 17 item 5 through Kafka: `demo --partitions 4` pages what `replay` pages.

One simulated file with several attacks: the Coupang key and its servers abroad, a departed
owner's API key, a terminated employee's session, impossible travel. The keys are seen by every
partition (their forged requests come from many customers' actors) and the servers' subnets
read by customers of every partition; the episode builders of ``streams.episodes`` make one
episode per key and fold the subnets' observations (overseas_server), with replay's alert ids
and escalations. Detectors whose counts are still per partition or whose input is not taken in
event-time order across partitions (spread_access, bulk_lookup's combined views, the burst
engines) are left out (docs/contract.md, "Keying and partitioning").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from detectors.engine import Engine, EngineConfig
from simulation import SimConfig, simulate
from streams.broker import BrokerUnavailable, find_tansu

ROOT = Path(__file__).resolve().parent.parent
DETECTORS = ("revoked_credential", "unissued_session", "overseas_server", "impossible_travel",
             "account_takeover")
ATTACKS = ("coupang", "departed_key", "impossible_travel", "session_hijack",
           "terminated_session")


def _pages(alerts: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted((a["alert_id"], a["severity"], a["episode"]["started"]) for a in alerts)


@pytest.mark.broker
@pytest.mark.timeout(240)
def test_demo_over_four_partitions_pages_the_replays_alert_ids(tmp_path: Any) -> None:
    try:
        find_tansu()
    except BrokerUnavailable as e:
        pytest.skip(f"embedded broker unavailable: {e}")
    sim = simulate(SimConfig(seed=5, customers=300, hours=3, attacks=ATTACKS,
                             attack_start_hour=0.5))
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in sim.events))
    engine = Engine(EngineConfig(detectors=DETECTORS))  # what `replay` runs
    replayed: list[dict[str, Any]] = []
    for e in sim.events:
        replayed.extend(engine.process_obj(e)[0])
    replayed.extend(engine.flush())
    assert {(a["detector"], a["entity"]["kind"]) for a in replayed} >= {
        ("revoked_credential", "key"), ("unissued_session", "key"), ("overseas_server", "subnet"),
        ("impossible_travel", "account")}

    env = {**os.environ, "PYTHONPATH": str(ROOT), "ACCESSWATCH_DETECTORS": ",".join(DETECTORS)}
    r = subprocess.run([sys.executable, "-m", "streams.cli", "demo", "--json", "--alerting",
                        "off", "--partitions", "4", "--events", str(events)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=200)
    assert r.returncode == 0, r.stderr[-3000:]
    streamed = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert _pages(streamed) == _pages(replayed), r.stderr[-2000:]
    # the builders stamp the incident ids replay stamps (issue 18)
    assert sorted((a["alert_id"], a["severity"], a.get("incident_id")) for a in streamed) == \
        sorted((a["alert_id"], a["severity"], a.get("incident_id")) for a in replayed)
