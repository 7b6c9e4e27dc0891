"""The bulk_lookup combiner across partitions: window views go where one entity's views meet.

Each input partition's engine counts distinct accounts per source IP, subnet, ASN and signing
key over its own share of the traffic (logins are keyed by account, access by actor, so a
source's requests are spread over every partition). With ``EngineConfig.remote_kinds`` set
(:data:`REMOTE_KINDS`, given to the runtime when it is built), the engine does not score
those views itself: at each window close (or burst) it hands them out (``Engine.drain_partials``) and this module

- sends them to the internal topic ``<app_id>-partials`` (``ACCESSWATCH_TOPIC_PARTIALS``;
  same partition count as the inputs, short retention), JSON, key ``family|digest(family)``
  (:func:`partial_key`): every view of sources, subnets and ASes lands in one partition,
  every view of keys in one (their peer groups and anomaly model are learnt from all of
  them, as one engine learns them). Sent after each
  processed input event and each watermark tick. A view is a few hundred bytes of counts and
  salted digests: about one message per entity per window and worker, not one per event;
- scores them there with one **scorer engine per partials partition** (bulk_lookup only):
  ``Engine.observe_partial`` folds the view into the entity's hour, day and coverage sketches
  (unions of salted digests: nothing counted twice), and the usual episodes and alert_ids
  apply. Alerts go to ``access-alerts`` like the others.

Actor views go to a scorer of their own family too: an actor's traffic is whole in one
partition (data-access is keyed by actor), but the peer groups and the anomaly model its views
are judged against are learnt from every actor, as one engine learns them.

Consistency, the runtime's usual at-least-once recipe, reused (``PartitionEngines.state`` and
``PartitionEngines.checkpoint``): a scorer engine and the partials offset it has consumed are
checkpointed together (table ``<app_id>-partials-checkpoints``); the partials messages stay
unacked until that checkpoint is flushed; after a restart, messages at or below the checkpoint
offset are skipped. Views not yet sent are part of the sending engine's checkpoint (its outbox)
and are sent after a restore; views a restored engine sends again carry the same ``origin`` and
``seq`` and the scorer drops them (``duplicate_partial``).

With one partition there is no combiner (``input_remote_kinds`` is empty): the input engine
scores its views in place, as ``replay`` does (same alert_ids). With several, the views of one
window are held until every input partition has closed it, then merged per entity and scored
in one engine's order (``detectors.bulk_lookup.ViewPool``): a window's view is scored once, on
all its traffic, with the time of its last event, as ``replay`` scores it. The cost: with
several partitions a source's or key's page waits for the slowest input partition to close the
window (a view of a later window from it, or its time ``access_quiet`` past the window's end),
and a burst reported mid-window is judged with its window.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import faust
import orjson
from prometheus_client import Gauge

from detectors.bulk_lookup import ViewPool
from detectors.engine import Engine, EngineConfig
from streams.batch import BatchItem
from streams.runtime import Runtime
from streams.settings import Settings
from streams.side import (
    PROGRESS,
    SideEngines,
    input_partition,
    read_progress,
    refuse,
    send_drained,
    send_progress,
    wire,
)

log = logging.getLogger("accesswatch.combine")

#: the entity kinds whose views are scored where all workers' views meet
REMOTE_KINDS = ("src_ip", "subnet", "asn", "key", "actor")
INVALID = "invalid_partial"


def partials_topic(settings: Settings) -> str:
    """``ACCESSWATCH_TOPIC_PARTIALS``, else ``<app_id>-partials`` (internal to the group)."""
    return settings.topics.partials or f"{settings.app_id}-partials"


def input_remote_kinds(settings: Settings) -> tuple[str, ...]:
    """The entity kinds the input engines hand out to the combiner: ``REMOTE_KINDS`` when
    bulk_lookup runs on more than one partition, none otherwise (``Runtime(remote_kinds=...)``).
    With one partition every view of an entity is made by the one input engine: it scores them
    in place, as ``replay`` does, instead of sending them through Kafka to a scorer that takes
    them in the same order (measured: ~20% of a batched worker's CPU, docs/benchmarks.md
    "h-wone")."""
    if settings.partitions <= 1:
        return ()
    return REMOTE_KINDS if "bulk_lookup" in (settings.detectors or ("bulk_lookup",)) else ()


#: the views that meet in one scorer: the entities whose peer groups and anomaly model one
#: engine of every event shares (sources, subnets and ASes; keys)
FAMILIES = {"src_ip": "source", "subnet": "source", "asn": "source", "key": "key",
            "actor": "actor", "countries": "source"}


def partial_key(msg: dict[str, Any], salt: str = EngineConfig.salt) -> bytes:
    """``family|digest``: the views of one family (:data:`FAMILIES`) share a partition, so
    its scorer learns the peer groups and the model from all of them, as one engine does
    (issue 17 item 5); the key holds no raw id."""
    kind = str(msg["partial"]["kind"])
    fam = FAMILIES.get(kind, kind)
    h = hashlib.blake2b(fam.encode(), digest_size=8, key=salt.encode())
    return f"{fam}|{h.hexdigest()}".encode()


class Combine:
    """What create_app wires: the partials topic, the sends, the scorers."""

    def __init__(self, app: faust.App, rt: Runtime, settings: Settings) -> None:
        self.rt = rt
        self.name = partials_topic(settings)
        # one scorer engine per partition of the partials topic (bulk_lookup only)
        self.scorers = SideEngines(app, rt, settings, self.name, "partials-checkpoints",
                                   ("bulk_lookup",))
        self.topic = self.scorers.topic
        self.salt = rt.config.salt
        self.sent = 0
        self.partitions = settings.partitions
        self.held = Gauge("accesswatch_partials_held", "Window views the bulk_lookup scorers "
                          "hold until every input partition has closed their window",
                          registry=rt.metrics.registry)

    # ---- sending ---------------------------------------------------------------------------
    async def send(self, partition: int) -> None:
        """Send the views partition ``partition``'s engine handed out, each stamped with the
        input partition (the scorers merge a window's views once every input partition has
        closed it, ``detectors.bulk_lookup.ViewPool``)."""

        def stamp(m: dict[str, Any]) -> bytes:
            m["from"] = {"partition": partition}
            return partial_key(m, self.salt)

        # the views of one drain for one scorer partition go as one message (a JSON array,
        # in drain order): one Kafka message each cost the sending and the receiving worker
        # Faust's per-message work (docs/benchmarks.md, "h-mw")
        self.sent += await send_drained(self.rt, partition, self.topic, "partials",
                                        Engine.has_partials, Engine.drain_partials, stamp,
                                        batch_partitions=self.partitions)

    async def send_all(self) -> None:
        for p in list(self.rt.parts):
            await self.send(p)

    # ---- scoring ---------------------------------------------------------------------------
    async def on_partial(self, event: Any) -> None:
        """One message of the partials topic: a view, a JSON array of views (those of one
        drain for this partition, ``send_drained``; each taken on its own, a bad one
        dead-lettered alone with its index), or an input partition's time. With more
        than one partition a window's views are held until every input partition has closed
        the window, then merged per entity and scored in one engine's order
        (``detectors.bulk_lookup.ViewPool``); with one, as they come (they come in order)."""
        st = await self.scorers.take(event)  # held for the scorers' checkpoint
        if st is None:
            return  # taken already, or inside the restored checkpoint
        msg = event.message
        pool = ViewPool(st.engine, self.partitions)
        bad: list[tuple[int, int, Any, Exception]] = []
        try:
            if msg.key == PROGRESS:
                pool.advance(*read_progress(msg.value, self.partitions))
                views = pool.release()
            else:
                m = orjson.loads(msg.value)
                if type(m) is list:  # every view added before an await (the checkpoint)
                    for i, one in enumerate(m):
                        try:
                            pool.add(input_partition(one["from"]["partition"],
                                                     self.partitions), one)
                        except Exception as err:  # this view alone (below)
                            bad.append((i, len(m), one, err))
                    views = pool.release()
                else:
                    head = m.get("from") if self.partitions > 1 else None
                    if head is None:
                        views = [m]
                    else:
                        pool.add(input_partition(head["partition"], self.partitions), m)
                        views = pool.release()
        except Exception as exc:  # a bad message must not kill the agent
            await refuse(self.rt, msg, "partials", "partials", INVALID, exc)
            return
        for i, n, one, problem in bad:  # each alone, as the batch's item
            await refuse(self.rt, BatchItem(msg, i, n, orjson.dumps(one)), "partials",
                         "partials", INVALID, problem)
        self._count_held()
        for v in views:
            await self._score(st, msg, v)

    async def _score(self, st: Any, msg: Any, view: dict[str, Any] | bytes) -> None:
        try:
            m = orjson.loads(view) if isinstance(view, bytes) else view
            alerts = st.engine.observe_partial(m)
        except Exception as exc:  # a bad view must not kill the agent
            log.warning("partials message not scored: %s", type(exc).__name__)
            self.rt._internal_error("partials")
            await self.rt.dead_letter(msg, INVALID, None, type(exc).__name__)
            return
        for a in alerts:
            await self.scorers.emit(a)

    def _count_held(self) -> None:
        self.held.set(sum(ViewPool(s.engine, self.partitions).pending
                          for s in self.scorers.parts.values()))

    async def tick(self) -> None:
        """After the watermark: send what it closed, then (more than one partition) each
        input partition's time to every scorer; keep the scorers' pages firing."""
        await self.scorers.watch_delivery()
        await self.send_all()
        if self.partitions > 1:
            await send_progress(self.rt, self.topic, self.partitions)
        tracked: dict[str, int] = {}
        for st in [*self.rt.parts.values(), *self.scorers.parts.values()]:
            for k, v in st.engine.tracked().items():
                tracked[k] = tracked.get(k, 0) + v
        self.scorers.touch_pages()
        for k, v in tracked.items():
            self.rt.metrics.tracked_entities.labels(kind=k).set(v)


def attach(app: faust.App, rt: Runtime, settings: Settings) -> Combine | None:
    """With more than one partition and bulk_lookup on: declare the partials topic, its agent,
    the scorers' checkpoints and rebalance hooks. ``rt`` was built with
    ``remote_kinds=input_remote_kinds(settings)``: its engines hand those views out instead of
    scoring them."""
    if not input_remote_kinds(settings):
        return None
    if rt.config.remote_kinds != REMOTE_KINDS:
        raise ValueError("the input runtime scores the remote kinds itself: build it with "
                         "remote_kinds=input_remote_kinds(settings)")
    comb = Combine(app, rt, settings)
    wire(app, settings, "combine", comb.scorers, comb.on_partial,
         before_shutdown=comb.send_all)
    return comb
