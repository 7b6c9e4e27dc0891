"""service_baseline: seasonal volume per service, a network it never used at night or at volume."""

from __future__ import annotations

import math
import random
from typing import Any
from zlib import crc32

from detectors.engine import Engine, EngineConfig
from detectors.service_baseline import _has

T0 = 1772377200.0  # 2026-03-02 00:00 KST, a Monday
H = 3600.0
DAY = 86400.0


def engine(**params: Any) -> Engine:
    return Engine(EngineConfig(detectors=("service_baseline",),
                               params={"service_baseline": params}))


_n = 0


def svc(ts: float, name: str, subj: str, ip: str, res: str = "order_history") -> dict[str, Any]:
    global _n
    _n += 1
    return {"event_id": f"s{_n}", "ts": ts, "actor_id": name, "actor_type": "service",
            "subject_id": subj, "resource": res, "src_ip": ip, "key_id": f"k-{name}"}


def run(eng: Engine, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for e in sorted(events, key=lambda x: x["ts"]):
        alerts, rej = eng.process_obj(e)
        assert rej is None, rej
        out += alerts
    return out + eng.flush()


def api(days: int, seed: int, hosts: tuple[str, ...] = ("10.10.1.11", "10.10.1.12")) -> list:
    """An API following the customers' day: ~10/h at night, up to ~250/h in the evening."""
    rng = random.Random(seed)
    out = []
    for d in range(days):
        for h in range(24):
            rate = 40 + 210 * max(0.0, math.sin(math.pi * (h - 6) / 17)) if 6 <= h <= 23 else 10
            for _ in range(int(rate)):
                out.append(svc(T0 + d * DAY + h * H + rng.uniform(0, H), "svc-api",
                               f"c-{rng.randrange(10**6)}", rng.choice(hosts)))
    return out


def pages(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in alerts if a["severity"] in ("warning", "critical")]


def test_five_times_the_rate_from_its_own_host_warns_before_300_customers() -> None:
    base = api(2, seed=1)
    assert pages(run(engine(), list(base))) == []  # two days of itself: quiet
    rng = random.Random(7)
    attack = [svc(T0 + 2 * DAY + 10 * H + 3.6 * j, "svc-api", f"x-{j}", "10.10.1.12")
              for j in range(1000)]  # four times its ~250/h on top, 10:00-11:00 on day 3
    extra = [svc(T0 + 2 * DAY + 10 * H + rng.uniform(0, H), "svc-api",
                 f"c-{rng.randrange(10**6)}", "10.10.1.11") for _ in range(200)]
    alerts = run(engine(), base + attack + extra)
    first = pages(alerts)[0]
    assert first["entity"] == {"kind": "actor", "id": "svc-api"}
    exposed = sum(1 for e in attack if e["ts"] <= first_ts(first))
    assert exposed < 300, exposed
    assert "distinct customers in 10 minutes" in first["summary"]


def first_ts(alert: dict[str, Any]) -> float:
    from datetime import datetime
    return datetime.fromisoformat(alert["ts"].replace("Z", "+00:00")).timestamp()


def test_night_from_a_network_it_never_used_pages_critical_at_the_first_request() -> None:
    rng = random.Random(2)
    day = [svc(T0 + h * H + rng.uniform(0, H), "svc-bill", f"c-{rng.randrange(10**6)}",
               rng.choice(("10.20.5.7", "10.20.5.8")), "payment")
           for h in range(9, 18) for _ in range(40)]
    night = [svc(T0 + DAY + H + 24 * j, "svc-bill", f"x-{j}", "10.77.3.25", "phone")
             for j in range(150)]
    eng = engine()
    alerts = run(eng, day + night)
    assert [a["severity"] for a in pages(alerts)] == ["critical"]
    svc_state = eng.detectors["service_baseline"]._svcs["svc-bill"]  # type: ignore[attr-defined]
    assert not _has(svc_state.known, crc32(b"10.77.3.25"))  # paged: never learnt as its own
    crit = pages(alerts)[0]
    assert crit["event_ids"][0] == night[0]["event_id"]  # at the first request
    feats = {x["feature"]: x["observed"] for x in crit["evidence"]}
    assert feats["new_network"] is True and feats["new_resource"] is True
    # The same requests from its own host at its usual hours raise nothing.
    same = [dict(e, ts=e["ts"] + 10 * H, src_ip="10.20.5.7", event_id=e["event_id"] + "b")
            for e in night]
    assert pages(run(engine(), day + same)) == []


def test_a_new_network_in_daytime_at_usual_volume_is_info_only() -> None:
    rng = random.Random(3)
    day = [svc(T0 + d * DAY + h * H + rng.uniform(0, H), "svc-bill",
               f"c-{rng.randrange(10**6)}", "10.20.5.7", "payment")
           for d in range(2) for h in range(9, 18) for _ in range(40)]
    moved = [svc(T0 + 2 * DAY + 11 * H + 90 * j, "svc-bill", f"c-{j}", "10.30.1.2", "payment")
             for j in range(40)]
    alerts = run(engine(), day + moved)
    assert pages(alerts) == []
    assert [a["severity"] for a in alerts] == ["info"]


def test_nightly_batch_that_runs_every_night_stays_quiet() -> None:
    rng = random.Random(4)
    events = []
    for d in range(5):  # 02:00 KST give or take four minutes, 1,500 customers in five minutes
        start = T0 + d * DAY + 2 * H + rng.uniform(-240, 240)
        events += [svc(start + 0.2 * j, "svc-notify", f"c-{j}", "10.10.9.3", "email")
                   for j in range(1500)]
    events += api(5, seed=5)
    assert pages(run(engine(), events)) == []


def test_state_per_service_is_under_a_kibibyte() -> None:
    import tracemalloc

    eng = engine()
    rng = random.Random(6)
    events = [svc(T0 + d * DAY + h * H + rng.uniform(0, H), f"svc-{k}", f"c-{rng.randrange(999)}",
                  f"10.{k % 200}.1.{rng.randrange(2, 6)}")
              for k in range(200) for d in range(2) for h in range(0, 24, 3)]
    events.sort(key=lambda e: e["ts"])
    tracemalloc.start()
    for e in events:
        eng.process_obj(e)
    det = eng.detectors["service_baseline"]
    for s in det._svcs.values():  # the bucket's ids are transient: measure the lasting state
        s.b_subj = set()
    snap = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, "*detectors/service_baseline.py")])
    tracemalloc.stop()
    used = sum(st.size for st in snap.statistics("filename"))
    assert det.tracked() == {"actor": 200}
    assert used / 200 < 1024


def fleet(days: int, seed: int, hosts: tuple[str, ...], name: str = "svc-prov") -> list:
    """A provisioning service on a small fixed set of internal hosts, 08:00-20:00 on every
    day, ~120 customers an hour spread over its hosts."""
    rng = random.Random(seed)
    return [svc(T0 + d * DAY + h * H + rng.uniform(0, H), name, f"c-{rng.randrange(10**6)}",
                rng.choice(hosts), "subscriber")
            for d in range(days) for h in range(8, 20) for _ in range(120)]


HOSTS = ("10.40.12.11", "10.40.12.12", "10.40.12.13")


def test_a_new_internal_host_beside_a_stable_set_warns_once_it_stays_an_hour() -> None:
    # Malware on a neighbour of the service's hosts (same /24), at its usual hours, resources
    # and about its usual volume: only the host is new, and the attacker did not choose it.
    rng = random.Random(11)
    base = fleet(4, 11, HOSTS)  # its fourth day goes on as usual beside the attack
    attack = [svc(T0 + 3 * DAY + 10 * H + rng.uniform(0, 6 * H), "svc-prov", f"x-{j}",
                  "10.40.12.37", "subscriber") for j in range(400)]
    attack.sort(key=lambda e: e["ts"])
    alerts = run(engine(), base + attack)
    first = pages(alerts)[0]
    assert first["severity"] == "warning"
    assert first["entity"] == {"kind": "actor", "id": "svc-prov"}
    exposed = sum(1 for e in attack if e["ts"] <= first_ts(first))
    assert first_ts(first) >= attack[0]["ts"] + H and exposed < 100, exposed
    feats = {x["feature"]: x["observed"] for x in first["evidence"]}
    assert feats["new_host_in_stable_set"] is True and feats["new_network"] is False
    assert "a new host (used for 6" in first["summary"]


def test_a_new_host_used_for_minutes_stays_quiet() -> None:
    # A pod of a one-off job or an operator's shell: half an hour, then gone.
    pod = [svc(T0 + 3 * DAY + 10 * H + 60 * j, "svc-prov", f"c-{j}", "10.40.12.90",
               "subscriber") for j in range(30)]
    assert pages(run(engine(), fleet(4, 16, HOSTS) + pod)) == []


def test_the_same_service_on_its_own_hosts_stays_quiet() -> None:
    assert pages(run(engine(), fleet(5, 13, HOSTS))) == []


def test_a_pool_that_adds_hosts_every_few_hours_stays_quiet() -> None:
    # An autoscaled pool (pods come and go): its set of addresses is never stable for a day,
    # so a new one is ordinary for it.
    rng = random.Random(14)
    events = []
    for d in range(4):
        for h in range(8, 20):
            pod = f"10.50.3.{(d * 12 + h) // 3 % 250 + 2}"  # a new pod every three hours
            events += [svc(T0 + d * DAY + h * H + rng.uniform(0, H), "svc-pool",
                           f"c-{rng.randrange(10**6)}", pod) for _ in range(120)]
    assert pages(run(engine(), events)) == []


def test_a_new_public_address_in_a_known_network_is_not_a_new_host() -> None:
    # A partner calling from a cloud whose addresses change: only internal hosts are a set.
    rng = random.Random(15)
    cloud = ("52.68.3.10", "52.68.3.11")
    base = fleet(3, 15, cloud, "ptn-mvno")
    moved = [svc(T0 + 3 * DAY + 11 * H + 30 * j, "ptn-mvno", f"c-{rng.randrange(10**6)}",
                 "52.68.9.200", "subscriber") for j in range(100)]
    assert pages(run(engine(), base + moved)) == []
