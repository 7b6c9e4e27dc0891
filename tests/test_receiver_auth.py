"""The reference receiver: a shared secret for every read and write, and page lines that
no field of an alert can break, move or forge."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from streams.httpauth import Authenticator
from streams.webhook_receiver import ReceiverServer, page_line, serve, visible

TOKEN = "receiver-secret"  # noqa: S105 (a test credential)
GOOD = {"Authorization": f"Bearer {TOKEN}"}
FORGED_ID = "kid-1\n RESOLVED critical all clear \x1b[2K\x1b[1A\x1b[32mOK\x1b[0m\u202egnp.exe"


def webhook(entity_id: str = "kid-1", summary: str = "Key kid-1 read 4,210 customers.") -> bytes:
    return json.dumps({
        "version": "4", "status": "firing", "receiver": "oncall-pager", "groupKey": "{}:{}",
        "alerts": [{
            "status": "firing", "fingerprint": "fp-" + str(abs(hash(entity_id))),
            "startsAt": "2025-06-15T15:06:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "labels": {"alertname": "AccesswatchAnomaly", "severity": "critical",
                       "detector": "bulk_lookup", "entity_kind": "key", "entity_id": entity_id},
            "annotations": {"summary": summary},
        }],
    }).encode()


def request(url: str, body: bytes | None = None, headers: dict[str, str] | None = None
            ) -> tuple[int, dict[str, Any], Any]:
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")


@pytest.fixture
def rcv(tmp_path: Path) -> Any:
    srv = serve("127.0.0.1", 0, tmp_path / "pages.jsonl", echo=None,
                auth=Authenticator(bearer=TOKEN))
    yield srv
    srv.stop()


def test_unauthenticated_post_is_refused_counted_and_not_stored(rcv: ReceiverServer) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": TOKEN}):
        code, hdrs, _ = request(f"{rcv.url}/oncall-pager", webhook(), headers)
        assert code == 401, headers
        assert hdrs["WWW-Authenticate"] == 'Bearer realm="accesswatch"'
    assert rcv.received() == []  # ef303a3 stored (and printed) every one of them
    assert rcv.store.stats()["unauthorized"] == 4
    assert rcv.store.stats()["payloads"] == 0
    assert not rcv.store.path.exists() or rcv.store.path.read_text() == ""
    code, _, got = request(f"{rcv.url}/oncall-pager", webhook(), GOOD)
    assert (code, got) == (200, {"new": 1, "alerts": 1})
    assert len(rcv.received()) == 1


def test_history_and_stats_only_for_an_authenticated_reader(rcv: ReceiverServer) -> None:
    request(f"{rcv.url}/oncall-pager", webhook(), GOOD)
    for path in ("/received", "/received?receiver=oncall-pager", "/stats"):
        code, _, got = request(f"{rcv.url}{path}")
        assert code == 401 and got == {"error": "unauthorized"}, path  # ef303a3: 200 + pages
    code, _, got = request(f"{rcv.url}/received", headers=GOOD)
    assert code == 200 and [r["labels"]["entity_id"] for r in got] == ["kid-1"]
    assert request(f"{rcv.url}/-/healthy")[0] == 200  # liveness tells nothing


def test_basic_auth_as_alertmanager_sends_it(tmp_path: Path) -> None:
    srv = serve("127.0.0.1", 0, tmp_path / "p.jsonl", echo=None,
                auth=Authenticator(users={"alertmanager": "pw"}))
    try:
        good = {"Authorization": "Basic " + base64.b64encode(b"alertmanager:pw").decode()}
        bad = {"Authorization": "Basic " + base64.b64encode(b"alertmanager:px").decode()}
        assert request(f"{srv.url}/soc-channel", webhook(), bad)[0] == 401
        assert request(f"{srv.url}/soc-channel", webhook(), good)[0] == 200
    finally:
        srv.stop()


def test_a_forged_id_prints_on_one_line_with_its_escapes_visible(tmp_path: Path) -> None:
    printed = tmp_path / "stdout.txt"
    with printed.open("w") as echo:
        srv = serve("127.0.0.1", 0, tmp_path / "pages.jsonl", echo=echo,
                    auth=Authenticator(bearer=TOKEN))
        try:
            code, _, _ = request(f"{srv.url}/oncall-pager",
                                 webhook(FORGED_ID, summary="x\r\n\x9b31m\u2028y\u2066z"), GOOD)
            assert code == 200
        finally:
            srv.stop()
    out = printed.read_text()
    lines = out.splitlines()
    assert len(lines) == 1, out  # ef303a3: a second line "RESOLVED critical all clear"
    [line] = lines
    assert line.startswith("PAGE [oncall-pager] FIRING critical")
    assert "\\n RESOLVED critical all clear \\x1b[2K\\x1b[1A\\x1b[32mOK\\x1b[0m\\u202egnp.exe" in line
    assert line.endswith(": x\\r\\n\\x9b31m\\u2028y\\u2066z")
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in out.rstrip("\n"))
    # the stored record keeps the original text (JSON escapes it)
    [rec] = [json.loads(x) for x in (tmp_path / "pages.jsonl").read_text().splitlines()]
    assert rec["labels"]["entity_id"] == FORGED_ID


def test_visible_is_unambiguous_and_keeps_ordinary_text() -> None:
    assert visible("Key kid-1 read 4,210 customers (서울, Zürich)") == (
        "Key kid-1 read 4,210 customers (서울, Zürich)")
    assert visible("a\\nb") == "a\\\\nb"  # a typed backslash-n is not a newline's escape
    assert visible("a\nb") == "a\\nb"
    assert visible("\u200b\u200f\u061c\x00\x7f") == "\\u200b\\u200f\\u061c\\x00\\x7f"
    rec = {"receiver": "r\n", "status": "firing\x1b", "labels": {}, "annotations": {}}
    assert "\n" not in page_line(rec) and "\x1b" not in page_line(rec)


def test_receiver_requires_a_secret() -> None:
    with pytest.raises(ValueError, match="shared secret"):
        serve("127.0.0.1", 0, "/nonexistent/x.jsonl", echo=None, auth=Authenticator())
    r = subprocess.run([sys.executable, "-m", "streams.webhook_receiver", "--port", "0"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "shared secret is required" in r.stderr
    assert "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "streams.webhook_receiver", "--port", "0",
                        "--bearer-token-file", "/nonexistent/token"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and r.stderr.startswith("error: bearer token file")
    assert len(r.stderr.strip().splitlines()) == 1
