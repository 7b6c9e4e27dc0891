"""The worker's side of untrusted input (no broker: the runtime's handler, sends captured).

The worker decodes each record with its topic's policy and the wall clock at receipt as the
record's arrival: an event dated ahead of that by more than the skew, or out of the accepted
years, goes to the dead-letter topic with its reason and the worker goes on; an event id
reused with other content is processed and counted. The broker path of the DLQ is
tests/test_recovery.py and friends.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from faust.types import TP

from streams.app import create_app
from streams.settings import Settings, SettingsError


class _Ends:
    """The consumer as the merge reads it: nothing unread anywhere."""

    def __init__(self, topics: tuple[str, ...]) -> None:
        self._committed_offset: dict[TP, int] = {}
        self.hw = {TP(t, 0): 0 for t in topics}

    def highwater(self, tp: TP) -> int | None:
        return self.hw.get(tp)


class _Msg:
    def __init__(self, topic: str, offset: int, value: bytes) -> None:
        self.topic, self.partition, self.offset = topic, 0, offset
        self.key, self.value, self.headers = None, value, []


class _Event:
    def __init__(self, msg: _Msg) -> None:
        self.message = msg


def _runtime(tmp_path: Any, **kw: Any) -> Any:
    app = create_app(Settings(data_dir=str(tmp_path), partitions=1,
                              state_keys=("test-state-key-0123456789",), **kw))
    rt = app.accesswatch
    app._consumer = _Ends(rt.input_topics)  # noqa: SLF001 - the app is never started
    rt.identity_ready.set()
    rt.dead = []

    async def dlq(**kw: Any) -> None:
        rt.dead.append(dict(kw["headers"])["aw-reason"].decode())

    async def nowhere(**kw: Any) -> None:
        return None

    rt.dlq_topic.send = dlq
    rt.alerts_topic.send = nowhere
    return rt


def _login(i: int, ts: Any, **kw: Any) -> bytes:
    return orjson.dumps({"event_id": f"l{i}", "ts": ts, "account_id": f"c-{i}",
                         "outcome": "success", "src_ip": "121.134.0.1", "session_id": f"s{i}",
                         **kw})


def test_the_worker_dead_letters_future_and_out_of_range_times_and_goes_on(tmp_path: Any
                                                                          ) -> None:
    rt = _runtime(tmp_path)
    topic = rt.names.logins
    now = time.time()
    lines = [_login(1, now - 60), _login(2, "9999-12-31T23:59:59-23:59"),
             _login(3, "2099-06-24T00:00:00Z"), _login(4, now + 3600), _login(5, now + 60),
             _login(6, "20250624T031245Z")]

    async def run() -> None:
        for off, line in enumerate(lines):
            await rt.on_event(_Event(_Msg(topic, off, line)))

    asyncio.run(run())
    assert rt.dead == ["ts_out_of_range", "future_ts", "future_ts", "bad_value"]
    eng = rt.parts[0].engine
    assert eng.stats["login"] == 2
    assert eng.ctx.now == pytest.approx(now + 60)  # event time never jumped ahead
    assert rt.metrics.sample("accesswatch_invalid_events_total", topic=topic,
                             reason="future_ts") == 2.0


def test_the_worker_processes_and_counts_a_reused_event_id(tmp_path: Any) -> None:
    rt = _runtime(tmp_path)
    topic = rt.names.logins
    now = time.time()
    first = _login(1, now - 60)
    other = _login(1, now - 59, src_ip="3.101.4.4")

    async def run() -> None:
        for off, line in enumerate([first, first, other]):
            await rt.on_event(_Event(_Msg(topic, off, line)))

    asyncio.run(run())
    eng = rt.parts[0].engine
    assert eng.stats["login"] == 2 and eng.stats["duplicate_conflict"] == 1
    assert rt.dead == []
    assert rt.metrics.sample("accesswatch_invalid_events_total", topic=topic,
                             reason="duplicate_conflict") == 1.0


def test_producer_geo_is_trusted_per_topic_and_the_skew_is_configurable(tmp_path: Any) -> None:
    rt = _runtime(tmp_path, trust_producer_geo=("data-access",), max_future_skew=0.0,
                  ts_min_year=1990)
    assert not rt.policy_of[rt.names.logins].trust_geo
    assert rt.policy_of[rt.names.access].trust_geo
    assert rt.policy_of[rt.names.access].future_skew is None  # 0 = off
    assert rt.policy_of[rt.names.logins].ts_min == 631152000.0  # 1990-01-01
    every = _runtime(tmp_path / "b", trust_producer_geo=("*",))
    assert all(p.trust_geo for p in every.policy_of.values())
    with pytest.raises(SettingsError):
        Settings(ts_min_year=2050, ts_max_year=2000).validate()
    env = Settings.from_env({"ACCESSWATCH_TRUST_PRODUCER_GEO": "auth-logins, data-access",
                             "ACCESSWATCH_MAX_FUTURE_SKEW": "60",
                             "ACCESSWATCH_TS_MAX_YEAR": "2050"})
    assert env.trust_producer_geo == ("auth-logins", "data-access")
    assert (env.max_future_skew, env.ts_max_year) == (60.0, 2050)


# ---------------------------------------------------------------- broker-backed



@pytest.mark.broker
@pytest.mark.timeout(180)
def test_a_year_9999_event_and_a_2099_event_go_to_the_dlq_and_the_worker_stays_up(
        fresh_tansu: Any, tmp_path: Any) -> None:
    """Fails on ef303a3: all three were accepted (the year-9999 one then moved the
    partition's event time to the year 10000, where the first alert to be time-stamped
    raised in the watermark tick, outside the per-event error handling)."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    from local.worker import WorkerProcess
    from streams.topics import TopicNames, create_topics

    names = TopicNames()
    create_topics(fresh_tansu.bootstrap, partitions=1)
    now = time.time()
    bad = {
        _login(1, "9999-12-31T23:59:59-23:59"): b"ts_out_of_range",
        _login(2, "2099-06-24T00:00:00Z"): b"future_ts",
        _login(3, now + 3600): b"future_ts",
    }
    good = [_login(4, now - 30), _login(5, now - 20)]
    prod = KafkaProducer(bootstrap_servers=fresh_tansu.bootstrap)
    for value in [good[0], *bad, good[1]]:
        prod.send(names.logins, key=b"k", value=value)
    prod.flush()
    prod.close()
    worker = WorkerProcess(fresh_tansu.url, partitions=1, data_dir=str(tmp_path))
    worker.start()
    got: list[Any] = []
    try:
        worker.wait_ready()
        c = KafkaConsumer(bootstrap_servers=fresh_tansu.bootstrap, group_id=None,
                          auto_offset_reset="earliest")
        try:
            tp = TopicPartition(names.dlq, 0)
            c.assign([tp])
            c.seek_to_beginning(tp)
            deadline = time.monotonic() + 60
            while len(got) < len(bad) and time.monotonic() < deadline:
                for recs in c.poll(timeout_ms=500).values():
                    got.extend(recs)
        finally:
            c.close()
        deadline = time.monotonic() + 30
        # every record taken, then a watermark tick after the good ones were processed (the
        # tracked-entity gauge is set at the end of a tick): where the year-9999 event used
        # to kill the worker
        while worker.metric("accesswatch_events_total") < len(bad) + len(good) or (
                worker.metric("accesswatch_tracked_entities") == 0):
            assert worker.alive() and time.monotonic() < deadline, worker.log_tail(40)
            time.sleep(0.3)
        assert worker.alive(), worker.log_tail(40)
    finally:
        rc = worker.stop()
    assert {r.value: dict(r.headers)["aw-reason"] for r in got} == bad
    assert rc == 0
