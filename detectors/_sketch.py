"""Distinct counts that stay small, merge across workers and never hold an identifier.

:class:`DistinctCounter` counts distinct salted 64-bit digests (``Context.hash_id``): an exact
``set`` while it is small (most entities touch one or two accounts: ~0.25 KiB), then an Apache
DataSketches *theta* sketch (``update_theta_sketch``, ``lg_k`` 12: exact up to 4,096 entries,
then ~1.6% relative error). Theta rather than HLL because it is exact in its first phase,
supports set operations (union, intersection, difference) and serialises compactly once
compacted; HLL would be smaller when huge but is only ever approximate.

Measured on this machine (CPython 3.11, datasketches 5.2): theta ``update(int)`` 0.33 µs,
``update(str)`` 1.1 µs, HLL ``update(str)`` 0.5 µs, ``set.add`` 0.05-0.3 µs, salted blake2b digest
of an id 0.7-1.1 µs, union of two 5,000-entry theta sketches ~0.8 ms. Hence the engine never
hashes per event: a window accumulator keeps the raw ids of the current short window (transient
state), and only at window close are the distinct ids of *interesting* entities digested once.

>>> a, b = DistinctCounter(exact_max=4), DistinctCounter(exact_max=4)
>>> a.update_many([1, 2, 3]); b.update_many([3, 4, 5, 6, 7])
>>> len(a), len(b), b.exact is None     # b outgrew its exact phase: it is a sketch now
(3, 5, True)
>>> a.merge(b); len(a)
7
>>> len(DistinctCounter.from_bytes(a.to_bytes()))
7
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

from datasketches import (
    compact_theta_sketch,
    theta_union,
    update_theta_sketch,
)

_new = object.__new__
_EMPTY: frozenset[int] = frozenset()  # shared by every empty counter (a set costs 216 bytes)
THETA_SEED = 9001  # datasketches' default; inputs are already salted digests
LG_K = 12


class DistinctCounter:
    """Exact set of 64-bit digests up to ``exact_max``, then a theta sketch. Mergeable."""

    __slots__ = ("exact", "exact_max", "_upd", "_merged")

    def __init__(self, exact_max: int = 128) -> None:
        self.exact: set[int] | frozenset[int] | None = _EMPTY
        self.exact_max = exact_max
        self._upd: update_theta_sketch | None = None
        self._merged: compact_theta_sketch | None = None  # from unions with other sketches

    @classmethod
    def empty(cls, exact_max: int = 128) -> DistinctCounter:
        """``DistinctCounter(exact_max)`` with its slots set directly, without ``__init__``'s
        frame (speed, issue 14: bulk_lookup builds two per window view)."""
        c = _new(cls)
        c.exact, c.exact_max, c._upd, c._merged = _EMPTY, exact_max, None, None
        return c

    # --- updates -----------------------------------------------------------------------
    def _promote(self) -> None:
        upd = update_theta_sketch(LG_K, 1.0, THETA_SEED)
        for h in self.exact or ():
            upd.update(h)
        self._upd = upd
        self.exact = None

    def update(self, h: int) -> None:
        ex = self.exact
        if type(ex) is frozenset:  # the shared empty set (also after a restore)
            ex = self.exact = set()
        if ex is not None:
            ex.add(h)  # type: ignore[union-attr]  # a set: the frozenset was replaced above
            if len(ex) > self.exact_max:
                self._promote()
        else:
            self._upd.update(h)  # type: ignore[union-attr]  # exact is None: promoted, _upd set

    def update_many(self, hs: Iterable[int]) -> None:
        ex = self.exact
        if type(ex) is frozenset:  # the shared empty set (also after a restore)
            ex = self.exact = set()
        if ex is not None:
            ex.update(hs)  # type: ignore[union-attr]  # a set: the frozenset was replaced above
            if len(ex) > self.exact_max:
                self._promote()
        else:
            upd = self._upd
            for h in hs:
                upd.update(h)  # type: ignore[union-attr]  # exact is None: promoted, _upd set

    def merge(self, other: DistinctCounter) -> None:
        """Add every element of ``other`` (the union, in place)."""
        if other.exact is not None:
            self.update_many(other.exact)
            return
        if self.exact is not None:
            self._promote()
        parts = [s for s in (self._merged, other._upd, other._merged) if s is not None]
        u = theta_union(LG_K, 1.0, THETA_SEED)
        for s in parts:
            u.update(s)
        self._merged = u.get_result()

    # --- reading -----------------------------------------------------------------------
    def estimate(self) -> float:
        if self.exact is not None:
            return float(len(self.exact))
        if self._merged is None:
            return self._upd.get_estimate()  # type: ignore[union-attr, no-any-return]  # exact is None: _upd set; datasketches is untyped
        u = theta_union(LG_K, 1.0, THETA_SEED)
        u.update(self._merged)
        u.update(self._upd)
        return u.get_result().get_estimate()  # type: ignore[no-any-return]  # datasketches is untyped: a float

    def __len__(self) -> int:
        return int(round(self.estimate()))

    def compact(self) -> compact_theta_sketch:
        """The content as one compact theta sketch (for unions and serialisation)."""
        if self.exact is not None:
            upd = update_theta_sketch(LG_K, 1.0, THETA_SEED)
            for h in self.exact:
                upd.update(h)
            return upd.compact()
        u = theta_union(LG_K, 1.0, THETA_SEED)
        u.update(self._upd)
        if self._merged is not None:
            u.update(self._merged)
        return u.get_result()

    # --- wire --------------------------------------------------------------------------
    def __reduce__(self) -> tuple[object, tuple[bytes, int]]:
        # C++ sketches do not pickle: engine checkpoints carry the wire form instead
        return (_counter_from_bytes, (self.to_bytes(self.exact_max), self.exact_max))

    def to_bytes(self, wire_exact_max: int = 128) -> bytes:
        """``E`` + little-endian uint64 digests while small and exact, else ``T`` + compact theta."""
        if self.exact is not None and len(self.exact) <= wire_exact_max:
            return b"E" + array("Q", sorted(self.exact)).tobytes()
        return b"T" + self.compact().serialize()  # type: ignore[no-any-return]  # datasketches is untyped: bytes

    @classmethod
    def from_bytes(cls, data: bytes, exact_max: int = 128) -> DistinctCounter:
        dc = cls(exact_max)
        if data[:1] == b"E":
            arr = array("Q")
            arr.frombytes(data[1:])
            dc.update_many(arr)
        elif data[:1] == b"T":
            dc.exact = None
            dc._upd = update_theta_sketch(LG_K, 1.0, THETA_SEED)
            dc._merged = compact_theta_sketch.deserialize(data[1:], THETA_SEED)
        else:
            raise ValueError("not a serialised DistinctCounter")
        return dc

    def __repr__(self) -> str:
        mode = "exact" if self.exact is not None else "theta"
        return f"DistinctCounter({mode}, ~{self.estimate():.0f})"


def _counter_from_bytes(data: bytes, exact_max: int) -> DistinctCounter:
    return DistinctCounter.from_bytes(data, exact_max)
