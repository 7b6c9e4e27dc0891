"""Privacy of victims (issue 12, item 7): alerts name victims by salted digest and count them;
their ids travel only in the ``victims`` field, only when revealing is configured, and never
reach Alertmanager's labels or annotations.

The victims of each simulated attack are read from its labeled events: the customers whose data
the attack touched, the customer accounts it tried, took over or impersonated, and those
customers' own addresses, devices and sessions (from their normal traffic). An alert may name
its own entity in the clear (the source, key, principal or the account the page is about);
every other victim id must be absent from it.
"""

from __future__ import annotations

import re
import zlib
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from detectors.engine import Context, Engine, EngineConfig
from detectors.geo import default_geo
from simulation import ATTACKS, EXPECTED_DETECTORS, SimConfig, simulate
from streams.alertmanager import AlertmanagerSender, alert_annotations, alert_labels
from streams.checkpoint import checkpoint_records, restore, snapshot
from streams.config import settings_from_args
from streams.settings import Settings, SettingsError, victim_salt_from_env
from streams.snapshot import StateKeys
from tests.helpers import bare_runtime

ATTACKS_TESTED = ("coupang", "insider", "departed_key", "terminated_session", "stuffing",
                  "spray", "impossible_travel", "session_hijack")
SIM = SimConfig(seed=5, customers=300, employees=12, hours=5, attacks=ATTACKS_TESTED,
                attack_start_hour=1)
KEYS = StateKeys(["test-state-key-0123456789"])
SALT = "a-secret-victim-salt-for-tests"
_TOKEN = re.compile(r"[\w.:-]+")


def tokens(obj: Any) -> set[str]:
    """The words of an alert (ids, addresses, digests' halves), sentence dots dropped."""
    text = obj if isinstance(obj, str) else orjson.dumps(obj).decode()
    return {t.rstrip(".:-") for t in _TOKEN.findall(text)}


def victims_of(events: list[dict[str, Any]], attack: str) -> set[str]:
    bad = [e for e in events if e.get("label") == attack]
    accounts: set[str] = set()
    for e in bad:
        if "subject_id" in e:
            accounts.add(e["subject_id"])
            if e.get("actor_type", "customer") == "customer":
                accounts.add(e["actor_id"])  # a customer's identity the attacker used
        elif "outcome" in e and e.get("account_type", "customer") == "customer":
            accounts.add(e["account_id"])  # tried, taken over
    attacker_ips = {e.get("src_ip") for e in bad}
    owned: set[str] = set()
    for e in events:
        if e.get("label") == "normal" and (e.get("account_id") or e.get("actor_id")) in accounts:
            if e.get("src_ip") not in attacker_ips:
                owned.add(e["src_ip"])
            owned.update(v for v in (e.get("device_id"), e.get("session_id")) if v)
    return accounts | owned


def run(events: list[dict[str, Any]], **cfg: Any) -> tuple[Engine, list[dict[str, Any]]]:
    eng = Engine(EngineConfig(**cfg))
    out: list[dict[str, Any]] = []
    for e in events:
        alerts, rej = eng.process_obj(e)
        assert rej is None, rej
        out += alerts
    return eng, out + eng.flush()


@pytest.fixture(scope="module")
def world() -> SimpleNamespace:
    res = simulate(SIM)
    victims = {a: victims_of(res.events, a) for a in ATTACKS_TESTED}
    hidden_eng, hidden = run(res.events, victim_salt=SALT)
    shown_eng, shown = run(res.events, victim_salt=SALT, reveal_victims=True)
    return SimpleNamespace(res=res, victims=victims, everyone=set().union(*victims.values()),
                           hidden=hidden, shown=shown, ctx=shown_eng.ctx)


def of_attack(w: SimpleNamespace, attack: str, alerts: list[dict[str, Any]]) -> list[dict]:
    truth = next(t for t in w.res.truth if t["attack"] == attack)
    ids = set(truth["event_ids"])
    return [a for a in alerts if ids & set(a["event_ids"])]


@pytest.mark.parametrize("attack", ATTACKS_TESTED)
def test_no_victim_id_in_an_alert_by_default(world: SimpleNamespace, attack: str) -> None:
    alerts = of_attack(world, attack, world.hidden)
    assert {a["detector"] for a in alerts} >= set(EXPECTED_DETECTORS[attack])
    victims = world.victims[attack]
    assert victims, "the attack has victims to hide"
    for a in alerts:
        assert "victims" not in a
        leaked = (tokens(a) & victims) - {a["entity"]["id"]}
        assert not leaked, f"{a['detector']} names {sorted(leaked)[:3]}: {a['summary']}"


def test_no_alert_of_the_run_names_any_victim_but_its_entity(world: SimpleNamespace) -> None:
    for a in world.hidden:
        assert not (tokens(a) & world.everyone) - {a["entity"]["id"]}, a["summary"]


@pytest.mark.parametrize("attack", ATTACKS_TESTED)
def test_revealed_ids_are_only_in_the_victims_field(world: SimpleNamespace, attack: str) -> None:
    victims = world.victims[attack]
    for a in of_attack(world, attack, world.shown):
        public = {k: v for k, v in a.items() if k != "victims"}
        assert not (tokens(public) & victims) - {a["entity"]["id"]}, a["summary"]
        named = a.get("victims", [])
        assert len(named) <= EngineConfig.victims_max
        for v in named:  # each entry: a label the alert uses, and the id behind it
            assert set(v) == {"kind", "id", "digest"}
            assert v["digest"] == world.ctx.victim(v["kind"], v["id"])
            assert v["digest"] in orjson.dumps(public).decode()
            assert v["id"] != a["entity"]["id"]


def test_the_victims_field_names_the_attacks_victims(world: SimpleNamespace) -> None:
    """Revealing is not empty: the customers a forged key read, the accounts a stuffing run got
    into, the hijacked session and the travellers' addresses are there, with their digests."""
    for attack, detector in (("coupang", "revoked_credential"), ("coupang", "unissued_session"),
                             ("stuffing", "credential_stuffing"),
                             ("session_hijack", "impossible_travel"),
                             ("impossible_travel", "impossible_travel")):
        ids = {v["id"] for a in of_attack(world, attack, world.shown)
               if a["detector"] == detector for v in a.get("victims", [])}
        assert ids & world.victims[attack], (attack, detector)


def test_summaries_count_victims_and_name_them_by_digest(world: SimpleNamespace) -> None:
    coupang = of_attack(world, "coupang", world.hidden)
    revoked = next(a for a in coupang if a["detector"] == "revoked_credential")
    assert re.search(r"of 1 customer \(customer#[0-9a-f]{8}\) from ", revoked["summary"])
    assert "kid-legacy-2019" in revoked["summary"]  # the key: the attacking entity
    hijack = next(a for a in of_attack(world, "session_hijack", world.hidden)
                  if a["detector"] == "unissued_session")
    assert re.search(r"of account#[0-9a-f]{8} was used from", hijack["summary"])


def test_revealing_changes_nothing_else(world: SimpleNamespace) -> None:
    """Alert ids, summaries and evidence are the same with and without revealing."""
    assert [{k: v for k, v in a.items() if k != "victims"} for a in world.shown] == world.hidden


def test_the_salt_changes_digests_not_alert_ids(world: SimpleNamespace) -> None:
    _, other = run(world.res.events, victim_salt="another-secret-salt-0123")
    assert [a["alert_id"] for a in other] == [a["alert_id"] for a in world.hidden]
    assert any(re.search(r"#[0-9a-f]{8}", a["summary"]) for a in world.hidden)
    assert [a["summary"] for a in other] != [a["summary"] for a in world.hidden]


def test_alertmanager_gets_no_victim_ids_when_they_are_revealed(world: SimpleNamespace) -> None:
    posts: list[dict[str, Any]] = []
    sender = AlertmanagerSender(["http://am:9093"], clock=lambda: 1e9,
                                post=lambda url, body, timeout: posts.extend(orjson.loads(body)))
    revealed = [a for a in world.shown if a.get("victims")]
    assert revealed
    for a in world.shown:
        assert sender.submit(a)
    sender.tick()
    by_id = {p["labels"]["alert_id"]: p for p in posts}
    assert set(by_id) == {a["alert_id"] for a in world.shown}
    for a in revealed:
        p = by_id[a["alert_id"]]
        ids = {v["id"] for v in a["victims"]}
        assert not tokens(p["labels"]) & ids and not tokens(p["annotations"]) & ids
        assert not (tokens(p) & world.everyone) - {a["entity"]["id"]}
        assert "victims" not in orjson.dumps(p).decode()


def test_label_and_annotation_builders_drop_the_victims_field() -> None:
    a = {"alert_id": "aw-1", "ts": "2025-06-24T02:06:07.755Z", "detector": "revoked_credential",
         "severity": "critical", "entity": {"kind": "key", "id": "kid-legacy-2019"},
         "summary": "Key kid-legacy-2019 was just used to read address of 1 customer "
                    "(customer#3fa9c1d2).", "evidence": [], "event_ids": ["e1"],
         "victims": [{"kind": "customer", "id": "c-000113", "digest": "customer#3fa9c1d2"}]}
    built = orjson.dumps([alert_labels(a), alert_annotations(a, "https://x")]).decode()
    assert "c-000113" not in built and "victims" not in built
    assert "customer#3fa9c1d2" in built


# ---- the digest --------------------------------------------------------------------------


def test_digest_labels_are_stable_keyed_and_short() -> None:
    a = Context(default_geo(), "s")
    a.configure_victims(EngineConfig(victim_salt=SALT))
    b = Context(default_geo(), "other state salt")
    b.configure_victims(EngineConfig(victim_salt=SALT))
    label = a.victim("customer", "c-000113")
    assert re.fullmatch(r"customer#[0-9a-f]{8}", label)
    assert label == b.victim("customer", "c-000113")  # same key: the same label everywhere
    assert label != a.victim("customer", "c-000114")
    c = Context(default_geo(), "s")
    c.configure_victims(EngineConfig(victim_salt="x" * 200))  # longer than a BLAKE2b key
    assert c.victim("customer", "c-000113") != label
    d = Context(default_geo(), SALT)  # no victim salt: the state salt keys the digests
    assert d.victim("customer", "c-000113") == label


def test_victims_list_is_capped() -> None:
    ctx = Context(default_geo(), "s")
    ctx.configure_victims(EngineConfig(reveal_victims=True, victims_max=3))
    names = ctx.victims()
    labels = [names("customer", f"c-{i}") for i in range(10)]
    assert len(names) == 10 and len(set(labels)) == 10
    assert [v["id"] for v in names.extra()["victims"]] == ["c-0", "c-1", "c-2"]


def test_the_victim_salt_never_reaches_a_checkpoint() -> None:
    eng = Engine(EngineConfig(victim_salt=SALT, reveal_victims=True))
    label = eng.ctx.victim("customer", "c-1")
    blob = snapshot(eng, {}, keys=KEYS, context="t/0")
    assert SALT.encode() not in zlib.decompress(blob[8:-32])  # the sealed payload
    clone, _ = restore(blob, eng.ctx.geo, eng.ctx.directory, keys=KEYS, context="t/0")
    assert not clone.ctx.reveal_victims  # until configured: nothing revealed
    assert clone.ctx.victim("customer", "c-1") != label
    clone.ctx.configure_victims(EngineConfig(victim_salt=SALT, reveal_victims=True))
    assert clone.ctx.victim("customer", "c-1") == label and clone.ctx.reveal_victims


def test_a_restored_partition_takes_todays_key_and_choice() -> None:
    """The runtime configures a restored engine from its own settings, not the checkpoint's."""
    rt = bare_runtime(victim_salt=SALT, reveal_victims=True)
    rt.table = SimpleNamespace(name="engine-checkpoints")  # the checkpoint below, no broker
    blob = snapshot(Engine(EngineConfig()), {"data-access": 3}, keys=KEYS,
                    context=rt._context(0))
    records = dict(checkpoint_records(0, blob))
    rt.table.get = records.get
    st = rt.state(0)  # nothing committed (Faust's consumer, never started): no direct read
    assert st.restored and st.offsets == {"data-access": 3}
    want = Context(default_geo(), "s")
    want.configure_victims(rt.config)
    assert st.engine.ctx.reveal_victims
    assert st.engine.ctx.victim("customer", "c-1") == want.victim("customer", "c-1")


# ---- settings ----------------------------------------------------------------------------


def test_settings_read_the_salt_from_env_or_file_and_hide_it(tmp_path: Any) -> None:
    s = Settings.from_env({"ACCESSWATCH_VICTIM_SALT": SALT, "ACCESSWATCH_REVEAL_VICTIMS": "1"})
    assert s.victim_salt == SALT and s.reveal_victims
    assert SALT not in repr(s)
    f = tmp_path / "salt"
    f.write_text(SALT + "\n")
    assert victim_salt_from_env({"ACCESSWATCH_VICTIM_SALT_FILE": str(f)}) == SALT
    assert Settings.from_env({}).victim_salt == "" and not Settings.from_env({}).reveal_victims
    import argparse

    from streams.settings import add_worker_arguments

    parser = argparse.ArgumentParser()
    add_worker_arguments(parser)
    assert settings_from_args(parser.parse_args(["--reveal-victims"]), {}).reveal_victims
    assert not settings_from_args(parser.parse_args([]), {}).reveal_victims


@pytest.mark.parametrize("env, why", [
    ({"ACCESSWATCH_VICTIM_SALT": "short"}, "at least 16 characters"),
    ({"ACCESSWATCH_VICTIM_SALT": SALT, "ACCESSWATCH_VICTIM_SALT_FILE": "/x"}, "not both"),
    ({"ACCESSWATCH_VICTIM_SALT_FILE": "/nonexistent/salt"}, "No such file"),
    ({"ACCESSWATCH_REVEAL_VICTIMS": "maybe"}, "is not one of"),
])
def test_bad_victim_settings_are_one_readable_line(env: dict[str, str], why: str) -> None:
    with pytest.raises(SettingsError, match=why) as e:
        Settings.from_env(env)
    assert "\n" not in str(e.value) and SALT not in str(e.value)


def test_a_worker_without_a_salt_warns_and_one_with_a_salt_does_not() -> None:
    from streams.worker import victim_salt_warning

    assert "ACCESSWATCH_VICTIM_SALT is not set" in (victim_salt_warning(Settings()) or "")
    assert victim_salt_warning(Settings(victim_salt=SALT)) is None


def test_replay_reveals_only_with_the_flag(tmp_path: Any, monkeypatch: Any, capsys: Any) -> None:
    from streams.cli import main

    t0 = 1_750_723_200  # 2025-06-24T00:00:00Z (decoding accepts years 2000-2100)
    events = [{"event_id": "i1", "ts": t0 + 1000, "change": "key_issued", "key_id": "kid-legacy",
               "owner_id": "emp-7"},
              {"event_id": "i2", "ts": t0 + 2000, "change": "principal_terminated",
               "principal_id": "emp-7"},
              {"event_id": "a1", "ts": t0 + 3000, "actor_id": "c-000113", "subject_id": "c-000113",
               "resource": "address", "src_ip": "45.77.0.163", "key_id": "kid-legacy"}]
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    monkeypatch.setenv("ACCESSWATCH_VICTIM_SALT", SALT)
    ctx = Context(default_geo(), "s")
    ctx.configure_victims(EngineConfig(victim_salt=SALT))
    label = ctx.victim("customer", "c-000113")
    outputs = {}
    for flag in ((), ("--reveal-victims",)):
        assert main(["replay", "--quiet", str(path), *flag]) == 0
        outputs[flag] = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    [plain] = outputs[()]
    [shown] = outputs[("--reveal-victims",)]
    assert "c-000113" not in orjson.dumps(plain).decode() and label in plain["summary"]
    assert shown["victims"] == [{"kind": "customer", "id": "c-000113", "digest": label}]


def test_every_attack_of_the_simulator_is_covered() -> None:
    assert set(ATTACKS_TESTED) == {a for a in ATTACKS if not a.startswith("coupang_")}


# ---- the worker: revealed ids on the alerts topic, as replay writes them ------------------


@pytest.mark.broker
@pytest.mark.timeout(600)
def test_worker_alerts_topic_carries_the_same_digests_and_victims_as_replay(
        fresh_tansu: Any, tmp_path: Any) -> None:
    from local.alerts import AlertReader
    from local.worker import WorkerProcess
    from streams.topics import TopicNames, create_topics
    from tests.helpers import SIM as PARITY_SIM
    from tests.helpers import produce, sim_lines, wait_until_done

    lines = sim_lines(PARITY_SIM)
    _, expected = run([orjson.loads(x) for x in lines], victim_salt=SALT, reveal_victims=True)
    assert any(a.get("victims") for a in expected)

    def seen(alerts: list[dict[str, Any]]) -> set[tuple[str, str, str, bytes]]:
        return {(a["alert_id"], a["severity"], a["summary"],
                 orjson.dumps(a.get("victims"), option=orjson.OPT_SORT_KEYS)) for a in alerts}

    create_topics(fresh_tansu.bootstrap, partitions=1)
    assert produce(fresh_tansu.bootstrap, lines) == len(lines)
    worker = WorkerProcess(fresh_tansu.url, partitions=1, data_dir=str(tmp_path),
                           topics_env={"ACCESSWATCH_VICTIM_SALT": SALT,
                                       "ACCESSWATCH_REVEAL_VICTIMS": "1"})
    reader = AlertReader(fresh_tansu.bootstrap, TopicNames().alerts)
    worker.start()
    reader.start()
    try:
        worker.wait_ready()
        wait_until_done(worker, reader, len(lines), alerts=len({a["alert_id"] for a in expected}))
        got = list(reader.alerts)
    finally:
        reader.stop()
        worker.stop()
    assert seen(got) == seen(expected)
    assert "VICTIM_SALT is not set" not in worker.log_tail(100_000)  # a salt given: no warning at start
