"""Episodes across partitions: every finding about one entity meets in one episode builder.

With more than one partition (``attach``), the input engines do not turn their findings into
alerts (``EngineConfig.relay_kinds``, every entity kind): after each input event and each
watermark tick the runtime drains them (``Engine.drain_findings``) and

- sends each to the internal topic ``<app_id>-findings`` (same partition count as the
  inputs, short retention), JSON, keyed by a salted digest of its detector, entity kind and
  entity (``detectors.episodes.finding_key``): every finding of one episode lands in one
  partition, whichever input partition made it. The findings of one drain bound for one
  partition go as one message, a JSON array in drain order (``send_drained``); a builder
  takes each on its own (a bad one is dead-lettered alone, ``aw-index``);
- sends, at each watermark tick, each input partition's engine time to **every** partition
  of that topic (after its findings: one producer, so in order on each partition), with, to
  the partition of each, the episodes on which it has put off a verdict (``holds``: a read
  waiting for its partition's login stream; ``Engine.relay_report``, h-par6);
- one **episode builder** per partition of that topic (``detectors.episodes.EpisodeBuilder``
  on an engine that runs no detector) holds the findings and makes episodes and alert ids in
  engine-time order once every input partition has passed them, but the findings of a held
  episode, which wait until the verdict is made (and stamped with the time ``replay`` makes
  it at): everything else goes on. Alerts go to ``access-alerts`` like the others;
- a finding a builder makes about an episode of another builder (an observation folded
  there: overseas_server's account ``info``, made where the subnet's uses are counted) is
  sent on to that builder's partition (``"builder": k``, stamped with the observation's
  time) once the message that made it is handled, and each builder's time
  (``EpisodeBuilder.passed``) to every other partition at each watermark tick: a builder
  takes a finding once every input partition *and every other builder* has passed it
  (h-par8). At the end of input (every partition flushed) the builders take all they hold:
  a finding sent on then joins its episode out of order (``Engine._episode_for``).

This re-sends findings, not events: ~10,000 for the first 100,000 events of the simulated
day (spread_access's observations, overseas_server's and unissued_session's findings), in
~280 messages, plus one time report per input partition, builder partition and tick. A partition that
flushed at the end of its input (``--idle-flush``) says so; once all have, the builders let
every finding go. Until every input
partition has reported once (one that has taken no event yet reports nothing), the builders
hold what they receive.

Consistency is the side engines' (``streams.side``): a builder and the offset it has consumed
are checkpointed together (table ``<app_id>-episode-checkpoints``), held findings and all;
findings not yet sent are part of the sending engine's checkpoint and are sent after a
restore; a finding sent again carries the same ``origin`` and ``seq`` and is dropped
(``duplicate_finding``).

With one partition nothing changes: the input engine makes its own alerts (as ``replay``).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import faust
import orjson
from prometheus_client import Counter, Gauge

from detectors.engine import Engine
from detectors.episodes import (
    OBSERVERS,
    RELAY_KINDS,
    EpisodeBuilder,
    finding_key,
    hold_key,
    holds_from_message,
    holds_message,
)
from streams.batch import BatchItem, partition_for
from streams.runtime import Runtime
from streams.settings import Settings
from streams.side import PROGRESS, SideEngines, send_drained, wire

log = logging.getLogger("accesswatch.episodes")

INVALID = "invalid_finding"


def findings_topic(settings: Settings) -> str:
    return f"{settings.app_id}-findings"


class Episodes:
    """What create_app wires: the findings topic, the sends, the episode builders."""

    def __init__(self, app: faust.App, rt: Runtime, settings: Settings) -> None:
        self.rt = rt
        self.partitions = settings.partitions
        self.engines = SideEngines(app, rt, settings, findings_topic(settings),
                                   "episode-checkpoints", OBSERVERS, episodes=True)
        self.topic = self.engines.topic
        self.salt = rt.config.salt
        self.sent = 0
        reg = rt.metrics.registry
        # one worker: held == 0 and taken >= sent means every finding became an alert or a
        # repeat (``demo`` waits for it before its summary)
        self.sent_total = Counter("accesswatch_findings_sent", "Findings the input engines "
                                  "sent to the episode builders (and the builders to each "
                                  "other)", registry=reg)
        self.taken_total = Counter("accesswatch_findings_taken", "Findings the episode "
                                   "builders took (repeats of a restored sender dropped)",
                                   registry=reg)
        self.held = Gauge("accesswatch_findings_held", "Findings the episode builders hold "
                          "until every input partition's time has passed them", registry=reg)

    async def send(self, partition: int) -> None:
        """Send the findings partition ``partition``'s engine made."""
        def drain(engine: Engine) -> list[dict[str, Any]]:
            msgs = engine.drain_findings()
            for m in msgs:
                m["partition"] = partition
            return msgs

        n = await send_drained(self.rt, partition, self.topic, "findings", Engine.has_findings,
                               drain, lambda m: finding_key(m, self.salt),
                               batch_partitions=self.partitions)  # h-wone: one per partition
        self.sent += n
        self.sent_total.inc(n)

    async def tick(self) -> None:
        """After the watermark: send what it made, then every input partition's time."""
        await self.engines.watch_delivery()
        for p, st in list(self.rt.parts.items()):
            # the time first, then the findings: every finding made after this drain is
            # made at this time or later (an engine's time never goes back), but a verdict
            # put off, stamped at or after the hold reported on its episode (h-par6)
            now, holds = st.engine.relay_report()
            flushed = st.flushed
            await self.send(p)
            if st.max_ts is None:
                continue  # no event taken yet: its time says nothing
            mine: dict[int, dict[tuple[str, str, str], float]] = {}
            for key, at in holds.items():
                mine.setdefault(partition_for(hold_key(key, self.salt), self.partitions),
                                {})[key] = at
            value = orjson.dumps({"partition": p, "progress": now, "flushed": flushed})
            for k in range(self.partitions):
                held = mine.get(k)
                await self.topic.send(key=b"progress", partition=k, value=value if not held
                                      else orjson.dumps({"partition": p, "progress": now,
                                                         "flushed": flushed,
                                                         "holds": holds_message(held)}))
        await self.send_builder_times()
        self.engines.touch_pages()
        self._count_held()
        await self._closes()

    async def send_builder_times(self) -> None:
        """Each builder's time (``EpisodeBuilder.passed``) to every other builder partition,
        after what it sent them (``_forward``, one producer: in order): they take no finding
        it could still send them one before (h-par8). With ``"folded"`` when a hold keeps
        an observation of its back (``EpisodeBuilder.folded``, h-par9): they take their
        observers' findings only past that."""
        for k, st in list(self.engines.parts.items()):
            bd = EpisodeBuilder(st.engine, self.partitions)
            t = bd.passed()
            if t == -math.inf:
                continue
            folded = bd.folded()  # (h-par9: an observation a hold keeps is folded later)
            value = orjson.dumps({"builder": k, "progress": t} if folded >= t
                                 else {"builder": k, "progress": t, "folded": folded})
            for j in range(self.partitions):
                if j != k:
                    await self.topic.send(key=PROGRESS, partition=j, value=value)

    async def _closes(self) -> None:
        """OCSF out (issue 18.5): a Close for each episode a builder has ended, at the time
        every input partition has passed (the builders own the relayed episodes)."""
        findings = self.rt.findings
        if findings is None:
            return
        for st in list(self.engines.parts.values()):
            passed = EpisodeBuilder(st.engine, self.partitions).passed()
            if passed == -math.inf:
                continue
            for f in findings.ended(st.engine, now=passed):
                key = f["finding_info"]["uid"].encode()
                await self.rt.alerts_topic.send(key=key, value=orjson.dumps(f))

    def _count_held(self) -> None:
        self.held.set(sum(EpisodeBuilder(st.engine, self.partitions).pending
                          for st in self.engines.parts.values()))

    async def on_message(self, event: Any) -> None:
        """One message of the findings topic: a finding to hold, a JSON array of them (the
        findings of one drain for this partition, ``send_drained``), or a partition's time."""
        st = await self.engines.take(event)  # held for the builders' checkpoint
        if st is None:
            return
        msg = event.message
        try:
            m = orjson.loads(msg.value)
        except Exception as exc:  # a bad message must not kill the agent
            await self._refuse(msg, exc)
            return
        if type(m) is not list:
            await self._take_one(st, msg, m)
        else:
            n = len(m)
            for i, one in enumerate(m):  # each on its own: a bad one is dead-lettered alone
                await self._take_one(st, msg, one, (i, n))
        await self._forward(msg.partition, st)

    def _route(self, f: Any) -> int:
        """The builder partition of finding ``f``'s episode."""
        return partition_for(hold_key((f.detector, f.entity_kind, f.entity_id), self.salt),
                             self.partitions)

    async def _forward(self, k: int, st: Any) -> None:
        """Send on what builder ``k`` made about the other builders' episodes (h-par8): in
        the message's hold of the checkpoint lock, so a checkpoint covers the builder with
        them either in its outbox (sent again after a restore, dropped there as repeats) or
        in the producer."""
        if not st.engine.has_findings():
            return
        msgs = st.engine.drain_findings()
        groups: dict[int, list[dict[str, Any]]] = {}
        for m in msgs:
            m["builder"] = k
            groups.setdefault(partition_for(finding_key(m, self.salt), self.partitions),
                              []).append(m)
        for part, group in groups.items():
            await self.topic.send(key=finding_key(group[0], self.salt), partition=part,
                                  value=orjson.dumps(group if len(group) > 1 else group[0]))
        self.sent += len(msgs)
        self.sent_total.inc(len(msgs))

    async def _refuse(self, msg: Any, exc: Exception) -> None:
        log.warning("findings message not taken: %s", type(exc).__name__)
        self.rt._internal_error("findings")
        await self.rt.dead_letter(msg, INVALID, None, type(exc).__name__)

    async def _take_one(self, st: Any, msg: Any, m: Any,
                        place: tuple[int, int] | None = None) -> None:
        """One finding or partition time of a findings message (``place``: its index in
        the message's array and the array's length; a bad one is dead-lettered as the
        batch's item, with ``aw-index``)."""
        builder = EpisodeBuilder(st.engine, self.partitions, msg.partition, self._route)
        try:
            if place is not None and "progress" in m:
                raise ValueError("a partition's time inside an array")
            if "builder" in m:  # another builder's finding or time (h-par8)
                alerts = self._from_builder(builder, msg.partition, m)
            else:
                alerts = self._from_input(builder, st, m)
        except Exception as exc:  # a bad message must not kill the agent
            if place is not None:
                msg = BatchItem(msg, place[0], place[1], orjson.dumps(m))
            await self._refuse(msg, exc)
            return
        self._count_held()  # before the alerts: the demo reads held == 0 as done
        for a in alerts:
            await self.engines.emit(a)

    def _from_builder(self, builder: EpisodeBuilder, me: int, m: dict[str, Any]
                      ) -> list[dict[str, Any]]:
        j = m["builder"]
        if type(j) is not int or not 0 <= j < self.partitions or j == me:
            raise ValueError("builder out of range")
        if "progress" in m:
            folded = m.get("folded")
            if folded is not None and type(folded) not in (int, float):
                raise ValueError("a builder's fold time is not a number")
            return builder.advance_peer(j, float(m["progress"]),
                                        None if folded is None else float(folded))
        builder.add(m, j, builder=True)
        self.taken_total.inc()
        return builder.release()

    def _from_input(self, builder: EpisodeBuilder, st: Any, m: dict[str, Any]
                    ) -> list[dict[str, Any]]:
        p = m["partition"]
        if type(p) is not int or not 0 <= p < self.partitions:
            raise ValueError("partition out of range")
        if "progress" in m:
            now = float(m["progress"])
            if not math.isfinite(now):
                raise ValueError("progress is not a finite number")
            holds = holds_from_message(m.get("holds"), st.engine.config.max_entities)
            return builder.advance(p, now, m.get("flushed") is True, holds)
        builder.add(m, p)
        self.taken_total.inc()
        return builder.release()  # a cap reached: the oldest go on

    async def send_all(self) -> None:
        for p in list(self.rt.parts):
            await self.send(p)


def input_relay_kinds(settings: Settings) -> tuple[str, ...]:
    """The entity kinds whose findings the input engines hand to the episode builders:
    every kind with more than one partition, none with one (``Runtime(relay_kinds=...)``)."""
    return RELAY_KINDS if settings.partitions > 1 else ()


def attach(app: faust.App, rt: Runtime, settings: Settings) -> Episodes | None:
    """With more than one partition: declare the findings topic, its agent, the builders'
    checkpoints and rebalance hooks. ``rt`` was built with
    ``relay_kinds=input_relay_kinds(settings)``: its engines hand their findings out."""
    if settings.partitions <= 1:
        return None
    if rt.config.relay_kinds != RELAY_KINDS:
        raise ValueError("the episode builders need the input runtime built with "
                         "relay_kinds=input_relay_kinds(settings)")
    eps = Episodes(app, rt, settings)
    wire(app, settings, "episodes", eps.engines, eps.on_message, before_shutdown=eps.send_all)
    return eps
