"""OCSF out and ATT&CK labels (issue 18.5).

Findings are validated with py-ocsf-models (Prowler's pydantic models of OCSF 1.5.0): the
model must accept the finding, and dumping it back must give the finding again, so no
attribute is of a wrong type, out of its enum, or unknown to the class (pydantic ignores
unknown attributes; the round trip catches them). ``anomaly_analyses`` (OCSF 1.4+) is not in
those models: :func:`check_anomaly_analyses` checks it against the schema's required
attributes (anomaly_analysis, analysis_target, anomaly, baseline, observation).
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors.engine import Engine, EngineConfig, discover
from simulation import SimConfig, simulate
from streams.alertmanager import alert_labels
from streams.cli import main
from streams.ocsf_out import TECHNIQUES, Findings, to_finding
from streams.replay import replay

ocsf = pytest.importorskip("py_ocsf_models.events.findings.detection_finding")
DetectionFinding = ocsf.DetectionFinding


def check_anomaly_analyses(analyses: object) -> None:
    assert isinstance(analyses, list) and analyses
    for a in analyses:
        assert set(a) <= {"analysis_targets", "anomalies", "baselines", "context"}
        assert a["analysis_targets"] and all(
            isinstance(t["name"], str) and set(t) <= {"name", "type"}
            for t in a["analysis_targets"])
        for key in ("anomalies", "baselines"):
            for item in a.get(key, []):
                assert set(item) <= {"observation_parameter", "observation_type",
                                     "observations", "observed_pattern"}
                assert isinstance(item["observation_parameter"], str)
                for o in item["observations"]:
                    assert set(o) <= {"name", "parameter", "type", "value", "timespan"}
                    assert isinstance(o["parameter"], str) and isinstance(o["value"], str)
        assert a["anomalies"]


def validate(finding: dict[str, Any]) -> DetectionFinding:
    """The finding is an OCSF 1.5 Detection Finding (see the module docstring)."""
    model = DetectionFinding.model_validate(finding)
    rest = {k: v for k, v in finding.items() if k != "anomaly_analyses"}
    assert model.model_dump(mode="json", exclude_unset=True) == rest
    assert finding["class_uid"] == 2004 and finding["category_uid"] == 2
    assert finding["type_uid"] == 2004 * 100 + finding["activity_id"]
    assert finding["severity"] == model.severity_id.name
    if "anomaly_analyses" in finding:
        check_anomaly_analyses(finding["anomaly_analyses"])
    return model


def alert(**over: Any) -> dict[str, Any]:
    a: dict[str, Any] = {
        "alert_id": "aw-0123456789abcdef01234567", "ts": "2025-06-24T02:00:04.453Z",
        "detector": "credential_stuffing", "attack": ["T1110.004"], "severity": "warning",
        "score": 0.81, "entity": {"kind": "src_ip", "id": "203.0.113.9"},
        "summary": "203.0.113.9 tried 412 accounts (customer#3fa9c1d2, ...).",
        "evidence": [{"feature": "distinct_accounts_10m", "observed": 412, "baseline": 3.5},
                     {"feature": "success_rate", "observed": 0.01, "baseline": None,
                      "detail": "4 of 412"}],
        "event_ids": ["e-1", "e-2"],
        "episode": {"started": "2025-06-24T01:58:00.000Z", "findings": 1},
    }
    a.update(over)
    return a


# ---- pure mapping --------------------------------------------------------------------------

def test_first_alert_of_an_episode_is_create_and_an_escalation_is_update() -> None:
    first = to_finding(alert())
    escalated = to_finding(alert(severity="critical", ts="2025-06-24T02:04:00.000Z",
                                 episode={"started": "2025-06-24T01:58:00.000Z",
                                          "findings": 7}))
    assert (first["activity_id"], first["activity_name"], first["status"]) == (1, "Create", "New")
    assert (escalated["activity_id"], escalated["type_uid"], escalated["status"]) == (
        2, 200402, "In Progress")
    # one finding per episode: the Update carries the Create's uid, and its own metadata uid
    assert escalated["finding_info"]["uid"] == first["finding_info"]["uid"]
    assert escalated["metadata"]["uid"] != first["metadata"]["uid"]
    assert escalated["finding_info"]["first_seen_time"] == first["finding_info"]["first_seen_time"]
    assert escalated["finding_info"]["last_seen_time"] > first["finding_info"]["last_seen_time"]
    for f in (first, escalated):
        validate(f)


@pytest.mark.parametrize(("severity", "severity_id", "caption"), [
    ("info", 1, "Informational"), ("warning", 3, "Medium"), ("critical", 5, "Critical")])
def test_severity_mapping(severity: str, severity_id: int, caption: str) -> None:
    f = to_finding(alert(severity=severity))
    assert (f["severity_id"], f["severity"]) == (severity_id, caption)
    validate(f)


def test_a_close_resolves_the_episode_once() -> None:
    fs = Findings()
    fs.add(alert())
    closed = fs.close("aw-0123456789abcdef01234567", 1750733000000)
    assert closed is not None
    assert (closed["activity_id"], closed["status_id"], closed["status"]) == (3, 4, "Resolved")
    assert closed["end_time"] == closed["time"] == 1750733000000
    validate(closed)
    assert fs.close("aw-0123456789abcdef01234567", 1750733000000) is None


def test_technique_ids_and_tactics_are_in_the_finding() -> None:
    f = to_finding(alert(attack=["T1078.004", "T1110.004"]))
    attacks = f["finding_info"]["attacks"]
    assert [a["sub_technique"]["uid"] for a in attacks] == ["T1078.004", "T1110.004"]
    assert [a["technique"]["uid"] for a in attacks] == ["T1078", "T1110"]
    assert [a["tactic"]["uid"] for a in attacks] == ["TA0001", "TA0006"]
    assert f["metadata"]["labels"] == ["T1078.004", "T1110.004"]
    validate(f)


def test_every_declared_technique_has_a_name_and_tactic() -> None:
    declared = {t for cls in discover().values() for t in cls.attack}
    assert declared, "no detector declares an ATT&CK technique"
    assert declared <= set(TECHNIQUES), declared - set(TECHNIQUES)
    assert {t.split(".")[0] for t in declared} <= set(TECHNIQUES)


def test_victims_stay_digests_unless_the_engine_reveals_them() -> None:
    plain = to_finding(alert())
    assert [r["type"] for r in plain["resources"]] == ["src_ip"]
    assert "c-000113" not in orjson.dumps(plain).decode()
    shown = to_finding(alert(victims=[{"kind": "customer", "id": "c-000113",
                                       "digest": "customer#3fa9c1d2"}]))
    assert shown["resources"][1] == {"type": "victim:customer", "uid": "c-000113",
                                     "labels": ["customer#3fa9c1d2"]}
    validate(shown)


def test_an_incident_id_on_the_alert_becomes_the_correlation_uid() -> None:
    f = to_finding(alert(incident_id="inc-42"))
    assert f["metadata"]["correlation_uid"] == "inc-42"
    assert "correlation_uid" not in to_finding(alert())["metadata"]
    validate(f)


@pytest.mark.parametrize("bad", [{"severity": "urgent"}, {"entity": "203.0.113.9"},
                                 {"ts": "yesterday"}])
def test_an_alert_off_the_contract_is_a_value_error(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        to_finding(alert(**bad))


def test_alertmanager_labels_carry_the_attack_ids_and_only_ids() -> None:
    assert alert_labels(alert(attack=["T1078.004", "T1110.004"]))["attack"] == (
        "T1078.004,T1110.004")
    assert alert_labels(alert(attack=["T1078", "T1078\nx", {"a": 1}]))["attack"] == "T1078"
    assert "attack" not in alert_labels(alert(attack=[]))


# ---- a replayed simulated day --------------------------------------------------------------

@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], list[dict], Path]:
    """The alerts and the findings of one simulated day (seed 11, the Coupang-style attack),
    replayed in process as ``replay --output ocsf`` does, and the day's file."""
    events = simulate(SimConfig(seed=11, customers=300, employees=10, hours=24,
                                attacks=("coupang",))).events
    path = tmp_path_factory.mktemp("ocsf") / "day.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    out = io.BytesIO()
    alerts = replay(iter(path.read_bytes().splitlines()), Engine(EngineConfig()), out,
                    ocsf=True)
    return alerts, [orjson.loads(x) for x in out.getvalue().splitlines()], path


def test_every_alert_carries_its_detectors_attack_ids(day: tuple[list, list, Path]) -> None:
    alerts, _, _ = day
    classes = discover()
    assert alerts
    for a in alerts:
        assert a["attack"] == list(classes[a["detector"]].attack), a["alert_id"]
        assert alert_labels(a)["attack"] == ",".join(classes[a["detector"]].attack)


def test_every_finding_of_a_replayed_day_is_an_ocsf_detection_finding(
        day: tuple[list, list, Path]) -> None:
    alerts, findings, _ = day
    for f in findings:
        validate(f)
    # one Create or Update per alert, in the alerts' order; a Close at most once, last
    opened = [f for f in findings if f["activity_id"] in (1, 2)]
    assert [f["finding_info"]["uid"] for f in opened] == [a["alert_id"] for a in alerts]
    by_uid: defaultdict[str, list[str]] = defaultdict(list)
    for f in findings:
        by_uid[f["finding_info"]["uid"]].append(f["activity_name"])
    for uid, acts in by_uid.items():
        assert acts[0] == "Create", uid
        assert "Create" not in acts[1:] and acts.count("Close") <= 1, (uid, acts)
        assert "Close" not in acts[:-1], (uid, acts)
    kinds = Counter(f["activity_name"] for f in findings)
    assert kinds["Create"] == len(by_uid) and kinds["Update"] and kinds["Close"], kinds
    for a, f in zip(alerts, opened, strict=True):
        assert [x.get("sub_technique", x["technique"])["uid"]
                for x in f["finding_info"].get("attacks", [])] == a["attack"]
        assert f["severity"] == {"info": "Informational", "warning": "Medium",
                                 "critical": "Critical"}[a["severity"]]


def test_replay_output_ocsf_writes_the_same_findings(
        day: tuple[list, list, Path], capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    _, findings, path = day
    assert main(["replay", "--quiet", "--output", "ocsf", str(path)]) == 0
    out = capsysbinary.readouterr().out
    assert [orjson.loads(x) for x in out.splitlines()] == findings


def test_replay_output_other_than_json_or_ocsf_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "e.jsonl").write_bytes(b"")
    r = subprocess.run([sys.executable, "-m", "streams.cli", "replay", "--output", "cef",
                        str(tmp_path / "e.jsonl")], capture_output=True, timeout=120)
    assert r.returncode == 2 and b"--output" in r.stderr and b"Traceback" not in r.stderr


def test_the_sample_in_the_docs_is_a_valid_finding() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "ocsf.md").read_text()
    sample = doc.split("```json\n", 1)[1].split("\n```", 1)[0]
    validate(orjson.loads(sample))


# ---- the worker's OCSF option (no broker: the runtime's sends captured) --------------------

def _runtime(tmp_path: Path, **kw: Any) -> Any:
    from streams.app import create_app
    from streams.settings import Settings

    app = create_app(Settings(data_dir=str(tmp_path), partitions=1,
                              state_keys=("test-state-key-0123456789",), **kw))
    rt = app.accesswatch
    rt.sent = []

    async def capture(**kw: Any) -> None:
        rt.sent.append((kw["key"], orjson.loads(kw["value"])))

    rt.alerts_topic.send = capture
    return rt


def test_the_worker_writes_findings_on_the_alerts_topic_when_asked(
        tmp_path: Path, day: tuple[list, list, Path]) -> None:
    alerts, findings, _ = day
    rt = _runtime(tmp_path / "ocsf", alerts_format="ocsf")
    plain = _runtime(tmp_path / "json")

    async def run() -> None:
        for a in alerts:
            await rt.emit(a)
            await plain.emit(a)

    asyncio.run(run())
    assert [v for _, v in plain.sent] == alerts
    assert [k for k, _ in rt.sent] == [a["alert_id"].encode() for a in alerts]
    assert [v for _, v in rt.sent] == [f for f in findings if f["activity_id"] != 3]


def test_an_alert_the_worker_cannot_convert_is_counted_and_the_worker_goes_on(
        tmp_path: Path) -> None:
    rt = _runtime(tmp_path, alerts_format="ocsf")

    async def run() -> None:
        await rt.emit(alert(ts="not a time"))
        await rt.emit(alert())

    asyncio.run(run())
    assert [v["activity_name"] for _, v in rt.sent] == ["Create"]
    assert rt.metrics.sample("accesswatch_internal_errors_total", stage="event") == 1.0


def test_the_worker_closes_only_the_episodes_its_engine_ended(
        day: tuple[list, list, Path]) -> None:
    """As the worker's watermark does, after each event: a Close for the episodes this
    engine ended, none for another engine's; the same episodes as replay closes."""
    alerts, findings, path = day
    engine, stranger = Engine(EngineConfig()), Engine(EngineConfig())
    mine, theirs = Findings(), Findings()
    closes: list[dict[str, Any]] = []
    for line in path.read_bytes().splitlines():
        for a in engine.process_line(line)[0]:
            mine.add(a)
            theirs.add(a)
        closes.extend(mine.ended(engine))
        assert theirs.ended(stranger) == []
    assert closes and all(validate(f).activity_id == 3 for f in closes)
    assert sorted(f["finding_info"]["uid"] for f in closes) == sorted(
        f["finding_info"]["uid"] for f in findings if f["activity_id"] == 3)
    assert mine.ended(engine) == []  # once


def test_alerts_format_is_checked_where_it_is_set() -> None:
    from streams.settings import Settings, SettingsError

    assert Settings.from_env({"ACCESSWATCH_ALERTS_FORMAT": "OCSF"}).alerts_format == "ocsf"
    with pytest.raises(SettingsError, match="alerts format"):
        Settings(alerts_format="cef", state_keys=("test-state-key-0123456789",)).validate()



def test_alerts_format_is_a_worker_key_of_the_configuration_file(tmp_path: Path) -> None:
    from streams.config import ConfigError, file_settings, load_file

    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text('[worker]\nalerts_format = "ocsf"\n')
    bad.write_text('[worker]\nalerts_format = "cef"\n')
    assert file_settings(load_file(good)).alerts_format == "ocsf"
    with pytest.raises(ConfigError, match="alerts_format"):
        load_file(bad)
