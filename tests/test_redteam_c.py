"""Red team C's generator (simulation/redteam_c.py): deterministic per seed, every event valid
per the contract (checked by ``accesswatch replay`` itself, only its rejects are read), and the
addresses geolocate where the company model says they are."""

import json
import os
import random
import subprocess
import sys

import pytest

from simulation import redteam_c as R

SMALL = {"days": 2, "scale": 0.05, "cc_scale": 0.15}


@pytest.fixture(scope="module")
def poison():
    return R.generate("clock_poison", 5, **SMALL)


def test_deterministic_per_seed():
    a = R.generate("forged_fresh_resi", 3, **SMALL)
    b = R.generate("forged_fresh_resi", 3, **SMALL)
    c = R.generate("forged_fresh_resi", 4, **SMALL)
    assert a.lines == b.lines and a.truth == b.truth
    assert a.lines != c.lines


def test_truth_consistent(poison):
    atk = poison.truth["attack"]
    ids = {json.loads(line)["event_id"] for line in poison.lines}
    assert len(ids) == len(poison.lines)
    assert set(atk["event_ids"]) <= ids and atk["event_ids"]
    ts = [e[0] for e in atk["exposures"]]
    assert ts == sorted(ts) and atk["first_malicious"] <= ts[0]
    assert atk["expected_severity"] == "critical" and "kid-app-2025-07" in atk["keys"]


def test_every_event_valid_through_the_cli(poison, tmp_path):
    """The poisoned event (400 days ahead) is the one line replay rejects, as future_ts."""
    path, rej = tmp_path / "p.jsonl", tmp_path / "rej.jsonl"
    R.write(poison, str(path))
    exe = os.path.join(os.path.dirname(sys.executable), "accesswatch")
    proc = subprocess.run([exe, "replay", str(path), "--rejects", str(rej)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-500:]
    rejects = [json.loads(x) for x in rej.read_text().splitlines() if x.strip()]
    assert [r["reason"] for r in rejects] == ["future_ts"]
    bad = json.loads(rejects[0]["raw"])
    assert bad["event_id"] in poison.truth["attack"]["event_ids"]


def test_late_logins_arrive_after_their_reads(poison):
    first_read: dict[str, float] = {}
    late = 0
    for line in poison.lines:
        ev = json.loads(line)
        t = R._ts(ev["ts"])
        if "subject_id" in ev and ev.get("session_id"):
            first_read.setdefault(ev["session_id"], t)
        elif "outcome" in ev and ev.get("session_id") in first_read:
            late += 1
            assert first_read[ev["session_id"]] - t >= -1 and t > first_read[ev["session_id"]] - 600
    assert late > 0


def test_pools_geolocate_as_intended():
    geoip2fast = pytest.importorskip("geoip2fast")
    g = geoip2fast.GeoIP2Fast(verbose=False)
    r = random.Random(11)
    for pool, (country, _kind, _nets) in R.POOLS.items():
        for _ in range(25):
            ip = R.addr(r, pool)
            assert g.lookup(ip).country_code == country, (pool, ip)


def test_attack_sources_geolocate_as_intended():
    geoip2fast = pytest.importorskip("geoip2fast")
    g = geoip2fast.GeoIP2Fast(verbose=False)
    resi = R.generate("session_theft", 2, **SMALL).truth["attack"]["sources"]
    assert resi and all(g.lookup(ip).country_code == "DE" for ip in resi)
    abroad = R.generate("hosting_rotation_abroad", 2, **SMALL).truth["attack"]["sources"]
    assert len(abroad) > 20 and all(g.lookup(ip).country_code not in ("DE", "--") for ip in abroad)
    # at most two accounts per /24
    per: dict[str, int] = {}
    for ip in abroad:
        per[ip.rsplit(".", 1)[0]] = per.get(ip.rsplit(".", 1)[0], 0) + 1
    assert max(per.values()) <= 2
