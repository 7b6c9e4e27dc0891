"""The event loop's longest stall per checkpoint: in process against a forked child (h-fork).

Run on purpose (not a test):
    .venv/bin/python bench/bench_checkpoint_fork.py [--entities 22000 --entities 200000]

For each N, one engine (every detector, no cap) is filled with the seeded flood of new
entities (``detectors._flood``, as bench_capacity.py) to N tracked entities. Then, on an
asyncio loop where one task goes on feeding that engine the flood's next events (200 per
step, then ``await asyncio.sleep(0)``: a worker taking batches) and a ticker measures the
longest gap between two of its 1 ms wake-ups (the loop's longest stall):

  1. baseline: no checkpoint, for 2 s;
  2. in process: ``streams.checkpoint.snapshot`` on the loop (what every checkpoint did
     before h-fork, and what ACCESSWATCH_CHECKPOINT_FORK=off does), repeated ``--repeat`` times;
  3. forked: ``streams.checkpoint_fork.fork_encode`` (the fork itself is the only part on
     the loop) and ``await result()``, repeated ``--repeat`` times.

It prints, per mode: the longest stall (ms), the feeder's own longest step of STEP events
(the engine's work: a stall no longer than it is not the checkpoint's), the cyclic GC's
longest collection (in the feeder's steps), the encode time (ms; the child's own for the
fork), the ``os.fork`` call's time (page tables: it grows with the process's RSS), the
events the feeder took per second meanwhile (copy-on-write faults slow the parent while a
child lives), and the RSS. The collector runs as in the worker: the heap frozen at start
(``streams.worker.freeze_heap``) and ``streams.gcpolicy`` installed (what survives a full
pass is frozen); ``--cpython-gc`` leaves CPython's own policy. The 1-minute load average is printed before and after (the
machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench.bench_capacity import rss  # noqa: E402
from detectors._flood import flood  # noqa: E402
from detectors.engine import Engine, EngineConfig  # noqa: E402
from streams import checkpoint_fork as CF  # noqa: E402
from streams import gcpolicy  # noqa: E402
from streams import snapshot as S  # noqa: E402
from streams.checkpoint import snapshot  # noqa: E402

KEYS = S.StateKeys(["bench-state-key-0123456789"])
CONTEXT = "accesswatch/engine-checkpoints/0"
STEP = 20  # events the feeder applies between two yields
CHECK_EVERY = 1000  # events between two counts of the tracked entities while filling


def fill(engine: Engine, target: int, events: Iterator[dict[str, Any]]) -> tuple[int, int]:
    """Feed ``events`` until the engine tracks at least ``target`` entities: (events, tracked)."""
    n = 0
    for e in events:
        engine.process_obj(e)
        n += 1
        if n % CHECK_EVERY == 0 and sum(engine.tracked().values()) >= target:
            break
    return n, sum(engine.tracked().values())


def encode(engine: Any, offsets: dict[str, int], context: str) -> bytes:
    return snapshot(engine, offsets, keys=KEYS, context=context)


async def run(engine: Engine, events: Iterator[dict[str, Any]],
              action: Callable[[], Awaitable[dict[str, float]]], feed: bool) -> dict[str, float]:
    """``action`` while a feeder applies events and a ticker measures the loop's stalls."""
    stop = asyncio.Event()
    worst = [0.0]
    fed = [0]
    step = [0.0]  # the feeder's own longest step (the engine's work, not a stall)
    collected = [0.0, 0.0]  # the longest collection of the cyclic GC, its start

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collected[1] = time.perf_counter()
        else:
            collected[0] = max(collected[0], time.perf_counter() - collected[1])

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst[0] = max(worst[0], now - last)
            last = now

    async def feeder() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            for _ in range(STEP):
                engine.process_obj(next(events))
            step[0] = max(step[0], time.perf_counter() - t0)
            fed[0] += STEP
            await asyncio.sleep(0)

    gc.callbacks.append(on_gc)
    tasks = [asyncio.create_task(ticker())] + ([asyncio.create_task(feeder())] if feed else [])
    await asyncio.sleep(0.05)
    worst[0], fed[0], step[0], collected[0] = 0.0, 0, 0.0, 0.0
    t0 = time.perf_counter()
    out = await action()
    wall = time.perf_counter() - t0
    stop.set()
    await asyncio.gather(*tasks)
    gc.callbacks.remove(on_gc)
    out.update(stall=worst[0], wall=wall, rate=fed[0] / wall, step=step[0],
               gc=collected[0])
    return out


def measure(target: int, seed: int, repeat: int, feed: bool) -> None:
    engine = Engine(EngineConfig(max_entities=0, max_state_bytes=0))
    events = flood(10 ** 9, seed=seed, rate=2000.0)
    n, tracked = fill(engine, target, events)
    gc.collect()
    print(f"N={target:,}: {n:,} events -> {tracked:,} tracked entities, RSS "
          f"{rss() / 2**20:,.0f} MiB", flush=True)

    async def idle() -> dict[str, float]:
        await asyncio.sleep(2.0)
        return {"encode": 0.0, "fork": 0.0}

    async def in_process() -> dict[str, float]:
        await asyncio.sleep(0.2)
        t0 = time.perf_counter()
        blob = snapshot(engine, {"x": 1}, keys=KEYS, context=CONTEXT)
        spent = time.perf_counter() - t0
        await asyncio.sleep(0.2)
        return {"encode": spent, "fork": 0.0, "bytes": len(blob)}

    async def forked() -> dict[str, float]:
        await asyncio.sleep(0.2)
        t0 = time.perf_counter()
        child = CF.fork_encode([(0, engine, {"x": 1}, CONTEXT)], encode, timeout=600)
        spent_fork = time.perf_counter() - t0
        (blob, error), = (await child.result()).values()
        assert blob is not None, error
        await asyncio.sleep(0.2)
        return {"encode": child.seconds, "fork": spent_fork, "bytes": len(blob)}

    print(f"  {'mode':10} {'stall ms':>9} {'step ms':>8} {'gc ms':>7} {'encode ms':>10} "
          f"{'fork ms':>8} "
          f"{'feeder ev/s':>12} {'RSS MiB':>8}", flush=True)
    for name, action, times in (("baseline", idle, 1), ("in-process", in_process, repeat),
                                ("forked", forked, repeat)):
        for _ in range(times):
            r = asyncio.run(run(engine, events, action, feed))
            print(f"  {name:10} {r['stall'] * 1e3:>9.1f} {r['step'] * 1e3:>8.1f} "
                  f"{r['gc'] * 1e3:>7.1f} "
                  f"{r['encode'] * 1e3:>10.0f} "
                  f"{r['fork'] * 1e3:>8.1f} {r['rate']:>12,.0f} {rss() / 2**20:>8,.0f}",
                  flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entities", type=int, action="append",
                   help="tracked entities (repeatable; default 22,000 and 200,000)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--no-feeder", action="store_true",
                   help="only the ticker on the loop (the stall is then the checkpoint's alone)")
    p.add_argument("--cpython-gc", action="store_true",
                   help="CPython's own collector policy, not the worker's")
    args = p.parse_args()
    if not CF.available():
        sys.exit("bench_checkpoint_fork: this platform cannot fork")
    if not args.cpython_gc:  # as streams.worker does at start
        gc.collect()
        gc.freeze()
        gcpolicy.install()
    print(f"load average (1 min): {os.getloadavg()[0]:.2f} before", flush=True)
    for target in args.entities or [22_000, 200_000]:
        measure(target, args.seed, args.repeat, not args.no_feeder)
    print(f"load average (1 min): {os.getloadavg()[0]:.2f} after", flush=True)


if __name__ == "__main__":
    main()
