"""The worker's web port: where it binds, which pages it serves, and who may read them.

The pages are requested over real HTTP from the aiohttp application Faust builds for the
worker (``create_app``), served on a loopback port by aiohttp's own test server.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from streams.app import create_app
from streams.httpauth import Authenticator, CredentialsError, probe, read_basic_users
from streams.settings import Settings, SettingsError

TOKEN = "s3cret-token-for-tests"  # noqa: S105 (a test credential)

# Every page Faust 0.15.3 can mount (faust/web/base.py: DEFAULT_, DEBUG_, OPTIONAL_ and
# PRODUCTION_BLUEPRINTS) with a path that answers 200 when it is on.
FAUST_VIEWS = ["/router/", "/router/topics", "/table/", "/table/engine-checkpoints/",
               "/graph/", "/performance/", "/assignment/"]


def settings(**kw: Any) -> Settings:
    return replace(Settings.from_env({}), web_port=16066,
                   state_keys=("test-state-key-0123456789",), **kw)


async def _statuses(app: Any, paths: list[str], headers: dict[str, str] | None = None
                    ) -> dict[str, tuple[int, list[str]]]:
    app.web.init_server()
    async with TestClient(TestServer(app.web.web_app, host="127.0.0.1")) as client:
        out = {}
        for path in paths:
            resp = await client.get(path, headers=headers or {})
            await resp.read()
            out[path] = (resp.status, resp.headers.getall("WWW-Authenticate", []))
        return out


def statuses(s: Settings, paths: list[str], headers: dict[str, str] | None = None
             ) -> dict[str, tuple[int, list[str]]]:
    return asyncio.run(_statuses(create_app(s), paths, headers))


def codes(got: dict[str, tuple[int, list[str]]]) -> dict[str, int]:
    return {p: c for p, (c, _) in got.items()}


def test_faust_views_are_off_by_default_and_metrics_is_served() -> None:
    got = codes(statuses(settings(), ["/metrics", "/", *FAUST_VIEWS]))
    # ef303a3 served /router/ and /table/ (tables' keys) to anyone on the port
    assert got == {"/metrics": 200, "/": 200, **dict.fromkeys(FAUST_VIEWS, 404)}


def test_faust_table_and_router_views_only_when_enabled() -> None:
    got = codes(statuses(settings(web_faust_views=True), ["/router/", "/table/", "/graph/"]))
    assert got == {"/router/": 200, "/table/": 200, "/graph/": 404}


def test_faust_environment_cannot_widen_the_bind_or_enable_views(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Faust lets these variables override what the app passes (they did at ef303a3)
    monkeypatch.setenv("WEB_BIND", "0.0.0.0")
    monkeypatch.setenv("WEB_PORT", "1")
    monkeypatch.setenv("APP_WEB_TABLES_ENABLED", "true")
    monkeypatch.setenv("APP_WEB_ROUTER_ENABLED", "true")
    app = create_app(settings())
    assert app.conf.web_bind == "127.0.0.1"
    assert app.conf.web_port == 16066
    assert not app.conf.web_tables_enabled and not app.conf.web_router_enabled


def test_bearer_token_guards_every_page(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    s = settings(web_bearer_token_file=str(token_file), web_faust_views=True)
    paths = ["/metrics", "/", "/table/", "/router/", "/no-such-page"]
    refused = statuses(s, paths)
    for path in paths:  # unknown paths too: nothing to enumerate without the token
        assert refused[path] == (401, ['Bearer realm="accesswatch"']), path
    assert codes(statuses(s, paths, {"Authorization": "Bearer wrong"})) == dict.fromkeys(
        paths, 401)
    assert codes(statuses(s, ["/metrics"], {"Authorization": f"Bearer {TOKEN}x"})) == {
        "/metrics": 401}
    ok = codes(statuses(s, paths, {"Authorization": f"Bearer {TOKEN}"}))
    assert ok == {"/metrics": 200, "/": 200, "/table/": 200, "/router/": 200,
                  "/no-such-page": 404}


def test_basic_auth_guards_metrics(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("# scrapers\nprometheus:pa:ss w0rd\nother:xyz\n")
    s = settings(web_basic_auth_file=str(users))

    def basic(user: str, pw: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}

    assert statuses(s, ["/metrics"])["/metrics"] == (
        401, ['Basic realm="accesswatch", charset="UTF-8"'])
    assert codes(statuses(s, ["/metrics"], basic("prometheus", "pa:ss w0rd"))) == {
        "/metrics": 200}
    assert codes(statuses(s, ["/metrics"], basic("other", "xyz"))) == {"/metrics": 200}
    for user, pw in (("prometheus", "xyz"), ("nobody", "xyz"), ("prometheus", "")):
        assert codes(statuses(s, ["/metrics"], basic(user, pw))) == {"/metrics": 401}
    assert codes(statuses(s, ["/metrics"], {"Authorization": "Basic !!notbase64"})) == {
        "/metrics": 401}


def test_authenticator_check() -> None:
    auth = Authenticator(bearer=TOKEN, users={"u": "p"})
    assert auth.check(f"Bearer {TOKEN}") and auth.check(f"bearer  {TOKEN} ")
    assert auth.check("Basic " + base64.b64encode(b"u:p").decode())
    for bad in (None, "", "Bearer", f"Token {TOKEN}", f"Bearer {TOKEN[:-1]}",
                "Basic " + base64.b64encode(b"u:q").decode(), "Basic " + base64.b64encode(b"u").decode()):
        assert not auth.check(bad), bad
    assert Authenticator().check(None)  # nothing configured: open
    assert len(auth.challenges) == 2


def test_non_loopback_bind_needs_authentication(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not loopback"):
        settings(web_host="0.0.0.0").validate()
    with pytest.raises(SettingsError, match="not loopback"):
        settings(web_host="::").validate()
    settings(web_host="127.0.0.2").validate()
    settings(web_host="::1").validate()
    settings(web_host="localhost").validate()
    settings(web_host="0.0.0.0", web_allow_unauthenticated=True).validate()
    token = tmp_path / "token"
    token.write_text(TOKEN)
    settings(web_host="0.0.0.0", web_bearer_token_file=str(token)).validate()


def test_secret_files_that_cannot_work_are_one_line_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    spaced = tmp_path / "spaced"
    spaced.write_text("two words\n")
    bad_users = tmp_path / "users"
    bad_users.write_text("no-colon\n")
    for kw, match in (
        ({"web_bearer_token_file": str(tmp_path / "missing")}, "cannot read"),
        ({"web_bearer_token_file": str(empty)}, "empty"),
        ({"web_bearer_token_file": str(spaced)}, "spaces or control"),
        ({"web_basic_auth_file": str(bad_users)}, "line 1 is not user:password"),
    ):
        with pytest.raises(SettingsError, match=match) as info:
            settings(**kw).validate()
        assert "\n" not in str(info.value)
    with pytest.raises(CredentialsError):
        read_basic_users(empty)


def test_worker_refuses_a_wide_unauthenticated_bind_in_one_line() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker", "--broker", "kafka://127.0.0.1:1",
         "--web-host", "0.0.0.0"],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert "not loopback" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_probe_sends_the_workers_own_credentials(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    s = settings(web_bearer_token_file=str(token))

    async def run() -> tuple[int, int]:
        app = create_app(s)
        app.web.init_server()
        server = TestServer(app.web.web_app, host="127.0.0.1")
        await server.start_server()
        try:
            url = f"http://127.0.0.1:{server.port}/metrics"
            with_token = await asyncio.to_thread(
                probe, url, 3.0, {"ACCESSWATCH_WEB_BEARER_TOKEN_FILE": str(token)})
            without = await asyncio.to_thread(probe, url, 3.0, {})
            return with_token, without
        finally:
            await server.close()

    assert asyncio.run(run()) == (0, 1)
