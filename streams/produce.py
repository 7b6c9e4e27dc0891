"""``accesswatch produce``: send JSON-lines events to the topics, keyed for co-partitioning.

Each line is one event. Its kind is its ``kind`` field when present (``login``,
``access``, ``identity``), else told by its fields: ``outcome`` -> login,
``subject_id`` -> access, ``change`` -> identity. The key is what DESIGN.md fixes:
logins by ``account_id``, access by ``actor_id`` (so an account's logins and its own
requests land in the same partition number), identity changes by ``principal_id``,
else ``key_id``, else ``session_id``. The ORIGINAL bytes of the line are sent (only
the line ending is removed); nothing is re-serialised.

A line that is not a JSON object or whose kind cannot be told goes, unchanged, to
``default_topic`` when one is given (e.g. the DLQ, or an input topic to exercise the
workers' dead-letter path); otherwise it is counted as rejected and reported with its
line number. Blank lines are skipped. Events that have a kind but miss a required
field are sent as they are: validating them is the workers' job (they dead-letter them
with the reason).

The producer is kafka-python's, idempotent by default (it works on Tansu, unlike
aiokafka's), with linger and large batches for throughput.

Order across topics (``ordered``, on by default): a record is never sent while a login or
identity event more than ``order_slack`` seconds (event time) older than it is still
unacknowledged; the producer flushes and waits for it first. Kafka orders records within a
partition only: without this, a leader failover of ``auth-logins`` holds its records in the
producer (retrying) while ``data-access`` records, led by another broker, go on, and no
consumer can see records that are still in a producer. A worker would then judge sessions
whose logins are held up as issued by no login. Normally a login is acknowledged long
before the next record needs it and nothing waits; files whose event time runs much faster
than the wall clock (simulations) pay about one broker round trip per login. With batching
(``Batching``), a wait sends the open batches of logins only: the access batches keep
filling (each of their records was added after its own wait, so it may go whenever its
batch does), and stay full on such files.

>>> classify({"outcome": "success", "account_id": "a1"})
('login', b'a1')
>>> classify({"kind": "identity", "change": "key_revoked", "key_id": "k7"})
('identity', b'k7')
>>> classify({"hello": 1})
(None, 'no kind: none of kind, outcome, subject_id, change')
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from detectors import events as E
from detectors.events import parse_ts
from streams import adapt
from streams.batch import frame as batch_frame
from streams.broker import BrokerUnavailable, bootstrap_servers, check_reachable
from streams.kafka_security import KafkaSecurity, KafkaSecurityError, check_connection, or_env
from streams.kafka_security import add_arguments as add_kafka_security_arguments
from streams.progress import ProgressLine
from streams.topics import TopicNames, create_topics

__all__ = [
    "KINDS",
    "Batching",
    "ProduceError",
    "ProduceStats",
    "Producer",
    "Reject",
    "add_arguments",
    "classify",
    "produce_lines",
    "run",
]

KINDS = E.KINDS
#: The fields that key each kind, in order of preference (``detectors.events.KEY_FIELDS``).
KEY_FIELDS = E.KEY_FIELDS

#: Event-time seconds a record may be ahead of an unacknowledged login or identity event
#: (well inside unissued_session's 60 s login_lateness for late logins).
ORDER_SLACK = 1.0

#: How many reject records ``ProduceStats`` keeps for the summary.
REJECT_SAMPLES = 20

#: kafka-python producer settings: linger and large batches for throughput (idempotent by default).
PRODUCER_DEFAULTS: dict[str, Any] = {
    "linger_ms": 20,
    "batch_size": 512 * 1024,
    "max_request_size": 4 * 1024 * 1024,
    "acks": "all",
}


@dataclass(frozen=True)
class Batching:
    """Batched messages (contract v1.1): events of one partition of one topic go in one
    message (JSON lines, each event's bytes as read), at most ``events`` events and
    ``max_bytes`` bytes, sent at the latest ``linger`` seconds after its first event."""

    events: int = 500
    max_bytes: int = 256 * 1024
    linger: float = 0.020

    @classmethod
    def from_settings(cls, settings: Any) -> Batching | None:
        """The settings' batching; None for one event a message."""
        if settings.produce_batch_events <= 1:
            return None
        return cls(settings.produce_batch_events, settings.produce_batch_bytes,
                   settings.produce_linger_ms / 1000.0)


class _Pending:
    """An event in a batch not sent yet: done once the batch holding it is acknowledged."""

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: Any = None

    @property
    def is_done(self) -> bool:
        return self.future is not None and self.future.is_done


@dataclass
class _Buffer:
    key: bytes
    events: list[bytes] = field(default_factory=list)
    size: int = 0
    since: float = 0.0
    pending: _Pending = field(default_factory=_Pending)


def _event_ts(event: dict[str, Any]) -> float | None:
    """The event's time in epoch seconds, or None when it has none we can read (such
    events are sent unordered; the workers judge their ``ts``)."""
    try:
        return parse_ts(event.get("ts"))
    except Exception:
        return None


class ProduceError(RuntimeError):
    """Producing cannot go on (missing topic, broker gone, delivery failures)."""


def classify(event: dict[str, Any]) -> tuple[str | None, bytes | str | None]:
    """``(kind, key)`` for an event object, or ``(None, reason)`` when its kind is unknown.

    The key is ``None`` when the keying field is missing (the event is still sent; the
    worker will dead-letter it).
    """
    kind = E.classify(event)  # the engine's rule: a null field counts as absent
    if kind is None:
        declared = event.get("kind")
        if declared is not None:
            return None, f"unknown kind {declared!r} (expected login, access or identity)"
        return None, "no kind: none of kind, outcome, subject_id, change"
    return kind, E.partition_key(event, kind)


@dataclass
class Reject:
    line: int
    reason: str
    raw: str
    source: str = ""

    def as_json(self) -> str:
        record: dict[str, Any] = {"line": self.line, "reason": self.reason, "raw": self.raw}
        if self.source:
            record["file"] = self.source
        return json.dumps(record, ensure_ascii=False)

    def as_text(self) -> str:
        where = f"{self.source}:{self.line}" if self.source else f"line {self.line}"
        return f"{where}: rejected: {self.reason}"


@dataclass
class ProduceStats:
    """What was sent where; ``summary()`` is the line printed to stderr."""

    sent: Counter[str] = field(default_factory=Counter)
    #: Kafka messages per topic (fewer than ``sent`` events when batched)
    messages: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    blank: int = 0
    lines: int = 0
    failed: int = 0
    seconds: float = 0.0
    reject_samples: list[Reject] = field(default_factory=list)
    first_failure: str = ""

    @property
    def total_sent(self) -> int:
        return sum(self.sent.values())

    @property
    def events_per_second(self) -> float:
        return self.total_sent / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        per_topic = ", ".join(f"{topic}={n}" for topic, n in sorted(self.sent.items())) or "none"
        text = (
            f"sent {self.total_sent} events ({per_topic}); rejected {self.rejected}; "
            f"{self.events_per_second:,.0f} events/s over {self.seconds:.2f}s"
        )
        if self.blank:
            text += f"; {self.blank} blank lines skipped"
        if self.failed:
            text += f"; {self.failed} FAILED to deliver ({self.first_failure})"
        return text


class _Progress:
    """``produce``'s progress line (``streams.progress.ProgressLine``): share of the input
    bytes read, lines, events sent and their rate."""

    def __init__(self, stream: IO[str] | None, total_bytes: int | None) -> None:
        self.line = ProgressLine(stream)
        self.total = total_bytes

    def update(self, lines: int, sent: int, done_bytes: int, force: bool = False) -> None:
        if not self.line.due(force):
            return
        pct = f" {100.0 * done_bytes / self.total:5.1f}%" if self.total else ""
        self.line.show(f"{pct} {lines:,} lines  {sent:,} sent  {self.line.rate(sent):,.0f} ev/s ")

    def close(self) -> None:
        self.line.close()


class Producer:
    """One kafka-python producer over any number of line sources; use as a context manager."""

    def __init__(
        self,
        bootstrap: str | list[str],
        *,
        topics: TopicNames | None = None,
        default_topic: str | None = None,
        rejects: IO[str] | None = None,
        on_reject: Callable[[Reject], None] | None = None,
        progress: IO[str] | None = None,
        total_bytes: int | None = None,
        producer_config: dict[str, Any] | None = None,
        check_topics: bool = True,
        ordered: bool = True,
        order_slack: float = ORDER_SLACK,
        security: KafkaSecurity | None = None,
        batching: Batching | None = None,
    ) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        from streams.faust_compat import fast_kafka_crc

        fast_kafka_crc()  # compiled checksums of record batches (issue 17: batched messages)
        self.servers = bootstrap_servers(bootstrap)
        #: TLS / SASL options of the producer and its admin client (None: the environment's)
        self._security = or_env(security).kafka_python_options()
        self.topics = topics or TopicNames.from_env()
        self._topic_of = {kind: self.topics.for_kind(kind) for kind in KINDS}
        self.default_topic = default_topic
        self.rejects = rejects
        self.on_reject = on_reject
        self.stats = ProduceStats()
        self._progress = _Progress(progress, total_bytes)
        self._done_bytes = 0
        self._known: set[str] | None = None
        self._checked: set[str] = set()
        self.ordered = ordered
        self.order_slack = order_slack
        #: logins and identity events not yet acknowledged: (event time, future), sent order
        self._leading: deque[tuple[float, Any]] = deque()
        self.order_waits = 0
        config = dict(PRODUCER_DEFAULTS)
        config.update(producer_config or {})
        config.setdefault("client_id", "accesswatch-produce")
        config.setdefault("bootstrap_timeout_ms", 10_000)
        config.setdefault("max_block_ms", 30_000)
        config.update(self._security)
        try:
            self._producer = KafkaProducer(bootstrap_servers=self.servers, **config)
        except KafkaError as exc:
            raise ProduceError(f"cannot reach broker {','.join(self.servers)}: {exc}") from exc
        if check_topics:
            self._known = self._list_topics()
        self._started = time.monotonic()
        #: issue 17: events by (topic, partition) waiting to go out in one message
        self.batching = batching if batching is not None and batching.events > 1 else None
        self._buffers: dict[tuple[str, int], _Buffer] = {}
        self._batched = {self._topic_of["login"], self._topic_of["access"]}
        #: the topics of the records others wait for (``_wait_leading``): logins (identity
        #: changes go one a message)
        self._leads = frozenset(t for k, t in self._topic_of.items() if k != "access")
        self._partitions: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._lingerer: threading.Thread | None = None
        if self.batching is not None:
            self._lingerer = threading.Thread(target=self._linger, name="accesswatch-linger",
                                              daemon=True)
            self._lingerer.start()

    # -- topics ---------------------------------------------------------------

    def _list_topics(self) -> set[str]:
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.servers,
                client_id="accesswatch-produce-admin",
                bootstrap_timeout_ms=10_000,
                **self._security,
            )
        except KafkaError as exc:
            self._producer.close(timeout=1)
            raise ProduceError(f"cannot reach broker {','.join(self.servers)}: {exc}") from exc
        try:
            return set(admin.list_topics())
        finally:
            with contextlib.suppress(Exception):
                admin.close()

    def _require(self, topic: str) -> None:
        if self._known is None or topic in self._checked:
            return
        if topic not in self._known:
            raise ProduceError(
                f"topic {topic!r} does not exist on {','.join(self.servers)} "
                "(topics are not auto-created: run `accesswatch topics create` "
                "or pass --create-topics)"
            )
        self._checked.add(topic)

    # -- sending --------------------------------------------------------------

    def _failed(self, exc: BaseException, events: int = 1) -> None:
        if not self.stats.failed:
            self.stats.first_failure = f"{type(exc).__name__}: {exc}"
        self.stats.failed += events

    def _send(self, topic: str, key: bytes | None, value: bytes) -> Any:
        self._require(topic)
        if self.batching is not None and key is not None and topic in self._batched:
            return self._add(topic, key, value)  # identity changes: one a message (v1.1)
        future = self._producer.send(topic, value=value, key=key)
        future.add_errback(self._failed)
        self.stats.sent[topic] += 1
        self.stats.messages[topic] += 1
        return future

    # -- batches (issue 17) -----------------------------------------------------

    def _partition(self, topic: str, key: bytes) -> int:
        """The partition the producer's default partitioner gives ``key`` (murmur2, as
        Java's and the worker's ``streams.batch.partition_for``): the one a one-event message
        of that key goes to."""
        from streams.batch import partition_for

        n = self._partitions.get(topic)
        if n is None:
            parts = self._producer.partitions_for(topic) or {0}
            n = self._partitions[topic] = len(parts)
        return partition_for(key, n)

    def _add(self, topic: str, key: bytes, value: bytes) -> _Pending:
        """Put an event in its partition's batch (sent when full, or by the lingerer).
        Events of one key share a partition, hence a buffer, in the order read: per-key
        order holds."""
        assert self.batching is not None
        partition = self._partition(topic, key)
        with self._lock:
            buf = self._buffers.get((topic, partition))
            if buf is not None and (len(buf.events) >= self.batching.events
                                    or buf.size + 1 + len(value) > self.batching.max_bytes):
                self._ship(topic, partition)
                buf = None
            if buf is None:
                buf = self._buffers[(topic, partition)] = _Buffer(key, since=time.monotonic())
            buf.events.append(value)
            buf.size += len(value) + 1
            self.stats.sent[topic] += 1
            pending = buf.pending
            if len(buf.events) >= self.batching.events:
                self._ship(topic, partition)
        return pending

    def _ship(self, topic: str, partition: int) -> None:
        """Send one partition's batch (under the lock)."""
        buf = self._buffers.pop((topic, partition))
        value = batch_frame(buf.events)
        n = len(buf.events)
        future = self._producer.send(topic, value=value, key=buf.key, partition=partition)
        future.add_errback(lambda exc, n=n: self._failed(exc, n))
        buf.pending.future = future
        self.stats.messages[topic] += 1

    def _ship_all(self, older_than: float | None = None,
                  topics: frozenset[str] | None = None) -> None:
        """Send the batches that waited ``older_than`` (None: all), of ``topics`` (None:
        every topic)."""
        with self._lock:
            now = time.monotonic()
            for tp, buf in list(self._buffers.items()):
                if (older_than is None or now - buf.since >= older_than) and (
                        topics is None or tp[0] in topics):
                    self._ship(*tp)

    def _linger(self) -> None:
        """Send every batch whose first event waited ``linger`` (a thread: a source that
        goes quiet, stdin for one, must not hold its last events back)."""
        assert self.batching is not None
        step = max(self.batching.linger / 2, 0.001)
        while not self._stop.wait(step):
            try:
                self._ship_all(self.batching.linger)
            except Exception as exc:  # a producer closed under it: close() reports the rest
                self._failed(exc)

    def _wait_leading(self, ts: float) -> None:
        """Before a record of event time ``ts``: wait until every login or identity event
        older than ``ts - order_slack`` is acknowledged (see the module's docstring)."""
        leading = self._leading
        while leading and leading[0][1].is_done:
            leading.popleft()
        if not leading or leading[0][0] >= ts - self.order_slack:
            return
        self.order_waits += 1
        if self.batching is not None:
            self._ship_all(topics=self._leads)  # the batches holding them go now; the
            # access batches keep filling: each of their records waited here before it was
            # added, so it may go whenever its batch does
        self._producer.flush()  # sends what lingers; returns once all of it is acknowledged
        leading.clear()

    def record_reject(self, record: dict[str, Any]) -> None:
        """A source record that gave no event (``--format``; see :mod:`streams.adapt`):
        written to the rejects file as it is; counted as rejected unless it was skipped
        (read, not an event: the adapter's summary counts those)."""
        if not record.get("skipped"):
            self.stats.rejected += 1
        if self.rejects is not None:
            self.rejects.write(json.dumps(record, ensure_ascii=False) + "\n")

    def _reject(self, number: int, reason: str, raw: bytes, source: str) -> None:
        self.stats.rejected += 1
        record = Reject(number, reason, raw.decode("utf-8", "replace"), source)
        if len(self.stats.reject_samples) < REJECT_SAMPLES:
            self.stats.reject_samples.append(record)
        if self.rejects is not None:
            self.rejects.write(record.as_json() + "\n")
        if self.on_reject is not None:
            self.on_reject(record)

    def send_lines(self, lines: Iterable[bytes], source: str = "") -> ProduceStats:
        """Send every line of one source; line numbers start at 1 per source."""
        stats = self.stats
        for number, line in enumerate(lines, 1):
            stats.lines += 1
            self._done_bytes += len(line)
            raw = line[:-1] if line.endswith(b"\n") else line
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark
                raw = raw[3:]
            if not raw.strip():
                stats.blank += 1
                continue
            why: bytes | str | None  # the reason it is not sent, or (kind set) its key
            try:
                event = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                kind, why = None, f"invalid JSON: {exc}"
            else:
                if isinstance(event, dict):
                    kind, why = classify(event)
                else:
                    kind, why = None, f"not a JSON object but {type(event).__name__}"
            if kind is not None:
                ts = _event_ts(event) if self.ordered else None
                if ts is not None:
                    self._wait_leading(ts)
                future = self._send(self._topic_of[kind], why, raw)  # type: ignore[arg-type]  # kind set: why is the key
                if ts is not None and kind != "access":
                    leading = self._leading
                    while leading and leading[0][1].is_done:  # bounded on login-only files
                        leading.popleft()
                    leading.append((ts, future))
            elif self.default_topic is not None:
                self._send(self.default_topic, None, raw)
            else:
                self._reject(number, str(why), raw, source)
            if number % 2048 == 0:
                self._progress.update(stats.lines, stats.total_sent, self._done_bytes)
        return stats

    def close(self, timeout: float = 60.0) -> ProduceStats:
        """Flush everything, close the producer and fill in the timing."""
        from kafka.errors import KafkaError

        try:
            if self._lingerer is not None:
                self._stop.set()
                self._lingerer.join()
                self._lingerer = None
            self._ship_all()
            self._producer.flush(timeout=timeout)
        except KafkaError as exc:
            self._failed(exc)
        finally:
            with contextlib.suppress(Exception):
                self._producer.close(timeout=5)
            self.stats.seconds = time.monotonic() - self._started
            self._progress.update(
                self.stats.lines, self.stats.total_sent, self._done_bytes, force=True
            )
            self._progress.close()
        return self.stats

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def produce_lines(
    lines: Iterable[bytes],
    bootstrap: str | list[str],
    *,
    topics: TopicNames | None = None,
    default_topic: str | None = None,
    rejects: IO[str] | None = None,
    progress: bool = False,
    source: str = "",
    producer_config: dict[str, Any] | None = None,
    security: KafkaSecurity | None = None,
) -> ProduceStats:
    """Send JSON lines (bytes, with or without their ``\\n``) and return what happened.

    ``progress=True`` draws a progress line on stderr when stderr is a terminal.
    Raises ``ProduceError`` when a target topic does not exist or the broker is gone.
    """
    stream = sys.stderr if progress and sys.stderr.isatty() else None
    producer = Producer(
        bootstrap,
        topics=topics,
        default_topic=default_topic,
        rejects=rejects,
        progress=stream,
        producer_config=producer_config,
        security=security,
    )
    try:
        producer.send_lines(lines, source)
    finally:
        stats = producer.close()
    return stats


# ------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``accesswatch produce FILE...``."""
    parser.add_argument("files", nargs="+", metavar="FILE", help="JSON-lines files; - is stdin")
    parser.add_argument(
        "--broker",
        help="kafka://HOST:PORT[,HOST:PORT] (env ACCESSWATCH_BROKER, else the --config file's "
        "[kafka] broker, else kafka://127.0.0.1:9092)",
    )
    parser.add_argument(
        "--default-topic",
        metavar="TOPIC",
        help="send lines whose kind cannot be told (or that are not JSON objects) here, "
        "unchanged, instead of rejecting them",
    )
    parser.add_argument(
        "--rejects", metavar="FILE", help='write rejected lines as {"line","reason","raw"} JSON'
    )
    parser.add_argument(
        "--create-topics",
        action="store_true",
        help="create the accesswatch topics first (4 partitions; existing ones are kept)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when any line was rejected")
    parser.add_argument(
        "--unordered",
        action="store_true",
        help="do not hold a record back until older logins and identity events are "
        "acknowledged (faster on simulated files; a failover can then reorder topics)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress line even on a terminal"
    )
    parser.add_argument(  # issue 17: batched messages
        "--batch-events", dest="produce_batch_events", type=int, metavar="N",
        help="events of one partition per message at most ($ACCESSWATCH_PRODUCE_BATCH_EVENTS, "
        "default 500; 1: one event a message)")
    parser.add_argument(
        "--batch-bytes", dest="produce_batch_bytes", type=int, metavar="BYTES",
        help="bytes per batch message at most ($ACCESSWATCH_PRODUCE_BATCH_BYTES, default 262144)")
    parser.add_argument(
        "--linger-ms", dest="produce_linger_ms", type=float, metavar="MS",
        help="how long a partition's batch waits for more events "
        "($ACCESSWATCH_PRODUCE_LINGER_MS, default 20)")
    adapt.add_arguments(parser)
    add_kafka_security_arguments(parser)
    from streams.config import add_config_argument  # issue 16: the configuration file

    add_config_argument(parser)


def _fail(message: str, code: int) -> int:
    print(f"accesswatch produce: {' '.join(message.split())}", file=sys.stderr)
    return code


def _with_batch_flags(settings: Any, args: argparse.Namespace) -> Any:
    """``settings`` with the batching flags given laid over them, checked (``ValueError``)."""
    from dataclasses import replace

    from streams.settings import check_batching

    over = {k: v for k in ("produce_batch_events", "produce_batch_bytes", "produce_linger_ms")
            if (v := getattr(args, k, None)) is not None}
    settings = replace(settings, **over)
    check_batching(settings)
    return settings


def _open_sources(paths: list[str]) -> Iterator[tuple[str, Iterable[bytes]]]:
    for path in paths:
        if path == "-":
            yield "<stdin>", sys.stdin.buffer
        else:
            with open(path, "rb") as handle:
                yield path, handle


def run(args: argparse.Namespace) -> int:
    """Run ``accesswatch produce``: 0 ok, 1 broker/delivery trouble (or rejects with
    ``--strict``), 2 bad input (missing file, bad URL, a Kafka security setting that does not
    work: an untrusted certificate, a refused password, a TLS listener for a plaintext
    client)."""
    from kafka.errors import KafkaError

    paths: list[str] = list(args.files)
    if paths.count("-") > 1:
        return _fail("stdin (-) can be given only once", 2)
    for path in paths:
        if path != "-" and not os.path.isfile(path):
            what = "is a directory" if os.path.isdir(path) else "no such file"
            return _fail(f"{path}: {what}", 2)
        if path != "-" and not os.access(path, os.R_OK):
            return _fail(f"{path}: permission denied", 2)
    from streams.config import command_settings, kafka_security

    try:  # flags over the environment over the --config file (issue 16)
        settings = command_settings(args)
        settings = _with_batch_flags(settings, args)  # issue 17: batched messages
        servers = bootstrap_servers(args.broker or settings.broker)
        adapter_of = adapt.load(args)
        security = kafka_security(settings, args)
    except ValueError as exc:  # a bad file or URL, a format, a security setting that cannot work
        return _fail(str(exc), 2)
    names = settings.topics
    total = None if "-" in paths else sum(os.path.getsize(p) for p in paths)
    show = sys.stderr if sys.stderr.isatty() and not getattr(args, "no_progress", False) else None
    shown = 0

    def report(record: Reject) -> None:
        nonlocal shown
        shown += 1
        if shown <= REJECT_SAMPLES:
            if show is not None:
                show.write("\r\033[K")
            print(record.as_text(), file=sys.stderr)

    rejects_file: IO[str] | None = None
    try:
        if args.rejects:
            try:
                rejects_file = open(args.rejects, "w", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                return _fail(f"cannot write rejects file {args.rejects}: {exc.strerror}", 2)
        check_reachable(servers)
        check_connection(servers, security)
        if args.create_topics:
            create_topics(servers, names=names, security=security)
        producer = Producer(
            servers,
            topics=names,
            default_topic=args.default_topic,
            rejects=rejects_file,
            on_reject=report,
            progress=show,
            total_bytes=total,
            ordered=not args.unordered,
            security=security,
            batching=Batching.from_settings(settings),
        )
        adapted: adapt.AdaptedInput | None = None
        try:
            for i, (source, lines) in enumerate(_open_sources(paths)):
                adapter = adapter_of[i] if adapter_of is not None else None
                if adapter is None:
                    producer.send_lines(lines, source)
                    continue
                adapted = adapt.AdaptedInput(
                    [adapter], [(source, lines)],  # type: ignore[list-item]  # an open binary file (_open_sources)
                    producer.record_reject)
                producer.send_lines(adapted, source)
                print(f"accesswatch produce: {source}: {adapted.summary()}", file=sys.stderr)
        finally:
            stats = producer.close()
    except KafkaSecurityError as exc:  # the security settings or the broker's answer to them
        return _fail(str(exc), 2)
    except (ProduceError, BrokerUnavailable) as exc:
        return _fail(str(exc), 1)
    except OSError as exc:
        return _fail(f"{exc.filename or 'input'}: {exc.strerror or exc}", 1)
    except (KafkaError, RuntimeError, ValueError) as exc:
        return _fail(f"{type(exc).__name__}: {exc}", 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    finally:
        if rejects_file is not None:
            rejects_file.close()
    if shown > REJECT_SAMPLES:
        print(f"... and {shown - REJECT_SAMPLES} more rejected lines", file=sys.stderr)
    print(f"accesswatch produce: {stats.summary()}", file=sys.stderr)
    if stats.failed:
        return 1
    if stats.rejected and getattr(args, "strict", False):
        return 1
    return 0
