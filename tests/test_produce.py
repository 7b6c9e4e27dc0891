"""``accesswatch produce`` against a real Tansu: topics, keys, original bytes, partitions."""

from __future__ import annotations

import argparse
import io
import json
from collections import defaultdict
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from streams import produce as produce_mod
from streams.broker import EmbeddedBroker
from streams.produce import ProduceError, classify, produce_lines
from streams.topics import TopicNames
from tests.helpers import consume_all

# ------------------------------------------------------------------ kinds and keys


@pytest.mark.parametrize(
    ("event", "kind", "key"),
    [
        ({"outcome": "success", "account_id": "acct-1"}, "login", b"acct-1"),
        ({"subject_id": "c9", "actor_id": "acct-1"}, "access", b"acct-1"),
        ({"change": "principal_terminated", "principal_id": "emp-7"}, "identity", b"emp-7"),
        ({"change": "key_revoked", "key_id": "kid-3"}, "identity", b"kid-3"),
        ({"change": "session_revoked", "session_id": "s-1"}, "identity", b"s-1"),
        ({"change": "key_issued", "key_id": "k", "principal_id": "p"}, "identity", b"p"),
        ({"kind": "access", "outcome": "x", "actor_id": "a"}, "access", b"a"),  # kind wins
        ({"outcome": "success"}, "login", None),  # no key field: sent unkeyed
        ({"outcome": "success", "account_id": 42}, "login", b"42"),
        ({"outcome": "success", "account_id": True}, "login", None),
        ({"subject_id": "c", "actor_id": "ä"}, "access", "ä".encode()),
    ],
)
def test_classify(event: dict[str, object], kind: str, key: bytes | None) -> None:
    assert classify(event) == (kind, key)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"account_id": "a"}, "no kind"),
        ({"kind": "logins", "outcome": "success"}, "unknown kind 'logins'"),
        ({"kind": 3}, "unknown kind 3"),
    ],
)
def test_classify_unknown(event: dict[str, object], reason: str) -> None:
    kind, why = classify(event)
    assert kind is None and isinstance(why, str) and reason in why


# ------------------------------------------------------------------ helpers




def _end_offsets(bootstrap: str, topic: str) -> list[int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        ends = consumer.end_offsets(parts)
        return [ends[tp] for tp in parts]
    finally:
        consumer.close()


def _line(obj: dict[str, object]) -> bytes:
    return json.dumps(obj).encode()


# A small mixed file: odd spacing, key order, unicode escapes and CRLF must survive as sent.
LOGIN_A = b'{ "outcome":"success",  "account_id":"acct-A", "event_id":"l1", "ts":1}'
LOGIN_B = b'{"event_id":"l2","ts":2,"account_id":"acct-B","outcome":"failure","x":"\\u00e9"}'
ACCESS_A1 = (
    b'{"event_id":"a1","ts":3,"actor_id":"acct-A","subject_id":"acct-A","resource":"address"}'
)
ACCESS_A2 = b'{"kind":"access","event_id":"a2","ts":4,"actor_id":"acct-A","subject_id":"c2"}'
ACCESS_B = b'{"event_id":"a3","ts":5,"subject_id":"acct-B","actor_id":"acct-B","resource":"phone"}'
IDENT_P = b'{"event_id":"i1","ts":6,"change":"principal_terminated","principal_id":"emp-9"}'
IDENT_K = b'{"event_id":"i2","ts":7,"change":"key_revoked","key_id":"kid-1"}'
NOT_JSON = b"this is not json"
ARRAY = b"[1, 2, 3]"
NO_KIND = b'{"event_id":"n1","ts":8}'

MIXED = [
    LOGIN_A + b"\n",
    LOGIN_B + b"\r\n",
    b"\n",
    ACCESS_A1 + b"\n",
    NOT_JSON + b"\n",
    ACCESS_A2 + b"\n",
    IDENT_P + b"\n",
    ARRAY + b"\n",
    ACCESS_B + b"\n",
    NO_KIND + b"\n",
    IDENT_K,  # last line without a newline
]


# ------------------------------------------------------------------ against Tansu


@pytest.mark.broker
def test_produce_mixed_lines_lands_keyed_and_unchanged(
    tansu: EmbeddedBroker, tansu_topics: TopicNames
) -> None:
    names = tansu_topics
    rejects = io.StringIO()
    stats = produce_lines(MIXED, tansu.url, topics=names, rejects=rejects)

    assert stats.sent == {names.logins: 2, names.access: 3, names.identity: 2}
    assert stats.rejected == 3 and stats.blank == 1 and stats.lines == 11 and stats.failed == 0
    assert "sent 7 events" in stats.summary() and "rejected 3" in stats.summary()

    records = consume_all(tansu.bootstrap, [names.logins, names.access, names.identity], 7)
    got = {(r.topic, r.key, r.value) for r in records}
    assert got == {
        (names.logins, b"acct-A", LOGIN_A),
        (names.logins, b"acct-B", LOGIN_B),
        (names.access, b"acct-A", ACCESS_A1),
        (names.access, b"acct-A", ACCESS_A2),
        (names.access, b"acct-B", ACCESS_B),
        (names.identity, b"emp-9", IDENT_P),
        (names.identity, b"kid-1", IDENT_K),
    }
    # co-partitioning: an account's logins and its own requests share a partition number
    partition = {(r.topic, r.key): r.partition for r in records}
    for account in (b"acct-A", b"acct-B"):
        assert partition[(names.logins, account)] == partition[(names.access, account)]

    rejected = [json.loads(line) for line in rejects.getvalue().splitlines()]
    assert [(r["line"], r["raw"]) for r in rejected] == [
        (5, "this is not json"),
        (8, "[1, 2, 3]"),
        (10, NO_KIND.decode()),
    ]
    assert "invalid JSON" in rejected[0]["reason"]
    assert "not a JSON object" in rejected[1]["reason"]
    assert "no kind" in rejected[2]["reason"]
    assert _end_offsets(tansu.bootstrap, names.dlq) == [0, 0, 0, 0]  # nothing went to the DLQ


@pytest.mark.broker
def test_copartitioning_holds_for_many_accounts(
    tansu: EmbeddedBroker, tansu_topics: TopicNames
) -> None:
    names = tansu_topics
    lines = []
    for i in range(200):
        account = f"acct-{i}"
        lines.append(
            _line({"event_id": f"l{i}", "ts": i, "account_id": account, "outcome": "success"})
        )
        lines.append(
            _line({"event_id": f"a{i}", "ts": i, "actor_id": account, "subject_id": account})
        )
    stats = produce_lines(lines, tansu.bootstrap, topics=names)
    assert stats.total_sent == 400
    records = consume_all(tansu.bootstrap, [names.logins, names.access], 400)
    by_key: dict[bytes, set[int]] = defaultdict(set)
    for r in records:
        by_key[r.key].add(r.partition)
    assert len(by_key) == 200 and all(len(p) == 1 for p in by_key.values())
    assert len({p for ps in by_key.values() for p in ps}) == 4  # spread over all partitions


@pytest.mark.broker
def test_default_topic_takes_the_unclassifiable_lines_unchanged(
    tansu: EmbeddedBroker, tansu_topics: TopicNames
) -> None:
    names = tansu_topics
    stats = produce_lines(MIXED, tansu.bootstrap, topics=names, default_topic=names.dlq)
    assert stats.rejected == 0 and stats.sent[names.dlq] == 3
    values = sorted(r.value for r in consume_all(tansu.bootstrap, [names.dlq], 3))
    assert values == sorted([NOT_JSON, ARRAY, NO_KIND])


@pytest.mark.broker
def test_a_byte_order_mark_is_dropped_not_rejected(
    tansu: EmbeddedBroker, tansu_topics: TopicNames
) -> None:
    stats = produce_lines([b"\xef\xbb\xbf" + LOGIN_A + b"\n"], tansu.bootstrap, topics=tansu_topics)
    assert stats.rejected == 0 and stats.sent == {tansu_topics.logins: 1}
    assert [r.value for r in consume_all(tansu.bootstrap, [tansu_topics.logins], 1)] == [LOGIN_A]


@pytest.mark.broker
def test_missing_topic_is_a_clear_error(fresh_tansu: EmbeddedBroker) -> None:
    with pytest.raises(ProduceError, match="does not exist.*topics create"):
        produce_lines([LOGIN_A], fresh_tansu.bootstrap, topics=TopicNames())


# ------------------------------------------------------------------ the command


def _produce_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="accesswatch produce")
    produce_mod.add_arguments(parser)
    return produce_mod.run(parser.parse_args(argv))


@pytest.mark.broker
def test_cli_sends_files_writes_rejects_and_summarises(
    fresh_tansu: EmbeddedBroker,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACCESSWATCH_TOPIC_LOGINS", "cli-logins")
    first = tmp_path / "one.jsonl"
    first.write_bytes(b"".join(MIXED))
    second = tmp_path / "two.jsonl"
    second.write_bytes(LOGIN_A + b"\n{broken\n")
    rejects = tmp_path / "rejects.jsonl"
    code = _produce_cli(
        [str(first), str(second), "--broker", fresh_tansu.url, "--rejects", str(rejects),
         "--create-topics"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"{first}:5: rejected: invalid JSON" in err
    assert f"{second}:2: rejected: invalid JSON" in err
    assert "sent 8 events" in err and "cli-logins=3" in err and "rejected 4" in err
    rows = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["file"], r["line"]) for r in rows] == [
        (str(first), 5),
        (str(first), 8),
        (str(first), 10),
        (str(second), 2),
    ]
    records = consume_all(fresh_tansu.bootstrap, ["cli-logins"], 3)
    assert sorted(r.value for r in records) == sorted([LOGIN_A, LOGIN_B, LOGIN_A])

    assert _produce_cli([str(second), "--broker", fresh_tansu.url, "--strict"]) == 1


def test_cli_missing_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.jsonl"
    assert _produce_cli([str(missing), "--broker", "kafka://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err == f"accesswatch produce: {missing}: no such file\n"
    assert _produce_cli([str(tmp_path), "--broker", "kafka://127.0.0.1:9"]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_cli_bad_url_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "e.jsonl"
    events.write_bytes(LOGIN_A + b"\n")
    assert _produce_cli([str(events), "--broker", "kafka://nohost"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no port" in err


@pytest.mark.broker
def test_cli_missing_topic_is_one_line_and_exit_1(
    fresh_tansu: EmbeddedBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "e.jsonl"
    events.write_bytes(LOGIN_A + b"\n")
    assert _produce_cli([str(events), "--broker", fresh_tansu.url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("accesswatch produce: topic 'auth-logins' does not exist")
    assert err.count("\n") == 1


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOGINS", "ACCESS", "IDENTITY", "ALERTS", "DLQ"):
        monkeypatch.delenv(f"ACCESSWATCH_TOPIC_{name}", raising=False)


@pytest.mark.broker
def test_accesswatch_produce_reads_stdin(fresh_tansu: EmbeddedBroker) -> None:
    """The real command line, as a user runs it: `accesswatch produce - --broker ...`."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    stdin = LOGIN_A + b"\n" + ACCESS_A1 + b"\nnot json\n"
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "produce", "-", "--broker", fresh_tansu.url,
         "--create-topics"],
        input=stdin, capture_output=True, cwd=root, timeout=120,
    )  # fmt: skip
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert "<stdin>:3: rejected: invalid JSON" in err
    assert "sent 2 events (auth-logins=1, data-access=1); rejected 1" in err
    assert "Traceback" not in err and done.stdout == b""
    records = consume_all(fresh_tansu.bootstrap, ["auth-logins", "data-access"], 2)
    assert sorted(r.value for r in records) == sorted([LOGIN_A, ACCESS_A1])


@pytest.mark.broker
def test_progress_line_is_drawn_and_cleared(
    tansu: EmbeddedBroker, tansu_topics: TopicNames
) -> None:
    screen = io.StringIO()
    lines = [_line({"outcome": "success", "account_id": f"a{i}"}) + b"\n" for i in range(5000)]
    with produce_mod.Producer(
        tansu.bootstrap, topics=tansu_topics, progress=screen, total_bytes=sum(map(len, lines))
    ) as producer:
        producer.send_lines(lines)
    drawn = screen.getvalue()
    assert drawn.startswith("\r") and drawn.endswith("\r\033[K")
    assert "100.0% 5,000 lines  5,000 sent" in drawn
    assert "\n" not in drawn


# ------------------------------------------------------------- order across topics


class _HeldFuture:
    """A send not yet acknowledged until the fake producer is flushed."""

    def __init__(self) -> None:
        self.is_done = False

    def add_errback(self, fn: object) -> None:
        pass


class _FakeKafkaProducer:
    """Isolates Producer's ordering from a broker: records sends and flushes in order;
    a send is acknowledged only by a flush (a leader failing over, held indefinitely)."""

    def __init__(self, **config: object) -> None:
        self.log: list[tuple[str, str | None]] = []
        self.pending: list[_HeldFuture] = []

    def send(self, topic: str, value: bytes, key: bytes | None) -> _HeldFuture:
        self.log.append(("send", json.loads(value).get("event_id")))
        fut = _HeldFuture()
        self.pending.append(fut)
        return fut

    def flush(self, timeout: float | None = None) -> None:
        self.log.append(("flush", None))
        for fut in self.pending:
            fut.is_done = True
        self.pending.clear()

    def close(self, timeout: float | None = None) -> None:
        pass


def _ordered_run(monkeypatch: pytest.MonkeyPatch, ordered: bool) -> list[tuple[str, str | None]]:
    import kafka

    monkeypatch.setattr(kafka, "KafkaProducer", _FakeKafkaProducer)
    lines = [json.dumps(e).encode() for e in (
        {"event_id": "l1", "ts": 100.0, "account_id": "c1", "outcome": "success"},
        {"event_id": "a1", "ts": 100.5, "actor_id": "c1", "subject_id": "c1"},  # inside slack
        {"event_id": "a2", "ts": 102.0, "actor_id": "c1", "subject_id": "c1"},  # beyond it
        {"event_id": "a3", "ts": 103.0, "actor_id": "c2", "subject_id": "c2"},  # l1 acked
        {"event_id": "i1", "ts": "1970-01-01T00:01:50Z", "change": "key_revoked",
         "key_id": "k"},
        {"event_id": "a4", "ts": 120.0, "actor_id": "c2", "subject_id": "c2"},  # after i1
    )]
    prod = produce_mod.Producer("127.0.0.1:9", check_topics=False, ordered=ordered)
    prod.send_lines(lines)
    return prod._producer.log  # noqa: SLF001


def test_a_record_waits_for_an_older_login_still_in_the_producer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kafka orders records within a partition only: during a failover of auth-logins'
    leader the producer holds logins while access goes on. With ``ordered`` (the default)
    an access record more than ``order_slack`` newer than an unacknowledged login or
    identity event is sent only after a flush has acknowledged it; one inside the slack,
    or after the acknowledgement, is not held."""
    assert _ordered_run(monkeypatch, ordered=True) == [
        ("send", "l1"), ("send", "a1"), ("flush", None), ("send", "a2"), ("send", "a3"),
        ("send", "i1"), ("flush", None), ("send", "a4"),
    ]


def test_unordered_never_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    log = _ordered_run(monkeypatch, ordered=False)
    assert ("flush", None) not in log
    assert [e for _, e in log] == ["l1", "a1", "a2", "a3", "i1", "a4"]
