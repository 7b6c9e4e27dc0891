"""The garbage collector's policy for a process that holds engine state (``replay``, ``worker``).

Why: the detectors keep millions of small containers (one or more per tracked entity) that
make no reference cycles, so the cyclic collector never frees any of them, but it walks all of
them. CPython starts a full (generation 2) collection whenever the objects promoted into the
old generation since the last one exceed a quarter of it; a flood of new entities, which
replaces the state at the cap instead of growing it, keeps doing that, and each full pass
walks every tracked entity: ~40% of the engine's CPU under the capped flood of
``bench/bench_flood.py`` (docs/benchmarks.md, "Where the time goes once the cap binds").

What :func:`install` does: after every full collection, what survived it is moved to the
permanent generation (``gc.freeze()``), which later collections do not walk. Each object is
then walked by a full pass about once (after it is promoted, before the next freeze) instead
of once per pass for as long as it lives. Frozen objects are still freed by reference
counting as soon as nothing holds them (an evicted entity goes at once); what freezing
delays is only cyclic garbage: a cycle alive at a freeze that becomes unreachable later (an
exception's traceback, a client's request object). So every ``rescan_s`` seconds (default 10
minutes) the permanent generation is moved back (``gc.unfreeze()``): the next full pass walks
everything once and frees such cycles; the one after it freezes again. The cost: one full
pass over the whole heap per ``rescan_s`` (what every full pass cost before: 1.8-3.9 s at
1.1-1.4 M tracked entities, docs/benchmarks.md); the bound on delayed cyclic garbage: what
became unreachable in that time. Measured: the collector's share of CPU on the first 500,000
events of the capped flood 30% -> 16%, the same state and alerts (docs/benchmarks.md, "State
bytes and the collector's policy").

What exists when the policy is installed is frozen at once (the process's modules and
tables, the engine built before the input starts): it lives as long as the process.

One place for the worker and ``replay`` (the collector is process-wide: the engine in
``detectors/`` stays free of it). Only a full collection triggers a freeze, so a process
that never builds a large heap is left as CPython would run it.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

#: seconds between two full passes over everything (cyclic garbage frozen alive is freed)
RESCAN_S = 600.0


class _Policy:
    def __init__(self, rescan_s: float, clock: Callable[[], float]) -> None:
        self.rescan_s = rescan_s
        self.clock = clock
        self.last_rescan = clock()
        self.freezes = 0
        self.rescans = 0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info.get("generation") != 2:
            return
        now = self.clock()
        if now - self.last_rescan >= self.rescan_s:
            # the next full pass walks every object (frozen ones included) and frees any
            # cycle that died while frozen; this pass's survivors join them
            self.last_rescan = now
            self.rescans += 1
            gc.unfreeze()
        else:
            self.freezes += 1
            gc.freeze()


_installed: _Policy | None = None


def install(rescan_s: float = RESCAN_S, clock: Callable[[], float] = time.monotonic) -> None:
    """Freeze what survives each full collection (see the module docstring). Idempotent:
    a second call only changes the interval."""
    global _installed
    if _installed is not None:
        _installed.rescan_s = rescan_s
        return
    _installed = _Policy(rescan_s, clock)
    gc.callbacks.append(_installed)
    # What exists now (the modules, the GeoIP tables, the engine just built or restored)
    # lives as long as the process: frozen at once, the first full pass does not walk it
    # either (issue 14, speed: ~90,000 objects, ~0.07 s of one pass at start-up, measured).
    # Cyclic garbage among it is freed at the first rescan, as any frozen cycle.
    gc.freeze()


def uninstall() -> None:
    """Back to CPython's own policy (everything frozen is unfrozen)."""
    global _installed
    if _installed is not None:
        gc.callbacks.remove(_installed)
        _installed = None
        gc.unfreeze()


def stats() -> dict[str, int]:
    """Freezes and rescans so far (for benchmarks and tests)."""
    p = _installed
    return {"freezes": p.freezes, "rescans": p.rescans} if p else {"freezes": 0, "rescans": 0}
