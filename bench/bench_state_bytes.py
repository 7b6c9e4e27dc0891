"""Calibration of the state-bytes estimate: bytes of Python heap per tracked entity, by detector.

Run on purpose (not a test; a few minutes):
    .venv/bin/python bench/bench_state_bytes.py                 # the table and the constants
    .venv/bin/python bench/bench_state_bytes.py --steps 40000

For each detector alone (``EngineConfig(detectors=(id,))``, no cap, no budget), the seeded flood
(``detectors._flood``) is run; after a warm-up (models, first allocations) ``tracemalloc``
measures the heap the next ``--steps`` steps add, minus what an engine without detectors adds
over the same events (the duplicate memory, the GeoIP cache, the identity directory; measured
after one run that pays the process's one-time allocations), divided
by the entities the detector reports (``tracked()``) more. Open alert episodes ("engine") are
measured the same way from a table of episodes as the engine keys them. The result is what
``detectors._cap.BYTES_PER_ENTITY`` holds; ``bench_flood.py`` compares the estimate made
from it with the process RSS.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tracemalloc
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from detectors._flood import flood  # noqa: E402
from detectors.engine import Engine, EngineConfig, Episode, discover  # noqa: E402

WARM = 2_000


def grown(dets: tuple[str, ...], steps: int, seed: int) -> tuple[int, int]:
    """Heap bytes and tracked entities added by ``steps`` flood steps after the warm-up."""
    eng = Engine(EngineConfig(detectors=dets, max_entities=0, max_state_bytes=0))
    eng.ctx.geo.lookup.cache_clear()  # the GeoIP cache is shared: each run fills it anew
    events = list(flood(WARM + steps, seed=seed))
    cut = next(i for i, e in enumerate(events) if e["event_id"] == f"fl-{seed}-{WARM}")
    for e in events[:cut]:
        eng.process_obj(e)
    n0 = sum(eng.tracked().values())
    gc.collect()
    tracemalloc.start()
    b0 = tracemalloc.get_traced_memory()[0]
    for e in events[cut:]:
        eng.process_obj(e)
    gc.collect()
    b1 = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return b1 - b0, sum(eng.tracked().values()) - n0


#: detectors that use the burst tracker ``credential_stuffing`` reports (``_burst.tracker``):
#: measured beside it, so the tracker counts once
SHARING = {"account_takeover": "credential_stuffing", "password_spray": "credential_stuffing"}


def whole(steps: int, seed: int) -> tuple[int, int]:
    """Every detector: the estimate's growth and the heap's over the measured steps."""
    eng = Engine(EngineConfig(max_entities=0, max_state_bytes=0))
    eng.ctx.geo.lookup.cache_clear()
    events = list(flood(WARM + steps, seed=seed))
    cut = next(i for i, e in enumerate(events) if e["event_id"] == f"fl-{seed}-{WARM}")
    for e in events[:cut]:
        eng.process_obj(e)
    e0 = eng.state_bytes()
    gc.collect()
    tracemalloc.start()
    b0 = tracemalloc.get_traced_memory()[0]
    for e in events[cut:]:
        eng.process_obj(e)
    gc.collect()
    b1 = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return eng.state_bytes() - e0, b1 - b0


def episodes(n: int) -> int:
    """Heap bytes per open episode, keyed as ``Engine.episodes`` is."""
    gc.collect()
    tracemalloc.start()
    b0 = tracemalloc.get_traced_memory()[0]
    table: dict[Any, Episode] = {}
    for i in range(n):
        table[("bulk_lookup", "customer", f"c-f{i:010x}")] = Episode(
            1.75e9 + i, 1.75e9 + i, f"bulk_lookup:customer:c-f{i:010x}:1", 2, 3)
    b1 = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (b1 - b0) // n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    grown((), args.steps, args.seed)  # the first run also pays one-time allocations (~1 MB)
    base, _ = grown((), args.steps, args.seed)
    print(f"# steps={args.steps:,} (after {WARM:,}); engine without detectors: "
          f"{base / 1024:,.0f} KiB")
    print(f"{'detector':22} {'entities':>9} {'KiB':>9} {'B/entity':>9}")
    out: dict[str, int] = {}
    alone: dict[str, int] = {}
    for det in discover():
        if det in SHARING:
            continue
        b, n = grown((det,), args.steps, args.seed)
        alone[det] = b
        per = round((b - base) / n) if n > 0 else 0
        out[det] = per
        print(f"{det:22} {n:>9,} {(b - base) / 1024:>9,.0f} {per:>9,}", flush=True)
    for det, owner in SHARING.items():  # what they add beside the tracker's owner
        b, n_both = grown((owner, det), args.steps, args.seed)
        n = n_both - round((alone[owner] - base) / out[owner]) if out[owner] else n_both
        per = round((b - alone[owner]) / n) if n > 0 else 0
        out[det] = per
        print(f"{det + ' (+' + owner + ')':22} {n:>9,} {(b - alone[owner]) / 1024:>9,.0f} "
              f"{per:>9,}", flush=True)
    out["engine"] = episodes(20_000)
    print(f"{'engine (episodes)':22} {'':>9} {'':>9} {out['engine']:>9,}")
    print("BYTES_PER_ENTITY =", out)
    # the estimate against the heap of the whole engine (every detector, shared tracker once)
    from detectors import _cap

    _cap.BYTES_PER_ENTITY.clear()
    _cap.BYTES_PER_ENTITY.update(out)
    est, b = whole(args.steps, args.seed)
    print(f"# every detector: heap +{(b - base) / 2**20:,.1f} MiB over the engine's own, "
          f"estimate +{est / 2**20:,.1f} MiB: estimate / heap = {est / (b - base):.2f}")


if __name__ == "__main__":
    main()
