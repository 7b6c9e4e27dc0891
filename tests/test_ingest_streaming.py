"""`worker --ingest sshd:TOPIC` on the embedded broker: raw lines in, replay --format's alerts out."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path
from typing import Any

import pytest

from detectors import adapters
from detectors.engine import Engine
from streams.adapt import AdaptedInput
from streams.demo import AlertReader, WorkerProcess
from streams.replay import replay
from streams.topics import TopicNames, create_topics
from tests.test_parity import wait_until_done
from tests.test_produce import _consume

pytest_plugins = [
    "tests.broker_fixtures" if importlib.util.find_spec("tests") else "broker_fixtures"
]

RAW = "raw-sshd"


def sshd_log() -> bytes:
    """A host guessing root's password (35 tries in 12 min), someone logging in, the notices
    between them, and one line no adapter can read."""
    out = []
    for i in range(35):
        t = f"2025-06-24T03:{i * 20 // 60:02d}:{i * 20 % 60:02d}+00:00"
        out.append(f"{t} bastion sshd[{9000 + i}]: Failed password for root from 45.33.2.10 "
                   f"port {40000 + i} ssh2".encode())
        out.append(f"{t} bastion sshd[{9000 + i}]: Connection closed by 45.33.2.10 "
                   "[preauth]".encode())
    out.append(b"2025-06-24T03:15:00+00:00 bastion sshd[9999]: Accepted publickey for deploy "
               b"from 121.134.0.7 port 5000 ssh2: ED25519 SHA256:abc")
    out.append(b"garbage that is no syslog line")
    return b"\n".join(out) + b"\n"


def replayed(data: bytes) -> tuple[set[str], int]:
    eng = Engine()
    src = AdaptedInput(adapters.load("sshd", year=2025), [("log", io.BytesIO(data))])
    alerts = replay(src, eng, None, source=src)
    return {a["alert_id"] for a in alerts}, src.events


@pytest.mark.broker
@pytest.mark.timeout(600)
def test_ingest_agent_raises_replay_formats_alerts_and_dead_letters_the_unreadable(
        fresh_tansu: Any, tmp_path: Path) -> None:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    data = sshd_log()
    expected, events = replayed(data)
    assert expected  # brute_force pages the guessing host
    create_topics(fresh_tansu.bootstrap, partitions=1)
    admin = KafkaAdminClient(bootstrap_servers=fresh_tansu.bootstrap)
    try:
        admin.create_topics([NewTopic(RAW, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()
    prod = KafkaProducer(bootstrap_servers=fresh_tansu.bootstrap, linger_ms=5)
    for line in data.splitlines():
        prod.send(RAW, value=line)
    prod.flush()
    prod.close()
    worker = WorkerProcess(fresh_tansu.url, partitions=1, data_dir=str(tmp_path),
                           extra=["--ingest", f"sshd:{RAW}"])
    reader = AlertReader(fresh_tansu.bootstrap, TopicNames().alerts)
    worker.start()
    reader.start()
    try:
        worker.wait_ready()
        wait_until_done(worker, reader, events)
        got = {a["alert_id"] for a in reader.alerts}
    finally:
        reader.stop()
        rc = worker.stop()
    assert got == expected, (sorted(expected - got), sorted(got - expected))
    assert rc == 0, worker.log_tail(40)
    dead = _consume(fresh_tansu.bootstrap, [TopicNames().dlq], 1)
    assert [r.value for r in dead] == [b"garbage that is no syslog line"]
    assert dict(dead[0].headers)["aw-reason"] == b"sshd:unparsed_line"


def test_ingest_pairs_from_the_environment_and_flags(tmp_path: Path) -> None:
    from streams.settings import Settings, SettingsError

    toml = tmp_path / "gw.toml"
    toml.write_text("[fields]\nts='t'\nactor_id='a'\nsrc_ip='s'\npath='p'\n[[routes]]\n"
                    "template='/c/{subject_id}'\nresource='address'\n")
    s = Settings.from_env({"ACCESSWATCH_INGEST": f"sshd:raw-sshd, mapping:{toml}:raw-gw"})
    assert s.ingest_pairs() == [("sshd", "raw-sshd"), (f"mapping:{toml}", "raw-gw")]
    for bad, says in (("sshd", "expected FORMAT:TOPIC"), ("syslogz:raw", "unknown format"),
                      (f"mapping:{tmp_path / 'none.toml'}:raw", "mapping file not found")):
        with pytest.raises(SettingsError, match=says):
            Settings.from_env({"ACCESSWATCH_INGEST": bad}).validate()
