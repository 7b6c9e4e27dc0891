"""Flood benchmark: the engine under a stream of new entities, with the state cap on or off.

Run on purpose (not a test; minutes):
    .venv/bin/python bench/bench_flood.py --events 5000000             # cap on (default)
    .venv/bin/python bench/bench_flood.py --events 1000000 --cap 0     # no cap
    .venv/bin/python bench/bench_flood.py --events 2000000 --mix 0.5   # half real traffic
    .venv/bin/python bench/bench_flood.py --events 1000000 --gc-freeze # collector out of the way

The flood (``detectors._flood``, seeded) brings a new customer account, session and address
with every login + read pair, and now and then a new terminated employee and a failed login
from a new address, so every detector's tables see new entities. ``--mix F`` replaces a share
F of the events with simulated real traffic (the Coupang-style attack included), interleaved
by event time. Lines are made in chunks outside the timed part and fed to
``Engine.process_line`` (decode + engine, as ``replay`` does). Per slice of ``--slice``
events it prints events/s (wall and CPU), the process RSS, tracked entities and evictions.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import sys
import time
from collections.abc import Iterator

import orjson

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from detectors._flood import flood  # noqa: E402
from detectors.engine import Engine, EngineConfig  # noqa: E402

START = 1750734765.0  # 2025-06-24T03:12:45Z, the simulation's default day


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def real_traffic(seed: int) -> Iterator[dict]:
    """Simulated traffic, day after day (seeded), with the Coupang-style attack each day."""
    from detectors.simulate import SimConfig, iter_events

    for day in itertools.count():
        cfg = SimConfig(seed=seed + day, customers=20_000, hours=24.0, attacks=("coupang",),
                        start=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                            time.gmtime(START - START % 86400 + day * 86400)))
        yield from iter_events(cfg)


def lines(total: int, mix: float, seed: int, rate: float) -> Iterator[bytes]:
    dumps = orjson.dumps
    if mix <= 0:
        for e in itertools.islice(flood(total, seed=seed, start=START, rate=rate), total):
            yield dumps(e)
        return
    real = real_traffic(seed)
    noise = flood(total, seed=seed, start=START, rate=rate)
    acc = 0.0
    for _ in range(total):
        acc += mix
        if acc >= 1.0:
            acc -= 1.0
            e = next(real)
        else:
            e = next(noise)
        yield dumps(e)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=5_000_000)
    p.add_argument("--cap", type=int, default=EngineConfig.max_entities,
                   help="EngineConfig.max_entities (0 = no cap)")
    p.add_argument("--mix", type=float, default=0.0, help="share of simulated real traffic")
    p.add_argument("--slice", type=int, default=500_000)
    p.add_argument("--rate", type=float, default=200.0, help="flood steps per event-time second")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--gc-freeze", action="store_true",
                   help="gc.freeze() after every chunk (untimed): the long-lived state leaves "
                        "the collector's full passes")
    args = p.parse_args()

    eng = Engine(EngineConfig(max_entities=args.cap))
    print(f"# events={args.events:,} cap={args.cap:,} mix={args.mix} slice={args.slice:,} "
          f"gc_freeze={args.gc_freeze} load={os.getloadavg()[0]:.2f} rss0={rss_mib():.0f} MiB", flush=True)
    print(f"{'events':>10} {'ev/s wall':>10} {'ev/s cpu':>9} {'RSS MiB':>8} "
          f"{'tracked':>10} {'evicted':>11} {'alerts':>7}", flush=True)
    src = lines(args.events, args.mix, args.seed, args.rate)
    done = alerts = 0
    process = eng.process_line
    while done < args.events:
        wall = cpu = 0.0
        n_slice = 0
        while n_slice < args.slice and done < args.events:
            chunk = list(itertools.islice(src, min(50_000, args.slice - n_slice)))
            if not chunk:
                break
            t0, c0 = time.perf_counter(), time.process_time()
            for line in chunk:
                alerts += len(process(line)[0])
            wall += time.perf_counter() - t0
            cpu += time.process_time() - c0
            n_slice += len(chunk)
            done += len(chunk)
            if args.gc_freeze:
                gc.freeze()
        if not n_slice:
            break
        tracked = sum(eng.tracked().values())
        print(f"{done:>10,} {n_slice / wall:>10,.0f} {n_slice / cpu:>9,.0f} {rss_mib():>8,.0f} "
              f"{tracked:>10,} {sum(eng.evicted.values()):>11,} {alerts:>7,}", flush=True)
    print(f"# by kind: {eng.tracked()}  evicted: {dict(eng.evicted)}  "
          f"load={os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
