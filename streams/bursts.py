"""Login bursts across partitions: every login of one source AS meets in one engine.

credential_stuffing and password_spray count failed logins per source address, /24 (/48)
subnet and AS. Logins are keyed by account, so with several partitions a source's attempts
are spread over all of them and each partition's engine would see a 1/P share: an address
failing on 16 accounts in ten minutes would look like 8 and 8 to two partitions, under the
threshold of 10. With more than one partition (``attach``):

- the input engines do not run those two detectors (the runtime is built without them,
  ``input_leave_out``); after an input engine has taken a login
  (not a duplicate), the runtime sends its original bytes to the internal topic
  ``<app_id>-logins-by-source``, keyed by a salted digest of its AS (the AS number the engine
  enriched it with, else the AS name or country, as ``detectors._burst`` groups it): an
  address, its subnet and its AS land in one partition;
- one **burst engine** per partition of that topic runs credential_stuffing and password_spray
  on the logins it receives, with the runtime's partition state, checkpoints (table
  ``<app_id>-burst-checkpoints``) and acks, as the bulk_lookup scorers do (``streams.side``);
- each forwarded login carries a header ``aw-from`` (input partition, that engine's time, the
  login's time, a sequence); the logins one input message or merge drain gives that go to one
  burst partition are sent as one message, a JSON array of ``{"from": [partition, engine
  time, login time, sequence], "login": {...}}`` (the login's bytes as taken, no header;
  each item taken on its own, a bad one dead-lettered alone with ``aw-index``), a single
  login as before; and at each watermark tick every input partition's time goes to
  every partition of the topic (key ``progress``, after the logins it forwarded: one
  producer). A burst engine holds the logins (``detectors.episodes.InOrder``, on its engine:
  checkpointed with it) and takes them in engine-time order once every input partition has
  passed them, as the episode builders take findings: a partition running ahead (a catch-up)
  waits for the others instead of splitting a source's attempts into windows of its own.

This re-sends every login once (not every event: logins are a few percent of the traffic,
access events the rest), where a combiner's views would need the burst trackers' exact
per-window account sets to be mergeable. account_takeover stays in the input engines (its
profile is per account); its "inside a stuffing burst" path judges against the burst tracker
of its own partition.

With one partition nothing changes: the input engine runs every detector (the same alert_ids
as ``replay``). With several, a burst alert waits for the slowest input partition (at least one
watermark tick); ``accesswatch_burst_logins_held`` is the number of logins held.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import faust
import msgspec
from prometheus_client import Gauge

from detectors import events as E
from detectors.engine import EngineConfig, discover
from detectors.episodes import InOrder
from streams.batch import BatchItem, partition_for
from streams.runtime import INTERNAL_ERROR, Runtime
from streams.settings import Settings
from streams.side import (
    PROGRESS,
    SideEngines,
    input_partition,
    read_progress,
    refuse,
    send_progress,
    wire,
)

log = logging.getLogger("accesswatch.bursts")

#: the detectors that count logins per source: they run on the burst engines
BURST_DETECTORS = ("credential_stuffing", "password_spray")


FROM = "aw-from"  # header of a forwarded login: input partition, engine time, ts, sequence
INVALID = "invalid_burst_message"


class Forwarded(msgspec.Struct, forbid_unknown_fields=True):
    """One login of an array message of the logins-by-source topic: what ``aw-from`` says
    of a login sent alone (input partition, engine time, login time, sequence), and the
    login's bytes as the input engine took them (``msgspec.Raw``: not re-serialised)."""

    origin: tuple[int, float, float, int] = msgspec.field(name="from")
    login: msgspec.Raw


_ENCODE = msgspec.json.Encoder().encode
_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])  # each item judged on its own (below)
_ITEM = msgspec.json.Decoder(Forwarded)


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


class Bursts:
    """What create_app wires: the logins-by-source topic, the sends, the burst engines."""

    def __init__(self, app: faust.App, rt: Runtime, settings: Settings,
                 detectors: tuple[str, ...]) -> None:
        self.rt = rt
        self.name = bursts_topic(settings)
        # one burst engine per partition of the logins-by-source topic
        self.engines = SideEngines(app, rt, settings, self.name, "burst-checkpoints", detectors)
        self.topic = self.engines.topic
        self.salt = rt.config.salt
        self.sent = 0
        self.partitions = settings.partitions
        self._seq: dict[int, int] = {}  # per input partition: ties broken in sending order
        self.held = Gauge("accesswatch_burst_logins_held", "Logins the burst engines hold "
                          "until every input partition's time has passed them",
                          registry=rt.metrics.registry)

    async def send_many(self, logins: list[tuple[Any, ...]]) -> None:
        """Send logins input engines have taken (``(_, msg, ev, at)``: the login's message or
        batch item, its event, the engine time it was taken at; in the order taken) to the
        burst engines of their sources, each with its input partition, engine time, time and a
        sequence per input partition: the burst engine takes logins in that order across
        partitions (``detectors.episodes.InOrder``). Those for one burst partition go as one
        message, a JSON array of ``Forwarded`` in this order, keyed by the first one's source;
        a login alone goes as its bytes with the header ``aw-from``. One Kafka message each
        cost the sending and the receiving worker Faust's per-message work, as findings and
        window views did (docs/benchmarks.md, "h-mw", "h-lbs")."""
        groups: dict[int, list[tuple[bytes, int, float, float, int, bytes]]] = {}
        parts = self.partitions
        for o in logins:
            msg, ev, at = o[1], o[2], o[3]
            p = msg.partition
            seq = self._seq[p] = self._seq.get(p, 0) + 1
            key = source_key(ev, self.salt)
            groups.setdefault(partition_for(key, parts), []).append(
                (key, p, at, ev.ts, seq, msg.value))
        for part, group in groups.items():
            if len(group) == 1:
                key, p, at, ts, seq, raw = group[0]
                await self.topic.send(key=key, value=raw, partition=part,
                                      headers=[(FROM, f"{p} {at!r} {ts!r} {seq}".encode())])
            else:
                value = _ENCODE([Forwarded((p, at, ts, seq), msgspec.Raw(raw))
                                 for _, p, at, ts, seq, raw in group])
                await self.topic.send(key=group[0][0], value=value, partition=part)
        self.sent += len(logins)

    async def on_login(self, event: Any) -> None:
        """One message of the logins-by-source topic: a login to hold, a JSON array of them
        (``send_many``; each taken on its own, a bad one dead-lettered alone with its index),
        or an input partition's time; the logins every input partition has passed are
        processed, in order."""
        st = await self.engines.take(event)  # held for the burst engines' checkpoint
        if st is None:
            return  # taken already, or inside the restored checkpoint
        msg = event.message
        order = InOrder(st.engine, self.partitions)
        bad: list[tuple[int, int, bytes, Exception]] = []
        try:
            if msg.key == PROGRESS:
                logins = order.advance(*read_progress(msg.value, self.partitions))
            elif msg.value is not None and msg.value.lstrip()[:1] == b"[":
                items = _ITEMS.decode(msg.value)  # every login added before an await
                for i, each in enumerate(items):
                    try:
                        one = _ITEM.decode(each)
                        p, at, ts, seq = one.origin
                        order.add(at, ts, input_partition(p, self.partitions), seq,
                                  bytes(one.login))
                    except Exception as err:  # this login alone (below)
                        bad.append((i, len(items), bytes(each), err))
                logins = order.release()
            else:
                head = dict(msg.headers or ()).get(FROM)
                if head is None:
                    raise ValueError("no aw-from header")
                p_, at, ts, seq = head.decode().split()
                p = input_partition(int(p_), self.partitions)
                order.add(float(at), float(ts), p, int(seq), msg.value)
                logins = order.release()
        except Exception as exc:  # a bad message must not kill the agent
            await refuse(self.rt, msg, "logins-by-source", "event", INVALID, exc)
            return
        for i, n, item, problem in bad:  # each alone, as the array's item
            await refuse(self.rt, BatchItem(msg, i, n, item), "logins-by-source", "event",
                         INVALID, problem)
        self.held.set(sum(InOrder(s.engine, self.partitions).pending
                          for s in self.engines.parts.values()))
        for raw in logins:
            await self._login(st, msg, raw)

    async def _login(self, st: Any, msg: Any, raw: bytes) -> None:
        try:
            ev = E.decode(raw, E.LOGIN, self.rt.policy_of[self.rt.names.logins])
            if isinstance(ev, E.Rejection):  # the input engine took it: cannot happen
                raise ValueError(ev.reason)
            alerts, rej = st.engine.process(ev)
        except Exception as exc:  # an engine bug outside the detectors (each is isolated)
            log.error("burst engine failed on a login (%s)", type(exc).__name__, exc_info=exc)
            self.rt._internal_error("event")
            await self.rt.dead_letter(msg, INTERNAL_ERROR, None, type(exc).__name__)
            return
        if rej is not None and rej.reason == INTERNAL_ERROR:  # a detector failed on it
            await self.rt.dead_letter(msg, INTERNAL_ERROR, rej.field, rej.detail)
        for a in alerts:
            await self.engines.emit(a)

    async def tick(self) -> None:
        """After the watermark: each input partition's time to every burst partition (after
        the logins it sent: one producer, in order); fetch again a stalled partition; keep
        pages firing. The times go under the input runtime's checkpoint lock: an input
        engine's time is read only once the logins it took before are sent (they are sent at
        the end of the lock hold that applied them, ``Runtime._send_out``)."""
        async with self.rt._checkpoint_lock:
            await send_progress(self.rt, self.topic, self.partitions)
        await self.engines.watch_delivery()
        self.engines.touch_pages()


def input_leave_out(settings: Settings) -> tuple[str, ...]:
    """The detectors the input engines leave to the burst engines: the burst detectors with
    more than one partition, none with one (``Runtime(leave_out=...)``)."""
    return burst_detectors(settings) if settings.partitions > 1 else ()


def attach(app: faust.App, rt: Runtime, settings: Settings) -> Bursts | None:
    """With more than one partition and a burst detector on: declare the logins-by-source
    topic, its agent, the burst engines' checkpoints and rebalance hooks. ``rt`` was built
    with ``leave_out=input_leave_out(settings)``: its engines do not run them."""
    detectors = input_leave_out(settings)
    if not detectors:
        return None
    if not set(detectors).isdisjoint(rt.config.detectors or discover()):
        raise ValueError("the input runtime runs the burst detectors itself: build it with "
                         "leave_out=input_leave_out(settings)")
    bursts = Bursts(app, rt, settings, detectors)
    wire(app, settings, "bursts", bursts.engines, bursts.on_login)
    return bursts
