"""A pause in the worker's input does not move event time ahead of the events still to come.

The worker's watermark moves each partition's event time on the wall clock while no event
comes (``Runtime.watermark``): timers fire, grace windows close, bulk_lookup's window views
are scored. A pause is not the end of the input, though: a broker failover, a producer
waiting for its acks, a login pipeline behind the access one. Events dated inside the pause
arrive after it; if the watermark had already fired the timers they precede, the worker
scores what the replay of the same file scores at another time (seen in CI, the 3-broker
cluster losing a leader: replay's bulk_lookup alert ``aw-4cdd02f30edbede80927ae45`` for
139.180.134.136 came out of the worker as ``aw-4bf5069eae7e44858baeea47``: the watermark
closed the 00:46 window at 00:46:31.845, a view of half of it, during a pause, and the
episode started there instead of at the window's last event, 00:46:59.324).

The runtime is built by ``create_app`` and driven directly (no broker), on the file of the
cluster test (tests/test_kafka_streaming.py ``LIVE_SIM``), with a pause of the input at the
point of that CI run.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest

from detectors import events as E
from detectors.base import iso
from simulation import SimConfig
from streams.app import create_app
from streams.runtime import AppliedDirectory, PartitionState
from streams.settings import Settings
from tests.helpers import replay_alerts, sim_lines

# the file of the cluster failover test (tests/test_kafka_streaming.py LIVE_SIM)
LIVE_SIM = SimConfig(seed=5, customers=800, hours=2, attacks=("coupang",), attack_start_hour=0.5)
#: where the CI run's worker paused: after its event at this time (the 00:46 window's view of
#: 139.180.134.136 then ended there)
PAUSED_AFTER = "2025-06-24T00:46:31.845Z"


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    return sim_lines(LIVE_SIM)


@pytest.fixture(scope="module")
def replayed(lines: list[bytes]) -> set[str]:
    return {a["alert_id"] for a in replay_alerts(lines)}


def runtime(tmp_path: Any, **settings: Any) -> Any:
    app = create_app(Settings(data_dir=str(tmp_path), state_keys=("test-state-key-0123456789",),
                              partitions=1, **settings))
    rt = app.accesswatch
    rt.emitted = []
    # one partition: no combiner, the input engine scores bulk_lookup's views in place (as
    # replay does), so the runtime's alerts are all there is
    assert app.accesswatch_combine is None and not rt.config.remote_kinds

    async def emit(alert: dict[str, Any]) -> None:
        rt.emitted.append(alert)

    async def nothing() -> None:
        return None

    rt.emit = emit
    rt.watch_delivery = nothing
    rt._update_lag = lambda: None
    return rt


def stream(rt: Any, lines: list[bytes], pause_after: str | None, pause_s: float) -> set[str]:
    """The file through the worker's runtime (identity first, as the cluster test produces
    it; then logins and access in file order, one partition); after the event dated
    ``pause_after`` the input is quiet for ``pause_s`` wall seconds (the watermark ticks at
    its end), then the rest comes. Returns the alert ids it raised, end of input included."""
    st = PartitionState(rt._fresh_engine())
    st.engine.ctx.directory = AppliedDirectory(rt.directory)
    rt.parts[0] = st
    topic = {E.IDENTITY: rt.names.identity, E.LOGIN: rt.names.logins, E.ACCESS: rt.names.access}
    offsets = dict.fromkeys(topic.values(), -1)

    def message(kind: str, line: bytes) -> Any:
        t = topic[kind]
        offsets[t] += 1
        msg = SimpleNamespace(topic=t, partition=0, offset=offsets[t], key=b"k", value=line,
                              headers=())
        return SimpleNamespace(message=msg, ack=lambda: None)

    async def run() -> None:
        events = [(E.decode(line), line) for line in lines]
        for ev, line in events:
            if ev.kind == E.IDENTITY:
                await rt.on_identity(message(ev.kind, line).message)
        paused = False
        for ev, line in events:
            if ev.kind == E.IDENTITY:
                continue
            await rt._process(st, message(ev.kind, line), ev)
            if not paused and pause_after is not None and iso(ev.ts) == pause_after:
                paused = True
                st.wall_at_max = time.monotonic() - pause_s  # quiet since that event
                await rt.watermark()
        assert pause_after is None or paused, pause_after

    asyncio.run(run())
    rt.emitted.extend(st.engine.flush())  # end of input, as replay's
    return {a["alert_id"] for a in rt.emitted}


def test_the_runtime_without_a_pause_raises_the_replays_alerts(
        tmp_path: Any, lines: list[bytes], replayed: set[str]) -> None:
    got = stream(runtime(tmp_path), lines, None, 0.0)
    assert got == replayed, (sorted(replayed - got), sorted(got - replayed))


@pytest.mark.parametrize("pause_s", [3.0, 30.0, 59.0])
def test_a_pause_shorter_than_the_watermark_delay_changes_no_alert(
        tmp_path: Any, lines: list[bytes], replayed: set[str], pause_s: float) -> None:
    """Fails before the fix with a 30 s and a 59 s pause: ``aw-4cdd02f30edbede80927ae45``
    missing, ``aw-4bf5069eae7e44858baeea47`` invented (the CI run's pair)."""
    assert "aw-4cdd02f30edbede80927ae45" in replayed
    got = stream(runtime(tmp_path), lines, PAUSED_AFTER, pause_s)
    assert got == replayed, (sorted(replayed - got), sorted(got - replayed))


def test_a_pause_longer_than_the_watermark_delay_moves_time_on(
        tmp_path: Any, lines: list[bytes]) -> None:
    """The delay bounds how long a pause is taken for a pause: past it, a quiet partition's
    timers fire (a grace window closes without new events), here the 00:46 window's view."""
    rt = runtime(tmp_path, watermark_delay=10.0)
    got = stream(rt, lines, PAUSED_AFTER, 40.0)
    assert "aw-4bf5069eae7e44858baeea47" in got
    first = [a for a in rt.emitted if a["alert_id"] == "aw-4bf5069eae7e44858baeea47"][0]
    assert first["episode"]["started"] == PAUSED_AFTER


def test_a_login_ahead_of_older_access_records_does_not_close_their_window_early(
        lines: list[bytes], replayed: set[str]) -> None:
    """The CI pair again, from the order alone: the first login dated after the 00:46 window
    (00:47:08.039) goes into the engine right after the access at 00:46:31.845, ahead of the
    window's later access records."""
    evs = [E.decode(line) for line in lines]
    i = next(k for k, e in enumerate(evs) if iso(e.ts) == PAUSED_AFTER)
    j = next(k for k, e in enumerate(evs)
             if e.kind == E.LOGIN and iso(e.ts) >= "2025-06-24T00:47:00")
    moved = [*lines[:i + 1], lines[j], *(x for k, x in enumerate(lines) if k > i and k != j)]
    got = {a["alert_id"] for a in replay_alerts(moved)}
    assert got == replayed, (sorted(replayed - got), sorted(got - replayed))
