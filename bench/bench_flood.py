"""Flood benchmark: the engine under a stream of new entities, with the state cap on or off.

Run on purpose (not a test; minutes):
    .venv/bin/python bench/bench_flood.py --events 5000000             # caps on (default)
    .venv/bin/python bench/bench_flood.py --events 1000000 --cap 0 --max-state-bytes 0  # none
    .venv/bin/python bench/bench_flood.py --events 2000000 --mix 0.5   # half real traffic
    .venv/bin/python bench/bench_flood.py --events 1000000 --gc cpython # CPython's own gc policy

The flood (``detectors._flood``, seeded) brings a new customer account, session and address
with every login + read pair, and now and then a new terminated employee and a failed login
from a new address, so every detector's tables see new entities. ``--mix F`` replaces a share
F of the events with simulated real traffic (the Coupang-style attack included), interleaved
by event time. Lines are made in chunks outside the timed part and fed to
``Engine.process_line`` (decode + engine, as ``replay`` does). Per slice of ``--slice``
events it prints events/s (wall and CPU), the share of CPU in the garbage collector, the
process RSS, the engine's state-bytes estimate (``Engine.state_bytes``), tracked entities
and evictions; at the end, events/s per million events.

``--gc policy`` (default) runs the process as ``replay`` and the worker do
(``streams.gcpolicy``); ``cpython`` leaves CPython's default; ``chunk-freeze`` is the earlier
experiment (``gc.freeze()`` after every 50,000-event chunk).
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
from streams import gcpolicy  # noqa: E402
from streams.settings import size  # noqa: E402

START = 1750734765.0  # 2025-06-24T03:12:45Z, the simulation's default day


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def real_traffic(seed: int) -> Iterator[dict]:
    """Simulated traffic, day after day (seeded), with the Coupang-style attack each day."""
    from simulation import SimConfig, iter_events

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
    p.add_argument("--max-state-bytes", type=size, default=EngineConfig.max_state_bytes,
                   help="EngineConfig.max_state_bytes, e.g. 512MiB (0 = no budget)")
    p.add_argument("--gc", choices=("policy", "cpython", "chunk-freeze"), default="policy",
                   help="the collector's policy (see above)")
    args = p.parse_args()

    eng = Engine(EngineConfig(max_entities=args.cap, max_state_bytes=args.max_state_bytes))
    if args.gc == "policy":
        gcpolicy.install()
    gc_cpu = [0.0, 0.0]  # CPU seconds in the collector; process_time at the last "start"

    def gc_timer(phase: str, info: dict) -> None:
        if phase == "start":
            gc_cpu[1] = time.process_time()
        else:
            gc_cpu[0] += time.process_time() - gc_cpu[1]

    gc.callbacks.insert(0, gc_timer)
    print(f"# events={args.events:,} cap={args.cap:,} max_state_bytes={args.max_state_bytes:,} "
          f"mix={args.mix} slice={args.slice:,} gc={args.gc} load={os.getloadavg()[0]:.2f} "
          f"rss0={rss_mib():.0f} MiB", flush=True)
    print(f"{'events':>10} {'ev/s wall':>10} {'ev/s cpu':>9} {'gc %':>5} {'RSS MiB':>8} "
          f"{'est MiB':>8} {'tracked':>10} {'evicted':>11} {'alerts':>7}", flush=True)
    src = lines(args.events, args.mix, args.seed, args.rate)
    done = alerts = 0
    process = eng.process_line
    per_million: list[tuple[float, float]] = []  # (wall, cpu) seconds per million events
    m_wall = m_cpu = 0.0
    while done < args.events:
        wall = cpu = 0.0
        gc0 = gc_cpu[0]
        n_slice = 0
        while n_slice < args.slice and done < args.events:
            chunk = list(itertools.islice(src, min(50_000, args.slice - n_slice)))
            if not chunk:
                break
            t0, c0 = time.perf_counter(), time.process_time()
            for line in chunk:
                alerts += len(process(line)[0])
            dw, dc = time.perf_counter() - t0, time.process_time() - c0
            wall += dw
            cpu += dc
            m_wall += dw
            m_cpu += dc
            n_slice += len(chunk)
            done += len(chunk)
            if done % 1_000_000 == 0:
                per_million.append((m_wall, m_cpu))
                m_wall = m_cpu = 0.0
            if args.gc == "chunk-freeze":
                gc.freeze()
        if not n_slice:
            break
        tracked = sum(eng.tracked().values())
        print(f"{done:>10,} {n_slice / wall:>10,.0f} {n_slice / cpu:>9,.0f} "
              f"{100 * (gc_cpu[0] - gc0) / cpu:>5.0f} {rss_mib():>8,.0f} "
              f"{eng.state_bytes() / 2**20:>8,.0f} {tracked:>10,} "
              f"{sum(eng.evicted.values()):>11,} {alerts:>7,}", flush=True)
    print(f"# by kind: {eng.tracked()}  evicted: {dict(eng.evicted)}  "
          f"gc: {gcpolicy.stats()}  load={os.getloadavg()[0]:.2f}", flush=True)
    for i, (w, c) in enumerate(per_million):
        print(f"# million {i + 1}: {1e6 / w:,.0f} ev/s wall, {1e6 / c:,.0f} ev/s cpu", flush=True)


if __name__ == "__main__":
    main()
