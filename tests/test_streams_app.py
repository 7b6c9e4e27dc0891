"""The Faust runtime: checkpoints (unit), settings (unit), and against a real Tansu broker:
bad messages go to the dead-letter topic and the worker keeps going; two workers in one
group split the partitions."""

from __future__ import annotations

import importlib.util
import time
from typing import Any

import orjson
import pytest

from detectors.engine import Directory, Engine
from detectors.geo import default_geo
from local.alerts import AlertReader
from local.worker import WorkerProcess
from simulation import SimConfig
from streams.checkpoint import assemble_checkpoint, checkpoint_records, restore, snapshot
from streams.config import settings_from_args
from streams.settings import Settings, SettingsError
from streams.snapshot import StateKeys
from streams.topics import TopicNames, create_topics
from tests.helpers import (
    assert_engine_counts,
    bare_runtime,
    produce_by_topic,
    replay_run,
    sim_lines,
    start_group,
    wait_committed,
)

KEYS = StateKeys(["test-state-key-0123456789"])
SIM = SimConfig(seed=3, customers=400, hours=2, attacks=("coupang",), attack_start_hour=0.5)


# ------------------------------------------------------------------------ unit tests


def test_checkpoint_round_trip_continues_exactly_like_the_original() -> None:
    """An engine checkpointed mid-stream and restored raises the same alerts afterwards."""
    lines = sim_lines(SIM)
    cut = len(lines) // 3
    a = Engine()
    for line in lines[:cut]:
        a.process_line(line)
    blob = snapshot(a, {"data-access": 41}, keys=KEYS, context="t/0")
    b, offsets = restore(blob, default_geo(), a.ctx.directory, keys=KEYS, context="t/0")
    assert offsets == {"data-access": 41}
    out_a: list[dict[str, Any]] = []
    out_b: list[dict[str, Any]] = []
    for line in lines[cut:]:
        out_a += a.process_line(line)[0]
        out_b += b.process_line(line)[0]
    out_a += a.flush()
    out_b += b.flush()
    assert out_a, "the scenario raises alerts after the cut"
    assert [x["alert_id"] for x in out_a] == [x["alert_id"] for x in out_b]
    assert [x["severity"] for x in out_a] == [x["severity"] for x in out_b]


def test_restored_engine_can_be_checkpointed_again() -> None:
    lines = sim_lines(SIM)
    a = Engine()
    for line in lines:
        a.process_line(line)
    b, _ = restore(snapshot(a, {}, keys=KEYS, context="t/0"), default_geo(), Directory(),
                   keys=KEYS, context="t/0")
    c, _ = restore(snapshot(b, {}, keys=KEYS, context="t/0"), default_geo(), Directory(),
                   keys=KEYS, context="t/0")
    assert c.tracked() == a.tracked()


def test_checkpoint_chunks_reassemble_and_detect_corruption() -> None:
    import random

    blob = bytes(range(256)) * 9000  # compressible part
    # incompressible (seeded): forces more than one 512 KiB chunk
    blob += random.Random(7).randbytes(1_500_000)
    recs = checkpoint_records(3, blob)
    assert len(recs) >= 4 and recs[-1][0] == b"p3"  # chunks first, manifest last
    assert all(len(v) <= 512 * 1024 for _, v in recs)
    table = dict(recs)
    assert assemble_checkpoint(3, table.get) == blob
    assert assemble_checkpoint(4, table.get) is None
    chunk = table[b"p3/1"]
    table[b"p3/1"] = bytes([chunk[0] ^ 0xFF]) + chunk[1:]  # always a different byte
    with pytest.raises(ValueError):
        assemble_checkpoint(3, table.get)


def test_settings_from_env_and_flags() -> None:
    env = {"ACCESSWATCH_BROKER": "kafka://10.0.0.1:9092", "ACCESSWATCH_STORE": "memory",
           "ACCESSWATCH_ALERTMANAGER": "http://am1:9093, http://am2:9093",
           "ACCESSWATCH_TOPIC_ALERTS": "my-alerts", "ACCESSWATCH_WEB_PORT": "7000"}
    s = Settings.from_env(env)
    assert s.bootstrap == ["10.0.0.1:9092"]
    assert s.alertmanager == ("http://am1:9093", "http://am2:9093")
    assert s.topics.alerts == "my-alerts" and s.web_port == 7000
    import argparse

    args = argparse.Namespace(broker="kafka://127.0.0.1:1", partitions=2, web_port=None,
                              alertmanager=None, detectors="bulk_lookup")
    s2 = settings_from_args(args, env)
    assert s2.broker == "kafka://127.0.0.1:1" and s2.partitions == 2 and s2.web_port == 7000
    assert s2.detectors == ("bulk_lookup",)
    with pytest.raises(SettingsError, match="scheme"):
        settings_from_args(argparse.Namespace(broker="http://x:1"), env)
    with pytest.raises(SettingsError, match="not a valid int"):
        Settings.from_env({"ACCESSWATCH_PARTITIONS": "many"})


def test_event_loop_setting_from_env_and_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--event-loop uvloop`` is taken when uvloop is installed and refused with the reason
    when it is not; both cases are run, whichever this machine has."""
    import argparse

    import streams.settings as settings_mod

    assert Settings.from_env({"ACCESSWATCH_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"
    real = importlib.util.find_spec
    spec = real("json")

    def installed(has: bool) -> Any:
        return lambda name, *a: (spec if has else None) if name == "uvloop" else real(name, *a)

    monkeypatch.setattr(settings_mod.importlib.util, "find_spec", installed(True))
    s = settings_from_args(argparse.Namespace(event_loop="uvloop"), {})
    assert s.event_loop == "uvloop"
    monkeypatch.setattr(settings_mod.importlib.util, "find_spec", installed(False))
    with pytest.raises(SettingsError, match="needs the uvloop package"):
        settings_from_args(argparse.Namespace(event_loop="uvloop"), {})
    with pytest.raises(SettingsError, match="event loop must be one of"):
        settings_from_args(argparse.Namespace(event_loop="trio"), {})


def test_worker_bad_event_loop_is_one_line(capsys: Any) -> None:
    from streams.cli import main

    with pytest.raises(SystemExit) as exc:  # argparse rejects the choice: one usage line + exit 2
        main(["worker", "--broker", "kafka://127.0.0.1:1", "--event-loop", "trio"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--event-loop" in err and "Traceback" not in err


def test_worker_bad_broker_url_is_one_line(capsys: Any) -> None:
    from streams.cli import main

    assert main(["worker", "--broker", "http://nope:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "kafka://" in err[0]


# ---------------------------------------------------------------- broker-backed tests


def _read_dlq(bootstrap: str, topic: str, want: int, timeout: float = 60.0) -> list[Any]:
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    try:
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic))]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        got: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=500).values():
                got.extend(recs)
        return got
    finally:
        c.close()


@pytest.mark.broker
@pytest.mark.timeout(180)
def test_bad_messages_go_to_the_dlq_and_the_worker_keeps_running(
        fresh_tansu: Any, tmp_path: Any) -> None:
    from kafka import KafkaProducer

    names = TopicNames()
    create_topics(fresh_tansu.bootstrap, partitions=1)
    good = {"event_id": "g1", "ts": 1750734765, "actor_id": "c-1", "subject_id": "c-1",
            "resource": "address", "src_ip": "211.45.1.9"}
    bad = [
        (names.access, b"this is not json"),
        (names.access, b'{"event_id": "x1", "ts": 1750734765}'),  # required fields missing
        (names.logins, b'{"event_id": 7, "ts": "yesterday", "outcome": "success"}'),
        (names.access, b"[1, 2, 3]"),
    ]
    prod = KafkaProducer(bootstrap_servers=fresh_tansu.bootstrap)
    for topic, value in bad:
        prod.send(topic, key=b"k-" + topic.encode(), value=value)
    prod.send(names.access, key=b"c-1", value=orjson.dumps(good))
    prod.flush()
    prod.close()

    worker = WorkerProcess(fresh_tansu.url, partitions=1, data_dir=str(tmp_path))
    worker.start()
    try:
        worker.wait_ready()
        # the array is a batch (contract v1.1) of three events that are no objects: each is
        # dead-lettered alone, with the batch's offset and its index
        dead = len(bad) - 1 + 3
        got = _read_dlq(fresh_tansu.bootstrap, names.dlq, dead)
        assert worker.alive(), worker.log_tail(40)
        deadline = time.monotonic() + 30
        while worker.metric("accesswatch_events_total") < len(bad) + 1:
            assert time.monotonic() < deadline, worker.log_tail(40)
            time.sleep(0.3)
        invalid = worker.metric("accesswatch_invalid_events_total")
        dlq_counted = worker.metric("accesswatch_dlq_messages_total")
        assert worker.alive()
    finally:
        rc = worker.stop()
    assert len(got) == dead
    by_value = {r.value: dict(r.headers) for r in got}
    batch = [dict(r.headers) for r in got if r.value in (b"1", b"2", b"3")]
    assert sorted(h["aw-index"] for h in batch) == [b"0", b"1", b"2"]
    assert len({h["aw-offset"] for h in batch}) == 1
    assert {h["aw-reason"] for h in batch} == {b"not_object"}
    for topic, value in bad[:-1]:
        h = by_value[value]  # the original bytes, unchanged
        assert h["aw-topic"] == topic.encode()
        assert h["aw-partition"] == b"0"
        assert h["aw-offset"].isdigit()
        assert h["aw-reason"] in {b"invalid_json", b"missing_field", b"wrong_type",
                                  b"not_object", b"bad_value"}
    assert by_value[b"this is not json"]["aw-reason"] == b"invalid_json"
    assert {r.key for r in got} == {b"k-" + names.access.encode(), b"k-" + names.logins.encode()}
    assert invalid == dead and dlq_counted == dead
    assert rc == 0


@pytest.mark.broker
@pytest.mark.timeout(240)
def test_two_workers_in_one_group_split_the_partitions(fresh_tansu: Any, tmp_path: Any) -> None:
    names = TopicNames()
    create_topics(fresh_tansu.bootstrap, partitions=4)
    group = "accesswatch-pair"
    reader = AlertReader(fresh_tansu.bootstrap, names.alerts).start()
    workers: list[WorkerProcess] = []
    try:
        workers = start_group(fresh_tansu.url, tmp_path, group, partitions=4)
        lines = sim_lines(SIM)
        sent = produce_by_topic(fresh_tansu.bootstrap, lines)
        inputs = {t: n for t, n in sent.items() if t in (names.logins, names.access)}
        wait_committed(fresh_tansu.bootstrap, group, inputs, workers, reader)
        # every login and access processed once by the engine of its partition, every
        # identity change by each of the four partitions' engines
        assert_engine_counts(workers, replay_run(lines)[1], partitions=4)
        ident = sent.get(names.identity, 0)
        taken = [w.metric("accesswatch_events_total") - ident for w in workers]
        lags = [w.metric("accesswatch_consumer_lag_messages") for w in workers]
    finally:
        reader.stop()
        rcs = [w.stop() for w in workers]
    assert all(t > 0 for t in taken), taken  # each worker had a share of the partitions
    assert sum(taken) >= sum(inputs.values())  # together they took every input event
    assert lags == [0.0, 0.0]
    assert rcs == [0, 0]


def test_engine_events_gauge_sums_the_partitions_engines_and_survives_a_restore() -> None:
    """``accesswatch_engine_events{kind}``: the counts of this worker's partition engines,
    summed; an engine restored from its checkpoint brings its counts back with it."""


    from streams.runtime import PartitionState

    lines = sim_lines(SIM)
    half = len(lines) // 2
    engines = [Engine(), Engine()]
    for line in lines[:half]:
        engines[0].process_line(line)
    for line in lines[half:]:
        engines[1].process_line(line)
    rt = bare_runtime()
    rt.parts = {0: PartitionState(engines[0]), 1: PartitionState(engines[1])}

    def gauge() -> dict[str, float | None]:
        rt.flush_metrics()
        return {k: rt.metrics.sample("accesswatch_engine_events", kind=k)
                for k in ("login", "access", "identity", "late")}

    whole = Engine()
    for line in lines:
        whole.process_line(line)
    first = gauge()
    assert first["login"] == whole.stats["login"] > 0
    assert first["access"] == whole.stats["access"] > 0
    assert first["identity"] == whole.stats["identity"] > 0
    restored, _ = restore(snapshot(engines[1], {}, keys=KEYS, context="t/1"), default_geo(),
                          engines[1].ctx.directory, keys=KEYS, context="t/1")
    rt.parts[1] = PartitionState(restored, restored=True)
    assert gauge() == first
    del rt.parts[0]  # the partition moved to another worker
    assert gauge()["login"] == engines[1].stats["login"]
    assert "engines of partitions [1]: events " in rt.engine_summary()
