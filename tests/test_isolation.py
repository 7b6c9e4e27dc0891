"""No single event or timer can stop the engine: a detector that raises is isolated, counted,
logged and reported as ``internal_error``; the other detectors and later events go on."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors.engine import INTERNAL_ERROR, Engine, EngineConfig
from detectors.events import Event, decode_obj
from detectors.unissued_session import UnissuedSession
from tests.helpers import Faulty, access, watch_start

ROOT = Path(__file__).resolve().parent.parent
# these unit tests count event time from the epoch: decoding accepts 1970 on for them
CFG = EngineConfig(ts_min_year=1970)
SCENARIO = ROOT / "tests" / "scenarios" / "unissued_session" / "forged_tokens_legacy_key.jsonl"






def test_a_raising_hook_is_reported_and_the_other_detectors_still_see_the_event(
        caplog: pytest.LogCaptureFixture) -> None:
    eng = Engine(CFG, detectors=[Faulty(), UnissuedSession()])
    eng.process_obj(watch_start(0))
    with caplog.at_level(logging.ERROR, logger="accesswatch.engine"):
        alerts, rej = eng.process_obj(access("boom-1", 1000, "c-1", "forged"))
    assert alerts == []
    assert rej is not None and rej.reason == INTERNAL_ERROR
    assert rej.field == "revoked_credential" and rej.detail == "on_access: KeyError"
    assert eng.internal_errors == {"revoked_credential": 1}
    assert eng.rejected[INTERNAL_ERROR] == 1
    # unissued_session saw the event too: its timer fires with the forged session
    assert [a["detector"] for a in eng.flush()] == ["unissued_session"]
    rec = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(rec) == 1 and rec[0].exc_info is not None  # with its traceback
    assert "c-secret-account" not in rec[0].getMessage() and "c-1" not in rec[0].getMessage()
    # the next event goes through as usual
    assert eng.process_obj(access("ok-2", 1001, "c-2", "s-2"))[1] is None


def test_repeated_failures_are_counted_each_time_but_logged_rarely(
        caplog: pytest.LogCaptureFixture) -> None:
    eng = Engine(CFG, detectors=[Faulty()])
    with caplog.at_level(logging.ERROR, logger="accesswatch.engine"):
        for i in range(1500):
            assert eng.process_obj(access(f"boom-{i}", 1000 + i, "c-1", "s"))[1] is not None
    assert eng.internal_errors["revoked_credential"] == 1500
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2  # 1st, 1000th


class TimerBomb(UnissuedSession):
    """unissued_session whose timer raises once."""

    armed = True

    def on_time(self, now: float, ctx: Any) -> Any:
        if self.armed:
            self.armed = False
            raise RuntimeError("timer")
        return super().on_time(now, ctx)


def test_a_raising_timer_is_consumed_and_later_timers_fire() -> None:
    eng = Engine(CFG, detectors=[TimerBomb()])
    eng.process_obj(watch_start(0))
    eng.process_obj(access("a1", 1000, "c-1", "forged-1"))
    # the verdict waits login_lateness + login_quiet (60 + 300 s) with no login stream (issue
    # 14 item 5; was a 5 s grace): the timer is due at 1360
    assert eng.advance(1361) == []  # the timer raised: counted, and popped
    assert eng.internal_errors == {"unissued_session": 1}
    assert eng.ctx._timers == []
    eng.process_obj(access("a2", 2000, "c-2", "forged-2"))
    assert [a["detector"] for a in eng.advance(2361)] == ["unissued_session"]


def test_a_finding_whose_time_cannot_be_printed_is_dropped_without_poisoning_episodes() -> None:
    eng = Engine(CFG, detectors=[UnissuedSession()])
    eng.process_obj(watch_start(0))
    eng.process_obj(access("a1", 1000, "c-1", "forged-1"))
    # a time past year 9999 (a string time was not range-checked at ef303a3; decoding
    # rejects it now, so the event is built past the decoder): iso() fails on it
    bad = access("a2", 0, "c-2", "forged-2")
    bad.pop("token_issued_at")
    ev = decode_obj(bad, policy=CFG.decode_policy())
    assert isinstance(ev, Event)
    ev.ts = 253402383540.0  # 9999-12-31T23:59:59-23:59
    alerts, rej = eng.process(ev)
    alerts += eng.flush()
    assert [a["ts"][:4] for a in alerts] == ["1970"]  # the printable finding is an alert
    assert eng.internal_errors == {"unissued_session": 1}
    assert all(ep.last < 253402300800.0 for ep in eng.episodes.values())


def test_advance_sweeps_idle_state_without_new_events() -> None:
    """Expiry runs on the watermark: idle entities go even when no event comes (ef303a3
    swept only when an event set a new maximum)."""
    eng = Engine(EngineConfig(detectors=("revoked_credential", "unusual_hour"), ts_min_year=1970))
    eng.process_obj({"event_id": "k", "ts": 1000, "change": "key_revoked", "key_id": "kid-x"})
    for i in range(50):
        eng.process_obj({**access(f"e{i}", 1000 + i, f"emp-{i}", "s"), "actor_type": "employee"})
    before = eng.tracked()
    assert before["key"] == 1 and before["actor"] >= 50
    rc = eng.detectors["revoked_credential"]
    eng.advance(1050 + rc.idle + 2 * eng.config.expire_every)
    assert eng.detectors["revoked_credential"].tracked() == {"key": 0, "actor": 0}


# ---- replay, as a user runs it ---------------------------------------------------------

PATCHED = """
import sys
from detectors import revoked_credential as m
orig = m.RevokedCredential.on_access
def on_access(self, e, ctx):
    if e.event_id.startswith("boom"):
        raise KeyError("c-secret")
    return orig(self, e, ctx)
m.RevokedCredential.on_access = on_access
from streams.cli import main
sys.exit(main(sys.argv[1:]))
"""


def aw(*args: str, script: str | None = None) -> subprocess.CompletedProcess[bytes]:
    cmd = [sys.executable, "-c", script] if script else [sys.executable, "-m", "streams.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, timeout=120, cwd=ROOT)


def events(tmp_path: Path, extra: list[dict[str, Any]]) -> Path:
    f = tmp_path / "ev.jsonl"
    lines = SCENARIO.read_bytes().splitlines()[1:]
    f.write_bytes(b"\n".join([*lines, *(orjson.dumps(e) for e in extra)]) + b"\n")
    return f


def test_replay_with_a_raising_detector_ends_with_a_summary_and_the_event_in_rejects(
        tmp_path: Path) -> None:
    f = events(tmp_path, [access("boom-1", 1750734900, "c-7", "s-7")])
    rej = tmp_path / "rej.jsonl"
    r = aw("replay", str(f), "--rejects", str(rej), script=PATCHED)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "Traceback" not in err
    assert "internal errors: 1 (revoked_credential 1" in err
    assert "rejected: 1 (internal_error 1)" in err
    assert "unissued_session: critical 1, warning 2" in err  # the other detectors saw it
    recs = [orjson.loads(x) for x in rej.read_bytes().splitlines()]
    assert [(x["line"], x["reason"], x["field"]) for x in recs] == [
        (7, "internal_error", "revoked_credential")]


def test_replay_of_a_year_9999_time_ends_with_exit_0_and_no_traceback(tmp_path: Path) -> None:
    """The issue's event: exit 1 with a traceback at ef303a3."""
    bad = access("y9999", 0, "c-9", "zz")
    bad["ts"] = "9999-12-31T23:59:59-23:59"
    bad.pop("token_issued_at")
    f = events(tmp_path, [bad])
    r = aw("replay", str(f))
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "Traceback" not in err
    assert "events:" in err and "alerts:" in err


@pytest.mark.parametrize("case", ["missing", "directory", "unreadable", "fifo_dir"])
def test_replay_bad_inputs_are_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    if case == "missing":
        path, expect = tmp_path / "nope.jsonl", "no such file"
    elif case == "directory":
        path, expect = tmp_path, "is a directory"
    elif case == "unreadable":
        # root reads any file; a file under a path component that is a file fails for all
        plain = tmp_path / "plain"
        plain.write_text("x")
        path, expect = plain / "ev.jsonl", "cannot read"
    else:
        path, expect = tmp_path / "sub" / ".." / "nope", "no such file"
    r = aw("replay", str(path))
    err = r.stderr.decode().strip()
    assert r.returncode == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("accesswatch replay: ")
    assert expect in err


def test_replay_rejects_file_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    f = events(tmp_path, [])
    r = aw("replay", str(f), "--rejects", str(tmp_path))
    err = r.stderr.decode().strip()
    assert r.returncode == 2 and len(err.splitlines()) == 1 and "cannot write" in err
