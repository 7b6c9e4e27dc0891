"""Checkpoint benchmark: the authenticated snapshot format against the pickle it replaced.

Run on purpose (not a test):  .venv/bin/python bench/bench_snapshot.py [--customers 2000]

It replays a simulated day (seeded, every attack of the simulator) through one engine, then
times on that state, best of ``--repeat`` runs (CPU time of this process):

  1. pickle: ``pickle.dumps`` (protocol 5) + zlib level 1, what a checkpoint cost before,
     and ``zlib.decompress`` + ``pickle.loads`` back;
  2. snapshot: ``streams.checkpoint.snapshot`` (allow-listed msgpack graph, zlib level 1,
     HMAC-SHA256) and ``streams.checkpoint.restore`` (MAC check, decompress, decode).

and prints the stored bytes and the milliseconds of each, with the ratio, and the 1-minute
load average before and after (the machine is shared). Single-threaded Python.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
import zlib
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from detectors.engine import Engine  # noqa: E402
from detectors.geo import default_geo  # noqa: E402
from simulation import ATTACKS, SimConfig, simulate  # noqa: E402
from streams import snapshot as S  # noqa: E402
from streams.checkpoint import restore, snapshot  # noqa: E402

KEYS = S.StateKeys(["bench-state-key-0123456789"])
CONTEXT = "accesswatch/engine-checkpoints/0"


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    out, times = None, []
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn()
        times.append(time.process_time() - t0)
    return min(times), out


def old_pickle(engine: Engine) -> bytes:
    ctx = engine.ctx
    geo, directory = ctx.geo, ctx.directory
    ctx.geo = ctx.directory = None  # type: ignore[assignment]
    try:
        return zlib.compress(pickle.dumps({"v": 1, "engine": engine, "offsets": {}},
                                          protocol=5), 1)
    finally:
        ctx.geo, ctx.directory = geo, directory


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=2000)
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    load0 = os.getloadavg()[0]
    events = simulate(SimConfig(customers=args.customers, hours=args.hours,
                                attacks=tuple(ATTACKS))).events
    engine = Engine()
    for e in events:
        engine.process_obj(e)
    tracked = sum(engine.tracked().values())
    print(f"state after {len(events):,} events ({args.customers:,} customers, "
          f"{args.hours:g} h): {tracked:,} tracked entities")

    t_pd, pk = best(lambda: old_pickle(engine), args.repeat)
    t_pl, _ = best(lambda: pickle.loads(zlib.decompress(pk)), args.repeat)  # noqa: S301
    raw_pk = len(zlib.decompress(pk))
    t_sd, blob = best(lambda: snapshot(engine, {}, keys=KEYS, context=CONTEXT), args.repeat)
    t_sl, _ = best(lambda: restore(blob, default_geo(), engine.ctx.directory, keys=KEYS,
                                   context=CONTEXT), args.repeat)
    raw_sn = len(S.unseal(blob, KEYS, CONTEXT))
    print(f"{'':10} {'stored':>10} {'raw':>10} {'write ms':>9} {'read ms':>9}")
    print(f"{'pickle':10} {len(pk):>10,} {raw_pk:>10,} {t_pd * 1e3:>9.0f} {t_pl * 1e3:>9.0f}")
    print(f"{'snapshot':10} {len(blob):>10,} {raw_sn:>10,} {t_sd * 1e3:>9.0f} {t_sl * 1e3:>9.0f}")
    print(f"{'ratio':10} {len(blob) / len(pk):>10.2f} {raw_sn / raw_pk:>10.2f} "
          f"{t_sd / t_pd:>9.1f} {t_sl / t_pl:>9.1f}")
    print(f"load average (1 min): {load0:.2f} before, {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
