"""Login bursts across partitions: every login of one source AS meets in one engine.

credential_stuffing and password_spray count failed logins per source address, /24 (/48)
subnet and AS. Logins are keyed by account, so with several partitions a source's attempts
are spread over all of them and each partition's engine would see a 1/P share: an address
failing on 16 accounts in ten minutes would look like 8 and 8 to two partitions, under the
threshold of 10. With more than one partition (``attach``):

- the input engines do not run those two detectors; after an input engine has taken a login
  (not a duplicate), the runtime sends its original bytes to the internal topic
  ``<app_id>-logins-by-source``, keyed by a salted digest of its AS (the AS number the engine
  enriched it with, else the AS name or country, as ``detectors._burst`` groups it): an
  address, its subnet and its AS land in one partition;
- one **burst engine** per partition of that topic runs credential_stuffing and password_spray
  on the logins it receives, with the runtime's partition state, checkpoints (table
  ``<app_id>-burst-checkpoints``) and acks, as the bulk_lookup scorers do (``streams.combine``).

This re-sends every login once (not every event: logins are a few percent of the traffic,
access events the rest), where a combiner's views would need the burst trackers' exact
per-window account sets to be mergeable. account_takeover stays in the input engines (its
profile is per account); its "inside a stuffing burst" path judges against the burst tracker
of its own partition.

With one partition nothing changes: the input engine runs every detector (the same alert_ids
as ``replay``). A re-sent login reaches its burst engine milliseconds after its input engine
took it; live that is nothing, but during a catch-up the input partitions feed the burst
engines at their own paces, so a burst engine's logins are in event-time order per input
partition, not across them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from datetime import timedelta
from typing import Any

import faust

from detectors import events as E
from detectors.engine import Engine, EngineConfig, discover
from streams.app import INTERNAL_ERROR, Runtime
from streams.settings import Settings

log = logging.getLogger("accesswatch.bursts")

#: the detectors that count logins per source: they run on the burst engines
BURST_DETECTORS = ("credential_stuffing", "password_spray")
RETENTION = timedelta(days=1)  # logins are consumed within seconds; this outlives a restart


def bursts_topic(settings: Settings) -> str:
    return f"{settings.app_id}-logins-by-source"


def source_key(ev: Any, salt: str = EngineConfig.salt) -> bytes:
    """The burst partition key of a login the engine has enriched (``ev.net``): a salted
    digest of its AS, as ``detectors._burst`` names the AS level (number, else name, else
    country). No raw address or AS goes into the key."""
    net = ev.net
    asn = net.asn if net.asn is not None else net.org or net.country
    return hashlib.blake2b(str(asn).encode(), digest_size=8, key=salt.encode()).hexdigest().encode()


def burst_detectors(settings: Settings) -> tuple[str, ...]:
    """The burst detectors this worker runs (none when ``--detectors`` leaves them out)."""
    wanted = settings.detectors or tuple(discover())
    return tuple(d for d in BURST_DETECTORS if d in wanted)


class BurstEngines(Runtime):
    """One burst engine per partition of the logins-by-source topic, with the Runtime's
    partition state, checkpoints and acks (its own table); alerts and metrics are ``rt``'s."""

    def __init__(self, app: faust.App, rt: Runtime, settings: Settings,
                 detectors: tuple[str, ...]) -> None:
        # Not Runtime.__init__: the topics, metrics and Alertmanager sender are ``rt``'s.
        self.app = app
        self.settings = settings
        self.metrics = rt.metrics
        self.names = rt.names
        self.rt = rt
        self.input_topics = (bursts_topic(settings),)
        self.config = EngineConfig(
            detectors=detectors, salt=rt.config.salt,
            params={d: rt.config.params[d] for d in detectors if d in rt.config.params})
        self.geo = rt.geo
        self.directory = rt.directory
        self.identity_log = []
        self.parts = {}
        self.table = app.Table("burst-checkpoints", default=None, key_type=bytes,
                               value_type=bytes, partitions=settings.partitions)
        self._checkpoint_lock = asyncio.Lock()
        self.checkpoints = 0
        self.checkpoint_bytes = 0

    def _fresh_engine(self) -> Engine:
        engine = Engine(self.config, geo=self.geo)
        engine.ctx.directory = self.directory
        return engine

    async def emit(self, alert: dict[str, Any]) -> None:
        await self.rt.emit(alert)


class Bursts:
    """What create_app wires: the logins-by-source topic, the sends, the burst engines."""

    def __init__(self, app: faust.App, rt: Runtime, settings: Settings,
                 detectors: tuple[str, ...]) -> None:
        self.rt = rt
        self.name = bursts_topic(settings)
        self.topic = app.topic(self.name, key_serializer="raw", value_serializer="raw",
                               partitions=settings.partitions, internal=True,
                               retention=RETENTION)
        self.engines = BurstEngines(app, rt, settings, detectors)
        self.salt = rt.config.salt
        self.sent = 0
        # the input engines created from now on leave these detectors to the burst engines
        rest = tuple(d for d in (rt.config.detectors or tuple(discover())) if d not in detectors)
        rt.config.detectors = rest

    async def send(self, msg: Any, ev: Any) -> None:
        """Send a login an input engine has taken to the burst engine of its source."""
        await self.topic.send(key=source_key(ev, self.salt), value=msg.value)
        self.sent += 1

    async def on_login(self, event: Any) -> None:
        """One message of the logins-by-source topic: process it (once) on its burst engine."""
        eng = self.engines
        msg = event.message
        st = eng.state(msg.partition)
        if not await eng.admit(st, msg):
            return  # a record taken already, or one that comes again after a hole
        st.held.append(event)  # acked by the burst engines' checkpoint
        if msg.offset <= st.offsets.get(msg.topic, -1):
            return  # already inside the restored checkpoint
        st.offsets[msg.topic] = msg.offset
        st.dirty = True
        try:
            ev = E.decode(msg.value, E.LOGIN)
            if isinstance(ev, E.Rejection):  # the input engine took it: cannot happen
                raise ValueError(ev.reason)
            alerts, _ = st.engine.process(ev)
        except Exception as exc:  # a detector bug must not kill the agent
            log.exception("burst engine failed on a login")
            await self.rt.dead_letter(msg, INTERNAL_ERROR, None, type(exc).__name__)
            return
        for a in alerts:
            await eng.emit(a)

    async def tick(self) -> None:
        """After the watermark: fetch again a stalled partition; keep pages firing."""
        await self.engines.watch_delivery()
        sender = self.rt.sender
        if sender is not None:
            for st in self.engines.parts.values():
                for alert_id in st.engine.drain_touched():
                    sender.touch(alert_id)

    async def checkpoint(self, partitions: Any = None, periodic: bool = False) -> int:
        return await self.engines.checkpoint(partitions, periodic=periodic)


def attach(app: faust.App, rt: Runtime, settings: Settings) -> Bursts | None:
    """With more than one partition and a burst detector on: declare the logins-by-source
    topic, its agent, the burst engines' checkpoints and rebalance hooks."""
    detectors = burst_detectors(settings)
    if settings.partitions <= 1 or not detectors:
        return None
    bursts = Bursts(app, rt, settings, detectors)

    @app.agent(bursts.topic, name="accesswatch.bursts")
    async def burst(stream: faust.StreamT) -> None:
        async for event in stream.noack().events():
            await bursts.on_login(event)

    @app.timer(settings.checkpoint_interval)
    async def checkpoint_bursts() -> None:
        await bursts.checkpoint(periodic=True)

    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: set[Any], **kw: Any) -> None:
        lost = {tp.partition for tp in revoked if tp.topic == bursts.name}
        with contextlib.suppress(Exception):
            await bursts.checkpoint(lost)
        bursts.engines.drop(lost)

    @app.on_partitions_assigned.connect
    async def on_assigned(app: faust.App, assigned: set[Any], **kw: Any) -> None:
        mine = {tp.partition for tp in assigned if tp.topic == bursts.name}
        bursts.engines.drop(set(bursts.engines.parts) - mine)

    @app.on_before_shutdown.connect
    async def on_shutdown(app: faust.App, **kw: Any) -> None:
        with contextlib.suppress(Exception):
            await bursts.checkpoint()

    return bursts
