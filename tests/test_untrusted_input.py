"""Inputs that cannot vouch for themselves: address forms, claimed places, reused ids, times.

Each test replays an attack twice, once plain and once with what a hostile producer would
add, and checks the engine sees through it.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

import simulation as sim
from detectors.engine import Engine, EngineConfig

T0 = 1750723200.0  # 2025-06-24T00:00:00Z
ATTACKER = "3.101.4.4"  # AWS, US (AMAZON-02)
FORMS = {
    "ipv4-mapped": "::ffff:3.101.4.4",
    "ipv4-mapped, hex": "::ffff:365:404",
    "ipv4-compatible": "::3.101.4.4",
    "nat64": "64:ff9b::3.101.4.4",
    "nat64, local use": "64:ff9b:1::365:404",
    "6to4": "2002:365:404::1",
    "teredo": "2001:0:4136:e378:8000:63bf:fc9a:fbfb",  # client 3.101.4.4, obfuscated
}


def overseas_run(attacker_ip: str, claim: dict[str, Any] | None = None,
                 **cfg: Any) -> list[dict[str, Any]]:
    """Twenty customers at home (Korea Telecom), then six of "them" read from ``attacker_ip``."""
    eng = Engine(EngineConfig(detectors=("overseas_server",), **cfg))
    rng = random.Random(1)
    out: list[dict[str, Any]] = []
    n = 0
    for i in range(20):
        ip = f"121.134.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        n += 1
        out += eng.process_obj({"event_id": f"l{n}", "ts": T0 + i, "account_id": f"c-{i}",
                                "outcome": "success", "src_ip": ip, "session_id": f"s{n}"})[0]
        for k in range(3):
            n += 1
            out += eng.process_obj({"event_id": f"a{n}", "ts": T0 + i + 0.1 * (k + 1),
                                    "actor_id": f"c-{i}", "subject_id": f"c-{i}",
                                    "resource": "address", "src_ip": ip})[0]
    for i in range(6):
        n += 1
        e = {"event_id": f"x{n}", "ts": T0 + 600 + i, "actor_id": f"c-{i}", "subject_id": f"c-{i}",
             "resource": "address", "src_ip": attacker_ip, "key_id": "kid-legacy", **(claim or {})}
        got, rej = eng.process_obj(e)
        assert rej is None, rej
        out += got
    return out + eng.flush()


def test_plain_attacker_raises_overseas_server_pages() -> None:
    alerts = overseas_run(ATTACKER)
    assert ("critical", {"kind": "subnet", "id": "3.101.4.0/24"}) in [
        (a["severity"], a["entity"]) for a in alerts]


@pytest.mark.parametrize("form", sorted(FORMS))
def test_ipv6_forms_carrying_the_attackers_ipv4_address_are_classed_as_it(form: str) -> None:
    """Fails on ef303a3: these forms were classed private (no alert at all)."""
    assert overseas_run(FORMS[form]) == overseas_run(ATTACKER)


def test_a_claimed_home_country_and_as_do_not_hide_a_hosting_server_abroad() -> None:
    """Fails on ef303a3: the event's own country / asn overrode GeoIP."""
    plain = overseas_run(ATTACKER)
    claim = {"country": "KR", "asn": 4766}  # "Korea Telecom, at home"
    assert overseas_run(ATTACKER, claim) == plain
    # where the operator trusts the producer, its claim is what the engine believes
    assert overseas_run(ATTACKER, claim, trust_producer_geo=True) == []


def test_untrusted_claims_stay_in_the_raw_event() -> None:
    from detectors.events import Event, decode

    line = orjson.dumps({"event_id": "e", "ts": T0, "actor_id": "c", "subject_id": "c",
                         "resource": "address", "src_ip": FORMS["nat64"], "country": "KR",
                         "asn": 4766})
    ev = decode(line)
    assert isinstance(ev, Event)
    assert (ev.src_ip, ev.country, ev.asn) == (ATTACKER, None, None)
    assert {k: ev.fields()[k] for k in ("src_ip", "country", "asn")} == {
        "src_ip": FORMS["nat64"], "country": "KR", "asn": 4766}


# ---- reused event ids ------------------------------------------------------------------------


def _attack() -> tuple[list[dict[str, Any]], set[str]]:
    res = sim.simulate(sim.SimConfig(seed=5, customers=300, employees=12, hours=6,
                                     attacks=("coupang",)))
    ids = {i for t in res.truth for i in t["event_ids"]}
    return res.events, ids


def _with_decoys(events: list[dict[str, Any]], attack_ids: set[str], reuse: bool
                 ) -> list[dict[str, Any]]:
    """Before each attack event, a harmless-looking failed login reusing its id (``reuse``)
    or with an id of its own (the same decoys, for what they cause by themselves)."""
    out = []
    for n, e in enumerate(events):
        if e["event_id"] in attack_ids:
            ts = sim.parse_ts(e["ts"]) / 1000 - 0.001
            out.append({"event_id": e["event_id"] if reuse else f"decoy-{n}", "ts": ts,
                        "account_id": f"c-decoy-{n % 7}", "outcome": "failure",
                        "src_ip": f"121.134.{n % 250}.{n % 200 + 1}"})
        out.append(e)
    return out


def _alerts(events: list[dict[str, Any]]) -> tuple[Engine, list[tuple[Any, ...]]]:
    eng = Engine()
    out: list[dict[str, Any]] = []
    for e in events:
        out += eng.process_obj(e)[0]
    out += eng.flush()
    return eng, [(a["alert_id"], a["detector"], a["severity"], a["entity"]["kind"],
                  a["entity"]["id"], a["summary"]) for a in out]


def test_decoys_reusing_an_attacks_event_ids_do_not_silence_it() -> None:
    """Fails on ef303a3: the attack's own events were dropped as duplicates of the decoys."""
    events, attack_ids = _attack()
    assert attack_ids
    _, clean = _alerts(events)
    eng, decoyed = _alerts(_with_decoys(events, attack_ids, reuse=True))
    _, own_ids = _alerts(_with_decoys(events, attack_ids, reuse=False))
    assert decoyed == own_ids  # reusing the ids changes nothing
    attack_alerts = {a[1:5] for a in clean}
    assert attack_alerts and attack_alerts <= {a[1:5] for a in decoyed}
    assert eng.stats["duplicate_conflict"] == len(attack_ids)
    assert eng.rejected["duplicate"] == 0


def test_identical_repeats_are_still_dropped_and_conflicts_counted_once_each() -> None:
    eng = Engine(EngineConfig(detectors=("overseas_server",)))
    a = {"event_id": "e1", "ts": T0, "actor_id": "c-1", "subject_id": "c-1",
         "resource": "address", "src_ip": "121.134.0.1"}
    b = dict(a, src_ip=ATTACKER)
    assert eng.process_obj(a)[1] is None
    # the same content, however spelled (key order, unknown fields, an IPv4 form), is a repeat
    respelled = dict(reversed(list(a.items())), note="resent", src_ip="::ffff:121.134.0.1")
    assert eng.process_obj(respelled)[1].reason == "duplicate"  # type: ignore[union-attr]
    assert eng.process_obj(b)[1] is None  # other content: processed
    assert eng.process_obj(b)[1].reason == "duplicate"  # type: ignore[union-attr]
    assert eng.process_obj(a)[1].reason == "duplicate"  # type: ignore[union-attr]
    assert eng.stats["duplicate_conflict"] == 1 and eng.rejected["duplicate"] == 3
    assert eng.stats["access"] == 2


# ---- event time against arrival ----------------------------------------------------------------


def test_an_event_dated_2099_is_rejected_against_its_arrival_and_leaves_state_alone() -> None:
    eng = Engine()
    now = T0 + 3600  # the wall clock when the records arrive
    login = {"event_id": "l", "ts": T0, "account_id": "c-1", "outcome": "success",
             "src_ip": "121.134.0.1", "session_id": "s"}
    assert eng.process_obj(login, arrival=now)[1] is None
    far = dict(login, event_id="f", ts="2099-06-24T00:00:00Z")
    _, rej = eng.process_line(orjson.dumps(far), arrival=now)
    assert rej is not None and (rej.reason, rej.field) == ("future_ts", "ts")
    assert eng.ctx.now == T0  # event time did not jump: nothing swept, no timers fired
    assert eng.rejected["future_ts"] == 1
    # a little ahead (clock skew between hosts) is fine; the skew is configurable, 0 = off
    assert eng.process_obj(dict(login, event_id="g", ts=now + 299), arrival=now)[1] is None
    off = Engine(EngineConfig(max_future_skew=None))
    assert off.process_line(orjson.dumps(far), arrival=now)[1] is None


def aw(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], input=stdin,
                          capture_output=True, timeout=120, cwd=Path(__file__).parent.parent)


def test_replay_rejects_future_events_unless_the_skew_is_raised(tmp_path: Path) -> None:
    import time

    soon = time.time() + 86400
    lines = [orjson.dumps({"event_id": f"k{i}", "ts": soon + i, "change": "key_issued",
                           "key_id": f"k{i}"}) for i in range(3)]
    f = tmp_path / "tomorrow.jsonl"
    f.write_bytes(b"\n".join(lines) + b"\n")
    rej = tmp_path / "rej.jsonl"
    r = aw("replay", str(f), "--rejects", str(rej))
    assert r.returncode == 0, r.stderr
    assert [orjson.loads(x)["reason"] for x in rej.read_bytes().splitlines()] == ["future_ts"] * 3
    assert "rejected: 3 (future_ts 3)" in r.stderr.decode()
    for flag in ("0", "100000"):
        r = aw("replay", str(f), "--max-future-skew", flag)
        assert r.returncode == 0 and "identity 3" in r.stderr.decode(), (flag, r.stderr)
    r = aw("replay", str(f), "--max-future-skew", "-1")
    assert r.returncode == 2 and len(r.stderr.decode().strip().splitlines()) == 1


def test_replay_summary_counts_duplicate_conflicts(tmp_path: Path) -> None:
    a = {"event_id": "e1", "ts": T0, "change": "key_issued", "key_id": "k1"}
    lines = [a, a, dict(a, key_id="k2")]
    f = tmp_path / "ids.jsonl"
    f.write_bytes(b"\n".join(orjson.dumps(x) for x in lines) + b"\n")
    r = aw("replay", str(f))
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "identity 2" in err and "duplicate_conflict 1" in err
    assert "rejected: 1 (duplicate 1)" in err
