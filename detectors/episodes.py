"""Where the findings of several engines meet before they become episodes and alert ids.

With several input partitions, each partition's engine sees the events of its own accounts
and actors. A finding about another entity (a signing key, a source address, a subnet, an
AS, a session, an actor whose events reach several partitions) is made by every partition
that sees it: if each engine turned it into an episode, the same key would page once per
partition, repeats inside an episode would not be suppressed across partitions, and each
episode's alert_id (a digest of its first finding's time) would depend on which partition
saw the entity first (measured: ``demo --partitions 4`` and ``replay`` of one file had no
alert id in common).

So an input engine with ``EngineConfig.relay_kinds`` hands those findings out
(``Engine.drain_findings``, each stamped with the engine time it was made at), the runtime
sends them keyed by their entity (:func:`finding_key`), and one :class:`EpisodeBuilder` per
partition of that topic makes the episodes and alert ids, with the engine's own code
(``Engine._alerts``): one place per entity, as a single engine of every event would.

Order matters: an episode's alert_id is the time of the finding that opened it, and a repeat
is suppressed or escalates depending on what came before. A single engine (``replay``) takes
findings in the order it makes them, which is the order of its engine time. The builder
holds the findings it receives and takes them in that order, (engine time made at, event
time, partition, sequence), only once every input partition has said its engine time passed
(:meth:`EpisodeBuilder.advance`; an engine's time never goes back, so nothing earlier can
come from it): a partition that runs ahead (a catch-up) waits for the others instead of
opening episodes at its own times.

Pure: no Kafka, no clocks. The builder's state (held findings, each partition's time, the
senders seen) lives on its engine, so the runtime's checkpoints cover it.

>>> from detectors.base import Finding
>>> from detectors.engine import Engine, EngineConfig
>>> a, b = (Engine(EngineConfig(detectors=(), relay_kinds=("key",))) for _ in range(2))
>>> f = Finding("revoked_credential", "key", "k1", "critical", 1.0, "s", [], ["e1"], 100.0)
>>> a._alerts([f]), b._alerts([replace_ts(f, 90.0)])  # relayed, not alerted
([], [])
>>> builder = EpisodeBuilder(Engine(EngineConfig(detectors=())), partitions=2)
>>> for m in a.drain_findings() + b.drain_findings():
...     builder.add(m, 0 if m["finding"]["ts"] == 100.0 else 1)
>>> builder.advance(0, 100.0)   # partition 1 has not said where it is: nothing yet
[]
>>> [(x["episode"]["started"], x["severity"]) for x in builder.advance(1, 200.0)]
[('1970-01-01T00:01:30.000Z', 'critical')]
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .base import ENTITY_KINDS, Finding, finding_from_fields, finding_message, is_observation
from .engine import Engine

#: the entity kinds relayed by default: every one (an account's findings come from its own
#: partition already, but an actor's or a session's may not, and one rule is easier to trust)
RELAY_KINDS = ENTITY_KINDS

#: the detectors whose observations (``detectors.base.observation``: facts about an entity
#: that is not the partition key, such as overseas_server's customer uses of a hosting subnet
#: abroad, spread_access's customer reads of its populations) are folded in the builders: a
#: builder's engine runs them, fed observations only
OBSERVERS = ("overseas_server", "spread_access")

__all__ = ["OBSERVERS", "RELAY_KINDS", "InOrder", "EpisodeBuilder", "finding_key", "finding_message",
           "hold_key", "holds_from_message", "holds_message", "replace_ts"]


def replace_ts(f: Finding, ts: float) -> Finding:
    """``f`` at another time (doctests, tests)."""
    return replace(f, ts=ts)


def finding_key(msg: dict[str, Any], salt: str) -> bytes:
    """The partition key of a finding: a salted digest of (detector, kind, entity), so an
    episode's findings meet in one builder; the key holds no raw id."""
    f = msg["finding"]
    h = hashlib.blake2b(f"{f['detector']}\x1f{f['entity_kind']}\x1f{f['entity_id']}".encode(
        "utf-8", "surrogatepass"), digest_size=8, key=salt.encode())
    return f"{f['entity_kind']}|{h.hexdigest()}".encode()


def hold_key(key: tuple[str, str, str], salt: str) -> bytes:
    """The partition key of a hold on episode ``key`` (detector, entity kind, entity id):
    its findings' (:func:`finding_key`), so a hold reaches the builder of that episode."""
    return finding_key({"finding": {"detector": key[0], "entity_kind": key[1],
                                    "entity_id": key[2]}}, salt)


def holds_message(holds: dict[tuple[str, str, str], float]) -> list[list[Any]]:
    """Holds (``Engine.relay_report``) as JSON: ``[[detector, kind, id, time], ...]``."""
    return [[*key, at] for key, at in holds.items()]


def holds_from_message(obj: Any, most: int = 0) -> dict[tuple[str, str, str], float]:
    """The holds of a time report (:func:`holds_message`), checked: input like any other.
    Raises ValueError for anything else, or for more than ``most`` holds (0: no bound)."""
    if obj is None:
        return {}
    if type(obj) is not list:
        raise ValueError("holds: not an array")
    if most > 0 and len(obj) > most:
        raise ValueError("holds: more than the builder's cap")
    out: dict[tuple[str, str, str], float] = {}
    for h in obj:
        if (type(h) is not list or len(h) != 4 or not all(type(x) is str for x in h[:3])
                or type(h[3]) not in (int, float) or not math.isfinite(h[3])):
            raise ValueError("holds: an item is not [detector, kind, id, finite time]")
        out[(h[0], h[1], h[2])] = float(h[3])
    return out


_finding = finding_from_fields  # a message is input like any other: checked


class EpisodeBuilder:
    """Episodes and alert ids of the findings of ``partitions`` input engines.

    ``engine``: an engine that takes no event, running the :data:`OBSERVERS` detectors
    (``EngineConfig(detectors=OBSERVERS)``; ``()`` when no observation is relayed); its
    episode code and settings (``episode_gap``, ``episode_lateness``) make the alerts, its
    detectors fold the observations (``Detector.on_observation``) in the same order, and the
    builder keeps its state on it (checkpointed with it).

    ``me`` and ``route`` (h-par8): this builder's index among the ``partitions`` builders and
    the builder index of a finding's episode (the partition of its :func:`finding_key`). A
    finding an observation makes here about an entity whose episode is another builder's
    (overseas_server's ``info`` on the account, made where the subnet's uses are counted) is
    not made an episode here: it is kept, stamped with the time the observation was made at,
    for :meth:`Engine.drain_findings` of this builder's engine, to be sent to that builder
    (:meth:`add` with ``builder=True``). A builder with a ``me`` then also waits, before
    taking a finding, for every other builder to report its time past it
    (:meth:`advance_peer`, the time of :meth:`passed` after its findings were sent): a
    finding another builder makes is made at a time it has passed. Without (None) findings
    are made episodes where they are made, as before."""

    def __init__(self, engine: Engine, partitions: int, me: int | None = None,
                 route: Callable[[Finding], int] | None = None) -> None:
        self.engine = engine
        self.me = me
        self.route = route
        d = engine.__dict__
        d.setdefault("_relay_pending", [])  # heap of (at, ts, partition, origin, seq, finding)
        d.setdefault("_relay_parked", {})  # episode -> heap of its findings a hold keeps
        d.setdefault("_relay_progress", {})  # input partition -> its engine time
        d.setdefault("_relay_seen", {})  # origin -> last seq taken
        d["_relay_partitions"] = partitions

    @property
    def pending(self) -> int:
        """Findings held until every partition's time passes theirs."""
        d = self.engine.__dict__
        return len(d["_relay_pending"]) + sum(map(len, d.get("_relay_parked", {}).values())) + \
            len(d.get("_relay_ready", ())) + len(d.get("_relay_blocked", ()))

    def add(self, msg: dict[str, Any], partition: int, builder: bool = False) -> None:
        """Hold a finding of input partition ``partition`` (from ``drain_findings``), or,
        ``builder``, one builder ``partition`` made about an episode of this one (taken
        after the input partitions' findings of the same time); one already taken (same
        origin, seq not newer) is dropped. Raises ValueError for a message that is not a
        finding."""
        eng = self.engine
        origin, seq, at = msg.get("origin"), msg.get("seq"), msg.get("at")
        if not isinstance(origin, str) or not isinstance(seq, int):
            raise ValueError("finding: no origin or seq")
        if not isinstance(at, int | float) or not math.isfinite(at):
            raise ValueError("finding: at is not a finite number")
        f = _finding(msg.get("finding") or {})
        seen: dict[str, int] = eng.__dict__["_relay_seen"]
        if seq <= seen.get(origin, 0):
            eng.rejected["duplicate_finding"] += 1
            return
        seen[origin] = seq
        if builder:
            partition += eng.__dict__["_relay_partitions"]
        heapq.heappush(eng.__dict__["_relay_pending"],
                       (float(at), f.ts, partition, origin, seq, f))

    def advance_peer(self, builder: int, now: float, folded: float | None = None
                     ) -> list[dict[str, Any]]:
        """Builder ``builder`` sent every finding it made for the others before ``now`` (its
        :meth:`passed`, reported after its sends): the alerts of the findings this builder
        may now take. ``folded`` (h-par9; None: ``now``): its :meth:`folded`, the time from
        which it may still fold an observation a hold keeps (what it makes then is stamped
        no earlier): this builder's findings of the detectors its engine runs (the only ones
        another builder makes) wait for it as well."""
        if not math.isfinite(now):
            raise ValueError("a builder's time is not a finite number")
        if folded is not None and not math.isfinite(folded):
            raise ValueError("a builder's fold time is not a finite number")
        d = self.engine.__dict__
        d.setdefault("_relay_peers", {})[builder] = now
        d.setdefault("_relay_peers_folded", {})[builder] = now if folded is None else min(
            now, folded)
        return self.release()

    def advance(self, partition: int, now: float, flushed: bool = False,
                holds: dict[tuple[str, str, str], float] | None = None
                ) -> list[dict[str, Any]]:
        """Input partition ``partition``'s engine time reached ``now`` (it will make no
        finding at an earlier time): the alerts of the findings every partition has passed.
        ``flushed``: it fired every timer at the end of its input; once every partition has,
        every finding goes (a partition idle for a while may flush and then take more events:
        its time still holds the others back). The last report stands (a partition moved to a
        worker that restored an older checkpoint reports less: findings wait longer).
        ``holds``: the episodes (detector, entity kind, entity id) of this builder on which
        that partition has put off a verdict, each with the time from which their findings
        wait for it (``Engine.relay_report``, h-par6); they replace its previous holds."""
        eng = self.engine
        eng.__dict__["_relay_progress"][partition] = now
        held: dict[int, dict[tuple[str, str, str], float]] = eng.__dict__.setdefault(
            "_relay_holds_in", {})
        if holds:
            held[partition] = dict(holds)
        else:
            held.pop(partition, None)
        done: set[int] = eng.__dict__.setdefault("_relay_flushed", set())
        if flushed:
            done.add(partition)
        else:
            done.discard(partition)
        return self.release()

    def release(self) -> list[dict[str, Any]]:
        eng = self.engine
        prog: dict[int, float] = eng.__dict__["_relay_progress"]
        n = eng.__dict__["_relay_partitions"]
        low = fold = -math.inf if any(p not in prog for p in range(n)) else min(
            prog[p] for p in range(n))
        slow = low
        if self.me is not None:  # and every other builder's (h-par8)
            peers: dict[int, float] = eng.__dict__.get("_relay_peers", {})
            folds: dict[int, float] = eng.__dict__.get("_relay_peers_folded", {})
            for k in range(n):
                if k != self.me:
                    low = min(low, peers.get(k, -math.inf))
                    slow = min(slow, folds.get(k, peers.get(k, -math.inf)))
        holds = self._holds()
        if len(eng.__dict__.get("_relay_flushed", ())) >= n:
            # every partition at the end of its input
            low, fold, slow, holds = math.inf, math.inf, math.inf, {}
        out = self._take(low, holds=holds, fold=fold, slow=min(slow, low))
        n = self.pending
        cap = eng.config.max_entities
        if cap > 0 and n > cap:
            # a partition that never reports (no event yet, a worker gone) must not hold
            # findings without bound: past the cap the oldest go on, order or hold or not
            eng.stats["finding_released_early"] += n - cap
            out.extend(self._take(math.inf, n - cap))
        return out

    def passed(self) -> float:
        """The engine time every input partition has reported passing (-inf until each has
        reported once): no finding made before it is still to come. The builder's own clock
        (``engine.ctx.now``) is its last finding's time, so a caller that asks whether an
        episode went quiet (an OCSF Close) asks at this time."""
        prog: dict[int, float] = self.engine.__dict__["_relay_progress"]
        n = self.engine.__dict__["_relay_partitions"]
        if any(p not in prog for p in range(n)):
            return -math.inf
        return min(prog[p] for p in range(n))

    def folded(self) -> float:
        """The time from which this builder may still fold an observation (h-par9): its
        :meth:`passed`, or earlier the time of an input partition's hold on an episode of a
        detector its engine runs (an observation of it made since is parked, or not sent
        yet, and is stamped no earlier than the hold: what its fold makes about another
        builder's episode is sent on when the hold lifts). The other builders take their
        findings of those detectors only past it (:meth:`advance_peer`)."""
        t = self.passed()
        dets = self.engine.detectors
        for (det, _, _), at in self._holds().items():
            if at < t and det in dets:
                t = at
        return t

    def flush(self) -> list[dict[str, Any]]:
        """End of input: every finding held, in order."""
        return self._take(math.inf)

    def head(self) -> tuple[Any, ...] | None:
        """The order key (time made at, event time, partition, origin, seq) of the first
        finding held, parked or not; None: none held. With :meth:`take_one`, several
        builders' ends of input are merged in one engine's order (``local.split``: a
        finding one of them makes at the end goes to another, h-par8)."""
        d = self.engine.__dict__
        firsts = [h[0] for h in (d["_relay_pending"], d.get("_relay_ready", ()),
                                 d.get("_relay_blocked", ()),
                                 *d.get("_relay_parked", {}).values()) if h]
        return min(f[:5] for f in firsts) if firsts else None

    def take_one(self) -> list[dict[str, Any]]:
        """End of input: the first finding held (:meth:`head`), holds or not: an
        observation folded, or a finding made an episode."""
        d = self.engine.__dict__
        blocked = d.get("_relay_blocked")
        if blocked:  # the end of input: nothing is still to be folded anywhere
            ready_: list[Any] = d["_relay_ready"]
            while blocked:
                heapq.heappush(ready_, heapq.heappop(blocked))
        ready = d.get("_relay_ready")
        if self.route is None or not ready:
            return self._take(math.inf, 1)
        self._take(-math.inf, holds=None)  # (every parked finding back in the queue)
        pending = self.engine.__dict__["_relay_pending"]
        if pending and pending[0][:5] < ready[0][:5]:
            return self._take(-math.inf, 1, fold=math.inf)
        return self._episodes([heapq.heappop(ready)])

    def _holds(self) -> dict[tuple[str, str, str], float]:
        """Every input partition's holds, the earliest per episode."""
        out: dict[tuple[str, str, str], float] = {}
        for held in self.engine.__dict__.get("_relay_holds_in", {}).values():
            for key, at in held.items():
                if at < out.get(key, math.inf):
                    out[key] = at
        return out

    def _take(self, low: float, most: float = math.inf,
              holds: dict[tuple[str, str, str], float] | None = None,
              fold: float | None = None, slow: float | None = None) -> list[dict[str, Any]]:
        """The findings made before ``low``, in order, but those of an episode held at or
        before their time (``holds``; None: no hold counts), which are parked on their
        episode until its hold lifts or passes them (h-par6: a verdict put off on one input
        partition holds that episode only; every other finding goes on).

        With a ``route`` (h-par8), in two steps: the findings made before ``fold`` (every
        input partition's time; default ``low``) leave the queue in order, observations
        folded (what they make about another builder's episode put in the engine's relay
        box), into a queue of findings ready to be made episodes, those before ``low`` (the
        other builders' times too) in order. So what a builder sends the others depends on
        the input partitions' times only: no builder waits for another to send. A ready
        finding of a detector the engine runs waits, past ``low``, for ``slow`` (the other
        builders' :meth:`folded`, h-par9; default ``low``): one they fold later may come
        before it (kept in ``_relay_blocked``, in order; the others go on)."""
        eng = self.engine
        heap = eng.__dict__["_relay_pending"]
        parked: dict[tuple[str, str, str], list[Any]] = eng.__dict__.setdefault(
            "_relay_parked", {})
        for key in list(parked):  # back in the queue: those their hold no longer keeps
            items = parked[key]
            h = math.inf if holds is None else holds.get(key, math.inf)
            while items and items[0][0] < h:
                heapq.heappush(heap, heapq.heappop(items))
            if not items:
                del parked[key]
        out: list[dict[str, Any]] = []
        ctx, cfg = eng.ctx, eng.config
        route = self.route
        ready: list[Any] | None = None
        if route is not None:
            ready = eng.__dict__.setdefault("_relay_ready", [])
            low, last = (low if fold is None else fold), low
        while heap and heap[0][0] < low and most > 0:
            if holds:
                f = heap[0][5]
                key = (f.detector, f.entity_kind, f.entity_id)
                if heap[0][0] >= holds.get(key, math.inf):
                    heapq.heappush(parked.setdefault(key, []), heapq.heappop(heap))
                    continue
            most -= 1
            item = heapq.heappop(heap)
            at, f = item[0], item[5]
            # engine time as a single engine had it when it made the finding: episodes
            # ended by a gap are closed on the same schedule
            if ctx.start is None:
                ctx.start = at
                eng._next_expire = at + cfg.expire_every
            if at > ctx.now:
                ctx.now = at
                if at >= eng._next_expire:
                    eng._expire(at)
            if ready is None or route is None:
                eng.stats["finding"] += 1
                out.extend(eng._alerts([f]))
                continue
            order = (at, *item[1:5])
            if not is_observation(f):
                heapq.heappush(ready, (*order, 0, f))
                continue
            # an observation folded here: what it makes about another builder's episode is
            # sent there, at the time the observation was made (h-par8)
            box: list[tuple[float, Finding]] = eng.__dict__.setdefault("_relay_box", [])
            for i, g in enumerate(eng._observed([f]), 1):
                if route(g) == self.me:
                    heapq.heappush(ready, (*order, i, g))
                else:
                    box.append((at, g))
                    eng.stats["finding_forwarded"] += 1
        if ready is not None:
            slow = last if slow is None else min(slow, last)
            blocked: list[Any] = eng.__dict__.setdefault("_relay_blocked", [])
            while blocked and blocked[0][0] < slow:
                heapq.heappush(ready, heapq.heappop(blocked))
            dets = eng.detectors
            took = []
            while ready and ready[0][0] < last:
                item = heapq.heappop(ready)
                if item[0] >= slow and item[-1].detector in dets:
                    heapq.heappush(blocked, item)  # another builder may fold one before it
                    eng.stats["finding_waited_fold"] += 1
                    continue
                took.append(item)
            out.extend(self._episodes(took))
        return out

    def _episodes(self, items: list[Any]) -> list[dict[str, Any]]:
        """The alerts of ready findings (``_take``'s second step), in order."""
        eng = self.engine
        out: list[dict[str, Any]] = []
        for item in items:
            eng.stats["finding"] += 1
            out.extend(eng._alerts([item[-1]]))
        return out


class InOrder:
    """Items sent by ``partitions`` input engines, taken in the order a single engine of every
    event would have made them: by (engine time sent at, event time, input partition,
    sequence), once every input partition has said its engine time passed them (the
    builders' rule, for inputs that are not findings: the logins the burst engines count).

    The held items and each partition's time live on ``engine`` (``name``), so a checkpoint of
    that engine covers them. ``partitions`` input partitions; at most the engine's
    ``max_entities`` held (past it the oldest go on, counted in ``stats``).

    >>> from detectors.engine import Engine, EngineConfig
    >>> order = InOrder(Engine(EngineConfig(detectors=())), partitions=2)
    >>> order.add(at=20.0, ts=20.0, partition=0, seq=1, item="b")
    >>> order.add(at=10.0, ts=10.0, partition=1, seq=1, item="a")
    >>> order.advance(0, 30.0)   # partition 1 has not reported yet
    []
    >>> order.advance(1, 15.0)   # both passed 10, not 20
    ['a']
    >>> order.advance(1, 25.0, flushed=True), order.advance(0, 30.0, flushed=True)
    (['b'], [])
    """

    def __init__(self, engine: Engine, partitions: int, name: str = "_in_order") -> None:
        self.engine = engine
        self.partitions = partitions
        self.state: dict[str, Any] = engine.__dict__.setdefault(
            name, {"heap": [], "progress": {}, "flushed": set()})

    @property
    def pending(self) -> int:
        return len(self.state["heap"])

    def add(self, at: float, ts: float, partition: int, seq: int, item: Any) -> None:
        if not (math.isfinite(at) and math.isfinite(ts)):
            raise ValueError("in order: time is not a finite number")
        heapq.heappush(self.state["heap"], (at, ts, partition, seq, item))

    def advance(self, partition: int, now: float, flushed: bool = False) -> list[Any]:
        """Input partition ``partition``'s engine time reached ``now``; ``flushed``: it fired
        its timers at the end of its input (once every partition has, every item goes)."""
        if not math.isfinite(now):
            raise ValueError("in order: progress is not a finite number")
        self.state["progress"][partition] = now
        done: set[int] = self.state["flushed"]
        if flushed:
            done.add(partition)
        else:
            done.discard(partition)
        return self.release()

    def release(self) -> list[Any]:
        prog: dict[int, float] = self.state["progress"]
        n = self.partitions
        low = -math.inf if any(p not in prog for p in range(n)) else min(
            prog[p] for p in range(n))
        if len(self.state["flushed"]) >= n:
            low = math.inf
        heap = self.state["heap"]
        out = []
        while heap and heap[0][0] < low:
            out.append(heapq.heappop(heap)[4])
        cap = self.engine.config.max_entities
        while cap > 0 and len(heap) > cap:  # a partition that never reports: bounded
            self.engine.stats["in_order_released_early"] += 1
            out.append(heapq.heappop(heap)[4])
        return out

    def flush(self) -> list[Any]:
        heap = self.state["heap"]
        return [heapq.heappop(heap)[4] for _ in range(len(heap))]
