"""Events a producer keyed differently: re-sent once, keyed by account_id / actor_id.

DESIGN.md keys auth-logins by account_id and data-access by actor_id with the Java-compatible
default partitioner, so an account's logins and its own requests meet in one partition. An
input event on a partition its key field does not map to (an unkeyed shipper, a key by IP or
by session) is not processed there: ``Runtime._process`` re-sends its original bytes to the
same topic keyed by that field (one ingress repartition, only for such events). The send is
a stand-in here (one function isolated); the broker path is tests/test_rekey_streaming.py.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner
from faust.types import TP

from streams.app import create_app
from streams.runtime import partition_for
from streams.settings import Settings

PARTITIONS = 4


def test_partition_for_is_the_partition_the_resending_producer_picks() -> None:
    rng = random.Random(5)
    for n in (1, 2, 3, 4, 12):
        for _ in range(500):
            key = f"c-{rng.randrange(10**9)}".encode()
            assert partition_for(key, n) == DefaultPartitioner.__call__(key, list(range(n)), [])


class _Ends:
    """The consumer as ``_behind`` reads it: nothing unread anywhere (the merge never waits)."""

    def __init__(self, topics: tuple[str, ...]) -> None:
        self._committed_offset: dict[TP, int] = {}
        self.hw = {TP(t, p): 0 for t in topics for p in range(PARTITIONS)}

    def highwater(self, tp: TP) -> int | None:
        return self.hw.get(tp)


class _Msg:
    def __init__(self, topic: str, partition: int, offset: int, key: bytes | None,
                 value: bytes) -> None:
        self.topic, self.partition, self.offset = topic, partition, offset
        self.key, self.value, self.headers = key, value, [("trace", b"t-1")]


class _Event:
    def __init__(self, msg: _Msg) -> None:
        self.message = msg


@pytest.fixture
def rt(tmp_path: Any) -> Any:
    app = create_app(Settings(data_dir=str(tmp_path), partitions=PARTITIONS,
                              state_keys=("test-state-key-0123456789",)))
    rt = app.accesswatch
    app._consumer = _Ends(rt.input_topics)  # noqa: SLF001 - the app is never started
    rt.identity_ready.set()
    rt.bursts = None  # logins by source (streams.bursts) are not what this tests
    rt.sent = []

    def capture(topic: str) -> Any:
        async def send(**kw: Any) -> None:
            rt.sent.append((topic, kw))
        return send

    for t in rt.input_topics:
        rt.resend[t].send = capture(t)
    return rt


def _login(account: str, i: int) -> bytes:
    return orjson.dumps({"event_id": f"l{i}", "ts": 1750000000 + i, "account_id": account,
                         "outcome": "success", "src_ip": "81.2.69.160", "session_id": f"s{i}"})


def _taken(rt: Any, partition: int) -> int:
    st = rt.parts.get(partition)
    return 0 if st is None else sum(st.engine.stats.values())


def test_an_event_off_its_partition_is_resent_keyed_by_its_account(rt: Any) -> None:
    topic = rt.names.logins
    acct = "c-1"
    home = partition_for(acct.encode(), PARTITIONS)
    away = (home + 1) % PARTITIONS
    value = _login(acct, 1)

    async def run() -> None:
        # unkeyed (or keyed by something else) and on the wrong partition: re-sent, not processed
        await rt.on_event(_Event(_Msg(topic, away, 0, None, value)))
        await rt.on_event(_Event(_Msg(topic, away, 1, b"81.2.69.160", _login(acct, 2))))
        # keyed by the account: trusted, processed where it is
        await rt.on_event(_Event(_Msg(topic, away, 2, acct.encode(), _login(acct, 3))))
        # unkeyed but on the account's own partition: processed there
        await rt.on_event(_Event(_Msg(topic, home, 0, None, _login(acct, 4))))

    asyncio.run(run())
    assert [(t, kw["key"]) for t, kw in rt.sent] == [(topic, acct.encode())] * 2
    assert rt.sent[0][1]["value"] == value  # the original bytes
    assert rt.sent[0][1]["headers"] == [("trace", b"t-1")]
    assert rt.metrics.sample("accesswatch_rekeyed_events_total", topic=topic) == 2.0
    # the re-sent ones count as handled here: held for the ack, offsets covered
    st = rt.parts[away]
    assert st.offsets[topic] == 2 and len(st.held) == 3
    assert _taken(rt, away) == 1 and _taken(rt, home) == 1


def test_one_partition_never_resends(tmp_path: Any) -> None:
    app = create_app(Settings(data_dir=str(tmp_path), partitions=1,
                              state_keys=("test-state-key-0123456789",)))
    rt = app.accesswatch
    app._consumer = _Ends(rt.input_topics)  # noqa: SLF001
    asyncio.run(rt.on_event(_Event(_Msg(rt.names.logins, 0, 0, b"other", _login("c-1", 1)))))
    assert _taken(rt, 0) == 1  # whatever its key: every account maps to partition 0
    assert rt.metrics.sample("accesswatch_rekeyed_events_total", topic=rt.names.logins) == 0.0
