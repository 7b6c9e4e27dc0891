"""Incidents (issue 18 item 1): the alerts of one attack share one ``incident_id``, the same on
every engine whatever the order or partition split of the alerts; distinct attacks and
unrelated alerts stay apart. Pure tests of ``detectors.incidents`` and the engine's use of it,
then a scenario over the simulator's attacks."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import pytest

from detectors.engine import Engine, EngineConfig
from detectors.events import Event, decode_obj, parse_ts
from detectors.geo import default_geo
from detectors.incidents import Incidents, incident_id, incident_link

GEO = default_geo()


def _net(ip: str) -> Any:
    return GEO.lookup(ip)


def _alert(aid: str, detector: str, kind: str, ident: str, ts: str, sev: str = "warning",
           evidence: list[dict[str, Any]] | None = None, started: str | None = None
           ) -> dict[str, Any]:
    return {"alert_id": aid, "ts": ts, "detector": detector, "severity": sev, "score": 0.9,
            "entity": {"kind": kind, "id": ident}, "summary": "s", "evidence": evidence or [],
            "event_ids": [], "episode": {"started": started or ts, "findings": 1}}


def _keys(kid: str, n: int = 5) -> list[dict[str, Any]]:
    return [{"feature": "signing_keys", "observed": f"{kid} ({n})"}]


# One Coupang-style attack: a legacy key read from two hosting servers in one hosting AS
# (45.77.0.0/24 and 139.180.140.0/24 are AS-CHOOPA in the bundled geo data); and an unrelated
# alert: one customer's account used from a new place.
ATTACK = [
    _alert("aw-k1", "revoked_credential", "key", "kid-legacy-2019", "2025-06-24T01:06:07Z",
           "critical"),
    _alert("aw-k2", "bulk_lookup", "key", "kid-legacy-2019", "2025-06-24T01:08:30Z", "critical"),
    _alert("aw-s1", "overseas_server", "subnet", "45.77.0.0/24", "2025-06-24T01:10:09Z",
           "critical", _keys("kid-legacy-2019")),
    _alert("aw-s2", "overseas_server", "subnet", "139.180.140.0/24", "2025-06-24T01:11:37Z",
           "warning", _keys("kid-legacy-2019", 3) + _keys("kid-cust-2025a", 1)),
]
SERVERS = [
    _alert("aw-i1", "bulk_lookup", "src_ip", "45.77.0.163", "2025-06-24T01:11:38Z", "critical"),
    _alert("aw-i2", "bulk_lookup", "src_ip", "139.180.140.133", "2025-06-24T01:12:50Z"),
    _alert("aw-a1", "bulk_lookup", "asn", "AS-CHOOPA", "2025-06-24T01:12:59Z", "critical"),
]
OTHER_ATTACK = [
    _alert("aw-o1", "revoked_credential", "key", "kid-svc-batch", "2025-06-24T03:00:00Z",
           "critical"),
    _alert("aw-o2", "bulk_lookup", "key", "kid-svc-batch", "2025-06-24T03:20:00Z"),
]
BENIGN = _alert("aw-b1", "overseas_server", "account", "c-000244", "2025-06-24T01:09:00Z",
                "warning", [{"feature": "place", "observed": "DE AMAZON-02 (hosting)"}])


def _ids(alerts: list[dict[str, Any]], book: Incidents | None = None) -> dict[str, str]:
    book = book or Incidents()
    out = {}
    for a in alerts:
        a = dict(a)
        ts = parse_ts(a["ts"])
        out[a["alert_id"]] = book.assign(a, parse_ts(a["episode"]["started"]), ts, _net)
    return out


def test_an_attacks_key_and_its_servers_share_one_incident() -> None:
    ids = _ids(ATTACK)
    assert len(set(ids.values())) == 1
    # the servers' own counts name no key: they join through their hosting AS
    servers = _ids(SERVERS)
    assert len(set(servers.values())) == 1
    assert incident_link(SERVERS[0], _net) == ("asn", "AS-CHOOPA")


def test_same_incident_id_whatever_the_order_or_partition_split() -> None:
    alerts = ATTACK + SERVERS + OTHER_ATTACK + [BENIGN]
    reference = _ids(alerts)
    rng = random.Random(18)
    for _ in range(20):
        shuffled = alerts[:]
        rng.shuffle(shuffled)
        # split over three "workers", each with its own engine-side book
        parts: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for a in shuffled:
            parts[rng.randrange(3)].append(a)
        got: dict[str, str] = {}
        for part in parts.values():
            got.update(_ids(part, Incidents()))
        assert got == reference


def test_distinct_attacks_and_an_unrelated_alert_stay_apart() -> None:
    ids = _ids(ATTACK + OTHER_ATTACK + [BENIGN])
    attack = {ids[a["alert_id"]] for a in ATTACK}
    other = {ids[a["alert_id"]] for a in OTHER_ATTACK}
    assert len(attack) == 1 and len(other) == 1
    assert attack != other
    assert ids["aw-b1"] not in attack | other


def test_a_broadband_address_is_not_linked_through_its_as() -> None:
    # 211.36.x is a Korean carrier (isp): two customers' addresses there are two incidents,
    # not one "AS" incident of everyone on that carrier
    a = _alert("aw-x1", "bulk_lookup", "src_ip", "211.36.1.10", "2025-06-24T01:00:00Z")
    b = _alert("aw-x2", "bulk_lookup", "src_ip", "211.36.200.10", "2025-06-24T01:00:00Z")
    assert GEO.lookup("211.36.1.10").net_class != "hosting"
    assert incident_link(a, _net)[0] == "subnet"
    ids = _ids([a, b])
    assert ids["aw-x1"] != ids["aw-x2"]


def test_the_same_link_in_another_window_is_another_incident() -> None:
    later = dict(ATTACK[0], alert_id="aw-k9", ts="2025-07-01T01:00:00Z",
                 episode={"started": "2025-07-01T01:00:00Z", "findings": 1})
    ids = _ids([ATTACK[0], later])
    assert ids["aw-k1"] != ids["aw-k9"]
    assert incident_id(("key", "k"), 0.0, 3600.0) != incident_id(("key", "k"), 3600.0, 3600.0)


def test_an_attacker_chosen_key_cannot_forge_another_link() -> None:
    # the id hashes a JSON array: an id holding the separator of a naive join is not confused
    assert incident_id(("key", 'a", "b'), 0.0) != incident_id(("key", "a"), 0.0)
    assert incident_id(("key", "a|subnet|1.2.3.0/24"), 0.0) != incident_id(
        ("subnet", "1.2.3.0/24"), 0.0)


def test_the_story_tells_first_seen_entities_detectors_exposure_and_escalation() -> None:
    book = Incidents()
    exposed = [{"feature": "distinct_accounts_24h", "observed": 41}]
    alerts = [dict(ATTACK[2], severity="warning", ts="2025-06-24T01:06:59Z"),
              dict(ATTACK[1], evidence=exposed), ATTACK[2]]
    for a in alerts:
        a = dict(a)
        book.assign(a, parse_ts(a["episode"]["started"]), parse_ts(a["ts"]), _net)
    inc = a["incident"]
    assert inc["first_seen"] == "2025-06-24T01:06:59Z"
    assert inc["entities"] == ["subnet 45.77.0.0/24", "key kid-legacy-2019"]
    assert inc["detectors"] == ["bulk_lookup", "overseas_server"]
    assert inc["accounts_exposed"] == 41
    assert inc["latest_escalation"]["severity"] == "critical"
    assert inc["latest_escalation"]["entity"] == "key kid-legacy-2019"
    assert inc["title"].startswith("Critical incident on key kid-legacy-2019")
    assert "Accounts exposed: at least 41" in inc["story"]


def test_an_alert_keeps_its_incident_when_later_findings_name_a_key() -> None:
    book = Incidents()
    first = _alert("aw-s5", "overseas_server", "subnet", "45.77.0.0/24", "2025-06-24T01:00:00Z")
    later = dict(first, severity="critical", evidence=_keys("kid-legacy-2019"))
    i1 = book.assign(dict(first), parse_ts(first["ts"]), parse_ts(first["ts"]), _net)
    i2 = book.assign(dict(later), parse_ts(first["ts"]), parse_ts(first["ts"]) + 60, _net)
    assert i1 == i2  # same alert id, same Alertmanager labels within the episode


def test_stories_are_bounded() -> None:
    book = Incidents(window=3600.0, max_open=5)
    for i in range(50):
        a = _alert(f"aw-{i}", "bulk_lookup", "key", f"k{i}", "2025-06-24T01:00:00Z")
        book.assign(a, 1000.0 + i, 1000.0 + i)
    assert len(book.stories) <= 6 and len(book.of_alert) <= 6


def test_bad_addresses_link_to_themselves_without_error() -> None:
    a = _alert("aw-z", "bulk_lookup", "src_ip", "not an address", "2025-06-24T01:00:00Z")
    assert incident_link(a, lambda ip: None) == ("src_ip", "not an address")


# ---- scenario: simulate's attacks through the engine ----------------------------------------

def _replay(attacks: tuple[str, ...], seed: int) -> tuple[list[dict[str, Any]], list[dict]]:
    from simulation import SimConfig, simulate

    sim = simulate(SimConfig(seed=seed, customers=400, employees=12, services=3, hours=6,
                             attacks=attacks, attack_start_hour=1.0))
    eng = Engine(EngineConfig())
    out: list[dict[str, Any]] = []
    for obj in sim.events:
        e = decode_obj(obj)
        if isinstance(e, Event):
            out += eng.process(e)[0]
    out += eng.flush()
    return out, sim.truth


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_simulated_attacks_page_once_per_incident(seed: int) -> None:
    import importlib.util
    import pathlib

    spec = importlib.util.spec_from_file_location(
        "incident_figures", pathlib.Path(__file__).parents[1] / "bench" / "incident_figures.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    alerts, truth = _replay(("coupang", "insider", "departed_key"), seed)
    assert all(a["incident_id"].startswith("in-") for a in alerts)
    fig = mod.figures(alerts, truth)
    by = {r["attack"]: r for r in fig["attacks"]}
    # incidents page less than entities did, and never more than once per incident
    assert fig["pages_after"] < fig["pages_before"]
    assert by["insider"]["incidents"] == 1, by["insider"]
    # departed_key: the key's incident, and the service principal's own read counts (which
    # name no key) are a second one; only the key's pages
    assert by["departed_key"]["incidents"] <= 2 and by["departed_key"]["pages_after"] == 1
    # coupang pages as the key's incident plus one per hosting AS (the addresses' and the AS's
    # own counts name no key); a victim's own info alert stays with that customer
    truth_c = next(t for t in truth if t["attack"] == "coupang")
    key = truth_c["params"]["key_id"]
    for a in alerts:
        if truth.index(truth_c) in mod.attribute(a, truth) and a["severity"] != "info":
            link = a["incident"]["link"]
            assert link == {"kind": "key", "id": key} or link["kind"] == "asn", a
    assert by["coupang"]["pages_after"] < by["coupang"]["pages_before"]
    for r in fig["attacks"]:
        assert not r["shared"], r  # distinct attacks are distinct incidents


def test_a_story_counts_accounts_and_never_names_them() -> None:
    # a takeover of c-000211 joins the stuffing burst's AS incident: the stuffing address's
    # alert carries the story, and must not name the account (a victim) in the clear
    takeover = _alert("aw-t1", "account_takeover", "account", "c-000211", "2025-06-24T02:29:00Z",
                      "critical", [{"feature": "login_source_in_burst",
                                    "observed": "src_ip 45.77.0.163"}])
    burst = _alert("aw-c1", "credential_stuffing", "src_ip", "45.77.0.163",
                   "2025-06-24T02:30:00Z", "critical")
    book = Incidents()
    ids = [book.assign(a, parse_ts(a["ts"]), parse_ts(a["ts"]), _net) for a in (takeover, burst)]
    assert ids[0] == ids[1]
    assert "c-000211" not in str(burst["incident"])
    assert burst["incident"]["accounts"] == 1
    assert "1 account" in burst["incident"]["story"]


def test_incidents_survive_a_checkpoint_and_restore() -> None:
    """A worker restored from its checkpoint mid-attack gives the alerts after it the
    incident ids and the story one engine run straight through gives them."""
    from simulation import SimConfig, simulate
    from streams.checkpoint import restore, snapshot
    from streams.snapshot import StateKeys

    keys = StateKeys(["test-state-key-0123456789"])
    ctx = "accesswatch/engine-checkpoints/0"
    sim = simulate(SimConfig(seed=5, customers=400, hours=2, attacks=("coupang",),
                             attack_start_hour=0.5))
    lines = sim.events
    straight = Engine()
    want = [a for obj in lines if isinstance(e := decode_obj(obj), Event)
            for a in straight.process(e)[0]] + straight.flush()
    cut = int(len(lines) * 0.4)
    first = Engine()
    got = [a for obj in lines[:cut] if isinstance(e := decode_obj(obj), Event)
           for a in first.process(e)[0]]
    assert got and first.__dict__.get("_incidents") is not None  # stories to carry over
    after, _ = restore(snapshot(first, {}, keys=keys, context=ctx), first.ctx.geo,
                       first.ctx.directory, keys=keys, context=ctx)
    got += [a for obj in lines[cut:] if isinstance(e := decode_obj(obj), Event)
            for a in after.process(e)[0]] + after.flush()
    assert [(a["alert_id"], a["incident_id"]) for a in got] == [
        (a["alert_id"], a["incident_id"]) for a in want]
    assert got[-1]["incident"] == want[-1]["incident"]


def test_the_demo_summary_counts_incidents_and_their_pages() -> None:
    from streams.demo import Scenario, summary

    alerts = [dict(a, incident_id=i) for a, i in (
        (ATTACK[0], "in-a"), (ATTACK[1], "in-a"), (SERVERS[0], "in-b"), (BENIGN, "in-c"))]
    text = summary(Scenario([], [], "test"), 10, 10, alerts, None, None, None)
    assert "incidents: 3 (2 paging on-call" in text


def test_the_story_counts_each_alert_id_once() -> None:
    book = Incidents()
    for a in (ATTACK[0], dict(ATTACK[0], severity="critical"), ATTACK[1]):
        a = dict(a)
        book.assign(a, parse_ts(a["ts"]), parse_ts(a["ts"]), _net)
    assert a["incident"]["alerts"] == 2
