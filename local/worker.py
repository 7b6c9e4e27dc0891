"""``accesswatch worker`` in a subprocess, for the demo, the tests and the benchmarks: its
/metrics URL, its log file, its readiness, its metrics by name, a clean stop or a SIGKILL."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import IO

from streams.worker import free_port

#: the checkpoints' MAC key of the workers this process starts when none is configured:
#: random per run (the demo's and the tests' workers share it; their checkpoints live as
#: long as this process's broker and data directories)
RUN_STATE_KEY = secrets.token_hex(32)


class WorkerProcess:
    """``accesswatch worker`` in a subprocess, with its /metrics URL and log file.

    Its state key (``ACCESSWATCH_STATE_KEY``, in its environment): ``state_key``, else the
    one configured in this process's environment, else :data:`RUN_STATE_KEY`."""

    def __init__(self, broker_url: str, *, partitions: int = 1, app_id: str = "accesswatch",
                 idle_flush: float = 2.0, checkpoint_interval: float = 2.0,
                 topics_env: dict[str, str] | None = None, data_dir: str | None = None,
                 log_path: str | None = None, extra: list[str] | None = None,
                 web_port: int | None = None, web_token_file: str | None = None,
                 state_key: str | None = None) -> None:
        self.port = web_port or free_port()
        # the web port's token (the worker requires it; metric() and wait_ready() send it)
        self._auth: dict[str, str] = {}
        if web_token_file:
            from streams.httpauth import read_token

            self._auth = {"Authorization": f"Bearer {read_token(web_token_file)}"}
            extra = [*(extra or []), "--web-bearer-token-file", web_token_file]
        self._tmp = None if data_dir else tempfile.mkdtemp(prefix="accesswatch-worker-")
        self.data_dir = data_dir or self._tmp
        self.log_path = log_path or os.path.join(self.data_dir or ".", "worker.log")
        self.argv = [
            sys.executable, "-m", "streams.cli", "worker", "--broker", broker_url,
            "--partitions", str(partitions), "--web-port", str(self.port),
            "--app-id", app_id, "--idle-flush", str(idle_flush),
            "--checkpoint-interval", str(checkpoint_interval),
            "--data-dir", str(self.data_dir), *(extra or []),
        ]
        self.env = {**os.environ, **(topics_env or {})}
        if state_key is not None:
            self.env.pop("ACCESSWATCH_STATE_KEY_FILE", None)
            self.env["ACCESSWATCH_STATE_KEY"] = state_key
        elif not (self.env.get("ACCESSWATCH_STATE_KEY_FILE")
                  or self.env.get("ACCESSWATCH_STATE_KEY")):
            self.env["ACCESSWATCH_STATE_KEY"] = RUN_STATE_KEY  # in its environment, not argv
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def start(self) -> WorkerProcess:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(self.env)
        env["PYTHONPATH"] = here + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=self._log, env=env)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until /metrics answers (the web server is up; the group join follows)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"the worker exited early:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                self._get_metrics(timeout=1)
                return
            time.sleep(0.2)
        raise RuntimeError(f"the worker did not answer within {timeout:g}s:\n{self.log_tail()}")

    def metric(self, name: str) -> float:
        """Sum of every sample called ``name`` on /metrics (0 when unreachable)."""
        try:
            text = self._get_metrics(timeout=2)
        except OSError:
            return 0.0
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and (line[len(name)] in " {"):
                with contextlib.suppress(ValueError):
                    total += float(line.rsplit(" ", 1)[1])
        return total

    def _get_metrics(self, timeout: float) -> str:
        req = urllib.request.Request(self.metrics_url, headers=self._auth)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return str(resp.read().decode())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        rc = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
                try:
                    rc = self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    rc = self.proc.wait(10)
            else:
                rc = self.proc.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return rc

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def cleanup(self) -> None:
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def log_tail(self, n: int = 15) -> str:
        with contextlib.suppress(OSError):
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        return ""
