"""Allow-lists and suppressions as data (issue 18 item 2): held back, counted, watched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from detectors.allowlist import AllowList, Entry
from detectors.engine import Directory, Engine, EngineConfig
from detectors.geo import default_geo
from streams import snapshot as S
from streams.checkpoint import restore, snapshot
from streams.config import ConfigError, check, load_allowlist
from streams.settings import Settings, SettingsError
from tests.helpers import bare_runtime
from tests.helpers import feed_engine as feed

OFFICE = "198.51.100.7"  # the office NAT
ATTACKER = "45.33.2.10"
EXPIRES = 5000.0
KEYS = S.StateKeys(["test-state-key-0123456789"])


def engine(allowlist: AllowList | None) -> Engine:
    return Engine(EngineConfig(detectors=("credential_stuffing",), ts_min_year=1970,
                               allowlist=allowlist))


def stuffing(ip: str, t0: float, n: int = 12, tag: str = "") -> list[dict[str, Any]]:
    return [{"event_id": f"{tag}{ip}-{t0}-{k}", "ts": t0 + k, "account_id": f"c-{k}",
             "outcome": "failure", "src_ip": ip} for k in range(n)]


def office(expires: float | None = EXPIRES, owner: str = "alice", version: int = 1) -> AllowList:
    return AllowList(version, (Entry("network", "198.51.100.0/24", "Seoul office NAT", owner,
                                     expires),))


def sources(alerts: list[dict[str, Any]]) -> set[str]:
    return {a["entity"]["id"] for a in alerts if a["detector"] == "credential_stuffing"}


def changes(alerts: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(a["allowlist"]["change"], a["allowlist"]["entry"], a["allowlist"]["owner"])
            for a in alerts if a["detector"] == "allowlist"]


def test_office_network_stops_only_its_alerts_is_announced_and_expires() -> None:
    events = (stuffing(OFFICE, 1000) + stuffing(ATTACKER, 1000)
              + stuffing(OFFICE, 20000, tag="b") + stuffing(ATTACKER, 20000, tag="b"))
    without = feed(engine(None), events)
    assert sources(without) == {OFFICE, ATTACKER}  # both sources alert on their own
    eng = engine(office())
    alerts = feed(eng, events)
    before = [a for a in alerts if a["ts"] < "1970-01-01T01:23:20"]  # before the expiry
    # while the entry is live, only the office's alerts stop
    assert sources(before) == {ATTACKER}
    assert eng._allow.held["credential_stuffing"] >= 1
    kept = list(eng._allow.kept)
    assert kept and {k["entity"]["id"] for k in kept} == {OFFICE}
    assert kept[0]["held_by"] == "network:198.51.100.0/24"
    # the change is an info alert naming what and who; the expiry is one too, at its time
    info = [a for a in alerts if a["detector"] == "allowlist"]
    assert changes(alerts) == [("added", "network:198.51.100.0/24", "alice"),
                               ("expired", "network:198.51.100.0/24", "alice")]
    assert [a["severity"] for a in info] == ["info", "info"]
    assert info[0]["entity"] == {"kind": "subnet", "id": "198.51.100.0/24"}
    assert "alice" in info[0]["summary"] and "Seoul office NAT" in info[0]["summary"]
    assert info[1]["ts"] == "1970-01-01T01:23:20.000Z"  # the entry's own expiry, event time
    # after the expiry the office's alerts return
    after = [a for a in alerts if a["ts"] >= "1970-01-01T01:23:20"]
    assert sources(after) == {OFFICE, ATTACKER}
    assert eng.drain_held() == {"credential_stuffing": eng._allow.held["credential_stuffing"]}
    assert eng.drain_held() == {}


def test_every_engine_announces_a_change_under_the_same_alert_id() -> None:
    a = feed(engine(office()), stuffing(ATTACKER, 1000))
    b = feed(engine(office()), stuffing(ATTACKER, 1700, tag="x"))  # another partition, later
    ids_a = [x["alert_id"] for x in a if x["detector"] == "allowlist"]
    ids_b = [x["alert_id"] for x in b if x["detector"] == "allowlist"]
    assert ids_a and ids_a == ids_b
    assert a[0]["ts"] != b[0]["ts"]


def test_a_new_version_on_a_restored_engine_announces_removed_changed_and_added() -> None:
    v1 = AllowList(1, (Entry("network", "198.51.100.0/24", "office", "alice", 9e9),
                       Entry("key", "kid-batch", "nightly batch", "bob", 9e9)))
    eng = engine(v1)
    assert len(changes(feed(eng, stuffing(ATTACKER, 1000)))) == 2
    restored, _ = restore(snapshot(eng, {}, keys=KEYS, context="t/0"), default_geo(),
                          Directory(), keys=KEYS, context="t/0")
    # v2: the office entry is gone, the key's expiry pushed out, and mallory vouches for herself
    v2 = AllowList(2, (Entry("key", "kid-batch", "nightly batch", "bob", 9.5e9),
                       Entry("principal", "mallory", "needs bulk export", "mallory", 9e9)))
    restored.set_allowlist(v2)
    got = changes(feed(restored, stuffing(ATTACKER, 2000, tag="r")))
    assert got == [("changed", "key:kid-batch", "bob"),
                   ("removed", "network:198.51.100.0/24", "alice"),
                   ("added", "principal:mallory", "mallory")]
    # the insider's self-vouching is an alert about her own account
    added = [a for a in restored.flush() + feed(restored, []) if a["detector"] == "allowlist"]
    assert added == []  # announced once, not again
    # the same list again: nothing to announce
    restored.set_allowlist(v2)
    assert changes(feed(restored, stuffing(ATTACKER, 3000, tag="s"))) == []


def test_the_insider_who_allow_lists_herself_is_the_alert_entity() -> None:
    al = AllowList(3, (Entry("principal", "mallory", "needs bulk export", "mallory", 9e9),))
    alerts = feed(engine(al), stuffing(ATTACKER, 1000))
    info = [a for a in alerts if a["detector"] == "allowlist"]
    assert [a["entity"] for a in info] == [{"kind": "account", "id": "mallory"}]
    assert info[0]["allowlist"]["version"] == 3


def test_no_entry_holds_back_the_change_alerts() -> None:
    # a rule of every detector for any src_ip (the config refuses it; the engine holds anyway)
    al = AllowList(1, (Entry("suppress", "0.0.0.0/0", "quiet please", "eve", 9e9, (),
                             "src_ip"),))
    alerts = feed(engine(al), stuffing(ATTACKER, 1000))
    assert sources(alerts) == set()
    assert changes(alerts) == [("added", "suppress:*:src_ip:0.0.0.0/0", "eve")]


def test_suppression_rule_is_scoped_to_its_detector_and_entity() -> None:
    rule = Entry("suppress", ATTACKER, "pen test", "carol", 9e9, ("password_spray",), "src_ip")
    alerts = feed(engine(AllowList(1, (rule,))), stuffing(ATTACKER, 1000))
    assert sources(alerts) == {ATTACKER}  # another detector's rule does not apply
    rule = Entry("suppress", ATTACKER, "pen test", "carol", 9e9, ("credential_stuffing",))
    alerts = feed(engine(AllowList(1, (rule,))), stuffing(ATTACKER, 1000)
                  + stuffing(OFFICE, 1000))
    assert sources(alerts) == {OFFICE}


# ---- the file ---------------------------------------------------------------------------

GOOD = """\
version = 4

[[network]]
cidr = "198.51.100.0/24"
reason = "Seoul office NAT"
owner = "alice@example.com"
expires = 2026-12-31T00:00:00Z

[[key]]
id = "kid-batch"
reason = "nightly export job"
owner = "bob@example.com"
expires = "2026-06-30T00:00:00+09:00"

[[suppress]]
detectors = ["unusual_hour"]
entity_kind = "actor"
entity = "svc-report"
reason = "runs at 03:00 by design"
owner = "carol@example.com"
expires = 2026-03-01T00:00:00Z
"""


def test_file_loads_into_entries_with_event_time_expiries(tmp_path: Path) -> None:
    p = tmp_path / "allow.toml"
    p.write_text(GOOD)
    al = load_allowlist(p, ("unusual_hour",))
    assert al.version == 4
    assert [e.ident() for e in al.entries] == [
        "network:198.51.100.0/24", "key:kid-batch", "suppress:unusual_hour:actor:svc-report"]
    assert al.entries[0].expires == 1798675200.0
    assert al.entries[1].expires == 1782745200.0  # +09:00 honoured


@pytest.mark.parametrize(("text", "problem"), [
    (GOOD.replace('owner = "alice@example.com"\n', ""), "network.0.owner: Field required"),
    (GOOD.replace("expires = 2026-12-31T00:00:00Z\n", ""), "network.0.expires: Field required"),
    (GOOD.replace("2026-12-31T00:00:00Z", "2026-12-31T00:00:00"), "timezone"),
    (GOOD.replace("198.51.100.0/24", "198.51.100.1/24"), "host bits set"),
    (GOOD.replace('reason = "Seoul office NAT"', 'reason = ""'), "network.0.reason"),
    (GOOD.replace("version = 4", ""), "version: Field required"),
    (GOOD.replace('["unusual_hour"]', '["allowlist"]'), "cannot be suppressed"),
    (GOOD + '[[suppress]]\nreason = "x"\nowner = "y"\nexpires = 2026-01-01T00:00:00Z\n',
     "switch-off"),
    (GOOD.replace('["unusual_hour"]', '["unusual_hours"]'), "unknown detector(s) unusual_hours"),
    (GOOD + "[[principals]]\n", "principals: unknown key"),
])
def test_bad_file_is_one_line_per_problem(tmp_path: Path, text: str, problem: str) -> None:
    p = tmp_path / "allow.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_allowlist(p, ("unusual_hour", "bulk_lookup"))
    assert any(problem in line for line in exc.value.problems), exc.value.problems


def test_trusted_networks_setting_is_folded_into_the_allow_list(tmp_path: Path) -> None:
    p = tmp_path / "allow.toml"
    p.write_text(GOOD)
    s = Settings(trusted_networks=("10.0.0.0/8",), allowlist=str(p))
    al = s.allow_list()
    assert al is not None and al.version == 4
    assert al.entries[0] == Entry("network", "10.0.0.0/8", "trusted_networks setting",
                                  "configuration")
    assert al.match("bulk_lookup", "src_ip", "10.1.2.3", 1e12) is not None
    assert Settings().allow_list() is None
    with pytest.raises(SettingsError, match="cannot read"):
        Settings(allowlist=str(tmp_path / "missing.toml")).allow_list()


def test_config_check_validates_the_allow_list(tmp_path: Path) -> None:
    allow = tmp_path / "allow.toml"
    allow.write_text(GOOD.replace("198.51.100.0/24", "198.51.100.1/24"))
    cfg = tmp_path / "aw.toml"
    cfg.write_text(f'[state]\nkeys = ["test-state-key-0123456789"]\n'
                   f'[detectors]\nallowlist = "{allow}"\n')
    lines, problems = check(str(cfg), env={})
    assert len(problems) == 1 and "network.0.cidr" in problems[0], problems
    assert "host bits set" in problems[0]
    allow.write_text(GOOD)
    lines, problems = check(str(cfg), env={})
    assert problems == []
    assert f"allowlist = '{allow}'" in lines


def test_replay_holds_back_and_reports(tmp_path: Path) -> None:
    import orjson

    allow = tmp_path / "allow.toml"
    allow.write_text('version = 1\n[[network]]\ncidr = "198.51.100.0/24"\nreason = "office"\n'
                     'owner = "alice"\nexpires = 1970-01-01T01:00:00Z\n')
    events = tmp_path / "ev.jsonl"
    events.write_bytes(b"\n".join(orjson.dumps(e) for e in
                                  stuffing(OFFICE, 1000) + stuffing(ATTACKER, 1000)) + b"\n")
    r = subprocess.run([sys.executable, "-m", "streams.cli", "replay", str(events),
                        "--allowlist", str(allow), "--detectors", "credential_stuffing",
                        "--ts-min-year", "1970"], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin"}, cwd=Path(__file__).parent.parent,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    alerts = [orjson.loads(line) for line in r.stdout.splitlines()]
    assert sources(alerts) == {ATTACKER}
    assert changes(alerts) == [("added", "network:198.51.100.0/24", "alice")]
    assert "held back by the allow-list: " in r.stderr and "credential_stuffing" in r.stderr


def test_the_example_file_loads() -> None:
    from detectors.engine import discover

    al = load_allowlist(Path(__file__).parent.parent / "deploy" / "allowlist.example.toml",
                        discover())
    assert [e.list for e in al.entries] == ["network", "key", "principal", "suppress"]


def test_the_worker_counts_held_back_and_repeated_findings_by_reason() -> None:
    from prometheus_client import CollectorRegistry


    reg = CollectorRegistry()
    rt = bare_runtime(reg)
    eng = engine(office())
    feed(eng, stuffing(OFFICE, 1000, n=30) + stuffing(ATTACKER, 1000, n=30))
    rt._count_engine(eng)

    def sample(reason: str) -> float | None:
        return reg.get_sample_value("accesswatch_suppressed_alerts_total",
                                    {"detector": "credential_stuffing", "reason": reason})

    held, repeats = sample("allowlist"), sample("repeat")
    assert held == eng._allow.held["credential_stuffing"] and held is not None and held >= 1
    assert repeats == eng.suppressed["credential_stuffing"]
    rt._count_engine(eng)  # counted once
    assert sample("allowlist") == held and sample("feedback") == 0.0
