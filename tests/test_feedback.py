"""Analyst feedback (issue 18 item 3): benign silences for a while, malicious lowers the bar."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.engine import Engine, EngineConfig
from tests.helpers import feed_engine as feed

ATTACKER = "45.33.2.10"
OTHER = "203.0.113.9"


def engine(**kw: Any) -> Engine:
    return Engine(EngineConfig(detectors=("credential_stuffing",), ts_min_year=1970, **kw))


def stuffing(ip: str, t0: float, n: int = 12) -> list[dict[str, Any]]:
    return [{"event_id": f"{ip}-{t0}-{k}", "ts": t0 + k, "account_id": f"c-{t0}-{k}",
             "outcome": "failure", "src_ip": ip} for k in range(n)]


def pages(alerts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(a["entity"]["id"], a["severity"]) for a in alerts
            if a["detector"] == "credential_stuffing"]


def verdict(alert_id: str, v: str, ts: float) -> dict[str, Any]:
    return {"alert_id": alert_id, "verdict": v, "reason": "the office pentest", "ts": ts,
            "analyst": "alice", "feedback_id": "f-1"}


def test_benign_does_not_page_again_within_the_suppression_and_pages_after() -> None:
    eng = engine(feedback_suppress=7200.0)
    first = feed(eng, stuffing(ATTACKER, 1000))
    assert pages(first) == [(ATTACKER, "warning")]
    notice = eng.feedback(verdict(first[0]["alert_id"], "benign", 1100))
    assert [(a["detector"], a["severity"], a["entity"]) for a in notice] == [
        ("allowlist", "info", {"kind": "src_ip", "id": ATTACKER})]
    assert "alice" in notice[0]["summary"] and first[0]["alert_id"] in notice[0]["summary"]
    # within the suppression (ends at 8300): the same pattern from the same source is held
    # back, counted; another source still pages
    within = feed(eng, stuffing(ATTACKER, 5000) + stuffing(OTHER, 5000))
    assert pages(within) == [(OTHER, "warning")]
    assert eng.drain_held("feedback")["credential_stuffing"] >= 1
    assert eng.drain_held("allowlist") == {}
    # after it: pages again, as a new episode
    after = feed(eng, stuffing(ATTACKER, 9000))
    assert pages(after) == [(ATTACKER, "warning")]
    assert after[0]["alert_id"] != first[0]["alert_id"]


def test_malicious_pages_the_entity_at_a_lower_bar() -> None:
    eng = engine()
    first = feed(eng, stuffing(ATTACKER, 1000))
    assert eng.feedback(verdict(first[0]["alert_id"], "malicious", 1100)) == []
    again = feed(eng, stuffing(ATTACKER, 20000) + stuffing(OTHER, 20000))
    # what pages a warning elsewhere pages critical for the entity marked malicious
    assert sorted(pages(again)) == sorted([(ATTACKER, "critical"), (OTHER, "warning")])
    a = next(x for x in again if x["entity"]["id"] == ATTACKER)
    assert a["evidence"][-1]["observed"] == "malicious"


def test_a_malicious_watch_ends_and_leaves_the_state_after_its_week() -> None:
    eng = engine(feedback_watch=3600.0)
    first = feed(eng, stuffing(ATTACKER, 1000))
    eng.feedback(verdict(first[0]["alert_id"], "malicious", 1100))
    assert ("src_ip", ATTACKER) in eng._allow.watched
    # past the watch (ends at 4700): the same pattern pages as anywhere else, and the
    # expired watch is no longer kept
    later = feed(eng, stuffing(ATTACKER, 20000))
    assert pages(later) == [(ATTACKER, "warning")]
    assert ("src_ip", ATTACKER) not in eng._allow.watched


def test_a_verdict_on_an_alert_this_engine_does_not_hold_changes_nothing() -> None:
    eng = engine()
    feed(eng, stuffing(ATTACKER, 1000))
    assert eng.feedback(verdict("aw-not-here", "benign", 1100)) == []
    assert pages(feed(eng, stuffing(ATTACKER, 20000))) == [(ATTACKER, "warning")]


@pytest.mark.parametrize(("msg", "why"), [
    ([], "not a JSON object"),
    ({"alert_id": "", "verdict": "benign", "reason": "x", "ts": 1}, "alert_id"),
    ({"alert_id": "a", "verdict": "fine", "reason": "x", "ts": 1}, "verdict"),
    ({"alert_id": "a", "verdict": "benign", "reason": " ", "ts": 1}, "reason"),
    ({"alert_id": "a", "verdict": "benign", "reason": "x", "ts": "soon"}, "ts"),
    ({"alert_id": "a", "verdict": "benign", "reason": "x", "ts": float("nan")}, "ts"),
])
def test_a_bad_verdict_is_refused_with_its_reason(msg: Any, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        engine().feedback(msg)


@pytest.mark.broker
def test_the_feedback_command_writes_a_verdict_the_engine_applies(fresh_tansu: Any) -> None:
    """Command and topic round trip on a real broker: the verdict read back from
    access-feedback, handed to the engine that holds the alert, silences it."""
    import orjson

    from streams.cli import main
    from tests.helpers import consume_all as _consume

    eng = engine()
    first = feed(eng, stuffing(ATTACKER, 1000))
    alert_id = first[0]["alert_id"]
    assert main(["feedback", alert_id, "--verdict", "benign", "--reason", "pentest",
                 "--analyst", "alice", "--broker", f"kafka://{fresh_tansu.bootstrap}"]) == 0
    records = _consume(fresh_tansu.bootstrap, ["access-feedback"], 1)
    assert [r.key for r in records] == [alert_id.encode()]
    msg = orjson.loads(records[0].value)
    assert (msg["verdict"], msg["analyst"], msg["reason"]) == ("benign", "alice", "pentest")
    msg["ts"] = 1100  # the verdict's wall-clock time, moved to this test's event time
    assert [a["detector"] for a in eng.feedback(msg)] == ["allowlist"]
    assert pages(feed(eng, stuffing(ATTACKER, 5000))) == []


def test_verdicts_survive_a_checkpoint() -> None:
    from detectors.engine import Directory
    from detectors.geo import default_geo
    from streams import snapshot as S
    from streams.checkpoint import restore, snapshot

    keys = S.StateKeys(["test-state-key-0123456789"])
    eng = engine()
    first = feed(eng, stuffing(ATTACKER, 1000)) + feed(eng, stuffing(OTHER, 1000))
    by_ip = {a["entity"]["id"]: a["alert_id"] for a in first}
    eng.feedback(verdict(by_ip[ATTACKER], "benign", 1100))
    eng.feedback(verdict(by_ip[OTHER], "malicious", 1100))
    back, _ = restore(snapshot(eng, {}, keys=keys, context="t/0"), default_geo(), Directory(),
                      keys=keys, context="t/0")
    assert pages(feed(back, stuffing(ATTACKER, 5000) + stuffing(OTHER, 20000))) == [
        (OTHER, "critical")]


# Two servers of one hosting AS (AS-CHOOPA in the bundled geo data): their alerts share one
# incident, linked through the AS; a broadband address is linked to nothing of theirs.
SERVER_A, SERVER_B, HOME = "45.77.0.163", "139.180.140.133", "81.2.69.160"


def test_marking_an_incident_malicious_pages_its_linked_entities_at_a_lower_threshold() -> None:
    eng = engine()
    first = feed(eng, stuffing(SERVER_A, 1000))
    assert pages(first) == [(SERVER_A, "warning")]
    iid = first[0]["incident_id"]
    assert iid.startswith("in-") and first[0]["incident"]["link"] == {
        "kind": "asn", "id": "AS-CHOOPA"}
    assert eng.feedback(verdict(iid, "malicious", 1100)) == []
    # another server of the incident's AS, never alerted before, pages critical for what
    # pages a warning elsewhere; its alert joins the incident and says why it was raised;
    # an unlinked broadband address and another hosting AS are unchanged
    again = feed(eng, stuffing(SERVER_B, 20000) + stuffing(HOME, 20000)
                 + stuffing(ATTACKER, 20000))
    assert sorted(pages(again)) == sorted([(SERVER_B, "critical"), (HOME, "warning"),
                                           (ATTACKER, "warning")])
    b = next(x for x in again if x["entity"]["id"] == SERVER_B)
    assert b["incident_id"] == iid
    assert b["evidence"][-1]["observed"] == "malicious" and iid in b["evidence"][-1]["detail"]
    # the alert's own server too
    assert pages(feed(eng, stuffing(SERVER_A, 40000))) == [(SERVER_A, "critical")]


def test_a_malicious_alert_lowers_the_bar_for_its_whole_incident() -> None:
    eng = engine()
    first = feed(eng, stuffing(SERVER_A, 1000))
    assert eng.feedback(verdict(first[0]["alert_id"], "malicious", 1100)) == []
    assert sorted(pages(feed(eng, stuffing(SERVER_B, 20000) + stuffing(HOME, 20000)))) == [
        (SERVER_B, "critical"), (HOME, "warning")]


def test_benign_on_an_incident_silences_each_of_its_detector_entity_pairs() -> None:
    eng = engine(feedback_suppress=7200.0)
    first = feed(eng, stuffing(SERVER_A, 1000) + stuffing(SERVER_B, 1000))
    assert sorted(pages(first)) == [(SERVER_B, "warning"), (SERVER_A, "warning")]
    iid = first[0]["incident_id"]
    assert {a["incident_id"] for a in first} == {iid}
    notices = eng.feedback(verdict(iid, "benign", 1100))
    assert sorted((a["detector"], a["entity"]["id"]) for a in notices) == [
        ("allowlist", SERVER_B), ("allowlist", SERVER_A)]
    assert all(iid in a["summary"] and "alice" in a["summary"] for a in notices)
    # within the suppression (ends at 8300) both servers are held back; others page
    within = feed(eng, stuffing(SERVER_A, 5000) + stuffing(SERVER_B, 5000)
                  + stuffing(HOME, 5000))
    assert pages(within) == [(HOME, "warning")]
    assert eng.drain_held("feedback")["credential_stuffing"] >= 2
    # after it both page again, as new alerts
    after = feed(eng, stuffing(SERVER_A, 9000) + stuffing(SERVER_B, 9000))
    assert sorted(pages(after)) == [(SERVER_B, "warning"), (SERVER_A, "warning")]
    assert not {a["alert_id"] for a in after} & {a["alert_id"] for a in first}


def test_benign_on_one_alert_of_an_incident_leaves_its_other_alerts_paging() -> None:
    eng = engine(feedback_suppress=7200.0)
    first = feed(eng, stuffing(SERVER_A, 1000) + stuffing(SERVER_B, 1000))
    by_ip = {a["entity"]["id"]: a["alert_id"] for a in first}
    assert len(eng.feedback(verdict(by_ip[SERVER_A], "benign", 1100))) == 1
    assert pages(feed(eng, stuffing(SERVER_A, 5000) + stuffing(SERVER_B, 5000))) == [
        (SERVER_B, "warning")]


def test_a_verdict_on_an_incident_this_engine_does_not_hold_changes_nothing() -> None:
    eng = engine()
    feed(eng, stuffing(SERVER_A, 1000))
    assert eng.feedback(verdict("in-" + "0" * 24, "benign", 1100)) == []
    assert eng.feedback(verdict("in-" + "0" * 24, "malicious", 1100)) == []
    assert pages(feed(eng, stuffing(SERVER_B, 20000))) == [(SERVER_B, "warning")]
