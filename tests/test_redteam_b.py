"""Red team B's generator (simulation/redteam_b.py): deterministic, accepted by replay, and
its truth agrees with its events. Small populations and short files keep it to seconds."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from simulation import redteam_b

# (days, scale) small enough for the fast tier; long enough that every attack starts
SMALL = {name: (min(days, 4), 0.03) for name, (days, *_rest) in redteam_b.SCENARIOS.items()}
SMALL["export_creep"] = (6, 0.03)  # starts on day 4
SMALL["vip_stalker"] = (10, 0.03)  # starts on day 8
ATTACKS = [n for n in redteam_b.SCENARIOS if n != "normal"]


@functools.lru_cache(maxsize=32)
def _small(name: str, seed: int) -> redteam_b.Generated:
    days, scale = SMALL[name]
    return redteam_b.generate(name, seed, days=days, scale=scale)


def _accesswatch() -> str:
    here = Path(sys.executable).with_name("accesswatch")
    return str(here) if here.exists() else (shutil.which("accesswatch") or "accesswatch")


@pytest.mark.parametrize("name", ["normal", "stolen_agent_session", "export_creep"])
def test_same_seed_same_bytes_other_seed_other_bytes(name):
    days, scale = SMALL[name]
    a, b = _small(name, 1), redteam_b.generate(name, 1, days=days, scale=scale)
    c = _small(name, 2)
    assert a.lines == b.lines
    assert json.dumps(a.truth, sort_keys=True) == json.dumps(b.truth, sort_keys=True)
    assert a.lines != c.lines


def test_replay_rejects_only_the_duplicate_deliveries(tmp_path):
    """Every scenario's file, replayed in one run: the only rejected lines are the repeated
    deliveries the generator makes on purpose (0.2%), none deliberately bad."""
    paths, repeats = [], 0
    for i, name in enumerate(redteam_b.SCENARIOS):
        gen = _small(name, 3 + i)
        assert gen.truth["deliberately_bad_lines"] == 0
        paths.append(str(tmp_path / f"{name}.jsonl"))
        redteam_b.write(gen, paths[-1], None)
        repeats += sum(n - 1 for n in Counter(json.loads(x)["event_id"] for x in gen.lines).values())
    rejects = tmp_path / "rej.jsonl"
    proc = subprocess.run([_accesswatch(), "replay", *paths, "--rejects", str(rejects), "--quiet"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    reasons = Counter(json.loads(line)["reason"] for line in rejects.read_text().splitlines())
    assert repeats > 0
    assert reasons == Counter({"duplicate": repeats})


@pytest.mark.parametrize("name", ATTACKS)
def test_truth_agrees_with_the_events(name):
    gen = _small(name, 1)
    atk = gen.truth["attack"]
    events = {}
    for line in gen.lines:
        ev = json.loads(line)
        events.setdefault(ev["event_id"], ev)
    mal = [events[i] for i in atk["event_ids"]]
    assert mal, "an attack has malicious events"
    assert min(ev["ts"] for ev in mal) == atk["first_malicious"]
    names = set(atk["principals"]) | set(atk["keys"]) | set(atk["sessions"])
    for ev in mal:
        if ev.get("outcome") == "failure":  # stuffing: most attempts are on other accounts
            assert name == "stuffing_low_slow" and ev["src_ip"] in atk["sources"]
            continue
        who = ev.get("actor_id") or ev.get("account_id")
        assert who in names or ev.get("key_id") in names or ev.get("session_id") in names
        if atk["sources"]:
            assert ev["src_ip"] in atk["sources"]
    reads = [ev for ev in mal if "subject_id" in ev]
    by_records = sum(ev.get("records", 1) for ev in reads if ev.get("action") in ("export", "search"))
    singles = {ev["subject_id"] for ev in reads if ev.get("action") not in ("export", "search")}
    assert atk["records_exposed"] == by_records + len(singles)
    assert len(atk["exposures"]) > 0 and atk["exposures"] == sorted(atk["exposures"])


def test_addresses_are_where_the_scenarios_say():
    geoip2fast = pytest.importorskip("geoip2fast")
    g = geoip2fast.GeoIP2Fast(geoip2fast_data_file="geoip2fast-asn.dat.gz")

    def cc(ip):
        return g.lookup(ip).country_code

    for cidrs in [*redteam_b.MOBILE.values(), [redteam_b.BROADBAND[i] for i in range(len(redteam_b.BROADBAND))]]:
        for c in cidrs:
            assert cc(c.split("/")[0].rsplit(".", 1)[0] + ".7") == "JP", c
    for country, cidrs in redteam_b.ABROAD_LOCAL.items():
        for c in cidrs:
            assert cc(c.split("/")[0].rsplit(".", 1)[0] + ".7") == country, c
    for country, ips in redteam_b.ATTACK_VPS.items():
        assert all(cc(ip) == country for ip in ips)
    assert all(cc(ip) == "SG" for ip in redteam_b.AWS_SINGAPORE)
    assert all(cc(ip) == "JP" for ip in redteam_b.PARTNER_MVNO_IPS + redteam_b.PARTNER_INS_IPS)
    assert all(cc(ip) == "JP" for ip in redteam_b.OFFICE_TOKYO + redteam_b.OFFICE_OSAKA)
    # the forged tokens and the stuffing come from Japanese residential exits
    for name in ("forged_resi_slow", "stuffing_low_slow"):
        srcs = _small(name, 1).truth["attack"]["sources"]
        assert srcs and all(cc(ip) == "JP" for ip in srcs)
    assert all(cc(ip) != "JP" for ip in _small("session_hijack_abroad", 1).truth["attack"]["sources"])
