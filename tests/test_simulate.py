"""Tests of the simulator (``simulation/``): determinism, the event contract, labels vs truth, attacks,
the normal population's features and the ``accesswatch simulate`` command."""

from __future__ import annotations

import argparse
import ipaddress
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime

import orjson
import pytest

import simulation as sim
from simulation import ATTACKS, NETWORKS, SimConfig, iter_events, simulate
from simulation.populations import CUSTOMER_KEY
from streams import simulate_cmd

SMALL = SimConfig(seed=11, hours=24, customers=150, employees=10, services=3)
ALL_ATTACKS = SimConfig(
    seed=5, hours=24, customers=160, employees=12, services=3, attacks=tuple(ATTACKS)
)


@pytest.fixture(scope="module")
def normal() -> sim.SimResult:
    return simulate(SMALL)


@pytest.fixture(scope="module")
def attacked() -> sim.SimResult:
    return simulate(ALL_ATTACKS)


def ts_of(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def truth_of(res: sim.SimResult, name: str) -> dict:
    return next(t for t in res.truth if t["attack"] == name)


_BY_ID: dict[int, dict[str, dict]] = {}


def by_id(res: sim.SimResult) -> dict[str, dict]:
    if id(res) not in _BY_ID:
        _BY_ID[id(res)] = {ev["event_id"]: ev for ev in res.events}
    return _BY_ID[id(res)]


def prefix_of(ip: str) -> sim.Prefix | None:
    addr = ipaddress.ip_address(ip)
    for group in NETWORKS.values():
        for p in group:
            if addr in ipaddress.ip_network(p.cidr):
                return p
    return None


# --- the event contract (checked here, independently of detectors/events.py) ---------------

PRINCIPAL_TYPES = {"customer", "employee", "service"}
CHANGES = {
    "principal_terminated",
    "principal_suspended",
    "principal_reinstated",
    "key_issued",
    "key_revoked",
    "session_revoked",
}


def _check_ts(value: object) -> None:
    assert isinstance(value, str) and value.endswith("Z") and len(value) == 24, value
    assert datetime.fromisoformat(value).tzinfo is not None


def _check_str(ev: dict, name: str, required: bool = True) -> None:
    if name not in ev:
        assert not required, f"{name} missing in {ev}"
        return
    assert isinstance(ev[name], str) and ev[name], (name, ev)


def check_contract(ev: dict) -> str:
    _check_str(ev, "event_id")
    _check_ts(ev["ts"])
    assert ev["label"] == "normal" or ev["label"] in ATTACKS
    if "outcome" in ev:
        kind = "login"
        _check_str(ev, "account_id")
        assert ev.get("account_type", "customer") in PRINCIPAL_TYPES
        assert ev["outcome"] in {"success", "failure"}
        ipaddress.ip_address(ev["src_ip"])
        assert ev.get("method", "password") in {"password", "mfa", "sso", "api_key", "refresh"}
        if ev["outcome"] == "success":
            _check_str(ev, "session_id")
        else:
            assert "session_id" not in ev
        for name in ("user_agent", "device_id", "country"):
            _check_str(ev, name, required=False)
        if "asn" in ev:
            assert isinstance(ev["asn"], int) and len(ev["country"]) == 2
    elif "subject_id" in ev:
        kind = "access"
        _check_str(ev, "actor_id")
        _check_str(ev, "subject_id")
        _check_str(ev, "resource")
        assert ev.get("actor_type", "customer") in PRINCIPAL_TYPES
        assert ev.get("action", "read") in {"read", "search", "export", "update", "delete"}
        records = ev.get("records", 1)
        assert isinstance(records, int) and not isinstance(records, bool) and records >= 1
        ipaddress.ip_address(ev["src_ip"])
        for name in ("session_id", "key_id", "user_agent"):
            _check_str(ev, name, required=False)
        if "token_issued_at" in ev:
            _check_ts(ev["token_issued_at"])
    else:
        kind = "identity"
        assert ev["change"] in CHANGES
        if ev["change"].startswith("principal_"):
            _check_str(ev, "principal_id")
        if ev["change"].startswith("key_"):
            _check_str(ev, "key_id")
            _check_str(ev, "owner_id", required=False)
        if ev["change"] == "session_revoked":
            _check_str(ev, "session_id")
    return kind


# --- determinism and shape -------------------------------------------------------------------


def test_same_seed_same_output_and_other_seed_differs() -> None:
    cfg = SimConfig(seed=3, hours=6, customers=80, employees=6, services=2, attacks=("coupang",))
    a, b = simulate(cfg), simulate(cfg)
    assert orjson.dumps(a.events) == orjson.dumps(b.events)
    assert a.truth == b.truth
    c = simulate(SimConfig(seed=4, hours=6, customers=80, employees=6, services=2,
                           attacks=("coupang",)))  # fmt: skip
    assert [e.get("src_ip") for e in c.events[:200]] != [e.get("src_ip") for e in a.events[:200]]
    assert c.events[0]["event_id"] == "e-4-0"


def test_iter_events_streams_the_same_events() -> None:
    cfg = SimConfig(seed=9, hours=5, customers=60, employees=5, services=1, attacks=("stuffing",))
    assert list(iter_events(cfg)) == simulate(cfg).events


@pytest.mark.parametrize("fixture", ["normal", "attacked"])
def test_every_event_follows_the_contract(fixture: str, request: pytest.FixtureRequest) -> None:
    res: sim.SimResult = request.getfixturevalue(fixture)
    kinds = Counter(check_contract(ev) for ev in res.events)
    assert kinds["login"] > 100 and kinds["access"] > 1000 and kinds["identity"] > 3
    ids = [ev["event_id"] for ev in res.events]
    assert len(set(ids)) == len(ids)
    times = [ts_of(ev["ts"]) for ev in res.events]
    assert times == sorted(times)
    assert [ev["ts"] for ev in res.events] == sorted(ev["ts"] for ev in res.events)


def test_labels_match_truth_event_ids(attacked: sim.SimResult) -> None:
    labelled: dict[str, set[str]] = defaultdict(set)
    for ev in attacked.events:
        if ev["label"] != "normal":
            labelled[ev["label"]].add(ev["event_id"])
    assert set(labelled) == set(ATTACKS)
    events = by_id(attacked)
    for t in attacked.truth:
        assert set(t["event_ids"]) == labelled[t["attack"]], t["attack"]
        assert len(t["event_ids"]) == len(set(t["event_ids"]))
        assert all(events[i]["label"] == "normal" for i in t["context_event_ids"])
        assert t["start_ts"] == events[t["event_ids"][0]]["ts"]
        assert t["end_ts"] == events[t["event_ids"][-1]]["ts"]
        assert t["description"] == ATTACKS[t["attack"]]
        assert set(t["entities"]) == {"actor", "src_ip", "key", "account", "session"}
        assert t["expected_detectors"] and t["victims"]


def test_normal_traffic_has_no_attack_labels(normal: sim.SimResult) -> None:
    assert normal.truth == []
    assert {ev["label"] for ev in normal.events} == {"normal"}


# --- the attacks -------------------------------------------------------------------------------


def issued_sessions(res: sim.SimResult) -> set[str]:
    return {ev["session_id"] for ev in res.events if ev.get("outcome") == "success"}


@pytest.mark.parametrize("name", ["coupang", "coupang_predating", "coupang_active_key"])
def test_coupang_family(attacked: sim.SimResult, name: str) -> None:
    t = truth_of(attacked, name)
    events = by_id(attacked)
    bad = [events[i] for i in t["event_ids"]]
    start = sim.parse_ts(ALL_ATTACKS.start) / 1000
    issued = issued_sessions(attacked)
    customers = {ev["account_id"] for ev in attacked.events if ev.get("account_type") == "customer"}
    assert 3 <= len(t["entities"]["src_ip"]) <= 5
    for ip in t["entities"]["src_ip"]:
        p = prefix_of(ip)
        assert p is not None and p in NETWORKS["hosting"] and p.country != "KR"
    for ev in bad:
        assert ev["actor_id"] == ev["subject_id"] and ev["actor_type"] == "customer"
        assert ev["resource"] in {"address", "order_history"}
        assert ev["session_id"] not in issued  # no login issued these tokens
        iat, at = ts_of(ev["token_issued_at"]), ts_of(ev["ts"])
        if name == "coupang_predating":
            assert iat < start
        else:
            assert 0 < at - iat <= 310  # a few minutes, plus the page's second read
    assert len(t["victims"]) > 0.5 * ALL_ATTACKS.customers
    assert set(t["victims"]) <= {f"c-{i:06d}" for i in range(ALL_ATTACKS.customers)}
    assert len(customers) > 0  # existing customer ids are what the forged tokens name
    keys = {ev["key_id"] for ev in bad}
    if name == "coupang_active_key":
        assert keys == {CUSTOMER_KEY} and t["entities"]["key"] == []
    else:
        (key,) = keys
        assert key.startswith("kid-legacy-") and t["entities"]["key"] == [key]
        ctx = [events[i] for i in t["context_event_ids"]]
        issued_ev = next(e for e in ctx if e["change"] == "key_issued")
        term = next(e for e in ctx if e["change"] == "principal_terminated")
        assert issued_ev["key_id"] == key and issued_ev["owner_id"] == term["principal_id"]
        # Replayed from the key store at the start; issued years ago.
        assert ts_of(issued_ev["ts"]) == start and term["ts"] < t["start_ts"]
        assert ts_of(issued_ev["issued_at"]) < start - 5 * 365 * 86400
    # The ramp: the last quarter of the attack is much faster than the first.
    times = [ts_of(e["ts"]) for e in bad]
    q = len(times) // 4
    assert (times[q] - times[0]) > 2 * (times[-1] - times[-q - 1])


def test_insider_reads_many_distinct_customers_from_the_office(attacked: sim.SimResult) -> None:
    t = truth_of(attacked, "insider")
    bad = [by_id(attacked)[i] for i in t["event_ids"]]
    (actor,) = t["entities"]["actor"]
    assert actor.startswith("e-") and t["entities"]["src_ip"] == []
    subjects = {e["subject_id"] for e in bad if "subject_id" in e}
    assert len(subjects) >= 0.75 * ALL_ATTACKS.customers
    office = ipaddress.ip_network(NETWORKS["kr_office"][0].cidr)
    assert all(ipaddress.ip_address(e["src_ip"]) in office for e in bad)


def test_departed_key_used_after_its_owner_left(attacked: sim.SimResult) -> None:
    t = truth_of(attacked, "departed_key")
    events = by_id(attacked)
    ctx = [events[i] for i in t["context_event_ids"]]
    issued = next(e for e in ctx if e["change"] == "key_issued")
    term = next(e for e in ctx if e["change"] == "principal_terminated")
    assert issued["owner_id"] == term["principal_id"]
    assert t["entities"]["key"] == [issued["key_id"]]
    bad = [events[i] for i in t["event_ids"]]
    assert all(e["ts"] > term["ts"] and e["key_id"] == issued["key_id"] for e in bad)
    # The owner does nothing after the termination; the key was in normal use before.
    owner = term["principal_id"]
    assert not [e for e in attacked.events if e["ts"] > term["ts"] and
                owner in (e.get("actor_id"), e.get("account_id"))]  # fmt: skip
    before = [e for e in attacked.events if e.get("key_id") == issued["key_id"]
              and e["label"] == "normal" and "subject_id" in e]  # fmt: skip
    assert before and all(e["ts"] < term["ts"] for e in before)


def test_terminated_session_keeps_reading(attacked: sim.SimResult) -> None:
    t = truth_of(attacked, "terminated_session")
    events = by_id(attacked)
    (term,) = [events[i] for i in t["context_event_ids"]]
    (sid,) = t["entities"]["session"]
    login = next(e for e in attacked.events if e.get("session_id") == sid and "outcome" in e)
    assert login["account_id"] == term["principal_id"] == t["entities"]["actor"][0]
    assert login["label"] == "normal" and login["ts"] < term["ts"]
    assert all(events[i]["ts"] > term["ts"] for i in t["event_ids"])
    assert len(t["victims"]) >= 20


def test_stuffing(attacked: sim.SimResult) -> None:
    t = truth_of(attacked, "stuffing")
    bad = [by_id(attacked)[i] for i in t["event_ids"]]
    logins = [e for e in bad if "outcome" in e]
    wins = [e for e in logins if e["outcome"] == "success"]
    assert len(logins) >= 300 and 3 <= len(wins) <= 6
    assert all("session_id" not in e for e in logins if e["outcome"] == "failure")
    assert 1 <= len(t["entities"]["src_ip"]) <= 3
    assert all(prefix_of(ip) in NETWORKS["hosting"] for ip in t["entities"]["src_ip"])
    assert sorted(t["victims"]) == sorted(e["account_id"] for e in wins)
    known_devices = {e.get("device_id") for e in attacked.events if e["label"] == "normal"}
    for w in wins:
        assert w["device_id"] not in known_devices
        reads = {e["resource"] for e in bad if e.get("session_id") == w["session_id"]
                 and "subject_id" in e}  # fmt: skip
        assert {"address", "payment"} <= reads


def test_spray_is_slow_and_from_one_asn(attacked: sim.SimResult) -> None:
    t = truth_of(attacked, "spray")
    bad = [by_id(attacked)[i] for i in t["event_ids"]]
    assert len(t["entities"]["src_ip"]) >= 30
    assert {prefix_of(ip).asn_name for ip in t["entities"]["src_ip"]} == {"DIGITALOCEAN-ASN"}
    per_account = Counter(e["account_id"] for e in bad)
    assert max(per_account.values()) == 1 and len(per_account) >= 100
    span = ts_of(bad[-1]["ts"]) - ts_of(bad[0]["ts"])
    assert span / len(bad) >= 10  # seconds between attempts on average
    assert 1 <= sum(e["outcome"] == "success" for e in bad) <= 2


def test_impossible_travel() -> None:
    cfg = SimConfig(seed=2, hours=12, customers=200, employees=5, services=1,
                    attacks=("impossible_travel",))  # fmt: skip
    res = simulate(cfg)
    (t,) = res.truth
    assert len(t["entities"]["account"]) == 12 and sorted(t["victims"]) == sorted(
        t["entities"]["account"]
    )
    events = by_id(res)
    for acct in t["entities"]["account"]:
        bad_login = next(events[i] for i in t["event_ids"]
                         if events[i].get("account_id") == acct)  # fmt: skip
        far = prefix_of(bad_login["src_ip"])
        assert far in NETWORKS["residential_abroad"] and far.country != "KR"
        home = [e for e in res.events if e.get("account_id") == acct and e["label"] == "normal"
                and e.get("outcome") == "success" and e["ts"] < bad_login["ts"]]  # fmt: skip
        assert home and prefix_of(home[-1]["src_ip"]).country == "KR"
        assert ts_of(bad_login["ts"]) - ts_of(home[-1]["ts"]) <= 3600


def test_session_hijack_from_several_countries(attacked: sim.SimResult) -> None:
    t = truth_of(attacked, "session_hijack")
    (sid,) = t["entities"]["session"]
    bad = [by_id(attacked)[i] for i in t["event_ids"]]
    countries = {prefix_of(e["src_ip"]).country for e in bad}
    assert len(countries) >= 3 and "KR" not in countries
    owner = [e for e in attacked.events if e.get("session_id") == sid and e["label"] == "normal"]
    assert owner and ts_of(owner[-1]["ts"]) > ts_of(bad[0]["ts"])  # both at once


def test_attack_sizes_at_defaults_are_sensible() -> None:
    res = simulate(SimConfig(attacks=("coupang", "insider", "stuffing")))
    sizes = {t["attack"]: len(t["victims"]) for t in res.truth}
    assert 1000 <= sizes["coupang"] <= 2000
    assert sizes["insider"] >= 1500
    # Colleagues read far fewer distinct customers per session than the insider.
    per_session: dict[str, set[str]] = defaultdict(set)
    for e in res.events:
        if e.get("actor_type") == "employee" and e["label"] == "normal":
            per_session[e["session_id"]].add(e["subject_id"])
    assert max(map(len, per_session.values())) < sizes["insider"] / 4
    assert 3 <= sizes["stuffing"] <= 6
    assert len(truth_of(res, "stuffing")["entities"]["account"]) >= 2000


# --- the normal population --------------------------------------------------------------------


def test_customers_read_their_own_data_with_the_session_a_login_issued(
    normal: sim.SimResult,
) -> None:
    logins = {e["session_id"]: e for e in normal.events if e.get("outcome") == "success"}
    pre = set(normal.population["preopen_sessions"])
    cust = [e for e in normal.events if e.get("actor_type") == "customer"]
    assert cust
    for e in cust:
        assert e["actor_id"] == e["subject_id"] and e["key_id"] == CUSTOMER_KEY
        if e["session_id"] in pre:
            assert e["session_id"] not in logins
            assert e["token_issued_at"] < normal.events[-1]["ts"]
        else:
            login = logins[e["session_id"]]
            assert login["account_id"] == e["actor_id"]
            assert e["token_issued_at"] == login["ts"] <= e["ts"]
    methods = Counter(e["method"] for e in logins.values() if e["account_type"] == "customer")
    assert {"password", "mfa", "refresh"} <= set(methods)


def test_preopen_sessions_predate_the_stream(normal: sim.SimResult) -> None:
    start = SMALL.start.replace("Z", ".000Z")
    pre = set(normal.population["preopen_sessions"])
    assert pre
    used = [e for e in normal.events if e.get("session_id") in pre]
    assert used and all(e["token_issued_at"] < start for e in used)


def test_customer_networks_are_home_mobile_v6_vpn_and_relay(normal: sim.SimResult) -> None:
    kinds: Counter[str] = Counter()
    pop = normal.population
    travellers = {t["customer"] for t in pop["travellers"]}
    for e in normal.events:
        if e.get("account_type") == "customer" or e.get("actor_type") == "customer":
            who = e.get("account_id") or e["actor_id"]
            p = prefix_of(e["src_ip"])
            assert p is not None, e["src_ip"]
            if who in pop["vpn_users"]:
                assert p in NETWORKS["vpn"]
            elif who in pop["relay_users"]:
                assert p in NETWORKS["kr_relay"]
            elif who not in travellers:
                assert p.country == "KR"
            kinds[next(k for k, g in NETWORKS.items() if p in g)] += 1
    assert {"kr_broadband", "kr_mobile", "kr_v6", "vpn", "kr_relay"} <= set(kinds)
    # VPN users always come through the same exit.
    for cid in pop["vpn_users"]:
        ips = {
            e["src_ip"] for e in normal.events if cid in (e.get("account_id"), e.get("actor_id"))
        }
        assert len(ips) <= 1
    # Mobile carrier hops: some sessions change address between requests, inside Korea.
    per_session: dict[str, set[str]] = defaultdict(set)
    for e in normal.events:
        if e.get("actor_type") == "customer":
            per_session[e["session_id"]].add(e["src_ip"])
    hops = [ips for ips in per_session.values() if len(ips) > 1]
    assert hops and all(prefix_of(ip).country == "KR" for ips in hops for ip in ips)


def test_failed_logins_are_followed_by_success(normal: sim.SimResult) -> None:
    fails = [e for e in normal.events if e.get("outcome") == "failure"]
    assert fails
    for f in fails:
        nxt = next(e for e in normal.events if e.get("account_id") == f["account_id"]
                   and e["ts"] > f["ts"] and e.get("outcome") == "success")  # fmt: skip
        assert ts_of(nxt["ts"]) - ts_of(f["ts"]) < 120


def test_travellers_fly_before_they_log_in_abroad(normal: sim.SimResult) -> None:
    assert normal.population["travellers"]
    for trip in normal.population["travellers"]:
        logins = [e for e in normal.events if e.get("account_id") == trip["customer"]
                  and e.get("outcome") == "success"]  # fmt: skip
        home = [e for e in logins if prefix_of(e["src_ip"]).country == "KR"]
        away = [e for e in logins if prefix_of(e["src_ip"]).country == trip["destination"]]
        assert home and away
        assert home[0]["ts"] < trip["departure"] < trip["arrival"] <= away[0]["ts"]
        gap_h = (ts_of(away[0]["ts"]) - ts_of(home[-1]["ts"]) if home[-1]["ts"] < away[0]["ts"]
                 else 0) / 3600  # fmt: skip
        assert gap_h >= 2.5
        assert prefix_of(away[0]["src_ip"]) in NETWORKS["residential_abroad"]


def test_support_staff_shifts_and_new_hires(normal: sim.SimResult) -> None:
    pop = normal.population
    office = ipaddress.ip_network(NETWORKS["kr_office"][0].cidr)
    sso = [e for e in normal.events if e.get("method") == "sso"]
    assert sso and all(ipaddress.ip_address(e["src_ip"]) in office for e in sso)
    per_session: dict[str, set[str]] = defaultdict(set)
    for e in normal.events:
        if e.get("actor_type") == "employee" and e["actor_id"] in pop["support_staff"]:
            per_session[e["session_id"]].add(e["subject_id"])
            assert e["resource"] in {"profile", "address", "order_history"}
            assert e["action"] in {"read", "search"}
    full = [len(s) for s in per_session.values()]
    assert max(full) >= 20 and max(full) <= 250
    # New hires: a key issued mid-stream, then their first login.
    for eid in pop["new_hires"]:
        key = next(e for e in normal.events if e.get("owner_id") == eid)
        first = next(e for e in normal.events if e.get("account_id") == eid)
        assert normal.events[0]["ts"] < key["ts"] < first["ts"]
        assert not [e for e in normal.events if e.get("actor_id") == eid and e["ts"] < key["ts"]]
    # Engineers sometimes work late from home (MFA login from a Korean broadband line).
    late = [
        e for e in normal.events if e.get("method") == "mfa" and e["account_type"] == "employee"
    ]
    assert all(prefix_of(e["src_ip"]) in NETWORKS["kr_broadband"] for e in late)


def test_services_and_the_nightly_batch(normal: sim.SimResult) -> None:
    svc = [e for e in normal.events if e.get("actor_type") == "service"]
    assert {e["actor_id"] for e in svc} == set(normal.population["services"])
    assert all(ipaddress.ip_address(e["src_ip"]) in ipaddress.ip_network("10.0.0.0/8")
               for e in svc)  # fmt: skip
    assert all(e["key_id"] == f"key-{e['actor_id']}-1" for e in svc)
    batch = [e for e in svc if e["action"] == "export"]
    assert {e["actor_id"] for e in batch} == {normal.population["batch_service"]}
    # 02:00-03:00 Korean time, every customer once, big record counts.
    assert all(e["ts"][11:13] == "17" for e in batch)
    assert len({e["subject_id"] for e in batch}) == SMALL.customers
    assert max(e["records"] for e in batch) >= 100


def test_identity_changes(normal: sim.SimResult) -> None:
    ident = [e for e in normal.events if "change" in e]
    keys = {e["key_id"]: e["owner_id"] for e in ident if e["change"] == "key_issued"}
    assert keys[CUSTOMER_KEY] == "e-0001"
    for name in normal.population["services"]:
        assert keys[f"key-{name}-1"] == name
    holders = set(keys.values())
    gone = [e["principal_id"] for e in ident if e["change"] == "principal_terminated"]
    assert gone and not holders & set(gone)
    revoked = {e["session_id"]: e["ts"] for e in ident if e["change"] == "session_revoked"}
    for e in normal.events:
        if e.get("session_id") in revoked and "change" not in e:
            assert e["ts"] < revoked[e["session_id"]]


def test_some_logins_carry_their_own_country_and_asn() -> None:
    res = simulate(SimConfig(seed=1, hours=24, customers=600, employees=5, services=1))
    own = [e for e in res.events if "asn" in e]
    assert own
    for e in own:
        p = prefix_of(e["src_ip"])
        assert (e["country"], e["asn"]) == (p.country, p.asn)


# --- the prefixes really are what the catalogue says ------------------------------------------


def test_network_catalogue_matches_geoip2fast() -> None:
    geoip2fast = pytest.importorskip("geoip2fast")
    geo = geoip2fast.GeoIP2Fast(geoip2fast_data_file="geoip2fast-asn-ipv6.dat.gz")
    rng = random.Random(0)
    for group, prefixes in NETWORKS.items():
        for p in prefixes:
            for _ in range(12):
                ip = p.ip(rng)
                assert ipaddress.ip_address(ip) in ipaddress.ip_network(p.cidr)
                r = geo.lookup(ip)
                assert (r.country_code, r.asn_name) == (p.country, p.asn_name), (group, ip)


# --- the command ---------------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="accesswatch simulate")
    simulate_cmd.add_arguments(parser)
    return parser.parse_args(argv)


def test_run_writes_events_and_truth(tmp_path, capsys) -> None:
    out, truth = tmp_path / "ev.jsonl", tmp_path / "truth.json"
    args = parse(["--seed", "4", "--hours", "4", "--customers", "60", "--employees", "5",
                  "--services", "2", "--attack", "coupang", "--attack", "spray",
                  "--out", str(out), "--truth", str(truth)])  # fmt: skip
    assert simulate_cmd.run(args) == 0
    lines = out.read_bytes().splitlines()
    events = [orjson.loads(line) for line in lines]
    cfg = SimConfig(seed=4, hours=4, customers=60, employees=5, services=2,
                    attacks=("coupang", "spray"))  # fmt: skip
    assert events == simulate(cfg).events
    records = orjson.loads(truth.read_bytes())
    assert [r["attack"] for r in records] == ["coupang", "spray"]
    assert records == simulate(cfg).truth
    assert f"{len(events)} events" in capsys.readouterr().err


def test_run_to_stdout_and_list_attacks(capsys) -> None:
    assert simulate_cmd.run(parse(["--list-attacks"])) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == list(ATTACKS)
    args = parse(["--hours", "1", "--customers", "20", "--employees", "4", "--services", "1"])
    assert simulate_cmd.run(args) == 0
    first = orjson.loads(capsys.readouterr().out.splitlines()[0])
    assert first["event_id"] == "e-7-0"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--attack", "nope"], "unknown attack 'nope'"),
        (["--start", "yesterday"], "not an RFC 3339 time"),
        (["--start", "2025-06-24T00:00:00"], "no time zone"),
        (["--hours", "0"], "hours must be > 0"),
        (["--customers", "3"], "customers must be at least 20"),
        (["--attack", "spray", "--attack-start-hour", "30"], "within the 24.0 hours"),
        (["--out", "/nonexistent/dir/x.jsonl"], "cannot write"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(argv: list[str], message: str, capsys) -> None:
    assert simulate_cmd.run(parse(argv)) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "start, hours, attack_start_hour",
    [
        ("2025-06-24T00:00:00Z", 0.25, 0.1),  # a quarter of an hour
        ("2025-06-24T15:00:00Z", 1.0, 0.5),  # Korean midnight, nobody on shift
        ("2025-06-28T10:00:00+09:00", 3.0, 0.0),  # a Saturday, attacks from the first second
        ("2025-12-31T20:00:00Z", 50.0, 2.0),  # over the new year
    ],
)
def test_odd_configs_still_give_every_attack(
    start: str, hours: float, attack_start_hour: float
) -> None:
    cfg = SimConfig(seed=13, start=start, hours=hours, customers=20, employees=4, services=1,
                    attacks=tuple(ATTACKS), attack_start_hour=attack_start_hour)  # fmt: skip
    res = simulate(cfg)
    for ev in res.events:
        check_contract(ev)
    times = [ts_of(ev["ts"]) for ev in res.events]
    assert times == sorted(times)
    t0 = sim.parse_ts(start) / 1000
    assert all(t < t0 + hours * 3600 for t in times)
    assert times[0] >= t0
    for t in res.truth:
        assert t["event_ids"], t["attack"]
        assert all(ts_of(by_id(res)[i]["ts"]) >= t0 + attack_start_hour * 3600 - 1
                   for i in t["event_ids"])  # fmt: skip


def test_fmt_ts_matches_datetime() -> None:
    rng = random.Random(1)
    for _ in range(2000):
        ms = rng.randrange(0, 4_102_444_800_000)
        whole = datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        assert sim.fmt_ts(ms) == f"{whole}.{ms % 1000:03d}Z"
