"""One event stream split over N engines as the worker splits it, without a broker.

The events are split as the runtime splits them: logins by account, access by actor
(``streams.produce.classify`` + the Java partitioner ``partition_for``), identity changes to
every engine. With several partitions, as ``streams.app`` wires them:

- logins go on to a burst engine by source AS (``streams.bursts.source_key``), taken in
  engine-time order across input partitions (``detectors.episodes.InOrder``);
- bulk_lookup's views of sources and keys go to a scorer engine by family
  (``streams.combine.partial_key``), merged per entity and window before scoring
  (``detectors.bulk_lookup.ViewPool``);
- every finding goes to an episode builder by entity (``detectors.episodes.finding_key``);
  a finding a builder makes about another builder's episode (an observation folded there)
  goes on to that builder, which waits for every builder's time as well as every input
  partition's (``EpisodeBuilder(me=, route=)``, h-par8).

Pure and in one process: a fast check that a change of the detectors or the builders keeps
``demo --partitions N``'s alert ids equal to ``replay``'s (``tests/test_episodes_relay.py``,
``bench/parity_split.py``). What it does not model: the wall clock (a partition quiet past
``watermark_delay`` or ``idle_flush``), Kafka's delivery order between topics, rebalances.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from detectors import events as E
from detectors.bulk_lookup import ViewPool
from detectors.engine import Engine, EngineConfig
from detectors.episodes import (
    OBSERVERS,
    RELAY_KINDS,
    EpisodeBuilder,
    InOrder,
    finding_key,
    hold_key,
)
from streams.batch import partition_for
from streams.bursts import BURST_DETECTORS, source_key
from streams.combine import REMOTE_KINDS, partial_key
from streams.produce import classify

SALT = EngineConfig.salt

__all__ = ["replay", "run_split", "split"]


def split(events: Iterable[dict[str, Any]], parts: int) -> list[tuple[int, dict[str, Any]]]:
    """(input partition, event) in file order; an identity change once per partition; an
    event of no known kind is left out (the worker dead-letters it)."""
    out = []
    for ev in events:
        kind, key = classify(ev)
        if kind is None or not isinstance(key, bytes):
            continue
        for p in range(parts) if kind == "identity" else (partition_for(key, parts),):
            out.append((p, ev))
    return out


def replay(events: Iterable[dict[str, Any]], detectors: tuple[str, ...] | None = None,
           arrival: float | None = None) -> list[dict[str, Any]]:
    """What ``accesswatch replay`` raises: one engine of every event. ``arrival``: the wall
    clock the events are judged against (``future_ts``), as ``replay`` and the worker judge
    them when they read them; None: no such check."""
    eng = Engine(EngineConfig(detectors=detectors))
    out: list[dict[str, Any]] = []
    for obj in events:
        out.extend(eng.process_obj(obj, None, arrival)[0])
    out.extend(eng.flush())
    return out


def run_split(events: list[dict[str, Any]], parts: int,
              detectors: tuple[str, ...] | None = None, *, relay: bool = True,
              combine: bool = True, skew: bool = False, views_in_order: bool = True,
              arrival: float | None = None) -> list[dict[str, Any]]:
    """The alerts of ``parts`` input engines, burst engines, bulk_lookup scorers and episode
    builders, as the runtime wires them. ``relay``: findings meet in the builders (else each
    input engine alerts itself, the behaviour before issue 17.5); ``combine``: bulk_lookup's
    views of sources and keys are scored by entity (as the worker always does). ``skew``:
    partition 0 takes all its events before the others start (a partition catching up),
    else the partitions take events in file order. ``arrival``: as for :func:`replay`.
    ``views_in_order``: the scorers merge one window's
    views of all input partitions before scoring them (``detectors.bulk_lookup.ViewPool``,
    ``streams.combine`` with more than one partition), else score them as they come."""
    if detectors is None:
        from detectors.engine import discover

        detectors = tuple(discover())
    bursts = tuple(d for d in detectors if d in BURST_DETECTORS) if parts > 1 else ()
    inputs = tuple(d for d in detectors if d not in bursts)
    kinds = RELAY_KINDS if relay and parts > 1 else ()
    remote = REMOTE_KINDS if combine and "bulk_lookup" in detectors else ()
    engines = [Engine(EngineConfig(detectors=inputs, relay_kinds=kinds, remote_kinds=remote))
               for _ in range(parts)]
    burst = [Engine(EngineConfig(detectors=bursts)) for _ in range(parts)] if bursts else []
    orders = [InOrder(b, parts) for b in burst]
    scorers = [Engine(EngineConfig(detectors=("bulk_lookup",))) for _ in range(parts)
               ] if remote else []
    pools = [ViewPool(s, parts) for s in scorers] if views_in_order and parts > 1 else []
    seq = [0] * parts

    def route(f: Any) -> int:
        return partition_for(hold_key((f.detector, f.entity_kind, f.entity_id), SALT), parts)

    builders = [EpisodeBuilder(Engine(EngineConfig(detectors=OBSERVERS)), parts, k, route)
                for k in range(parts)] if kinds else []
    alerts: list[dict[str, Any]] = []

    def take(b: int, objs: list[Any]) -> None:
        for obj in objs:
            alerts.extend(burst[b].process_obj(obj)[0])

    def ship(p: int, flushed: bool = False) -> None:
        eng = engines[p]
        if scorers and eng.has_partials():
            for m in eng.drain_partials():
                s = partition_for(partial_key(m, SALT), parts)
                if pools:
                    pools[s].add(p, m)
                else:
                    alerts.extend(scorers[s].observe_partial(m))
        for s, pool in enumerate(pools):
            pool.advance(p, eng.ctx.now, flushed)
            for m in pool.release():
                alerts.extend(scorers[s].observe_partial(m))
        for b, order in enumerate(orders):
            take(b, order.advance(p, eng.ctx.now))
        if not builders:
            return
        now, holds = eng.relay_report()  # h-par6: the episodes a verdict put off holds
        for m in eng.drain_findings():
            builders[partition_for(finding_key(m, SALT), parts)].add(m, p)
        mine: list[dict[tuple[str, str, str], float]] = [{} for _ in builders]
        for key, at in holds.items():
            mine[partition_for(hold_key(key, SALT), parts)][key] = at
        for k, bd in enumerate(builders):
            alerts.extend(bd.advance(p, now, holds=mine[k]))
        forward()

    def forward() -> None:
        """Each builder's findings about the others' episodes, then its time (h-par8)."""
        for j, bd in enumerate(builders):
            for m in bd.engine.drain_findings():
                builders[partition_for(finding_key(m, SALT), parts)].add(m, j, builder=True)
            t = bd.passed()
            if t == -math.inf:
                continue
            folded = bd.folded()  # (h-par9: what a hold keeps is folded later)
            for k, other in enumerate(builders):
                if k != j:
                    alerts.extend(other.advance_peer(j, t, folded))

    order = split(events, parts)
    if skew:
        order = [x for x in order if x[0] == 0] + [x for x in order if x[0] != 0]
    for p, obj in order:
        eng = engines[p]
        ev = E.decode_obj(obj, None, eng.policy, arrival)
        if isinstance(ev, E.Rejection):
            eng.rejected[ev.reason] += 1
            continue
        out, rej = eng.process(ev)
        alerts.extend(out)
        if burst and ev.kind == E.LOGIN and rej is None:
            b = partition_for(source_key(ev, SALT), parts)
            seq[p] += 1
            orders[b].add(eng.ctx.now, ev.ts, p, seq[p], obj)
            take(b, orders[b].release())
        ship(p)
    for p, eng in enumerate(engines):
        alerts.extend(eng.flush())
        ship(p, flushed=True)
    for b, be in enumerate(burst):
        take(b, orders[b].flush())
        alerts.extend(be.flush())
    for s, scorer in enumerate(scorers):
        for m in pools[s].release(everything=True) if pools else ():
            alerts.extend(scorer.observe_partial(m))
        alerts.extend(scorer.flush())
    while True:  # one engine's order across the builders: what one makes may go to another
        heads = [(h, k) for k, bd in enumerate(builders) if (h := bd.head()) is not None]
        if not heads:
            return alerts
        alerts.extend(builders[min(heads)[1]].take_one())
        forward()
