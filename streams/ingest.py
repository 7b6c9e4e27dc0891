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
for sshd and id-less mappings a digest of the record and its position, which is the
message's offset: one line per message gives ``replay --format``'s ids for the same lines
produced in order to a one-partition topic), which the engine processes once.
"""

from __future__ import annotations

import io
import time
from typing import Any

import faust
import orjson

from detectors import adapters
from streams.produce import KINDS, classify


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
            _agent(adapter, rt, out_topics)))
    return agents


def _agent(adapter: adapters.Adapter, rt: Any, out_topics: dict[str, Any]) -> Any:
    prefix = adapter.name.split(":")[0]
    metrics = rt.metrics

    async def ingest(stream: faust.StreamT) -> None:
        async for event in stream.events():
            msg = event.message
            data = msg.value if isinstance(msg.value, bytes) else b""
            pending = []
            # a message may frame into several records (a CloudTrail ``Records`` document):
            # each unusable one is dead-lettered on its own, with its place in the message
            outcomes = list(adapters.records(adapter, io.BytesIO(data), start=msg.offset))
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
                    pending.append(await out_topics[kind].send(
                        key=key if isinstance(key, bytes) else None, value=orjson.dumps(e)))
            for fut in pending:  # delivered before this message's offset is acknowledged
                await fut

    return ingest
