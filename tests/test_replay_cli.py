"""`accesswatch replay` as a user runs it: files and stdin, alerts out, rejects, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

SCENARIO = Path(__file__).parent / "scenarios" / "unissued_session" / "forged_tokens_legacy_key.jsonl"


def aw(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], input=stdin,
                          capture_output=True, timeout=120)


def events_of(path: Path) -> bytes:
    return b"\n".join(path.read_bytes().splitlines()[1:]) + b"\n"


def test_replay_file_writes_alerts_as_json_lines_and_summary(tmp_path: Path) -> None:
    f = tmp_path / "ev.jsonl"
    f.write_bytes(events_of(SCENARIO))
    r = aw("replay", str(f), "--detectors", "unissued_session")
    assert r.returncode == 0, r.stderr
    alerts = [orjson.loads(x) for x in r.stdout.splitlines()]
    assert [a["severity"] for a in alerts] == ["warning", "critical"]
    assert alerts[0]["entity"] == {"kind": "key", "id": "kid-legacy-2019"}
    err = r.stderr.decode()
    assert "events: 6 (logins 1, access 5" in err
    assert "unissued_session: critical 1, warning 1" in err
    assert "events/s" in err


def test_replay_stdin_and_files_in_order_give_the_same_alerts(tmp_path: Path) -> None:
    data = events_of(SCENARIO)
    f = tmp_path / "ev.jsonl"
    f.write_bytes(data)
    a = aw("replay", "-", stdin=data)
    b = aw("replay", str(f))
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout and a.stdout


def test_rejects_file_lists_every_bad_line_and_the_run_goes_on(tmp_path: Path) -> None:
    good = events_of(SCENARIO).splitlines()
    bad = [b"", b"[1]", b"{nope", b'{"event_id":"x","ts":1750734765,"account_id":"a","outcome":"success","src_ip":"1.1.1.1"}',
           b"\xff\xfe", b'{"a":' + b"1" * 70000 + b"}"]
    lines = good[:2] + bad + good[2:]
    f = tmp_path / "mixed.jsonl"
    f.write_bytes(b"\n".join(lines) + b"\n")
    rej = tmp_path / "rej.jsonl"
    r = aw("replay", str(f), "--rejects", str(rej))
    assert r.returncode == 0, r.stderr
    rows = [orjson.loads(x) for x in rej.read_bytes().splitlines()]
    assert [x["line"] for x in rows] == [3, 4, 5, 6, 7, 8]
    assert [x["reason"] for x in rows] == ["invalid_json", "not_object", "invalid_json",
                                          "missing_field", "invalid_json", "too_large"]
    assert rows[3]["field"] == "session_id"
    assert any(orjson.loads(x)["severity"] == "critical" for x in r.stdout.splitlines())
    assert "rejected: 6" in r.stderr.decode()


def test_missing_file_is_one_line_and_exit_2() -> None:
    r = aw("replay", "/no/such/file.jsonl")
    assert r.returncode == 2
    err = r.stderr.decode().strip()
    assert err == "accesswatch replay: no such file: /no/such/file.jsonl"
    assert "Traceback" not in err


def test_bad_flag_is_one_line_and_exit_2() -> None:
    r = aw("replay", "--frobnicate", "x")
    assert r.returncode == 2
    err = r.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "unrecognized arguments: --frobnicate" in err[0]


def test_unknown_detector_is_one_line_and_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "e.jsonl"
    f.write_bytes(b"")
    r = aw("replay", str(f), "--detectors", "telepathy")
    assert r.returncode == 2
    assert r.stderr.decode().strip() == "accesswatch replay: unknown detector(s): telepathy"
