"""Engines on an internal topic of the worker group, beside the input engines.

The input engines send some of what they take to an internal topic keyed by another entity
than the account: bulk_lookup's window views by source and key (``streams.combine``), logins
by source AS (``streams.bursts``). There, one engine per partition of that topic does the
rest, with the partition state, checkpoints and acks of ``streams.runtime.PartitionEngines``
in a table of its own: messages at or below a restored checkpoint are skipped, and the
others stay unacked until the checkpoint that covers them is flushed. Alerts and metrics are the input runtime's.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import faust
import orjson

from detectors.engine import Engine, EngineConfig
from streams.batch import partition_for
from streams.runtime import PartitionEngines, PartitionState, Runtime
from streams.settings import Settings

#: messages of an internal topic are consumed within seconds; this outlives a restart
RETENTION = timedelta(days=1)

log = logging.getLogger("accesswatch.side")


async def send_drained(rt: Runtime, partition: int, topic: Any, what: str,
                       ready: Callable[[Engine], bool],
                       drain: Callable[[Engine], list[dict[str, Any]]],
                       key: Callable[[dict[str, Any]], bytes],
                       batch_partitions: int = 0) -> int:
    """Send what input partition ``partition``'s engine hands out (``drain``, when ``ready``
    says it has something) to ``topic``, each message as JSON keyed by ``key``. A drain that
    fails loses its messages (logged, counted as an internal error ``what``); the worker goes
    on. Returns how many were sent.

    ``batch_partitions`` (the topic's partition count): the items of one drain that go to
    one partition (``key`` through the default partitioner, ``partition_for``) are sent as
    one message, a JSON array in drain order, to that partition, keyed by the first one's
    key: one Kafka message each cost the sending and the receiving worker ~0.1-0.2 ms of
    Faust (docs/benchmarks.md, "h-wone").

    Drained and sent under the input runtime's checkpoint lock: a checkpoint encodes the
    engine either before the drain (the items are in its state and go out after a restore)
    or once every item is in the producer, which the checkpoint
    flushes first. Drained outside it, a checkpoint could encode the engine without items
    still on their way to the producer and ack the events that made them: a SIGKILL then
    lost them (a finding, and the alert the episode builder would have made of it)."""
    st = rt.parts.get(partition)
    if st is None or not ready(st.engine):
        return 0
    async with rt._checkpoint_lock:
        if rt.parts.get(partition) is not st or not ready(st.engine):
            return 0
        return await _send_drained(rt, partition, st.engine, topic, what, drain, key,
                                   batch_partitions)


async def _send_drained(rt: Runtime, partition: int, engine: Engine, topic: Any, what: str,
                        drain: Callable[[Engine], list[dict[str, Any]]],
                        key: Callable[[dict[str, Any]], bytes], batch_partitions: int) -> int:
    try:
        msgs = drain(engine)
    except Exception as exc:
        log.error("partition %d: %s not handed out (%s)", partition, what,
                  type(exc).__name__, exc_info=exc)
        rt._internal_error(what)
        return 0
    if batch_partitions and len(msgs) > 1:
        groups: dict[int, tuple[bytes, list[dict[str, Any]]]] = {}
        for m in msgs:
            k = key(m)
            part = partition_for(k, batch_partitions)
            if part in groups:
                groups[part][1].append(m)
            else:
                groups[part] = (k, [m])
        for part, (k, group) in groups.items():
            await topic.send(key=k, value=orjson.dumps(group if len(group) > 1 else group[0]),
                             partition=part)
        return len(msgs)
    for m in msgs:
        await topic.send(key=key(m), value=orjson.dumps(m))
    return len(msgs)


#: key of a message that carries an input partition's time (not a view, login or finding)
PROGRESS = b"progress"


async def send_progress(rt: Runtime, topic: Any, partitions: int) -> None:
    """Each input partition's engine time (and whether it flushed at the end of its input) to
    every partition of ``topic``, after what it sent there (one producer: in order), so the
    engines there can take what every input partition has passed (``InOrder``)."""
    for p, st in list(rt.parts.items()):
        if st.max_ts is None:
            continue  # no event taken yet: its time says nothing
        value = orjson.dumps({"partition": p, "progress": st.engine.ctx.now,
                              "flushed": st.flushed})
        for part in range(partitions):
            await topic.send(key=PROGRESS, value=value, partition=part)


def input_partition(p: Any, partitions: int) -> int:
    """``p``, an input partition named by a message of an internal topic; ValueError when
    it is not one of the ``partitions``."""
    if type(p) is not int or not 0 <= p < partitions:
        raise ValueError("partition out of range")
    return p


def read_progress(value: bytes, partitions: int) -> tuple[int, float, bool]:
    """A ``PROGRESS`` message: (input partition, its engine time, flushed). ValueError (or
    a JSON, key or type error) for one that is not."""
    m = orjson.loads(value)
    return input_partition(m["partition"], partitions), float(m["progress"]), \
        m.get("flushed") is True


async def refuse(rt: Runtime, msg: Any, what: str, counter: str, reason: str,
                 exc: Exception) -> None:
    """A message of an internal topic that cannot be taken (``what``: its kind, for the
    log): logged by exception type only, counted as the internal error ``counter``,
    dead-lettered with ``reason``; the agent goes on."""
    log.warning("%s message not taken: %s", what, type(exc).__name__)
    rt._internal_error(counter)
    await rt.dead_letter(msg, reason, None, type(exc).__name__)


class SideEngines(PartitionEngines):
    """One engine per partition of the internal topic ``topic`` (declared here, raw bytes,
    the inputs' partition count), running ``detectors`` with the input runtime's salt and
    parameters, checkpointed to ``table``. The input runtime ``rt`` lends its metrics, GeoIP
    data, directory and state keys; alerts go out through it."""

    def __init__(self, app: faust.App, rt: Runtime, settings: Settings, topic: str,
                 table: str, detectors: tuple[str, ...], *, episodes: bool = False) -> None:
        self.rt = rt
        self.topic = app.topic(topic, key_serializer="raw", value_serializer="raw",
                               partitions=settings.partitions, internal=True,
                               retention=RETENTION)
        params = rt.config.params
        config = EngineConfig(detectors=detectors, salt=rt.config.salt,
                              reveal_victims=rt.config.reveal_victims,
                              victim_salt=rt.config.victim_salt,
                              max_entities=rt.config.max_entities,
                              max_state_bytes=rt.config.max_state_bytes,
                              timezone=rt.config.timezone,  # "auto": no logins here, +9 h
                              params={d: params[d] for d in detectors if d in params})
        if episodes:
            # the episode builders (issue 17.5) make the alerts: they take the input engines'
            # allow-list, verdict, incident and entity-page settings (issue 18)
            cfg = rt.config
            config = replace(config, allowlist=cfg.allowlist,
                             feedback_suppress=cfg.feedback_suppress,
                             feedback_watch=cfg.feedback_watch,
                             incident_window=cfg.incident_window,
                             incidents_max=cfg.incidents_max,
                             explain_alerts=cfg.explain_alerts,
                             explain_hours=cfg.explain_hours)
        # check_behind: a checkpoint the table restores behind the group's commits of this
        # topic (Faust's table recovery stops at the end offset Tansu reports, often low) is
        # replaced by the newest one read from the changelog itself, as for the input engines;
        # else the partition is sought back to the records between (``admit``) and those
        # fetched before the seek wait for them (seen after a SIGKILL restart: an episode
        # builder took nothing more in the 1.6 s its worker still ran; issue 17)
        super().__init__(app, settings, rt.metrics, topics=(topic,), table=table,
                         config=config, geo=rt.geo, directory=rt.directory,
                         state_keys=rt.state_keys, check_behind=(topic,))
        if episodes:  # the same list: verdicts read before a partition came here, replayed
            self.feedback_log = rt.feedback_log

    async def emit(self, alert: dict[str, Any]) -> None:
        await self.rt.emit(alert)

    async def take(self, event: Any) -> PartitionState | None:
        """The state of ``event``'s partition when the event is to be handled now; None for
        a record taken already, one that comes again after a hole, or one inside the restored
        checkpoint. The event is held for the ack of the next checkpoint either way."""
        msg = event.message
        st = self.state(msg.partition)
        if not await self.admit(st, msg):
            return None
        st.held.append(event)
        if msg.offset <= st.offsets.get(msg.topic, -1):
            return None
        st.offsets[msg.topic] = msg.offset
        st.dirty = True
        return st

    def touch_pages(self) -> None:
        """Keep the pages of episodes that saw repeats firing in Alertmanager; count the
        errors the engines caught inside themselves and the entities they evicted."""
        sender = self.rt.sender
        for st in self.parts.values():
            self._count_engine(st.engine)
            touched = st.engine.drain_touched()  # drained with or without a sender
            if sender is not None:
                for alert_id in touched:
                    sender.touch(alert_id)


async def take_held(engines: PartitionEngines, handle: Callable[[Any], Awaitable[None]],
                    event: Any) -> None:
    """``handle(event)`` under one hold of the engines' checkpoint lock: the message is booked
    (``SideEngines.take``), what it holds applied and what that gave sent (alerts, dead
    letters) before a checkpoint can cover it. A message carries several items (a JSON array
    of findings or views) and their alerts are sent one ``await`` at a time: a checkpoint
    between two of them would cover the message with some of its alerts not yet in the
    producer (a SIGKILL then loses them; the restored engine does not raise them again)."""
    async with engines._checkpoint_lock:
        await handle(event)


def wire(app: faust.App, settings: Settings, name: str, engines: SideEngines,
         handle: Callable[[Any], Awaitable[None]],
         before_shutdown: Callable[[], Awaitable[None]] | None = None) -> None:
    """Declare the agent ``accesswatch.<name>`` handing each event of the engines' topic to
    ``handle``, the engines' periodic checkpoint, and their rebalance and shutdown hooks
    (``before_shutdown`` runs first at shutdown)."""
    tname = engines.input_topics[0]

    @app.agent(engines.topic, name=f"accesswatch.{name}")
    async def side(stream: faust.StreamT) -> None:
        async for event in stream.noack().events():  # type: ignore[attr-defined]  # faust.Stream has noack(); the StreamT protocol does not declare it
            await take_held(engines, handle, event)

    @app.timer(settings.checkpoint_interval, name=f"accesswatch.{name}.checkpoint")
    async def checkpoint() -> None:
        await engines.checkpoint(periodic=True)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # Faust awaits async receivers; BaseSignal's annotation names only the plain-callable form
    async def on_revoked(app: faust.App, revoked: set[Any], **kw: Any) -> None:
        lost = {tp.partition for tp in revoked if tp.topic == tname}
        with contextlib.suppress(Exception):
            await engines.checkpoint(lost)
        engines.drop(lost)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # Faust awaits async receivers; BaseSignal's annotation names only the plain-callable form
    async def on_assigned(app: faust.App, assigned: set[Any], **kw: Any) -> None:
        mine = {tp.partition for tp in assigned if tp.topic == tname}
        engines.drop(set(engines.parts) - mine)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # Faust awaits async receivers; BaseSignal's annotation names only the plain-callable form
    async def on_shutdown(app: faust.App, **kw: Any) -> None:
        with contextlib.suppress(Exception):
            if before_shutdown is not None:
                await before_shutdown()
            await engines.checkpoint()
