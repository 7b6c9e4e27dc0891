"""Capacity figures for docs/capacity.md: state, checkpoint and wire bytes at N tracked entities.

Run on purpose (not a test; about a minute per million entities, memory ~1.5 KB an entity):
    .venv/bin/python bench/bench_capacity.py --entities 1000000
    .venv/bin/python bench/bench_capacity.py --entities 1000000 --entities 10000000

For each N, one engine with every detector and no cap (``max_entities=0``,
``max_state_bytes=0``) is filled with the seeded flood of new entities (``detectors._flood``:
new accounts, sessions, addresses, employees, services, each step) until its detectors and
open episodes track at least N entities; then, on that state, it reports:

  1. the process's resident memory grown from N/10 to N tracked entities (the first tenth is
     the warm-up: models, caches, one-time allocations), per entity added (RSS from
     ``/proc/self/statm``; it includes the allocator's slack, which tracemalloc, too slow at
     this size, would not), and the engine's own estimate ``state_bytes()`` per entity;
  2. ``streams.checkpoint.snapshot`` of the engine (the checkpoint a worker writes: allow-listed
     msgpack graph, zlib level 1, HMAC-SHA256): stored bytes and wall/CPU seconds;
  3. ``streams.checkpoint.restore`` of that blob (MAC check, decompress, decode): wall/CPU seconds.

Then bytes per event on the wire: the mean JSON-lines size of a seeded simulated day (the
form ``produce`` sends, one event a line). The 1-minute load average is printed before and
after (the machine is shared). Single-threaded Python: each figure is one core's.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import orjson

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from detectors._flood import flood  # noqa: E402
from detectors.engine import Engine, EngineConfig  # noqa: E402
from detectors.geo import default_geo  # noqa: E402
from simulation import ATTACKS, SimConfig, iter_events  # noqa: E402
from streams import snapshot as S  # noqa: E402
from streams.checkpoint import restore, snapshot  # noqa: E402

KEYS = S.StateKeys(["bench-state-key-0123456789"])
CONTEXT = "accesswatch/engine-checkpoints/0"
PAGE = os.sysconf("SC_PAGE_SIZE")
CHECK_EVERY = 20_000  # events between two counts of the tracked entities


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def fill(engine: Engine, target: int, events: Iterator[dict[str, Any]]) -> tuple[int, int]:
    """Feed ``events`` until the engine tracks at least ``target`` entities: (events, tracked)."""
    n = tracked = 0
    for e in events:
        engine.process_obj(e)
        n += 1
        if n % CHECK_EVERY == 0:
            tracked = sum(engine.tracked().values())
            if tracked >= target:
                break
    return n, sum(engine.tracked().values())


def wire_bytes(customers: int, seed: int) -> tuple[int, float]:
    """Events and mean bytes per event of a simulated day as JSON lines."""
    n = size = 0
    for e in iter_events(SimConfig(seed=seed, customers=customers, attacks=tuple(ATTACKS))):
        size += len(orjson.dumps(e)) + 1
        n += 1
    return n, size / n


def timed(fn: Any) -> tuple[float, float, Any]:
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def measure(target: int, seed: int, rate: float) -> None:
    """Fill one engine to ``target`` tracked entities; print state, snapshot and restore."""
    engine = Engine(EngineConfig(max_entities=0, max_state_bytes=0))
    events = flood(10 ** 9, seed=seed, rate=rate)
    _, t0 = fill(engine, target // 10, events)  # warm-up: models, caches, first tables
    gc.collect()
    r0, e0 = rss(), engine.state_bytes()
    w, c, (n, tracked) = timed(lambda: fill(engine, target, events))
    gc.collect()
    grown, est = rss() - r0, engine.state_bytes() - e0
    print(f"N={target:,}: {n:,} events in {w:.1f} s wall ({n / c:,.0f} events/CPU s) -> "
          f"{tracked:,} tracked {dict(engine.tracked())}", flush=True)
    more = tracked - t0
    print(f"  from {t0:,} to {tracked:,} tracked: RSS grown {grown / 2**20:,.0f} MiB = "
          f"{grown / more:,.0f} B/entity; estimate state_bytes() grown "
          f"{est / 2**20:,.0f} MiB = {est / more:,.0f} B/entity", flush=True)
    ws, cs, blob = timed(lambda: snapshot(engine, {}, keys=KEYS, context=CONTEXT))
    print(f"  snapshot: {len(blob) / 2**20:,.1f} MiB stored = {len(blob) / tracked:,.1f} "
          f"B/entity; {ws:.2f} s wall, {cs:.2f} s CPU", flush=True)
    directory = engine.ctx.directory
    gc.collect()
    wr, cr, _ = timed(lambda: restore(blob, default_geo(), directory, keys=KEYS,
                                      context=CONTEXT))
    print(f"  restore: {wr:.2f} s wall, {cr:.2f} s CPU", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entities", type=int, action="append",
                   help="tracked entities to fill to (repeatable; default 1,000,000)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate", type=float, default=2000.0,
                   help="flood steps per second of event time (high: no window expires "
                        "state while filling)")
    p.add_argument("--customers", type=int, default=4000, help="population of the wire-size day")
    args = p.parse_args()
    print(f"load average (1 min) before: {os.getloadavg()[0]:.2f}", flush=True)
    for target in args.entities or [1_000_000]:
        measure(target, args.seed, args.rate)
    n, per = wire_bytes(args.customers, args.seed)
    print(f"wire: simulated day ({args.customers:,} customers, every attack): {n:,} events, "
          f"{per:,.0f} bytes/event as JSON lines")
    print(f"load average (1 min) after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
