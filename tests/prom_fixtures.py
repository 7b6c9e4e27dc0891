"""Real Prometheus, Alertmanager and the reference webhook receiver for the tests.

tests/conftest.py registers the fixtures; modules import the helpers from ``tests.prom_fixtures``.
Everything binds to loopback on free ports, with data in pytest's temp folders, configs
generated from the files in ``deploy/`` (ports rewritten, timers shortened), and is
stopped at teardown. When a binary is missing the tests skip with the reason
(``scripts/install-prometheus.sh`` installs them).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.httpauth import Authenticator
from streams.webhook_receiver import DEPLOY_TOKEN_FILE, ReceiverServer, serve
from streams.worker import free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
AM_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
PROM_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
RULES = DEPLOY / "prometheus" / "rules" / "accesswatch.rules.yml"
RULES_TEST = DEPLOY / "prometheus" / "tests" / "rules_test.yml"
RECEIVER_PORT_IN_CONFIG = 9095
RECEIVER_TOKEN = "receiver-token-for-tests"  # noqa: S105 (the receivers' shared secret here)
RECEIVER_AUTH = Authenticator(bearer=RECEIVER_TOKEN)
WAIT = 60.0  # the bound of every wait for a real process to do something


def need(binary: str) -> str:
    """The path of ``binary`` or skip the test."""
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} not installed (run scripts/install-prometheus.sh)")
    return path


def http_json(url: str, data: object | None = None, timeout: float = 5.0) -> Any:
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(
        url,
        data=body,
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


def wait_for(what: str, check: Callable[[], Any], timeout: float = WAIT, every: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            got = check()
            if got:
                return got
        except (OSError, ValueError) as exc:  # not up yet
            last_exc = exc
        time.sleep(every)
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_exc})"
    )


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


class Proc:
    """A server process we started, with its log file; ``stop()`` is idempotent."""

    def __init__(self, name: str, argv: list[str], log: Path, ready_url: str) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self.ready_url = ready_url
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + WAIT
        while not _ready(self.ready_url):
            if self.popen.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} not ready after {WAIT:.0f}s")
            time.sleep(0.1)

    def stop(self) -> None:
        p, self.popen = self.popen, None
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


# --- Alertmanager ---------------------------------------------------------------------


def alertmanager_config(
    receiver_port: int,
    group_wait: str = "1s",
    group_interval: str = "1s",
    repeat_interval: str = "1h",
    token_file: Path | None = None,
) -> str:
    """deploy/alertmanager/alertmanager.yml with the receiver's port, the file of its shared
    secret and test timers."""
    yaml = pytest.importorskip("yaml", reason="pyyaml not installed")
    text = AM_CONFIG.read_text().replace(
        f"127.0.0.1:{RECEIVER_PORT_IN_CONFIG}", f"127.0.0.1:{receiver_port}"
    )
    if token_file is not None:
        assert DEPLOY_TOKEN_FILE in text, "the deploy config no longer names the token file"
        text = text.replace(DEPLOY_TOKEN_FILE, str(token_file))
    cfg = yaml.safe_load(text)

    def shorten(route: dict[str, Any]) -> None:
        for key, value in (
            ("group_wait", group_wait),
            ("group_interval", group_interval),
            ("repeat_interval", repeat_interval),
        ):
            if key in route or route is cfg["route"]:
                route[key] = value
        for child in route.get("routes", []):
            shorten(child)

    shorten(cfg["route"])
    return yaml.safe_dump(cfg, sort_keys=False)


class Alertmanager(Proc):
    def __init__(self, binary: str, workdir: Path, receiver_port: int) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.data = workdir / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "alertmanager.yml"
        token_file = workdir / "receiver-token"
        token_file.write_text(RECEIVER_TOKEN + "\n")  # as a Secret volume would hold it
        self.config.write_text(alertmanager_config(receiver_port, token_file=token_file))
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            "alertmanager",
            [
                binary,
                f"--config.file={self.config}",
                f"--storage.path={self.data}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",  # no gossip port, no clustering
                "--log.level=warn",
            ],
            workdir / "alertmanager.log",
            f"{self.url}/-/ready",
        )

    def restart(self, fresh: bool = False) -> None:
        """Stop, optionally wipe the data folder (lost notification log), start again."""
        self.stop()
        if fresh:
            shutil.rmtree(self.data)
            self.data.mkdir()
        self.start()

    def alerts(self, **label_filter: str) -> list[dict[str, Any]]:
        query = "&".join(
            "filter=" + urllib.parse.quote(f'{k}="{v}"') for k, v in label_filter.items()
        )
        got: list[dict[str, Any]] = http_json(f"{self.url}/api/v2/alerts?{query}")
        return got


# --- Prometheus -----------------------------------------------------------------------


def prometheus_config(
    targets: list[str], alertmanager_url: str, rules: Path = RULES, interval: str = "1s",
    token_file: Path | None = None,
) -> str:
    """A Prometheus config like deploy's, scraping ``targets`` as job accesswatch (with the
    bearer token in ``token_file``, as deploy/prometheus/prometheus.compose.yml does)."""
    yaml = pytest.importorskip("yaml", reason="pyyaml not installed")
    cfg = yaml.safe_load(PROM_CONFIG.read_text())
    cfg["global"]["scrape_interval"] = interval
    cfg["global"]["evaluation_interval"] = interval
    cfg["rule_files"] = [str(rules)]
    am_host = urllib.parse.urlsplit(alertmanager_url).netloc
    cfg["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [am_host]}]}]
    cfg["scrape_configs"] = [
        {
            "job_name": "accesswatch",
            "metrics_path": "/metrics",
            "static_configs": [{"targets": targets}],
        },
    ]
    if token_file is not None:
        cfg["scrape_configs"][0]["authorization"] = {
            "type": "Bearer", "credentials_file": str(token_file)}
    return yaml.safe_dump(cfg, sort_keys=False)


class Prometheus(Proc):
    def __init__(
        self, binary: str, workdir: Path, targets: list[str], alertmanager_url: str,
        token_file: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.config = workdir / "prometheus.yml"
        self.config.write_text(prometheus_config(targets, alertmanager_url,
                                                 token_file=token_file))
        (workdir / "tsdb").mkdir(parents=True, exist_ok=True)
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            "prometheus",
            [
                binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            workdir / "prometheus.log",
            f"{self.url}/-/ready",
        )

    def query(self, expr: str) -> list[dict[str, Any]]:
        got = http_json(f"{self.url}/api/v1/query?query={urllib.parse.quote(expr)}")
        result: list[dict[str, Any]] = got["data"]["result"]
        return result


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def alertmanager_binary() -> str:
    need("amtool")
    return (
        need("prometheus-alertmanager")
        if shutil.which("prometheus-alertmanager")
        else need("alertmanager")
    )


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    need("promtool")
    return need("prometheus")


@pytest.fixture(scope="session")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReceiverServer]:
    """The reference webhook receiver (shared: filter what it got by alert_id)."""
    out = tmp_path_factory.mktemp("receiver") / "received.jsonl"
    srv = serve("127.0.0.1", 0, out, echo=None, auth=RECEIVER_AUTH)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def alertmanager_factory(
    alertmanager_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[ReceiverServer], Alertmanager]]:
    """Start extra Alertmanagers (own data dir and port) sending to a given receiver."""
    started: list[Alertmanager] = []

    def make(rcv: ReceiverServer) -> Alertmanager:
        am = Alertmanager(alertmanager_binary, tmp_path_factory.mktemp("alertmanager"), rcv.port)
        started.append(am)
        am.start()
        return am

    yield make
    for am in started:
        am.stop()


@pytest.fixture(scope="session")
def alertmanager(
    alertmanager_factory: Callable[[ReceiverServer], Alertmanager], receiver: ReceiverServer
) -> Alertmanager:
    """One Alertmanager for the session, sending to ``receiver``."""
    return alertmanager_factory(receiver)


@pytest.fixture
def fresh_receiver(tmp_path: Path) -> Iterator[ReceiverServer]:
    """A receiver of its own, for tests that count every delivery."""
    srv = serve("127.0.0.1", 0, tmp_path / "received.jsonl", echo=None, auth=RECEIVER_AUTH)
    yield srv
    srv.stop()


@pytest.fixture
def prometheus_factory(
    prometheus_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[list[str], str], Prometheus]]:
    """Start a Prometheus scraping ``targets`` (job accesswatch) and alerting ``am_url``."""
    started: list[Prometheus] = []

    def make(targets: list[str], am_url: str) -> Prometheus:
        p = Prometheus(prometheus_binary, tmp_path_factory.mktemp("prometheus"), targets, am_url)
        started.append(p)
        p.start()
        return p

    yield make
    for p in started:
        p.stop()


# --- helpers for tests reading PromQL ----------------------------------------------------

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def promql_metric_names(expr: str) -> set[str]:
    """Identifiers in a PromQL expression that name accesswatch series or recorded rules.

    >>> sorted(promql_metric_names('sum by (le) (rate(accesswatch_x_bucket{a="b c"}[5m]))'))
    ['accesswatch_x_bucket']
    """
    text = _STRINGS.sub('""', expr)
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery durations
    return {t for t in _IDENT.findall(text) if t.startswith("accesswatch") or ":" in t}
