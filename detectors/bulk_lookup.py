"""bulk_lookup — one source, key or actor touches far more distinct customer accounts than it should.

The Coupang signal: every forged request looked like a customer reading their own data, so
per-account counts were normal; what was not normal was *one server abroad* (or one signing
key) touching thousands of distinct accounts. So distinct accounts are counted per entity:

- ``src_ip``, ``subnet`` (/24, /48) and ``asn``: distinct customer accounts whose *customer*
  credentials were used from there (home broadband: one or two; a datacenter abroad: none).
  Subnets and ASes are scored only when at least two addresses feed them (the address itself
  covers a single server), and never for home-country broadband (carrier-grade NAT pools).
- ``key``: distinct customer accounts read under a signing key, and of those the ones read
  from hosting / VPN networks (the active customer key touches everyone; it must not touch
  customers from datacenters). A key mostly used from datacenters pages; the active key warns.
- ``actor``: distinct customers read by an employee, a service, or a customer reading someone
  else (the insider), plus rows returned by exports and searches (``records``).

Window close: a window is scored once the *access* stream's event time passes its end (an
access record after it, or a watermark: the runtime's word that every stream is quiet), or
other event time (a login) passes it by ``access_quiet`` (60 s) with no access record after
it. A login dated past the end that reaches the engine before the window's last access
records (the worker merges the two topics by event time only approximately) does not close
it half-way: ``replay`` and the worker score the same view, under the same alert id.

Horizons: the short window (``window``, 60 s) is the combiner's unit; per entity a sliding hour
and day (current epoch + the previous one weighted by its remaining overlap) and a cumulative
coverage over ``coverage_days`` for slow-and-low. Each is compared with the larger of a
cold-start prior for the entity's peer group (entity kind, network class at home or abroad,
principal type: exact checks that work in the first hour), the entity's own history (EWMA of
its past hours and days, learnt only from hours it was not flagged in) and its peers' (River
``stats.Quantile(0.99)`` of the peer group's hourly counts). Enumeration: customer ids walked in
sequence (numeric suffixes dense in their range). A River ``HalfSpaceTrees`` per entity family
(seeded, features scaled into [0, 1]) scores each closed window view of a tracked entity —
never per event — and learns only from views no rule flagged (QuantileFilter's protection); its
score goes into the alert score and, when warm and high, raises a warning.

Staff (employees): the day horizon is the *local* day (the engine's local time,
``EngineConfig.timezone``, +9 h until "auto" decides; ``staff_tz_hours`` fixes an offset: the
day of their shifts, not a UTC day that cuts a shift in two) and no sliding previous day. Its
threshold follows the person's own steady volume once ``staff_own_days`` days are known
(days no rule flagged, and days that only warned at the level of the day before: a heavy but
steady agent just over the group's threshold warns once or twice, then their own days count;
a rising or critical day is never learnt), lower or higher than the prior: mean + 4 spreads (spread: the mean absolute deviation,
at least a quarter of the mean and 3), at least ``staff_day_min`` — someone who reads ~10 a day
warns at ~25 (a slow insider at 50 a day warns on the first day of it), a heavy agent at a
steady ~280 a day only past ~560. With fewer days, the prior for staff without history (400 /
800) is replaced by 1.5x the peer group's 99th percentile of days (at least 100) once 20
peer-days are known; the person's own days raise it (one day to at most 1.5x that day), or
from two on pull it toward their own
threshold (weight (days - 1) / (``staff_own_days`` - 1), geometric: a member reading ~12 a day
in a team whose agents read ~300 warns at ~50 on their fifth day, not at ~450 until the sixth
and then at ~25). The peer group: the
contract has no role or team field, so it is what the events say — the principal type and the
network class its requests come from (office egress, engineers' VPN on private addresses, a
cloud). Peers' days are *completed* local days: at each local midnight every member's unflagged
day joins the group (the last ``staff_peer_days`` kept, exact values: a few KiB per group, not
per entity) and the percentile is computed once — not when each member comes back, which on a
team's second morning left only the early shift's light days and paged heavy agents new to the
watch. One account moves that percentile by one day among the group's; a new hire reads at
most ~1.5x what the busiest peers read before a warning. Staff history outlives a weekend or a
leave (``staff_idle_days``).

Severity: warning over the warning threshold, critical over the critical one. Internal services
on private addresses (nightly batches in id order, steady consumers) are judged here on their
own history only and reported at info at most; ``service_baseline`` judges them on their
seasonal baseline and the networks they use, ``record_volume`` on rows per response. Sources and keys count customers' *own* reads only
(``actor_id == subject_id``); a customer reading other customers is an actor finding.

Victims: the customers read are counted (distinct accounts per hour, day, coverage) and never
named, not even by digest: the page is about the entity reading them (source, subnet, AS, key
or actor, in the clear); their ids are in the events behind ``event_ids``.

Cost: per event one or two dict lookups and a ``set.add`` of the raw id into the current
window's accumulator (transient state, raw ids never outlive the window); salted digests
(``Context.hash_id``) and sketches happen at window close, once per distinct account per
*tracked* entity. Entities are tracked only when interesting (datacenter addresses from their
first account, other non-home-broadband addresses from two, keys, non-self actors) or when an
address reaches ``track_min`` accounts in a window; keys and internal services keep exact
window counts (no digests) plus digests of their datacenter reads only. An accumulator that
reaches ``burst`` accounts mid-window (``burst_dc`` for datacenter addresses and for keys'
datacenter reads) is judged at once, except for entities already paged: an insider reading
1,600 customers in one minute pages at ~130, not at 1,600. Subnet and AS views also need two
or more accounts per address in the hour (VPN customers, each on an exit address of their own,
do not add up to a server). Measured on this
2-core machine while other jobs ran (CPU time, steady state, simulator traffic of 20,000
customers): ~1.3 µs/event in the accumulator, 2.2-2.7 µs/event in all on normal traffic,
2.7-4 µs/event while a Coupang ramp of 12,000 accounts and an insider run. Memory: under 1 KiB
of Python state per tracked entity (test), theta sketches only past 128 accounts.

Combiner API (Faust runtime; the detector uses the same path in-process):

- :class:`Combiner` — ``add(event)`` per event on a worker (events enriched with ``net``);
  ``drain(hash_id, is_home, tracked)`` at window close returns the window's :class:`Partial`
  list (one per entity kind and id); ``hot`` / ``drain_hot(...)`` report bursts early.
- :class:`Partial` — ``(kind, entity, window)`` with ``count``, ``records``, ``n_distinct``,
  ``distinct`` and ``sus`` (:class:`detectors._sketch.DistinctCounter` of salted digests: an
  exact set up to 128, then an Apache DataSketches theta sketch), ``first``/``last`` ts, sample
  ``event_ids``, numeric id range for enumeration, digests of the addresses behind a subnet /
  AS view, network and principal facts. ``to_dict()`` / ``Partial.from_dict()`` are JSON-safe
  (sketches base64) for a Kafka topic keyed by ``kind|entity``; :func:`merge_partials` merges
  two partials of one key and window (counts add; sketches unite).
- ``BulkLookup.observe(partial, ctx)`` folds one merged view into its entity and returns
  findings; ``BulkLookup.close_window(ctx)`` is drain + observe, what the engine runs.

>>> from detectors.engine import Engine, EngineConfig
>>> cfg = EngineConfig(detectors=("bulk_lookup",),
...                    params={"bulk_lookup": {"home_countries": ("KR",)}})
>>> eng, alerts, t = Engine(cfg), [], 1750734000
>>> for i in range(12):                     # one server abroad, a new customer every 40 s
...     alerts += eng.process_obj({"event_id": f"a{i}", "ts": t + 40 * i, "actor_id": f"c-{9 * i}",
...                                "subject_id": f"c-{9 * i}", "resource": "address",
...                                "src_ip": "3.101.7.9", "key_id": "kid-legacy"})[0]
>>> alerts += eng.flush()
>>> [(a["entity"]["kind"], a["severity"]) for a in alerts]
[('src_ip', 'warning'), ('key', 'warning'), ('src_ip', 'critical'), ('key', 'critical')]
>>> print([a["summary"] for a in alerts if a["severity"] == "critical"][0])
3.101.7.9 (US, hosting AMAZON-02) was used by 8 distinct customer accounts within an hour, each with its own credentials: usual is <= 4/h for this address (prior for hosting abroad; own history: none yet; peers: none yet).
"""

from __future__ import annotations

import base64
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from heapq import heapify, heappop, heappush
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from river import anomaly, stats

from ._cap import evict
from ._sketch import DistinctCounter
from .base import SEVERITIES, Detector, Finding, ev, iso
from .context import legacy_offset
from .river_compat import hst_learn_walked, hst_score

if TYPE_CHECKING:
    from collections.abc import Callable

    from .engine import Context, Engine
    from .events import Event
    from .geo import NetInfo

HOUR = 3600.0
DAY = 86400.0
_SUS = frozenset({"hosting", "vpn"})
_NUM = re.compile(r"(\d+)$")
_SAMPLE = 5
_WINDOW_EXACT = 1 << 30  # a window's view stays an exact set in-process (theta on the wire)
_NO_VIEW: dict[str, float] = {}  # no features: a view the model neither scores nor learns
_REFRESH = 1800.0
#: event time between two whole passes over the entities in ``expire`` (the sweeps in between
#: read a queue of those that may go idle before the next pass)
_DUE_SPAN = 1800.0  # re-send a standing finding this often so the engine's episode stays open

# Cold-start priors per peer group: (warn, crit) distinct accounts per hour, per day, coverage.
# 0 disables a horizon. Source groups are "<net_class>/<home|abroad>".
SOURCE_PRIORS: dict[str, tuple[int, int, int, int, int, int]] = {
    "hosting/abroad": (4, 8, 10, 25, 30, 100),
    "vpn/abroad": (5, 12, 15, 40, 0, 0),
    "relay/abroad": (5, 12, 15, 40, 0, 0),
    "isp/abroad": (8, 20, 20, 50, 0, 0),
    "hosting/home": (10, 25, 30, 80, 0, 0),
    "vpn/home": (10, 25, 30, 80, 0, 0),
    "relay/home": (40, 150, 200, 600, 0, 0),
    "isp/home": (30, 100, 150, 500, 0, 0),
    "private/home": (300, 3000, 0, 0, 0, 0),
}
ACTOR_PRIORS: dict[str, tuple[int, int, int, int, int, int]] = {
    "employee": (60, 120, 400, 800, 0, 0),  # the day pair: staff without a history of their own
    "customer": (5, 20, 10, 40, 0, 0),
    "service": (500, 5000, 0, 0, 0, 0),
}
KEY_PRIORS = (4, 8, 10, 25, 0, 0)  # accounts read from hosting / VPN networks under the key
RECORD_PRIORS = {"employee": (2000, 20000), "customer": (200, 2000)}  # rows per hour


# ---------------------------------------------------------------------------------------------
# The mergeable window view (the combiner's unit)
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Partial:
    """Aggregate of one entity over one short window: what a combiner sends and merges."""

    kind: str  # src_ip / subnet / asn / key / actor
    entity: str
    window: float  # window start, event time
    count: int = 0
    records: int = 0
    distinct: DistinctCounter = field(default_factory=DistinctCounter)
    sus: DistinctCounter = field(default_factory=DistinctCounter)  # read from hosting / VPN
    first: float = math.inf
    last: float = -math.inf
    event_ids: list[str] = field(default_factory=list)
    id_min: int | None = None  # numeric suffixes of the accounts (enumeration)
    id_max: int | None = None
    numeric: int = 0
    sources: int = 0  # addresses rolled into a subnet / AS view
    source_ids: list[int] = field(default_factory=list)  # their salted digests
    country: str = "??"
    net_class: str = ""
    org: str = ""
    principal_type: str = "customer"
    n_distinct: int = 0  # distinct accounts in the window (exact on one worker; summed on merge)
    sketched: bool = True  # False: ``distinct`` is empty, only ``n_distinct`` counts
    home: bool | None = None  # sender's verdict on ``country`` (remote views); None: ask here
    #: kind ``countries``: customer reads by source country since the sender's last view of
    #: this kind (the scorer learns home countries from every sender's traffic, ``ViewPool``)
    reads: dict[str, int] = field(default_factory=dict)
    early: bool = False  # reported mid-window (a burst), not at the window's close
    #: a key's reads in the window, ``[time, salted digest, datacenter read, event id]`` each,
    #: in order (``Combiner.timeline``: views sent to a scorer that merges partitions' shares,
    #: which replays them to find where one engine's accumulator burst, ``ViewPool``); None:
    #: not kept (one engine, or more than ``Combiner.timeline`` reads)
    timeline: list[list[Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {s: getattr(self, s) for s in self.__slots__}
        d["distinct"] = base64.b64encode(self.distinct.to_bytes()).decode()
        d["sus"] = base64.b64encode(self.sus.to_bytes()).decode()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Partial:
        kw = dict(d)
        kw["distinct"] = DistinctCounter.from_bytes(base64.b64decode(d["distinct"]))
        kw["sus"] = DistinctCounter.from_bytes(base64.b64decode(d["sus"]))
        return cls(**kw)


_new_partial = object.__new__  # a Partial with no field set yet (Combiner._partial sets all)


def merge_partials(a: Partial, b: Partial) -> Partial:
    """Merge ``b`` into ``a`` (same kind, entity and window) and return ``a``."""
    a.count += b.count
    a.records += b.records
    a.n_distinct += b.n_distinct
    a.distinct.merge(b.distinct)
    a.sus.merge(b.sus)
    a.first = min(a.first, b.first)
    a.last = max(a.last, b.last)
    room = _SAMPLE - len(a.event_ids)
    if room > 0:
        a.event_ids.extend(b.event_ids[:room])
    if b.id_min is not None:
        a.id_min = b.id_min if a.id_min is None else min(a.id_min, b.id_min)
        a.id_max = b.id_max if a.id_max is None else max(a.id_max, b.id_max)  # type: ignore[type-var]  # id_max is set with id_min (checked above)
    a.numeric += b.numeric
    a.sources += b.sources
    a.source_ids = sorted(set(a.source_ids) | set(b.source_ids))
    if a.sketched:
        a.n_distinct = len(a.distinct)
    a.timeline = None if a.timeline is None or b.timeline is None else a.timeline + b.timeline
    if not a.net_class:
        a.country, a.net_class, a.org = b.country, b.net_class, b.org
    return a


class _Acc:
    """Transient accumulator of one entity in the current window: raw ids, never kept."""

    __slots__ = ("subjects", "net", "ptype", "sus", "count", "records", "first", "last", "eids",
                 "sources", "ips", "limit", "reads")

    def __init__(self, net: NetInfo | None, ptype: str, ts: float, sus: bool = False,
                 ips: bool = False) -> None:
        self.subjects: set[str] = set()
        self.net = net
        self.ptype = ptype
        self.sus: set[str] | None = set() if sus else None  # read from hosting / VPN
        self.count = 0
        self.records = 0
        self.first = ts
        self.last = ts
        self.eids: list[str] = []
        self.sources = 0
        self.ips: list[str] | None = [] if ips else None  # addresses rolled into a subnet / AS
        self.limit = 0  # accounts at which the accumulator reports early (0: never)
        #: a key's reads (time, account, datacenter read, event id) while ``Combiner.timeline``
        self.reads: list[tuple[float, str, bool, str]] | None = None


class Combiner:
    """Accumulates one worker's events per short window; ``drain`` yields the partials."""

    #: the most reads of one key in one window kept for its view's ``timeline`` (0: none, one
    #: engine: it judges its own bursts). Set by the detector when keys' views are scored
    #: elsewhere (h-par8): a scorer merging several partitions' shares replays the reads to
    #: find the one at which one engine's accumulator reached ``burst_dc``. Past it the
    #: view goes without (judged at the window's close, as before; ``stats``)
    timeline = 0
    timeline_dropped = 0

    def __init__(self, window: float = 60.0, track_min: int = 3, burst: int = 25,
                 burst_dc: int = 8) -> None:
        self.window = window
        self.track_min = track_min
        self.burst = burst  # accounts in one accumulator that make it report before window end
        self.burst_dc = burst_dc  # the same for datacenter addresses and keys' datacenter reads
        self.hot: list[tuple[str, str]] = []
        self.paged: set[tuple[str, str]] = set()  # already critical: no early reports needed
        self.start: float | None = None
        self.src: dict[str, _Acc] = {}
        self.key: dict[str, _Acc] = {}
        self.actor: dict[str, _Acc] = {}
        self.countries: dict[str, int] = {}  # customer reads by source country, all windows
        self.total = 0

    def add(self, e: Event) -> None:
        ts = e.ts
        subj: str = e.subject_id  # type: ignore[assignment]  # a request has a subject_id (decode requires it)
        if self.start is None:
            self.start = ts - ts % self.window
        if e.actor_id == subj and e.actor_type == "customer":  # a customer's own credentials
            ip: str = e.src_ip  # type: ignore[assignment]  # logins and requests have a src_ip (decode requires it)
            a = self.src.get(ip)
            if a is None:
                a = self.src[ip] = _Acc(e.net, "customer", ts)
                a.eids.append(e.event_id)
                a.limit = self.burst_dc if e.net.net_class in _SUS else self.burst
            elif len(a.eids) < _SAMPLE:
                a.eids.append(e.event_id)
            a.subjects.add(subj)
            a.count += 1
            a.records += e.records
            a.last = ts
            if len(a.subjects) == a.limit and ("src_ip", ip) not in self.paged:
                self.hot.append(("src_ip", ip))
            k = e.key_id
            if k is not None:
                b = self.key.get(k)
                if b is None:
                    b = self.key[k] = _Acc(None, "customer", ts, sus=True)
                    b.eids.append(e.event_id)
                    if self.timeline:
                        b.reads = []
                b.subjects.add(subj)
                b.count += 1
                b.last = ts
                # (getattr: an accumulator restored from before; one engine keeps no reads)
                reads = getattr(b, "reads", None) if self.timeline else None
                if reads is not None:
                    if len(reads) < self.timeline:
                        reads.append((ts, subj, e.net.net_class in _SUS, e.event_id))
                    else:
                        b.reads = None
                        self.timeline_dropped += 1
                if e.net.net_class in _SUS:
                    b.sus.add(subj)  # type: ignore[union-attr]  # a key's accumulator is built with sus=True
                    if len(b.eids) < _SAMPLE:
                        b.eids.append(e.event_id)
                    if len(b.sus) == self.burst_dc and ("key", k) not in self.paged:  # type: ignore[arg-type]  # as above
                        self.hot.append(("key", k))
            return
        act: str = e.actor_id  # type: ignore[assignment]  # a request has an actor_id (decode requires it)
        c = self.actor.get(act)
        if c is None:
            c = self.actor[act] = _Acc(e.net, e.actor_type, ts, sus=True)  # type: ignore[arg-type]  # decode defaults actor_type to customer
            c.eids.append(e.event_id)
        elif len(c.eids) < _SAMPLE:
            c.eids.append(e.event_id)
        c.subjects.add(subj)
        c.count += 1
        c.records += e.records
        c.last = ts
        if e.net.net_class in _SUS:
            c.sus.add(subj)  # type: ignore[union-attr]  # an actor's accumulator is built with sus=True
        if len(c.subjects) == self.burst and c.ptype != "service" and \
                ("actor", act) not in self.paged:
            self.hot.append(("actor", act))

    def drain(self, hash_id: Callable[[str], int], is_home: Callable[[str], bool],
              tracked: Callable[[str, str], bool] | None = None) -> list[Partial]:
        """Close the window: partials of every entity worth sending (raw ids dropped here)."""
        out = self._emit(self.src, self.key, self.actor, hash_id, is_home, tracked)
        self.src, self.key, self.actor = {}, {}, {}
        self.hot = []
        self.start = None
        return out

    def drain_hot(self, hash_id: Callable[[str], int], is_home: Callable[[str], bool],
                  tracked: Callable[[str, str], bool] | None = None) -> list[Partial]:
        """Early partials of the accumulators that reached ``burst`` accounts mid-window.

        They leave the window's accumulators (later events start afresh); the scorer merges
        views of one window as sets, so nothing is counted twice.
        """
        src: dict[str, _Acc] = {}
        key: dict[str, _Acc] = {}
        actor: dict[str, _Acc] = {}
        for kind, ident in self.hot:
            pool, into = {"src_ip": (self.src, src), "key": (self.key, key),
                          "actor": (self.actor, actor)}[kind]
            a = pool.pop(ident, None)
            if a is not None:
                into[ident] = a
        self.hot = []
        out = self._emit(src, key, actor, hash_id, is_home, tracked)
        for p in out:
            p.early = True
        return out

    def _emit(self, srcs: dict[str, _Acc], keys: dict[str, _Acc], actors: dict[str, _Acc],
              hash_id: Callable[[str], int], is_home: Callable[[str], bool],
              tracked: Callable[[str, str], bool] | None) -> list[Partial]:
        window = self.start if self.start is not None else 0.0
        digests: dict[str, int] = {}
        out: list[Partial] = []
        rollup: dict[tuple[str, str], _Acc] = {}
        tmin = self.track_min
        countries = self.countries
        for ip, a in srcs.items():
            net = a.net
            if net is None:
                cls, home = "isp", True
            else:
                cc = net.country
                countries[cc] = countries.get(cc, 0) + a.count
                self.total += a.count
                cls = net.net_class
                # (home matters for the home ISP addresses only: the others are rolled up
                # and followed whatever their country; is_home reads ``total`` just updated)
                home = is_home(cc) if cls == "isp" else False
            n = len(a.subjects)
            if cls == "isp" and home:
                # a household, most of a window's addresses: no roll-up, followed from
                # ``track_min`` accounts or once tracked (a look-up in the window order)
                if n < tmin and (tracked is None or not tracked("src_ip", ip)):
                    continue
                out.append(self._partial("src_ip", ip, window, a, digests, hash_id))
                continue
            if cls != "private":
                for kind, ent in (("subnet", net.subnet), ("asn", net.asn_key)):  # type: ignore[union-attr]  # net is set here: no net makes cls isp and home, skipped
                    r = rollup.get((kind, ent))
                    if r is None:
                        r = rollup[(kind, ent)] = _Acc(net, "customer", a.first, ips=True)
                    r.subjects |= a.subjects
                    r.count += a.count
                    r.records += a.records
                    r.last = max(r.last, a.last)
                    r.sources += 1
                    r.ips.append(ip)  # type: ignore[union-attr]  # rollups are built with ips=True
                    if len(r.eids) < _SAMPLE:
                        r.eids.extend(a.eids[: _SAMPLE - len(r.eids)])
            # Datacenter addresses are followed from their first account; other networks once
            # an address carries several customers (a household is not worth the bookkeeping).
            need = 1 if cls == "hosting" else 2 if cls != "private" else tmin
            if n < need and (tracked is None or not tracked("src_ip", ip)):
                continue
            out.append(self._partial("src_ip", ip, window, a, digests, hash_id))
        for (kind, ent), r in rollup.items():
            out.append(self._partial(kind, ent, window, r, digests, hash_id))
        for k, b in keys.items():
            p = self._partial("key", k, window, b, digests, hash_id, False)
            reads = getattr(b, "reads", None)
            if reads is not None:
                tl = []
                for ts, s, dc, eid in reads:
                    h = digests.get(s)
                    if h is None:
                        h = digests[s] = hash_id(s)
                    tl.append([ts, h, dc, eid])
                p.timeline = tl
            out.append(p)
        for act, c in actors.items():
            internal = c.ptype == "service" and c.net is not None and c.net.net_class == "private"
            out.append(self._partial("actor", act, window, c, digests, hash_id, not internal))
        return out

    @staticmethod
    def _partial(kind: str, ent: str, window: float, a: _Acc, digests: dict[str, int],
                 hash_id: Callable[[str], int], sketch: bool = True) -> Partial:
        """Digest the window's raw ids (once per id per window) into a partial.

        ``sketch=False`` (signing keys, internal services): only the exact distinct count of
        the window is kept, plus the sketch of the datacenter subset; such counts add up across
        workers because data-access is partitioned by actor and these reads are self-reads.
        """
        # exact within a window: merging ints is cheap (``DistinctCounter.empty``: two per
        # window view; test_a_window_view_holds_what_the_dataclass_would_build in
        # tests/test_bulk_lookup.py compares them with the constructor's)
        d = DistinctCounter.empty(_WINDOW_EXACT)
        lo = hi = None
        numeric = 0
        if sketch:
            hs = []
            walk = kind == "src_ip" or kind == "actor"  # enumeration is judged on these
            for s in a.subjects:
                h = digests.get(s)
                if h is None:
                    h = digests[s] = hash_id(s)
                hs.append(h)
                if not walk:
                    continue
                m = _NUM.search(s)
                if m is not None:
                    v = int(m.group(1))
                    numeric += 1
                    if lo is None or v < lo:
                        lo = v
                    if hi is None or v > hi:
                        hi = v
            d.exact = set(hs)  # a fresh counter, exact up to 2**30: what update_many would do
        sus = DistinctCounter.empty(_WINDOW_EXACT)
        if a.sus:
            hs = []
            for s in a.sus:
                h = digests.get(s)
                if h is None:
                    h = digests[s] = hash_id(s)
                hs.append(h)
            sus.exact = set(hs)
        net = a.net
        # the accumulator is dropped after its window: its sample list moves into the view
        # (what ``Partial(kind, ent, window, a.count, ..., sketched=sketch)`` builds, each
        # field set here: the dataclass's own __init__ costs three times as much, once per
        # view; tests/test_bulk_lookup_speed.py checks the two agree, field by field)
        p = _new_partial(Partial)
        p.kind, p.entity, p.window, p.count, p.records = kind, ent, window, a.count, a.records
        p.distinct, p.sus, p.first, p.last, p.event_ids = d, sus, a.first, a.last, a.eids
        p.id_min, p.id_max, p.numeric, p.sources, p.source_ids = lo, hi, numeric, a.sources, []
        if net is not None:
            p.country, p.net_class, p.org = net.country, net.net_class, net.org
        else:
            p.country, p.net_class, p.org = "??", "", ""
        p.principal_type, p.n_distinct, p.sketched = a.ptype, len(a.subjects), sketch
        p.home, p.reads, p.early, p.timeline = None, {}, False, None
        if a.ips:
            p.source_ids = sorted({hash_id(ip) for ip in a.ips})
        return p


def _union(*counters: DistinctCounter | None) -> float:
    """Distinct elements over several counters, none of them modified."""
    u = DistinctCounter()
    for c in counters:
        if c is not None:
            u.merge(c)
    return u.estimate()


# ---------------------------------------------------------------------------------------------
# Per-entity state and baselines
# ---------------------------------------------------------------------------------------------


class _Ewma:
    """Mean and mean absolute deviation of past values (a robust own baseline)."""

    __slots__ = ("n", "mean", "dev")

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.dev = 0.0

    def learn(self, x: float, alpha: float = 0.2) -> None:
        if self.n == 0:
            self.mean, self.dev = x, max(1.0, 0.5 * x)
        else:
            self.dev += alpha * (abs(x - self.mean) - self.dev)
            self.mean += alpha * (x - self.mean)
        self.n += 1

    def high(self, k: float = 6.0) -> float:
        s = self.dev  # max(self.dev, 1.0, 0.1 * self.mean), written out (base.py, "Speed")
        if 1.0 > s:
            s = 1.0
        t = 0.1 * self.mean
        if t > s:
            s = t
        return self.mean + k * s


_NO_HISTORY = _Ewma()  # shared, never learnt into: an entity without history yet


class _Entity:
    __slots__ = ("kind", "peer", "first", "last", "h_epoch", "h", "h_prev", "h_sus",
                 "h_sus_prev", "h_rec", "h_rec_prev", "h_lo", "h_hi", "h_num", "h_flag",
                 "d_epoch", "d", "d_prev", "d_flag", "cov", "cov_start", "own_h", "own_d",
                 "own_t", "h_cnt", "d_cnt",
                 "country", "net_class", "org", "ptype", "sources", "h_srcs", "eids", "sent", "sent_ts")

    def __init__(self, kind: str, peer: str, p: Partial) -> None:
        self.kind = kind
        self.peer = peer
        self.first = self.last = p.first
        self.h_epoch = self.d_epoch = -1
        self.h = DistinctCounter()  # this hour's accounts
        self.d: DistinctCounter | None = None  # today's closed hours (this hour is in ``h``)
        # Datacenter reads are counted for keys and actors (sources are datacenters or not).
        self.h_sus: DistinctCounter | None = DistinctCounter() if kind in ("key", "actor") \
            else None
        self.h_prev = self.h_sus_prev = self.d_prev = 0.0
        self.h_rec = self.h_rec_prev = 0
        self.h_cnt = self.d_cnt = 0  # window distinct counts of unsketched views, summed
        self.h_lo: int | None = None
        self.h_hi: int | None = None
        self.h_num = 0
        self.h_flag = False
        self.d_flag = 0  # the day's highest flagged rank (0 none; a checkpoint may hold a bool)
        self.cov: DistinctCounter | None = None  # closed days within the coverage horizon
        self.cov_start = p.first
        self.own_h = _NO_HISTORY  # replaced by its own _Ewma at the first hour learnt
        self.own_d = _NO_HISTORY
        # Keys: all accounts per hour (their own_h counts datacenter reads).
        self.own_t: _Ewma | None = _Ewma() if kind == "key" else None
        self.country, self.net_class, self.org = p.country, p.net_class, p.org
        self.ptype = p.principal_type
        self.sources = 0  # distinct addresses behind a subnet / AS view this hour
        self.h_srcs: set[int] | None = None
        self.eids: list[str] = []
        self.sent = 0  # highest severity rank reported in the current episode
        self.sent_ts = -math.inf



def _ent_last(e: _Entity) -> float:
    return e.last


def _ent_reported(e: _Entity) -> bool:
    return e.sent > 0  # an alert was raised in its current episode


def _acc_last(a: _Acc) -> float:
    return a.last


def _checked(p: Partial) -> Partial:
    """``p`` when its fields have the types a view's have (a view comes from another
    process: one that would fail when merged or scored is refused when it arrives)."""
    def num(x: Any) -> bool:
        return type(x) in (int, float) and math.isfinite(x)

    ok = (type(p.kind) is str and type(p.entity) is str and num(p.window)
          and all(type(v) is int for v in (p.count, p.records, p.numeric, p.sources,
                                           p.n_distinct))
          and all(v is None or type(v) is int for v in (p.id_min, p.id_max))
          and (p.id_min is None) == (p.id_max is None)
          and isinstance(p.event_ids, list) and all(type(e) is str for e in p.event_ids)
          and isinstance(p.source_ids, list) and all(type(i) is int for i in p.source_ids)
          and isinstance(p.reads, dict)
          and all(type(c) is str and type(n) is int for c, n in p.reads.items())
          and all(type(v) is str for v in (p.country, p.net_class, p.org, p.principal_type))
          and type(p.sketched) is bool and type(p.early) is bool
          and p.home in (None, True, False)
          and (p.timeline is None or (isinstance(p.timeline, list) and all(
              type(r) is list and len(r) == 4 and num(r[0]) and type(r[1]) is int
              and type(r[2]) is bool and type(r[3]) is str for r in p.timeline))))
    if not (ok and num(p.first) and num(p.last)):
        raise ValueError("a window view with a field of the wrong type")
    p.window = float(p.window)
    return p


_KIND_RANK = {"src_ip": 0, "subnet": 1, "asn": 1, "key": 2, "actor": 3}
#: kinds whose every view comes from one input partition (data-access is keyed by actor): a
#: view is the entity's whole traffic, never merged (a burst stays a burst, at its time)
_WHOLE = frozenset({"actor"})


class ViewPool:
    """Window views of ``partitions`` input engines, merged per entity and window before they
    are scored (issue 17 item 5: the same pages as one engine of every event).

    One engine of every event scores a window's views when the window closes: one view per
    entity, counted over all its traffic, with the time of the entity's last event in the
    window (sources, then their subnets and ASes, then keys, each kind by its first event in
    the window). Input engines each see a share of a source's traffic: scored one by one,
    their views cross a threshold at another view than one engine's, with that view's time
    (another episode start, another alert id). So the views of window ``W`` are held here
    until every input partition has closed ``W`` (it sent a view of a later window, its
    engine time passed ``W``'s end by ``access_quiet``, the time by which bulk_lookup closes a
    window, or it flushed at the end of its input), then merged (:func:`merge_partials`:
    counts add, digests unite, first and last are the window's) and released in one engine's
    order. A burst an input engine reports mid-window joins its window's view.

    The held views, each partition's time and the views taken (``origin`` / ``seq``: a
    restored sender's views sent again are dropped) live on ``engine`` (``name``), so the
    scorer engine's checkpoint covers them. At most the engine's ``max_entities`` views are
    held (past it the oldest window goes on, counted in ``stats``).
    """

    def __init__(self, engine: Engine, partitions: int, name: str = "_partials_pool") -> None:
        self.engine = engine
        self.partitions = partitions
        det = engine.detectors.get("bulk_lookup")
        self.window = float(getattr(det, "window", 60.0))
        self.quiet = float(getattr(det, "access_quiet", 60.0))
        self.state: dict[str, Any] = engine.__dict__.setdefault(
            name, {"views": {}, "progress": {}, "later": {}, "flushed": [], "seen": {}})

    @property
    def pending(self) -> int:
        return sum(len(v) for v in self.state["views"].values())

    def add(self, partition: int, msg: dict[str, Any]) -> None:
        """A view (``Engine.drain_partials``) sent by input partition ``partition``."""
        st = self.state
        p = _checked(Partial.from_dict(msg["partial"]))  # a bad view is refused here, whole
        origin, seq = msg.get("origin"), msg.get("seq")
        if origin is not None:
            if type(origin) is not str or type(seq) is not int:
                raise ValueError("origin or seq of the wrong type")
            seen: dict[str, int] = st["seen"]
            if seq <= seen.get(origin, 0):
                self.engine.rejected["duplicate_partial"] += 1
                return
            seen[origin] = seq
        w = p.window
        st["views"].setdefault(w, []).append(p)
        later: dict[int, float] = st["later"]
        if w > later.get(partition, -math.inf):
            later[partition] = w  # its earlier windows are closed

    def advance(self, partition: int, now: float, flushed: bool = False) -> None:
        """Input partition ``partition``'s engine time reached ``now`` (``flushed``: it fired
        its timers at the end of its input)."""
        if not math.isfinite(now):
            raise ValueError("progress is not a finite number")
        st = self.state
        st["progress"][partition] = now
        done: list[int] = st["flushed"]
        if flushed and partition not in done:
            done.append(partition)
        elif not flushed and partition in done:
            done.remove(partition)

    def _closed(self, w: float) -> bool:
        st = self.state
        prog, later, done = st["progress"], st["later"], st["flushed"]
        due = w + self.window + self.quiet
        return all(p in done or later.get(p, -math.inf) > w or prog.get(p, -math.inf) >= due
                   for p in range(self.partitions))

    def release(self, everything: bool = False) -> list[dict[str, Any]]:
        """The merged views of every window all input partitions have closed, oldest window
        first (``everything``: all held views, at the end of the input)."""
        views: dict[float, list[Partial]] = self.state["views"]
        out: list[dict[str, Any]] = []
        for w in sorted(views):
            if not everything and not self._closed(w):
                break  # a later window is closed no earlier than this one
            out.extend(self._merged(views.pop(w)))
        cap = self.engine.config.max_entities
        while cap > 0 and views and self.pending > cap:  # a partition that never reports
            self.engine.stats["pool_released_early"] += 1
            out.extend(self._merged(views.pop(min(views))))
        return out

    def _merged(self, views: list[Partial]) -> list[dict[str, Any]]:
        parts = sorted(views, key=lambda p: (p.first, p.last))
        one: dict[tuple[str, str], Partial] = {}
        early: list[Partial] = []
        whole: list[Partial] = []
        reads: Counter[str] = Counter()
        for p in parts:
            if p.kind == "countries":
                reads.update(p.reads)
                continue
            p.home = None  # judged where every sender's customer reads by country are known
            if p.kind in _WHOLE:
                (early if p.early else whole).append(p)
                continue
            p.early = False  # a share's burst joins its window's view
            q = one.get((p.kind, p.entity))
            if q is None:
                one[(p.kind, p.entity)] = p
            else:
                merge_partials(q, p)
        det = self.engine.detectors.get("bulk_lookup")
        comb = det.combiner if isinstance(det, BulkLookup) else None
        for k, q in list(one.items()):
            if q.timeline is None:
                continue
            tl, q.timeline = q.timeline, None
            if comb is None or k in comb.paged or sum(r[2] for r in tl) < comb.burst_dc:
                continue  # no burst in one engine: the window's merged view
            burst, rest = _key_bursts(q, tl, comb.burst_dc)
            early.extend(burst)
            if rest is None:
                del one[k]
            else:
                one[k] = rest
        # one engine's order: the bursts as they happened, then the window's close
        early.sort(key=lambda p: (p.last, p.first))
        order = early + sorted([*one.values(), *whole], key=lambda p: (
            _KIND_RANK.get(p.kind, 4), p.first, p.kind == "asn", p.entity))
        if reads:  # first: one engine counts a window's reads before it scores its views
            w = parts[0].window
            order.insert(0, Partial("countries", "", w, first=w, last=w, reads=dict(reads)))
        return [{"detector": BulkLookup.id, "partial": p.to_dict()} for p in order]

def _key_bursts(q: Partial, timeline: list[list[Any]], burst_dc: int
                ) -> tuple[list[Partial], Partial | None]:
    """A key's window as one engine's accumulator saw it (h-par8): its reads of every
    partition (``timeline``) in time order, reported early at the read that made ``burst_dc``
    datacenter accounts (``Combiner.add``), the rest of the window a view of its own (None:
    no read after the burst). One burst at most: the key is paged by it, as a rule (one
    engine reports no burst of a paged key; whether this one pages is known once scored)."""
    reads = sorted(timeline, key=lambda r: r[0])

    def view(part: list[list[Any]], early: bool) -> Partial:
        subjects: set[int] = set()
        sus: set[int] = set()
        eids = [part[0][3]]
        for _, h, dc, eid in part:
            subjects.add(h)
            if dc:
                sus.add(h)
                if len(eids) < _SAMPLE:
                    eids.append(eid)
        d = DistinctCounter.empty(_WINDOW_EXACT)
        sd = DistinctCounter.empty(_WINDOW_EXACT)
        sd.exact = sus
        return Partial("key", q.entity, q.window, count=len(part), distinct=d, sus=sd,
                       first=part[0][0], last=part[-1][0], event_ids=eids,
                       country=q.country, net_class=q.net_class, org=q.org,
                       principal_type=q.principal_type, n_distinct=len(subjects),
                       sketched=False, early=early)

    seen: set[int] = set()
    for i, r in enumerate(reads):
        if r[2]:
            seen.add(r[1])
            if len(seen) == burst_dc:
                return [view(reads[: i + 1], True)], (view(reads[i + 1:], False)
                                                      if i + 1 < len(reads) else None)
    return [], q


class BulkLookup(Detector):
    id = "bulk_lookup"
    title = "Bulk lookup of customer accounts"
    description = ("One source address, subnet, network, signing key or actor touches far more "
                   "distinct customer accounts than its own history and its peers.")
    severity = "critical"
    attack = ("T1530", "T1213", "T1119")  # Data from Cloud Storage; from Info Repos; Automated Collection
    status = "test"
    entity_kinds = ("src_ip", "subnet", "asn", "key", "actor")
    wants = frozenset({"access"})
    triage = (
        "Check: how many distinct accounts the entity read against its baseline (evidence); for a "
        "source, its network (a datacenter abroad reading customers' own data with customer "
        "tokens is the Coupang pattern) and which signing keys and sessions it used; for a key, "
        "who owns it and whether it should still sign; for an actor, the tickets or cases that "
        "justify the lookups and the rows exported; for staff, the day evidence "
        "(distinct_accounts_local_day) names where the threshold came from (own days, peers or "
        "the prior): a page against a low own baseline is a change of habit, ask why. False "
        "positives: a corporate proxy or "
        "carrier NAT address shared by many customers, a privacy relay egress, a new internal "
        "batch job or a migration, a support campaign (mass outreach) — these settle into the "
        "entity's own baseline after a few hours. Respond: block the source, revoke and rotate "
        "the key, suspend the actor's access, invalidate the sessions involved, preserve the "
        "request logs, and count the exposed accounts for notification."
    )

    def __init__(self, window: float = 60.0, track_min: int = 3, coverage_days: float = 90.0,
                 idle: float = 2 * DAY, home_countries: tuple[str, ...] | None = None,
                 home_share: float = 0.05, enum_min: int = 30, enum_density: float = 0.9,
                 hst_warn: float = 0.98, hst_min_learned: int = 200, seed: int = 42,
                 staff_tz_hours: float | None = None, staff_own_days: int = 5,
                 staff_day_min: int = 25, staff_idle_days: float = 10.0,
                 access_quiet: float = 60.0, key_timeline: int = 4096,
                 staff_peer_days: int = 2048) -> None:
        self.window = window
        # h-par8: the most reads of a key per window and partition sent with its view when
        # keys are scored where several partitions' shares meet (``Combiner.timeline``)
        self.key_timeline = key_timeline
        # issue 14 item 5: a window waits for the access stream's time to pass its end, at
        # most this long past it in other event time (``on_time``)
        self.access_quiet = access_quiet
        self.coverage = coverage_days * DAY
        self.idle = idle
        self.home_fixed = frozenset(home_countries) if home_countries else None
        self.home_share = home_share
        self.enum_min = enum_min
        self.enum_density = enum_density
        self.hst_warn = hst_warn
        self.hst_min_learned = hst_min_learned
        # issue 14 item 4: staff days are local days judged on their own steady volume
        #: a fixed offset (seconds) when ``staff_tz_hours`` is given, else None: the
        #: deployment's local time (``ctx.local``); ``staff_off``: the offset at the last view
        self.staff_fixed = None if staff_tz_hours is None else staff_tz_hours * HOUR
        self.staff_off = 9 * HOUR if self.staff_fixed is None else self.staff_fixed
        self.staff_own_days = staff_own_days
        self.staff_day_min = staff_day_min
        self.staff_idle = staff_idle_days * DAY
        # Peers' completed local days: the last ``staff_peer_days`` per group (exact values,
        # global state, not per entity), their 99th percentile, and the local day closed last.
        self.staff_peer_days = staff_peer_days
        self._peers_d: dict[str, list[float]] = {}
        self._peer_d_n: dict[str, int] = {}
        self._peer_dq: dict[str, float] = {}
        self._staff_closed = -1  # local days up to this one are in the peers' days
        self._staff_next = -math.inf  # event time (window start) of the next local midnight
        self.combiner = Combiner(window, track_min)
        self.outbox: list[Partial] = []  # views of ``remote_kinds`` waiting to be sent
        self._handed: dict[str, float] = {}  # src_ip views sent: keep sending them (tracked)
        self._win_end = -math.inf
        self._ents: dict[tuple[str, str], _Entity] = {}
        self._kind_n: dict[str, int] = {}  # entities in ``_ents`` by kind (``tracked``)
        # the entities that may go idle before the next whole pass, by a time no later than
        # the one they go idle at (``expire``); None: the next sweep is a whole pass
        self._due: list[tuple[float, tuple[str, str]]] | None = None
        self._due_until = -math.inf
        self._due_cut = -math.inf
        self._peers: dict[str, stats.Quantile] = {}
        self._peer_n: dict[str, int] = {}
        self._hst = {f: anomaly.HalfSpaceTrees(n_trees=10, height=6, window_size=64,
                                               seed=seed + i)
                     for i, f in enumerate(("source", "key", "actor"))}
        self._hst_n = dict.fromkeys(self._hst, 0)

    # --- event path ----------------------------------------------------------------------
    def on_access(self, e: Event, ctx: Context) -> list[Finding]:
        out: list[Finding] = []
        if e.ts >= self._win_end:
            if self.combiner.start is not None:
                out = self.close_window(ctx)
            self._win_end = e.ts - e.ts % self.window + self.window
            ctx.wake_at(self._win_end, self.id)
            self.combiner.timeline = self.key_timeline if "key" in self.remote_kinds else 0
        comb = self.combiner
        comb.add(e)
        if comb.hot:  # a burst: judge it now rather than at the end of the window
            hot = comb.drain_hot(ctx.hash_one, self.is_home, self._is_tracked)
            out = out + self._observe_or_hand_out(hot, ctx)
        return out

    def on_time(self, now: float, ctx: Context) -> list[Finding]:
        """Close the window once the *access* stream's time has passed its end, or event time
        (a login, a watermark) is ``access_quiet`` past it with no access record after it.

        Logins and access reach the engine merged by event time only approximately: a login
        dated after the window's end may come before the window's last access records. A
        window closed by it would be scored without them, in another view than a replay of
        the same events scores (another alert id: issue 14 item 5)."""
        end = self._win_end
        if now < end or self.combiner.start is None:
            return []
        if getattr(ctx, "access_now", now) >= end or now - self.access_quiet >= end:
            return self.close_window(ctx)
        ctx.wake_at(end + self.access_quiet, self.id)  # the access stream is behind: wait
        return []

    def close_window(self, ctx: Context) -> list[Finding]:
        """Drain the combiner and score every partial (the in-process combiner path)."""
        parts = self.combiner.drain(ctx.hash_one, self.is_home, self._is_tracked)
        return self._observe_or_hand_out(parts, ctx)

    # --- the combiner across workers (Engine: ``remote_kinds``, ``drain_partials``) ----------
    remote_kinds: frozenset[str] = frozenset()  # set by the engine; empty: score everything here

    def _is_tracked(self, kind: str, ident: str) -> bool:
        return (kind, ident) in self._ents or (kind == "src_ip" and ident in self._handed)

    def _observe_or_hand_out(self, parts: list[Partial], ctx: Context) -> list[Finding]:
        """Score the views here, or put those of ``remote_kinds`` in the outbox (with this
        worker's verdict on their country: the scorer sees no raw traffic to learn it from)."""
        out: list[Finding] = []
        remote = self.remote_kinds
        if not remote:  # everything is scored here (replay, a single worker)
            observe = self.observe
            for p in parts:
                found = observe(p, ctx)
                if found:
                    out.extend(found)
            return out
        for p in parts:
            if p.kind in remote:
                if p.kind != "key":
                    p.home = self.is_home(p.country)
                if p.kind == "src_ip":
                    self._handed[p.entity] = p.last
                self.outbox.append(p)
            else:
                out.extend(self.observe(p, ctx))
        if "src_ip" in remote and self.home_fixed is None:
            # the customer reads by country counted since the last hand-out: the scorer
            # sums every sender's, so its home countries are one engine's (``ViewPool``;
            # home countries given in the configuration need none)
            comb = self.combiner
            told: dict[str, int] = self.__dict__.setdefault("_told", {})
            delta = {c: n - told.get(c, 0) for c, n in comb.countries.items()
                     if n != told.get(c, 0)}
            if delta:
                told.update((c, comb.countries[c]) for c in delta)
                w = self._win_end - self.window
                self.outbox.append(Partial("countries", "", w, first=w, last=w, reads=delta))
        return out

    def observe_remote(self, data: dict[str, Any], ctx: Context) -> list[Finding]:
        """Score one view sent by a worker (``Partial.to_dict``). Views of one entity come
        from several workers, a little out of order: an entity's time never goes back (a
        late view counts in the entity's current hour rather than resetting it)."""
        p = Partial.from_dict(data)
        if p.kind == "countries":  # another sender's customer reads by country
            comb = self.combiner
            for c, n in p.reads.items():
                comb.countries[c] = comb.countries.get(c, 0) + int(n)
                comb.total += int(n)
            return []
        ent = self._ents.get((p.kind, p.entity))
        if ent is not None and p.last < ent.last:
            p.last = ent.last
        return self.observe(p, ctx)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("outbox", [])  # a checkpoint from before the combiner
        self.__dict__.setdefault("_handed", {})
        if "staff_fixed" not in state:  # a checkpoint from before the deployment's local time
            self.staff_fixed = legacy_offset(state.get("staff_off", 9 * HOUR))
        for k, v in (("staff_off", 9 * HOUR), ("staff_own_days", 5), ("staff_day_min", 25),
                     ("staff_idle", 10 * DAY), ("_peers_d", {}), ("_peer_d_n", {}),
                     ("access_quiet", 60.0), ("key_timeline", 4096), ("staff_peer_days", 2048),
                     ("_peer_dq", {}), ("_staff_closed", -1), ("_staff_next", -math.inf)):
            self.__dict__.setdefault(k, v)
        if any(not isinstance(v, list) for v in self.__dict__["_peers_d"].values()):
            # a checkpoint from before the exact peers' days (streaming quantiles): relearnt
            # from the next local midnight on (20 peer-days: the prior until then)
            self._peers_d, self._peer_d_n, self._peer_dq = {}, {}, {}
        self.__dict__.setdefault("_kind_n", {})  # from before the counts: ``tracked`` counts
        self.__dict__.setdefault("_due", None)  # from before the queue: a whole pass first
        self.__dict__.setdefault("_due_until", -math.inf)
        self.__dict__.setdefault("_due_cut", -math.inf)

    # --- home countries --------------------------------------------------------------------
    def is_home(self, country: str) -> bool:
        """Customers' home countries: fixed, or learnt (share of customer reads)."""
        if self.home_fixed is not None:
            return country in self.home_fixed or country == "??"
        c = self.combiner.countries
        total = self.combiner.total
        if total < 50 or country == "??":
            return True  # too early to tell: be conservative
        return c.get(country, 0) >= self.home_share * total

    # --- scoring a merged view ---------------------------------------------------------------
    def _peer_of(self, p: Partial) -> str:
        if p.kind == "key":
            return "key"
        if p.kind == "actor":
            return f"actor/{p.principal_type}"
        cls = p.net_class or "isp"
        home = cls == "private" or (self.is_home(p.country) if p.home is None else p.home)
        return f"{cls}/{'home' if home else 'abroad'}"

    def observe(self, p: Partial, ctx: Context) -> list[Finding]:
        """Fold one (merged) window view into its entity and score it."""
        fixed = self.staff_fixed
        self.staff_off = fixed if fixed is not None else ctx.local.offset(p.window)
        if p.window >= self._staff_next:  # a new local day: staff's previous days are complete
            self._close_staff_days(p.window)
        key = (p.kind, p.entity)
        ent = self._ents.get(key)
        if ent is None:
            ent = self._ents[key] = _Entity(p.kind, self._peer_of(p), p)
            kind_n = self._kind_n
            kind_n[p.kind] = kind_n.get(p.kind, 0) + 1
            if p.first + self.idle < self._due_cut:  # (late) may go idle before the next pass
                heappush(self._due, (p.first + self.idle, key))  # type: ignore[arg-type]  # a cut is set with the queue
        elif p.kind != "actor" and p.kind != "key":
            ent.peer = self._peer_of(p)  # home countries are learnt as we go
        ts = p.last
        if ent.cov is not None:
            self._roll(ent, ts)
            if ent.cov is None and ent.last + self.idle < self._due_cut:
                # coverage ended: the entity's idle time shrank to ``idle``
                heappush(self._due, (ent.last + self.idle, key))
        else:
            self._roll(ent, ts)
        if ts > ent.last:  # max(ent.last, ts) (base.py, "Speed")
            ent.last = ts
        if p.sketched:
            ent.h.merge(p.distinct)
        else:
            ent.h_cnt += p.n_distinct
        if ent.h_sus is not None and (p.sus.exact is None or p.sus.exact):
            ent.h_sus.merge(p.sus)  # (an empty subset adds nothing: most views have none)
        ent.h_rec += p.records
        if p.source_ids:
            if ent.h_srcs is None:
                ent.h_srcs = set()
            if len(ent.h_srcs) < 64:
                ent.h_srcs.update(p.source_ids)
            ent.sources = len(ent.h_srcs)
        if p.id_min is not None:
            lo, hi = ent.h_lo, ent.h_hi  # min() and max() written out (base.py, "Speed")
            ent.h_lo = p.id_min if lo is None or p.id_min < lo else lo
            ent.h_hi = p.id_max if hi is None or p.id_max > hi else hi  # type: ignore[operator]  # id_max is set with id_min (checked above)
            ent.h_num += p.numeric
        ent.eids = (p.event_ids + ent.eids)[:_SAMPLE]
        return self._score(ent, p, ctx)

    @staticmethod
    def _covers(ent: _Entity) -> bool:
        """Whether cumulative coverage is kept: datacenter addresses abroad (slow-and-low)."""
        return ent.cov is not None or (ent.kind == "src_ip" and ent.peer == "hosting/abroad")

    def _roll(self, ent: _Entity, ts: float) -> None:
        he = int(ts // HOUR)
        if he != ent.h_epoch:
            if ent.h_epoch >= 0:
                n = ent.h.estimate() + ent.h_cnt
                if not ent.h_flag:
                    if ent.kind == "key":
                        ent.own_t.learn(n)  # type: ignore[union-attr]  # a key entity has its own models (_Entity)
                        if ent.own_h.n == 0:  # never learn into the shared empty history
                            ent.own_h = _Ewma()
                        ent.own_h.learn(ent.h_sus.estimate())  # type: ignore[union-attr]  # as above
                    else:
                        if ent.own_h.n == 0:  # never learn into the shared empty history
                            ent.own_h = _Ewma()
                        ent.own_h.learn(n)
                        self._peer_learn(ent.peer, n)
                ent.h_prev = n if he == ent.h_epoch + 1 else 0.0
                ent.h_sus_prev = ent.h_sus.estimate() if he == ent.h_epoch + 1 and \
                    ent.h_sus is not None else 0.0
                ent.h_rec_prev = ent.h_rec if he == ent.h_epoch + 1 else 0
                # The hour joins the day's closed hours (moved, not copied: one set per entity).
                if ent.d is None:
                    ent.d = ent.h
                elif ent.h.estimate():
                    ent.d.merge(ent.h)
                ent.d_cnt += ent.h_cnt
            ent.h_epoch = he
            ent.h = DistinctCounter()
            ent.h_cnt = 0
            if ent.h_sus is not None:
                ent.h_sus = DistinctCounter()
            ent.h_rec = 0
            ent.h_lo = ent.h_hi = None
            ent.h_num = 0
            ent.h_flag = False
            if ent.h_srcs is not None:
                ent.h_srcs.clear()
        staff = ent.kind == "actor" and ent.ptype == "employee"
        de = int((ts + self.staff_off) // DAY) if staff else int(ts // DAY)
        if de != ent.d_epoch:
            if ent.d_epoch >= 0:
                n = (ent.d.estimate() if ent.d is not None else 0.0) + ent.d_cnt
                # A member of staff's day that only warned (``d_flag`` 1), at the level of
                # the day before (within x1.25 either way), is learnt all the same: a heavy
                # but steady agent just over the group's threshold would otherwise warn every
                # day and never get an own history (a flagged day teaches nothing); a rising
                # day or a critical one is never learnt.
                if not ent.d_flag or (staff and ent.d_flag == 1 and ent.d_prev > 0.0 and
                                      0.8 * ent.d_prev <= n <= 1.25 * ent.d_prev):
                    if ent.own_d.n == 0:
                        ent.own_d = _Ewma()
                    ent.own_d.learn(n)
                ent.d_prev = n if de == ent.d_epoch + 1 else 0.0
                if ent.d is not None and self._covers(ent):
                    if ent.cov is None:
                        ent.cov = ent.d
                    else:
                        ent.cov.merge(ent.d)
            ent.d_epoch = de
            ent.d = None
            ent.d_cnt = 0
            ent.d_flag = 0
        if ent.cov is not None and ts - ent.cov_start > self.coverage:
            ent.cov = None
            ent.cov_start = ts

    def _peer_learn(self, peer: str, n: float) -> None:
        q = self._peers.get(peer)
        if q is None:
            q = self._peers[peer] = stats.Quantile(0.99)
        q.update(n)
        self._peer_n[peer] = self._peer_n.get(peer, 0) + 1

    @staticmethod
    def _peer_day(ent: _Entity) -> str:
        """The peer group of a member of staff for daily counts. The contract carries no role
        or team: the principal type and the network class its requests come from (office
        egress, engineers' VPN on private addresses, a cloud) are what the events say."""
        return f"{ent.ptype}/{ent.net_class or 'isp'}"

    def _close_staff_days(self, ts: float) -> None:
        """At a local midnight (the first window past it), every member of staff's day before
        it is complete: each unflagged one joins its peer group's days, and each group's 99th
        percentile is computed once. Learnt at the entity's next view instead, a day would join
        the peers only when its owner came back: on a team's second morning the peers' days
        were those of the early shift only, their percentile far under the heavy agents' days
        (issue 14 item 6, "heavy but steady support staff, new hires stay quiet")."""
        off = self.staff_off
        de = int((ts + off) // DAY)  # the local day starting
        self._staff_next = (de + 1) * DAY - off
        done = self._staff_closed
        if de - 1 <= done:
            return
        changed: set[str] = set()
        for ent in self._ents.values():
            if ent.kind != "actor" or ent.ptype != "employee" or ent.d_flag or \
                    not done < ent.d_epoch < de:
                continue
            # the day's closed hours and its last hour (rolled with the day: in the same day)
            n = _union(ent.d, ent.h) + ent.d_cnt + ent.h_cnt
            peer = self._peer_day(ent)
            self._peer_day_learn(peer, n)
            changed.add(peer)
        for peer in changed:
            vals = sorted(self._peers_d[peer])
            self._peer_dq[peer] = vals[min(len(vals) - 1, math.ceil(0.99 * len(vals)) - 1)]
        self._staff_closed = de - 1

    def _peer_day_learn(self, peer: str, n: float) -> None:
        days = self._peers_d.get(peer)
        if days is None:
            days = self._peers_d[peer] = []
        days.append(n)
        if len(days) > 2 * self.staff_peer_days:
            del days[:-self.staff_peer_days]  # the most recent days (trimmed in one step)
        self._peer_d_n[peer] = self._peer_d_n.get(peer, 0) + 1

    def _staff_day(self, ent: _Entity, prior: int, explain: bool = True
                   ) -> tuple[float, float, str]:
        """(warning, critical, basis) distinct customers in a local day for a member of staff.

        Own history of ``staff_own_days`` unflagged days or more sets the threshold on its own,
        lower or higher than the prior: mean + 4 spreads (spread: the deviation, at least a
        quarter of the mean and 3), at least ``staff_day_min``. Fewer days: the prior; peers'
        99th percentile of completed days (x1.5, at least 100) replaces it once 20 peer-days are
        known, so it lowers it for a quiet team and raises it for a busy one. Own history raises it
        (own days above it: one day to at most 1.5x that day, two or more to mean + 4 spreads;
        a steady day that only warned is learnt too: see the day's roll), or, from two days,
        pulls it toward the own threshold (own
        days under it: a weight of (days - 1) / (``staff_own_days`` - 1), geometric), so the
        threshold does not fall from the group's to the person's in one step on the fifth day,
        and a light member of a busy group is not covered by the group's heaviest days for four
        days. ``explain=False``: the basis is left empty (the scoring path reads the
        threshold on every view of staff; the words are written only for a finding)."""
        o = ent.own_d
        if o.n >= self.staff_own_days:
            w = max(float(self.staff_day_min), o.mean + 4.0 * max(o.dev, 0.25 * o.mean, 3.0))
            return w, 2.0 * w, f"own {o.mean:.0f}/day (n={o.n} days)" if explain else ""
        w, basis = float(prior), "prior for staff without history"
        peer = self._peer_day(ent)
        if self._peer_d_n.get(peer, 0) >= 20:
            v = self._peer_dq.get(peer)
            if v is not None:
                w = max(100.0, 1.5 * v)
                basis = f"{peer} peers p99 {v:.0f}/day (completed days)" if explain else ""
        if o.n >= 1:
            # own days above the threshold raise it; one day alone at most to 1.5x that day
            hi = o.high(4.0) if o.n >= 2 else 1.5 * o.mean
            if hi > w:
                w, basis = hi, f"own {o.mean:.0f}/day (n={o.n} days)" if explain else ""
            elif o.n >= 2:
                # Own days under the group's: each day known moves the threshold from the
                # group's toward the own one (geometrically), which it reaches at
                # ``staff_own_days``. One day alone does not (a first day is often a short one).
                own = max(float(self.staff_day_min),
                          o.mean + 4.0 * max(o.dev, 0.25 * o.mean, 3.0))
                if own < w:
                    f = (o.n - 1) / max(1, self.staff_own_days - 1)
                    w = w ** (1.0 - f) * own ** f
                    basis = f"own {o.mean:.0f}/day (n={o.n} days) weighed {f:.0%} against " \
                        f"{basis}" if explain else ""
        return w, 2.0 * w, basis

    def _peer_high(self, peer: str) -> float | None:
        if self._peer_n.get(peer, 0) < 20:
            return None
        v = self._peers[peer].get()
        return None if v is None else float(v)

    def _priors(self, ent: _Entity) -> tuple[int, int, int, int, int, int]:
        if ent.kind == "key":
            return KEY_PRIORS
        if ent.kind == "actor":
            return ACTOR_PRIORS.get(ent.ptype, ACTOR_PRIORS["customer"])
        p = SOURCE_PRIORS.get(ent.peer, SOURCE_PRIORS["isp/abroad"])
        if ent.kind == "src_ip":
            return p
        m = 2 if ent.kind == "subnet" else 3  # many addresses: VPN and proxy users add up
        mh = 1.5 if ent.kind == "subnet" else 2.0
        return (round(p[0] * mh), round(p[1] * mh), p[2] * m, p[3] * m, 0, 0)

    def _score(self, ent: _Entity, p: Partial, ctx: Context) -> list[Finding]:
        ts = p.last
        frac_h = (ts % HOUR) / HOUR
        h_now = ent.h.estimate()
        dh = h_now + ent.h_cnt + ent.h_prev * (1.0 - frac_h)
        d_closed = ent.d.estimate() if ent.d is not None else 0.0
        today = d_closed + h_now + ent.d_cnt + ent.h_cnt  # an upper bound until made exact
        today_exact = ent.d is None or not h_now
        rec_h = ent.h_rec + ent.h_rec_prev * (1.0 - frac_h)
        wh, ch, wd, cd, wc, cc = self._priors(ent)
        staff = ent.kind == "actor" and ent.ptype == "employee"
        sw: float | None = None
        if staff:  # local days on their own steady volume (issue 14 item 4)
            # Speed: a floor of ``_staff_day``'s threshold (two own days or more:
            # ``staff_day_min``, the least a blend reaches; else the prior, or peers' 100 when
            # lower) decides the fast path below for a
            # day far under it; the threshold itself is read past the fast path.
            floor = float(self.staff_day_min) if ent.own_d.n >= 2 else min(float(wd), 100.0)
            if today < floor / 2:
                wd_fast = floor
            else:
                sw, sc, _ = self._staff_day(ent, wd, explain=False)
                wd_fast = sw
        else:
            wd_fast = wd
        # Fast path: far below every threshold (each is at least its prior) and too small a
        # view for the model: nothing to judge, nothing to learn.
        if ent.kind != "key" and p.n_distinct < 3:
            if ent.kind == "actor" and ent.ptype == "service" and ent.net_class == "private":
                if ent.own_h.n < 3 or dh < ent.own_h.high():
                    return []
            elif dh < wh / 2 and h_now < self.enum_min and (
                    not wd or today + (0.0 if staff else ent.d_prev) < wd_fast / 2) and (
                    not wc or not self._covers(ent) or today + (
                        ent.cov.estimate() if ent.cov is not None else 0.0) < wc / 2):
                rp = RECORD_PRIORS.get(ent.ptype) if ent.kind == "actor" else None
                if rp is None or rec_h < rp[0] / 2:
                    return []
        if staff and sw is None:
            sw, sc, _ = self._staff_day(ent, wd, explain=False)
            wd_fast = sw
        frac_d = (ts % DAY) / DAY
        sus_h = (ent.h_sus.estimate() if ent.h_sus is not None else 0.0) + \
            ent.h_sus_prev * (1.0 - frac_h)
        if not today_exact and wd and today >= wd_fast:
            lower = max(d_closed, h_now) + ent.d_cnt + ent.h_cnt
            if lower >= 4 * cd:  # far past any day threshold: spare the sketch union
                today = lower
            else:
                today = _union(ent.d, ent.h) + ent.d_cnt + ent.h_cnt
            today_exact = True
        # Staff: the local day so far (the day of their shifts), against a day threshold learnt
        # on the same quantity; others: a sliding 24 h (the previous day weighted by overlap).
        dd = today if staff else today + ent.d_prev * (1.0 - frac_d)
        covers = self._covers(ent)
        cov = (ent.cov.estimate() if ent.cov is not None else 0.0) + today if covers else 0.0
        if covers and ent.cov is not None and wc and cov >= wc:
            lower = max(ent.cov.estimate(), today)
            cov = lower if lower >= 4 * cc else _union(ent.cov, ent.d, ent.h)
        # The counted quantity: keys are judged on what they read from datacenters.
        main_h = sus_h if ent.kind == "key" else dh
        main_d = dd
        own_hi = ent.own_h.high() if ent.own_h.n >= 3 else None
        own_d_hi = ent.own_d.high(4.0) if ent.own_d.n >= 2 else None
        peer_q = self._peer_high(ent.peer)
        peer_hi = 2.0 * peer_q if peer_q is not None else None
        if ent.kind == "key":
            peer_hi = None  # keys differ too much from each other: own history only
        warn_h: float = wh  # max(wh, own_hi or 0.0, peer_hi or 0.0), written out (base.py, "Speed")
        if (own_hi or 0.0) > warn_h:
            warn_h = own_hi or 0.0
        if (peer_hi or 0.0) > warn_h:
            warn_h = peer_hi or 0.0
        if ent.kind == "key" and dh > 0 and sus_h / dh < 0.5:
            # A busy key with some VPN customers: warn past 1% of its accounts from datacenters.
            warn_h = max(warn_h, 2.0 * wh, 0.01 * dh)
        crit_h = max(float(ch), 2.0 * warn_h if warn_h > wh else 0.0)
        reasons: list[tuple[int, str]] = []  # (severity rank, feature)
        rank = 0
        if main_h >= warn_h:
            r = 2 if main_h >= crit_h else 1
            if ent.kind == "key" and dh > 0 and sus_h / dh < 0.5:
                r = 1  # the active key: its datacenter share is small; the sources page
            reasons.append((r, "hour"))
        own_t_hi = ent.own_t.high() if ent.own_t is not None and ent.own_t.n >= 3 else None
        if ent.kind == "key" and own_t_hi is not None and dh >= max(50.0, 2 * own_t_hi):
            reasons.append((1, "key_rate"))
        lim = {"hour": (warn_h, crit_h), "coverage": (float(wc), float(cc))}
        if wd and ent.kind != "key":
            if staff:
                warn_d, crit_d = wd_fast, sc  # (wd_fast is sw for staff past the fast path)
            else:
                warn_d = max(float(wd), own_d_hi or 0.0)
                crit_d = max(float(cd), 2.0 * warn_d if warn_d > wd else 0.0)
            lim["day"] = (warn_d, crit_d)
            if main_d >= warn_d:
                reasons.append((2 if main_d >= crit_d else 1, "day"))
        if wc and cov >= wc:
            reasons.append((2 if cov >= cc else 1, "coverage"))
        density = 0.0
        cur = ent.h.estimate()  # this hour's accounts with known ids (the id range's hour)
        if ent.h_lo is not None and ent.h_hi is not None:
            density = min(ent.h_num, cur) / (ent.h_hi - ent.h_lo + 1)
        if cur >= self.enum_min and density >= self.enum_density and ent.kind != "key":
            reasons.append((2 if cur >= 4 * self.enum_min else 1, "enumeration"))
        rp = RECORD_PRIORS.get(ent.ptype) if ent.kind == "actor" else None
        if rp is not None and rec_h >= rp[0]:
            reasons.append((2 if rec_h >= rp[1] else 1, "records"))
        private_service = ent.kind == "actor" and ent.ptype == "service" and \
            ent.net_class == "private"
        if (ent.kind == "subnet" or ent.kind == "asn") and (
                ent.sources < 2 or h_now < 2 * ent.sources):
            # A single address: its own view says it all. About one account per address: VPN
            # customers each on their own exit address, not servers reading many accounts.
            reasons = []
        if private_service:  # internal batches and consumers: own history only, info at most
            over = own_hi is not None and dh >= own_hi
            reasons = [(1, "hour")] if over else []
        if reasons:
            rank = max(r for r, _ in reasons)
        # The shared model on the window view: scored always, learnt only when nothing flagged.
        fam = "key" if ent.kind == "key" else "actor" if ent.kind == "actor" else "source"
        model = self._hst[fam]
        # Single households teach the model nothing; internal services have their own rule.
        use = p.n_distinct >= 3 and not private_service
        warm = use and self._hst_n[fam] >= self.hst_min_learned
        x = {  # the features, for the model only
            "h": min(1.0, math.log1p(dh) / math.log1p(1e5)),
            "w": min(1.0, math.log1p(p.n_distinct) / math.log1p(1e4)),
            "s": (sus_h / dh) if dh else 0.0,
            "r": min(1.0, math.log1p(rec_h / max(dh, 1.0)) / math.log1p(1e4)),
        } if use else _NO_VIEW
        # (one walk of the trees for the score and the learning: river_compat)
        hst, walked = (hst_score(model, x) if warm else (0.0, None))
        hst = float(hst)
        if warm and hst >= self.hst_warn and dh >= wh / 2 and rank == 0 and not private_service:
            reasons.append((1, "model"))
            rank = 1
        if rank and private_service:
            rank = 0
            sev = "info"
        else:
            sev = SEVERITIES[rank] if rank else ""
        if use and rank == 0 and hst < self.hst_warn:
            if walked is not None:
                hst_learn_walked(model, walked)
            else:
                model.learn_one(x)
            self._hst_n[fam] += 1
        if not reasons:
            return []
        ent.h_flag = True
        if rank > ent.d_flag:  # the day's highest rank (1 for an info or warning)
            ent.d_flag = rank
        elif not ent.d_flag:
            ent.d_flag = 1
        if not sev:
            return []
        r = SEVERITIES.index(sev)
        if ts - ent.sent_ts > 3 * HOUR:
            ent.sent = -1  # the engine's episode has ended long since
            self.combiner.paged.discard((ent.kind, p.entity))
        if r <= ent.sent and ts - ent.sent_ts < _REFRESH:
            return []  # the engine would suppress it: do not spend time explaining it
        ent.sent = max(ent.sent, r)
        ent.sent_ts = ts
        if ent.sent == 2 or ent.kind == "key":  # keys escalate on their share: window close
            self.combiner.paged.add((ent.kind, p.entity))
        if not today_exact:  # the evidence states exact figures
            dd = _union(ent.d, ent.h) + ent.d_cnt + ent.h_cnt + (
                0.0 if staff else ent.d_prev * (1.0 - frac_d))
        return [self._finding(ent, p, sev, dh, dd, sus_h, rec_h, cov, density, hst,
                              lim, own_hi, peer_q, reasons, ctx,
                              self._staff_day(ent, wd)[2] if staff else "")]

    # --- explanation -----------------------------------------------------------------------
    def _finding(self, ent: _Entity, p: Partial, sev: str, dh: float, dd: float, sus_h: float,
                 rec_h: float, cov: float, density: float, hst: float,
                 lim: dict[str, tuple[float, float]], own_hi: float | None,
                 peer_q: float | None, reasons: list[tuple[int, str]], ctx: Context,
                 s_basis: str = "") -> Finding:
        staff = bool(s_basis)
        feats = {f for _, f in reasons}
        kind, ident = ent.kind, p.entity
        own_txt = f"{ent.own_h.mean:.0f}/h (n={ent.own_h.n} h)" if own_hi is not None \
            else "none yet"
        peer_txt = f"p99 {peer_q:.0f}/h" if peer_q is not None else "none yet"
        prior = self._priors(ent)
        n_h, n_d = round(dh), round(dd)
        where = f"{ent.country}, {ent.net_class} {ent.org}".strip()
        group = ent.peer.replace("/", " ")
        th = lim["hour"]
        order = ("hour", "day", "coverage", "key_rate", "enumeration", "records", "model")
        primary = max(reasons, key=lambda r: (r[0], -order.index(r[1])))[1]
        if primary == "day":
            n_main, span, usual = n_d, "today (local day)" if staff else "within a day", \
                f"<= {lim['day'][0]:.0f}/day" + (f" ({s_basis})" if staff else "")
            own_txt = f"{ent.own_d.mean:.0f}/day (n={ent.own_d.n} days)" if ent.own_d.n >= 2 \
                else "none yet"
        elif primary == "coverage":
            n_main, span, usual = round(cov), f"since {iso(ent.cov_start)[:10]}", \
                f"<= {lim['coverage'][0]:.0f} over {self.coverage / DAY:g} days"
        else:
            n_main, span, usual = n_h, "within an hour", f"<= {th[0]:.0f}/h"
        if kind == "key":
            share = sus_h / dh if dh else 0.0
            if primary == "key_rate":
                own_t = ent.own_t or _Ewma()
                summary = (f"Signing key {ident} served {n_h} distinct customer accounts within "
                           f"an hour: usual is {own_t.mean:.0f}/h (own history, n={own_t.n} h).")
            else:
                summary = (f"Signing key {ident} vouched for {round(sus_h)} distinct customer "
                           f"accounts read from datacenter or VPN networks within an hour "
                           f"({share:.0%} of the {n_h} accounts it served): usual is "
                           f"<= {th[0]:.0f} (own history: {own_txt}).")
        elif kind == "actor":
            who = {"employee": "Employee", "service": "Service"}.get(ent.ptype, "Customer")
            summary = (f"{who} {ident} read {n_main} distinct customer accounts {span} "
                       f"({n_h} in the last hour, {n_d} today, {round(rec_h)} rows in the last "
                       f"hour): usual is {usual} (own history: {own_txt}; {ent.ptype} peers: "
                       f"{peer_txt}).")
        else:
            what = {"src_ip": ident, "subnet": f"{ent.sources} addresses in {ident}",
                    "asn": f"{ent.sources} addresses of {ident}"}[kind]
            summary = (f"{what} ({where}) was used by {n_main} distinct customer accounts "
                       f"{span}, each with its own credentials: usual is {usual} for this "
                       f"{'address' if kind == 'src_ip' else kind} (prior for {group}; own "
                       f"history: {own_txt}; peers: {peer_txt}).")
        if "records" in feats:
            summary += f" {round(rec_h)} rows returned in the last hour."
        if "enumeration" in feats:
            summary += f" Account ids walked in sequence ({density:.0%} of the id range)."
        evidence = [
            ev("distinct_accounts_1h", n_h, f"warning >= {th[0]:.0f}, critical >= {th[1]:.0f}",
               f"own history {own_txt}; {ent.peer} peers {peer_txt}; prior {prior[0]}/{prior[1]} "
               f"for {group}"),
            ev("distinct_accounts_24h" if not staff else "distinct_accounts_local_day", n_d,
               f"warning >= {lim['day'][0]:.0f}, critical >= {lim['day'][1]:.0f}"
               if "day" in lim else "not judged",
               f"own daily history {ent.own_d.mean:.0f} (n={ent.own_d.n} days)"
               + (f"; threshold from {s_basis}" if staff else "")),
            ev("distinct_accounts_window", p.n_distinct,
               f"{self.window:g}s window", f"{p.count} requests, {p.records} rows"),
        ]
        if kind == "key":
            evidence.append(ev("accounts_from_datacenters_1h", round(sus_h),
                               f"warning >= {prior[0]}, critical >= {prior[1]} when most of the "
                               "key's reads come from datacenters",
                               f"{sus_h / dh if dh else 0:.0%} of {n_h} accounts"))
        if self._covers(ent):
            evidence.append(ev("coverage_accounts", round(cov),
                               f"warning >= {prior[4]}, critical >= {prior[5]}" if prior[4]
                               else "not judged", f"since {iso(ent.cov_start)}"))
        if "records" in feats:
            rp = RECORD_PRIORS.get(ent.ptype, (0, 0))
            evidence.append(ev("rows_returned_1h", round(rec_h),
                               f"warning >= {rp[0]}, critical >= {rp[1]}", "exports and searches"))
        if "enumeration" in feats:
            evidence.append(ev("id_sequence_density", round(density, 3),
                               f">= {self.enum_density} with >= {self.enum_min} accounts",
                               "share of the id range between the lowest and highest account "
                               "read that was read"))
        evidence.append(ev("model_score", round(hst, 3), f"warning >= {self.hst_warn}",
                           f"HalfSpaceTrees over {ent.peer} window views"))
        evidence.append(ev("first_seen", iso(ent.first), "", ", ".join(sorted(feats))))
        ratio = max(dh / max(th[0], 1.0), sus_h / max(th[0], 1.0) if kind == "key" else 0.0)
        score = max(hst, 1.0 - 0.5 ** ratio if sev != "info" else 0.3)
        return Finding(self.id, kind, ident, sev, score, summary, evidence,
                       list(dict.fromkeys(ent.eids))[:_SAMPLE * 2], p.last)

    # --- housekeeping ----------------------------------------------------------------------
    def expire(self, now: float) -> None:
        idle = self.idle
        staff_idle = max(idle, self.staff_idle)  # weekends and leave: keep staff history

        def after(e: _Entity) -> float:  # how long the entity is kept idle
            return idle * 4 if e.cov is not None else \
                staff_idle if e.ptype == "employee" and e.own_d.n else idle

        ents = self._ents
        kind_n = self._kind_n
        paged = self.combiner.paged
        due = self._due
        dead: list[tuple[str, str]] = []
        if due is None or now > self._due_until:
            # A whole pass every ``_DUE_SPAN`` of event time: the idle entities go, and those
            # that may go idle before the next pass are queued by last + their idle time. That
            # time only grows (the coverage's end, which shrinks it, queues the entity again,
            # as does a new entity with an older time), so the sweeps in between find exactly
            # the entities a whole pass would (a second of slack for float rounding).
            self._due_until = now + _DUE_SPAN
            cut = self._due_cut = self._due_until + 1.0
            due = []
            for k, e in ents.items():
                keep = after(e)
                if now - e.last > keep:
                    dead.append(k)
                elif e.last + keep < cut:
                    due.append((e.last + keep, k))
            heapify(due)
            self._due = due
        else:
            cut = self._due_cut
            again = []
            limit = now + 1.0
            while due and due[0][0] < limit:
                k = heappop(due)[1]
                q = ents.get(k)
                if q is None:
                    continue  # evicted at the cap, or already gone
                keep = after(q)
                if now - q.last > keep:
                    dead.append(k)
                elif q.last + keep < cut:
                    again.append((q.last + keep, k))
            for item in again:
                heappush(due, item)
        for k in dead:
            if k in ents:  # (an entity queued twice)
                del ents[k]
                kind_n[k[0]] = kind_n.get(k[0], 0) - 1  # tracked() recounts if out of step
                paged.discard(k)
        if self._handed:
            self._handed = {ip: t for ip, t in self._handed.items() if now - t <= idle}

    def shed(self, cap: int) -> int:
        paged = self.combiner.paged
        kind_n = self._kind_n

        def gone(k: tuple[str, str], e: _Entity) -> None:
            paged.discard(k)
            kind_n[k[0]] = kind_n.get(k[0], 0) - 1  # tracked() recounts if out of step

        n = evict(self._ents, cap, _ent_last, _ent_reported, gone)
        n += evict(self._handed, cap, float)
        comb = self.combiner  # this window's accumulators: the busiest survive a flood
        for table in (comb.src, comb.key, comb.actor):
            n += evict(table, cap, _acc_last, lambda a: len(a.subjects) >= comb.track_min)
        return n

    def tracked(self) -> dict[str, int]:
        # kept up to date where ``_ents`` changes: the engine's byte budget reads this every
        # ``shed_every`` events, and counting the keys of a table of 200,000 entities took
        # ~10-14 ms a call, ~6 us per event (docs/benchmarks.md, "Steady once the cap binds")
        kind_n = self._kind_n
        if sum(kind_n.values()) != len(self._ents):  # a checkpoint from before the counts
            kind_n = self._kind_n = dict(Counter(map(itemgetter(0), self._ents)))
        return {k: n for k, n in kind_n.items() if n}

    def describe(self, kind: str, ident: str) -> list[dict[str, Any]]:
        """The entity's baselines against its peers, for the entity page
        (``detectors/explain.py``): distinct accounts this hour and today against its own
        history, its peer group's 99th percentile and the prior the thresholds start from."""
        ent = self._ents.get((kind, ident))
        if ent is None:
            return []
        wh, _, wd, _, _, _ = self._priors(ent)
        peer_q = self._peer_high(ent.peer)
        own_h, own_d = ent.own_h, ent.own_d
        hour = ent.h.estimate() + ent.h_cnt
        today = (ent.d.estimate() if ent.d is not None else 0.0) + hour + ent.d_cnt
        return [
            {"detector": self.id, "feature": "distinct_accounts_per_hour",
             "observed": round(hour, 1), "peer_group": ent.peer,
             "own": round(own_h.mean, 1) if own_h.n else None, "own_hours": own_h.n,
             "peers_p99": round(peer_q, 1) if peer_q is not None else None,
             "peer_windows": self._peer_n.get(ent.peer, 0), "prior_warning": wh},
            {"detector": self.id, "feature": "distinct_accounts_per_day",
             "observed": round(today, 1), "peer_group": self._peer_day(ent),
             "own": round(own_d.mean, 1) if own_d.n else None, "own_days": own_d.n,
             "peer_days": self._peer_d_n.get(self._peer_day(ent), 0), "prior_warning": wd},
        ]

    def warmup(self) -> float:
        peers = min(1.0, sum(self._peer_n.values()) / 100)
        model = sum(min(1.0, n / self.hst_min_learned) for n in self._hst_n.values()) / 3
        return round(0.5 * peers + 0.5 * model, 3)


DETECTOR = BulkLookup
