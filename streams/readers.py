"""Readers of every partition of a topic, on every worker (no consumer group): the facts a
worker's engines share (identity-changes) and analysts' verdicts (access-feedback)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import faust

from streams import faust_compat as compat
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.runtime import Runtime

log = logging.getLogger("accesswatch.app")


async def read_all(app: faust.App, settings: Settings, topic: str, name: str,
                    handle: Any) -> None:
    """Read every partition of ``topic`` from the start, for the life of the worker,
    handing each message to ``handle`` (issue 18: the feedback topic; it may not exist yet)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", client_id=f"{settings.app_id}-{name}",
        **settings.kafka_security().aiokafka_options())
    await consumer.start()
    try:
        known: set[int] = set()
        while True:
            parts = consumer.partitions_for_topic(topic) or set()
            if parts != known:  # the topic appeared (or grew): read the new partitions
                new = [TopicPartition(topic, p) for p in sorted(parts - known)]
                consumer.assign([TopicPartition(topic, p) for p in sorted(parts)])
                await consumer.seek_to_beginning(*new)
                known = set(parts)
            if not known:
                await asyncio.sleep(1.0)
                with contextlib.suppress(Exception):
                    await compat.force_metadata_update(consumer)
                continue
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            for msgs in batch.values():
                for m in msgs:
                    try:
                        await handle(m)
                    except Exception:
                        log.exception("%s message failed", name)
    finally:
        await consumer.stop()


async def read_identity(app: faust.App, rt: Runtime, settings: Settings) -> None:
    """Read every partition of identity-changes from the start, for the life of the worker."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topic = settings.topics.identity
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id=f"{settings.app_id}-identity",
        **settings.kafka_security().aiokafka_options(),
    )
    await consumer.start()
    try:
        parts: set[int] | None = None
        while parts is None:
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                parts = None
                await asyncio.sleep(0.5)
                with contextlib.suppress(Exception):
                    await compat.force_metadata_update(consumer)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while True:
            if not rt.identity_ready.is_set():
                positions = {tp: await consumer.position(tp) for tp in tps}
                if all(positions[tp] >= ends[tp] for tp in tps):
                    rt.identity_ready.set()
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            for msgs in batch.values():
                for m in msgs:
                    try:
                        await rt.on_identity(m)
                    except Exception:
                        log.exception("identity event failed")
    finally:
        await consumer.stop()
