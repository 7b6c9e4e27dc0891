"""The alerting chain beside a demo worker: Prometheus, Alertmanager, the on-call receiver.

``accesswatch demo`` starts it when the binaries are installed (``scripts/install-prometheus.sh``)
and the project's ``deploy/`` folder is present: the reference webhook receiver in-process,
Alertmanager with ``deploy/alertmanager/alertmanager.yml`` (receiver port rewritten), and
Prometheus with ``deploy/prometheus/rules/accesswatch.rules.yml`` scraping the worker every
2 s. Everything binds to free loopback ports, lives in a temporary folder and is stopped on
exit. The Alertmanager config keeps its own timers (a critical page waits 5 s to group).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

from streams.worker import free_port

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
AM_BINARIES = ("prometheus-alertmanager", "alertmanager")
RECEIVER_PORT_IN_CONFIG = 9095


def available() -> str | None:
    """None when the chain can start here, else why not (one line)."""
    if not (DEPLOY / "alertmanager" / "alertmanager.yml").exists():
        return "the deploy/ folder is not beside this installation"
    if shutil.which("prometheus") is None:
        return "prometheus is not installed (scripts/install-prometheus.sh)"
    if not any(shutil.which(b) for b in AM_BINARIES):
        return "alertmanager is not installed (scripts/install-prometheus.sh)"
    return None


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f}s")


class Chain:
    """Receiver + Alertmanager now; Prometheus once the worker's port is known."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="accesswatch-chain-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[IO[bytes]] = []
        self.receiver: Any = None
        self.receiver_token_file: Path | None = None  # the receiver's shared secret
        self.am_url = self.prom_url = ""

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self.logs.append(log)
        p = subprocess.Popen(argv, stdout=log, stderr=log, cwd=self.dir)
        self.procs.append(p)
        return p

    def start_alerting(self) -> str:
        """Start the receiver and Alertmanager; returns Alertmanager's URL for the worker."""
        import secrets

        from streams.httpauth import Authenticator
        from streams.webhook_receiver import DEPLOY_TOKEN_FILE, serve

        token = secrets.token_urlsafe(32)  # the receiver's shared secret, for this run only
        token_file = self.receiver_token_file = self.dir / "receiver-token"
        token_file.touch(mode=0o600)
        token_file.write_text(token)
        self.receiver = serve("127.0.0.1", 0, self.dir / "pages.jsonl", echo=None,
                              auth=Authenticator(bearer=token))
        rport = self.receiver.port
        cfg = (DEPLOY / "alertmanager" / "alertmanager.yml").read_text().replace(
            f"127.0.0.1:{RECEIVER_PORT_IN_CONFIG}", f"127.0.0.1:{rport}").replace(
            DEPLOY_TOKEN_FILE, str(token_file))
        (self.dir / "alertmanager.yml").write_text(cfg)
        port = free_port()
        binary = next(shutil.which(b) for b in AM_BINARIES if shutil.which(b))
        p = self._spawn("alertmanager", [
            str(binary), f"--config.file={self.dir / 'alertmanager.yml'}",
            f"--storage.path={self.dir / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
        ])
        self.am_url = f"http://127.0.0.1:{port}"
        _wait_http(f"{self.am_url}/-/ready", p)
        return self.am_url

    def start_prometheus(self, worker_target: str) -> str:
        """Prometheus scraping ``worker_target`` (host:port) with the project's rules."""
        port = free_port()
        cfg = {  # YAML is a superset of JSON
            "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
            "rule_files": [str(DEPLOY / "prometheus" / "rules" / "accesswatch.rules.yml")],
            "alerting": {"alertmanagers": [
                {"static_configs": [{"targets": [self.am_url.split("//", 1)[1]]}]}]},
            "scrape_configs": [{"job_name": "accesswatch",
                                "static_configs": [{"targets": [worker_target]}]}],
        }
        (self.dir / "prometheus.yml").write_text(json.dumps(cfg, indent=1))
        p = self._spawn("prometheus", [
            str(shutil.which("prometheus")), f"--config.file={self.dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.dir / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ])
        self.prom_url = f"http://127.0.0.1:{port}"
        _wait_http(f"{self.prom_url}/-/ready", p)
        return self.prom_url

    def pages(self) -> dict[str, int]:
        """Firing notifications the receiver got, by receiver name."""
        out: dict[str, int] = {}
        if self.receiver is None:
            return out
        for rec in self.receiver.received():  # one record per alert notification
            if rec.get("status") == "firing":
                name = rec.get("receiver", "?")
                out[name] = out.get(name, 0) + 1
        return out

    def wait_for_page(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.pages().get("oncall-pager"):
            time.sleep(0.5)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in self.logs:
            f.close()
        if self.receiver is not None:
            self.receiver.stop()
        if not os.environ.get("ACCESSWATCH_KEEP_CHAIN"):
            shutil.rmtree(self.dir, ignore_errors=True)
