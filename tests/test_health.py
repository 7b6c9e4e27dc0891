"""/healthz and /readyz on the worker's web port (issue 16), and ``accesswatch --version``.

The pages are requested over real HTTP from the aiohttp application Faust builds for the
worker (``create_app``); the readiness conditions are driven through the app's own state.
A test with a real worker restarted on the embedded broker is in test_health_worker.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from streams.app import create_app
from streams.settings import Settings

TOKEN = "s3cret-token-for-health-tests"  # noqa: S105 (a test credential)


def settings(**kw: Any) -> Settings:
    return replace(Settings.from_env({}), web_port=16066,
                   state_keys=("test-state-key-0123456789",), **kw)


async def _get(app: Any, paths: list[str], headers: dict[str, str] | None = None,
               method: str = "GET") -> dict[str, tuple[int, str]]:
    app.web.init_server()
    async with TestClient(TestServer(app.web.web_app, host="127.0.0.1")) as client:
        out = {}
        for path in paths:
            resp = await client.request(method, path, headers=headers or {})
            out[path] = (resp.status, await resp.text())
        return out


def test_version_is_the_installed_packages() -> None:
    r = subprocess.run([sys.executable, "-m", "streams.cli", "--version"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"accesswatch {version('accesswatch')}"


def test_health_pages_need_no_token_and_reveal_nothing_else(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    app = create_app(settings(web_bearer_token_file=str(token)))
    got = asyncio.run(_get(app, ["/healthz", "/readyz", "/metrics", "/readyz/../metrics",
                                 "/healthz/", "/HEALTHZ", "/healthzx"]))
    assert got["/healthz"] == (200, "ok\n")
    assert got["/readyz"] == (503, "not ready\n")  # not in a group yet
    # every other page, look-alike paths included, still needs the token
    for path in ("/metrics", "/readyz/../metrics", "/healthz/", "/HEALTHZ", "/healthzx"):
        assert got[path][0] == 401, (path, got[path])
    # only reads are open: a POST to a health path is refused like any other request
    posted = asyncio.run(_get(create_app(settings(web_bearer_token_file=str(token))),
                              ["/healthz"], method="POST"))
    assert posted["/healthz"][0] == 401


def test_readyz_needs_assignment_recovery_and_identity() -> None:
    app = create_app(settings())
    readiness = app.accesswatch_readiness
    rt = app.accesswatch

    async def run() -> list[tuple[list[str], int]]:
        steps = []

        async def status() -> int:
            return (await _get(app, ["/readyz"]))["/readyz"][0]

        steps.append((readiness.waiting_for(), await status()))
        await app.on_partitions_assigned.send(assigned=set())  # the group's answer
        steps.append((readiness.waiting_for(), await status()))
        app.tables.recovery.completed.set()  # Faust's table recovery is done
        steps.append((readiness.waiting_for(), await status()))
        rt.identity_ready.set()  # the identity directory is loaded
        steps.append((readiness.waiting_for(), await status()))
        app.rebalancing = True  # a new rebalance: not ready until it is over
        steps.append((readiness.waiting_for(), await status()))
        return steps

    assert asyncio.run(run()) == [
        (["assignment", "recovery", "identity"], 503),
        (["recovery", "identity"], 503),
        (["identity"], 503),
        ([], 200),
        (["recovery"], 503),
    ]
