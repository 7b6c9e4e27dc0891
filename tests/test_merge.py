"""The event-time merge of logins and access (``Runtime._wait_for``): when it waits for the
other topic, and how often it asks the consumer. The consumer is a stand-in that reports end
offsets (one function isolated); the merge with a real broker is tests/test_parity.py."""

from __future__ import annotations

import time
from typing import Any

import pytest
from faust.types import TP

from streams.app import create_app
from streams.runtime import BEHIND_CACHE
from streams.settings import Settings


class _Ends:
    """What ``_behind`` reads of the consumer: end offsets, committed offsets (none)."""

    def __init__(self) -> None:
        self.hw: dict[TP, int] = {}
        self.asked = 0
        self._committed_offset: dict[TP, int] = {}

    def highwater(self, tp: TP) -> int | None:
        self.asked += 1
        return self.hw.get(tp)


@pytest.fixture
def rt(tmp_path: Any) -> Any:
    settings = Settings(data_dir=str(tmp_path), state_keys=("test-state-key-0123456789",))
    app = create_app(settings)
    app._consumer = _Ends()  # noqa: SLF001 - create_app's app is never started here
    return app.accesswatch


def test_a_catch_up_waits_and_asks_the_consumer_once_per_end_offset(rt: Any,
                                                                    monkeypatch: Any) -> None:
    now = [1000.0]
    monkeypatch.setattr("streams.runtime.time.monotonic", lambda: now[0])
    access = rt.names.access
    cons = rt.app.consumer
    cons.hw[TP(access, 0)] = 500  # the broker has 500 access records
    st = rt.state(0)
    assert rt._wait_for(0, st, access) == rt.settings.merge_wait  # nothing received: wait
    assert cons.asked == 1
    for off in range(0, 499):  # access records arrive one by one, each below the end offset
        st.delivered[access] = off
        assert rt._wait_for(0, st, access) == rt.settings.merge_wait
    assert cons.asked == 1  # the answer held while the topic had not reached 500
    st.delivered[access] = 499  # caught up: asked again, nothing to wait for
    assert rt._wait_for(0, st, access) == 0.0
    assert cons.asked == 2
    cons.hw[TP(access, 0)] = 600  # more written, not yet seen by this worker's fetches:
    assert rt._wait_for(0, st, access) == 0.0  # "nothing unread" is reused for BEHIND_CACHE
    assert cons.asked == 2
    now[0] += BEHIND_CACHE * 1.01
    assert rt._wait_for(0, st, access) == rt.settings.merge_wait  # then asked: wait again
    assert cons.asked == 3


def test_a_wait_answer_expires_after_the_cache_time(rt: Any, monkeypatch: Any) -> None:
    now = [1000.0]
    monkeypatch.setattr("streams.runtime.time.monotonic", lambda: now[0])
    logins = rt.names.logins
    cons = rt.app.consumer
    cons.hw[TP(logins, 0)] = 10
    st = rt.state(0)
    assert rt._wait_for(0, st, logins) == rt.settings.merge_wait
    cons.hw[TP(logins, 0)] = 0  # (a stand-in for "the broker's answer changed")
    assert rt._wait_for(0, st, logins) == rt.settings.merge_wait  # reused within the cache
    now[0] += BEHIND_CACHE * 1.01
    assert rt._wait_for(0, st, logins) == 0.0
    assert cons.asked == 2


def test_nothing_unread_holds_only_from_a_fetch_answer_newer_than_the_waiting_record(
        rt: Any, monkeypatch: Any) -> None:
    """Each partition's records come from its own leader: an access record can arrive before
    a login written (and acknowledged) before it, while the logins' last fetch answer, older
    than the access record, still says "nothing unread". Seen on the 3-broker cluster
    (tests/test_kafka_streaming.py): the access went first, its session was judged unissued,
    an alert replay does not raise. Before: every call below answered 0."""
    now = [1000.0]
    monkeypatch.setattr("streams.runtime.time.monotonic", lambda: now[0])
    polled: list[float | None] = [None]
    monkeypatch.setattr("streams.faust_compat.last_poll", lambda consumer, tp: polled[0])
    logins = rt.names.logins
    rt.app.consumer.hw[TP(logins, 0)] = 0  # the logins' last answer: nothing on the broker
    st = rt.state(0)
    t = time.time()
    polled[0] = t - 0.1  # that answer came 0.1 s ago
    written = t - 0.05  # the access record waiting was written after it
    assert rt._wait_for(0, st, logins, written) == rt.settings.merge_wait
    assert rt._wait_for(0, st, logins, t - 0.2) == 0.0  # written before the answer: go
    assert rt._wait_for(0, st, logins, written) == rt.settings.merge_wait  # 0 not reused
    assert rt._wait_for(0, st, logins, None) == 0.0  # no timestamp: as before
    polled[0] = t  # a newer answer, still nothing unread
    assert rt._wait_for(0, st, logins, written) == 0.0
