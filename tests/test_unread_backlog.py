"""A partition starved mid-backlog is not at the end of its input (issue 17 item 5, h-par3).

On a loaded host (``demo --events FILE --partitions 4`` at load average 11-13) one input
partition may get no event for seconds while the others take theirs. Its event time then
moved on the wall clock past ``watermark_delay`` and past ``idle_flush`` it fired every timer
as at the end of its input: window views scored half-way, grace windows closed, alert ids
unlike ``replay``'s. Neither happens now while the broker has said (``highwater``) that it
holds records of that partition the worker has not received; once it has taken them, the
wall clock counts again. The pause of ``tests/test_watermark_pause.py`` (the CI run's pair of
alert ids), with the consumer's high watermarks stubbed.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest

from detectors import events as E
from detectors.base import iso
from streams.runtime import AppliedDirectory, PartitionState
from tests.test_watermark_pause import PAUSED_AFTER, lines, replayed, runtime  # noqa: F401


def paused(rt: Any, lines: list[bytes], pause_s: float,  # noqa: F811
           unread: bool, answered_ago: float | None = None) -> tuple[set[str], bool]:
    """The file through the runtime; after the event dated ``PAUSED_AFTER`` the partition
    gets nothing for ``pause_s`` wall seconds while the broker holds (``unread``) or does not
    hold more of its records; ``answered_ago``: the last fetch answer of its topics came that
    many seconds before the watermark's tick (None: the consumer cannot tell). Returns the
    alert ids (end of input included) and whether the partition flushed during the pause."""
    st = PartitionState(rt._fresh_engine())
    st.engine.ctx.directory = AppliedDirectory(rt.directory)
    rt.parts[0] = st
    topic = {E.LOGIN: rt.names.logins, E.ACCESS: rt.names.access}
    offsets = dict.fromkeys(topic.values(), -1)
    total = {t: 0 for t in topic.values()}
    events = [(E.decode(line), line) for line in lines]
    for ev, _ in events:
        if ev.kind in topic:
            total[topic[ev.kind]] += 1
    # the broker's high watermark of each input topic: every record produced, or only those
    # received (caught up)
    polled = (lambda tp: None) if answered_ago is None else (
        lambda tp: (time.time() - answered_ago) * 1000.0)  # aiokafka's ms
    aiokafka_consumer = SimpleNamespace(last_poll_timestamp=polled)
    rt.app.consumer = SimpleNamespace(highwater=lambda tp: (
        total[tp.topic] if unread else st.next_offset(tp.topic)),
        _thread=SimpleNamespace(_ensure_consumer=lambda: aiokafka_consumer))
    flushed = False

    async def run() -> None:
        nonlocal flushed
        for ev, line in events:
            if ev.kind == E.IDENTITY:
                msg = SimpleNamespace(topic=rt.names.identity, partition=0, offset=0, key=b"k",
                                      value=line, headers=())
                await rt.on_identity(msg)
        done = False
        for ev, line in events:
            if ev.kind == E.IDENTITY:
                continue
            t = topic[ev.kind]
            offsets[t] += 1
            msg = SimpleNamespace(topic=t, partition=0, offset=offsets[t], key=b"k", value=line,
                                  headers=())
            await rt._process(st, SimpleNamespace(message=msg, ack=lambda: None), ev)
            if not done and iso(ev.ts) == PAUSED_AFTER:
                done = True
                st.wall_at_max = st.last_wall = time.monotonic() - pause_s
                await rt.watermark()
                flushed = st.flushed
        assert done

    asyncio.run(run())
    rt.emitted.extend(st.engine.flush())
    return {a["alert_id"] for a in rt.emitted}, flushed


@pytest.mark.parametrize("unread", [True, False])
def test_a_partition_with_records_unread_keeps_its_time_and_timers(
        tmp_path: Any, lines: list[bytes], replayed: set[str], unread: bool) -> None:  # noqa: F811
    """A 40 s pause, past ``watermark_delay`` (10 s) and ``idle_flush`` (2 s): with records
    of the partition unread the alerts are the replay's and nothing flushed; caught up (the
    end of its input, for all the worker can tell) its time moved on and its timers fired,
    the CI run's alert id invented."""
    rt = runtime(tmp_path, watermark_delay=10.0, idle_flush=2.0)
    got, flushed = paused(rt, lines, 40.0, unread)
    if unread:
        assert not flushed
        assert got == replayed, (sorted(replayed - got), sorted(got - replayed))
    else:
        assert flushed
        assert "aw-4bf5069eae7e44858baeea47" in got - replayed


@pytest.mark.parametrize("answered_ago", [40.0, 0.5])
def test_a_partition_the_broker_gives_no_answer_for_keeps_its_time_and_timers(
        tmp_path: Any, lines: list[bytes], replayed: set[str],  # noqa: F811
        answered_ago: float) -> None:
    """Caught up as far as the last answer went, but no fetch answer for 40 s (the broker
    restarting, the partition's leader gone): what producers wrote meanwhile is unknown, so
    the pause is not idle time: nothing flushed, the replay's alerts. With fresh answers
    (0.5 s ago) the same pause is the end of its input, as in the test above."""
    rt = runtime(tmp_path, watermark_delay=10.0, idle_flush=2.0)
    got, flushed = paused(rt, lines, 40.0, unread=False, answered_ago=answered_ago)
    if answered_ago > 3.0:
        assert not flushed
        assert got == replayed, (sorted(replayed - got), sorted(got - replayed))
    else:
        assert flushed
        assert "aw-4bf5069eae7e44858baeea47" in got - replayed


def test_idle_time_counts_from_the_first_fresh_answer_after_an_outage(tmp_path: Any) -> None:
    """An outage longer than ``idle_flush``: once the broker answers again (caught up), the
    partition must stay quiet ``idle_flush`` more before it flushes, not flush at once."""
    rt = runtime(tmp_path, watermark_delay=600.0, idle_flush=5.0)
    st = PartitionState(rt._fresh_engine())
    st.engine.ctx.directory = AppliedDirectory(rt.directory)
    rt.parts[0] = st
    ago = {"s": 30.0}
    aiokafka_consumer = SimpleNamespace(
        last_poll_timestamp=lambda tp: (time.time() - ago["s"]) * 1000.0)
    rt.app.consumer = SimpleNamespace(
        highwater=lambda tp: st.next_offset(tp.topic),
        _thread=SimpleNamespace(_ensure_consumer=lambda: aiokafka_consumer))
    st.max_ts, st.flushed = 1_750_000_000.0, False  # an event was taken, not flushed yet
    st.wall_at_max = st.last_wall = time.monotonic() - 60.0  # the last event: a minute ago

    async def tick() -> bool:
        await rt.watermark()
        return st.flushed

    assert asyncio.run(tick()) is False  # no answer for 30 s: an outage, not idle
    ago["s"] = 0.2  # the broker is back, nothing new on it
    assert asyncio.run(tick()) is False  # idle counts from the outage's end
    st.unsure_at -= 5.0  # 5 s of fresh answers later
    assert asyncio.run(tick()) is True

