"""Batched input messages (contract v1.1): one Kafka message, one event or many.

A message on an input topic carries one JSON event (as in v1), or a batch of events that
all belong to the message's partition: a JSON array of objects, or objects separated by
newlines (JSON lines). :func:`split` frames a message into its events' bytes without
validating them; each event is then validated on its own (``detectors.events.decode``), so
a bad one is rejected alone and the rest of the batch is processed.

The array is framed by msgspec's decoder into ``list[msgspec.Raw]`` (one C pass; each
element's bytes as sent, not re-serialised). A message that starts with ``{`` and holds a
newline is one event when it parses as one JSON value (a pretty-printed object), else JSON
lines (blank lines skipped).

Framing errors reject the whole message (it goes to the dead-letter topic as it is):
``invalid_json`` for an array that is not valid JSON or is empty, ``too_large`` for more
than ``max_events`` events (a producer must not turn one message into an unbounded number
of events or dead letters).

>>> split(b'{"a": 1}') is None
True
>>> split(b'[{"a": 1}, {"b": 2}]')
[b'{"a": 1}', b'{"b": 2}']
>>> split(b'{"a": 1}\\n\\n{"b": 2}\\r\\n')
[b'{"a": 1}', b'{"b": 2}']
>>> split(b'{\\n  "a": 1\\n}') is None
True
>>> split(b'[]')
Rejection(reason='invalid_json', field=None, detail='an empty batch')
>>> split(b'[{"a": 1},')
Rejection(reason='invalid_json', field=None, detail='a batch that is not a JSON array')
>>> split(b'[{}, {}, {}]', max_events=2).reason
'too_large'
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec
import orjson

from detectors.events import Rejection

__all__ = ["MAX_EVENTS", "BatchItem", "frame", "split"]

#: events a worker takes from one message at most (a producer batches 500 by default)
MAX_EVENTS = 10_000

_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])
_BLANK = b" \t\r\n"


def split(data: bytes, max_events: int = MAX_EVENTS) -> list[bytes] | Rejection | None:
    """The events' bytes of a batch message, in order; None for a one-event message (or
    anything that is no batch: the event decoder judges it); a ``Rejection`` for a batch
    that cannot be framed."""
    head = data[:1]
    if head != b"{" and head != b"[":  # per one-event message: no copy unless it starts blank
        head = data.lstrip(_BLANK)[:1]
    if head == b"[":
        try:
            items = _ARRAY.decode(data)
        except (msgspec.DecodeError, ValueError):
            return Rejection("invalid_json", None, "a batch that is not a JSON array")
        if not items:
            return Rejection("invalid_json", None, "an empty batch")
        if len(items) > max_events:
            return Rejection("too_large", None,
                             f"a batch of {len(items)} events, more than {max_events}")
        return [bytes(r) for r in items]
    if head != b"{" or b"\n" not in data or b"\n" not in data.rstrip(_BLANK):
        return None
    try:
        orjson.loads(data)
        return None  # one value that spans lines
    except orjson.JSONDecodeError:
        pass
    lines = [line.rstrip(b"\r") for line in data.split(b"\n") if line.strip(_BLANK)]
    if len(lines) > max_events:
        return Rejection("too_large", None,
                         f"a batch of {len(lines)} events, more than {max_events}")
    return lines if len(lines) > 1 else None


class BatchItem:
    """One event of a batch message, seen as a message of its own by the worker's send
    paths: the batch's topic, partition, offset, key and headers, the event's bytes as
    ``value`` and its 0-based place in the batch as ``batch_index`` (the dead-letter
    record's ``aw-index``)."""

    # topic, partition and offset copied (read per event on the worker's merge path; the
    # ``__getattr__`` fallback costs a Python call each)
    __slots__ = ("batch_index", "batch_size", "message", "offset", "partition", "topic",
                 "value")

    def __init__(self, message: Any, index: int, size: int, value: bytes) -> None:
        self.message = message
        self.batch_index = index
        self.batch_size = size
        self.value = value
        self.topic = message.topic
        self.partition = message.partition
        self.offset = message.offset

    @property
    def last(self) -> bool:
        return self.batch_index == self.batch_size - 1

    def __getattr__(self, name: str) -> Any:  # topic, partition, offset, key, headers, ...
        return getattr(self.message, name)


def frame(events: list[bytes]) -> bytes:
    """A batch message of events' bytes (JSON lines: no re-serialisation, each event's
    bytes as they were), the inverse of :func:`split` for two events or more.

    >>> split(frame([b'{"a": 1}', b'{"b": 2}']))
    [b'{"a": 1}', b'{"b": 2}']
    """
    return b"\n".join(events)


@functools.lru_cache(maxsize=1 << 16)  # per event of a batch: murmur2 is pure Python
def partition_for(key: bytes, partitions: int) -> int:
    """The partition the Java-compatible default partitioner (murmur2; kafka-python's,
    aiokafka's, the Java client's) gives ``key``: what DESIGN.md's keying assumes.

    >>> partition_for(b"c-1", 1), partition_for(b"c-1", 4), partition_for(b"c-2", 4)
    (0, 3, 2)
    """
    from kafka.partitioner.default import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % partitions
