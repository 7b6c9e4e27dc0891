"""Issue 14 item 5: logins that reach the engine up to 60 s after the reads they issued (in
file order) change no verdict: ``unissued_session`` waits for the login stream's event time.

The broker half (replay against the worker on such a file) is in tests/test_late_parity.py.
"""

from __future__ import annotations

from typing import Any

from detectors.engine import Engine, EngineConfig
from simulation import SimConfig, simulate
from tests.helpers import delay_logins, ts_seconds

T = 1_750_723_200  # 2025-06-24T00:00:00Z

SIM = SimConfig(seed=23, customers=3000, hours=4, attacks=("coupang",), attack_start_hour=1.0)






def replay(events: list[dict[str, Any]], **cfg: Any) -> list[dict[str, Any]]:
    eng = Engine(EngineConfig(**cfg))
    out: list[dict[str, Any]] = []
    for e in events:
        out.extend(eng.process_obj(dict(e))[0])
    out.extend(eng.flush())
    return out


def test_late_logins_in_file_order_give_the_same_alert_ids_and_the_forged_tokens_still_page() -> None:
    events = sorted(simulate(SIM).events, key=lambda e: ts_seconds(e["ts"]))
    late, moved = delay_logins(events, seed=5)
    assert moved >= 10 and late != events  # the file really has late logins
    sorted_alerts = replay(events)
    late_alerts = replay(late)
    assert sorted({a["alert_id"] for a in late_alerts}) == sorted({a["alert_id"] for a in sorted_alerts})
    forged = [a for a in late_alerts if a["detector"] == "unissued_session"
              and a["entity"]["kind"] == "key" and a["severity"] == "critical"]
    assert forged, "the forged-token attack must still page critical"


def access(eid: str, ts: float, actor: str, session: str, key: str = "kid-x") -> dict[str, Any]:
    return {"event_id": eid, "ts": ts, "actor_id": actor, "subject_id": actor,
            "resource": "address", "src_ip": "121.131.0.7", "session_id": session,
            "key_id": key, "token_issued_at": ts - 1}


def login(eid: str, ts: float, account: str, session: str) -> dict[str, Any]:
    return {"event_id": eid, "ts": ts, "account_id": account, "outcome": "success",
            "src_ip": "121.131.0.7", "session_id": session}


def _run(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[list[str]]]:
    """Alerts at the end and the detectors that spoke after each event."""
    eng = Engine(EngineConfig(detectors=("unissued_session",)))
    steps, out = [], []
    for e in events:
        a = eng.process_obj(e)[0]
        steps.append([x["detector"] for x in a])
        out.extend(a)
    out.extend(eng.flush())
    return out, steps


def test_a_login_up_to_60s_late_clears_the_read_and_the_verdict_waits_for_the_login_stream() -> None:
    start = {"event_id": "k", "ts": T, "change": "key_issued", "key_id": "kid-x"}
    quiet = [login(f"o{i}", T + 7000 + 10 * i, f"o-{i}", f"os-{i}") for i in range(6)]
    # read at +7000, its login dated +6999 arrives after logins dated up to +7050: not paged
    evs = [start, access("a1", T + 7000, "c-1", "s-1"), *quiet, login("l1", T + 6999, "c-1", "s-1")]
    alerts, _ = _run(evs)
    assert alerts == []
    # the same read with no login: judged at the first login dated >= ts + 60 s, not before
    evs = [start, access("a1", T + 7000, "c-1", "s-1"), *quiet,
           login("o9", T + 7060, "o-9", "os-9")]
    alerts, steps = _run(evs)
    assert [a["detector"] for a in alerts] == ["unissued_session"]
    assert steps[-1] == ["unissued_session"] and not any(steps[:-1])


def test_with_no_login_stream_the_read_is_judged_on_the_engine_clock() -> None:
    start = {"event_id": "k", "ts": T, "change": "key_issued", "key_id": "kid-x"}
    eng = Engine(EngineConfig(detectors=("unissued_session",)))
    eng.process_obj(start)
    assert eng.process_obj(access("a1", T + 7000, "c-1", "s-1"))[0] == []
    assert eng.advance(T + 7000 + 60 + 300 - 1) == []
    assert [a["detector"] for a in eng.advance(T + 7000 + 60 + 300)] == ["unissued_session"]


def test_checks_that_need_no_login_stay_immediate() -> None:
    start = {"event_id": "k", "ts": T, "change": "key_issued", "key_id": "kid-x"}
    old = access("a1", T + 7000, "c-1", "s-1") | {"token_issued_at": T + 7000 - 30 * 86400}
    eng = Engine(EngineConfig(detectors=("unissued_session",)))
    eng.process_obj(start)
    assert [a["detector"] for a in eng.process_obj(old)[0]] == ["unissued_session"]


def test_pending_reads_survive_a_checkpoint_and_a_late_login_still_clears_them() -> None:
    from detectors.geo import default_geo
    from streams import snapshot as S
    from streams.checkpoint import restore, snapshot

    keys = S.StateKeys(["test-late-key-0123456789"])
    start = {"event_id": "k", "ts": T, "change": "key_issued", "key_id": "kid-x"}
    eng = Engine(EngineConfig(detectors=("unissued_session",)))
    for e in (start, access("a1", T + 7000, "c-1", "s-1"), access("a2", T + 7001, "c-2", "s-2")):
        eng.process_obj(e)
    # the worker's checkpoint (allow-listed classes only), restored as after a restart
    blob = snapshot(eng, {"data-access": 3}, keys=keys, context="t/0")
    back, _ = restore(blob, default_geo(), eng.ctx.directory, keys=keys, context="t/0")
    out = back.process_obj(login("l1", T + 6999, "c-1", "s-1"))[0]  # late, inside 60 s
    out += back.process_obj(login("o0", T + 7030, "o-0", "os-0"))[0]  # the stream goes on
    out += back.process_obj(login("o1", T + 7100, "o-1", "os-1"))[0]  # logins pass both reads
    assert [a["event_ids"] for a in out] == [["a2"]]


def _lagging_pipeline(forged: bool) -> list[dict[str, Any]]:
    """A login stream with a login every 10 s; the logins dated +7000 to +7200 reach us 200 s
    late, in the file after on-time logins dated up to 200 s after them (issue 14 item 6: a
    login pipeline minutes behind, then catching up). Each session is read 5 s after its
    login, as it happens. ``forged``: one more read of a session no login issued."""
    start = {"event_id": "k", "ts": T, "change": "key_issued", "key_id": "kid-x"}
    timed: list[tuple[float, dict[str, Any]]] = []
    for i in range(200):
        t = T + 6000 + 10 * i
        lag = 200.0 if T + 7000 <= t < T + 7200 else 0.0
        timed.append((t + lag, login(f"l{i}", t, f"c-{i}", f"s-{i}")))
        timed.append((t + 5, access(f"a{i}", t + 5, f"c-{i}", f"s-{i}")))
    if forged:
        timed.append((T + 7301, access("f1", T + 7301, "c-x", "s-forged")))
    return [start, *(e for _, e in sorted(timed, key=lambda p: p[0]))]


def test_a_login_pipeline_minutes_behind_for_some_logins_pages_nothing() -> None:
    """The stream jumps over the lagging logins (the reads there have no login dated near
    them yet: they wait), and the logins that come 200 s late teach the wait."""
    evs = _lagging_pipeline(forged=False)
    assert replay(evs, detectors=("unissued_session",)) == []
    eng = Engine(EngineConfig(detectors=("unissued_session",)))
    for e in evs:
        eng.process_obj(e)
    # the login dated +7000 came when the stream had reached +7190: half as much again
    assert eng.detectors["unissued_session"].wait() == 1.5 * 190  # type: ignore[attr-defined]


def test_a_forged_token_still_pages_while_the_login_pipeline_lags() -> None:
    """The wait is bounded (the learned lateness, at most login_late_max): a session no login
    issued is judged once the login stream has passed it by that wait."""
    out = replay(_lagging_pipeline(forged=True), detectors=("unissued_session",))
    assert [(a["detector"], a["event_ids"]) for a in out] == [("unissued_session", ["f1"])]
    wait = next(x for x in out[0]["evidence"] if x["feature"] == "issuing_login")["detail"]
    assert "the wait follows how late logins came lately" in wait


def test_without_late_logins_a_forged_token_is_judged_after_login_lateness() -> None:
    """In a steady login stream (in order) the wait stays login_lateness (60 s): the read is
    judged at the first login dated 60 s after it, as before."""
    start = {"event_id": "k", "ts": T, "change": "key_issued", "key_id": "kid-x"}
    evs: list[dict[str, Any]] = [start, access("f1", T + 7000, "c-x", "s-forged")]
    evs += [login(f"o{i}", T + 6990 + 10 * i, f"o-{i}", f"os-{i}") for i in range(1, 8)]
    alerts, steps = _run(evs)
    assert [a["event_ids"] for a in alerts] == [["f1"]]
    assert steps[-1] == ["unissued_session"] and not any(steps[:-1])  # the login at +7060
