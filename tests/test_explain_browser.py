"""The entity page in headless Chromium against a real worker (issue 18 item 4).

A worker on the embedded broker, with web credentials (a bearer token and a basic auth user),
takes a one-hour Coupang-style attack; the attacking key's page is then opened in Debian's
``chromium`` by its command line (``--headless --dump-dom --screenshot``, the basic auth user
in the URL: the command line sets no header), and asked by ``accesswatch explain --url`` with
the token file. The test saves the screenshot under its tmp dir. Chromium comes from ``scripts/install-chromium.sh`` (run by scripts/test.sh);
without it the test skips, except on CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from local.worker import WorkerProcess
from simulation import SimConfig
from streams.cli import main
from streams.topics import create_topics
from tests.helpers import produce_by_topic, replay_alerts, sim_lines

SIM = SimConfig(seed=3, customers=400, hours=1, attacks=("coupang",), attack_start_hour=0.3)
TOKEN = "explain-browser-test-token-0123456789"
USER, PASSWORD = "analyst", "pw-for-the-browser-test"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is missing on CI: scripts/install-chromium.sh should install it")
    pytest.skip("chromium not installed (run scripts/install-chromium.sh as root)")


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except OSError:
        return 0, b""


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}",
         "--window-size=1200,1600", *args],
        capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.broker
@pytest.mark.timeout(300)
def test_the_entity_page_renders_in_headless_chromium(fresh_tansu: Any, tmp_path: Path,
                                                      capsys: Any) -> None:
    binary = chromium()
    lines = sim_lines(SIM)
    want = next(a for a in replay_alerts(lines)
                if a["entity"]["kind"] == "key" and a["detector"] == "revoked_credential")
    key = want["entity"]["id"]
    create_topics(fresh_tansu.bootstrap, partitions=1)
    produce_by_topic(fresh_tansu.bootstrap, lines)
    token_file, users_file = tmp_path / "token", tmp_path / "users"
    token_file.write_text(TOKEN + "\n")
    users_file.write_text(f"{USER}:{PASSWORD}\n")
    (tmp_path / "data").mkdir()
    worker = WorkerProcess(fresh_tansu.url, partitions=1, app_id="accesswatch-explain",
                           data_dir=str(tmp_path / "data"), log_path=str(tmp_path / "w.log"),
                           web_token_file=str(token_file),
                           extra=["--web-basic-auth-file", str(users_file)]).start()
    started = time.monotonic()
    base = f"http://127.0.0.1:{worker.port}"
    query = urllib.parse.urlencode({"kind": "key", "id": key})
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    try:
        deadline = time.monotonic() + 120
        while True:  # until the worker has raised the alert the replay raises
            assert worker.alive(), worker.log_tail(40)
            assert time.monotonic() < deadline, worker.log_tail(40)
            status, body = get(f"{base}/explain?{query}&format=json", bearer)
            if status == 200 and want["alert_id"] in {
                    a["alert_id"] for a in orjson.loads(body)["alerts"]}:
                break
            time.sleep(0.2)
        # read-only pages behind the web port's authentication
        assert get(f"{base}/explain?{query}")[0] == 401
        assert get(f"{base}/explain?{query}", {"Authorization": "Bearer wrong"})[0] == 401

        alerted = time.monotonic()
        # the terminal command against the running worker, with the token file
        assert main(["explain", "key", key, "--url", base,
                     "--bearer-token-file", str(token_file)]) == 0
        out = capsys.readouterr().out
        assert want["alert_id"] in out and "revoked_credential" in out

        # the page in headless Chromium, through basic auth in the URL
        page = f"http://{USER}:{PASSWORD}@127.0.0.1:{worker.port}/explain?{query}"
        shot = tmp_path / "entity-page.png"
        dom = run_chromium(binary, tmp_path / "profile", "--dump-dom", f"--screenshot={shot}",
                           page)
        assert dom.returncode == 0, dom.stderr[-2000:]
        assert "401 Unauthorized" not in dom.stdout
        assert f'<code id="entity-id">{key}</code>' in dom.stdout, dom.stdout[:2000]
        assert want["alert_id"] in dom.stdout and 'class="alert-row"' in dom.stdout
        assert "<svg" in dom.stdout  # the timeline
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
        print(f"screenshot: {shot}; worker to alert {alerted - started:.1f} s, "
              f"command and browser {time.monotonic() - alerted:.1f} s")
    finally:
        assert worker.stop() == 0, worker.log_tail(40)
