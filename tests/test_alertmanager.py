"""Alert delivery: the sender, real Alertmanager routing, the reference receiver, and
Prometheus rules firing through to a page.

The first tests isolate the sender's logic with a fake clock and a recording poster; all
the others run the real binaries (marked ``prom``; skipped when not installed).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streams.alertmanager import (
    ALERTNAME,
    AlertFormatError,
    AlertmanagerSender,
    evidence_text,
    parse_ts,
    rfc3339,
)
from streams.metrics import Metrics, serve
from streams.webhook_receiver import ReceiverServer, parse_payload
from streams.webhook_receiver import serve as serve_receiver
from tests import prom_fixtures
from tests.prom_fixtures import (
    Alertmanager,
    Prometheus,
    alertmanager_config,
    free_port,
    need,
    wait_for,
)

T0 = 1_750_000_000.0  # 2025-06-15T15:06:40Z


def alert(
    alert_id: str = "bulk_lookup:key:kid-legacy-2019:1",
    severity: str = "critical",
    detector: str = "bulk_lookup",
    entity: dict[str, str] | None = None,
    ts: object = "2025-06-15T15:06:00.250Z",
) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "ts": ts,
        "detector": detector,
        "severity": severity,
        "score": 0.987,
        "entity": entity or {"kind": "key", "id": "kid-legacy-2019"},
        "summary": "Signing key kid-legacy-2019 read 4,210 distinct customers' addresses in 1 h "
        "(usual: 12).",
        "evidence": [
            {"feature": "distinct_subjects_1h", "value": 4210, "baseline": 12},
            {"feature": "country", "value": "SG", "baseline": "KR"},
        ],
        "event_ids": [f"e{i}" for i in range(25)],
    }


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Recorder:
    """Stands in for the HTTP POST (unit tests of the sender's own logic only)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, list[dict[str, Any]]]] = []
        self.failing: set[str] = set()

    def __call__(self, url: str, body: bytes, timeout: float) -> None:
        if url in self.failing:
            raise urllib.error.URLError("connection refused")
        self.posts.append((url, json.loads(body)))

    def alerts_to(self, url: str) -> list[dict[str, Any]]:
        return [a for u, batch in self.posts if u == url for a in batch]


URL_A = "http://am-a:9093/api/v2/alerts"
URL_B = "http://am-b:9093/api/v2/alerts"


def make_sender(**kw: Any) -> tuple[AlertmanagerSender, Clock, Recorder, Metrics]:
    clock, rec, metrics = Clock(), Recorder(), Metrics(CollectorRegistry())
    args: dict[str, Any] = {"resend_interval": 60, "episode_ttl": 300}
    args.update(kw)
    sender = AlertmanagerSender(
        ["http://am-a:9093", "http://am-b:9093/"], metrics, clock=clock, post=rec, **args
    )
    return sender, clock, rec, metrics


# --- the sender's logic (fake clock, recording poster) ----------------------------------


def test_alert_becomes_an_api_v2_alert_with_identity_labels() -> None:
    sender, clock, rec, metrics = make_sender(runbook_base="https://runbooks.example/aw/")
    assert sender.submit(alert())
    sender.tick()
    [(url_a, [posted]), (url_b, [posted_b])] = rec.posts
    assert (url_a, url_b) == (URL_A, URL_B)
    assert posted == posted_b
    assert posted["labels"] == {
        "alertname": ALERTNAME,
        "detector": "bulk_lookup",
        "severity": "critical",
        "entity_kind": "key",
        "entity_id": "kid-legacy-2019",
        "alert_id": "bulk_lookup:key:kid-legacy-2019:1",
        "incident_id": "entity:key:kid-legacy-2019",  # an alert from before incidents
    }
    ann = posted["annotations"]
    assert ann["summary"].startswith("Signing key kid-legacy-2019 read 4,210")
    assert ann["evidence"] == ("distinct_subjects_1h=4210 (baseline 12); country=SG (baseline KR)")
    assert ann["runbook_url"] == "https://runbooks.example/aw/docs/detectors.md#bulk_lookup"
    assert ann["score"] == "0.987"
    assert ann["event_ids"] == ",".join(f"e{i}" for i in range(10))
    assert posted["startsAt"] == "2025-06-15T15:06:00.250Z"
    assert posted["endsAt"] == rfc3339(T0 + 180)  # now + 3 x resend_interval
    assert metrics.sample("accesswatch_alertmanager_posts_total", result="ok") == 2.0
    assert metrics.sample("accesswatch_alertmanager_post_seconds_count") == 2.0


def test_reposts_every_resend_interval_while_active_then_resolves_when_quiet() -> None:
    sender, clock, rec, _ = make_sender(resend_interval=60, episode_ttl=300)
    sender.submit(alert())
    sender.tick()
    assert len(rec.alerts_to(URL_A)) == 1
    clock.t += 59
    sender.tick()
    assert len(rec.alerts_to(URL_A)) == 1  # not due yet
    clock.t += 1
    sender.tick()
    assert len(rec.alerts_to(URL_A)) == 2
    assert rec.alerts_to(URL_A)[-1]["endsAt"] == rfc3339(clock.t + 180)
    # a repeat of the episode keeps it alive past the first ttl
    clock.t += 200
    sender.submit(alert())
    clock.t += 200
    sender.tick()
    assert sender.active() == ["bulk_lookup:key:kid-legacy-2019:1"]
    # quiet for episode_ttl: one last post with endsAt at that moment, then forgotten
    clock.t += 100
    sender.tick()
    last = rec.alerts_to(URL_A)[-1]
    assert last["endsAt"] == rfc3339(clock.t)
    assert last["startsAt"] == "2025-06-15T15:06:00.250Z"
    assert sender.active() == []
    n = len(rec.posts)
    clock.t += 3600
    sender.tick()
    assert len(rec.posts) == n  # nothing left to send


def test_touch_keeps_an_episode_firing_without_a_new_page_and_is_ignored_when_unknown() -> None:
    sender, clock, rec, _ = make_sender(resend_interval=60, episode_ttl=300)
    sender.submit(alert())
    sender.tick()
    for _ in range(4):  # the engine keeps seeing the attack but suppresses the repeats
        clock.t += 200
        assert sender.touch("bulk_lookup:key:kid-legacy-2019:1")
        sender.tick()
    assert sender.active() == ["bulk_lookup:key:kid-legacy-2019:1"]
    assert all(a["endsAt"] > rfc3339(clock.t - 1) for a in rec.alerts_to(URL_A)[-1:])
    sender.touch("never-submitted")
    sender.tick()
    assert sender.active() == ["bulk_lookup:key:kid-legacy-2019:1"]
    clock.t += 300  # no touch for episode_ttl: resolved
    sender.tick()
    assert sender.active() == []


def test_escalation_to_critical_posts_at_once_with_new_labels_and_resolves_the_warning() -> None:
    sender, clock, rec, _ = make_sender(resend_interval=60, episode_ttl=300)
    sender.submit({**alert(), "severity": "warning"})
    sender.tick()
    assert rec.alerts_to(URL_A)[-1]["labels"]["severity"] == "warning"
    clock.t += 5
    sender.submit(alert())  # same alert_id, now critical
    sender.tick()
    posted = rec.alerts_to(URL_A)
    crit = [a for a in posted if a["labels"]["severity"] == "critical"]
    warn = [a for a in posted if a["labels"]["severity"] == "warning"]
    assert crit and crit[-1]["endsAt"] > rfc3339(clock.t)  # firing, posted without waiting
    assert warn[-1]["endsAt"] <= rfc3339(clock.t)  # the warning alert is resolved
    assert sender.active() == ["bulk_lookup:key:kid-legacy-2019:1"]


def test_explicit_resolve_and_startsat_never_in_the_future() -> None:
    sender, clock, rec, _ = make_sender()
    sender.submit(alert(ts=T0 + 3600))  # a producer with a fast clock
    sender.tick()
    assert rec.alerts_to(URL_A)[0]["startsAt"] == rfc3339(T0)
    clock.t += 5
    sender.resolve("bulk_lookup:key:kid-legacy-2019:1")
    sender.tick()
    assert rec.alerts_to(URL_A)[-1]["endsAt"] == rfc3339(T0 + 5)
    assert sender.active() == []


def test_failing_url_backs_off_exponentially_and_catches_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender, clock, rec, metrics = make_sender(backoff_initial=1, backoff_max=8)
    rec.failing.add(URL_B)
    sender.submit(alert())
    attempts_b: list[float] = []
    for _ in range(40):  # 20 s in half-second steps
        before = metrics.sample("accesswatch_alertmanager_posts_total", result="error")
        sender.tick()
        if metrics.sample("accesswatch_alertmanager_posts_total", result="error") != before:
            attempts_b.append(clock.t - T0)
        clock.t += 0.5
    assert attempts_b == [0, 1, 3, 7, 15]  # back-off 1, 2, 4, 8 (capped)
    assert len(rec.alerts_to(URL_A)) == 1  # A unaffected: it got its post at once
    assert rec.alerts_to(URL_B) == []
    assert sender.pending() == 1
    rec.failing.clear()
    clock.t = T0 + 23
    sender.tick()
    assert len(rec.alerts_to(URL_B)) == 1  # what B missed is sent when it answers
    assert sender.pending() == 0
    assert "Alertmanager post failed" in caplog.text
    assert "kid-legacy" not in caplog.text  # no entity in logs


def test_bounded_queue_drops_and_counts() -> None:
    sender, clock, rec, metrics = make_sender(queue_max=3)
    results = [sender.submit(alert(alert_id=f"a{i}")) for i in range(5)]
    assert results == [True, True, True, False, False]
    assert metrics.sample("accesswatch_alertmanager_dropped_total") == 2.0
    assert metrics.sample("accesswatch_alertmanager_queue_size") == 3.0
    sender.tick()
    assert metrics.sample("accesswatch_alertmanager_queue_size") == 0.0
    assert {a["labels"]["alert_id"] for a in rec.alerts_to(URL_A)} == {"a0", "a1", "a2"}


def test_same_alert_id_is_one_episode_with_the_latest_summary() -> None:
    sender, clock, rec, _ = make_sender()
    sender.submit(alert())
    first = alert()
    first["summary"] = "updated: 9,000 customers"
    sender.submit(first)
    sender.tick()
    assert len(rec.alerts_to(URL_A)) == 1
    assert rec.alerts_to(URL_A)[0]["annotations"]["summary"] == "updated: 9,000 customers"


def test_an_incident_is_a_label_and_its_story_an_annotation() -> None:
    sender, clock, rec, _ = make_sender()
    a = alert()
    a["incident_id"] = "in-0123456789abcdef01234567"
    a["incident"] = {"title": "Critical incident on key kid-legacy-2019: 3 detector(s)",
                     "story": "First seen 2025-06-15T15:01:00Z. " + "x" * 5000}
    a["victims"] = {"customer#1a2b3c4d": "c-000113"}
    sender.submit(a)
    sender.tick()
    [posted] = rec.alerts_to(URL_A)
    assert posted["labels"]["incident_id"] == "in-0123456789abcdef01234567"
    ann = posted["annotations"]
    assert ann["incident_title"] == a["incident"]["title"]
    assert ann["incident_story"].startswith("First seen") and len(ann["incident_story"]) <= 2000
    assert "c-000113" not in str(posted)  # victims stay out of labels and annotations


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"alert_id": None}, "alert_id"),
        ({"entity": "kid-1"}, "entity"),
        ({"severity": "page"}, "severity"),
        ({"ts": "yesterday"}, "RFC 3339"),
        ({"ts": "2025-06-15T15:06:00"}, "time zone"),
        ({"incident_id": ["in-1"]}, "incident_id"),
    ],
)
def test_alerts_that_break_the_contract_are_refused(broken: dict[str, Any], message: str) -> None:
    sender, *_ = make_sender()
    bad = {**alert(), **broken}
    with pytest.raises(AlertFormatError, match=message):
        sender.submit(bad)
    missing = alert()
    del missing["detector"]
    with pytest.raises(AlertFormatError, match="detector"):
        sender.submit(missing)


def test_constructor_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="at least one"):
        AlertmanagerSender([])
    with pytest.raises(ValueError, match="http"):
        AlertmanagerSender(["am:9093"])
    with pytest.raises(ValueError, match="resolve_window"):
        AlertmanagerSender(["http://am:9093"], resend_interval=60, resolve_window=30)


def test_ts_and_evidence_formats() -> None:
    assert parse_ts(T0) == T0
    assert parse_ts("2025-06-15T15:06:40Z") == T0
    assert parse_ts("2025-06-16T00:06:40+09:00") == T0
    assert evidence_text([]) == ""
    assert evidence_text([{"a": 1.23456, "b": [1, 2]}, "x"]) == "a=1.235 b=[1,2]; x"
    assert len(evidence_text([{"feature": "f", "value": "v" * 5000}])) == 2000


def test_async_run_posts_and_stops() -> None:
    sender, clock, rec, _ = make_sender()

    async def scenario() -> None:
        task = asyncio.create_task(sender.run(poll=0.01))
        sender.submit(alert())
        for _ in range(500):
            if rec.posts:
                break
            await asyncio.sleep(0.01)
        sender.stop()
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(scenario())
    assert len(rec.alerts_to(URL_A)) == 1


# --- the reference receiver -------------------------------------------------------------


def webhook(status: str, fingerprint: str = "fp1", starts: str = "2025-06-15T15:06:00Z") -> bytes:
    return json.dumps(
        {
            "version": "4",
            "status": status,
            "receiver": "oncall-pager",
            "groupKey": "{}:{}",
            "alerts": [
                {
                    "status": status,
                    "fingerprint": fingerprint,
                    "startsAt": starts,
                    "endsAt": "0001-01-01T00:00:00Z",
                    "labels": {
                        "alertname": ALERTNAME,
                        "severity": "critical",
                        "detector": "bulk_lookup",
                        "entity_kind": "key",
                        "entity_id": "kid-1",
                    },
                    "annotations": {"summary": "Key kid-1 read 4,210 customers."},
                }
            ],
        }
    ).encode()


AUTH = {"Authorization": f"Bearer {prom_fixtures.RECEIVER_TOKEN}"}


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    req = urllib.request.Request(
        url, data=body, method="POST",
        headers={"Content-Type": "application/json", **(AUTH if headers is None else headers)},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_receiver_dedupes_persists_and_prints_one_line_pages(tmp_path: Path) -> None:
    out = tmp_path / "pages.jsonl"
    printed = tmp_path / "stdout.txt"
    with printed.open("w") as echo:
        srv = serve_receiver("127.0.0.1", 0, out, echo=echo, auth=prom_fixtures.RECEIVER_AUTH)
        try:
            assert post(f"{srv.url}/oncall-pager", webhook("firing")) == 200
            assert post(f"{srv.url}/oncall-pager", webhook("firing")) == 200  # repeat
            assert post(f"{srv.url}/oncall-pager", webhook("resolved")) == 200
            assert post(f"{srv.url}/oncall-pager", b"not json") == 400
            assert post(f"{srv.url}/oncall-pager", json.dumps({"version": "3"}).encode()) == 400
            got = get_json(f"{srv.url}/received")
            assert [(r["status"], r["receiver"]) for r in got] == [
                ("firing", "oncall-pager"),
                ("resolved", "oncall-pager"),
            ]
            assert get_json(f"{srv.url}/received?receiver=soc-channel") == []
            assert get_json(f"{srv.url}/stats") == {
                "payloads": 3,
                "alerts": 3,
                "new": 2,
                "duplicates": 1,
                "unauthorized": 0,
            }
        finally:
            srv.stop()
    lines = printed.read_text().splitlines()
    assert lines == [
        f"PAGE [oncall-pager] FIRING critical {ALERTNAME} bulk_lookup key=kid-1: "
        "Key kid-1 read 4,210 customers.",
        f"PAGE [oncall-pager] RESOLVED critical {ALERTNAME} bulk_lookup key=kid-1: "
        "Key kid-1 read 4,210 customers.",
    ]
    assert len(out.read_text().splitlines()) == 2
    # a restarted receiver remembers what it already paged
    srv = serve_receiver("127.0.0.1", 0, out, echo=None, auth=prom_fixtures.RECEIVER_AUTH)
    try:
        post(f"{srv.url}/oncall-pager", webhook("firing"))
        assert srv.store.stats()["duplicates"] == 1
        assert len(srv.received()) == 2
    finally:
        srv.stop()


def get_json(url: str) -> Any:
    req = urllib.request.Request(url, headers=AUTH)
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def test_receiver_parse_payload_fallback_fingerprint() -> None:
    body = json.loads(webhook("firing"))
    del body["alerts"][0]["fingerprint"]
    [a] = parse_payload(json.dumps(body).encode(), "x")
    [b] = parse_payload(json.dumps(body).encode(), "x")
    assert a["fingerprint"] == b["fingerprint"] and len(a["fingerprint"]) == 16


def test_receiver_cli_bad_input_is_one_line_and_nonzero(tmp_path: Path) -> None:
    taken = serve_receiver("127.0.0.1", 0, tmp_path / "a.jsonl", echo=None,
                           auth=prom_fixtures.RECEIVER_AUTH)
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    try:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "streams.webhook_receiver",
                "--port",
                str(taken.port),
                "--out",
                str(tmp_path / "b.jsonl"),
                "--bearer-token-file",
                str(token),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        taken.stop()
    assert r.returncode == 1
    assert r.stderr.startswith("error: cannot serve on 127.0.0.1:")
    assert "Traceback" not in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "streams.webhook_receiver", "--port", "-5"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr


# --- with the real Alertmanager -----------------------------------------------------------


def records(rcv: ReceiverServer, alert_id: str) -> list[dict[str, Any]]:
    return [r for r in rcv.received() if r["labels"].get("alert_id") == alert_id]


def statuses(rcv: ReceiverServer, alert_id: str) -> list[str]:
    return [r["status"] for r in records(rcv, alert_id)]


def real_sender(*ams: Alertmanager, **kw: Any) -> AlertmanagerSender:
    args: dict[str, Any] = {
        "resend_interval": 0.5,
        "episode_ttl": 600,
        "resolve_window": 30,
        "backoff_initial": 0.1,
        "backoff_max": 0.5,
    }
    args.update(kw)
    return AlertmanagerSender([am.url for am in ams], Metrics(CollectorRegistry()), **args)


@pytest.mark.prom
def test_deploy_alertmanager_config_passes_amtool(tmp_path: Path) -> None:
    amtool = need("amtool")
    for path in (Path(__file__).parent.parent / "deploy/alertmanager/alertmanager.yml",):
        r = subprocess.run(
            [amtool, "check-config", str(path)], capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 0, r.stdout + r.stderr
    # and the test variant the fixtures generate
    generated = tmp_path / "am.yml"
    generated.write_text(alertmanager_config(12345))
    r = subprocess.run(
        [amtool, "check-config", str(generated)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "127.0.0.1:12345/oncall-pager" in generated.read_text()
    # routing: critical pages on-call, the rest goes to the SOC channel
    config = Path(__file__).parent.parent / "deploy/alertmanager/alertmanager.yml"
    for labels, receiver_name in (
        (["alertname=AccesswatchAnomaly", "severity=critical"], "oncall-pager"),
        (["alertname=AccesswatchCriticalDetection", "severity=critical"], "oncall-pager"),
        (["alertname=AccesswatchAnomaly", "severity=warning"], "soc-channel"),
        (["alertname=AccesswatchAnomaly", "severity=info"], "soc-channel"),
        (["alertname=SomethingElse"], "soc-channel"),
    ):
        r = subprocess.run(
            [amtool, "config", "routes", "test", f"--config.file={config}", *labels],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.stdout.strip() == receiver_name, (labels, r.stdout, r.stderr)


@pytest.mark.prom
def test_critical_pages_oncall_warning_goes_to_soc_and_both_resolve(
    alertmanager: Alertmanager, receiver: ReceiverServer
) -> None:
    sender = real_sender(alertmanager, episode_ttl=3)
    crit = alert(alert_id="it-crit-1", entity={"kind": "src_ip", "id": "203.0.113.7"})
    warn = alert(
        alert_id="it-warn-1",
        severity="warning",
        detector="unusual_hour",
        entity={"kind": "actor", "id": "emp-4411"},
    )
    sender.start()
    try:
        sender.submit(crit)
        sender.submit(warn)
        wait_for("the critical page", lambda: statuses(receiver, "it-crit-1"))
        wait_for("the warning", lambda: statuses(receiver, "it-warn-1"))
        [page] = records(receiver, "it-crit-1")
        assert page["receiver"] == "oncall-pager" and page["status"] == "firing"
        assert page["labels"]["detector"] == "bulk_lookup"
        assert page["labels"]["severity"] == "critical"
        assert (page["labels"]["entity_kind"], page["labels"]["entity_id"]) == (
            "src_ip",
            "203.0.113.7",
        )
        assert page["annotations"]["summary"] == crit["summary"]
        assert "distinct_subjects_1h=4210" in page["annotations"]["evidence"]
        assert page["startsAt"].startswith("2025-06-15T15:06:00.25")
        [soc] = records(receiver, "it-warn-1")
        assert soc["receiver"] == "soc-channel"
        assert soc["labels"]["detector"] == "unusual_hour"
        # nothing more is submitted: both episodes go quiet after 3 s and resolve
        wait_for(
            "both resolved",
            lambda: (
                "resolved" in statuses(receiver, "it-crit-1")
                and "resolved" in statuses(receiver, "it-warn-1")
            ),
        )
    finally:
        sender.stop()
    assert statuses(receiver, "it-crit-1") == ["firing", "resolved"]
    assert statuses(receiver, "it-warn-1") == ["firing", "resolved"]
    assert [r["receiver"] for r in records(receiver, "it-crit-1")] == ["oncall-pager"] * 2


@pytest.mark.prom
def test_one_incident_pages_once_and_its_critical_inhibits_its_warnings(
    alertmanager: Alertmanager, receiver: ReceiverServer
) -> None:
    """The deploy config groups by incident_id: two critical alerts on two entities of one
    incident reach the pager in one group (one page, then updates), and the incident's
    critical silences its warnings but not another incident's."""
    def with_incident(a: dict[str, Any], incident: str) -> dict[str, Any]:
        return {**a, "incident_id": incident}

    sender = real_sender(alertmanager)
    sender.submit(with_incident(alert(alert_id="inc-key", entity={"kind": "key", "id": "kid-9"}),
                                "in-attack"))
    sender.submit(with_incident(
        alert(alert_id="inc-subnet", detector="overseas_server",
              entity={"kind": "subnet", "id": "45.77.0.0/24"}), "in-attack"))
    sender.submit(with_incident(
        alert(alert_id="inc-warn", severity="warning", detector="bulk_lookup",
              entity={"kind": "src_ip", "id": "45.77.0.163"}), "in-attack"))
    sender.submit(with_incident(
        alert(alert_id="inc-warn-other", severity="warning", detector="overseas_server",
              entity={"kind": "key", "id": "kid-other"}), "in-other"))
    assert sender.flush(10)

    def state(alert_id: str) -> dict[str, Any]:
        [a] = alertmanager.alerts(alert_id=alert_id)
        return a["status"]  # type: ignore[no-any-return]

    wait_for("inhibition", lambda: state("inc-warn")["inhibitedBy"])
    assert state("inc-warn")["state"] == "suppressed"
    assert state("inc-warn-other")["inhibitedBy"] == []
    wait_for("the other incident's warning", lambda: statuses(receiver, "inc-warn-other"))
    wait_for("both critical alerts paged",
             lambda: statuses(receiver, "inc-key") and statuses(receiver, "inc-subnet"))
    pages = [r for r in receiver.received("oncall-pager")
             if r["labels"].get("incident_id") == "in-attack"]
    assert {r["group_key"] for r in pages} == {pages[0]["group_key"]}  # one group: one page
    assert "in-attack" in pages[0]["group_key"]
    for aid in ("inc-key", "inc-subnet", "inc-warn", "inc-warn-other"):
        sender.resolve(aid)
    assert sender.flush(10)


@pytest.mark.prom
@pytest.mark.parametrize("fresh", [False, True], ids=["same-data-dir", "fresh-data-dir"])
def test_alertmanager_restart_mid_episode_pages_exactly_once(
    fresh: bool,
    alertmanager_factory: Callable[[ReceiverServer], Alertmanager],
    fresh_receiver: ReceiverServer,
) -> None:
    am = alertmanager_factory(fresh_receiver)
    aid = f"restart-{'fresh' if fresh else 'same'}"
    sender = real_sender(am)
    sender.start()
    try:
        sender.submit(alert(alert_id=aid))
        wait_for("the first page", lambda: statuses(fresh_receiver, aid))
        am.stop()
        # posts fail while it is down; the episode stays active in the sender
        wait_for(
            "a failed post",
            lambda: (
                (sender.metrics.sample("accesswatch_alertmanager_posts_total", result="error") or 0)
                > 0
            ),
        )
        ok_before = sender.metrics.sample("accesswatch_alertmanager_posts_total", result="ok")
        am.restart(fresh=fresh)
        # the re-post brings the alert back into the restarted Alertmanager
        wait_for("the alert back in Alertmanager", lambda: am.alerts(alert_id=aid))
        [back] = am.alerts(alert_id=aid)
        assert back["startsAt"].startswith("2025-06-15T15:06:00.25")
        if fresh:
            # a fresh Alertmanager has no notification log: it notifies again, and the
            # receiver's (fingerprint, status, startsAt) dedupe keeps it to one page
            wait_for("the repeated notification", lambda: fresh_receiver.store.duplicates >= 1)
        else:
            # same data dir: a few more re-posts and group flushes, no new notification
            wait_for(
                "re-posts",
                lambda: (
                    (
                        sender.metrics.sample("accesswatch_alertmanager_posts_total", result="ok")
                        or 0
                    )
                    >= (ok_before or 0) + 6
                ),
            )
        sender.resolve(aid)
        wait_for("the resolution", lambda: "resolved" in statuses(fresh_receiver, aid))
    finally:
        sender.stop()
    assert statuses(fresh_receiver, aid) == ["firing", "resolved"]
    firing = [r for r in records(fresh_receiver, aid) if r["status"] == "firing"]
    assert len({(r["fingerprint"], r["startsAt"]) for r in firing}) == 1
    if not fresh:
        assert fresh_receiver.store.duplicates == 0  # its notification log survived


@pytest.mark.prom
def test_every_url_of_an_ha_pair_gets_the_alert(
    alertmanager_factory: Callable[[ReceiverServer], Alertmanager],
    fresh_receiver: ReceiverServer,
) -> None:
    a, b = alertmanager_factory(fresh_receiver), alertmanager_factory(fresh_receiver)
    sender = real_sender(a, b)
    sender.submit(alert(alert_id="ha-1"))
    assert sender.flush(10)
    assert a.alerts(alert_id="ha-1") and b.alerts(alert_id="ha-1")
    # both (unclustered here) notify; the receiver pages once
    wait_for("both notifications", lambda: fresh_receiver.store.alerts >= 2)
    assert statuses(fresh_receiver, "ha-1") == ["firing"]
    sender.resolve("ha-1")
    assert sender.flush(10)


# --- Prometheus rule → Alertmanager → receiver ----------------------------------------------


@pytest.mark.prom
def test_prometheus_scrapes_a_worker_and_its_critical_rule_pages(
    prometheus_factory: Callable[[list[str], str], Prometheus],
    alertmanager: Alertmanager,
    receiver: ReceiverServer,
) -> None:
    metrics = Metrics(CollectorRegistry(), version="e2e")
    worker = serve(metrics.registry, port=0)
    try:
        prom = prometheus_factory([f"127.0.0.1:{worker.port}"], alertmanager.url)
        # the zero-initialised series is scraped before anything happens
        wait_for(
            "the first scrape",
            lambda: prom.query(
                'accesswatch_alerts_total{detector="revoked_credential",severity="critical"}'
            ),
        )
        wait_for(
            "a second scrape",
            lambda: prom.query(
                'count_over_time(accesswatch_alerts_total{detector="revoked_credential",'
                'severity="critical"}[1m]) >= 2'
            ),
        )
        metrics.count_alert("revoked_credential", "critical", 0.99)

        def page() -> list[dict[str, Any]]:
            return [
                r
                for r in receiver.received("oncall-pager")
                if r["labels"].get("alertname") == "AccesswatchCriticalDetection"
                and r["labels"].get("detector") == "revoked_credential"
                and r["status"] == "firing"
            ]

        [got] = wait_for("the rule's page", page)
        assert got["labels"]["severity"] == "critical"
        assert got["annotations"]["summary"] == (
            "accesswatch raised a critical revoked_credential alert"
        )
        assert "entity_id" not in got["labels"]  # rules never see entities
        assert prom.query('up{job="accesswatch"} == 1')
    finally:
        worker.stop()


def test_free_port_is_loopback_and_free() -> None:
    import socket

    port = free_port()
    assert 1024 <= port <= 65535  # an ephemeral port, not 0 and not a privileged one
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # OSError (EADDRINUSE) if free_port left it taken
        assert s.getsockname() == ("127.0.0.1", port)
