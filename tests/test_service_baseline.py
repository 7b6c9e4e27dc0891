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
    """The detector on Seoul's local time (the hours these tests are written in; with "auto"
    and no customer logins the first hours' hour of day is a guess and is not learnt)."""
    return Engine(EngineConfig(detectors=("service_baseline",), timezone="Asia/Seoul",
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
    # The same requests from its own host at its usual hours are no critical: at most the
    # volume warning of the hour rule (150 customers in an hour, 3.75 times its usual 40).
    same = [dict(e, ts=e["ts"] + 10 * H, src_ip="10.20.5.7", event_id=e["event_id"] + "b")
            for e in night]
    got = pages(run(engine(), day + same))
    assert [a["severity"] for a in got] == ["warning"]
    assert "customers since 11:00" in got[0]["summary"]
    # and at its usual pace nothing at all
    assert pages(run(engine(), day + same[::4])) == []


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


def attack_from(host: str, per_hour: int, seed: int, hours: float = 6.0,
                start: float = T0 + 3 * DAY + 10 * H) -> list[dict[str, Any]]:
    """Malware on ``host`` reusing svc-prov's key in its busy hours, on its usual resource,
    reading ``per_hour`` customers an hour on top of the service's own."""
    rng = random.Random(seed)
    out = [svc(start + rng.uniform(0, hours * H), "svc-prov", f"x-{j}", host, "subscriber")
           for j in range(int(per_hour * hours))]
    return sorted(out, key=lambda e: e["ts"])


def test_a_new_host_adding_tens_of_percent_in_busy_hours_pages_critical() -> None:
    # Malware on a neighbour of the service's hosts (same /24), at its usual hours and
    # resources, reading 40% more customers than the service reads in those hours: the
    # service's own hourly baseline says the volume is added, and the new host adds it.
    attack = attack_from("10.40.12.37", 48, seed=11)
    alerts = run(engine(), fleet(4, 11, HOSTS) + attack)
    crit = [a for a in alerts if a["severity"] == "critical"]
    assert crit and crit[0]["entity"] == {"kind": "actor", "id": "svc-prov"}
    exposed = sum(1 for e in attack if e["ts"] <= first_ts(crit[0]))
    assert first_ts(crit[0]) <= attack[0]["ts"] + H and exposed < 60, exposed
    feats = {x["feature"]: x["observed"] for x in crit[0]["evidence"]}
    assert feats["new_host_in_stable_set"] is True and feats["new_network"] is False
    tot, new = feats["window_customers"]
    assert new > 0 and tot > 1.3 * (tot - new)  # the new host's reads on top of the usual
    assert "against" in crit[0]["summary"] and "from the new place" in crit[0]["summary"]


def test_a_new_host_with_a_large_additive_share_warns_before_its_first_hour() -> None:
    # The same at +60%: over a third of the service's reads
    # at once (over a host's fair share of four), on top of the usual: a warning in
    # minutes, not after an hour.
    attack = attack_from("10.40.12.37", 72, seed=12)
    alerts = pages(run(engine(), fleet(4, 12, HOSTS) + attack))
    assert alerts and alerts[0]["severity"] == "warning"
    assert first_ts(alerts[0]) < attack[0]["ts"] + H


def test_a_new_host_at_low_volume_warns_once_it_stays_an_hour() -> None:
    # A few customers an hour (5%): the volume says nothing, but the host stays, and the
    # service's own hosts did not cede it any share: a warning after its first hour.
    attack = attack_from("10.40.12.37", 6, seed=13)
    alerts = pages(run(engine(), fleet(4, 13, HOSTS) + attack))
    assert [a["severity"] for a in alerts][:1] == ["warning"]
    assert first_ts(alerts[0]) >= attack[0]["ts"] + H
    assert "a new host (used for 6" in alerts[0]["summary"]
    assert all(a["severity"] == "warning" for a in alerts)


def test_a_deployment_that_adds_a_host_taking_a_share_stays_quiet() -> None:
    # Autoscaling or a deployment: from 10:00 on day 4 a fourth host takes its share of the
    # same requests (the total stays the usual): the others cede it, so it is learnt.
    rng = random.Random(17)
    events = fleet(3, 17, HOSTS)
    for d in (3, 4):
        for h in range(8, 20):
            hosts = HOSTS + ("10.40.12.14",) if d > 3 or h >= 10 else HOSTS
            events += [svc(T0 + d * DAY + h * H + rng.uniform(0, H), "svc-prov",
                           f"c-{rng.randrange(10**6)}", rng.choice(hosts), "subscriber")
                       for _ in range(120)]
    alerts = run(engine(), events)
    assert pages(alerts) == []


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


AWS_JP = ("13.112.40.5", "13.112.40.6", "52.68.3.10")  # AMAZON-02, JP (bundled GeoIP)
AWS_SG = ("13.229.10.2", "13.229.10.3", "13.229.11.40")  # AMAZON-02, SG: the same AS


def partner(days: float, seed: int, places: tuple[str, ...] = AWS_JP, start: float = 0.0,
            keys: tuple[str, ...] = ("pk-1", "pk-2"), name: str = "ptn-mvno") -> list:
    """A partner (an MVNO) calling from its cloud region on its subscribers' day curve,
    ~20 an hour at night to ~80 in the evening, with two key ids."""
    rng = random.Random(seed)
    out = []
    for hh in range(int(start * 24), int(days * 24)):
        h = hh % 24
        rate = 20 + 60 * max(0.0, math.sin(math.pi * (h - 6) / 17)) if 6 <= h <= 23 else 20
        for _ in range(int(rate)):
            e = svc(T0 + hh * H + rng.uniform(0, H), name, f"c-{rng.randrange(10**6)}",
                    rng.choice(places), "subscriber")
            e["key_id"] = rng.choice(keys)
            out.append(e)
    return out


def leak(per_hour: int, seed: int, key: str = "pk-2", hours: float = 24.0,
         start: float = T0 + 3 * DAY + 9 * H) -> list[dict[str, Any]]:
    """The partner's leaked key called from the same cloud in another country, at a modest
    volume on top of the partner's own, for any customer, on the usual resource."""
    rng = random.Random(seed)
    out = []
    for j in range(int(per_hour * hours)):
        e = svc(start + rng.uniform(0, hours * H), "ptn-mvno", f"v-{j}", rng.choice(AWS_SG),
                "subscriber")
        e["key_id"] = key
        out.append(e)
    return sorted(out, key=lambda e: e["ts"])


def test_a_partner_key_from_a_new_country_warns_then_pages_critical_when_it_adds() -> None:
    # Same AS (AMAZON-02), another country, ~30% more customers than the partner reads,
    # with its usual key and resource: a warning at the first request (a country it never
    # used beside the one it used for days), critical once the reads are seen to add to the
    # usual place's rather than replace them.
    attack = leak(15, seed=21)
    alerts = pages(run(engine(), partner(4, 21) + attack))
    assert alerts[0]["severity"] == "warning"
    assert alerts[0]["event_ids"][-1] == attack[0]["event_id"]
    feats = {x["feature"]: x["observed"] for x in alerts[0]["evidence"]}
    assert feats["new_country"] == "SG"
    crit = [a for a in alerts if a["severity"] == "critical"]
    assert crit, alerts
    exposed = sum(1 for e in attack if e["ts"] <= first_ts(crit[0]))
    assert exposed < 60, exposed


def test_a_rarely_used_key_from_a_new_country_pages_critical_at_once() -> None:
    # A key id the partner (almost) never uses, from a country it never used: critical at
    # the first request (a CI key leaked from a repository).
    attack = leak(15, seed=22, key="pk-ci")
    alerts = pages(run(engine(), partner(4, 22) + attack))
    assert alerts[0]["severity"] == "critical"
    assert alerts[0]["event_ids"][-1] == attack[0]["event_id"]
    feats = {x["feature"]: x["observed"] for x in alerts[0]["evidence"]}
    assert feats["key_share"] is not None and feats["key_share"] < 0.05


def test_a_region_failover_warns_at_most_and_is_learnt() -> None:
    # The partner's region fails over: from 09:00 on day 4 every request comes from SG and
    # none from JP. A warning at most; once the usual place is seen to have gone quiet the
    # country is learnt (an info says so), and nothing pages after.
    events = partner(3.375, 23) + partner(5, 24, AWS_SG, start=3.375)
    eng = engine()
    alerts = run(eng, events)
    assert [a["severity"] for a in pages(alerts)] in ([], ["warning"])
    state = eng.detectors["service_baseline"]._svcs["ptn-mvno"]  # type: ignore[attr-defined]
    assert _has(state.known, crc32(b"SG") | 3 << 32)  # learnt: one of its places now
    assert state.pcc is None


def test_a_partner_that_always_used_several_countries_stays_quiet_on_one_more() -> None:
    # A partner on three regions from the start; a fourth one taking a share of the same
    # volume is one more of its places, not an attack.
    several = AWS_JP[:1] + AWS_SG[:1] + ("3.101.4.4",)
    events = partner(3.375, 25, several) + partner(5, 26, several[1:] + ("18.184.1.1",),
                                                    start=3.375)
    assert pages(run(engine(), events)) == []


def test_a_young_partner_in_a_second_country_stays_quiet() -> None:
    # A partner seen for a day only has no established set of places yet.
    events = partner(1, 27) + partner(3, 28, AWS_JP + AWS_SG, start=1)
    assert pages(run(engine(), events)) == []


def test_windows_round_trip_through_the_checkpoint_format() -> None:
    # A partner's new-country window and key counts survive a checkpoint (the codec, no
    # pickle), and the restored detector goes on to the same verdicts.
    from streams.snapshot import decode, encode

    events = sorted(partner(4, 29) + leak(15, seed=29), key=lambda e: e["ts"])
    cut = next(i for i, e in enumerate(events) if e["ts"] > T0 + 3 * DAY + 9.2 * H)
    a, b = engine(), engine()
    for e in events[:cut]:
        a.process_obj(e)
        b.process_obj(e)
    det = b.detectors["service_baseline"]
    restored = decode(encode(det))
    assert restored._svcs["ptn-mvno"].pcc is not None  # type: ignore[attr-defined]
    b.detectors["service_baseline"] = restored
    for k, hooks in b._access_route.items():  # route the engine's hooks to the restored one
        b._access_route[k] = [getattr(restored, h.__name__) if h.__self__ is det else h
                              for h in hooks]
    sev_a = [x["severity"] for e in events[cut:] for x in a.process_obj(e)[0]]
    sev_b = [x["severity"] for e in events[cut:] for x in b.process_obj(e)[0]]
    sev_a += [x["severity"] for x in a.flush()]
    sev_b += [x["severity"] for x in b.flush()]
    assert sev_a == sev_b and "critical" in sev_a


def test_a_checkpoint_from_before_the_windows_is_upgraded() -> None:
    # A service restored from a checkpoint without the hourly customers, countries and keys
    # (its learnt days in their own bytearray) goes on, learning those from then on.
    eng = engine()
    run(eng, fleet(2, 30, HOSTS))
    det = eng.detectors["service_baseline"]
    s = det._svcs["svc-prov"]  # type: ignore[attr-defined]
    seen = bytes(s.peak[200:248])
    s.seen = bytearray(seen)
    s.peak = s.peak[:200]
    for a in ("h_cnt", "lkey", "lkn", "pcc"):
        delattr(s, a)
    s.pend = (123, T0)
    det._v2 = False  # type: ignore[attr-defined]
    assert pages(run(eng, fleet(4, 30, HOSTS)[2 * 12 * 120:])) == []
    assert s.seen is None and len(s.peak) == 348
    assert sum(s.peak[200:248]) > sum(seen)  # the learnt days moved over, and go on


def test_a_multi_country_partner_warns_only_with_corroboration() -> None:
    # The partner on three regions from the start: a fourth country with a key it never
    # used is corroborated, but one more country is ordinary for it: a warning, not critical.
    several = AWS_JP[:1] + AWS_SG[:1] + ("3.101.4.4",)
    attack = []
    for j in range(60):
        e = svc(T0 + 3 * DAY + 9 * H + 60 * j, "ptn-mvno", f"v-{j}", "18.184.1.1",
                "subscriber")
        e["key_id"] = "pk-ci"
        attack.append(e)
    alerts = pages(run(engine(), partner(4, 31, several) + attack))
    assert [a["severity"] for a in alerts] == ["warning"]
    feats = {x["feature"]: x["observed"] for x in alerts[0]["evidence"]}
    assert feats["new_country"] == "DE" and feats["key_share"] < 0.05


def test_a_new_network_at_a_night_hour_not_seen_yet_warns_and_pages_at_volume() -> None:
    """The first days of a watch (or hours the deployment's local time moved) leave night hours
    with no earlier day. A network the service never used, at such an hour, is no daytime
    migration: a warning at once, critical once its reads pass the service's busiest usual
    bucket of any hour (the highest reference it has). Before, it was learnt as a migration
    (info) and its reads had no hour to be judged against."""
    base = [e for e in api(2, seed=3)  # the watch begins at 06:00 on day 0: 01:00 unseen
            if T0 + 6 * H <= e["ts"] < T0 + DAY + 1 * H]
    attack = [svc(T0 + DAY + 1 * H + 5.0 * j, "svc-api", f"x-{j}", "10.77.14.23")
              for j in range(240)]  # 01:00 on day 1: 12 customers a minute
    alerts = pages(run(engine(), base + attack))
    assert [a["severity"] for a in alerts][:1] == ["warning"]
    assert any(a["severity"] == "critical" for a in alerts)
    assert {a["entity"]["id"] for a in alerts} == {"svc-api"}


def test_its_own_hosts_at_a_night_hour_not_seen_yet_stay_quiet() -> None:
    """The same volume from the service's own hosts at that hour (a nightly batch's first
    night) raises nothing: the unseen hour's fallback judges new addresses only."""
    base = [e for e in api(2, seed=3) if T0 + 6 * H <= e["ts"] < T0 + DAY + 1 * H]
    batch = [svc(T0 + DAY + 1 * H + 5.0 * j, "svc-api", f"x-{j}", "10.10.1.11")
             for j in range(240)]
    assert pages(run(engine(), base + batch)) == []


def small(days: int, seed: int, per_hour: float = 24.0, jitter: float = 0.3) -> list:
    """A small internal service on one host, 08:00-20:00 local, ``per_hour`` customers an
    hour (each day's rate drawn within +-``jitter``): a few customers per 10 minutes."""
    rng = random.Random(seed)
    out = []
    for d in range(days):
        day_rate = per_hour * rng.uniform(1 - jitter, 1 + jitter)
        for h in range(8, 20):
            for _ in range(int(day_rate)):
                out.append(svc(T0 + d * DAY + h * H + rng.uniform(0, H), "svc-crm",
                               f"c-{rng.randrange(10**6)}", "10.20.3.4", "phone"))
    return out


def test_a_small_service_read_at_five_times_its_pace_warns_within_the_hour() -> None:
    """At ~4 customers per 10 minutes, no bucket of a 5x hour passes the bucket's margin
    (6 sigma + 8: about 24); the hour's customers pass 3x its usual whole hour within it."""
    base = small(5, seed=3)
    assert pages(run(engine(), list(base))) == []  # five days of itself, +-30%: quiet
    rng = random.Random(11)
    start = T0 + 5 * DAY + 10 * H
    attack = [svc(start + rng.uniform(0, H), "svc-crm", f"x-{j}", "10.20.3.4", "phone")
              for j in range(96)]  # four times its pace on top of its own (5x in all)
    own = [svc(start + rng.uniform(0, H), "svc-crm", f"c-{rng.randrange(10**6)}",
               "10.20.3.4", "phone") for _ in range(24)]
    alerts = pages(run(engine(), base + attack + own))
    assert alerts, "a service read at five times its pace went unpaged"
    first = alerts[0]
    assert first_ts(first) < start + H
    assert "customers since 10:00" in first["summary"]
    hour = next(x for x in first["evidence"] if x["feature"] == "customers_this_hour")
    assert hour["observed"] >= int(hour["baseline"].split()[2].rstrip(","))
    assert hour["observed"] >= 3 * 0.7 * 24  # at least 3x its usual hour (24 +-30%)
    ten = next(x for x in first["evidence"] if x["feature"] == "distinct_customers_10min")
    assert ten["observed"] < 24  # no bucket passed the bucket's own threshold


def test_a_small_service_with_days_half_again_as_busy_stays_quiet() -> None:
    """Days up to 1.5x the usual (a campaign, a Monday) are under 3x the usual hour."""
    base = small(5, seed=4)
    rng = random.Random(12)
    busy = [svc(T0 + 5 * DAY + h * H + rng.uniform(0, H), "svc-crm",
                f"c-{rng.randrange(10**6)}", "10.20.3.4", "phone")
            for h in range(8, 20) for _ in range(36)]
    assert pages(run(engine(), base + busy)) == []


def test_a_checkpoint_from_before_the_hour_rule_is_upgraded() -> None:
    eng = engine()
    run(eng, small(3, seed=5))
    det = eng.detectors["service_baseline"]
    s = det._svcs["svc-crm"]  # type: ignore[attr-defined]
    delattr(s, "hw")
    det._v3 = False  # type: ignore[attr-defined]
    assert pages(run(eng, small(5, seed=5)[3 * 12 * 20:])) == []
    assert s.hw < math.inf  # set again at the next hour


def test_an_attack_that_starts_late_in_an_hour_is_judged_against_the_days_before() -> None:
    """An attack from 10:35 leaves hour 10 under its threshold, and hour 10 is learnt; hour
    11's reference takes its neighbour hour 10 as it was before today (not raised by the
    attack's first 25 minutes), so hour 11 at five times its pace warns."""
    base = small(1, seed=8, jitter=0.05)
    rng = random.Random(13)
    start = T0 + DAY + 10 * H + 35 * 60
    attack = [svc(start + rng.uniform(0, 3 * H - 35 * 60), "svc-crm", f"x-{j}", "10.20.3.4",
                  "phone") for j in range(int(96 * (3 - 35 / 60)))]
    own = [svc(T0 + DAY + h * H + rng.uniform(0, H), "svc-crm", f"c-{rng.randrange(10**6)}",
               "10.20.3.4", "phone") for h in range(8, 20) for _ in range(24)]
    alerts = pages(run(engine(), base + attack + own))
    assert alerts, "the attack went unpaged"
    assert first_ts(alerts[0]) < T0 + DAY + 12 * H
    assert "customers since 1" in alerts[0]["summary"]


def test_hours_read_while_the_local_time_is_a_guess_are_not_learnt() -> None:
    """With timezone "auto", until the home country is decided (the first customer logins)
    the hour of day is UTC+9's guess; the service's hours then are not learnt, so its
    season starts in the deployment's own hours."""
    eng = Engine(EngineConfig(detectors=("service_baseline",)))  # "auto", no logins
    run(eng, small(1, seed=9))
    s = eng.detectors["service_baseline"]._svcs["svc-crm"]  # type: ignore[attr-defined]
    seen = list(s.peak[200:248])
    # the first learn_hours (6) of the watch are a guess: 08:00-13:00 not learnt, the rest is
    # (19:00, the last hour, is still open)
    assert seen[8:14] == [0] * 6 and seen[14:19] == [1] * 5
    fixed = engine()
    run(fixed, small(1, seed=9))
    f = fixed.detectors["service_baseline"]._svcs["svc-crm"]  # type: ignore[attr-defined]
    assert list(f.peak[208:219]) == [1] * 11
    # the watch's first hour, seen from its first event on, is learnt but for its total
    from struct import unpack_from
    rates = [unpack_from("<e", f.peak, 248 + 2 * h)[0] for h in range(8, 11)]
    assert math.isnan(rates[0]) and rates[1] > 10 and rates[2] > 10
    # its first whole hour the next day is learnt as it comes (not half of it from 0)
    run(fixed, [e for e in small(2, seed=9) if e["ts"] >= T0 + DAY])
    assert 0.7 * 24 <= unpack_from("<e", f.peak, 248 + 2 * 8)[0] <= 1.3 * 24
