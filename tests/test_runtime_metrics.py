"""Metrics the runtime feeds from what happens in it (no broker): late events by input
topic, and the duration of the consumer's commit rounds through Faust's sensor interface."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from detectors import events as E
from detectors.engine import Engine, EngineConfig
from streams.app import create_app
from streams.runtime import PartitionState
from streams.settings import Settings
from tests.helpers import access, recording_runtime


def message(topic: str, offset: int) -> Any:
    msg = SimpleNamespace(topic=topic, partition=0, offset=offset, key=b"k", value=b"{}",
                          headers=())
    return SimpleNamespace(message=msg, ack=lambda: None)


def test_an_event_older_than_the_allowed_lateness_is_counted_late_on_its_topic(
        tmp_path: Any, monkeypatch: Any) -> None:
    rt = recording_runtime(tmp_path, monkeypatch)
    cfg = EngineConfig()
    st = PartitionState(Engine(cfg))
    rt.parts[0] = st
    topic = rt.names.access
    t = 1750734765.0
    events = [access("now-1", t, "c-1", "s-1"),
              access("late-1", t - cfg.allowed_lateness - 60, "c-2", "s-2"),  # late
              access("ok-2", t - cfg.allowed_lateness / 2, "c-3", "s-3")]     # within it
    for off, obj in enumerate(events):
        asyncio.run(rt._process(st, message(topic, off), E.decode_obj(obj, E.ACCESS)))

    def late(t: str) -> float | None:
        return rt.metrics.sample("accesswatch_late_events_total", topic=t)

    assert late(topic) == 1 == st.engine.stats["late"]
    assert late(rt.names.logins) == 0
    assert st.engine.stats["access"] == 3  # the late event was still processed


def test_each_commit_round_is_timed_by_the_sensor_registered_on_the_app(tmp_path: Any) -> None:
    app = create_app(Settings(data_dir=str(tmp_path),
                              state_keys=("test-state-key-0123456789",)))
    metrics = app.accesswatch.metrics

    def rounds() -> float | None:
        return metrics.sample("accesswatch_commit_latency_seconds_count")

    assert rounds() == 0
    # what faust's Consumer.force_commit calls around each commit round
    state = app.sensors.on_commit_initiated(None)
    app.sensors.on_commit_completed(None, state)
    assert rounds() == 1
    assert 0 <= metrics.sample("accesswatch_commit_latency_seconds_sum") < 60
