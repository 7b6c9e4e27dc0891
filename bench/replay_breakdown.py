"""Where `replay`'s time per event goes: the floor (decoding, the engine without detectors), each
detector's hooks, timers and sweeps, and the window views of ``bulk_lookup`` by class.

Run on purpose (not a test):  .venv/bin/python bench/replay_breakdown.py --file FILE [--reps N]

1. Floor rows, in one process and alternately (``--reps`` rounds): decode only; the engine with
   no detector; with ``unissued_session`` only; with every detector. CPU time of this process,
   with ``streams.gcpolicy`` installed as ``replay`` installs it. The load average is printed
   with each row: on a shared machine read ratios within one round, not absolute figures.
2. One more run with every detector, each hook (``on_access``, ``on_login``, ``on_time``,
   ``expire``) wrapped in a timer (``perf_counter``: wall time of short intervals, which a
   loaded machine stretches too): nanoseconds per event and calls per event for each, less the
   wrapper's own cost (measured here on an empty function). The wrapped run is slower than a
   plain one; the shares, not the sum, are the figure. Its "unattributed" line (the run less
   the hooks: decoding, the engine, and what the timers cost beyond that calibration, which a
   warm loop understates) is larger than the floor rows' "engine, no detector".
3. ``bulk_lookup``'s window views in that run, by (entity kind, principal type): how many, and
   the time to build (``Combiner._partial``), fold (``observe`` less ``_score``) and score them.

The same alerts must come out of every run with every detector (printed); the breakdown reads
nothing of the detectors' state and changes nothing in it.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from detectors import bulk_lookup as B  # noqa: E402
from detectors import events as E  # noqa: E402
from detectors.engine import Engine, EngineConfig  # noqa: E402
from detectors.events import decode  # noqa: E402
from streams import gcpolicy  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from bench_replay import loadavg  # noqa: E402  (this directory's: a script, not a package)

#: a fast clock (vDSO): the thread's CPU clock is a system call of ~1 µs, more than most hooks
_clock = time.perf_counter_ns


def run(lines: list[bytes], dets: tuple[str, ...] | None | str) -> tuple[float, int]:
    """(CPU seconds, alerts) of ``lines`` through decode only (``"decode"``) or an engine."""
    gc.collect()
    if dets == "decode":
        c0 = time.process_time()
        for ln in lines:
            decode(ln)
        return time.process_time() - c0, 0
    eng = Engine(EngineConfig(detectors=dets if isinstance(dets, tuple) else None))
    eng.ctx.geo.lookup("1.1.1.1")  # the GeoIP data loaded before timing
    c0 = time.process_time()
    n = 0
    for ln in lines:
        n += len(eng.process_line(ln)[0])
    n += len(eng.flush())
    return time.process_time() - c0, n


def floor_rows(lines: list[bytes], reps: int) -> None:
    n = len(lines)
    rows: list[tuple[str, tuple[str, ...] | None | str]] = [
        ("decode only", "decode"), ("engine, no detector", ()),
        ("engine, unissued_session", ("unissued_session",)), ("engine, every detector", None)]
    for r in range(reps):
        print(f"round {r + 1}:")
        for label, dets in rows:
            cpu, alerts = run(lines, dets)
            print(f"  {label:<26} {cpu / n * 1e6:7.2f} µs/event  {n / cpu:>9,.0f} events/s (CPU)"
                  f"  {alerts:>4} alerts  load {loadavg()}", flush=True)


class _Timed:
    """A hook wrapped in a CPU-clock timer; the engine calls it as it called the hook."""

    def __init__(self, f: Callable[..., Any], name: str, tot: Counter[str],
                 calls: Counter[str]) -> None:
        self.f, self.name, self.tot, self.calls = f, name, tot, calls
        self.__self__ = getattr(f, "__self__", None)  # the engine names a failing hook by these
        self.__name__ = getattr(f, "__name__", name)

    def __call__(self, *a: Any) -> Any:
        t = _clock()
        r = self.f(*a)
        self.tot[self.name] += _clock() - t
        self.calls[self.name] += 1
        return r


def hook_shares(lines: list[bytes]) -> None:
    n = len(lines)
    tot: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    probe = _Timed(lambda *a: None, "probe", tot, calls)
    for _ in range(100_000):
        probe(1, 2)
    per_call = tot["probe"] / calls["probe"]  # the wrapper and an empty call
    tot.clear()
    calls.clear()
    eng = Engine(EngineConfig())
    eng.ctx.geo.lookup("1.1.1.1")
    for key, hooks in eng._route.items():  # noqa: SLF001 - a benchmark's instrumentation
        eng._route[key] = [_Timed(f, f"{f.__self__.id}.{f.__name__}", tot, calls)  # noqa: SLF001
                           for f in hooks]
    eng._access_route = {p: r for (k, p), r in eng._route.items() if k == E.ACCESS}  # noqa: SLF001
    eng._login_route = {p: r for (k, p), r in eng._route.items() if k == E.LOGIN}  # noqa: SLF001
    for d in eng.detectors.values():
        for hook in ("on_time", "expire"):  # instance attributes shadow the methods
            setattr(d, hook, _Timed(getattr(d, hook), f"{d.id}.{hook}", tot, calls))
    views: Counter[tuple[str, str, str]] = Counter()
    bl: Any = eng.detectors.get("bulk_lookup")
    if bl is not None:
        observe, score, partial = bl.observe, bl._score, B.Combiner._partial  # noqa: SLF001

        def timed_observe(p: Any, ctx: Any) -> Any:
            t = _clock()
            r = observe(p, ctx)
            views[(p.kind, p.principal_type, "fold+score")] += _clock() - t
            views[(p.kind, p.principal_type, "n")] += 1
            return r

        def timed_score(ent: Any, p: Any, ctx: Any) -> Any:
            t = _clock()
            r = score(ent, p, ctx)
            views[(p.kind, p.principal_type, "score")] += _clock() - t
            return r

        def timed_partial(kind: str, ent: str, window: float, a: Any, *rest: Any) -> Any:
            t = _clock()
            r = partial(kind, ent, window, a, *rest)
            views[(kind, a.ptype, "build")] += _clock() - t
            return r

        setattr(bl, "observe", timed_observe)  # noqa: B010 - instance attributes shadow them
        setattr(bl, "_score", timed_score)  # noqa: B010
        setattr(B.Combiner, "_partial", staticmethod(timed_partial))  # noqa: B010 - restored below
    gc.collect()
    t0 = _clock()
    alerts = 0
    try:
        for ln in lines:
            alerts += len(eng.process_line(ln)[0])
        alerts += len(eng.flush())
    finally:
        if bl is not None:
            setattr(B.Combiner, "_partial", staticmethod(partial))  # noqa: B010
    total = _clock() - t0
    print(f"every detector, hooks timed: {total / n / 1000:.2f} µs/event ({alerts} alerts; "
          f"wrapper {per_call:.0f} ns a call, taken off below); load {loadavg()}")
    net = {k: tot[k] - calls[k] * per_call for k in tot}
    inside = sum(net.values())
    for k, v in sorted(net.items(), key=lambda x: -x[1]):
        if v / n >= 5:  # 0.005 µs/event and more
            print(f"  {k:<34} {v / n / 1000:6.2f} µs/event  {100 * v / total:5.1f}%  "
                  f"{calls[k] / n:5.2f} calls/event")
    timers = sum(calls.values()) + 3 * views_n(views)  # every timed interval's own cost
    print(f"  {'(unattributed: decode, the engine, timers)':<34} "
          f"{(total - inside - timers * per_call) / n / 1000:6.2f} µs/event")
    if views:
        print("bulk_lookup window views (µs per view: build, fold, score; total share):")
        kinds = sorted({(k, p) for k, p, _ in views}, key=lambda kp: -views[(*kp, "fold+score")])
        for k, p in kinds:
            m = views[(k, p, "n")]
            if not m:
                continue
            b, fs, s = views[(k, p, "build")], views[(k, p, "fold+score")], views[(k, p, "score")]
            print(f"  {k + '/' + p:<20} {m:>7} views  {b / m / 1000:6.2f} {(fs - s) / m / 1000:6.2f}"
                  f" {s / m / 1000:6.2f}  {100 * (b + fs) / total:5.1f}%")


def views_n(views: Counter[tuple[str, str, str]]) -> int:
    return sum(v for (_, _, what), v in views.items() if what == "n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--file", required=True, help="a JSON-lines file of events")
    ap.add_argument("--reps", type=int, default=2, help="rounds of the floor rows")
    args = ap.parse_args()
    with open(args.file, "rb") as f:
        lines = f.readlines()
    print(f"events: {len(lines):,}; load average before: {loadavg()}")
    gcpolicy.install()  # as ``replay`` runs
    try:
        floor_rows(lines, args.reps)
        hook_shares(lines)
    finally:
        gcpolicy.uninstall()


if __name__ == "__main__":
    main()
