"""The runtime: what the agents of ``streams.app`` hand their events to.

``Runtime`` holds one Engine per input partition and does, with ``streams.app``'s agents
and timers around it (``create_app``):

- one agent over ``auth-logins`` + ``data-access`` (raw bytes, decoded once by the engine's
  orjson decoder). The two topics are co-partitioned (same count, logins keyed by
  ``account_id``, access by ``actor_id``), so partition *p* of both lands on one worker and
  feeds **one Engine per partition number**: an account's logins meet its own requests
  there, and the engine's whole state moves with the partition on a rebalance;
- a per-worker reader of **every** partition of ``identity-changes`` (no consumer group):
  the facts go into one ``Directory`` shared by this worker's engines, and each engine's
  detectors see every identity event once, when the partition's event time reaches the
  event's ts (as in a replay of the files; an engine restored from a checkpoint is given
  those after the checkpoint's identity offsets);
- a table ``<app_id>-engine-checkpoints`` (changelog, memory or RocksDB store) keyed by
  partition number, holding a snapshot of that partition's Engine plus the input offsets it
  has consumed and, per identity-changes partition, the offset it applied up to
  (``streams.snapshot``: an allow-listed msgpack graph, no pickle, with an HMAC-SHA256
  under the state key, bound to the table and partition). It is written every
  ``checkpoint_interval`` seconds and read back when the partition is assigned (after
  Faust's changelog recovery). A stored checkpoint that fails its MAC, is of an unknown
  version, cannot be decoded or is a pickle of the format before is rejected: logged at
  ERROR, counted (``accesswatch_checkpoint_rejected_total{reason}``), and the partition
  starts from a fresh engine at the committed offsets;
- alerts to ``access-alerts`` (JSON, key = ``alert_id``), bad input to ``accesswatch-dlq``
  (the original bytes as value, the original key, and headers ``aw-topic``,
  ``aw-partition``, ``aw-offset``, ``aw-reason``, ``aw-field``, ``aw-detail``; an ingest
  agent adds ``aw-record`` for one record of a message that framed into several);
- a 1 s event-time watermark: once a partition's input has been quiet for
  ``watermark_delay`` (60 s), its engine is advanced to (newest event ts it has seen) +
  (wall seconds since that event arrived) - ``watermark_delay``, so grace-window alerts fire
  without new events, and a shorter pause (a failover) fires no timer ahead of the events
  held up in it;
- ``/metrics`` on Faust's own web server (``--web-port``), rendered from the
  ``streams.metrics`` registry (base units; consumer lag in messages and rebalances
  included). ``--faust-metrics`` adds Faust's own Prometheus sensor to the same page
  (names ``faust_*``, runtime histograms in **milliseconds**, ~10% more CPU per event);
- logins and access of a partition merged by event time before the engine: while one
  topic has records the broker reported and this worker has not received yet (or has not
  been fetched at all, or not for ``FRESH_S``: its leader is gone, or not since the waiting
  record was written: its leader's answer may predate records written before that one),
  the other's events wait for them, at most ``merge_wait`` (60 s), so a catch-up after
  downtime or a failover does not run one topic ahead of the other. Live, both topics are
  fetched and received: an event waits at most for the other topic's next fetch answer. Records still in a producer's buffer are invisible
  here: a topic that arrives late anyway is handled by the engine (a late finding joins
  the episode it belongs to, same alert_id);
- the consumer's fetch wait capped (``fetch_max_wait_ms``, 100 ms; Faust fixes 1.5 s,
  which Tansu turns into 1.5 s of latency);
- an input event on a partition its key field (``account_id``, ``actor_id``) does not map to
  (its producer keyed it differently) is not processed there: it is re-sent once to its topic
  keyed by that field (``Rekey``; acked after the next checkpoint's producer flush, like every
  held event), and processed where it lands;
- records taken without holes (``Runtime.admit``): when a record arrives beyond the next
  offset a partition needs (Faust dropped the ones between, seen after SIGKILL restarts,
  and booked them as a "gap" its commit steps over), the partition is sought back and the
  missing records are fetched again; a partition the broker has records for that hands
  over nothing for ``RESEEK_AFTER`` seconds is fetched again too (``watch_delivery``).

Consistency (at-least-once, never lost, never half-applied):

Input events are **not acked when processed**: each partition holds its processed events
until the next checkpoint. A checkpoint (1) encodes the engine and its offsets as
they are between two events (a periodic one in a child forked there, off the event loop:
``streams.checkpoint_fork``; at a rebalance or shutdown, or with
``ACCESSWATCH_CHECKPOINT_FORK=off``, synchronously on the loop); (2) sends it to the table's changelog; (3) flushes the
producer, so the checkpoint and every alert raised before it are on the broker; (4) only
then acks the held events, so Faust commits input offsets **at most up to the
checkpoint**. After a crash the partition's new owner restores the checkpoint, Faust
redelivers from the committed offset (<= checkpoint), and events at or below the
checkpoint's offsets are skipped: nothing is applied twice, nothing is missed, and the
events after the checkpoint are processed again by the same restored state, so any alert
they raise again carries the same ``alert_id``. The price: up to ``checkpoint_interval``
seconds of events are re-processed after a crash (and their alerts re-sent, same ids), a
checkpoint costs an encoding of the partition's state (~0.11 s for a simulated day of 12,700
entities, more for millions: periodic checkpoints then back off so encoding takes at most
``CHECKPOINT_SHARE`` of the worker's time, the child's time when forked), and on Tansu (no compaction) the changelog keeps
every checkpoint, so recovery reads them all (on Kafka, compaction keeps the last).

Aggregates by source IP / subnet / ASN / key (bulk_lookup), with more than one partition, go
through the combiner of ``streams.combine``: each partition's engine pre-aggregates its share
over short windows and sends the views to the internal ``<app_id>-partials`` topic keyed by
entity, where one scorer engine per partition merges and scores them. With one partition the
engine scores its views in place, as ``replay`` does (a checkpoint written with the combiner
is reconfigured on restore, the views it held scored in place: ``PartitionState.rescore``).
Login bursts by source (credential_stuffing, password_spray) need every login of a source
and cannot be merged from counts: with more than one partition the input engines send each
login they take to ``<app_id>-logins-by-source``, keyed by its source AS, where one burst
engine per partition runs those two detectors (``streams.bursts``). account_takeover stays
per account; its "inside a burst" path, overseas_server and unissued_session's window counts
by source still see their partition's share.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import faust
import orjson
from faust.types import TP

from detectors import events as E
from detectors.engine import Directory, Engine, EngineConfig, discover
from detectors.geo import Geo
from streams import batch
from streams import faust_compat as compat
from streams.batch import partition_for
from streams.checkpoint import (
    assemble_checkpoint,
    checkpoint_gap,
    checkpoint_records,
    checkpoint_slot,
    restore,
    snapshot,
)
from streams.checkpoint_fork import ForkedEncode, ForkFailed, Job, Outcome, fork_encode
from streams.checkpoint_fork import available as fork_available
from streams.explain_web import watch_everywhere
from streams.metrics import ENGINE_EVENT_KINDS, SLOW_COMMIT_S, HistogramBatch, Metrics
from streams.settings import Settings
from streams.snapshot import SnapshotRejected, StateKeys

log = logging.getLogger("accesswatch.runtime")

MERGE_MAX = 50_000  # events a partition may hold back for the event-time merge
#: a partition whose last fetch answer is older than this (wall seconds) cannot be fetched
#: now (its leader is gone): its high watermark is stale
FRESH_S = 3.0
#: after this long without a record of an input partition whose broker reports records this
#: worker never received, fetch them again from the next offset it needs: seen after a
#: SIGKILL restart (Tansu), the consumer's read position at the end of a topic while none of
#: its records reached the agent, and the group's commit then stuck below them
RESEEK_AFTER = 5.0
#: after a seek back to fill a gap, records fetched before the seek (beyond the gap) are
#: dropped, for at most this long: they come again after the gap's records
REFETCH_WINDOW = 10.0
#: refetches of one missing offset before its records are taken as gone from the broker
#: (retention deleted them): the gap is then logged and accepted
REFETCH_TRIES = 3
#: seconds a "nothing unread in the other topic" answer of the consumer is reused (the
#: merge asks before every event when one topic's queue is empty)
BEHIND_CACHE = 0.05
INTERNAL_ERROR = "internal_error"
#: what an applied event gives to send (``Runtime._send_out``): an alert, a dead letter, an
#: event re-sent to its partition, a login to its burst engine
_ALERT, _DLQ, _REKEY, _BURST = "alert", "dlq", "rekey", "burst"

def identity_offset_key(topic: str, partition: int) -> str:
    """The key of an identity-changes partition's offset in a partition state's offsets
    (beside the input topics'): each engine checkpoints how far it applied identity events.

    >>> identity_offset_key("identity-changes", 2)
    'identity-changes#2'
    """
    return f"{topic}#{partition}"


def batch_offset_key(topic: str) -> str:
    """The key, in a partition state's offsets, of the offset of a batch message of
    ``topic`` the engine has taken part of (beside ``batch_index_key``: the index of the
    last event of it taken); absent when no batch is taken part way.

    >>> batch_offset_key("data-access"), batch_index_key("data-access")
    ('data-access@batch', 'data-access@index')
    """
    return f"{topic}@batch"


def batch_index_key(topic: str) -> str:
    """See :func:`batch_offset_key`."""
    return f"{topic}@index"


def _progress(offsets: dict[str, int]) -> int:
    """How far a checkpoint's offsets got, to compare two of them (a batch taken part
    way, ``batch_offset_key``, is not counted)."""
    return sum(v for k, v in offsets.items() if "@" not in k)


class Rekey:
    """An input event on a partition its key field does not map to: it is re-sent to its
    topic keyed by ``key`` (one ingress repartition) instead of being processed here."""

    __slots__ = ("key",)

    def __init__(self, key: bytes) -> None:
        self.key = key


def _written(msg: Any) -> float | None:
    """When ``msg``'s record was written (its timestamp, wall seconds), at most now (a
    producer's clock ahead of this one's must not hold events back); None when unknown."""
    ts = getattr(msg, "timestamp", None)
    if type(ts) is not float and type(ts) is not int:
        return None
    return min(float(ts), time.time())


def _read_partition(bootstrap: list[str], topic: str, partition: int,
                    quiet_polls: int = 3, security: Any = None) -> dict[bytes, bytes]:
    """Every record of one partition from its start, latest value per key; read until
    ``quiet_polls`` fetches in a row return nothing (not to the reported end offset, which
    Tansu reports low). Blocking: called once per partition when the table is stale."""
    from kafka import KafkaConsumer, TopicPartition

    from streams.kafka_security import or_env

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             fetch_max_wait_ms=200, request_timeout_ms=30_000,
                             **or_env(security).kafka_python_options())
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        out: dict[bytes, bytes] = {}
        quiet = 0
        while quiet < quiet_polls:
            recs = consumer.poll(timeout_ms=500).get(tp, [])
            quiet = 0 if recs else quiet + 1
            for r in recs:
                if r.key is not None:
                    out[r.key] = r.value
        return out
    finally:
        consumer.close()


class AppliedDirectory:
    """What a worker's partition engines see of its shared ``Directory``: every fact, read
    through; ``apply`` does nothing, the worker applied each identity change when it read it.
    An engine processes an identity change later, when its partition's event time gets
    there (``Runtime._release_identity``): applying it again then would take the shared
    directory back in time for the other partitions (a ``key_issued`` un-revoking a key the
    directory knows revoked since)."""

    __slots__ = ("_directory",)

    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    def apply(self, e: E.Event) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._directory, name)


def _identity_ts(item: tuple[float, str, int, E.Event]) -> float:
    return item[0]


def queue_identity(st: PartitionState, item: tuple[float, str, int, E.Event]) -> None:
    """Queue an identity event for the partition's engine by its time (events of one time in
    the order read). The reader takes identity-changes a partition after another: queued in
    the order read, a later change of one partition ahead of an earlier one of another held
    the earlier back until the engine's time passed the later (seen: keys announced in the
    file's first seconds, held back for hours behind a revocation, judged never announced)."""
    bisect.insort(st.identity, item, key=_identity_ts)


@dataclass
class PartitionState:
    """One input partition number: its engine, consumed offsets and not-yet-acked events."""

    engine: Engine
    offsets: dict[str, int] = field(default_factory=dict)
    held: list[Any] = field(default_factory=list)
    dirty: bool = False
    max_ts: float | None = None
    wall_at_max: float = 0.0
    last_wall: float = field(default_factory=time.monotonic)
    flushed: bool = True
    restored: bool = False
    queues: dict[str, deque[tuple[float, Any, Any, Any]]] = field(default_factory=dict)
    queued: int = 0
    delivered: dict[str, int] = field(default_factory=dict)
    created: float = field(default_factory=time.monotonic)
    waiting_since: float | None = None
    #: topic -> its delivered offset when a wait for it timed out: the merge does not wait
    #: for that topic again until it delivers something new (no crawl of one event per wait)
    gave_up: dict[str, int] = field(default_factory=dict)
    #: topic -> (offset sought back to, monotonic time of the seek): records beyond it that
    #: were fetched before the seek are dropped until it arrives (they come again)
    refetch: dict[str, tuple[int, float]] = field(default_factory=dict)
    #: (topic, missing offset) -> refetches tried for it
    refetch_tries: dict[tuple[str, int], int] = field(default_factory=dict)
    #: monotonic time the watermark last found the partition's input unsure (records of it
    #: on the broker not received, or no fresh fetch answer: ``_unread``): its quiet and its
    #: idle time count from the later of this and its last event
    unsure_at: float = 0.0
    #: topic -> (monotonic time until which the answer holds, how long an event may wait
    #: for the topic, the broker's end offset that made it wait): the merge's last
    #: ``_behind`` answer, and the wall time of the fetch answer it rests on (-inf: unknown)
    behind: dict[str, tuple[float, float, int, float]] = field(default_factory=dict)
    #: the chunk slot of this partition's last checkpoint (the next one uses the other)
    slot: int = 1
    #: identity events (ts, offset key, offset, event) this engine has not processed yet, in
    #: the order read: each goes in when the partition's event time reaches its ts
    identity: deque[tuple[float, str, int, E.Event]] = field(default_factory=deque)
    #: restored with window views in its outbox that no combiner sends any more (written with
    #: remote kinds, restored with one partition): scored in place before anything else
    #: (``Runtime._score_outbox``)
    rescore: bool = False

    def next_offset(self, topic: str) -> int:
        """The next offset of ``topic`` this partition needs (received or checkpointed + 1)."""
        return max(self.delivered.get(topic, -1), self.offsets.get(topic, -1)) + 1


# ------------------------------------------------------------------------ the runtime


class PartitionEngines:
    """One Engine per partition of ``topics``, with the partitions' consumed offsets and
    not-yet-acked events: restored from the checkpoint table ``table`` when a partition is
    first seen, records admitted without holes (``admit``), checkpointed and then acked
    (``checkpoint``). ``Runtime`` is this over the input topics; ``streams.side.SideEngines``
    over an internal topic of the worker group."""

    def __init__(self, app: faust.App, settings: Settings, metrics: Metrics, *,
                 topics: tuple[str, ...], table: str, config: EngineConfig, geo: Geo,
                 directory: Directory, state_keys: StateKeys,
                 check_behind: tuple[str, ...] = ()) -> None:
        """``check_behind``: the topics whose committed offsets a restored checkpoint is
        checked against (``_behind_commits``: the input runtime's inputs, a side engine's
        internal topic)."""
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.input_topics = topics
        self.check_behind = check_behind
        self.config = config
        self.geo = geo
        self.directory = directory
        self.state_keys = state_keys
        #: every identity event this worker read: (offset key, offset, event); the input
        #: runtime's reader fills it, side engines see none
        self.identity_log: list[tuple[str, int, E.Event]] = []
        #: every analyst verdict read from access-feedback (issue 18), applied to each engine
        #: by alert id (the input runtime's; side engines see none)
        self.feedback_log: list[Any] = []
        self.parts: dict[int, PartitionState] = {}
        self.table = app.Table(table, default=None, key_type=bytes, value_type=bytes,
                               partitions=settings.partitions)
        # this fills the holes of its topics itself (``admit``, ``watch_delivery``): a gap
        # Faust booked after a seek back made the group's commit crawl, one offset a round
        compat.keep_gaps_off(app.consumer, topics)
        #: held while events are applied and what they gave is sent, and while a checkpoint
        #: encodes the engines (not while it waits for the broker: ``checkpoint``)
        self._checkpoint_lock = asyncio.Lock()
        #: one checkpoint written at a time: slots alternate, acks follow in order
        self._checkpoint_writing = asyncio.Lock()
        self._checkpoint_not_before = 0.0
        #: the last forked child failed as a whole: the next periodic checkpoint is in process
        self._child_failed = False
        #: partition -> (next offset it needs, since when) while the broker reports more
        self._watch: dict[TP, tuple[int, float]] = {}
        #: input partition -> the last (committed, lowest acked) hole booked done
        #: (``_unstick_commits``), logged once
        self._booked: dict[TP, tuple[int, int]] = {}
        self.checkpoints = 0
        self.checkpoint_bytes = 0

    # ---- partitions -------------------------------------------------------------------
    def _fresh_engine(self) -> Engine:
        engine = Engine(self.config, geo=self.geo)
        engine.ctx.directory = self.directory
        return engine  # the identity events follow in ``_catch_up_identity``

    def state(self, partition: int) -> PartitionState:
        st = self.parts.get(partition)
        if st is not None:
            return st
        rejected: set[str] = set()
        st = self._load(partition, self.table.get, rejected)
        if st is not None:
            log.info("partition %d: engine restored from checkpoint (%s, offsets %s)",
                     partition, self.table.name, st.offsets)
        if (st is None and self._has_commits(partition)) or self._behind_commits(partition, st):
            st = self._restore_direct(partition, st, rejected)
        if rejected:
            for reason in sorted(rejected):
                self.metrics.checkpoint_rejected.labels(reason=reason).inc()
            if st is None:
                log.error("partition %d: checkpoint rejected (%s): the learned state is "
                          "discarded, a fresh engine takes over from the committed offsets",
                          partition, ", ".join(sorted(rejected)))
            else:
                log.error("partition %d: a checkpoint record was rejected (%s); restored "
                          "from the last valid one", partition, ", ".join(sorted(rejected)))
        if st is None:
            if not rejected:
                log.info("partition %d: no checkpoint; a fresh engine (%s)", partition,
                         self.table.name)
            st = PartitionState(self._fresh_engine())
        st.engine.ctx.configure_victims(self.config)  # today's key and choice, not the checkpoint's
        st.engine.ctx.configure_local(self.config.timezone)  # the decided zone, unless changed
        st.engine.config = replace(st.engine.config, max_entities=self.config.max_entities,
                                   max_state_bytes=self.config.max_state_bytes,  # today's caps
                                   relay_kinds=self.config.relay_kinds,  # today's partitions
                                   remote_kinds=self.config.remote_kinds)
        # the kinds bulk_lookup hands out to the combiner are today's too (none with one
        # partition); views a restored engine holds for a combiner that no longer runs are
        # scored in place before its next event (an outbox nobody sends would only grow)
        kinds = frozenset(self.config.remote_kinds)
        for d in st.engine.detectors.values():
            if hasattr(d, "remote_kinds") and d.remote_kinds != kinds:
                d.remote_kinds = kinds
        st.rescore = not kinds and st.engine.has_partials()
        st.engine.set_allowlist(self.config.allowlist)  # today's allow-list (issue 18)
        st.engine.config = replace(st.engine.config,
                                   feedback_suppress=self.config.feedback_suppress,
                                   feedback_watch=self.config.feedback_watch)
        for obj in self.feedback_log:  # verdicts read before this partition came here
            with contextlib.suppress(ValueError):
                st.engine.feedback(obj)
        st.engine.ctx.directory = AppliedDirectory(self.directory)  # type: ignore[assignment]  # the applied view answers the Directory calls the detectors make
        self._catch_up_identity(st)
        self.parts[partition] = st
        return st

    def _context(self, partition: int) -> str:
        """What a snapshot's MAC binds it to: this app's table and the partition."""
        return f"{self.settings.app_id}/{self.table.name}/{partition}"

    def _load(self, partition: int, get: Any, rejected: set[str]) -> PartitionState | None:
        """The checkpoint of ``partition`` in table records (``get(key)``) as a partition
        state; None when there is none or it is rejected (its reason added to ``rejected``)."""
        try:
            blob = assemble_checkpoint(partition, get)
            if blob is None:
                return None
            engine, offsets = restore(blob, self.geo, self.directory, keys=self.state_keys,
                                      context=self._context(partition))
        except SnapshotRejected as exc:
            rejected.add(exc.reason)
            log.debug("partition %d: %s", partition, exc)
            return None
        st = PartitionState(engine, offsets, restored=True, delivered=dict(offsets))
        st.slot = checkpoint_slot(partition, get) or 0
        return st

    def _has_commits(self, partition: int) -> bool:
        """True when the group has committed offsets of this partition's input topics: it
        was processed before, so a checkpoint should exist even if the table lacks it. A
        fresh partition (nothing committed) has none to look for, and the direct changelog
        read (blocking, ~1.5 s) is skipped: measured, it stalled a fresh worker's first
        seconds (every event, alerts included, waited)."""
        try:
            committed = compat.committed_offsets(self.app.consumer)
            return any(committed.get(TP(t, partition)) for t in self.input_topics)
        except Exception:
            return True

    def _behind_commits(self, partition: int, st: PartitionState | None) -> bool:
        """True when the group committed input offsets beyond what the restored checkpoint
        covers: the table missed the newest checkpoints. Faust's table
        recovery reads the changelog up to the end offset the broker reports, and Tansu
        reports it low (seen: no checkpoint restored although one was written and the
        offsets it covers were committed; the events in between were then never applied)."""
        offsets = st.offsets if st is not None else {}
        try:
            committed = compat.committed_offsets(self.app.consumer)
            for topic in self.check_behind:
                c = committed.get(TP(topic, partition))
                if c is not None and c > offsets.get(topic, -1) + 1:
                    return True
        except Exception:
            return False
        return False

    def _restore_direct(self, partition: int, st: PartitionState | None,
                        rejected: set[str]) -> PartitionState | None:
        """The newest checkpoint of ``partition`` read from the changelog itself, to its
        real end (until fetches come back empty, not to the reported end offset)."""
        try:
            records = _read_partition(self.settings.bootstrap,
                                      self.table.changelog_topic.get_topic_name(), partition,
                                      security=self.settings.kafka_security())
        except Exception as exc:
            log.warning("partition %d: changelog not read directly (%s)", partition, exc)
            return st
        new = self._load(partition, records.get, rejected)
        if new is None:
            return st
        if st is not None and _progress(new.offsets) <= _progress(st.offsets):
            return st
        log.info("partition %d: engine restored from checkpoint (%s, read from the changelog: "
                 "the table lacked it)", partition, self.table.name)
        return new

    def drop(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.parts.pop(p, None)

    async def admit(self, st: PartitionState, msg: Any) -> bool:
        """Whether ``msg`` is the next record of its partition to take; else it is dropped.

        Records must reach the engine without holes. Seen after a SIGKILL restart: records
        fetched but never handed to the agent (Faust drops a record whose hand-over is cut
        short by a flow stop, yet moves its read offset past it), then a later record
        arrives. Faust books the hole as a "gap" (meant for compacted topics) that its
        commit steps over: those events would be lost for good. Here a hole is filled: the
        gap is taken out of Faust's books, the partition is sought back to the first missing
        offset and this record is dropped (it comes again, after the missing ones). A
        record this life already took (fetched again after such a seek) is dropped too. This
        life's first record of a partition must be the one the group committed, else the
        first the broker has (``_first_offset``; a restored checkpoint's next one when the
        group committed beyond it): a hole at the very start is filled the same way, below
        a restored checkpoint too (those records are only acked, and Faust's commit waits
        for every one of them).
        """
        topic = msg.topic
        off = msg.offset
        pending = st.refetch.get(topic)
        if pending is not None:
            want, at = pending
            if off == want:
                del st.refetch[topic]
            elif off > want and time.monotonic() - at < REFETCH_WINDOW:
                return False  # fetched before the seek: it comes again after ``want``
            else:
                del st.refetch[topic]
        prev = st.delivered.get(topic)
        covered = st.offsets.get(topic, -1)
        if prev is not None and off <= prev and off > covered:
            return False  # taken already in this life (fetched again after a seek)
        base = prev
        if base is None:  # this life's first record of the partition: where must it start?
            first = await self._first_offset(TP(topic, msg.partition))
            restored = topic in st.offsets
            if first is not None:  # below a checkpoint too: those records are acked with it
                base = min(first - 1, covered) if restored else first - 1
                st.delivered[topic] = base
            elif restored:
                base = covered
        if base is not None and off > base + 1:
            want = base + 1
            tries = st.refetch_tries.get((topic, want), 0)
            if tries < REFETCH_TRIES:
                st.refetch_tries[(topic, want)] = tries + 1
                log.warning("partition %d: %s offsets %d..%d were not handed to this worker; "
                            "fetching them again", msg.partition, topic, want, off - 1)
                if await self._refetch(TP(topic, msg.partition), want, off):
                    st.refetch[topic] = (want, time.monotonic())
                    return False
            else:
                log.warning("partition %d: %s offsets %d..%d are not on the broker any more "
                            "(fetched %d times); going on without them", msg.partition, topic,
                            want, off - 1, tries)
        if base is None or off > base:  # (a record inside the checkpoint taken again: held)
            st.delivered[topic] = off
        return True

    async def _first_offset(self, tp: TP) -> int | None:
        """The first record of ``tp`` this life must take: the group's committed offset
        (where Faust starts reading), else (nothing committed) the first offset the broker
        still has. None when neither is known.

        After a (re)start Faust can drop records it fetched but did not hand over (a flow
        stop during recovery cut the hand-over short, or cleared the stream's queue) while
        its read offset moves past them, and book no gap for them. Holes at the very start
        went unseen: a fresh state took the first record that came as its start, and Faust's
        commit stepped over the records before it (an episode builder restarted without a
        checkpoint lost the findings at the start of its partition, and an alert with them);
        a restored state skipped records its checkpoint covers but the group had not
        committed, which were then never acked, and Faust's commit stayed below them for good
        (its ``_new_offset`` waits for the offset after the committed one). Both were seen
        with fast delivery, which puts more records in the queues before a flow stop."""
        consumer = self.app.consumer
        try:
            committed = compat.committed_offsets(consumer).get(tp)
            if committed:  # Faust keeps a committed 0 as None
                return int(committed)
            earliest = await consumer.earliest_offsets(tp)
            first = earliest.get(tp)
        except Exception as exc:
            log.debug("%s[%d]: first offset unknown (%s)", tp.topic, tp.partition, exc)
            return None
        return int(first) if first is not None and first >= 0 else None

    async def _refetch(self, tp: TP, offset: int, upto: int | None = None) -> bool:
        """Seek ``tp`` back to ``offset`` and take ``offset..upto-1`` out of Faust's gap
        books (so its commit cannot step over them). True when the seek was made."""
        consumer = self.app.consumer
        try:
            compat.forget_gap(consumer, tp, offset, (upto if upto is not None else offset) + 1)
            await consumer.seek(tp, offset)
        except Exception as exc:
            log.warning("%s[%d] not fetched again from %d (%s)", tp.topic, tp.partition,
                        offset, exc)
            return False
        self.metrics.refetches.inc()
        return True

    async def watch_delivery(self) -> None:
        """Fetch again an input partition that the broker reports records for but that has
        handed this worker nothing for ``RESEEK_AFTER`` seconds (seen after a SIGKILL
        restart: the consumer's position at the end of the topic, none of its records
        delivered, the group's commit stuck below them for good). A partition with nothing
        taken and nothing committed is measured from the first offset the broker has."""
        try:
            consumer = self.app.consumer
            assignment = consumer.assignment()
            paused = compat.paused_partitions(consumer)
            committed = compat.committed_offsets(consumer)
        except Exception:
            return
        now = time.monotonic()
        watch = self._watch
        for tp in assignment:
            if tp.topic not in self.input_topics or tp in paused:
                continue
            st = self.parts.get(tp.partition)
            if st is not None:
                have: int | None = st.next_offset(tp.topic)
                if st.refetch.get(tp.topic) is not None:
                    have = st.refetch[tp.topic][0]
            else:
                have = committed.get(tp)
            hw = consumer.highwater(tp)
            if have is None and hw:  # nothing taken, nothing committed: from the broker's first
                have = await self._first_offset(tp)
            if have is None or hw is None or hw <= have:
                watch.pop(tp, None)
                continue
            seen = watch.get(tp)
            if seen is None or seen[0] != have:
                watch[tp] = (have, now)
                continue
            if now - seen[1] >= RESEEK_AFTER:
                log.warning("%s[%d]: the broker has records up to %d, none handed to this "
                            "worker beyond %d for %.0f s; fetching again", tp.topic,
                            tp.partition, hw, have - 1, now - seen[1])
                if await self._refetch(tp, have) and st is not None:
                    st.refetch[tp.topic] = (have, now)
                watch[tp] = (have, now)

    def _catch_up_identity(self, st: PartitionState) -> None:
        """Queue for a new partition engine (fresh, or restored from a checkpoint) the
        identity events this worker has read that the engine has not processed: all of them
        for a fresh engine; for a restored one, those after its checkpoint's identity offsets
        (read before the partition came here, they would otherwise never reach it)."""
        for key, offset, ev in self.identity_log:
            if offset > st.offsets.get(key, -1):
                queue_identity(st, (ev.ts, key, offset, ev))

    def _internal_error(self, stage: str, n: int = 1) -> None:
        self.metrics.internal_errors.labels(stage=stage).inc(n)

    def _count_engine(self, engine: Engine) -> None:
        """Add what the engine counted inside itself since the last call: errors it caught
        (logged there) and entities it evicted at its state cap."""
        errors = engine.drain_errors()
        if errors:
            self._internal_error("detector", errors)
        for det_id, n in engine.drain_evictions().items():
            self.metrics.state_evictions.labels(detector=det_id).inc(n)
        for reason, counts in (("repeat", engine.drain_suppressed()),  # issue 18
                               ("allowlist", engine.drain_held()),
                               ("feedback", engine.drain_held("feedback"))):
            for det_id, n in counts.items():
                self.metrics.suppressed_alerts.labels(detector=det_id, reason=reason).inc(n)

    # ---- checkpoints ----------------------------------------------------------------------
    async def checkpoint(self, partitions: Iterable[int] | None = None,
                         periodic: bool = False) -> int:
        """Checkpoint dirty engines, flush, then ack what the checkpoints cover.

        ``periodic`` (the timer's call) is skipped while the last checkpoints' encoding
        would take more than ``CHECKPOINT_SHARE`` of the time since: a state of millions of
        entities takes long to encode, and a fixed interval would then spend most of the
        worker's time (and its latency) on checkpoints. Rebalances and shutdown always
        checkpoint.

        The engines are encoded (and the events they cover taken off ``held``) under the
        checkpoint lock; the two producer flushes are waited for outside it (h-lbs): the
        events applied meanwhile are not in these checkpoints, and their output, sent after
        the encoding, is not needed before them (a flush covers it anyway). Holding the lock
        through the flushes stopped every partition for two broker round trips each
        checkpoint. Checkpoints themselves are written one at a time
        (``_checkpoint_writing``): a slot is never written by two at once, acks stay in
        order."""
        now = time.monotonic()
        if periodic and now < self._checkpoint_not_before:
            return 0
        async with self._checkpoint_writing:
            if periodic and self._fork():
                return await self._write_forked(now, partitions)
            self._child_failed = False
            return await self._write_checkpoint(now, partitions)

    def _fork(self) -> bool:
        """Periodic checkpoints encode in a forked child (``streams.checkpoint_fork``),
        except the one after a child that failed as a whole (died, killed, timed out: the
        out-of-memory killer, say): that one encodes in process, so a worker whose children
        keep dying still checkpoints (with the stall of before), then forking resumes."""
        return (bool(getattr(self.settings, "checkpoint_fork", False)) and fork_available()
                and not self._child_failed)

    def _due(self, partitions: Iterable[int] | None) -> list[tuple[int, PartitionState]]:
        wanted = set(self.parts) if partitions is None else set(partitions)
        return [(p, st) for p in sorted(wanted)
                if (st := self.parts.get(p)) is not None and (st.dirty or st.held)]

    def _encode_failed(self, p: int, why: str, detail: str | None = None) -> None:
        """A state that cannot be encoded is not written; its events stay held (unacked),
        so a restart takes them again."""
        log.error("partition %d: checkpoint not written: the engine state could not be "
                  "encoded (%s)%s", p, why, f"\n{detail}" if detail else "")
        self._internal_error("checkpoint")

    async def _write_forked(self, now: float, partitions: Iterable[int] | None) -> int:
        """A periodic checkpoint encoded off the event loop (h-fork): under the checkpoint
        lock the dirty engines' offsets are copied, the events they cover taken off ``held``
        and the worker forked, exactly where ``_write_checkpoint`` would encode them; the
        child encodes the copy-on-write image of that instant while the parent goes on
        taking events. A partition the child could not encode (or a child that died, was
        killed, timed out or answered garbage) gets its events back on ``held`` and is dirty
        again: nothing of it is written or acked, as when the encoder raises in process."""
        async with self._checkpoint_lock:  # forked between two events (or batches)
            due = self._due(partitions)
            taken: list[tuple[int, PartitionState, list[Any], dict[str, int], bool]] = []
            jobs: list[Job] = []
            for p, st in due:
                offsets = dict(st.offsets)
                taken.append((p, st, st.held, offsets, st.dirty))
                if st.dirty:
                    jobs.append((p, st.engine, offsets, self._context(p)))
            child: ForkedEncode | None = None
            if jobs:
                keys = self.state_keys
                try:
                    child = fork_encode(jobs, lambda engine, offsets, context: snapshot(
                        engine, offsets, keys=keys, context=context),
                        timeout=self.settings.checkpoint_fork_timeout)
                except OSError as exc:
                    log.warning("checkpoint: could not fork (%s); encoding in process",
                                exc.strerror)
            if not jobs or child is not None:
                for _, st, _, _, _ in taken:
                    st.held = []
                    st.dirty = False
        if jobs and child is None:  # could not fork: in process, as before
            return await self._write_checkpoint(now, partitions)

        def give_back(p: int, st: PartitionState, held: list[Any], dirty: bool) -> None:
            if self.parts.get(p) is st:  # held again, before what came since
                st.held[:0] = held
                st.dirty = st.dirty or dirty

        outcomes: dict[int, Outcome] = {}
        failed = ""
        if child is not None:
            try:
                outcomes = await child.result()
            except ForkFailed as exc:
                failed = str(exc)
                self._child_failed = True  # the next one in process (``_fork``)
            except BaseException:  # cancelled (shutdown): nothing written, nothing acked
                for p, st, held, _, dirty in taken:
                    give_back(p, st, held, dirty)
                raise
            # the gap follows the child's encoding (a core's time); not a failed child's
            # wait (a timeout would hold periodic checkpoints back for ten times it)
            self._checkpoint_not_before = now + checkpoint_gap(0.0 if failed else child.seconds)
        todo: list[tuple[int, bytes | None, list[Any], int, dict[str, int]]] = []
        for p, st, held, offsets, dirty in taken:
            blob, error = outcomes.get(p, (None, failed or "no answer")) if dirty else (None, None)
            if dirty and blob is None:
                why, _, detail = (error or "").partition("\n")
                self._encode_failed(p, why, detail or None)
                give_back(p, st, held, True)
                continue
            if blob is not None:
                st.slot = 1 - st.slot  # never overwrite the chunks of the last manifest
            todo.append((p, blob, held, st.slot, offsets))
        return await self._send_checkpoints(todo)

    async def _write_checkpoint(self, now: float, partitions: Iterable[int] | None) -> int:
        async with self._checkpoint_lock:  # encoded between two events (or batches)
            todo: list[tuple[int, bytes | None, list[Any], int, dict[str, int]]] = []
            spent = 0.0
            for p, st in self._due(partitions):
                t0 = time.perf_counter()
                try:
                    blob = snapshot(st.engine, st.offsets, keys=self.state_keys,
                                    context=self._context(p)) if st.dirty else None
                except Exception as exc:  # a state that cannot be encoded is not written;
                    # its events stay held (unacked), so a restart takes them again
                    log.error("partition %d: checkpoint not written: the engine state "
                              "could not be encoded (%s)", p, type(exc).__name__,
                              exc_info=exc)
                    self._internal_error("checkpoint")
                    continue
                spent += time.perf_counter() - t0
                held, st.held = st.held, []
                st.dirty = False
                if blob is not None:
                    st.slot = 1 - st.slot  # never overwrite the chunks of the last manifest
                todo.append((p, blob, held, st.slot, dict(st.offsets)))
            self._checkpoint_not_before = now + checkpoint_gap(spent)
        return await self._send_checkpoints(todo)

    async def _send_checkpoints(
            self, todo: list[tuple[int, bytes | None, list[Any], int, dict[str, int]]]) -> int:
        """Flush the alerts, write the checkpoints' records, flush them, ack what they cover
        (outside the checkpoint lock)."""
        if not todo:
            return 0
        # outside the lock: events go on while the broker answers
        # the alerts raised by the events these checkpoints cover reach the broker before
        # the checkpoints do: a SIGKILL between the two must not leave a checkpoint whose
        # engine already raised an alert (it will not raise it again) while the alert
        # itself died in the producer's buffer
        started = time.monotonic()
        await self.app.producer.flush()
        for p, blob, _, slot, offsets in todo:
            if blob is not None:
                for key, value in checkpoint_records(p, blob, slot):
                    # straight to the changelog, without Faust's "sent" callback: that
                    # would mark the local store (RocksDB) as holding these records,
                    # which it does not, and a restart would skip them
                    self.table.changelog_topic.send_soon(
                        key=key, value=value, partition=p, key_serializer="raw",
                        value_serializer="raw")
                self.checkpoints += 1
                self.checkpoint_bytes = len(blob)
                log.info("partition %d: checkpoint %d bytes at offsets %s", p, len(blob),
                         offsets)
        await self.app.producer.flush()
        spent = time.monotonic() - started
        if spent > SLOW_COMMIT_S:  # the input offsets wait for it
            log.warning("checkpoints of partitions %s: the broker took %.1f s to take them and "
                        "the alerts before them", sorted(p for p, *_ in todo), spent)
        for _, _, held, _, _ in todo:
            for ev in held:
                with contextlib.suppress(Exception):
                    ev.ack()
        for p, _, _, _, offsets in todo:
            self._unstick_commits(p, offsets)
        return len(todo)

    def _unstick_commits(self, partition: int, covered: dict[str, int]) -> None:
        """Let the group's commit step over input records that the checkpoint just flushed
        covers (``covered``: topic -> its last offset) but that Faust holds no ack for, when
        later records are acked (``faust_compat.book_done``): Faust commits nothing while
        the lowest acked offset is more than one past the committed one, so such a hole
        stopped the group's commit for good (or for minutes) while the worker went on.

        Seen after SIGKILL restarts: records inside the restored checkpoint that Faust never
        handed over (the engine needs nothing from them, so nothing acked them); with fast
        delivery on, data-access committed at 4195 for minutes, above the restored
        checkpoint, every record to 27551 checkpointed (which acks went missing is not
        known); and, with no worker restart at all, acks lost across an Apache Kafka broker
        restart (the group's rebalance). A checkpoint is
        flushed before its acks, so everything it covers is safe to commit: the at-least-once
        rule the commit keeps anyway. Records above it are never booked (``admit`` fetches a
        hole there again)."""
        try:
            consumer = self.app.consumer
            committed = compat.committed_offsets(consumer)
            for topic in self.input_topics:
                last = covered.get(topic)
                tp = TP(topic, partition)
                c = committed.get(tp)
                if last is None or c is None or c > last:
                    continue
                low = compat.lowest_acked(consumer, tp)
                if low is None or low - c <= 1 or low - 1 > last:
                    continue
                if self._booked.get(tp) != (c, low):  # once: the commit round comes later
                    self._booked[tp] = (c, low)
                    log.warning("partition %d: %s offsets %d..%d, inside the checkpoint, have "
                                "no ack in the consumer's books; the commit steps over them",
                                partition, topic, c, low - 1)
                compat.book_done(consumer, tp, c, low)
        except Exception as exc:  # not assigned here any more, rebalancing: the next one
            log.debug("partition %d: commit books not checked (%s)", partition, exc)


# ------------------------------------------------------------------------ the runtime


class Runtime(PartitionEngines):
    """What the agents call: routing, the engines, alerts, DLQ, checkpoints, metrics.

    ``remote_kinds``: the entity kinds whose window views the engines hand out to the
    combiner (``streams.combine.REMOTE_KINDS`` when it runs); ``leave_out``: detectors the
    input engines do not run (the burst engines', ``streams.bursts``); ``relay_kinds``: the
    entity kinds whose findings the engines hand to the episode builders (``streams.episodes``)."""

    def __init__(self, app: faust.App, settings: Settings, metrics: Metrics, *,
                 remote_kinds: tuple[str, ...] = (), leave_out: tuple[str, ...] = (),
                 relay_kinds: tuple[str, ...] = ()) -> None:
        names = settings.topics
        self.names = names
        self.kind_of = {names.logins: E.LOGIN, names.access: E.ACCESS, names.identity: E.IDENTITY}
        self._other = {names.logins: names.access, names.access: names.logins}
        inputs = (names.logins, names.access)
        #: the field each input topic is keyed by (an account's logins and its own requests
        #: meet in one partition); an event elsewhere is re-sent keyed by it
        self.key_field = {names.logins: E.KEY_FIELDS[E.LOGIN][0],
                          names.access: E.KEY_FIELDS[E.ACCESS][0]}
        self.resend = {t: app.topic(t, key_serializer="raw", value_serializer="raw",
                                    partitions=settings.partitions) for t in inputs}
        detectors = settings.detectors or None
        if leave_out:
            detectors = tuple(d for d in (detectors or tuple(discover())) if d not in leave_out)
        config = EngineConfig(detectors=detectors,
                              reveal_victims=settings.reveal_victims,
                              victim_salt=settings.victim_salt,
                              ts_min_year=settings.ts_min_year,
                              ts_max_year=settings.ts_max_year,
                              max_future_skew=settings.max_future_skew or None,
                              max_entities=settings.max_entities,
                              timezone=settings.timezone,
                              max_state_bytes=settings.max_state_bytes,
                              params=settings.engine_params(),  # issue 16: config file
                              allowlist=settings.allow_list(),  # issue 18
                              feedback_suppress=settings.feedback_suppress,
                              feedback_watch=settings.feedback_watch,
                              remote_kinds=remote_kinds,
                              relay_kinds=relay_kinds)  # issue 17.5: to the episode builders
        Engine(config)  # fail fast on unknown detector ids
        #: how each topic's records are decoded: the accepted years, the future skew, and
        #: whether that topic's producers are believed about country / asn
        trusted = set(settings.trust_producer_geo)
        self.policy_of = {t: replace(config.decode_policy(),
                                     trust_geo="*" in trusted or t in trusted)
                          for t in self.kind_of}
        state_keys = settings.snapshot_keys()  # no key, no worker (SettingsError)
        from streams.geoip import make_geo  # issue 16: bundled data or the operator's .mmdb

        geo = make_geo(settings)
        self.sender: Any = None
        #: ``streams.ocsf_out.Findings`` when the alerts topic carries OCSF (issue 18.5)
        self.findings: Any = None
        if settings.alerts_format == "ocsf":
            from streams.ocsf_out import Findings

            self.findings = Findings()
        #: ``streams.bursts.Bursts`` with more than one partition: the logins it is sent
        self.bursts: Any = None
        #: ``streams.episodes.Episodes`` with more than one partition: the episode builders
        self.episodes: Any = None
        self.alerts_topic = app.topic(
            names.alerts,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
        )
        self.dlq_topic = app.topic(
            names.dlq, key_serializer="raw", value_serializer="raw", partitions=settings.partitions
        )
        super().__init__(app, settings, metrics, topics=inputs, table="engine-checkpoints",
                         config=config, geo=geo, directory=Directory(), state_keys=state_keys,
                         check_behind=inputs)
        #: set once the identity reader has caught up with identity-changes as it was at
        #: start-up: detection waits for the directory, as a replay of the files would.
        self.identity_ready = asyncio.Event()
        # per-event metrics are tallied here and added to the registry by flush_metrics (before
        # each scrape, every watermark tick, at shutdown): no prometheus_client lock per event
        self._events_child = {t: metrics.events.labels(topic=t) for t in self.kind_of}
        self._taken = dict.fromkeys(self.kind_of, 0)
        self._processing = HistogramBatch(metrics.processing_seconds)
        self._lag = HistogramBatch(metrics.event_lag_seconds)
        self._rekeyed_child = {t: metrics.rekeyed_events.labels(topic=t)
                               for t in self.input_topics}
        #: per input topic, the offset keys of a batch taken part way (``batch_offset_key``)
        self._batch_keys = {t: (batch_offset_key(t), batch_index_key(t))
                            for t in self.input_topics}
        self._late_seen: dict[int, int] = {}
        self.alerts_sent = 0

    # ---- events -----------------------------------------------------------------------
    async def on_event(self, event: Any) -> None:
        """One input message (login or access). Never raises for bad input.

        Logins and access of one partition are merged by event time before the engine sees
        them: while one topic has unread backlog, the other's events wait (in offset order)
        until it catches up in event time, as in a replay of the merged files. Live, both
        topics are caught up and nothing waits; after downtime, the catch-up does not race
        one topic hours ahead of the other.
        """
        msg = event.message
        topic = msg.topic
        st = self.state(msg.partition)
        if st.rescore:
            await self._score_outbox(msg.partition, st)
        prev = st.delivered.get(topic)
        if prev is not None and prev + 1 == msg.offset and topic not in st.refetch:
            st.delivered[topic] = prev + 1  # the next record: what admit says, without a coroutine
        elif not await self.admit(st, msg):
            return
        if msg.offset <= st.offsets.get(topic, -1):
            st.held.append(event)  # already inside the restored checkpoint
            return
        try:  # contract v1.1: one event, or a batch of them (streams.batch)
            items = (batch.split(msg.value, self.settings.max_batch_events)
                     if msg.value is not None else None)
        except Exception as exc:  # the framing must not kill the agent either
            items = E.Rejection(INTERNAL_ERROR, None, type(exc).__name__)
        if items is None or isinstance(items, E.Rejection):
            await self._take(st, event, msg, items)
            return
        # events of this batch a restored checkpoint covers already (it was taken part way)
        done = (st.offsets.get(batch_index_key(topic), -1)
                if st.offsets.get(batch_offset_key(topic)) == msg.offset else -1)
        n = len(items)
        if done + 1 >= n:  # cannot happen (its last event completes the message): ack it
            st.held.append(event)
            return
        if not st.queued and \
                not self._wait_for(msg.partition, st, self._other[topic], _written(msg)):
            await self._take_batch(st, event, msg, items, done + 1)  # in one step
            return
        self._enqueue_batch(st, event, msg, items, done + 1)  # queued, then merged at once
        await self.drain(msg.partition, st)

    def _enqueue_batch(self, st: PartitionState, event: Any, msg: Any, items: list[bytes],
                       start: int) -> None:
        """The events ``items[start:]`` of batch message ``msg`` queued for the event-time
        merge (``drain``): for each, what ``_judge`` and ``_enqueue`` do, with what they look
        up once per message (the merge path takes most of a backlog catch-up's events)."""
        topic = msg.topic
        n = len(items)
        self._taken[topic] += n - start
        kind = self.kind_of[topic]
        policy = self.policy_of[topic]
        decode = E.decode
        parts = self.settings.partitions
        key_field = self.key_field[topic]
        q = st.queues.setdefault(topic, deque())
        wall = time.time()
        item_of = batch.BatchItem
        for i in range(start, n):
            item = item_of(msg, i, n, items[i])
            ev: Any
            try:
                ev = decode(items[i], kind, policy, wall)
            except Exception as exc:  # the decoder must not kill the agent either
                ev = E.Rejection(INTERNAL_ERROR, None, type(exc).__name__)
            if not isinstance(ev, E.Rejection):
                if parts > 1:
                    key = getattr(ev, key_field).encode()
                    if msg.key != key and partition_for(key, parts) != msg.partition:
                        ev = Rekey(key)  # keyed differently by its producer, and not ours
                if type(ev) is not Rekey:
                    q.append((ev.ts, event, ev, item))
                    continue
            q.append((q[-1][0] if q else -math.inf, event, ev, item))  # holds nothing back
        st.queued += n - start

    async def _score_outbox(self, partition: int, st: PartitionState) -> None:
        """Score in place the window views a restored engine holds for a combiner this
        worker does not run (``PartitionState.rescore``), as the scorer would have; alerts
        sent. Under the checkpoint lock: no checkpoint sees the outbox emptied before the
        alerts it gave are in the producer the checkpoint flushes first."""
        async with self._checkpoint_lock:
            st.rescore = False
            views = st.engine.drain_partials()
            alerts: list[dict[str, Any]] = []
            for view in views:
                try:
                    alerts.extend(st.engine.observe_partial(view))
                except Exception as exc:  # an engine bug: counted, logged; the rest go on
                    log.error("partition %d: a held window view was not scored (%s)",
                              partition, type(exc).__name__, exc_info=exc)
                    self._internal_error("partials")
            st.dirty = True
            log.info("partition %d: %d window view(s) held for a combiner scored in place",
                     partition, len(views))
            for a in alerts:
                await self.emit(a)

    async def _take_batch(self, st: PartitionState, event: Any, msg: Any,
                          items: list[bytes], start: int) -> None:
        """The events ``items[start:]`` of batch message ``msg``, when the event-time merge
        holds nothing back (nothing queued, nothing to wait for in the other topic): taken
        in one step, each validated on its own, as ``_take`` and ``_process`` would one by
        one, with the per-message bookkeeping done once.

        The engine takes every event of the batch without an ``await`` in between (no
        checkpoint can see it part way); then the message is held for the ack and counted as
        taken; then what the events gave is sent, in their order (alerts, dead letters with
        the batch's offset and each event's index, re-sent strays). All of it under one hold
        of the checkpoint lock: a checkpoint covering the batch is written only once all of
        it is in the producer, which the checkpoint flushes first. Logins with burst engines to
        feed (more than one partition) go to them with the engine time each was taken at
        (``Bursts.send_many``)."""
        async with self._checkpoint_lock:  # applied and sent in one hold (_send_out)
            topic = msg.topic
            n = len(items)
            engine = st.engine
            stats = engine.stats
            process = engine.process
            decode = E.decode
            kind = self.kind_of[topic]
            policy = self.policy_of[topic]
            parts = self.settings.partitions
            key_field = self.key_field[topic]
            lag = self._lag.observe
            burst = self.bursts is not None and topic == self.names.logins
            out: list[tuple[Any, ...]] = []  # what the events gave (``_send_out``), in order
            self._taken[topic] += n - start
            late, conflicts = stats.get("late", 0), stats.get("duplicate_conflict", 0)
            duplicates = claims = taken = 0
            max_ts = st.max_ts
            wall = time.time()
            t0 = time.perf_counter()
            for i in range(start, n):
                try:
                    ev = decode(items[i], kind, policy, wall)
                except Exception as exc:  # the decoder must not kill the agent either
                    ev = E.Rejection(INTERNAL_ERROR, None, type(exc).__name__)
                if isinstance(ev, E.Rejection):
                    engine.rejected[ev.reason] += 1
                    out.append((_DLQ, batch.BatchItem(msg, i, n, items[i]), ev.reason, ev.field,
                                ev.detail))
                    continue
                if parts > 1:
                    key = getattr(ev, key_field).encode()
                    if msg.key != key and partition_for(key, parts) != msg.partition:
                        # keyed differently, and not ours: re-sent alone
                        out.append((_REKEY, batch.BatchItem(msg, i, n, items[i]), key))
                        continue
                ts = ev.ts
                if st.identity and st.identity[0][0] <= ts:
                    out.extend((_ALERT, a) for a in self._release_identity(st, ts))
                try:
                    alerts, rej = process(ev)
                except Exception as exc:  # an engine bug outside the detectors (each is isolated)
                    log.error("engine failed on an event (%s)", type(exc).__name__, exc_info=exc)
                    self._internal_error("event")
                    out.append((_DLQ, batch.BatchItem(msg, i, n, items[i]), INTERNAL_ERROR, None,
                                type(exc).__name__))
                    continue
                taken += 1
                if rej is not None:
                    if rej.reason != INTERNAL_ERROR:
                        duplicates += 1
                        continue
                    # a detector failed on it (counted, logged): to the DLQ; the others' alerts stand
                    out.append((_DLQ, batch.BatchItem(msg, i, n, items[i]), INTERNAL_ERROR,
                                rej.field, rej.detail))
                if ev.invalid_claim is not None:  # processed with the claim repaired, counted
                    claims += 1
                lag(wall - ts if wall > ts else 0.0)
                if max_ts is None or ts > max_ts:
                    max_ts = ts
                if burst:  # to the burst engine of its source, with the time it was taken at
                    now = engine.ctx.now
                    out.append((_BURST, batch.BatchItem(msg, i, n, items[i]), ev,
                                ts if ts > now else now))
                if alerts:
                    out.extend((_ALERT, a) for a in alerts)
            spent = time.perf_counter() - t0
            if taken:
                self._processing.observe_many(spent / taken, taken)
            # the whole message is taken: held for the ack after the next checkpoint
            st.held.append(event)
            st.offsets[topic] = msg.offset
            st.offsets.pop(batch_offset_key(topic), None)
            st.offsets.pop(batch_index_key(topic), None)
            st.dirty = True
            st.last_wall = now = time.monotonic()
            st.flushed = False
            if max_ts is not None and max_ts != st.max_ts:
                st.max_ts, st.wall_at_max = max_ts, now
            metrics = self.metrics
            if duplicates:
                metrics.duplicate_events.labels(topic=topic).inc(duplicates)
            if stats.get("late", 0) != late:  # older than the allowed lateness, processed
                metrics.late_events.labels(topic=topic).inc(stats.get("late", 0) - late)
            for _ in range(stats.get("duplicate_conflict", 0) - conflicts):  # processed, counted
                metrics.count_invalid(topic, "duplicate_conflict")
            for _ in range(claims):  # processed with the claim repaired, counted
                metrics.count_invalid(topic, "invalid_claim")
            if out:
                await self._send_out(out)

    async def _take(self, st: PartitionState, event: Any, msg: Any,
                    ev: Any) -> None:
        """One event of an input message (``msg``: the message, or a ``BatchItem`` of it;
        ``ev``: a framing rejection, or None to decode ``msg.value``), processed now or
        queued for the event-time merge."""
        ev = self._judge(msg, ev)
        if not st.queued and not self._wait_for(msg.partition, st, self._other[msg.topic],
                                                _written(msg)):
            await self._process(st, event, ev, msg)  # nothing queued, nothing to wait for
            return
        self._enqueue(st, event, ev, msg)
        await self.drain(msg.partition, st)

    def _judge(self, msg: Any, ev: Any) -> Any:
        """The event of ``msg`` (counted as taken): decoded (unless ``ev``, a framing
        rejection, is given), or a ``Rejection``, or a ``Rekey`` when it is keyed off this
        partition."""
        topic = msg.topic
        self._taken[topic] += 1
        if ev is None:
            try:
                ev = (
                    E.decode(msg.value, self.kind_of[topic], self.policy_of[topic], time.time())
                    if msg.value is not None
                    else E.Rejection("invalid_json", None, "empty message (tombstone)")
                )
            except Exception as exc:  # the decoder must not kill the agent either
                ev = E.Rejection(INTERNAL_ERROR, None, type(exc).__name__)
        if self.settings.partitions > 1 and not isinstance(ev, E.Rejection):
            key = getattr(ev, self.key_field[topic]).encode()
            if msg.key != key and partition_for(key, self.settings.partitions) != msg.partition:
                ev = Rekey(key)  # keyed differently by its producer, and not ours: re-send
        return ev

    def _enqueue(self, st: PartitionState, event: Any, ev: Any, msg: Any) -> None:
        """Queue an event for the event-time merge (``drain``)."""
        q = st.queues.setdefault(msg.topic, deque())
        if isinstance(ev, (E.Rejection, Rekey)):
            order = q[-1][0] if q else -math.inf  # never holds back the valid events
        else:
            order = ev.ts
        q.append((order, event, ev, msg))
        st.queued += 1

    def _wait_for(self, partition: int, st: PartitionState, other: str,
                  since: float | None = None) -> float:
        """How long an event may wait for topic ``other`` (``_behind``), 0 when the merge
        gave up on it and it delivered nothing since. ``since``: when the waiting event's
        record was written (``_written``). The consumer's answer is reused for
        ``BEHIND_CACHE`` seconds (its end offsets change with fetches, every ~100 ms): a 0
        for that long (for records written before the fetch answer it rests on), a wait
        while ``other`` has not delivered up to the end offset that made it wait (asked
        again before every event of a catch-up otherwise)."""
        given_up = st.gave_up.get(other)
        if given_up is not None:
            if given_up == st.delivered.get(other, -1):
                return 0.0
            del st.gave_up[other]  # it delivered again: merge properly again
        now = time.monotonic()
        cached = st.behind.get(other)
        if cached is not None and cached[0] > now and (
                st.next_offset(other) < cached[2] if cached[1]
                else since is None or cached[3] >= since):
            return cached[1]
        wait, hw, polled = self._behind(partition, st, other, since)
        st.behind[other] = (now + BEHIND_CACHE, wait, hw, polled)
        return wait

    def _behind(self, partition: int, st: PartitionState, topic: str,
                since: float | None = None) -> tuple[float, int, float]:
        """How long (wall seconds) an event of the other topic may wait for ``topic``:
        0 when this worker has everything the broker has in ``topic`` (received, covered by
        the restored checkpoint, or committed before) and the broker said so recently; else
        (never fetched yet, unread records reported, or no fetch answer for ``FRESH_S``: its
        leader is gone and its high watermark says nothing about what was written) up to
        ``merge_wait``. With it, the end offset the broker reported (-1: none) and the wall
        time of the fetch answer behind the verdict (-inf: unknown).

        ``since`` (when the waiting record was written): "nothing unread" holds only from a
        fetch answer of ``topic`` received after that. Records reach a consumer from each
        partition's leader separately: seen on a 3-broker cluster, an access record fetched
        ~0.1 s before the login its session came from, which the producer had acknowledged
        before it wrote the access (``streams.produce`` orders them), while the logins'
        last answer, older, still said "nothing unread"; the access went first and its
        session was judged unissued (an alert replay does not raise)."""
        try:
            consumer = self.app.consumer
            tp = TP(topic, partition)
            hw = consumer.highwater(tp)
            committed = compat.committed_offsets(consumer).get(tp)  # the next to read
        except Exception:
            hw = committed = None  # type: ignore[assignment]  # no answer: both unknown, read as such below
        hold = self.settings.merge_wait  # measured: seconds, while a big batch goes first
        if hw is None:  # never fetched yet: wait, but not forever
            return hold, -1, -math.inf
        have = st.next_offset(topic)
        if hw > max(have, committed or 0):
            return hold, hw, -math.inf
        polled = compat.last_poll(self.app.consumer, tp)
        if polled is None:
            return 0.0, hw, -math.inf
        if time.time() - polled > FRESH_S:
            return hold, -1, polled
        if since is not None and polled < since:  # an answer from before the record was written
            return hold, hw, polled
        return 0.0, hw, polled

    async def drain(self, partition: int, st: PartitionState, force: bool = False) -> None:
        """Process queued events in merged event-time order, as far as it is safe.

        An event waits for the other topic at most ``merge_wait`` seconds while the broker
        reports records there this worker has not received, or that topic's partition cannot
        be fetched. When a wait times out (a broker reporting a stale end offset, a topic
        the consumer does not deliver), the merge stops waiting for that topic until it
        delivers something new: a partition never crawls at one event per wait."""
        async with self._checkpoint_lock:  # applied and sent in one hold (_send_out)
            ql = st.queues.get(self.names.logins)
            qa = st.queues.get(self.names.access)
            out: list[tuple[Any, ...]] = []  # what the events applied gave, sent at the end
            while st.queued:
                if ql and qa:
                    q = ql if ql[0][0] <= qa[0][0] else qa
                else:
                    q = ql or qa  # type: ignore[assignment]  # the loop runs while one of them holds items
                    other = self.names.access if q is ql else self.names.logins
                    wait = 0.0
                    if not (force or st.queued > MERGE_MAX):
                        wait = self._wait_for(partition, st, other, _written(q[0][1].message))
                    if wait > 0:
                        now = time.monotonic()
                        if st.waiting_since is None:
                            st.waiting_since = now
                        waited = now - st.waiting_since
                        if waited < wait:
                            break
                        log.info("partition %d: stopped waiting for %s after %.1f s", partition,
                                 other, waited)
                        st.gave_up[other] = st.delivered.get(other, -1)
                st.waiting_since = None
                assert q is not None
                _, event, ev, item = q.popleft()
                st.queued -= 1
                self._apply(st, event, ev, item, out)
            if out:
                await self._send_out(out)

    async def _process(self, st: PartitionState, event: Any, ev: Any,
                       msg: Any = None) -> None:
        """One event, applied (``_apply``) and what it gave sent (``_send_out``)."""
        async with self._checkpoint_lock:  # applied and sent in one hold (_send_out)
            out: list[tuple[Any, ...]] = []
            self._apply(st, event, ev, msg, out)
            if out:
                await self._send_out(out)

    def _apply(self, st: PartitionState, event: Any, ev: Any, msg: Any,
               out: list[tuple[Any, ...]]) -> None:
        """Apply one event to its partition's engine, without an ``await``: what it gives
        to send is appended to ``out`` (``_send_out``), in order.

        ``msg``: the event's message, or its ``BatchItem`` when the message is a batch:
        the message is held for the ack (and its offset counted as taken) with its last
        event; before that the checkpoint records how far into it the engine got."""
        msg = event.message if msg is None else msg
        topic = msg.topic
        offsets = st.offsets
        if type(msg) is batch.BatchItem:
            at, index = self._batch_keys[topic]
            if msg.batch_index != msg.batch_size - 1:  # not its last event
                offsets[at] = msg.offset
                offsets[index] = msg.batch_index
            else:
                st.held.append(event)
                offsets[topic] = msg.offset
                offsets.pop(at, None)
                offsets.pop(index, None)
        else:
            st.held.append(event)
            offsets[topic] = msg.offset
        st.dirty = True
        st.last_wall = now = time.monotonic()
        st.flushed = False
        if isinstance(ev, E.Rejection):
            st.engine.rejected[ev.reason] += 1
            out.append((_DLQ, msg, ev.reason, ev.field, ev.detail))
            return
        if type(ev) is Rekey:
            # acked with the other held events after the next checkpoint's producer flush, so
            # it is on its partition by then; re-sent again after a crash before that (the
            # engine there skips a repeated event_id)
            out.append((_REKEY, msg, ev.key))
            return
        if st.identity and st.identity[0][0] <= ev.ts:
            out.extend((_ALERT, a) for a in self._release_identity(st, ev.ts))
        t0 = time.perf_counter()
        stats = st.engine.stats
        conflicts = stats.get("duplicate_conflict", 0)
        late = stats.get("late", 0)
        try:
            alerts, rej = st.engine.process(ev)
        except Exception as exc:  # an engine bug outside the detectors (each is isolated)
            log.error("engine failed on an event (%s)", type(exc).__name__, exc_info=exc)
            self._internal_error("event")
            out.append((_DLQ, msg, INTERNAL_ERROR, None, type(exc).__name__))
            return
        self._processing.observe(time.perf_counter() - t0)
        if rej is not None:
            if rej.reason != INTERNAL_ERROR:
                self.metrics.duplicate_events.labels(topic=topic).inc()
                return
            # a detector failed on it (counted, logged): to the DLQ; the others' alerts stand
            out.append((_DLQ, msg, INTERNAL_ERROR, rej.field, rej.detail))
        if stats.get("late", 0) != late:  # older than the allowed lateness, processed
            self.metrics.late_events.labels(topic=topic).inc()
        if stats.get("duplicate_conflict", 0) != conflicts:  # processed, counted
            self.metrics.count_invalid(topic, "duplicate_conflict")
        if ev.invalid_claim is not None:  # processed with the claim repaired, counted
            self.metrics.count_invalid(topic, "invalid_claim")
        self._lag.observe(max(0.0, time.time() - ev.ts))
        if self.bursts is not None and topic == self.names.logins:
            # to the burst engine of its source, with the engine time it was taken at
            out.append((_BURST, msg, ev, max(ev.ts, st.engine.ctx.now)))
        if st.max_ts is None or ev.ts > st.max_ts:
            st.max_ts, st.wall_at_max = ev.ts, now
        if alerts:
            out.extend((_ALERT, a) for a in alerts)

    async def _send_out(self, out: list[tuple[Any, ...]]) -> None:
        """Send what applied events gave (``_apply``), in order. The caller holds the
        checkpoint lock from before it applied those events until this returns: a
        checkpoint that covers them is written only once all of it is in the producer,
        which the checkpoint flushes first (a SIGKILL after it cannot lose an alert the
        restored engine will not raise again). Taking the lock only to send would let a
        checkpoint already waiting for it snapshot the applied events and ack them first.
        The logins for the burst engines go last, one message per burst partition
        (``Bursts.send_many``)."""
        logins: list[tuple[Any, ...]] = []
        for o in out:
            what = o[0]
            if what is _ALERT:
                await self.emit(o[1])
            elif what is _DLQ:
                await self.dead_letter(o[1], o[2], o[3], o[4])
            elif what is _REKEY:
                msg = o[1]
                await self.resend[msg.topic].send(key=o[2], value=msg.value,  # it alone
                                                  headers=list(msg.headers or ()))
                self._rekeyed_child[msg.topic].inc()
            else:
                logins.append(o)
        if logins:
            await self.bursts.send_many(logins)

    async def on_identity(self, msg: Any) -> None:
        """One identity-changes message (every worker reads every partition)."""
        topic = self.names.identity
        self._taken[topic] += 1
        ev = (
            E.decode(msg.value, E.IDENTITY, self.policy_of[topic], time.time())
            if msg.value is not None
            else E.Rejection("invalid_json", None, "empty message (tombstone)")
        )
        if isinstance(ev, E.Rejection):
            await self.dead_letter(msg, ev.reason, ev.field, ev.detail)
            return
        self.directory.apply(ev)
        key = identity_offset_key(topic, msg.partition)
        self.identity_log.append((key, msg.offset, ev))
        for st in list(self.parts.values()):
            if msg.offset > st.offsets.get(key, -1):
                # released and sent in one hold of the checkpoint lock (as ``_send_out``)
                async with self._checkpoint_lock:
                    queue_identity(st, (ev.ts, key, msg.offset, ev))
                    for a in self._release_identity(st, st.engine.ctx.now):
                        await self.emit(a)

    async def on_feedback(self, msg: Any) -> None:
        """One access-feedback message: an analyst's verdict, applied by the engine that
        holds the alert (the others ignore it). A bad one is logged with its reason."""
        try:
            obj = orjson.loads(msg.value) if msg.value is not None else None
        except orjson.JSONDecodeError:
            obj = None
        states = list(self.parts.values())
        if self.episodes is not None:  # issue 17.5: the episode builders own the episodes
            states += list(self.episodes.engines.parts.values())
        for st in states:
            try:
                alerts = st.engine.feedback(obj)
            except ValueError as e:
                log.warning("feedback message at offset %d ignored: %s", msg.offset, e)
                return
            if alerts:
                st.dirty = True
            for a in alerts:
                await self.emit(a)
        self.feedback_log.append(obj)

    def _release_identity(self, st: PartitionState, until: float) -> list[dict[str, Any]]:
        """Process the partition's queued identity events dated up to ``until`` (its event
        time), in the order read; returns the alerts. Identity changes go into each engine
        in event-time order with its logins and access, as in a replay of the files: one
        applied when it arrives, ahead of a partition that lags behind (a catch-up after a
        restart), moved the engine's event time forward, which swept its state and fired its
        timers early (seen: an alert the replay does not raise). The shared ``Directory`` has
        every change as soon as it is read; detectors compare its dates with the event's."""
        q = st.identity
        out: list[dict[str, Any]] = []
        while q and q[0][0] <= until:
            _, key, offset, ev = q.popleft()
            st.offsets[key] = offset  # the checkpoint covers it from now on
            st.dirty = True
            # a failure here is counted and logged (the engine isolates its detectors and
            # counts theirs); the message was acknowledged when it was read, so it is not
            # dead-lettered: the directory has it, and the other partitions' engines too
            try:
                alerts, _ = st.engine.process(ev)
            except Exception as exc:
                log.error("engine failed on an identity event (%s)", type(exc).__name__,
                          exc_info=exc)
                self._internal_error("event")
                continue
            out.extend(alerts)
        return out

    async def emit(self, alert: dict[str, Any]) -> None:
        findings = self.findings  # issue 18.5: OCSF Detection Findings instead of alerts
        try:
            value = orjson.dumps(alert if findings is None else findings.add(alert))
        except ValueError as exc:  # off the alert contract: a bug, logged; the worker goes on
            log.error("alert not convertible to OCSF (%s)", exc)
            self._internal_error("event")
            return
        await self.alerts_topic.send(key=alert["alert_id"].encode(), value=value)
        self.alerts_sent += 1
        self.metrics.count_alert(alert["detector"], alert["severity"], alert.get("score"))
        watch_everywhere(self, alert)  # the entity page counts its activity on every partition
        if self.sender is not None:
            try:
                self.sender.submit(alert)
            except Exception as exc:  # the topic has it; Alertmanager is best effort
                log.warning("alert not queued for Alertmanager: %s", exc)

    async def dead_letter(self, msg: Any, reason: str, field_: str | None, detail: str,
                          record: tuple[int, bytes] | None = None) -> None:
        """``record``: (its 1-based place, its bytes) when the message framed into several
        source records (the ingest agent): that record is dead-lettered, not the message."""
        topic = msg.topic
        self.metrics.count_invalid(topic, reason)
        headers = [
            ("aw-topic", topic.encode()),
            ("aw-partition", str(msg.partition).encode()),
            ("aw-offset", str(msg.offset).encode()),
            ("aw-reason", reason.encode()),
            ("aw-field", (field_ or "").encode()),
            ("aw-detail", str(detail)[:512].encode()),
        ]
        value = msg.value if msg.value is not None else b""
        if record is not None:
            headers.append(("aw-record", str(record[0]).encode()))
            value = record[1]
        index = getattr(msg, "batch_index", None)
        if index is not None:  # one event of a batch message (its bytes are the value)
            headers.append(("aw-index", str(index).encode()))
        await self.dlq_topic.send(key=msg.key, value=value, headers=headers)

    # ---- time ---------------------------------------------------------------------------
    def restore_assigned(self) -> None:
        """The engine of every input partition this worker holds, restored once a rebalance
        has settled (its table recovery done, the identity directory loaded), not at the
        partition's next event. Each rebalance drops the engines (``on_partitions_revoked``)
        and a partition that gets no event after it had none: its counts
        (``accesswatch_engine_events``) read 0 and its first event paid for the restore.
        Seen in CI: the SIGKILL loop's last life took every event, a killed life's
        membership expired, the group rebalanced, and the engine counts read 0 for good."""
        app = self.app
        recovery = getattr(getattr(app, "tables", None), "recovery", None)
        if (getattr(app, "rebalancing", True) or recovery is None
                or getattr(recovery, "in_recovery", True) or not recovery.completed.is_set()
                or not self.identity_ready.is_set()):
            return
        try:
            held = {tp.partition for tp in app.consumer.assignment()
                    if tp.topic in self.input_topics}
        except Exception:  # no consumer yet, or stopping
            return
        for p in sorted(held - set(self.parts)):
            self.state(p)

    async def watermark(self) -> None:
        """Advance every engine's event time; fire idle partitions' timers if configured."""
        await self.watch_delivery()
        self.restore_assigned()
        wall = time.monotonic()
        idle = self.settings.idle_flush
        delay = self.settings.watermark_delay
        for p, st in list(self.parts.items()):
            if st.rescore:
                await self._score_outbox(p, st)
            if st.queued:
                await self.drain(p, st)
            if st.max_ts is None or st.queued:
                continue
            # Event time moves on the wall clock only past ``watermark_delay`` of quiet: a
            # pause is not the end of the input (a failover, a producer waiting for acks),
            # and a timer fired now would precede the events held up in it (seen: a window
            # view scored half-way, one alert id unlike replay's, tests/test_watermark_pause)
            # h-par3: nor while the broker holds records of it not yet received (a partition
            # starved for seconds mid-backlog on a loaded host is not at its input's end),
            # nor while it cannot tell (no fresh fetch answer: the broker or the partition's
            # leader is gone); both quiet and idle time count again from when it can
            unread = False
            if wall - st.wall_at_max - delay > 0 or idle > 0:
                unread = self._unread(p, st)
                if unread:
                    st.unsure_at = wall
            quiet = wall - max(st.wall_at_max, st.unsure_at) - delay
            now = st.max_ts + quiet
            # advanced and what it gave sent in one hold of the checkpoint lock: a
            # checkpoint covers the fired timers only once their alerts are in the
            # producer it flushes first (else a SIGKILL lost them: the restored engine
            # has fired those timers and does not raise them again)
            async with self._checkpoint_lock:
                await self._advance(p, st, now, quiet, unread, wall, idle)
        self.update_gauges()
        self.flush_metrics()

    async def _advance(self, p: int, st: PartitionState, now: float, quiet: float,
                       unread: bool, wall: float, idle: float) -> None:
        """The watermark's step for partition ``p`` (caller holds the checkpoint lock): the
        engine advanced to ``now`` (after ``quiet`` > 0 of quiet, nothing ``unread``) and
        flushed when idle for ``idle``; the alerts it gave sent."""
        try:  # the engine isolates its detectors; this catches the rest
            alerts: list[dict[str, Any]] = []
            if quiet > 0 and not unread:
                alerts = self._release_identity(st, now) if st.identity else []
                alerts.extend(st.engine.advance(now))
        except Exception as exc:
            log.error("partition %d: engine failed to advance (%s)", p,
                      type(exc).__name__, exc_info=exc)
            self._internal_error("watermark")
            alerts = []
        touched = st.engine.drain_touched()  # drained with or without a sender
        if self.sender is not None:  # repeats inside open episodes keep their pages firing
            for alert_id in touched:
                self.sender.touch(alert_id)
        if (idle > 0 and not st.flushed and not unread
                and wall - max(st.last_wall, st.unsure_at) >= idle):
            st.flushed = True
            try:
                alerts.extend(st.engine.flush())
            except Exception as exc:
                log.error("partition %d: engine failed to flush (%s)", p,
                          type(exc).__name__, exc_info=exc)
                self._internal_error("watermark")
        if alerts:
            st.dirty = True
            for a in alerts:
                await self.emit(a)
        if self.findings is not None:  # issue 18.5: a Close for each episode ended
            for f in self.findings.ended(st.engine):
                key = f["finding_info"]["uid"].encode()
                await self.alerts_topic.send(key=key, value=orjson.dumps(f))

    def _unread(self, partition: int, st: PartitionState) -> bool:
        """Whether the broker has said it holds records of input partition ``partition``
        beyond those received (h-par3), or has given no fetch answer of it for ``FRESH_S``
        (the broker down, the partition's leader gone, a fetch not answered: its high
        watermark says nothing about what producers wrote meanwhile). Seen: a broker
        restart mid-stream counted as idle time, so an idle flush (or the watermark) had to
        wait longer than any outage could last. Unknown: False."""
        try:
            consumer = self.app.consumer
            now = time.time()
            for topic in self.input_topics:
                tp = TP(topic, partition)
                hw = consumer.highwater(tp)
                if hw is not None and hw > st.next_offset(topic):
                    return True
                polled = compat.last_poll(consumer, tp)
                if polled is not None and now - polled > FRESH_S:
                    return True
        except Exception:  # not assigned here, not fetched yet, rebalancing: unknown
            return False
        return False

    def flush_metrics(self) -> None:
        """Add the per-event tallies (events taken, processing time, event lag) to the
        registry's metrics."""
        for topic, n in self._taken.items():
            if n:
                self._events_child[topic].inc(n)
                self._taken[topic] = 0
        self._processing.flush()
        self._lag.flush()
        counts = self.engine_events()
        for kind in ENGINE_EVENT_KINDS:
            self.metrics.engine_events.labels(kind=kind).set(counts[kind])

    def engine_events(self) -> Counter[str]:
        """Events the engines of this worker's input partitions have processed, by kind
        (``Engine.stats``: login, access, identity, late), summed over the partitions.

        The counts are part of each engine's checkpointed state: after a crash the restored
        engine counts from its checkpoint again and the events it re-processes count once,
        so once every event is processed the sums over the group equal ``replay``'s counts
        (identity: once per partition, each partition's engine applies every identity event)."""
        total: Counter[str] = Counter()
        for st in self.parts.values():
            total.update(st.engine.stats)
        return total

    def engine_summary(self) -> str:
        """``engine_events`` in ``replay``'s words, for the worker's log."""
        c = self.engine_events()
        return (f"engines of partitions {sorted(self.parts)}: events "
                f"{c['login'] + c['access'] + c['identity']:,} (logins {c['login']:,}, "
                f"access {c['access']:,}, identity {c['identity']:,}; late {c['late']:,})")

    def update_gauges(self) -> None:
        tracked: dict[str, int] = {}
        warm: dict[str, list[float]] = {}
        for st in self.parts.values():
            self._count_engine(st.engine)
            for k, v in st.engine.tracked().items():
                tracked[k] = tracked.get(k, 0) + v
            for d, w in st.engine.warmup().items():
                warm.setdefault(d, []).append(w)
        for k, v in tracked.items():
            self.metrics.tracked_entities.labels(kind=k).set(v)
        for d, ws in warm.items():
            self.metrics.model_warmup_ratio.labels(detector=d).set(min(ws))
        self._update_lag()

    def _update_lag(self) -> None:
        try:
            consumer = self.app.consumer
            lags = []
            for tp in consumer.assignment():
                if tp.topic not in (self.names.logins, self.names.access):
                    continue
                hw = consumer.highwater(tp)
                pos = compat.read_offsets(consumer).get(tp)
                if hw is not None:
                    lags.append((tp.topic, tp.partition, max(0, hw - ((pos or -1) + 1))))
            self.metrics.set_consumer_lag(lags)
        except Exception:  # the consumer is not up yet, or rebalancing
            pass
