"""Engine benchmark: `replay` events/s on simulated traffic, and bytes of state per entity.

Run on purpose (not a test):  .venv/bin/python bench/bench_replay.py [--events 1000000]
  [--file FILE | --redteam normal] [--collector N]

It simulates (seeded) a population sized to give about N events with the Coupang-style attack,
writes it to a temporary JSON-lines file, then in one process times, on the same bytes:
  1. decode only (msgspec fast path + contract checks) — the floor
  2. the engine with `unissued_session` only           — the foundation's path
  3. the engine with every detector
  4. the same, telling repeats by event id only (no content digest: what the engine did before
     ``duplicate_conflict``), so the digest's cost is the ratio of 3 to 4 in one run
and reports events/s for each (wall clock, and CPU time of this process: the steadier figure on a
shared machine), the ratio between them, and the engine's state size per tracked entity (deep size
of the detectors' state divided by the tracked-entity count), with the 1-minute load average
before and after. Single-threaded Python: the figure is one core's.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from typing import Any

import orjson

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from detectors import events as E  # noqa: E402
from detectors.engine import Engine, EngineConfig  # noqa: E402
from detectors.events import decode  # noqa: E402


def deep_size(obj: Any, seen: set[int] | None = None) -> int:
    """Approximate retained bytes of an object graph (sys.getsizeof over containers)."""
    seen = seen if seen is not None else set()
    stack = [obj]
    total = 0
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)) or type(o).__name__ == "deque":
            stack.extend(o)
        elif hasattr(o, "__dict__"):
            stack.append(vars(o))
        elif hasattr(o, "__slots__"):
            for s in o.__slots__:
                if hasattr(o, s):
                    stack.append(getattr(o, s))
    return total


def make_file(n: int, seed: int) -> tuple[str, int]:
    from simulation import SimConfig, iter_events

    # about 95 events per customer per day with the default mix; scale customers to reach n
    customers = max(1000, n // 60)
    cfg = SimConfig(seed=seed, customers=customers, hours=24.0, employees=60, services=8,
                    attacks=("coupang",))
    fd, path = tempfile.mkstemp(suffix=".jsonl", prefix="aw-bench-")
    count = 0
    with os.fdopen(fd, "wb") as f:
        for e in iter_events(cfg):
            f.write(orjson.dumps(e) + b"\n")
            count += 1
            if count >= n:
                break
    return path, count


def timed(lines: list[bytes], detectors: tuple[str, ...] | None, collector: str = "default"
          ) -> tuple[float, float, Engine | None, int]:
    """(wall seconds, CPU seconds, engine, alerts) over ``lines``. ``collector``: ``default``
    (CPython's), ``policy`` (``streams.gcpolicy``, as ``replay`` and the worker run) or
    ``off`` (``gc.disable()``: the rest is the collector's share)."""
    if collector != "default":
        from streams import gcpolicy

        try:
            gcpolicy.install() if collector == "policy" else gc.disable()
            return timed(lines, detectors)
        finally:
            gcpolicy.uninstall()
            gc.enable()
    gc.collect()
    if detectors == ("__decode__",):
        t0, c0 = time.perf_counter(), time.process_time()
        for ln in lines:
            decode(ln)
        return time.perf_counter() - t0, time.process_time() - c0, None, 0
    ids_only = detectors == ("__ids_only__",)
    content_key = E.content_key
    if ids_only:  # every event's digest the same: a reused id is a duplicate, as before
        detectors, E.content_key = None, lambda e: 0
    try:
        eng = Engine(EngineConfig(detectors=detectors))
        eng.ctx.geo.lookup("1.1.1.1")  # load the GeoIP data before timing
        t0, c0 = time.perf_counter(), time.process_time()
        n_alerts = 0
        for ln in lines:
            a, _ = eng.process_line(ln)
            n_alerts += len(a)
        n_alerts += len(eng.flush())
        return time.perf_counter() - t0, time.process_time() - c0, eng, n_alerts
    finally:
        E.content_key = content_key


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def collectors(lines: list[bytes], reps: int) -> None:
    """Every detector, ``reps`` times per collector setting, interleaved (a noisy machine
    slows all three alike); CPU events/s of each run, the median, and the ratios."""
    n = len(lines)
    got: dict[str, list[float]] = {"default": [], "policy": [], "off": []}
    for _ in range(reps):
        for c in got:
            _, cpu, _, alerts = timed(lines, None, c)
            got[c].append(n / cpu)
            print(f"  every detector, collector {c:<8} {n / cpu:>10,.0f} events/s (CPU), "
                  f"{alerts} alerts; load {loadavg()}", flush=True)
    med = {c: sorted(v)[len(v) // 2] for c, v in got.items()}
    for c, v in med.items():
        print(f"  median, collector {c:<8} {v:>10,.0f} events/s (CPU)")
    print(f"  replay's policy / CPython's: {med['policy'] / med['default']:.2f}x; "
          f"off / CPython's: {med['off'] / med['default']:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--file", help="use this JSON-lines file instead of simulating")
    ap.add_argument("--redteam", metavar="SCENARIO",
                    help="use the red-team generator's file of this scenario (seed --seed), "
                         "e.g. normal: 3 days, many customers active at once")
    ap.add_argument("--collector", type=int, default=0, metavar="N",
                    help="instead of the four rows: every detector N times with each collector "
                         "setting in turn (CPython's, replay's policy, off), interleaved")
    args = ap.parse_args()
    if args.file:
        path, made = args.file, None
    elif args.redteam:
        from simulation import redteam

        fd, path = tempfile.mkstemp(suffix=".jsonl", prefix="aw-bench-rt-")
        os.close(fd)
        redteam.write(redteam.generate(args.redteam, args.seed), path, path + ".truth.json")
        os.unlink(path + ".truth.json")
        made = -1
    else:
        t0 = time.perf_counter()
        path, made = make_file(args.events, args.seed)
        print(f"simulated {made:,} events in {time.perf_counter() - t0:.1f}s -> {path}")
    with open(path, "rb") as f:
        lines = f.readlines()
    n = len(lines)
    print(f"events: {n:,} ({sum(map(len, lines)) / n:.0f} bytes/event avg); "
          f"load average before: {loadavg()}")
    if args.collector:
        collectors(lines, args.collector)
        if made is not None:
            os.unlink(path)
        return
    rows = []
    cpus: list[float] = []
    for label, dets in (("decode only", ("__decode__",)),
                        ("engine, unissued_session", ("unissued_session",)),
                        ("engine, every detector", None),
                        ("every detector, ids only", ("__ids_only__",))):
        secs, cpu, eng, alerts = timed(lines, dets)
        rows.append((label, secs, eng, alerts))
        cpus.append(cpu)
        print(f"  {label:<28} {n / secs:>10,.0f} events/s  ({secs:.2f}s, {alerts} alerts); "
              f"CPU time: {n / cpu:,.0f} events/s, {cpu / n * 1e6:.2f} µs/event")
    base = rows[0][1]
    for label, secs, _, _ in rows[1:3]:
        print(f"  {label:<28} costs {secs / base:.2f}x decode-only")
    print(f"  content digest (duplicate_conflict) costs {cpus[2] / cpus[3]:.3f}x "
          "(CPU, every detector vs ids only)")
    print(f"load average after: {loadavg()}")
    eng = rows[2][2]
    assert eng is not None
    tracked = eng.tracked()
    entities = sum(tracked.values())
    size = deep_size([d for d in eng.detectors.values()])
    print(f"state: {size / 1024 / 1024:.1f} MiB over {entities:,} tracked entities "
          f"({size / max(1, entities):.0f} bytes/entity); by kind {tracked}")
    per_det = {i: deep_size(d) for i, d in eng.detectors.items()}
    for i, b in sorted(per_det.items(), key=lambda x: -x[1]):
        t = sum(eng.detectors[i].tracked().values())
        print(f"    {i:<22} {b / 1024:>9,.0f} KiB  {t:>8,} entities")
    if made is not None:
        os.unlink(path)


if __name__ == "__main__":
    main()
