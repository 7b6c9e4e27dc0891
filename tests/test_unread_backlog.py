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
           unread: bool) -> tuple[set[str], bool]:
    """The file through the runtime; after the event dated ``PAUSED_AFTER`` the partition
    gets nothing for ``pause_s`` wall seconds while the broker holds (``unread``) or does not
    hold more of its records. Returns the alert ids (end of input included) and whether the
    partition flushed during the pause."""
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
    rt.app.consumer = SimpleNamespace(highwater=lambda tp: (
        total[tp.topic] if unread else st.next_offset(tp.topic)))
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
