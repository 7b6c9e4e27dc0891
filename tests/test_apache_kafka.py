"""Apache Kafka from Maven Central: deploy/kafka/apache-kafka.sh and its pytest fixtures.

Real brokers (one node, then a 3-node KRaft cluster) driven through kafka-python.
Run: ``/work/venv/bin/pytest -m kafka tests/test_apache_kafka.py``.
"""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaTimeoutError

from tests.kafka_fixtures import (
    KAFKA_VERSION,
    ApacheKafka,
    KafkaCluster,
    KafkaUnavailable,
    ensure_fetched,
    run_script,
    script_env,
    unavailable,
)

pytestmark = pytest.mark.kafka

# Bounds for waiting on a broker of a loaded 2-core machine; nothing asserts on durations.
CONSUME_DEADLINE_S = 120.0


def create_topic(bootstrap: str, name: str, partitions: int, replication: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=60_000)
    try:
        admin.create_topics([NewTopic(name, partitions, replication)], timeout_ms=60_000)
    finally:
        admin.close()


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """Send ``values`` keyed by index with acks=all and wait for every acknowledgement."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        retries=100,
        request_timeout_ms=30_000,
        delivery_timeout_ms=180_000,
        max_block_ms=120_000,
    )
    try:
        futures = [
            producer.send(topic, key=str(i).encode(), value=value) for i, value in enumerate(values)
        ]
        producer.flush(timeout=180)
        for future in futures:
            future.get(timeout=1)  # raises if a record was not acknowledged
    finally:
        producer.close(timeout=10)


def consume(bootstrap: str, topic: str, group: str, expected: int) -> list[bytes]:
    """Read ``topic`` from the group's committed offset (else the start) until ``expected``
    values arrived or the deadline passed, commit, and return the values."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
    )
    values: list[bytes] = []
    try:
        deadline = time.monotonic() + CONSUME_DEADLINE_S
        while len(values) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                values.extend(record.value for record in records)
        consumer.commit()
    finally:
        consumer.close()
    return values


def topic_partitions(bootstrap: str, topic: str) -> list[dict]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=60_000)
    try:
        return admin.describe_topics([topic])[0]["partitions"]
    finally:
        admin.close()


def port_answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# --- the script on its own ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["bogus"], {}, "unknown command 'bogus'"),
        (["start"], {"KAFKA_PORT": "not-a-port"}, "KAFKA_PORT='not-a-port' is not a TCP port"),
        (["cluster-start", "2"], {}, "N='2' must be 3-9 nodes"),
        (["fetch"], {"KAFKA_VERSION": "3.9.1"}, "is not a Kafka 4.x release"),
    ],
)
def test_bad_input_is_one_error_line(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = run_script(*args, env=script_env(KAFKA_DATA_DIR=str(tmp_path), **env), timeout=60)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert "line " not in result.stderr  # no bash trace


def test_fetch_resolves_once_then_reuses_the_cache(tmp_path: Path) -> None:
    try:
        ensure_fetched()  # warms ~/.m2 so this test needs the network at most once per machine
    except KafkaUnavailable as exc:
        unavailable(str(exc))
    env = script_env(ACCESSWATCH_CACHE=str(tmp_path / "cache"))
    first = run_script("fetch", env=env, timeout=900)
    assert first.returncode == 0, first.stderr
    home = tmp_path / "cache" / f"kafka-{KAFKA_VERSION}"
    lib = home / "lib"
    jars = sorted(p.name for p in lib.glob("*.jar"))
    assert f"kafka_2.13-{KAFKA_VERSION}.jar" in jars
    log4j = [j.removeprefix("log4j-api-") for j in jars if j.startswith("log4j-api-")]
    assert len(log4j) == 1 and f"log4j-core-{log4j[0]}" in jars
    # The slf4j bridge must match the slf4j the broker was built with (1.x for Kafka 4.1).
    slf4j = [j.removeprefix("slf4j-api-") for j in jars if j.startswith("slf4j-api-")]
    bridge = "log4j-slf4j-impl" if slf4j[0].startswith("1.") else "log4j-slf4j2-impl"
    assert [j for j in jars if j.startswith("log4j-slf4j")] == [f"{bridge}-{log4j[0]}"]
    assert f"<artifactId>{bridge}</artifactId>" in (home / "pom.xml").read_text()

    # Second run: no Maven at all (so no network), same jars.
    second = run_script("fetch", env={**env, "MVN": "/nonexistent/mvn"}, timeout=60)
    assert second.returncode == 0, second.stderr
    assert "using cached jars" in second.stdout
    assert sorted(p.name for p in lib.glob("*.jar")) == jars


def test_start_refuses_a_port_in_use(tmp_path: Path) -> None:
    try:
        ensure_fetched()
    except KafkaUnavailable as exc:
        unavailable(str(exc))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_script(
            "start",
            env=script_env(KAFKA_DATA_DIR=str(tmp_path), KAFKA_PORT=str(port)),
            timeout=120,
        )
    assert result.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    assert not (tmp_path / "node-1" / "kafka.pid").exists()


# --- one node -------------------------------------------------------------------------------


def test_single_node_serves_and_reports_status(apache_kafka: ApacheKafka) -> None:
    assert apache_kafka.bootstrap == f"127.0.0.1:{apache_kafka.port}"
    status = apache_kafka.script("status")
    assert f"node-1: running, pid {apache_kafka.pid()}" in status
    props = (apache_kafka.node_dir(1) / "server.properties").read_text()
    assert "listeners=PLAINTEXT://127.0.0.1:" in props  # loopback only
    assert "auto.create.topics.enable=false" in props
    assert "group.initial.rebalance.delay.ms=0" in props
    assert (apache_kafka.node_dir(1) / "logs" / "server.log").stat().st_size > 0  # log4j2 bound


def test_admin_creates_topics_and_nothing_is_auto_created(apache_kafka: ApacheKafka) -> None:
    create_topic(apache_kafka.bootstrap, "aw-admin", partitions=3, replication=1)
    partitions = topic_partitions(apache_kafka.bootstrap, "aw-admin")
    assert sorted(p["partition_index"] for p in partitions) == [0, 1, 2]

    producer = KafkaProducer(bootstrap_servers=apache_kafka.bootstrap, max_block_ms=3_000)
    try:
        with pytest.raises(KafkaTimeoutError):
            producer.send("aw-never-created", b"x").get(timeout=10)
    finally:
        producer.close(timeout=5)
    admin = KafkaAdminClient(bootstrap_servers=apache_kafka.bootstrap)
    try:
        assert "aw-never-created" not in admin.list_topics()
    finally:
        admin.close()


def test_produce_consume_round_trip(apache_kafka: ApacheKafka) -> None:
    create_topic(apache_kafka.bootstrap, "aw-roundtrip", partitions=2, replication=1)
    sent = [f"event-{i}".encode() for i in range(500)]
    produce(apache_kafka.bootstrap, "aw-roundtrip", sent)
    got = consume(apache_kafka.bootstrap, "aw-roundtrip", "aw-rt", expected=len(sent))
    assert sorted(got) == sorted(sent)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_restart_keeps_messages_and_offsets(apache_kafka: ApacheKafka, sig: int) -> None:
    topic, group = f"aw-durable-{sig.name.lower()}", f"aw-durable-{sig.name.lower()}"
    create_topic(apache_kafka.bootstrap, topic, partitions=2, replication=1)
    before = [f"before-{i}".encode() for i in range(200)]
    produce(apache_kafka.bootstrap, topic, before)
    # The group reads them all and commits that position.
    assert sorted(consume(apache_kafka.bootstrap, topic, group, len(before))) == sorted(before)
    after = [f"after-{i}".encode() for i in range(100)]
    produce(apache_kafka.bootstrap, topic, after)

    old_pid = apache_kafka.pid()
    apache_kafka.stop(sig)
    assert apache_kafka.pid() is None
    assert not port_answers(apache_kafka.port)
    apache_kafka.start()
    assert apache_kafka.pid() not in (None, old_pid)

    # The committed offset survived: the group resumes with exactly the unread messages...
    assert sorted(consume(apache_kafka.bootstrap, topic, group, len(after))) == sorted(after)
    # ...and the log kept everything for a new group.
    everything = before + after
    fresh = consume(apache_kafka.bootstrap, topic, f"{group}-fresh", len(everything))
    assert sorted(fresh) == sorted(everything)


# --- three nodes ----------------------------------------------------------------------------


def test_cluster_keeps_serving_after_one_broker_dies(kafka_cluster: KafkaCluster) -> None:
    bootstrap = kafka_cluster.bootstrap
    props = (kafka_cluster.node_dir(1) / "server.properties").read_text()
    assert "min.insync.replicas=2" in props and "offsets.topic.replication.factor=3" in props

    create_topic(bootstrap, "aw-replicated", partitions=3, replication=3)
    for partition in topic_partitions(bootstrap, "aw-replicated"):
        assert sorted(partition["replica_nodes"]) == [1, 2, 3]
    first = [f"first-{i}".encode() for i in range(300)]
    produce(bootstrap, "aw-replicated", first)
    assert sorted(consume(bootstrap, "aw-replicated", "aw-cluster", len(first))) == sorted(first)

    # Kill the leader of partition 0: its partitions and maybe the group coordinator move.
    leader = next(
        p["leader_id"]
        for p in topic_partitions(bootstrap, "aw-replicated")
        if p["partition_index"] == 0
    )
    kafka_cluster.kill(leader)
    assert kafka_cluster.pid(leader) is None
    survivors = ",".join(
        f"127.0.0.1:{kafka_cluster.port + node - 1}" for node in (1, 2, 3) if node != leader
    )

    # acks=all still succeeds with 2 in-sync replicas (min.insync.replicas=2)...
    second = [f"second-{i}".encode() for i in range(300)]
    produce(survivors, "aw-replicated", second)
    # ...the group resumes from its committed offsets (RF 3 offsets topic)...
    assert sorted(consume(survivors, "aw-replicated", "aw-cluster", len(second))) == sorted(second)
    # ...and nothing acknowledged before the kill was lost.
    everything = first + second
    fresh = consume(survivors, "aw-replicated", "aw-cluster-fresh", len(everything))
    assert sorted(fresh) == sorted(everything)

    # The killed node comes back and rejoins every ISR.
    kafka_cluster.start()
    deadline = time.monotonic() + CONSUME_DEADLINE_S
    while time.monotonic() < deadline:
        isrs = [sorted(p["isr_nodes"]) for p in topic_partitions(bootstrap, "aw-replicated")]
        if all(isr == [1, 2, 3] for isr in isrs):
            break
        time.sleep(1)
    assert all(isr == [1, 2, 3] for isr in isrs), isrs
