"""Periodic checkpoints encoded in a forked child (issue 17, h-fork; streams.checkpoint_fork).

The child encodes the copy-on-write image of the engines at the fork, taken under the
checkpoint lock exactly where an in-process checkpoint encodes them; the parent goes on
taking events meanwhile. What it writes must be what an in-process checkpoint would have
written, an event taken meanwhile must be in neither its offsets nor its acks, and a child
that fails, dies or hangs must leave the events held, logged and counted, and the next
checkpoint working."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

import streams.runtime as rt_mod
from detectors.engine import Engine
from detectors.geo import default_geo
from simulation import simulate
from streams import checkpoint_fork as CF
from streams import snapshot as S
from streams.app import create_app
from streams.checkpoint import assemble_checkpoint, restore, snapshot
from streams.runtime import PartitionState
from streams.settings import Settings, SettingsError
from tests.helpers import SIM, access
from tests.test_checkpoint_order import _fake_broker

pytestmark = pytest.mark.skipif(not CF.available(), reason="this platform cannot fork")

KEY = "test-state-key-0123456789"
KEYS = S.StateKeys([KEY])
CONTEXT = "accesswatch/engine-checkpoints/0"
#: the test process: an encoder below that must run in the child refuses to run here (on
#: the old, in-process path it would otherwise block, kill or end the test runner itself)
PARENT = os.getpid()


def _in_child() -> None:
    if os.getpid() == PARENT:
        raise AssertionError("encoded on the event loop, not in a forked child")


def _encode(engine: Any, offsets: dict[str, int], context: str) -> bytes:
    return snapshot(engine, offsets, keys=KEYS, context=context)


def test_a_forked_checkpoint_is_the_in_process_one_of_the_fork_instant_and_restores_alike() -> None:
    """The child's blob is byte for byte the in-process snapshot of the engine as it was at
    the fork, although the parent went on processing events before reading it; restored, it
    raises the same alerts on the rest of the day as the engine that never stopped."""
    events = simulate(SIM).events
    probe = Engine()
    raised_at = [i for i, e in enumerate(events) for _ in probe.process_obj(e)[0]]
    cut = raised_at[len(raised_at) // 2]  # half the alerts are still to come
    a = Engine()
    for e in events[:cut]:
        a.process_obj(e)
    expected = snapshot(a, {"data-access": cut}, keys=KEYS, context=CONTEXT)

    async def fork_then_go_on() -> tuple[bytes | None, list[dict[str, Any]]]:
        child = CF.fork_encode([(0, a, {"data-access": cut}, CONTEXT)], _encode, timeout=60)
        out = []
        for e in events[cut:]:  # the parent's engine moves on while the child encodes
            out += a.process_obj(e)[0]
        out += a.flush()
        blob, error = (await child.result())[0]
        assert error is None and child.seconds > 0
        return blob, out

    blob, rest = asyncio.run(fork_then_go_on())
    assert blob == expected
    b, offsets = restore(blob, default_geo(), a.ctx.directory, keys=KEYS, context=CONTEXT)
    assert offsets == {"data-access": cut}
    out_b = []
    for e in events[cut:]:
        out_b += b.process_obj(e)[0]
    out_b += b.flush()
    assert rest and out_b == rest
    assert b.stats == a.stats and b.tracked() == a.tracked()


def _runtime(tmp_path: Any, monkeypatch: Any, **settings: Any) -> tuple[Any, Any]:
    """A runtime with the broker replaced: ``log.sent`` the checkpoint records written,
    ``log.acked`` the offsets acked, ``log.gate`` an Event the producer's flush waits on."""
    rt = create_app(Settings(data_dir=str(tmp_path), state_keys=(KEY,),
                             **settings)).accesswatch
    log = SimpleNamespace(sent={}, acked=[], flushes=0)

    async def flush() -> None:
        log.flushes += 1

    def send_soon(*, key: bytes, value: bytes, **kw: Any) -> None:
        log.sent[key] = value

    async def nothing(*a: Any, **kw: Any) -> None:
        return None

    _fake_broker(rt, monkeypatch, flush, send_soon)
    monkeypatch.setattr(rt, "_wait_for", lambda *a, **kw: 0.0)
    monkeypatch.setattr(rt, "alerts_topic", SimpleNamespace(send=nothing))
    rt.parts[0] = PartitionState(rt._fresh_engine())

    def message(offset: int) -> Any:
        value = orjson.dumps(access(f"e{offset}", 1_750_723_200 + offset, "c-1", "s-1"))
        msg = SimpleNamespace(topic=rt.names.access, partition=0, offset=offset, key=b"c-1",
                              value=value, headers=(), timestamp=None)
        return SimpleNamespace(message=msg, ack=lambda: log.acked.append(offset))

    log.message = message
    return rt, log


def _written(rt: Any, log: Any) -> tuple[Engine, dict[str, int]]:
    """The engine and offsets of partition 0's last checkpoint written."""
    blob = assemble_checkpoint(0, log.sent.get)
    assert blob is not None
    return restore(blob, default_geo(), rt.directory, keys=KEYS, context=rt._context(0))


def _internal_errors(rt: Any) -> float:
    return rt.metrics.internal_errors.labels(stage="checkpoint")._value.get()


def test_events_taken_while_the_child_encodes_are_in_neither_its_offsets_nor_its_acks(
        tmp_path: Any, monkeypatch: Any) -> None:
    """The child waits (a pipe the test holds) before it encodes: the parent takes the next
    event at once, not after the encoding, and that event is in neither the checkpoint's
    engine, its offsets nor its acks; the next checkpoint covers it."""
    rt, log = _runtime(tmp_path, monkeypatch)
    st = rt.parts[0]
    gate_r, gate_w = os.pipe()

    def gated(engine: Any, offsets: Any, **kw: Any) -> bytes:
        _in_child()
        os.read(gate_r, 1)  # in the child: until the test lets it encode
        return snapshot(engine, offsets, **kw)

    async def go() -> None:
        await rt.on_event(log.message(0))
        monkeypatch.setattr(rt_mod, "snapshot", gated)
        first = asyncio.create_task(rt.checkpoint(periodic=True))
        for _ in range(100):  # until the fork (the held events are taken at that instant)
            if not st.held and not rt._checkpoint_lock.locked():
                break
            await asyncio.sleep(0)
        assert not st.held and not st.dirty
        await asyncio.wait_for(rt.on_event(log.message(1)), 1.0)  # not held up by the child
        assert st.engine.stats["access"] == 2 and st.dirty and len(st.held) == 1
        assert not log.sent and not first.done()
        os.write(gate_w, b"x")
        assert await asyncio.wait_for(first, 30) == 1
        monkeypatch.setattr(rt_mod, "snapshot", snapshot)
        engine, offsets = _written(rt, log)
        assert engine.stats["access"] == 1 and offsets[rt.names.access] == 0
        assert log.acked == [0]
        rt._checkpoint_not_before = 0.0  # the gap after a checkpoint: test_delivery_gaps
        assert await rt.checkpoint(periodic=True) == 1
        engine, offsets = _written(rt, log)
        assert engine.stats["access"] == 2 and offsets[rt.names.access] == 1
        assert log.acked == [0, 1]

    try:
        asyncio.run(go())
    finally:
        os.close(gate_r)
        os.close(gate_w)


def _raises(engine: Any, offsets: Any, **kw: Any) -> bytes:
    raise ValueError("cannot encode this")


def _dies(engine: Any, offsets: Any, **kw: Any) -> bytes:
    _in_child()
    os.kill(os.getpid(), 9)  # in the child: SIGKILL part way
    raise AssertionError("unreachable")


def _exits(engine: Any, offsets: Any, **kw: Any) -> bytes:
    _in_child()
    os._exit(3)


def _hangs(engine: Any, offsets: Any, **kw: Any) -> bytes:
    _in_child()
    time.sleep(3600)  # in the child: killed at the deadline
    raise AssertionError("unreachable")


@pytest.mark.parametrize(("encoder", "reason"), [
    (_raises, "ValueError"),
    (_dies, "killed by signal 9"),
    (_exits, "exited with 3"),
    (_hangs, "no answer within 0.5 s"),
])
def test_a_child_that_fails_dies_or_hangs_leaves_the_events_held_logs_counts_and_the_next_works(
        tmp_path: Any, monkeypatch: Any, caplog: Any, encoder: Any, reason: str) -> None:
    rt, log = _runtime(tmp_path, monkeypatch, checkpoint_fork_timeout=0.5)
    st = rt.parts[0]
    before = _internal_errors(rt)
    pids: list[int] = []  # every child forked here

    def fork(*a: Any, **kw: Any) -> Any:
        child = CF.fork_encode(*a, **kw)
        pids.append(child.pid)
        return child

    async def go() -> None:
        await rt.on_event(log.message(0))
        monkeypatch.setattr(rt_mod, "snapshot", encoder)
        monkeypatch.setattr(rt_mod, "fork_encode", fork)
        with caplog.at_level(logging.ERROR, logger="accesswatch.runtime"):
            started = time.monotonic()
            assert await asyncio.wait_for(rt.checkpoint(periodic=True), 30) == 0
            assert time.monotonic() - started < 20  # the deadline, not the child's hour
        assert not log.sent and log.acked == []
        assert st.dirty and [ev.message.offset for ev in st.held] == [0]
        assert _internal_errors(rt) == before + 1
        assert any("could not be encoded" in r.getMessage() and reason in r.getMessage()
                   for r in caplog.records), [r.getMessage() for r in caplog.records]
        monkeypatch.setattr(rt_mod, "snapshot", snapshot)
        forks: list[int] = []

        def counted(*a: Any, **kw: Any) -> Any:
            forks.append(1)
            return fork(*a, **kw)

        monkeypatch.setattr(rt_mod, "fork_encode", counted)
        rt._checkpoint_not_before = 0.0  # the gap after a checkpoint: test_delivery_gaps
        assert await rt.checkpoint(periodic=True) == 1
        engine, offsets = _written(rt, log)
        assert engine.stats["access"] == 1 and offsets[rt.names.access] == 0
        assert log.acked == [0] and not st.held and not st.dirty
        # after a child that failed as a whole (not an encoder that raised in it) the next
        # checkpoint encodes in process, so children that keep dying (out of memory) do not
        # stop checkpoints; then forking resumes
        assert forks == ([1] if encoder is _raises else [])
        await rt.on_event(log.message(1))
        rt._checkpoint_not_before = 0.0
        assert await rt.checkpoint(periodic=True) == 1
        assert len(forks) == (2 if encoder is _raises else 1) and log.acked == [0, 1]

    asyncio.run(go())
    # every child reaped: no zombie left behind (only these: the test process may have other
    # children, a broker started by an earlier test's fixture)
    assert len(pids) == (3 if encoder is _raises else 2)
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_an_answer_that_is_not_whole_is_refused() -> None:
    """Garbage on the pipe (a truncated answer, another shape, other partitions) is a
    failed child, never a blob."""
    import msgspec

    child = CF.ForkedEncode(pid=0, r=-1, partitions=[0], timeout=1)
    good = msgspec.msgpack.encode([0.1, [[0, b"blob", None]]])
    assert child._parse(CF._HEADER.pack(len(good)) + good) == {0: (b"blob", None)}
    for body in (msgspec.msgpack.encode([0.1, [[1, b"blob", None]]]),
                 msgspec.msgpack.encode([0.1, [[0, "text", None]]]),
                 msgspec.msgpack.encode([0.1, [[0, b"blob", None], [0, b"b", None]]]),
                 msgspec.msgpack.encode({"a": 1}), b"\xc1garbage"):
        with pytest.raises(CF.ForkFailed):
            child._parse(CF._HEADER.pack(len(body)) + body)
    with pytest.raises(CF.ForkFailed, match="truncated"):
        child._parse(CF._HEADER.pack(len(good) + 5) + good)


def _no_fork(*a: Any, **kw: Any) -> Any:
    raise AssertionError("forked with ACCESSWATCH_CHECKPOINT_FORK off")


def _cannot_fork(*a: Any, **kw: Any) -> Any:
    raise BlockingIOError(11, "Resource temporarily unavailable")


@pytest.mark.parametrize(("fork", "fake", "warned"), [(False, _no_fork, False),
                                                      (True, _cannot_fork, True)])
def test_with_fork_off_or_failing_a_periodic_checkpoint_encodes_in_process(
        tmp_path: Any, monkeypatch: Any, caplog: Any, fork: bool, fake: Any,
        warned: bool) -> None:
    rt, log = _runtime(tmp_path, monkeypatch, checkpoint_fork=fork)
    monkeypatch.setattr(rt_mod, "fork_encode", fake)

    async def go() -> None:
        await rt.on_event(log.message(0))
        with caplog.at_level(logging.WARNING, logger="accesswatch.runtime"):
            assert await rt.checkpoint(periodic=True) == 1
        engine, offsets = _written(rt, log)
        assert engine.stats["access"] == 1 and log.acked == [0]

    asyncio.run(go())
    assert any("could not fork" in r.getMessage() for r in caplog.records) is warned


def test_the_fork_setting_from_the_environment() -> None:
    assert Settings.from_env({"ACCESSWATCH_CHECKPOINT_FORK": "off"}).checkpoint_fork is False
    assert Settings.from_env({"ACCESSWATCH_CHECKPOINT_FORK": "on"}).checkpoint_fork is True
    assert Settings.from_env({}).checkpoint_fork is True  # where os.fork exists
    assert Settings.from_env({"ACCESSWATCH_CHECKPOINT_FORK_TIMEOUT": "7"}
                             ).checkpoint_fork_timeout == 7.0
    for env in ({"ACCESSWATCH_CHECKPOINT_FORK": "maybe"},
                {"ACCESSWATCH_CHECKPOINT_FORK_TIMEOUT": "soon"},
                {"ACCESSWATCH_CHECKPOINT_FORK_TIMEOUT": "0"}):
        with pytest.raises(SettingsError):
            Settings.from_env(env).validate()
