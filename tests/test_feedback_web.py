"""``POST /feedback`` on the worker's web port (issue 18 item 3): the verdict the command
writes, through the same topic, behind the port's authentication."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors.feedback import parse
from streams.feedback_web import answer, attach, handle

JSON = "application/json"
ALICE = "Basic " + base64.b64encode(b"alice:s3cret-pw").decode()


def post(body: Any, ctype: str = JSON, auth: str | None = ALICE,
         fail: bool = False) -> tuple[int, str, bytes, list[tuple[bytes, bytes]]]:
    sent: list[tuple[bytes, bytes]] = []

    async def send(key: bytes, value: bytes) -> None:
        if fail:
            raise ConnectionError("broker down")
        sent.append((key, value))

    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    status, out_type, out = asyncio.run(handle(raw, ctype, auth, 1700000000.0, send,
                                               "access-feedback"))
    return status, out_type, out, sent


def test_a_verdict_on_an_incident_is_written_keyed_by_its_id() -> None:
    status, ctype, body, sent = post({"id": "in-0123456789abcdef01234567",
                                      "verdict": "malicious", "reason": "real attack",
                                      "analyst": "mallory"})
    assert (status, ctype) == (202, JSON)
    assert [k for k, _ in sent] == [b"in-0123456789abcdef01234567"]
    msg = orjson.loads(sent[0][1])
    assert msg == orjson.loads(body)
    # what every worker's engine reads: the command's message; the analyst is the
    # authenticated user, not the name the body claims
    v = parse(msg)
    assert not isinstance(v, str)
    assert (v.alert_id, v.verdict, v.reason, v.analyst, v.ts) == (
        "in-0123456789abcdef01234567", "malicious", "real attack", "alice", 1700000000.0)
    assert msg["feedback_id"]


@pytest.mark.parametrize(("body", "ctype", "status", "says"), [
    ({"id": "aw-1", "verdict": "benign", "reason": "x"}, "application/x-www-form-urlencoded",
     415, "application/json"),
    ({"id": "aw-1", "verdict": "benign", "reason": "x"}, "text/plain", 415, "application/json"),
    (b"{not json", JSON, 400, "not JSON"),
    ([1, 2], JSON, 400, "not a JSON object"),
    ({"verdict": "benign", "reason": "x"}, JSON, 400, "id must be"),
    ({"id": "aw-1", "verdict": "fine", "reason": "x"}, JSON, 400, "verdict must be"),
    ({"id": "aw-1", "verdict": "benign", "reason": ""}, JSON, 400, "reason must be"),
    (b"{" + b" " * 20000 + b"}", JSON, 400, "over"),
])
def test_a_bad_request_is_one_line_and_writes_nothing(body: Any, ctype: str, status: int,
                                                       says: str) -> None:
    got, out_type, out, sent = post(body, ctype)
    assert (got, out_type, sent) == (status, "text/plain", [])
    assert says in out.decode() and out.decode().count("\n") == 1


def test_a_broker_that_does_not_take_it_is_a_503() -> None:
    status, _, out, sent = post({"id": "aw-1", "verdict": "benign", "reason": "x"}, fail=True)
    assert (status, sent) == (503, [])
    assert b"access-feedback" in out


def test_without_credentials_the_analyst_is_the_bodys_word() -> None:
    status, out = answer(orjson.dumps({"id": "aw-1", "verdict": "benign", "reason": "x",
                                       "analyst": "bob"}), JSON, "Bearer t0ken", 1.0)
    assert status == 202 and isinstance(out, dict) and out["analyst"] == "bob"


def test_the_endpoint_exists_only_behind_credentials(tmp_path: Path) -> None:
    """On an open web port anyone reaching it could silence alerts: no route there."""
    from streams.settings import Settings

    pages: list[str] = []

    class App:
        def topic(self, *a: Any, **kw: Any) -> Any:
            return object()

        def page(self, path: str) -> Any:
            pages.append(path)
            return lambda view: view

    assert attach(App(), Settings()) is False and pages == []
    users = tmp_path / "users"
    users.write_text("alice:s3cret-pw\n")
    assert attach(App(), Settings(web_basic_auth_file=str(users))) is True
    assert pages == ["/feedback"]


def test_the_workers_web_port_serves_it_behind_its_authentication(tmp_path: Path) -> None:
    """The route in the real worker app (``create_app``), on aiohttp's test server: refused
    without credentials, answered with them; absent on a port without credentials."""
    from dataclasses import replace

    from aiohttp.test_utils import TestClient, TestServer

    from streams.app import create_app
    from streams.settings import Settings

    users = tmp_path / "users"
    users.write_text("alice:s3cret-pw\n")

    async def statuses(s: Settings, requests: list[tuple[dict[str, str], bytes]]) -> list[int]:
        app = create_app(s)
        app.web.init_server()
        out = []
        async with TestClient(TestServer(app.web.web_app, host="127.0.0.1")) as client:
            for headers, body in requests:
                resp = await client.post("/feedback", headers=headers, data=body)
                await resp.read()
                out.append(resp.status)
        return out

    def settings(**kw: Any) -> Settings:
        return replace(Settings.from_env({}), web_port=16067,
                       state_keys=("test-state-key-0123456789",), **kw)

    bad = orjson.dumps({"id": "aw-1", "verdict": "maybe", "reason": "x"})
    guarded = settings(web_basic_auth_file=str(users))
    assert asyncio.run(statuses(guarded, [
        ({"Content-Type": JSON}, bad),  # no credentials
        ({"Content-Type": JSON, "Authorization": ALICE}, bad),  # credentials, bad verdict
        ({"Content-Type": "text/plain", "Authorization": ALICE}, bad),  # a form's type
    ])) == [401, 400, 415]
    assert asyncio.run(statuses(settings(), [({"Content-Type": JSON}, bad)]))[0] in (404, 405)
