"""The red-team generator: deterministic per seed, contract-valid, truth consistent with events.

Fast tier: no broker; small populations (``small=True``).
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from simulation import redteam

AW = Path(sys.executable).with_name("accesswatch")


def _ts(v) -> float:
    if isinstance(v, int | float):
        return float(v)
    return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()


@pytest.fixture(scope="module")
def small() -> dict[str, redteam.Generated]:
    names = ["normal", "forged_unannounced_keys", "hosting_rotation", "idor_ring",
             "service_export_volume", "future_dated", "spoofed_provenance", "no_session_id"]  # fmt: skip
    return {n: redteam.generate(n, seed=7, small=True) for n in names}


def test_deterministic_per_seed():
    a = redteam.generate("idor_ring", seed=5, small=True)
    b = redteam.generate("idor_ring", seed=5, small=True)
    c = redteam.generate("idor_ring", seed=6, small=True)
    assert a.lines() == b.lines()
    assert a.truth() == b.truth()
    assert a.lines() != c.lines()


def test_replay_accepts_every_line(tmp_path):
    """Every line decodes as a contract event: the product's replay rejects none of them.

    Kept fast: each file holds its attack's events and every 10th other event."""
    paths, decoys = [], set()
    for seed, name in enumerate(("spoofed_provenance", "future_dated", "service_export_volume")):
        gen = redteam.generate(name, seed=11 + seed, small=True)  # own seeds: no shared ids
        keep = set().union(*(a.event_ids | a.decoys for a in gen.attacks))
        decoys |= set().union(*(a.decoys for a in gen.attacks))
        path = tmp_path / f"{name}.jsonl"
        with path.open("w") as f:
            for i, (e, line) in enumerate(zip(gen.events, gen.lines(), strict=True)):
                if e["event_id"] in keep or i % 10 == 0:
                    f.write(line + "\n")
        paths.append(str(path))
    rejects = tmp_path / "rejects.jsonl"
    proc = subprocess.run([str(AW), "replay", *paths, "--rejects", str(rejects)],
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    m = re.search(r"rejected:\s*([\d,]+)", proc.stderr)
    assert m, proc.stderr
    rejected = [json.loads(json.loads(line)["raw"])["event_id"]
                for line in rejects.read_text().splitlines() if line.strip()]  # fmt: skip
    assert int(m.group(1).replace(",", "")) == len(rejected)
    assert set(rejected) <= decoys  # only the attacker's future-dated decoy may be refused


def test_events_follow_contract_v1(small):
    for gen in small.values():
        ids = [e["event_id"] for e in gen.events]
        assert len(ids) == len(set(ids))
        for e in gen.events:
            assert isinstance(e["event_id"], str)
            _ts(e["ts"])
            if "outcome" in e:
                assert e["outcome"] in ("success", "failure")
                assert isinstance(e["account_id"], str) and e["src_ip"]
                assert ("session_id" in e) == (e["outcome"] == "success")
            elif "subject_id" in e:
                assert e["actor_type"] in ("customer", "employee", "service")
                assert e["action"] in ("read", "search", "export", "update", "delete")
                assert isinstance(e.get("records", 1), int) and e.get("records", 1) >= 1
                ipaddress.ip_address(e["src_ip"])
            else:
                assert e["change"] in ("key_issued", "principal_terminated")


def test_truth_consistent_with_events(small):
    for name, gen in small.items():
        by_id = {e["event_id"]: e for e in gen.events}
        if name == "normal":
            assert gen.attacks == []
            continue
        (a,) = gen.attacks
        assert a.event_ids and a.event_ids <= by_id.keys()
        assert a.decoys <= by_id.keys() and not (a.decoys & a.event_ids)
        first: dict[str, float] = {}
        ips = {ipaddress.ip_address(i) for k, i in a.entities if k == "src_ip"}
        for eid in a.event_ids:
            e = by_id[eid]
            t = _ts(e["ts"])
            assert t >= a.start - 1e-3 and t < gen.end
            first[e["subject_id"]] = min(first.get(e["subject_id"], t), t)
            if "outcome" not in e and name != "idor_ring" and not name.startswith("service"):
                assert ipaddress.ip_address(e["src_ip"]) in ips
            if e.get("session_id") and e["actor_id"] == e["subject_id"]:
                assert ("session", e["session_id"]) in a.entities
        assert {v: round(t, 3) for v, t in a.victims.items()} == {
            v: round(t, 3) for v, t in first.items()
        }
        rows = sum(
            by_id[i].get("records", 1) for i in a.event_ids if by_id[i].get("action") == "export"
        )
        if name == "service_export_volume":
            assert a.exposed_before(None) == rows
        else:
            assert a.exposed_before(None) == len(a.victims)
        # exposure counts grow with time and reach every victim at the end
        ex = a.exposures()
        assert a.exposed_before(ex[0][0]) == 0
        assert a.exposed_before(ex[-1][0] + 1) == a.exposed_before(None)


def test_arrival_order(small):
    """Events are written in arrival order: only logins arrive late (<= 60 s); decoys aside."""
    for gen in small.values():
        decoys = set().union(*(a.decoys for a in gen.attacks))
        latest = float("-inf")
        for e in gen.events:
            if e["event_id"] in decoys:
                continue
            t = _ts(e["ts"])
            if t < latest - 1e-3:
                assert "outcome" in e and latest - t <= 60.0 + 1e-3
            latest = max(latest, t)
