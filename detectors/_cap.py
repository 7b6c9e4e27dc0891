"""A cap on the entities one state table holds: when it is over, the least valuable go first.

Every detector keeps per-entity state in plain dicts. A producer (or an attacker who controls
one) can send a new account, session and address with every event, so without a cap memory
grows with the stream. :func:`evict` is the one eviction rule every detector applies to its
tables (the engine asks each detector to ``shed`` every few thousand events):

- nothing happens while the table holds ``cap`` entries or fewer (one ``len``);
- over the cap, it removes entries down to ``cap * (1 - SLACK)``: a sweep of the table then
  buys ``cap * SLACK`` new entities before the next one, so its cost per new entity is about
  ten value reads (one pass over the values, a sort of their times in C, then a pass over
  those times only): ~6-8 us per evicted entity in a 200,000-entry table of a long-running
  flooded engine (docs/benchmarks.md), cache misses on a heap its own churn fragments;
- the least recently seen go first, and entries ``keep`` marks (flagged, in an open alert
  episode, waiting for a timer) only when the others are not enough: a flood of new idle
  entities evicts itself, not the attack being tracked.

Hand-written rather than an LRU mapping (``cachetools.LRUCache``): an LRU moves an entry on
every read, a cost on the hot path of every detector, and knows nothing of "flagged".
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")

#: a sweep over the cap removes this share of the cap beyond it
SLACK = 0.1


def evict(table: dict[K, V], cap: int, last: Callable[[V], float],
          keep: Callable[[V], bool] | None = None,
          on_evict: Callable[[K, V], Any] | None = None) -> int:
    """Remove entries of ``table`` beyond ``cap`` (down to ``cap * (1 - SLACK)``): the least
    recently seen (``last(value)``) first, entries ``keep(value)`` marks only after all the
    others. ``on_evict(key, value)`` is called for each one removed. Returns how many.
    ``cap`` <= 0: no cap."""
    n = len(table)
    if cap <= 0 or n <= cap:
        return 0
    return remove(table, n - int(cap * (1 - SLACK)), last, keep, on_evict)


def remove(table: dict[K, V], want: int, last: Callable[[V], float],
           keep: Callable[[V], bool] | None = None,
           on_evict: Callable[[K, V], Any] | None = None) -> int:
    """Remove ``want`` entries of ``table`` (or all), in :func:`evict`'s order."""
    removed = 0
    for protected in (False, True):
        if removed >= want or not table:
            break
        # one pass reads each value once (keys and times kept side by side); the selection
        # below reads only those lists: the values of a large long-lived table lie all over
        # a fragmented heap, and reading them again cost ~1-2 us per evicted entity
        if keep is None:
            if protected:
                break
            keys = list(table)
            lasts = [last(v) for v in table.values()]
        else:
            keys, lasts = [], []
            add_key, add_last = keys.append, lasts.append
            for key, v in table.items():
                if bool(keep(v)) is protected:
                    add_key(key)
                    add_last(last(v))
        if not lasts:
            continue
        k = min(want - removed, len(lasts))
        order = sorted(lasts)
        cut = order[k - 1]
        at_cut = k - bisect_left(order, cut)  # ties at the cut: only this many
        gone: list[K] = []
        for key, t in zip(keys, lasts, strict=True):
            if t < cut:
                gone.append(key)
            elif t == cut and at_cut > 0:
                at_cut -= 1
                gone.append(key)
        for key in gone:
            v = table.pop(key)
            if on_evict is not None:
                on_evict(key, v)
        removed += len(gone)
    return removed


def evict_pair(new: dict[K, V], old: dict[K, V], cap: int, last: Callable[[V], float]) -> int:
    """:func:`evict` for a table kept as two generations (``old`` rotated out of ``new``):
    the older generation goes first, then ``new``. ``cap`` counts both."""
    n = len(new) + len(old)
    if cap <= 0 or n <= cap:
        return 0
    want = n - int(cap * (1 - SLACK))
    removed = remove(old, want, last)
    if removed < want:
        removed += remove(new, want - removed, last)
    return removed


# --------------------------------------------------------------------------- a budget in bytes

#: Python heap bytes per tracked entity (``Detector.tracked()``), by detector id ("engine":
#: an open alert episode): the heap ``tracemalloc`` saw each detector alone add under the
#: seeded flood, over the entities it reports more (``bench/bench_state_bytes.py``, which
#: prints this table). They include the detector's raw-id memos (bounded caches, counted per
#: entity while they fill) and not the allocator's overhead (RSS / estimate is in
#: docs/benchmarks.md). A detector missing here counts :data:`DEFAULT_BYTES` per entity.
BYTES_PER_ENTITY: dict[str, int] = {
    "account_takeover": 403,  # beside the shared burst tracker (credential_stuffing counts it)
    "bulk_lookup": 1212,
    "credential_stuffing": 902,  # the burst tracker the login detectors share
    "impossible_travel": 199,
    "overseas_server": 446,
    "password_spray": 851,  # its own tracker, beside the shared one
    "revoked_credential": 1332,
    "unissued_session": 229,
    "unusual_hour": 339,
    "engine": 400,  # an open alert episode
    # the entity page's log (detectors/explain.py): per alert kept with its evidence, and per
    # record (its hours); 4.1-4.3 KiB per alert of a simulated attack's alerts, measured with
    # tracemalloc over 2,000 entities of 1, 3 and 20 alerts each
    "explain": 4096,
}
DEFAULT_BYTES = 1024


def table_cap(budget: float, sizes: list[tuple[int, int]]) -> int:
    """The largest per-table cap ``c`` (at least 1) under which ``sizes`` (bytes per entity,
    entities) of every table fit ``budget``: sum of ``bytes * min(entities, c)`` <= budget.
    Large tables are cut first, the small ones not at all (water-filling).

    >>> table_cap(1000, [(10, 50), (10, 200)])  # 500 + 10 * 50 = 1000
    50
    >>> table_cap(10_000, [(10, 50), (10, 200)])  # fits already: the largest table
    200
    """
    hi = max((n for _, n in sizes), default=0)
    lo = 0
    while lo < hi:  # f(c) = sum(b * min(n, c)) rises with c: the largest c with f(c) <= budget
        mid = (lo + hi + 1) // 2
        if sum(b * min(n, mid) for b, n in sizes) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return max(lo, 1)
