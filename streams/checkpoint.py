"""Engine checkpoints: an engine and its offsets as authenticated table records.

``snapshot`` / ``restore``: one partition's Engine (without its GeoIP data and shared
directory) with the offsets it consumed, in the allow-listed, HMAC-sealed format of
``streams.snapshot``, bound to the table and partition it is stored under.
``checkpoint_records`` / ``assemble_checkpoint``: that blob as chunks (< 1 MB each) and a
manifest written last, in two alternating slots; ``checkpoint_gap``: how long periodic
checkpoints back off after a slow one. The runtime (``streams.runtime``) writes and reads
them; replay, benchmarks and tests use them without a broker.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson

from detectors.engine import Directory, Engine
from detectors.geo import Geo
from streams import snapshot as snap
from streams.snapshot import SnapshotRejected, StateKeys

#: the checkpoint's own version (its payload and manifest); 1 was a pickle in zlib chunks,
#: refused as ``legacy_pickle`` and never read
CHECKPOINT_VERSION = 2
LEGACY_VERSION = 1
CHUNK_BYTES = 512 * 1024  # checkpoint chunk size in the table (Kafka's limit is 1 MB)

def snapshot(engine: Engine, offsets: dict[str, int], *, keys: StateKeys, context: str) -> bytes:
    """An engine (without its GeoIP data and shared directory) with its offsets, in the
    authenticated snapshot format of ``streams.snapshot``, bound to ``context`` (the table
    and partition it is stored under)."""
    ctx = engine.ctx
    geo, directory = ctx.geo, ctx.directory
    ctx.geo = None  # type: ignore[assignment]  # cleared only while the engine is pickled; restore sets it again
    ctx.directory = None  # type: ignore[assignment]  # cleared only while the engine is pickled; restore sets it again
    try:
        payload = snap.encode({"v": CHECKPOINT_VERSION, "engine": engine,
                               "offsets": dict(offsets)})
    finally:
        ctx.geo, ctx.directory = geo, directory
    return snap.seal(payload, keys, context)


def restore(blob: bytes, geo: Geo, directory: Directory, *, keys: StateKeys, context: str
            ) -> tuple[Engine, dict[str, int]]:
    """The inverse of :func:`snapshot`, re-attached to this worker's geo and directory.

    Raises ``streams.snapshot.SnapshotRejected`` with its reason (``legacy_pickle`` for a
    pickle of the format before: never loaded)."""
    data = snap.decode(snap.unseal(blob, keys, context))
    if not isinstance(data, dict) or data.get("v") != CHECKPOINT_VERSION:
        raise SnapshotRejected("unknown_version", "checkpoint of an unknown version")
    engine = data.get("engine")
    offsets = data.get("offsets")
    if not isinstance(engine, Engine) or not isinstance(offsets, dict) or not all(
            isinstance(k, str) and type(v) is int for k, v in offsets.items()):
        raise SnapshotRejected("undecodable", "not an engine checkpoint")
    engine.ctx.geo = geo
    engine.ctx.directory = directory
    return engine, dict(offsets)


def _table_key(partition: int, chunk: int | None = None, slot: int | None = None) -> bytes:
    if chunk is None:
        return f"p{partition}".encode()
    if slot is None:  # checkpoints written before slots
        return f"p{partition}/{chunk}".encode()
    return f"p{partition}/s{slot}/{chunk}".encode()


def checkpoint_records(partition: int, blob: bytes, slot: int | None = None
                       ) -> list[tuple[bytes, bytes]]:
    """Table records for one checkpoint (``blob``: a sealed snapshot, compressed and
    authenticated): chunks (each < 1 MB, Kafka's default message limit), then the manifest
    that names them, written last.

    ``slot`` (0 or 1): the chunks' key space. Consecutive checkpoints of a partition use
    the two slots in turn, so a checkpoint cut short (a crash between its chunks and its
    manifest), or a changelog read only up to some offset, never leaves the last complete
    manifest naming chunks that a newer checkpoint overwrote."""
    chunks = [blob[i:i + CHUNK_BYTES] for i in range(0, len(blob), CHUNK_BYTES)] or [b""]
    man: dict[str, Any] = {"v": CHECKPOINT_VERSION, "chunks": len(chunks),
                           "bytes": len(blob), "crc32": zlib.crc32(blob)}
    if slot is not None:
        man["slot"] = slot
    recs = [(_table_key(partition, i, slot), c) for i, c in enumerate(chunks)]
    recs.append((_table_key(partition), orjson.dumps(man)))
    return recs


def checkpoint_slot(partition: int, get: Any) -> int | None:
    """The slot of ``partition``'s last manifest (None: none, or written before slots)."""
    try:
        raw = get(_table_key(partition))
        slot = orjson.loads(raw).get("slot") if raw else None
    except Exception:
        return None
    return slot if slot in (0, 1) else None


def assemble_checkpoint(partition: int, get: Any) -> bytes | None:
    """The stored checkpoint of ``partition`` from table records (``get(key)``): a sealed
    snapshot, or None when there is none. Raises ``SnapshotRejected``: ``legacy_pickle``
    for a checkpoint of the pickle format (its chunks are not even read: nothing here can
    load a pickle), ``unknown_version`` for a manifest of a version this code does not
    know, ``undecodable`` when it is incomplete or corrupt."""
    raw = get(_table_key(partition))
    if not raw:
        return None
    try:
        man = orjson.loads(raw)
        version = man.get("v")
        slot = man.get("slot")
        n = int(man["chunks"])
        size, crc = int(man["bytes"]), int(man["crc32"])
    except Exception as exc:
        raise SnapshotRejected("undecodable", f"checkpoint manifest: {type(exc).__name__}"
                               ) from None
    if version == LEGACY_VERSION:
        raise SnapshotRejected("legacy_pickle", "a pickled checkpoint (the old format), "
                               "never loaded: docs/operations.md, upgrading")
    if version != CHECKPOINT_VERSION:
        raise SnapshotRejected("unknown_version", f"checkpoint manifest version {version!r}")
    if not 0 < n <= 1 << 16:
        raise SnapshotRejected("undecodable", f"checkpoint of {n} chunks")
    parts = [get(_table_key(partition, i, slot)) for i in range(n)]
    if any(p is None for p in parts):
        raise SnapshotRejected("undecodable", "checkpoint chunks missing")
    data = b"".join(parts)
    if len(data) != size or zlib.crc32(data) != crc:
        raise SnapshotRejected("undecodable", "checkpoint chunks do not match their manifest")
    return data


#: at most this share of a worker's time goes to encoding periodic checkpoints
CHECKPOINT_SHARE = 0.1


def checkpoint_gap(spent: float, share: float = CHECKPOINT_SHARE) -> float:
    """Seconds before the next periodic checkpoint may run, after one whose encoding took
    ``spent`` seconds: ``spent / share`` (0.1 s of encoding at 10% -> 1 s); the configured
    interval still applies on top (the timer).

    >>> checkpoint_gap(0.05), checkpoint_gap(1.5), checkpoint_gap(0.0)
    (0.5, 15.0, 0.0)
    """
    return spent / share
