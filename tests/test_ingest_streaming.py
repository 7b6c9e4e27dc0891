"""`worker --ingest sshd:T1 --ingest cloudtrail:T2` on the embedded broker: raw sshd lines and
CloudTrail records (a ``Records`` document in one message among them) in, ``replay --format``'s
alerts out, and every unusable record dead-lettered with its reason."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors import adapters
from detectors.engine import Engine
from local.alerts import AlertReader
from local.worker import WorkerProcess
from streams.adapt import AdaptedInput
from streams.replay import replay
from streams.topics import TopicNames, create_topics
from tests.adapters_support import sample_obj
from tests.helpers import consume_all, wait_until_done
from tests.test_adapter_cloudtrail import _get_object

RAW = "raw-sshd"
RAW_CT = "raw-cloudtrail"


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


def cloudtrail_messages() -> list[bytes]:
    """CloudTrail as it reaches a raw topic, one Kafka message each, after the sshd lines' hour
    (AWS's documented records, tests/data/adapters/cloudtrail/PROVENANCE.md): a ``Records``
    document holding an AssumeRole that issues ASIALEGIT..., two reads with that key, and a
    management event no detector reads (rejected inside the document); a console login on its
    own; a read with ASIAFORGED..., a temporary key no sts call issued (unissued_session pages
    it); and a message that is no JSON."""
    login = sample_obj("cloudtrail", "sts_assume_role.json")
    login["eventTime"] = "2025-06-24T05:00:00Z"
    login["responseElements"]["credentials"]["accessKeyId"] = "ASIALEGITEXAMPLE"
    login["responseElements"]["assumedRoleUser"]["arn"] = (
        "arn:aws:sts::112233445566:assumed-role/Admin/Admin-user")
    mgmt = sample_obj("cloudtrail", "directconnect_describe.json")
    mgmt["eventTime"] = "2025-06-24T05:02:00Z"
    created = "2025-06-24T05:00:00Z"
    doc = {"Records": [
        login,
        _get_object("ASIALEGITEXAMPLE", created, "2025-06-24T05:01:00Z", "get-ok-1"),
        mgmt,
        _get_object("ASIALEGITEXAMPLE", created, "2025-06-24T05:03:00Z", "get-ok-2",
                    "customers/c-2/address.json"),
    ]}
    [console] = sample_obj("cloudtrail", "console_login_success.json")["Records"]
    console["eventTime"] = "2025-06-24T05:04:00Z"
    forged = _get_object("ASIAFORGEDEXAMPLE", "2025-06-24T05:05:00Z", "2025-06-24T05:10:00Z",
                         "get-forged", "customers/c-3/address.json")
    return [orjson.dumps(doc), orjson.dumps(console), orjson.dumps(forged), b"not json"]


def replayed(data: bytes, trail: bytes = b"") -> tuple[set[str], int]:
    """``replay --format sshd LOG --format cloudtrail TRAIL``: its alert ids and events."""
    eng = Engine()
    src = AdaptedInput([adapters.load("sshd", year=2025), adapters.load("cloudtrail")],
                       [("log", io.BytesIO(data)), ("trail", io.BytesIO(trail))])
    alerts = replay(src, eng, None, source=src)
    return {a["alert_id"] for a in alerts}, src.events


@pytest.mark.broker
@pytest.mark.timeout(600)
def test_ingest_agents_raise_replay_formats_alerts_and_dead_letter_the_unreadable(
        fresh_tansu: Any, tmp_path: Path) -> None:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    data = sshd_log()
    trail = cloudtrail_messages()
    expected, events = replayed(data, b"\n".join(trail) + b"\n")
    sshd_only, sshd_events = replayed(data)
    # brute_force pages the guessing host, unissued_session the forged key
    assert sshd_only and expected - sshd_only
    create_topics(fresh_tansu.bootstrap, partitions=1)
    admin = KafkaAdminClient(bootstrap_servers=fresh_tansu.bootstrap)
    try:
        admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1)
                             for t in (RAW, RAW_CT)])
    finally:
        admin.close()

    def send(topic: str, values: list[bytes]) -> None:
        prod = KafkaProducer(bootstrap_servers=fresh_tansu.bootstrap, linger_ms=5)
        for value in values:
            prod.send(topic, value=value)
        prod.flush()
        prod.close()

    # The two sources as replay reads its two files: the sshd log, then the trail. Both
    # agents write to the same logins topic: given both raw topics at once, they interleave
    # in any order, and a CloudTrail login dated 05:00 ahead of sshd logins dated 03:00 makes
    # those two hours late (brute_force scores them after its 03:00 state expired: another
    # episode; the CI runs that failed, 2 of 4). Sources hours apart in event time are merged
    # by no engine; the trail is produced once the sshd events are taken.
    send(RAW, data.splitlines())
    worker = WorkerProcess(fresh_tansu.url, partitions=1, data_dir=str(tmp_path),
                           extra=["--ingest", f"sshd:{RAW}", "--ingest", f"cloudtrail:{RAW_CT}"])
    reader = AlertReader(fresh_tansu.bootstrap, TopicNames().alerts)
    worker.start()
    reader.start()
    try:
        worker.wait_ready()
        wait_until_done(worker, reader, sshd_events, quiet=0.0)
        send(RAW_CT, trail)
        wait_until_done(worker, reader, events, alerts=len(expected))
        got = {a["alert_id"] for a in reader.alerts}
    finally:
        reader.stop()
        rc = worker.stop()
    assert got == expected, (sorted(expected - got), sorted(got - expected), worker.log_tail(60))
    assert rc == 0, worker.log_tail(40)
    dead = consume_all(fresh_tansu.bootstrap, [TopicNames().dlq], 3)
    got_dead = {(r.value, dict(r.headers)["aw-reason"], dict(r.headers).get("aw-record"))
                for r in dead}
    # the management event inside the Records document is dead-lettered alone, with its
    # place in the message; a message that is one record goes as it came
    mgmt = orjson.dumps(orjson.loads(trail[0])["Records"][2])
    assert got_dead == {
        (b"garbage that is no syslog line", b"sshd:unparsed_line", None),
        (mgmt, b"cloudtrail:unsupported_event", b"3"),
        (b"not json", b"cloudtrail:invalid_json", None),
    }


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
