"""``Context.hash_id``'s memo (issue 14, speed): the same digests as computing them, bounded,
never in a checkpoint."""

from __future__ import annotations

import hashlib

import pytest

from detectors import context as C
from detectors.context import Context
from detectors.geo import default_geo
from streams import snapshot


def _digest(salt: str, *parts: str) -> int:
    """The digest computed from its definition (keyed BLAKE2b, 8 bytes, parts joined by US)."""
    h = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8, key=salt.encode())
    return int.from_bytes(h.digest(), "little")


def test_memoised_digests_equal_computed_ones_and_the_memo_stays_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(C, "_HASH_MEMO_MAX", 4)
    ctx = Context(default_geo(), "salt-1")
    ids = [f"c-{i:06d}" for i in range(11)]
    for _ in range(3):  # first calls fill the memo, repeats read it, overflow empties it
        for i in ids:
            assert ctx.hash_id(i) == _digest("salt-1", i)
            assert ctx.hash_id("actor-1", i) == _digest("salt-1", "actor-1", i)
            assert len(ctx._hash_memo) <= 4
    # a memo entry never answers for another salt
    other = Context(default_geo(), "salt-2")
    assert other.hash_id(ids[0]) == _digest("salt-2", ids[0]) != ctx.hash_id(ids[0])


def test_the_memo_holds_raw_ids_and_is_left_out_of_checkpoints() -> None:
    ctx = Context(default_geo(), "salt-1")
    ctx.hash_id("c-000113")
    assert "c-000113" in ctx._hash_memo
    assert "_hash_memo" not in ctx.__getstate__()
    ctx.geo = None  # type: ignore[assignment]  # as streams.checkpoint clears it before encoding
    blob = snapshot.encode(ctx)  # the checkpoint's own format (no pickle anywhere)
    assert b"c-000113" not in blob
    restored = snapshot.decode(blob)
    assert restored._hash_memo == {}
    assert restored.hash_id("c-000113") == _digest("salt-1", "c-000113")


def test_hash_one_is_hash_id_of_one_id(monkeypatch: pytest.MonkeyPatch) -> None:
    # the call without an argument tuple (speed): the same digests, the same bounded memo
    monkeypatch.setattr(C, "_HASH_MEMO_MAX", 4)
    ctx = Context(default_geo(), "salt-2")
    ids = [f"c-{i:06d}" for i in range(11)]
    for _ in range(3):
        for i in ids:
            assert ctx.hash_one(i) == _digest("salt-2", i) == ctx.hash_id(i)
            assert len(ctx._hash_memo) <= 4
