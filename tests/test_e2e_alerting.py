"""End to end: a Coupang-style attack through Kafka, a real worker, Prometheus, Alertmanager
and the reference on-call receiver.

One pipeline serves the module (starting it is the slow part):

- an embedded Tansu broker, topics with one partition;
- ``accesswatch worker --alertmanager URL`` (a subprocess, its own consumer group), posting
  its entity alerts straight to a real Alertmanager;
- a real Prometheus scraping the worker's /metrics every second and evaluating
  ``deploy/prometheus/rules`` every second, alerting the same Alertmanager;
- Alertmanager (``deploy/alertmanager/alertmanager.yml``, timers shortened) routing to the
  reference webhook receiver (``streams.webhook_receiver``), whose deduplicated records are
  what the tests assert on.

A simulated day (seeded) with the ``coupang`` attack is played in three parts: the traffic
before the attack (produced before the worker starts, so identity facts are known first and
Prometheus scrapes every alert counter at zero before anything fires), the attack's first
minutes (its first pages), and the rest, which ``test_alertmanager_restart_mid_episode``
produces while Alertmanager is down.

The tests compare what the receiver got with what the worker itself published on the
``access-alerts`` topic: every alert the worker raised as critical must page ``oncall-pager``
once, with the entity in its labels.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from local.alerts import AlertReader
from local.worker import WorkerProcess
from simulation import SimConfig, simulate
from streams.alertmanager import ALERTNAME
from streams.broker import BrokerUnavailable, EmbeddedBroker, find_tansu
from streams.produce import Producer
from streams.topics import TopicNames, create_topics
from streams.webhook_receiver import ReceiverServer
from streams.webhook_receiver import serve as serve_receiver
from tests import prom_fixtures
from tests.prom_fixtures import Alertmanager, Prometheus, free_port, need, wait_for

RULE = "AccesswatchCriticalDetection"
PAGER = "oncall-pager"
# 500 customers, 2 h from 00:00; the attack runs 00:35-00:55. Events are in time order:
# nothing alerts before event ~1181 (the legacy key's first forged read), the first critical
# pages come in the next ~200 events, the hosting sources escalate up to event ~1655.
SIM = SimConfig(seed=11, customers=500, hours=2, attacks=("coupang",), attack_start_hour=0.5)
BEFORE_ATTACK = 1100  # events [0, 1100): normal traffic, no alert
FIRST_PART = 1400  # events [1100, 1400): the attack's first minutes
SETTLE_TIMEOUT = 150.0  # the worker takes a part and its alerts go quiet within this
QUIET = 4.0  # no new alert on the topic for this long: the worker is done with a part
VICTIM_SALT = "e2e-victim-salt-not-a-real-secret"
WEB_TOKEN = "e2e-web-token"  # noqa: S105 (the worker's web port secret in this test)
REPOST_WAIT = 150.0  # the worker re-posts active alerts every 60 s (+ back-off after errors)


# --------------------------------------------------------------------------- the pipeline


@dataclass
class Pipeline:
    broker: EmbeddedBroker
    names: TopicNames
    receiver: ReceiverServer
    am: Alertmanager
    prom: Prometheus
    worker: WorkerProcess
    reader: AlertReader
    lines: list[bytes]
    truth: dict[str, Any]
    produced: dict[str, int] = field(default_factory=dict)
    parts_sent: int = 0  # how many lines of ``lines`` are on the topics
    first_part_alerts: list[dict[str, Any]] = field(default_factory=list)

    def produce(self, upto: int) -> None:
        chunk = self.lines[self.parts_sent : upto]
        with Producer(self.broker.bootstrap, topics=self.names) as prod:
            prod.send_lines(chunk)
            sent = prod.close().sent
        for topic, n in sent.items():
            self.produced[topic] = self.produced.get(topic, 0) + n
        assert sum(sent.values()) == len(chunk)
        self.parts_sent = upto

    def settle(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Until the worker took every produced event and no alert came for QUIET s."""
        want = sum(self.produced.values())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.worker.alive(), self.worker.log_tail(40)
            taken = self.worker.metric("accesswatch_events_total")
            if taken >= want and time.monotonic() - self.reader.last_at >= QUIET:
                return
            time.sleep(0.5)
        raise AssertionError(
            f"worker took {self.worker.metric('accesswatch_events_total'):.0f} of {want} events "
            f"in {timeout:.0f}s:\n{self.worker.log_tail(40)}"
        )


def _tansu_or_skip() -> str:
    try:
        return find_tansu()
    except BrokerUnavailable as exc:
        pytest.skip(f"embedded broker unavailable: {exc}")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    am_binary = (
        need("prometheus-alertmanager")
        if shutil.which("prometheus-alertmanager")
        else need("alertmanager")
    )
    prom_binary = need("prometheus")
    tansu = _tansu_or_skip()
    sim = simulate(SIM)
    lines = [orjson.dumps(e) for e in sim.events]
    [truth] = sim.truth
    work = tmp_path_factory.mktemp("e2e")
    started: list[Any] = []
    broker = EmbeddedBroker(binary=tansu, log_path=work / "tansu.log")
    try:
        broker.start()
        started.append(broker)
        names = TopicNames()
        create_topics(broker.bootstrap, partitions=1, names=names)
        receiver = serve_receiver("127.0.0.1", 0, work / "received.jsonl", echo=None,
                                  auth=prom_fixtures.RECEIVER_AUTH)
        started.append(receiver)
        am = Alertmanager(am_binary, work / "alertmanager", receiver.port)
        started.append(am)
        am.start()
        # the worker's web port requires a token; Prometheus scrapes with the same file
        web_token = work / "web-token"
        web_token.write_text(WEB_TOKEN + "\n")
        worker = WorkerProcess(
            broker.url,
            partitions=1,
            app_id="accesswatch-e2e-alerting",
            data_dir=str(work / "worker"),
            log_path=str(work / "worker.log"),
            extra=["--alertmanager", am.url, "--reveal-victims"],  # ids on the topic only
            web_port=free_port(),
            topics_env={"ACCESSWATCH_VICTIM_SALT": VICTIM_SALT},
            web_token_file=str(web_token),
        )
        (work / "worker").mkdir()
        prom_dir = work / "prometheus"
        prom_dir.mkdir()
        prom = Prometheus(prom_binary, prom_dir, [f"127.0.0.1:{worker.port}"], am.url,
                          token_file=web_token)
        started.append(prom)
        prom.start()
        reader = AlertReader(broker.bootstrap, names.alerts)
        p = Pipeline(broker, names, receiver, am, prom, worker, reader, lines, truth)
        # Normal traffic first, identity facts included, before the worker starts.
        p.produce(BEFORE_ATTACK)
        started.append(worker)
        worker.start()
        started.append(reader)
        reader.start()
        worker.wait_ready()
        p.settle()
        assert reader.alerts == [], "normal traffic alone raised alerts"
        # Prometheus has the critical counters at zero, twice: increase() sees the first step.
        wait_for(
            "two scrapes of the worker",
            lambda: prom.query(
                'count_over_time(accesswatch_alerts_total{severity="critical",'
                'detector="revoked_credential"}[1m]) >= 2'
            ),
        )
        p.produce(FIRST_PART)
        p.settle()
        p.first_part_alerts = list(reader.alerts)
        yield p
    finally:
        for thing in reversed(started):
            thing.stop()


# ----------------------------------------------------------------------------- helpers


def criticals(alerts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """alert_id -> its critical messages on the topic (escalations keep the alert_id)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for a in alerts:
        if a["severity"] == "critical":
            out.setdefault(a["alert_id"], []).append(a)
    return out


def records(
    rcv: ReceiverServer, alert_id: str, receiver: str | None = None
) -> list[dict[str, Any]]:
    return [r for r in rcv.received(receiver) if r["labels"].get("alert_id") == alert_id]


def wait_quietly(check: Callable[[], bool], timeout: float) -> None:
    """Poll ``check`` until true or ``timeout``; the caller asserts with the details."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not check():
        time.sleep(0.2)


def where(rcv: ReceiverServer, alert_id: str) -> list[tuple[str, str, str]]:
    """(receiver, status, severity) of every record of ``alert_id``: for failure messages."""
    return [
        (r["receiver"], r["status"], r["labels"].get("severity", ""))
        for r in records(rcv, alert_id)
    ]


def missing_pages(rcv: ReceiverServer, expected: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Critical alert_ids without a firing critical page at oncall-pager, with where they went."""
    out = {}
    for aid, msgs in expected.items():
        got = [
            r
            for r in records(rcv, aid, PAGER)
            if r["status"] == "firing" and r["labels"].get("severity") == "critical"
        ]
        if not got:
            ent = msgs[-1]["entity"]
            out[aid] = {
                "detector": msgs[-1]["detector"],
                "entity": f"{ent['kind']}={ent['id']}",
                "received_as": where(rcv, aid),
            }
    return out


def hosting_entities(truth: dict[str, Any]) -> set[tuple[str, str]]:
    """The attack's servers abroad as alert entities: each IP and its /24."""
    out: set[tuple[str, str]] = set()
    for ip in truth["entities"]["src_ip"]:
        out.add(("src_ip", ip))
        out.add(("subnet", str(ipaddress.ip_network(f"{ip}/24", strict=False))))
    return out


def scenario_identifiers(lines: list[bytes], alerts: list[dict[str, Any]]) -> set[str]:
    """Every account, actor, subject, principal, key, session id and IP of the scenario, and
    every alert entity id (subnets, AS names): none may appear as a label value."""
    fields = (
        "account_id",
        "actor_id",
        "subject_id",
        "principal_id",
        "owner_id",
        "key_id",
        "session_id",
        "src_ip",
        "device_id",
    )
    ids: set[str] = set()
    for line in lines:
        ev = orjson.loads(line)
        ids.update(str(ev[f]) for f in fields if ev.get(f) not in (None, ""))
    ids.update(str(a["entity"]["id"]) for a in alerts)
    return ids


# ------------------------------------------------------------------------------- tests


@pytest.mark.prom
@pytest.mark.broker
@pytest.mark.timeout(420)
def test_attack_pages_oncall_through_rule_and_worker_push(pipeline: Pipeline) -> None:
    p = pipeline
    rcv = p.receiver
    crit = criticals(p.first_part_alerts)
    assert crit, "the attack's first minutes raised no critical alert on the topic"
    detectors = {msgs[-1]["detector"] for msgs in crit.values()}

    # (a) Prometheus: AccesswatchCriticalDetection fired for each detector that raised a
    # critical alert, routed to the pager, without entity labels (rules never see them).
    def rule_pages() -> dict[str, dict[str, Any]]:
        return {
            r["labels"].get("detector", ""): r
            for r in rcv.received(PAGER)
            if r["labels"].get("alertname") == RULE and r["status"] == "firing"
        }

    wait_quietly(lambda: detectors <= set(rule_pages()), prom_fixtures.WAIT)
    got_rules = rule_pages()
    assert detectors <= set(got_rules), (sorted(detectors), sorted(got_rules))
    for det in detectors:
        r = got_rules[det]
        assert r["labels"]["severity"] == "critical"
        assert r["annotations"]["summary"] == f"accesswatch raised a critical {det} alert"
        assert "entity_id" not in r["labels"] and "entity_kind" not in r["labels"]

    # (b) the worker's own push: every alert it raised as critical pages on-call once,
    # naming the detector and the entity, with the alert's summary.
    wait_quietly(lambda: not missing_pages(rcv, crit), prom_fixtures.WAIT)
    assert not missing_pages(rcv, crit), (
        "critical alerts on the topic that did not page oncall-pager as critical: "
        f"{missing_pages(rcv, crit)}"
    )
    paged: set[tuple[str, str]] = set()
    for aid, msgs in crit.items():
        [page] = [r for r in records(rcv, aid, PAGER) if r["status"] == "firing"]
        labels = page["labels"]
        last = msgs[-1]
        assert labels["alertname"] == ALERTNAME
        assert labels["severity"] == "critical"
        assert labels["detector"] == last["detector"]
        assert (labels["entity_kind"], labels["entity_id"]) == (
            last["entity"]["kind"],
            last["entity"]["id"],
        )
        assert page["annotations"]["summary"] in {m["summary"] for m in msgs}
        assert page["annotations"]["summary"]
        paged.add((labels["entity_kind"], labels["entity_id"]))
    # The Coupang entities: the departed engineer's legacy key and the servers abroad.
    assert ("key", p.truth["params"]["key_id"]) in paged, sorted(paged)
    assert paged & hosting_entities(p.truth), (sorted(paged), sorted(hosting_entities(p.truth)))
    # No page of the attack resolved while it is going on.
    for aid in crit:
        assert "resolved" not in [r["status"] for r in records(rcv, aid, PAGER)], where(rcv, aid)


@pytest.mark.prom
@pytest.mark.broker
@pytest.mark.timeout(600)
def test_alertmanager_restart_mid_episode_neither_loses_nor_duplicates(
    pipeline: Pipeline,
) -> None:
    """Alertmanager dies mid-attack, the attack goes on, a replacement with an empty data
    folder (no notification log, no alerts) comes up on the same address. The worker keeps
    running and re-posting: pages raised before come back into Alertmanager and are
    re-notified, which the receiver recognises (fingerprint, status, startsAt) as already
    paged; alerts raised while it was down are paged once it is back."""
    p = pipeline
    rcv = p.receiver
    # Mid-episode: something has paged already (a critical that was critical from its
    # first message), and the episode is open in the worker.
    before = criticals(p.first_part_alerts)
    paged_before = wait_for(
        "a first page from the worker",
        lambda: {
            aid for aid in before if any(r["status"] == "firing" for r in records(rcv, aid, PAGER))
        },
    )
    dup_before = rcv.store.duplicates
    errors_before = p.worker.metric('accesswatch_alertmanager_posts_total{result="error"}')

    p.am.stop()
    assert not p.am.running
    seen = len(p.reader.alerts)
    p.produce(len(p.lines))  # the rest of the attack, and of the day
    p.settle()
    during = p.reader.alerts[seen:]
    assert criticals(during), "the rest of the attack raised no critical alert"
    # The worker tried to post what it raised meanwhile, and failed.
    wait_for(
        "a failed post while Alertmanager is down",
        lambda: (
            p.worker.metric('accesswatch_alertmanager_posts_total{result="error"}') > errors_before
        ),
    )
    p.am.restart(fresh=True)

    # Not lost: the pages from before come back into the new Alertmanager (re-post) ...
    for aid in paged_before:
        wait_for(
            f"{aid} re-posted to the new Alertmanager",
            lambda a=aid: p.am.alerts(alert_id=a),
            timeout=REPOST_WAIT,
        )
    # ... and are re-notified by it (empty notification log): the receiver sees the
    # repeat and records it as a duplicate, not as a second page.
    wait_for("the re-notification", lambda: rcv.store.duplicates > dup_before, timeout=REPOST_WAIT)
    # Every alert the worker raised as critical, before or during the outage, pages once.
    crit = criticals(p.reader.alerts)
    wait_quietly(lambda: not missing_pages(rcv, crit), REPOST_WAIT)

    for aid in crit:
        got = records(rcv, aid, PAGER)
        statuses = [r["status"] for r in got]
        assert statuses.count("firing") <= 1, (aid, where(rcv, aid))
        assert "resolved" not in statuses, (aid, where(rcv, aid))
        firing = [r for r in got if r["status"] == "firing"]
        assert len({(r["fingerprint"], r["startsAt"]) for r in firing}) <= 1
    for aid in paged_before:
        [page] = [r for r in records(rcv, aid, PAGER) if r["status"] == "firing"]
        [back] = p.am.alerts(alert_id=aid)
        assert back["fingerprint"] == page["fingerprint"]
        assert back["startsAt"][:19] == page["startsAt"][:19]
        assert back["status"]["state"] == "active"
    assert not missing_pages(rcv, crit), (
        "critical alerts on the topic that never paged oncall-pager as critical: "
        f"{missing_pages(rcv, crit)}"
    )


@pytest.mark.prom
@pytest.mark.broker
@pytest.mark.timeout(420)
def test_worker_metrics_count_alerts_and_carry_no_identifiers(pipeline: Pipeline) -> None:
    p = pipeline
    text = _get(p.worker.metrics_url)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = [s for f in families.values() for s in f.samples]
    alerts = list(p.reader.alerts)

    # events: one per message produced, by input topic
    events = {
        s.labels["topic"]: s.value
        for s in families["accesswatch_events"].samples
        if s.name == "accesswatch_events_total"
    }
    assert events == {t: float(n) for t, n in p.produced.items() if n} | {
        t: 0.0 for t in events if not p.produced.get(t)
    }, (events, p.produced)

    # alerts by detector and severity: exactly the messages on the topic, criticals > 0
    counted = {
        (s.labels["detector"], s.labels["severity"]): s.value
        for s in families["accesswatch_alerts"].samples
        if s.name == "accesswatch_alerts_total"
    }
    on_topic: dict[tuple[str, str], int] = {}
    for a in alerts:
        key = (a["detector"], a["severity"])
        on_topic[key] = on_topic.get(key, 0) + 1
    assert {k: v for k, v in counted.items() if v} == {k: float(v) for k, v in on_topic.items()}
    crit_detectors = {d for (d, s) in on_topic if s == "critical"}
    assert {"bulk_lookup", "revoked_credential"} <= crit_detectors, sorted(on_topic)
    for det in crit_detectors:
        assert counted[(det, "critical")] > 0

    # anomaly scores: a histogram per detector, one observation per alert with a score
    score = families["accesswatch_anomaly_score"].samples
    for det in crit_detectors:
        buckets = sorted(
            (float(s.labels["le"]), s.value)
            for s in score
            if s.name == "accesswatch_anomaly_score_bucket" and s.labels["detector"] == det
        )
        assert buckets and buckets[-1][0] == float("inf"), buckets
        assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:], strict=False)), buckets
        [count] = [
            s.value
            for s in score
            if s.name == "accesswatch_anomaly_score_count" and s.labels["detector"] == det
        ]
        scored = sum(1 for a in alerts if a["detector"] == det and a.get("score") is not None)
        assert buckets[-1][1] == count == scored > 0
        # the critical alerts' scores are high: most land in the top buckets
        assert count - dict(buckets)[0.5] > 0

    # privacy: no label value on the page is an account, actor, key, session id or IP
    ids = scenario_identifiers(p.lines[: p.parts_sent], alerts)
    leaked = {(s.name, k, v) for s in samples for k, v in s.labels.items() if v in ids}
    assert not leaked, sorted(leaked)[:10]
    # nor is any part of one (an IP or key inside a longer label value)
    long_ids = {i for i in ids if len(i) >= 6}
    values = {v for s in samples for v in s.labels.values()}
    assert not {v for v in values for i in long_ids if i in v}


@pytest.mark.prom
@pytest.mark.broker
@pytest.mark.timeout(420)
def test_pages_name_no_victim_although_the_topic_reveals_them(pipeline: Pipeline) -> None:
    """The worker reveals victims' ids on the alerts topic (``--reveal-victims``); none of them
    reaches Alertmanager or the on-call receiver: pages carry digests and counts."""
    p = pipeline
    crit = criticals(p.first_part_alerts)
    wait_quietly(lambda: not missing_pages(p.receiver, crit), prom_fixtures.WAIT)
    alerts = list(p.reader.alerts)
    entities = {a["entity"]["id"] for a in alerts}
    hidden = {v["id"] for a in alerts for v in a.get("victims", [])} - entities
    assert hidden, "the attack's alerts reveal their victims on the topic"
    pages = p.receiver.received()
    assert {r["labels"].get("alert_id") for r in pages} & {a["alert_id"] for a in alerts
                                                           if a.get("victims")}
    text = orjson.dumps(pages).decode()
    leaked = sorted(i for i in hidden
                    if re.search(rf"(?<![\w.:-]){re.escape(i)}(?![\w:-])", text))
    assert not leaked, leaked[:5]
    assert re.search(r"customer#[0-9a-f]{8}", text)  # the victim, as the page names it


def _get(url: str, token: str | None = WEB_TOKEN) -> str:
    import urllib.request

    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"}
                                 if token else {})
    with urllib.request.urlopen(req, timeout=5) as r:
        return str(r.read().decode())


def _status(url: str, token: str | None) -> int:
    import urllib.error

    try:
        _get(url, token)
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200


def test_worker_web_port_requires_its_token_and_serves_no_faust_views(
    pipeline: Pipeline,
) -> None:
    """The running worker: every page refused without the token (ef303a3 served /table/
    and /router/ to anyone); with it, /metrics and ``/`` only. Prometheus scraped it with
    the token from a file all along (the rule pages above depend on it)."""
    base = f"http://127.0.0.1:{pipeline.worker.port}"
    pages = ["/metrics", "/", "/table/", "/router/", "/graph/", "/stats/", "/performance/"]
    assert {p: _status(base + p, None) for p in pages} == dict.fromkeys(pages, 401)
    assert {p: _status(base + p, "wrong") for p in pages} == dict.fromkeys(pages, 401)
    assert {p: _status(base + p, WEB_TOKEN) for p in pages} == {
        "/metrics": 200, "/": 200, **dict.fromkeys(pages[2:], 404)}
    up = pipeline.prom.query('up{job="accesswatch"}')
    assert [r["value"][1] for r in up] == ["1"]


def test_scenario_shape_is_what_the_module_assumes() -> None:
    """The split points of the module's scenario (no alert before BEFORE_ATTACK, critical
    pages inside the first part and after it) hold for the engine itself."""
    from detectors.engine import Engine

    sim = simulate(SIM)
    lines = [orjson.dumps(e) for e in sim.events]
    engine = Engine()
    first: dict[str, int] = {}
    for i, line in enumerate(lines):
        for a in engine.process_line(line)[0]:
            if a["severity"] == "critical":
                first.setdefault(a["alert_id"], i)
    assert first and min(first.values()) >= BEFORE_ATTACK
    assert any(i < FIRST_PART for i in first.values())
    assert any(i >= FIRST_PART for i in first.values())
