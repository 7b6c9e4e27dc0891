"""Session-scoped pytest fixtures running a real Apache Kafka 4.x from Maven Central.

Both fixtures drive ``deploy/kafka/apache-kafka.sh`` on free loopback ports, in data
dirs under pytest's temporary folder, with the jars cached in ``ACCESSWATCH_CACHE``
(default ``~/.cache/accesswatch``) so only the first run on a machine downloads them.

- ``apache_kafka``: one combined broker+controller node. Yields an :class:`ApacheKafka`
  whose ``bootstrap`` is ``"127.0.0.1:PORT"`` (``str()`` of it too), with ``stop(sig)``
  and ``start()`` for durability tests.
- ``kafka_cluster``: three combined nodes (3 voters, RF 3, ``min.insync.replicas=2``).
  Yields a :class:`KafkaCluster` with ``bootstrap``, ``kill(node)`` and ``start()``.

They skip, with the reason, when java or mvn is missing or the fetch fails (offline);
set ``ACCESSWATCH_REQUIRE_KAFKA=1`` (CI) to fail instead. Every broker is given
``KAFKA_WATCH_PID`` = this process, so none outlives the test session even if pytest
is killed.

tests/conftest.py registers them as a plugin, so that one session-wide broker serves every
module (importing the fixture functions into several modules would start one per module).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import orjson
import pytest

from local.worker import WorkerProcess
from streams.topics import ENV_ACCESS, ENV_ALERTS, ENV_DLQ, ENV_IDENTITY, ENV_LOGINS, TopicNames

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "deploy" / "kafka" / "apache-kafka.sh"


def _default_version() -> str:
    match = re.search(r'KAFKA_VERSION="\$\{KAFKA_VERSION:-([0-9.]+)\}"', SCRIPT.read_text())
    return match.group(1) if match else "unknown"


# The Kafka release the script runs (its pinned default unless KAFKA_VERSION overrides it).
KAFKA_VERSION = os.environ.get("KAFKA_VERSION") or _default_version()

# Generous bounds for a loaded 2-core machine; normal runs take a fraction of them.
FETCH_TIMEOUT_S = 900
START_TIMEOUT_S = 240
STOP_TIMEOUT_S = 90
EXIT_WAIT_S = 60.0


class KafkaUnavailable(Exception):
    """Java, Maven or the Kafka jars cannot be had on this machine."""


def script_env(**overrides: str) -> dict[str, str]:
    """The environment for apache-kafka.sh: ours, with the given overrides."""
    env = dict(os.environ)
    env.update(overrides)
    return env


def run_script(
    *args: str, env: dict[str, str] | None = None, timeout: float = START_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run apache-kafka.sh with ``args``; never raises on a non-zero exit."""
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env=env if env is not None else script_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def ensure_fetched() -> None:
    """Resolve the Kafka jars into the cache, or raise :class:`KafkaUnavailable`."""
    if shutil.which(os.environ.get("JAVA", "java")) is None:
        raise KafkaUnavailable("java not found (Apache Kafka 4.x needs Java 17+)")
    result = run_script("fetch", timeout=FETCH_TIMEOUT_S)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["no output"]
        raise KafkaUnavailable(f"apache-kafka.sh fetch failed: {lines[-1]}")


def unavailable(reason: str) -> NoReturn:
    """Skip (or fail, when ACCESSWATCH_REQUIRE_KAFKA=1) because Kafka cannot run here."""
    if os.environ.get("ACCESSWATCH_REQUIRE_KAFKA") == "1":
        pytest.fail(f"Apache Kafka required but unavailable: {reason}", pytrace=False)
    pytest.skip(f"Apache Kafka unavailable: {reason}")


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(count: int, low: int = 20000, high: int = 32000) -> int:
    """The first port of ``count`` consecutive free loopback ports below the ephemeral range.

    The scan starts at an offset taken from the pid, so parallel sessions rarely collide.
    """
    span = high - low - count
    start = (os.getpid() * 37) % span
    for step in range(0, span, count):
        base = low + (start + step) % span
        if all(_port_is_free(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports in {low}-{high}")


def wait_for_exit(pid: int, timeout: float = EXIT_WAIT_S) -> bool:
    """Poll until ``pid`` is gone (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        time.sleep(0.2)
    return False


class _Nodes:
    """What the single node and the cluster share: the script, its env, the pid files."""

    def __init__(self, data_dir: Path, port: int, nodes: int, start_cmd: list[str]) -> None:
        self.data_dir = data_dir
        self.port = port
        self.nodes = nodes
        self._start_cmd = start_cmd
        self.env = script_env(
            KAFKA_DATA_DIR=str(data_dir),
            KAFKA_PORT=str(port),
            KAFKA_WATCH_PID=str(os.getpid()),
            KAFKA_START_TIMEOUT=str(START_TIMEOUT_S - 30),
            KAFKA_STOP_TIMEOUT=str(STOP_TIMEOUT_S - 30),
        )

    @property
    def ports(self) -> list[int]:
        return [self.port + i for i in range(self.nodes)]

    @property
    def bootstrap(self) -> str:
        """Comma-separated ``127.0.0.1:PORT`` of every node, for kafka-python."""
        return ",".join(f"127.0.0.1:{port}" for port in self.ports)

    @property
    def url(self) -> str:
        """The same, as a Faust broker URL."""
        return ";".join(f"kafka://127.0.0.1:{port}" for port in self.ports)

    def __str__(self) -> str:
        return self.bootstrap

    def node_dir(self, node: int) -> Path:
        return self.data_dir / f"node-{node}"

    def pid(self, node: int = 1) -> int | None:
        """The pid of a node this harness started, None when it is not running."""
        try:
            pid = int((self.node_dir(node) / "kafka.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if str(self.node_dir(node) / "server.properties").encode() in cmdline else None

    def script(self, *args: str, timeout: float = START_TIMEOUT_S) -> str:
        """Run apache-kafka.sh for these nodes; raise with its stderr if it fails."""
        result = run_script(*args, env=self.env, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(
                f"apache-kafka.sh {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )
        return result.stdout

    def start(self) -> None:
        """Start the nodes that are not running; returns once all serve clients."""
        self.script(*self._start_cmd)

    def signal_node(self, node: int, sig: int) -> None:
        """Send ``sig`` to one node and wait until it has exited (SIGKILL after a bound)."""
        pid = self.pid(node)
        if pid is None:
            return
        os.kill(pid, sig)
        if not wait_for_exit(pid):
            os.kill(pid, signal.SIGKILL)
            wait_for_exit(pid)

    def cleanup(self, stop_cmd: str) -> None:
        """Stop everything this harness started, by pid file, whatever state it is in.

        The nodes are SIGKILLed first: their data is the session's scratch, and a graceful
        stop of nodes that lost and regained peers took up to a minute of CI time; the
        script's ``stop`` then clears its pid files and watchers (the graceful stop itself is
        tested: tests/test_kafka_streaming.py's SIGTERM restart)."""
        for node in range(1, self.nodes + 1):
            pid = self.pid(node)
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                wait_for_exit(pid)
        try:
            run_script(stop_cmd, env=self.env, timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass


class ApacheKafka(_Nodes):
    """One combined broker+controller node started by apache-kafka.sh."""

    def __init__(self, data_dir: Path, port: int) -> None:
        super().__init__(data_dir, port, nodes=1, start_cmd=["start"])

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the broker: SIGTERM through the script's ``stop``, any other signal directly."""
        if sig == signal.SIGTERM:
            self.script("stop", timeout=STOP_TIMEOUT_S)
        else:
            self.signal_node(1, sig)


class KafkaCluster(_Nodes):
    """A KRaft cluster of combined nodes (node ids 1..N) started by apache-kafka.sh."""

    def __init__(self, data_dir: Path, port: int, nodes: int = 3) -> None:
        super().__init__(data_dir, port, nodes=nodes, start_cmd=["cluster-start", str(nodes)])

    def kill(self, node: int, sig: int = signal.SIGKILL) -> None:
        """Kill one node (1..N) and wait until it is gone; ``start()`` brings it back."""
        if not 1 <= node <= self.nodes:
            raise ValueError(f"node must be 1..{self.nodes}, not {node}")
        self.signal_node(node, sig)

    def stop(self) -> None:
        self.script("cluster-stop", timeout=STOP_TIMEOUT_S)


def _start_or_skip(nodes: _Nodes) -> None:
    try:
        nodes.start()
    except RuntimeError as exc:
        if "needs Java 17+" in str(exc):
            unavailable(str(exc).strip().splitlines()[-1])
        raise


@pytest.fixture(scope="session")
def apache_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafka]:
    """A single-node Apache Kafka on a free loopback port, stopped after the last test that
    uses it (``pytest_runtest_teardown`` below) or at the session's end."""
    try:
        ensure_fetched()
    except KafkaUnavailable as exc:
        unavailable(str(exc))
    # The controller takes the port after the client port.
    kafka = ApacheKafka(tmp_path_factory.mktemp("apache-kafka"), free_port_block(2))
    kafka.env["KAFKA_CONTROLLER_PORT"] = str(kafka.port + 1)
    try:
        _start_or_skip(kafka)
        _RUNNING["apache_kafka"] = (kafka, "stop")
        yield kafka
    finally:
        _RUNNING.pop("apache_kafka", None)
        kafka.cleanup("stop")


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """A 3-node Apache Kafka cluster on free loopback ports, stopped after the last test that
    uses it or at the session's end."""
    try:
        ensure_fetched()
    except KafkaUnavailable as exc:
        unavailable(str(exc))
    cluster = KafkaCluster(tmp_path_factory.mktemp("kafka-cluster"), free_port_block(6))
    try:
        _start_or_skip(cluster)
        _RUNNING["kafka_cluster"] = (cluster, "cluster-stop")
        yield cluster
    finally:
        _RUNNING.pop("kafka_cluster", None)
        cluster.cleanup("cluster-stop")


# Four idle JVMs took ~15% of a core (measured: 3.6 s of CPU per 30 s for the cluster) from
# every test after the last one that needs them; a session fixture lives to the session's end,
# so the nodes are stopped once the last test using them (in the collected order) is done.
_RUNNING: dict[str, tuple[_Nodes, str]] = {}
_LAST_USER: dict[str, str] = {}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Note the last test (after deselection and any reordering) using each Kafka fixture."""
    _LAST_USER.clear()
    for item in items:
        for name in ("apache_kafka", "kafka_cluster"):
            if name in getattr(item, "fixturenames", ()):
                _LAST_USER[name] = item.nodeid


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    for name, nodeid in _LAST_USER.items():
        if nodeid == item.nodeid and name in _RUNNING:
            nodes, stop_cmd = _RUNNING.pop(name)
            nodes.cleanup(stop_cmd)


# ------------------------------------------- helpers of the streaming tests against Kafka


_counter = itertools.count(1)


def fresh_names() -> TopicNames:
    return TopicNames.prefixed(f"ks{os.getpid()}-{next(_counter)}-")


def topics_env(names: TopicNames) -> dict[str, str]:
    """The environment that makes a worker (or demo) subprocess use ``names``."""
    return {
        ENV_LOGINS: names.logins,
        ENV_ACCESS: names.access,
        ENV_IDENTITY: names.identity,
        ENV_ALERTS: names.alerts,
        ENV_DLQ: names.dlq,
    }


def committed_by_topic(bootstrap: str, group: str) -> dict[str, int] | None:
    """Committed offsets of ``group`` summed per topic; None while the broker cannot say
    (a fresh Kafka creates ``__consumer_offsets`` on the first group lookup and answers
    COORDINATOR_NOT_AVAILABLE meanwhile; a broker coming back loads it again)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    except KafkaError:
        return None
    try:
        got = admin.list_group_offsets({group: None}).get(group, {})
    except KafkaError:
        return None
    finally:
        admin.close()
    per_topic: dict[str, int] = {}
    for tp, om in got.items():
        per_topic[tp.topic] = per_topic.get(tp.topic, 0) + max(om.offset, 0)
    return per_topic


def topic_end(bootstrap: str, topic: str) -> int | None:
    """The sum of ``topic``'s end offsets; None while the broker cannot say."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, request_timeout_ms=15_000
        )
    except KafkaError:
        return None
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        return sum(consumer.end_offsets(tps).values()) if tps else None
    except KafkaError:
        return None
    finally:
        consumer.close()


def wait_committed(
    bootstrap: str,
    group: str,
    sent: dict[str, int],
    worker: WorkerProcess,
    alerts_topic: str,
    quiet: float = 6.0,
    timeout: float = 240.0,
) -> None:
    """Until ``group`` committed all ``sent[topic]`` messages of each input topic (one
    partition per topic, offsets from 0) and the alerts topic grew no more for ``quiet``
    seconds (its end offset, not a reader's view: a reader may lag behind a broker restart).
    """
    deadline = time.monotonic() + timeout
    per_topic: dict[str, int] | None = None
    end, end_since = topic_end(bootstrap, alerts_topic), time.monotonic()
    while time.monotonic() < deadline:
        assert worker.alive(), worker.log_tail(40)
        per_topic = committed_by_topic(bootstrap, group)
        now_end = topic_end(bootstrap, alerts_topic)
        if now_end is None or now_end != end:
            end, end_since = now_end, time.monotonic()
        done = per_topic is not None and all(per_topic.get(t, 0) >= n for t, n in sent.items())
        if done and end is not None and time.monotonic() - end_since >= quiet:
            return
        time.sleep(0.5)
    raise AssertionError(
        f"not all committed in {timeout:g}s: sent {sent}, committed "
        f"{per_topic}:\n{worker.log_tail(40)}"
    )


def read_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Every JSON message on ``topic`` (one partition or more), read to its end offsets."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, f"{topic} not read to its end in {timeout:g}s"
            for recs in consumer.poll(timeout_ms=500).values():
                for r in recs:
                    out.append(orjson.loads(r.value))
                    out[-1]["_offset"], out[-1]["_sent_ms"] = r.offset, r.timestamp
        return out
    finally:
        consumer.close()
