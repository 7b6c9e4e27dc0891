"""The worker's runtime goes on when the engine fails: a detector that raises on an event
puts that event in the DLQ with reason ``internal_error``; a watermark that raises is
counted and skipped; a state that cannot be encoded is not checkpointed. The runtime is
built by ``create_app`` and driven directly (no broker): its outbound sends are recorded."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from detectors import events as E
from detectors.engine import Engine, EngineConfig
from detectors.unissued_session import UnissuedSession
from streams.runtime import PartitionState
from tests.helpers import Faulty, access, recording_runtime, watch_start

T0 = 1_750_723_200  # 2025-06-24T00:00:00Z


@pytest.fixture
def rt(tmp_path: Any, monkeypatch: Any) -> Any:
    return recording_runtime(tmp_path, monkeypatch)


def message(rt: Any, offset: int) -> Any:
    msg = SimpleNamespace(topic=rt.names.access, partition=0, offset=offset, key=b"k",
                          value=b"{}", headers=())
    return SimpleNamespace(message=msg, ack=lambda: None)


def test_a_raising_detector_sends_the_event_to_the_dlq_and_the_worker_goes_on(rt: Any) -> None:
    st = PartitionState(Engine(EngineConfig(), detectors=[Faulty(), UnissuedSession()]))
    rt.parts[0] = st
    bad = E.decode_obj(access("boom-1", 1750734765, "c-1", "forged"), E.ACCESS)
    good = E.decode_obj(access("ok-1", 1750734766, "c-2", "s-2"), E.ACCESS)
    asyncio.run(rt._process(st, message(rt, 0), bad))
    asyncio.run(rt._process(st, message(rt, 1), good))
    assert rt.dlq == [("internal_error", "revoked_credential", "on_access: KeyError")]
    assert st.offsets[rt.names.access] == 1 and len(st.held) == 2  # both taken, in order
    assert st.max_ts == 1750734766  # the good event moved time on
    rt.update_gauges()
    assert rt.metrics.sample("accesswatch_internal_errors_total", stage="detector") == 1
    assert rt.metrics.sample("accesswatch_invalid_events_total", topic=rt.names.access,
                             reason="internal_error") == 1


def test_a_watermark_whose_engine_raises_is_counted_and_the_others_advance(
        rt: Any, monkeypatch: Any) -> None:
    broken = PartitionState(Engine(EngineConfig(detectors=("unissued_session",))))
    healthy = PartitionState(Engine(EngineConfig(detectors=("unissued_session",))))
    rt.parts[0], rt.parts[1] = broken, healthy
    for st in (broken, healthy):
        st.engine.process(E.decode_obj(watch_start(T0 - 600), E.LOGIN))
        st.engine.process(E.decode_obj(access("a1", T0, "c-1", "forged"), E.ACCESS))
        st.max_ts, st.wall_at_max = float(T0), 0.0

    def boom(now: float) -> Any:
        raise OverflowError("absurd time")

    monkeypatch.setattr(broken.engine, "advance", boom)
    healthy.engine._touched.add("aw-repeat")  # no Alertmanager sender: drained all the same
    asyncio.run(rt.watermark())  # at ef303a3 this raised out of the watermark timer
    assert healthy.engine._touched == set()
    assert [a["detector"] for a in rt.emitted] == ["unissued_session"]  # partition 1's
    assert rt.metrics.sample("accesswatch_internal_errors_total", stage="watermark") == 1


def test_a_state_that_cannot_be_encoded_is_not_checkpointed(rt: Any) -> None:
    st = PartitionState(Engine(EngineConfig(detectors=("unissued_session",))))
    rt.parts[0] = st
    st.engine.process(E.decode_obj(access("a1", T0, "c-1", "s"), E.ACCESS))
    st.engine.poison = lambda: None  # a lambda cannot be encoded (nor pickled)
    held = message(rt, 0)
    st.held.append(held)
    st.dirty = True
    assert asyncio.run(rt.checkpoint()) == 0  # nothing written, no exception
    assert st.held == [held] and st.dirty  # unacked: a restart takes the event again
    assert rt.checkpoints == 0
    assert rt.metrics.sample("accesswatch_internal_errors_total", stage="checkpoint") == 1
