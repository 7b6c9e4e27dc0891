"""`accesswatch produce --format`: source logs adapted, then sent keyed like contract events."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import orjson
import pytest

from streams import produce as produce_mod
from streams.batch import partition_for, split
from streams.broker import EmbeddedBroker
from tests.helpers import consume_all
from tests.test_adapters_sshd import LABSZ_CLOSED, LABSZ_FAILED, LABSZ_REPEATED


def _produce_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="accesswatch produce")
    produce_mod.add_arguments(parser)
    return produce_mod.run(parser.parse_args(argv))


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOGINS", "ACCESS", "IDENTITY", "ALERTS", "DLQ"):
        monkeypatch.delenv(f"ACCESSWATCH_TOPIC_{name}", raising=False)


def test_a_bad_format_is_one_line_and_exit_2(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "auth.log"
    f.write_bytes(LABSZ_FAILED + b"\n")
    assert _produce_cli([str(f), "--format", "syslogz", "--broker", "kafka://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown format 'syslogz'" in err


@pytest.mark.broker
def test_sshd_lines_are_sent_as_keyed_login_events_and_rejects_recorded(
        fresh_tansu: EmbeddedBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "auth.log"
    f.write_bytes(b"\n".join([LABSZ_FAILED, LABSZ_CLOSED, b"garbage", LABSZ_REPEATED]) + b"\n")
    rej = tmp_path / "rej.jsonl"
    code = _produce_cli([str(f), "--format", "sshd", "--year", "2016", "--broker",
                         fresh_tansu.url, "--rejects", str(rej), "--create-topics"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "sent 6 events (auth-logins=6)" in err and "rejected 1" in err
    assert "records (sshd): 4: 2 gave 6 events; skipped 1 (connection 1); rejected 1" in err
    records = consume_all(fresh_tansu.bootstrap, ["auth-logins"], 6)
    # produce batches by partition (contract v1.1): a message holds one event or several of
    # its partition, each keyed (by account_id) to the message's partition
    got = [(r.partition, orjson.loads(raw)) for r in records for raw in split(r.value) or [r.value]]
    assert sorted(e["account_id"] for _, e in got) == ["root"] * 5 + ["test9"]
    assert all(e["outcome"] == "failure" for _, e in got)
    topic_parts = _partitions(fresh_tansu.bootstrap, "auth-logins")
    assert all(p == partition_for(e["account_id"].encode(), topic_parts) for p, e in got)
    rows = [json.loads(x) for x in rej.read_text().splitlines()]
    assert [(r["record"], r["reason"], r["skipped"]) for r in rows] == [
        (2, "connection", True), (3, "unparsed_line", False)]


def _partitions(bootstrap: str, topic: str) -> int:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return len(consumer.partitions_for_topic(topic) or {0})
    finally:
        consumer.close()
