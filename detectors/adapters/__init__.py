"""Adapters: real log formats in, contract events out (pure; no Kafka, no clocks).

One module per source format. Each module defines:

- ``NAME``: the format's name as given to ``--format`` (``sshd``, ``cloudtrail``, ...);
- ``adapt(record: bytes) -> list[dict]``: one source record to zero or more contract
  events (plain dicts, exactly as a producer of contract v1 would send them: the kind is
  told by the fields, as ``detectors.events.classify`` reads them); raises ``Reject`` with a
  reason when the record cannot be used;
- optionally ``frame(stream: IO[bytes]) -> Iterator[bytes]``: how a file or raw topic
  message splits into source records (default: one record per non-empty line).

- optionally ``adapt_at(record: bytes, position: int) -> list[dict]``: as ``adapt``, told the
  record's position in its stream (1-based), for formats whose records carry no id of their
  own (``sshd``: the event id is a digest of the line and its position, so a replay of the
  same file gives the same ids and two identical lines stay two events);
- optionally ``configure(**options) -> Adapter``: the adapter for the given options (``sshd``
  takes ``year``); ``load(name, **options)`` calls it.

Adapters never drop a record silently: a record is events, or a ``Reject`` with a reason
that the caller counts and (with ``--rejects``) records. ``Skip`` (a kind of ``Reject``) marks
a record that was read and is not an event (an sshd "Connection closed" line): counted by its
reason too, apart from the rejects. :func:`records` runs an adapter over a stream and tells
each record's fate, so every caller (replay, produce, the ingest agent) counts the same way.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import IO, Any

#: every format ``--format`` accepts (``mapping:FILE`` is handled by ``load``).
FORMATS = ("ocsf", "ecs", "cloudtrail", "okta", "entra", "gws", "sshd", "rba", "lanl")


class Reject(Exception):
    """A source record the adapter cannot turn into a contract event."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason if not detail else f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Skip(Reject):
    """A source record that was read and is not an event (a notice, a disconnect): counted by
    its reason, never an error."""


def lines(stream: IO[bytes]) -> Iterator[bytes]:
    """The default framing: one record per non-empty line."""
    for raw in stream:
        line = raw.rstrip(b"\r\n")
        if line.strip():
            yield line


@dataclass(frozen=True)
class Adapter:
    name: str
    adapt: Callable[[bytes], list[dict[str, Any]]]
    frame: Callable[[IO[bytes]], Iterator[bytes]] = lines
    #: ``adapt`` told the record's 1-based position in its stream (None: ``adapt`` is used)
    adapt_at: Callable[[bytes, int], list[dict[str, Any]]] | None = None

    def events(self, record: bytes, position: int) -> list[dict[str, Any]]:
        """The record's events (raises ``Reject`` / ``Skip``)."""
        if self.adapt_at is not None:
            return self.adapt_at(record, position)
        return self.adapt(record)


@dataclass(slots=True)
class Outcome:
    """One source record's fate: its events, or the ``Reject`` / ``Skip`` that says why none."""

    position: int
    record: bytes
    events: list[dict[str, Any]]
    reject: Reject | None = None


def message_place(partition: int, offset: int) -> Callable[[int], int]:
    """The positions the ingest agent tells an adapter for the records of the message at
    ``offset`` of ``partition`` (``place(k)`` for its k-th record, from 1), unique per
    (partition, offset, k): the first record of a message of partition 0 is ``offset + 1``
    (one line per message gives ``replay --format``'s ids for the same lines in order), every
    other record a negative number no other message's record is told. (``offset + k`` alone
    let the k-th record of one message share its position with the first of the message
    k - 1 later: two identical sshd lines there got one event id, and one was dropped as a
    duplicate; so did identical lines at one offset of two partitions.)"""
    if not 0 <= partition < 1 << 16:
        raise ValueError(f"partition out of range: {partition}")
    base = (offset << 48) | (partition << 32)

    def place(k: int) -> int:
        if k == 1 and partition == 0:
            return offset + 1
        if not 0 < k < 1 << 32:
            raise ValueError(f"record index out of range: {k}")
        return -(base | k)

    return place


def records(adapter: Adapter, stream: IO[bytes], start: int = 0,
            place: Callable[[int], int] | None = None) -> Iterator[Outcome]:
    """Every record of ``stream`` with its events or the reason it has none. An adapter that
    fails in an unexpected way on a record rejects that record as ``adapter_error``: one bad
    record never ends the stream. Positions count from ``start + 1``, or, with ``place``, are
    ``place(k)`` for the k-th record (:func:`message_place`)."""
    one = adapter.adapt
    adapt = adapter.adapt_at or (lambda record, _position: one(record))  # no per-record branch
    framed: Iterator[tuple[int, bytes]] = enumerate(adapter.frame(stream), start + 1)
    if place is not None:
        framed = ((place(k), record) for k, record in framed)
    for position, record in framed:
        try:
            out = adapt(record, position)
        except Reject as r:
            yield Outcome(position, record, [], r)
            continue
        except Exception as exc:  # a defect, not the record's fault: counted, the run goes on
            yield Outcome(position, record, [], Reject("adapter_error", type(exc).__name__))
            continue
        yield Outcome(position, record, out)


def _from_module(mod: ModuleType) -> Adapter:
    return Adapter(name=mod.NAME, adapt=mod.adapt, frame=getattr(mod, "frame", lines),
                   adapt_at=getattr(mod, "adapt_at", None))


def load(name: str, **options: Any) -> Adapter:
    """The adapter for ``--format NAME`` (``mapping:FILE`` reads a mapping file). ``options``
    go to the module's ``configure`` (``year`` for sshd); a module without ``configure``
    ignores them.

    Raises ValueError with one readable line for an unknown format or a bad mapping file.
    """
    if name.startswith("mapping:"):
        mod = importlib.import_module("detectors.adapters.mapping")
        return mod.from_file(name.split(":", 1)[1])  # type: ignore[no-any-return]  # an Adapter (module from importlib)
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r} (one of: {', '.join(FORMATS)}, mapping:FILE)")
    try:
        mod = importlib.import_module(f"detectors.adapters.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"detectors.adapters.{name}":
            raise
        raise ValueError(f"format {name!r} is not available in this build") from None
    configure = getattr(mod, "configure", None)
    if configure is not None:
        return configure(**options)  # type: ignore[no-any-return]  # an Adapter, as above
    return _from_module(mod)
