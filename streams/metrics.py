"""Every Prometheus metric accesswatch exports, declared in one place.

Names follow ``accesswatch_<name>_<unit>`` in base units (seconds, ratios 0..1). No label
ever carries an entity (account, actor, IP, key): those go in the alert payload. Every
label value known in advance is initialised at construction, so each series exists at
zero from the first scrape and ``increase()``/``rate()`` see its first step.

The metrics are built against an injected :class:`~prometheus_client.CollectorRegistry`,
so tests use a fresh registry and a worker can share its registry with Faust's own
Prometheus sensor (``faust.sensors.prometheus.setup_prometheus_sensors(app, registry=...)``).

>>> from prometheus_client import CollectorRegistry
>>> m = Metrics(CollectorRegistry())
>>> m.alerts.labels(detector="bulk_lookup", severity="critical").inc()
>>> m.sample("accesswatch_alerts_total", detector="bulk_lookup", severity="critical")
1.0
>>> m.sample("accesswatch_alerts_total", detector="overseas_server", severity="info")
0.0
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

from detectors.base import ENTITY_KINDS as _ENTITY_KINDS
from detectors.base import SEVERITIES as _SEVERITIES
from detectors.engine import discover
from detectors.events import KINDS as _KINDS
from detectors.events import REASONS as _REASONS
from detectors.events import TOPIC_OF_KIND
from streams.snapshot import REASONS as _SNAPSHOT_REASONS

PREFIX = "accesswatch"

# Known label values come from the detection package, so new detectors and reasons get their
# series at zero without touching this file.
TOPICS: tuple[str, ...] = tuple(TOPIC_OF_KIND.values())
SEVERITIES: tuple[str, ...] = _SEVERITIES
ENTITY_KINDS: tuple[str, ...] = _ENTITY_KINDS
DETECTORS: tuple[str, ...] = tuple(discover())
REASONS: tuple[str, ...] = _REASONS
POST_RESULTS: tuple[str, ...] = ("ok", "error")
#: why a finding was not raised as a new alert (``suppressed_alerts{reason}``, issue 18)
SUPPRESS_REASONS: tuple[str, ...] = ("repeat", "allowlist", "feedback")
#: the engine's own counts (``Engine.stats``) exported by ``engine_events``: events by kind,
#: and those processed later than the allowed lateness
ENGINE_EVENT_KINDS: tuple[str, ...] = (*_KINDS, "late")
INTERNAL_STAGES: tuple[str, ...] = ("detector", "event", "watermark", "partials", "findings",
                                  "checkpoint")

# Per-event processing is tens of microseconds; a slow event is a few milliseconds.
PROCESSING_BUCKETS = (
    0.00002,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.1,
    1.0,
)
# Event time to processing time: sub-second when healthy, hours during a backfill.
EVENT_LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
# Anomaly scores live in [0, 1].
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
# One HTTP POST to Alertmanager on a LAN.
POST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A Kafka offset commit.
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    """All accesswatch metrics, registered in ``registry`` at construction.

    Attributes (the prometheus_client objects; call ``.labels(...)`` where labelled):

    - ``events`` counter ``{topic}``: events taken from each input topic.
    - ``invalid_events`` counter ``{topic, reason}``: rejected input (sent to the DLQ).
    - ``alerts`` counter ``{detector, severity}``: alerts raised (first of an episode).
    - ``late_events`` counter ``{topic}``: events older than the allowed lateness (the engine's
      ``late`` count, by input topic), still processed.
    - ``duplicate_events`` counter ``{topic}``: repeated ``event_id`` seen and skipped.
    - ``suppressed_alerts`` counter ``{detector, reason}``: findings not raised as a new
      alert, by reason (:data:`SUPPRESS_REASONS`): ``repeat`` inside an open episode,
      ``allowlist`` held back by an allow-list entry, ``feedback`` by a benign verdict.
    - ``dlq_messages`` counter ``{reason}``: messages written to the dead-letter topic.
    - ``alertmanager_posts`` counter ``{result}`` (ok/error): POSTs per Alertmanager URL.
    - ``alertmanager_dropped`` counter: alerts dropped because the send queue was full.
    - ``rebalances`` counter: consumer-group rebalances seen by this worker.
    - ``refetches`` counter: seeks back to records the consumer skipped without handing them
      to the worker (a hole in the offsets, or a partition that hands over nothing).
    - ``rekeyed_events`` counter ``{topic}``: input events on a partition their key field
      (account_id, actor_id) does not map to, re-sent to their topic keyed by it.
    - ``checkpoint_rejected`` counter ``{reason}``: stored engine checkpoints refused
      (``streams.snapshot.REASONS``); the partition started from a fresh engine.
    - ``internal_errors`` counter ``{stage}``: exceptions caught so that the worker goes on
      (``INTERNAL_STAGES``).
    - ``state_evictions`` counter ``{detector}``: entities dropped at the state cap.
    - ``processing_seconds`` histogram: engine time per event.
    - ``event_lag_seconds`` histogram: event ``ts`` to processing, in seconds.
    - ``anomaly_score`` histogram ``{detector}``: scores in 0..1.
    - ``alertmanager_post_seconds`` histogram: duration of one POST.
    - ``commit_latency_seconds`` histogram: duration of one of the consumer's commit rounds
      (``commit_timer``).
    - ``tracked_entities`` gauge ``{kind}``: entities with state in this worker.
    - ``model_warmup_ratio`` gauge ``{detector}``: 0 cold .. 1 warmed up.
    - ``engine_events`` gauge ``{kind}`` (login, access, identity, late): events the engines
      of this worker's input partitions have processed, summed over those partitions; part of
      their checkpointed state, so it continues from the checkpoint after a restart.
    - ``alertmanager_queue_size`` gauge: alerts waiting to be posted.
    - ``consumer_lag_messages`` gauge ``{topic, partition}``: end offset minus position.
    - ``worker_info`` gauge ``{version}``: always 1.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        topics: Sequence[str] = TOPICS,
        reasons: Sequence[str] = REASONS,
        detectors: Sequence[str] = DETECTORS,
        severities: Sequence[str] = SEVERITIES,
        entity_kinds: Sequence[str] = ENTITY_KINDS,
        version: str | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.topics = tuple(topics)
        self.reasons = tuple(reasons)
        self.detectors = tuple(detectors)
        self.severities = tuple(severities)
        self.entity_kinds = tuple(entity_kinds)
        reg = self.registry
        ns = PREFIX

        self.events = Counter(
            "events", "Events taken from an input topic.", ["topic"], namespace=ns, registry=reg
        )
        self.invalid_events = Counter(
            "invalid_events",
            "Input messages rejected (sent to the dead-letter topic), by reason.",
            ["topic", "reason"],
            namespace=ns,
            registry=reg,
        )
        self.alerts = Counter(
            "alerts",
            "Alert messages sent (the first of each episode and each escalation), by detector and severity.",
            ["detector", "severity"],
            namespace=ns,
            registry=reg,
        )
        self.late_events = Counter(
            "late_events",
            "Events older than the allowed lateness when processed.",
            ["topic"],
            namespace=ns,
            registry=reg,
        )
        self.duplicate_events = Counter(
            "duplicate_events",
            "Events whose event_id was already processed (skipped).",
            ["topic"],
            namespace=ns,
            registry=reg,
        )
        self.suppressed_alerts = Counter(
            "suppressed_alerts",
            "Findings not raised as a new alert: repeats inside an open episode (reason "
            "repeat), held back by the allow-list (allowlist) or by a benign verdict "
            "(feedback).",
            ["detector", "reason"],
            namespace=ns,
            registry=reg,
        )
        self.dlq_messages = Counter(
            "dlq_messages",
            "Messages written to the dead-letter topic, by reason.",
            ["reason"],
            namespace=ns,
            registry=reg,
        )
        self.alertmanager_posts = Counter(
            "alertmanager_posts",
            "POSTs to an Alertmanager /api/v2/alerts endpoint, by result (ok/error).",
            ["result"],
            namespace=ns,
            registry=reg,
        )
        self.alertmanager_dropped = Counter(
            "alertmanager_dropped",
            "Alerts dropped because the Alertmanager send queue was full.",
            namespace=ns,
            registry=reg,
        )
        self.rebalances = Counter(
            "rebalances",
            "Consumer-group rebalances seen by this worker.",
            namespace=ns,
            registry=reg,
        )
        self.refetches = Counter(
            "refetches",
            "Seeks back to records the consumer skipped without handing them to the worker.",
            namespace=ns,
            registry=reg,
        )
        self.checkpoint_rejected = Counter(
            "checkpoint_rejected",
            "Stored engine checkpoints not restored (bad_mac, unknown_version, undecodable, "
            "legacy_pickle): the partition started from a fresh engine.",
            ["reason"],
            namespace=ns,
            registry=reg,
        )
        self.rekeyed_events = Counter(
            "rekeyed_events",
            "Input events on a partition their account_id / actor_id does not map to (a "
            "producer keyed them differently), re-sent keyed by it.",
            ["topic"],
            namespace=ns,
            registry=reg,
        )
        # issue 12 (engine isolation, bounded state)
        self.internal_errors = Counter(
            "internal_errors",
            "Exceptions caught so that the worker goes on, by stage: detector (a detector's "
            "hook, timer, sweep or alert, inside the engine), event, watermark, partials, findings, "
            "checkpoint (a checkpoint not written).",
            ["stage"],
            namespace=ns,
            registry=reg,
        )
        self.state_evictions = Counter(
            "state_evictions",
            "Entities dropped from a detector's state because its cap on tracked entities "
            "was reached (least recently seen, unflagged first).",
            ["detector"],
            namespace=ns,
            registry=reg,
        )

        self.processing_seconds = Histogram(
            "processing_seconds",
            "Detection engine time per event, in seconds.",
            namespace=ns,
            registry=reg,
            buckets=PROCESSING_BUCKETS,
        )
        self.event_lag_seconds = Histogram(
            "event_lag_seconds",
            "Delay from an event's own ts to its processing, in seconds.",
            namespace=ns,
            registry=reg,
            buckets=EVENT_LAG_BUCKETS,
        )
        self.anomaly_score = Histogram(
            "anomaly_score",
            "Anomaly scores (0..1) computed by each detector.",
            ["detector"],
            namespace=ns,
            registry=reg,
            buckets=SCORE_BUCKETS,
        )
        self.alertmanager_post_seconds = Histogram(
            "alertmanager_post_seconds",
            "Duration of one POST to Alertmanager, in seconds.",
            namespace=ns,
            registry=reg,
            buckets=POST_BUCKETS,
        )
        self.commit_latency_seconds = Histogram(
            "commit_latency_seconds",
            "Duration of one commit round of the consumer (Faust's force_commit; a round "
            "with nothing to commit included), in seconds.",
            namespace=ns,
            registry=reg,
            buckets=COMMIT_BUCKETS,
        )

        self.tracked_entities = Gauge(
            "tracked_entities",
            "Entities with detection state held by this worker, by kind.",
            ["kind"],
            namespace=ns,
            registry=reg,
        )
        self.model_warmup_ratio = Gauge(
            "model_warmup_ratio",
            "How warmed up each detector's model is: 0 cold, 1 ready.",
            ["detector"],
            namespace=ns,
            registry=reg,
        )
        self.engine_events = Gauge(
            "engine_events",
            "Events processed by the detection engines of this worker's input partitions "
            "(checkpointed with them), by kind; identity counts once per partition.",
            ["kind"],
            namespace=ns,
            registry=reg,
        )
        self.alertmanager_queue_size = Gauge(
            "alertmanager_queue_size",
            "Alerts waiting to be posted to Alertmanager.",
            namespace=ns,
            registry=reg,
        )
        self.consumer_lag_messages = Gauge(
            "consumer_lag_messages",
            "Messages between this worker's position and the partition's end offset.",
            ["topic", "partition"],
            namespace=ns,
            registry=reg,
        )
        self.worker_info = Gauge(
            "worker_info",
            "Constant 1, labelled with the accesswatch version.",
            ["version"],
            namespace=ns,
            registry=reg,
        )

        self._initialise(version if version is not None else _package_version())

    def _initialise(self, version: str) -> None:
        """Create every known series at zero so it is scraped before its first event."""
        for topic in self.topics:
            self.events.labels(topic=topic)
            self.rekeyed_events.labels(topic=topic)
            self.late_events.labels(topic=topic)
            self.duplicate_events.labels(topic=topic)
            for reason in self.reasons:
                self.invalid_events.labels(topic=topic, reason=reason)
        for reason in self.reasons:
            self.dlq_messages.labels(reason=reason)
        for reason in _SNAPSHOT_REASONS:
            self.checkpoint_rejected.labels(reason=reason)
        for detector in self.detectors:
            for reason in SUPPRESS_REASONS:
                self.suppressed_alerts.labels(detector=detector, reason=reason)
            self.anomaly_score.labels(detector=detector)
            self.model_warmup_ratio.labels(detector=detector)
            self.state_evictions.labels(detector=detector)
            for severity in self.severities:
                self.alerts.labels(detector=detector, severity=severity)
        for result in POST_RESULTS:
            self.alertmanager_posts.labels(result=result)
        for kind in self.entity_kinds:
            self.tracked_entities.labels(kind=kind)
        for kind in ENGINE_EVENT_KINDS:
            self.engine_events.labels(kind=kind)
        for stage in INTERNAL_STAGES:
            self.internal_errors.labels(stage=stage)
        self.worker_info.labels(version=version).set(1)

    # Convenience helpers for the agents: each is one line at the call site.

    def count_alert(self, detector: str, severity: str, score: float | None = None) -> None:
        """Count one raised alert and, when given, observe its score."""
        self.alerts.labels(detector=detector, severity=severity).inc()
        if score is not None:
            self.anomaly_score.labels(detector=detector).observe(score)

    def count_invalid(self, topic: str, reason: str) -> None:
        """Count one rejected input message, both by topic and on the DLQ counter."""
        self.invalid_events.labels(topic=topic, reason=reason).inc()
        self.dlq_messages.labels(reason=reason).inc()

    def set_consumer_lag(self, lags: Iterable[tuple[str, int, int]]) -> None:
        """Set ``consumer_lag_messages`` from ``(topic, partition, lag)`` triples."""
        for topic, partition, lag in lags:
            self.consumer_lag_messages.labels(topic=topic, partition=str(partition)).set(lag)

    def forget_partitions(self, keep: Iterable[tuple[str, int]]) -> None:
        """Drop lag series for partitions this worker no longer owns (after a rebalance)."""
        wanted = {(t, str(p)) for t, p in keep}
        for labels in list(self.consumer_lag_messages._metrics):  # noqa: SLF001
            if labels not in wanted:
                self.consumer_lag_messages.remove(*labels)

    # Exposition.

    def render(self) -> str:
        """The registry in the Prometheus text format (what /metrics serves)."""
        return generate_latest(self.registry).decode("utf-8")

    def sample(self, name: str, **labels: str) -> float | None:
        """One sample's current value (``None`` when the series does not exist)."""
        return self.registry.get_sample_value(name, labels)

    def names(self) -> set[str]:
        """Every sample name this registry exposes (``_total``, ``_bucket``, ... included)."""
        out: set[str] = set()
        for family in self.registry.collect():
            out.add(family.name)
            for s in family.samples:
                out.add(s.name)
        return out


class HistogramBatch:
    """Observations of one unlabelled :class:`Histogram`, kept as bucket counts in plain
    Python and added to it in one step (:meth:`flush`, before each scrape and every second).

    prometheus_client takes a lock for the sum and one for the bucket of every ``observe``
    (~0.9 µs here); the worker observes two histograms per event. ``observe`` here is a
    bisect and two additions; ``flush`` adds each bucket's count with one ``inc``. The
    result is the histogram ``observe`` would have built, sample for sample (a test checks
    it against the version of prometheus_client this project pins).

    >>> from prometheus_client import CollectorRegistry
    >>> h = Histogram("x_seconds", "x", registry=CollectorRegistry(), buckets=(0.1, 1.0))
    >>> b = HistogramBatch(h)
    >>> for v in (0.05, 0.1, 0.5, 7.0):
    ...     b.observe(v)
    >>> h.collect()[0].samples[0].value      # nothing added before the flush
    0.0
    >>> b.flush()
    >>> [s.value for s in h.collect()[0].samples[:4]]  # le=0.1, 1.0, +Inf, count
    [2.0, 3.0, 4.0, 4.0]
    """

    __slots__ = ("_bounds", "_buckets", "_counts", "_hist", "_sum")

    def __init__(self, hist: Histogram) -> None:
        self._hist = hist
        self._bounds = tuple(hist._upper_bounds)  # noqa: SLF001 - ends with +Inf
        self._buckets = hist._buckets  # noqa: SLF001
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0

    def observe(self, amount: float) -> None:
        """As ``Histogram.observe``: the first bucket whose bound is >= ``amount``."""
        self._counts[bisect_left(self._bounds, amount)] += 1
        self._sum += amount

    def observe_many(self, amount: float, n: int) -> None:
        """``n`` observations of ``amount`` (the events of a batch message, each observed at
        the batch's mean time per event), in one step.

        >>> from prometheus_client import CollectorRegistry
        >>> h = Histogram("y_seconds", "y", registry=CollectorRegistry(), buckets=(0.1, 1.0))
        >>> b = HistogramBatch(h)
        >>> b.observe_many(0.5, 3)
        >>> b.flush()
        >>> [s.value for s in h.collect()[0].samples[:5]]  # le=0.1, 1.0, +Inf, count, sum
        [0.0, 3.0, 3.0, 3.0, 1.5]
        """
        if n > 0:
            self._counts[bisect_left(self._bounds, amount)] += n
            self._sum += amount * n

    def flush(self) -> None:
        """Add what was observed since the last flush to the histogram."""
        counts = self._counts
        if not any(counts):
            return
        for i, n in enumerate(counts):
            if n:
                self._buckets[i].inc(n)
                counts[i] = 0
        self._hist._sum.inc(self._sum)  # noqa: SLF001
        self._sum = 0.0


class MetricsServer:
    """A running /metrics HTTP server (prometheus_client's WSGI server in a thread)."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve(registry: CollectorRegistry, port: int = 0, addr: str = "127.0.0.1") -> MetricsServer:
    """Serve ``registry`` on ``http://addr:port/metrics`` in a daemon thread.

    ``port=0`` picks a free port (read it from ``.port``). Binds to loopback by default;
    pass ``addr="0.0.0.0"`` explicitly in a container.
    """
    server, thread = start_http_server(port, addr=addr, registry=registry)
    return MetricsServer(server, thread)


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("accesswatch")
    except PackageNotFoundError:
        return "0+unknown"


_log = logging.getLogger("accesswatch.metrics")
#: a commit round (or a checkpoint's flush, ``Runtime._send_checkpoints``) longer than this
#: is logged
SLOW_COMMIT_S = 10.0


def commit_timer(hist: Histogram) -> Any:
    """A Faust sensor that observes into ``hist`` (``commit_latency_seconds``) the duration of
    each of the consumer's commit rounds (``Consumer.force_commit``: from
    ``on_commit_initiated`` to ``on_commit_completed``, a round with nothing to commit
    included). Faust's public sensor interface: register it with ``app.sensors.add``. A
    round longer than ``SLOW_COMMIT_S`` is also logged (a warning): the input offsets wait
    for it, and a restart takes every record since the last commit again.
    """
    from faust import Sensor

    class CommitTimer(Sensor):
        def on_commit_initiated(self, consumer: Any) -> Any:
            return time.perf_counter()

        def on_commit_completed(self, consumer: Any, state: Any) -> None:
            spent = time.perf_counter() - state
            hist.observe(spent)
            if spent > SLOW_COMMIT_S:
                _log.warning("the group's commit took %.1f s", spent)

    return CommitTimer()
