"""Ingest agents (``worker --ingest FORMAT:TOPIC``): raw source records in, contract events out.

One agent per pair reads the raw topic, runs the format's adapter over each message
(:func:`detectors.adapters.records`: a message may frame into several records, an Okta API
page for one) and produces each event to its input topic keyed as ``accesswatch produce``
keys it (logins by account, access by actor, identity changes by principal): the detection
agents read them as they read any producer's. A record that is rejected goes to the
dead-letter topic with the reason ``<format>:<reason>`` (headers as the detection agents'
dead letters; a record of a message that framed into several goes alone, with its place in
the message as ``aw-record``, and the message's other records still give their events), a
skipped one is counted on ``accesswatch_invalid_events_total`` with the
reason ``<format>:skip:<reason>`` and not dead-lettered (it is not an error).

Nothing is lost across a restart: the agent awaits the delivery of every event of a message
before that message's offset is acknowledged (at least once, as the detection agents); a
message adapted twice after a crash gives the same event ids (from the source's own ids, or
for sshd and id-less mappings a digest of the record and its position, which is unique per
partition, offset and record (``detectors.adapters.message_place``): one line per message
gives ``replay --format``'s ids for the same lines produced in order to a one-partition
topic), which the engine processes once.
"""

from __future__ import annotations

import io
import time
from typing import Any

import faust
import orjson

from detectors import adapters
from streams.batch import frame, partition_for
from streams.produce import KINDS, classify


class Batches:
    """The events of one source message, batched by (kind, partition) in the order they
    came (so per key), at most ``max_events`` events and ``max_bytes`` bytes a message;
    an event without a key goes alone (the worker dead-letters it), an identity change too
    (identity-changes takes one event a message).

    >>> b = Batches(2, 1 << 20, 1)
    >>> for i in range(3):
    ...     b.add("login", b"a", b'{"n": %d}' % i)
    >>> [(k, key, p, v) for k, key, p, v in b.messages()]
    [('login', b'a', 0, b'{"n": 0}\\n{"n": 1}'), ('login', b'a', 0, b'{"n": 2}')]
    """

    def __init__(self, max_events: int, max_bytes: int, partitions: int) -> None:
        self.max_events = max(1, max_events)
        self.max_bytes = max_bytes
        self.partitions = partitions
        self._open: dict[tuple[str, int], tuple[bytes, list[bytes], list[int]]] = {}
        self._done: list[tuple[str, bytes | None, int | None, bytes]] = []

    def add(self, kind: str, key: bytes | None, value: bytes) -> None:
        if key is None or self.max_events <= 1 or kind == "identity":  # v1.1: not batched
            self._done.append((kind, key, None, value))
            return

        p = partition_for(key, self.partitions)
        cur = self._open.get((kind, p))
        if cur is not None and (len(cur[1]) >= self.max_events
                                or cur[2][0] + 1 + len(value) > self.max_bytes):
            self._close(kind, p)
            cur = None
        if cur is None:
            cur = self._open[(kind, p)] = (key, [], [0])
        cur[1].append(value)
        cur[2][0] += len(value) + 1

    def _close(self, kind: str, p: int) -> None:
        key, values, _ = self._open.pop((kind, p))
        self._done.append((kind, key, p, frame(values)))

    def messages(self) -> list[tuple[str, bytes | None, int | None, bytes]]:
        for kind, p in list(self._open):
            self._close(kind, p)
        done, self._done = self._done, []
        return done


def attach(app: faust.App, rt: Any, settings: Any) -> list[Any]:
    """One agent per ``settings.ingest`` pair; returns the agents."""
    names = settings.topics
    out_topics = {kind: app.topic(names.for_kind(kind), key_serializer="raw",
                                  value_serializer="raw") for kind in KINDS}
    agents = []
    for fmt, topic in settings.ingest_pairs():
        adapter = adapters.load(fmt, now=time.time())
        raw = app.topic(topic, key_serializer="raw", value_serializer="raw")
        agents.append(app.agent(raw, name=f"accesswatch.ingest.{topic}")(
            _agent(adapter, rt, out_topics, settings)))
    return agents


def _agent(adapter: adapters.Adapter, rt: Any, out_topics: dict[str, Any],
           settings: Any = None) -> Any:
    prefix = adapter.name.split(":")[0]
    metrics = rt.metrics
    # issue 17: the events of one source message go out batched by partition
    max_events = getattr(settings, "produce_batch_events", 1)
    max_bytes = getattr(settings, "produce_batch_bytes", 0)
    partitions = getattr(settings, "partitions", 1)

    async def ingest(stream: faust.StreamT) -> None:
        async for event in stream.events():
            msg = event.message
            data = msg.value if isinstance(msg.value, bytes) else b""
            pending = []
            out = Batches(max_events, max_bytes, partitions)
            # a message may frame into several records (a CloudTrail ``Records`` document):
            # each unusable one is dead-lettered on its own, with its place in the message
            outcomes = list(adapters.records(
                adapter, io.BytesIO(data), place=adapters.message_place(msg.partition, msg.offset)))
            several = len(outcomes) > 1
            for i, o in enumerate(outcomes, 1):
                one = (i, o.record) if several else None
                r = o.reject
                if r is not None:
                    if isinstance(r, adapters.Skip):
                        metrics.invalid_events.labels(
                            topic=msg.topic, reason=f"{prefix}:skip:{r.reason}").inc()
                    else:
                        await rt.dead_letter(msg, f"{prefix}:{r.reason}", None, r.detail, one)
                    continue
                for e in o.events:
                    kind, key = classify(e)
                    if kind is None:  # an adapter's event always has a kind: a defect
                        await rt.dead_letter(msg, f"{prefix}:adapter_error", None, str(key),
                                             one)
                        continue
                    out.add(kind, key if isinstance(key, bytes) else None, orjson.dumps(e))
            for kind, key, partition, value in out.messages():
                pending.append(await out_topics[kind].send(key=key, value=value,
                                                           partition=partition))
            for fut in pending:  # delivered before this message's offset is acknowledged
                await fut

    return ingest
