"""The entity page (issue 18 item 4): the engine's bounded log, the view, the renderers, the CLI.

The browser test against a real worker is tests/test_explain_browser.py."""

from __future__ import annotations

import html.parser
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors.engine import Engine, EngineConfig
from detectors.explain import EntityLog, ExplainError, explain, parse_entity
from simulation import SimConfig
from streams import snapshot as S
from streams.checkpoint import restore, snapshot
from streams.cli import main
from streams.explain_render import HTML_HEADERS, render_html, render_json, render_text
from tests.helpers import sim_lines

SIM = SimConfig(seed=3, customers=400, hours=2, attacks=("coupang",), attack_start_hour=0.3)
HOSTILE = "<script>alert(1)</script>\"'&<img src=x onerror=alert(2)></svg>\x1b[2J\u202e"


def alert(aid: str, t: float, *, kind: str = "src_ip", ident: str = "1.2.3.4",
          severity: str = "warning", detector: str = "bulk_lookup", **extra: Any
          ) -> dict[str, Any]:
    return {"alert_id": aid, "ts": f"t{t}", "detector": detector, "severity": severity,
            "score": 0.5, "entity": {"kind": kind, "id": ident}, "summary": f"summary {aid}",
            "evidence": [{"feature": "f", "observed": 1, "baseline": 0}] * 30,
            "event_ids": [f"e{i}" for i in range(30)], **extra}


@pytest.fixture(scope="module")
def replayed() -> tuple[Engine, list[dict[str, Any]]]:
    eng = Engine()
    alerts: list[dict[str, Any]] = []
    for line in sim_lines(SIM):
        alerts.extend(eng.process_line(line)[0])
    alerts.extend(eng.flush())
    return eng, alerts


# ---- the engine's log ---------------------------------------------------------------------

def test_the_log_keeps_a_ring_of_recent_alerts_and_an_escalation_replaces_its_alert() -> None:
    log = EntityLog(alerts_max=5)
    for i in range(8):
        log.note_alert(alert(f"a{i}", 3600.0 * i), 3600.0 * i)
    rec = log.record("src_ip", "1.2.3.4")
    assert rec is not None
    assert [a["alert_id"] for a in rec.alerts] == ["a3", "a4", "a5", "a6", "a7"]
    assert len(rec.alerts[0]["evidence"]) == 12 and len(rec.alerts[0]["event_ids"]) == 5
    log.note_alert(alert("a5", 30000.0, severity="critical"), 30000.0)  # escalates a5
    assert [(a["alert_id"], a["severity"]) for a in rec.alerts][-2:] == [
        ("a7", "warning"), ("a5", "critical")]
    assert len(rec.alerts) == 5
    assert log.n_alerts == 5
    # alerts per hour: the escalation is the same alert, not a new one
    assert sum(v[1] for v in rec.hours.values()) == 8


def test_activity_is_counted_for_entities_with_alerts_only(replayed: Any) -> None:
    eng, alerts = replayed
    alerted = {(a["entity"]["kind"], a["entity"]["id"]) for a in alerts}
    assert set(eng.entity_log.recs) == alerted
    ip = next(i for k, i in alerted if k == "src_ip")
    rec = eng.entity_log.record("src_ip", ip)
    assert sum(v[0] for v in rec.hours.values()) > 0  # its requests after its first alert
    assert eng.entity_log.record("src_ip", "192.0.2.250") is None


def test_the_log_is_held_to_the_cap_and_counted_in_the_byte_budget() -> None:
    eng = Engine(EngineConfig(max_entities=10, shed_every=1))
    for i in range(40):
        eng.entity_log.note_alert(alert(f"a{i}", float(i), ident=f"10.0.0.{i}"), float(i))
    # the byte budget's estimate counts the alerts kept and the records
    assert (4096, 80) in eng._sizes()
    eng._shed()
    assert len(eng.entity_log.recs) <= 10
    assert eng.entity_log.n_alerts == len(eng.entity_log.recs)
    assert eng.evicted["explain"] >= 30
    assert ("src_ip", "10.0.0.39") in eng.entity_log.recs  # the least recently seen went


def test_the_log_survives_the_sealed_checkpoint(replayed: Any) -> None:
    eng, alerts = replayed
    keys = S.StateKeys(["a-test-key-of-thirty-two-bytes-000"])
    blob = snapshot(eng, {"t": 1}, keys=keys, context="p0")  # the worker's checkpoint format
    back, _ = restore(blob, eng.ctx.geo, eng.ctx.directory, keys=keys, context="p0")
    a = alerts[-1]
    before = explain([eng], a["entity"]["kind"], a["entity"]["id"])
    assert explain([back], a["entity"]["kind"], a["entity"]["id"]) == before


def test_an_engine_restored_from_before_the_entity_page_gets_an_empty_log() -> None:
    eng = Engine()
    state = eng.__getstate__()
    del state["entity_log"]
    old = Engine.__new__(Engine)
    old.__setstate__(state)
    assert old.entity_log.recs == {}
    assert explain([old], "key", "k")["known"] is False


# ---- the view -----------------------------------------------------------------------------

def test_the_view_of_an_attacking_address(replayed: Any) -> None:
    eng, alerts = replayed
    ip = next(a["entity"]["id"] for a in alerts if a["entity"]["kind"] == "src_ip")
    mine = [a for a in alerts if a["entity"] == {"kind": "src_ip", "id": ip}]
    view = explain([eng], "ip", ip)  # an alias of src_ip
    assert view["entity"] == {"kind": "src_ip", "id": ip} and view["known"]
    assert {a["alert_id"] for a in view["alerts"]} == {a["alert_id"] for a in mine}
    assert [a["t"] for a in view["alerts"]] == sorted((a["t"] for a in view["alerts"]),
                                                      reverse=True)
    assert view["detectors"] == sorted({a["detector"] for a in mine})
    latest = view["evidence"][0]
    assert latest["lines"] and {"feature", "observed", "baseline"} <= set(latest["lines"][0])
    # baselines against peers: bulk_lookup's own history, peer group and prior
    lookup = [b for b in view["baselines"] if b["detector"] == "bulk_lookup"]
    assert {b["feature"] for b in lookup} == {"distinct_accounts_per_hour",
                                              "distinct_accounts_per_day"}
    assert all(b["peer_group"] and b["prior_warning"] > 0 for b in lookup)
    # the timeline: events per hour, and the alerts in the hours they were raised
    assert sum(h["events"] for h in view["activity"]) > 0
    assert sum(h["alerts"] for h in view["activity"]) == len({a["alert_id"] for a in mine})
    assert orjson.loads(render_json(view)) == orjson.loads(orjson.dumps(view))  # JSON-safe


def test_the_view_merges_engines_and_lists_incidents() -> None:
    a, b = Engine(), Engine()
    a.entity_log.note_alert(alert("x1", 100.0, incident_id="inc-1"), 100.0)
    b.entity_log.note_alert(alert("x1", 200.0, severity="critical", incident_id="inc-1"), 200.0)
    b.entity_log.note_alert(alert("x2", 7300.0, incident_id="inc-2"), 7300.0)
    view = explain([a, b], "src_ip", "1.2.3.4")
    assert [(x["alert_id"], x["severity"]) for x in view["alerts"]] == [
        ("x2", "warning"), ("x1", "critical")]
    assert view["incidents"] == ["inc-1", "inc-2"]
    assert sum(h["alerts"] for h in view["activity"]) == 3  # one per engine that saw it


def test_the_view_reads_the_identity_directory() -> None:
    eng = Engine()
    for line in (b'{"event_id":"i1","ts":1750734000,"change":"key_issued","key_id":"k9",'
                 b'"owner_id":"svc-a"}',
                 b'{"event_id":"i2","ts":1750734100,"change":"key_revoked","key_id":"k9"}'):
        assert eng.process_line(line)[1] is None
    ident = explain([eng], "key", "k9")["identity"]
    assert ident["owner"] == "svc-a" and ident["revoked"].startswith("2025-06-24")
    assert explain([eng], "actor", "svc-a")["identity"]["keys"] == ["k9"]


@pytest.mark.parametrize(("kind", "ident", "says"), [
    ("bogus", "x", "unknown entity kind"), ("src_ip", "", "1 to 512"),
    ("key", "k" * 513, "1 to 512")])
def test_a_bad_kind_or_id_is_one_line(kind: str, ident: str, says: str) -> None:
    with pytest.raises(ExplainError, match=says):
        parse_entity(kind, ident)


# ---- the renderers ------------------------------------------------------------------------

class Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.attrs: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.attrs.update(k for k, _ in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def hostile_view() -> dict[str, Any]:
    eng = Engine()
    eng.entity_log.note_alert(alert(HOSTILE, 3600.0, ident=HOSTILE, detector=HOSTILE,
                                    severity=HOSTILE, incident_id=HOSTILE,
                                    summary=HOSTILE), 3600.0)
    rec = eng.entity_log.record("src_ip", HOSTILE)
    rec.alerts[0]["evidence"] = [{"feature": HOSTILE, "observed": HOSTILE,
                                  "baseline": HOSTILE, "detail": HOSTILE}]
    return explain([eng], "src_ip", HOSTILE)


def test_the_html_escapes_every_attacker_chosen_string() -> None:
    page = render_html(hostile_view())
    p = Tags()
    p.feed(page)
    assert "script" not in p.tags and "img" not in p.tags
    assert not any(a.startswith("on") for a in p.attrs)
    assert set(p.tags) <= {"html", "head", "meta", "title", "style", "body", "h1", "h2",
                           "h3", "p", "code", "table", "tr", "th", "td", "ul", "li", "svg",
                           "line", "rect", "text"}
    assert p.tags["svg"] == 1  # the id's "</svg>" did not close or open anything
    text = "".join(p.text)
    assert text.count(HOSTILE) >= 6  # id, detector, severity, summary, incident, evidence
    assert "script-src" not in HTML_HEADERS["Content-Security-Policy"]
    assert "default-src 'none'" in HTML_HEADERS["Content-Security-Policy"]


def test_the_timeline_is_an_inline_svg_of_the_hours_and_alerts(replayed: Any) -> None:
    eng, alerts = replayed
    a = next(x for x in alerts if x["entity"]["kind"] == "src_ip")
    view = explain([eng], "src_ip", a["entity"]["id"])
    p = Tags()
    p.feed(render_html(view))
    assert p.tags["svg"] == 1
    assert p.tags["rect"] == len(view["activity"])
    assert p.tags["line"] == 1 + len(view["alerts"])  # the axis and one tick per alert


def test_the_terminal_text_escapes_control_characters() -> None:
    out = render_text(hostile_view())
    assert "\x1b" not in out and "\u202e" not in out
    assert "\\x1b[2J" in out and "\\u202e" in out
    assert "alerts (1):" in out


# ---- the command --------------------------------------------------------------------------

def test_explain_from_a_replayed_file(tmp_path: Path, capsys: Any, replayed: Any) -> None:
    _, alerts = replayed
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(line if line.endswith(b"\n") else line + b"\n"
                                for line in sim_lines(SIM)))
    a = next(x for x in alerts if x["entity"]["kind"] == "key")
    assert main(["explain", "key", a["entity"]["id"], "--events", str(events),
                 "--output", "json"]) == 0
    view = orjson.loads(capsys.readouterr().out)
    assert a["alert_id"] in {x["alert_id"] for x in view["alerts"]}
    assert main(["explain", "key", a["entity"]["id"], "--events", str(events)]) == 0
    assert a["alert_id"] in capsys.readouterr().out
    assert main(["explain", "key", "no-such-key", "--events", str(events)]) == 1
    assert "nothing known" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "says"), [
    (["explain", "bogus", "x", "--events", "-"], "unknown entity kind"),
    (["explain", "key", "k"], "give --url URL"),
    (["explain", "key", "k", "--events", "/no/such/file"], "no such file"),
    (["explain", "key", "k", "--url", "ftp://x"], "not an http(s)://HOST:PORT URL"),
    (["explain", "key", "k", "--url", "http://127.0.0.1:9"], "http://127.0.0.1:9:"),
])
def test_explain_bad_input_is_one_line_and_exit_2(argv: list[str], says: str,
                                                  capsys: Any) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and "Traceback" not in err


# ---- the web page's answers ---------------------------------------------------------------

def test_the_web_page_answers(replayed: Any) -> None:
    from streams.explain_web import answer

    eng, alerts = replayed
    a = alerts[0]
    q = {"kind": a["entity"]["kind"], "id": a["entity"]["id"]}

    def view_of(kind: str, ident: str) -> dict[str, Any]:
        return explain([eng], kind, ident)

    status, ctype, headers, body = answer(q, "text/html,*/*", view_of)
    assert (status, ctype) == (200, "text/html")
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert a["alert_id"].encode() in body
    for query, accept in (({**q, "format": "json"}, ""), (q, "application/json")):
        status, ctype, _, body = answer(query, accept, view_of)
        assert (status, ctype) == (200, "application/json")
        assert a["alert_id"] in {x["alert_id"] for x in orjson.loads(body)["alerts"]}
    status, _, _, body = answer({"kind": "key", "id": "no-such-key"}, "", view_of)
    assert status == 404 and b"Nothing is known" in body
    status, ctype, _, body = answer({"kind": "<b>", "id": "x"}, "", view_of)
    assert (status, ctype) == (400, "text/plain") and b"unknown entity kind" in body
    assert answer({"kind": "key"}, "", view_of)[0] == 400  # no id


def test_the_log_changes_no_alert(replayed: Any) -> None:
    """The entity page only reads: the same events give the same alerts without its log."""
    _, alerts = replayed
    eng = Engine(EngineConfig(explain_alerts=0))
    off: list[dict[str, Any]] = []
    for line in sim_lines(SIM):
        off.extend(eng.process_line(line)[0])
    off.extend(eng.flush())
    assert off == alerts
    assert eng.entity_log.recs == {}


def test_a_worker_counts_an_alerted_entitys_activity_on_every_partition() -> None:
    from types import SimpleNamespace

    from streams.explain_web import watch_everywhere

    parts = {p: SimpleNamespace(engine=Engine()) for p in (0, 1)}
    rt = SimpleNamespace(parts=parts)
    watch_everywhere(rt, alert("x1", 100.0, kind="key", ident="k1"))
    watch_everywhere(rt, {"entity": {"kind": "key", "id": 7}})  # not an id: ignored
    for p, st in parts.items():
        assert set(st.engine.entity_log.recs) == {("key", "k1")}
        line = (b'{"event_id":"a%d","ts":1750734765,"actor_id":"c-%d","subject_id":"c-1",'
                b'"resource":"address","src_ip":"52.95.110.1","key_id":"k1"}' % (p, p))
        st.engine.process_line(line)
    view = explain([st.engine for st in parts.values()], "key", "k1")
    assert sum(h["events"] for h in view["activity"]) == 2  # one event on each partition


def test_unusual_hour_describes_a_principal_against_its_hours_and_peers() -> None:
    path = Path(__file__).parent / "scenarios" / "unusual_hour" / "night_bulk_reads.jsonl"
    eng = Engine()
    alerts: list[dict[str, Any]] = []
    for line in path.read_bytes().splitlines()[1:]:  # the first line is the scenario header
        alerts.extend(eng.process_line(line)[0])
    alerts.extend(eng.flush())
    night = next(a for a in alerts if a["detector"] == "unusual_hour")
    view = explain([eng], night["entity"]["kind"], night["entity"]["id"])
    (line,) = [b for b in view["baselines"] if b["detector"] == "unusual_hour"]
    assert line["observed"] < line["rare_below"]  # the hour it was paged for was a rare one
    assert line["hour_local"] not in line["own_hours"] and line["own_slots"] > 0  # not its hours
    assert night["alert_id"] in {a["alert_id"] for a in view["alerts"]}


T0 = 1_750_000_000.0  # an event time inside the accepted years


def _hours_counted(log: EntityLog, kind: str, ident: str) -> int:
    rec = log.record(kind, ident)
    assert rec is not None
    return sum(v[0] for v in rec.hours.values())


def test_activity_of_kept_entities_is_counted_by_every_id_after_evictions_and_a_restore(
        ) -> None:
    """``note_event``'s quick pass over events that name no kept entity (issue 14, speed)
    misses none that do: each kind of id, an AS, an entity kept again after its eviction,
    and after a restore from the checkpoint format (where the quick index is rebuilt)."""
    from detectors.events import decode
    from detectors.geo import NetInfo

    log = EntityLog()
    kept = [("actor", "c-1"), ("src_ip", "1.2.3.4"), ("key", "k-1"), ("session", "s-1"),
            ("subnet", "5.6.7.0/24"), ("asn", "AS64500"), ("account", "c-9")]
    for i, (kind, ident) in enumerate(kept):
        log.note_alert(alert(f"a{i}", 0.0, kind=kind, ident=ident), 0.0)

    def event(net: NetInfo | None = None, **over: Any) -> Any:
        e = decode(orjson.dumps({"event_id": "x", "ts": T0, "actor_id": "c-2",
                                 "subject_id": "c-2", "resource": "r", "src_ip": "9.9.9.9",
                                 **over}))
        e.net = net or NetInfo("KR", 64501, "", "isp", "9.9.9.0/24", 4)
        return e

    def count(lg: EntityLog) -> dict[tuple[str, str], int]:
        return {k: _hours_counted(lg, *k) for k in kept}

    log.note_event(event())  # names none of them
    assert set(count(log).values()) == {0}
    for ev in (event(actor_id="c-1"), event(src_ip="1.2.3.4"), event(key_id="k-1"),
               event(session_id="s-1")):
        log.note_event(ev)
    log.note_event(event(NetInfo("KR", None, "", "isp", "5.6.7.0/24", 4)))
    log.note_event(event(NetInfo("KR", 64500, "", "isp", "9.9.9.0/24", 4)))
    login = decode(orjson.dumps({"event_id": "l", "ts": T0, "account_id": "c-9",
                                 "outcome": "failure", "src_ip": "9.9.9.9"}))
    log.note_event(login)
    assert count(log) == dict.fromkeys(kept, 1)

    assert log.shed(3) > 0 and len(log.recs) <= 3  # the least recently seen go; then back
    for i, k in enumerate(kept):
        if log.record(*k) is None:
            log.note_alert(alert(f"b{i}", 7200.0, kind=k[0], ident=k[1]), 7200.0)
    restored = S.decode(S.encode(log))
    for lg in (log, restored):
        before = count(lg)
        lg.note_event(event(actor_id="c-1", key_id="k-1"))
        after = count(lg)
        assert {k for k in kept if after[k] != before[k]} == {("actor", "c-1"), ("key", "k-1")}


def test_the_quick_index_of_kept_ids_stays_bounded_under_evictions() -> None:
    """Evicted ids do not pile up in the quick index: it is rebuilt from the records."""
    log = EntityLog()
    for i in range(20_000):
        log.note_alert(alert(f"a{i}", float(i), ident=f"10.0.{i // 256}.{i % 256}"), float(i))
        log.shed(10)
    assert len(log.recs) <= 11
    assert len(log._ids) <= 2 * len(log.recs) + 1024
