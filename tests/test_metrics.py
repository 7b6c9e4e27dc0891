"""streams.metrics: names, units, labels, zero-initialised series, exposition."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from streams import metrics as M

EXPECTED_TYPES = {
    "accesswatch_events": ("counter", {"topic"}),
    "accesswatch_invalid_events": ("counter", {"topic", "reason"}),
    "accesswatch_alerts": ("counter", {"detector", "severity"}),
    "accesswatch_late_events": ("counter", {"topic"}),
    "accesswatch_duplicate_events": ("counter", {"topic"}),
    "accesswatch_suppressed_alerts": ("counter", {"detector", "reason"}),
    "accesswatch_dlq_messages": ("counter", {"reason"}),
    "accesswatch_alertmanager_posts": ("counter", {"result"}),
    "accesswatch_alertmanager_dropped": ("counter", set()),
    "accesswatch_rebalances": ("counter", set()),
    "accesswatch_refetches": ("counter", set()),
    "accesswatch_rekeyed_events": ("counter", {"topic"}),
    "accesswatch_checkpoint_rejected": ("counter", {"reason"}),
    "accesswatch_internal_errors": ("counter", {"stage"}),
    "accesswatch_state_evictions": ("counter", {"detector"}),
    "accesswatch_processing_seconds": ("histogram", set()),
    "accesswatch_event_lag_seconds": ("histogram", set()),
    "accesswatch_anomaly_score": ("histogram", {"detector"}),
    "accesswatch_alertmanager_post_seconds": ("histogram", set()),
    "accesswatch_commit_latency_seconds": ("histogram", set()),
    "accesswatch_tracked_entities": ("gauge", {"kind"}),
    "accesswatch_model_warmup_ratio": ("gauge", {"detector"}),
    "accesswatch_engine_events": ("gauge", {"kind"}),
    "accesswatch_alertmanager_queue_size": ("gauge", set()),
    "accesswatch_consumer_lag_messages": ("gauge", {"topic", "partition"}),
    "accesswatch_worker_info": ("gauge", {"version"}),
}
# Labels that would carry an entity: never allowed on a metric.
FORBIDDEN_LABELS = {
    "account_id",
    "actor_id",
    "subject_id",
    "src_ip",
    "ip",
    "key_id",
    "entity_id",
    "session_id",
    "principal_id",
    "entity",
    "asn",
    "subnet",
}


@pytest.fixture
def m() -> M.Metrics:
    return M.Metrics(CollectorRegistry(), version="1.2.3")


def test_exactly_the_declared_families_with_their_types_and_labels(m: M.Metrics) -> None:
    families = {f.name: f for f in m.registry.collect()}
    assert set(families) == set(EXPECTED_TYPES)
    for name, (kind, labels) in EXPECTED_TYPES.items():
        assert families[name].type == kind, name
        assert families[name].documentation, name
        seen: set[str] = set()
        for s in families[name].samples:
            seen |= set(s.labels) - {"le"}
        # Unlabelled gauges/counters and the lag gauge (no partitions yet) may be empty.
        assert seen <= labels, name
        assert not (seen & FORBIDDEN_LABELS), name


def test_known_label_values_exist_at_zero(m: M.Metrics) -> None:
    for topic in M.TOPICS:
        assert m.sample("accesswatch_events_total", topic=topic) == 0.0
        assert m.sample("accesswatch_late_events_total", topic=topic) == 0.0
        assert m.sample("accesswatch_duplicate_events_total", topic=topic) == 0.0
        for reason in M.REASONS:
            assert m.sample("accesswatch_invalid_events_total", topic=topic, reason=reason) == 0.0
    for detector in M.DETECTORS:
        for severity in M.SEVERITIES:
            assert m.sample("accesswatch_alerts_total", detector=detector, severity=severity) == 0.0
        for reason in M.SUPPRESS_REASONS:
            assert m.sample("accesswatch_suppressed_alerts_total", detector=detector,
                            reason=reason) == 0.0
        assert m.sample("accesswatch_anomaly_score_count", detector=detector) == 0.0
        assert m.sample("accesswatch_model_warmup_ratio", detector=detector) == 0.0
    for kind in M.ENTITY_KINDS:
        assert m.sample("accesswatch_tracked_entities", kind=kind) == 0.0
    for kind in ("login", "access", "identity", "late"):
        assert m.sample("accesswatch_engine_events", kind=kind) == 0.0
    for reason in M.REASONS:
        assert m.sample("accesswatch_dlq_messages_total", reason=reason) == 0.0
    assert m.sample("accesswatch_alertmanager_posts_total", result="ok") == 0.0
    assert m.sample("accesswatch_alertmanager_posts_total", result="error") == 0.0
    assert m.sample("accesswatch_alertmanager_dropped_total") == 0.0
    assert m.sample("accesswatch_rebalances_total") == 0.0
    assert m.sample("accesswatch_alertmanager_queue_size") == 0.0
    assert m.sample("accesswatch_processing_seconds_count") == 0.0
    assert m.sample("accesswatch_worker_info", version="1.2.3") == 1.0


def test_constructor_lists_replace_the_defaults() -> None:
    m = M.Metrics(
        CollectorRegistry(),
        topics=["t1"],
        detectors=["d1"],
        severities=["critical"],
        reasons=["r1"],
        entity_kinds=["k1"],
        version="x",
    )
    assert m.sample("accesswatch_events_total", topic="t1") == 0.0
    assert m.sample("accesswatch_events_total", topic="auth-logins") is None
    assert m.sample("accesswatch_alerts_total", detector="d1", severity="critical") == 0.0
    assert m.sample("accesswatch_alerts_total", detector="d1", severity="info") is None
    assert m.sample("accesswatch_invalid_events_total", topic="t1", reason="r1") == 0.0
    assert m.sample("accesswatch_tracked_entities", kind="k1") == 0.0


def test_two_instances_do_not_collide_on_separate_registries() -> None:
    a = M.Metrics(CollectorRegistry())
    b = M.Metrics(CollectorRegistry())
    a.events.labels(topic="data-access").inc(3)
    assert a.sample("accesswatch_events_total", topic="data-access") == 3.0
    assert b.sample("accesswatch_events_total", topic="data-access") == 0.0


def test_same_registry_twice_is_refused() -> None:
    reg = CollectorRegistry()
    M.Metrics(reg)
    with pytest.raises(ValueError):
        M.Metrics(reg)


def test_helpers_count_alerts_invalid_input_and_lag(m: M.Metrics) -> None:
    m.count_alert("bulk_lookup", "critical", 0.97)
    m.count_alert("bulk_lookup", "critical")
    assert m.sample("accesswatch_alerts_total", detector="bulk_lookup", severity="critical") == 2.0
    assert m.sample("accesswatch_anomaly_score_count", detector="bulk_lookup") == 1.0
    assert m.sample("accesswatch_anomaly_score_bucket", detector="bulk_lookup", le="0.95") == 0.0
    assert m.sample("accesswatch_anomaly_score_bucket", detector="bulk_lookup", le="0.99") == 1.0

    m.count_invalid("data-access", "missing_field")
    assert (
        m.sample("accesswatch_invalid_events_total", topic="data-access", reason="missing_field")
        == 1.0
    )
    assert m.sample("accesswatch_dlq_messages_total", reason="missing_field") == 1.0

    m.set_consumer_lag([("data-access", 0, 12), ("data-access", 1, 0)])
    assert m.sample("accesswatch_consumer_lag_messages", topic="data-access", partition="0") == 12
    m.forget_partitions([("data-access", 1)])
    assert m.sample("accesswatch_consumer_lag_messages", topic="data-access", partition="0") is None
    assert m.sample("accesswatch_consumer_lag_messages", topic="data-access", partition="1") == 0


def test_buckets_cover_their_ranges() -> None:
    assert M.SCORE_BUCKETS[-1] == 1.0 and M.SCORE_BUCKETS[0] > 0
    assert M.PROCESSING_BUCKETS[0] <= 0.00005  # a Faust event costs ~50 µs
    assert M.EVENT_LAG_BUCKETS[-1] >= 3600  # backfills lag by hours
    for buckets in (
        M.PROCESSING_BUCKETS,
        M.EVENT_LAG_BUCKETS,
        M.SCORE_BUCKETS,
        M.POST_BUCKETS,
        M.COMMIT_BUCKETS,
    ):
        assert list(buckets) == sorted(set(buckets))


def test_render_is_valid_exposition_text(m: M.Metrics) -> None:
    m.events.labels(topic="auth-logins").inc(5)
    text = m.render()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "accesswatch_events" in families
    values = {
        tuple(sorted(s.labels.items())): s.value
        for s in families["accesswatch_events"].samples
        if s.name == "accesswatch_events_total"
    }
    assert values[(("topic", "auth-logins"),)] == 5.0


def test_serve_exposes_metrics_over_http_on_loopback(m: M.Metrics) -> None:
    server = M.serve(m.registry, port=0)
    try:
        m.rebalances.inc()
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as r:
            body = r.read().decode()
        assert "accesswatch_rebalances_total 1.0" in body
    finally:
        server.stop()


@pytest.mark.parametrize("buckets", [M.PROCESSING_BUCKETS, M.EVENT_LAG_BUCKETS])
def test_histogram_batch_builds_the_histogram_observe_would(buckets: tuple[float, ...]) -> None:
    import random

    from prometheus_client import Histogram

    rng = random.Random(7)
    values = [rng.expovariate(1 / b) for b in buckets for _ in range(50)]
    values += list(buckets) + [0.0, buckets[-1] * 10]  # exactly on a bound, zero, beyond all
    direct = Histogram("h_seconds", "h", registry=CollectorRegistry(), buckets=buckets)
    batched = Histogram("h_seconds", "h", registry=CollectorRegistry(), buckets=buckets)
    batch = M.HistogramBatch(batched)
    for i, v in enumerate(values):
        direct.observe(v)
        batch.observe(v)
        if i % 97 == 0:
            batch.flush()  # several flushes add up
    batch.flush()
    batch.flush()  # nothing new: adds nothing

    def samples(h: Histogram) -> list[tuple[str, dict[str, str], float]]:
        return [(s.name, s.labels, s.value) for s in h.collect()[0].samples
                if not s.name.endswith("_created")]

    got, want = samples(batched), samples(direct)
    assert [s[:2] for s in got] == [s[:2] for s in want]
    for (name, labels, g), (_, _, w) in zip(got, want, strict=True):
        assert g == pytest.approx(w, rel=1e-9), (name, labels)
    assert want[-2][2] == len(values)  # _count


def test_a_slow_commit_round_is_observed_and_logged(m: M.Metrics, caplog: Any) -> None:
    """Every commit round goes into ``commit_latency_seconds``; one over ``SLOW_COMMIT_S``
    also gives a warning (the input offsets waited for it), a quick one does not."""
    import logging
    import time

    timer = M.commit_timer(m.commit_latency_seconds)
    with caplog.at_level(logging.WARNING, logger="accesswatch.metrics"):
        timer.on_commit_completed(None, timer.on_commit_initiated(None))
        assert not caplog.records
        timer.on_commit_completed(None, time.perf_counter() - M.SLOW_COMMIT_S - 1.0)
    assert [r.getMessage() for r in caplog.records] == [
        f"the group's commit took {M.SLOW_COMMIT_S + 1.0:.1f} s"]
    assert m.registry.get_sample_value("accesswatch_commit_latency_seconds_count") == 2
