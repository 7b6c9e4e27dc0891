"""spread_access — reads an attacker cannot multiply cheaply, counted where spreading does not help.

A forger who rotates over hundreds of home-broadband exits, a ring of sixty logged-in accounts
each reading four other customers a day, or a hosting fleet abroad that rests each /24 for an
hour stays under every per-address and per-account count. What it cannot spread is the volume
itself: each of its requests still belongs to one of three populations that normal traffic keeps
small, and each request still goes through one signing key, one resource, one AS. So distinct
customers read by each population are counted per *signing key*, per *resource*, per *AS*
(with its network class), per network class across the whole shop (*global*), and for
unverifiable tokens also per /24 (/48) *subnet*, each against its own baseline:

- **unverifiable** (customer tokens that no login can vouch for): a customer token without a
  ``session_id`` (nothing to check against a login), and tokens adopted because they claim to
  predate the watch (``token_issued_at`` before watching began). The adopted ones are a
  population fixed when watching began that can only shrink: their tokens expire within the
  key's lifetime (``key_issued``'s ``max_token_lifetime_s``, else ``lifetime``). During the first
  half of the lifetime they are only measured (their peak hour per entity); in the second half
  an entity may show at most ``peak x 2r`` of them in an hour (``r``: the share of the lifetime
  still to run), after it none, and in the sliding day at most that rate summed over the day
  (``peak x 2 x`` the integral of ``r`` over the last day since watching began: the day still
  holds the busy early hours, so a key whose tokens live 12 h does not page at 11 h on the
  day's count; h-lag). Tokens without a session id are compared with the entity's own
  learned hourly mean, as the other populations are.
- **other_customer**: a customer credential reading another customer's data (actor != subject:
  the IDOR ring).
- **hosting_abroad**: a customer credential used from a hosting, VPN or cloud network outside
  the customers' home countries (``home_countries``, else learned from where customers read).

Per entity and population two horizons: a sliding hour and a sliding day (the current bucket
plus the previous one weighted by its remaining overlap), each a mergeable HyperLogLog sketch
(Apache DataSketches ``hll_sketch``, lg_k 8: exact while small, ~6% error beyond; a few hundred
bytes) of the customers read. The baseline is an EWMA of the entity's closed hours (learned
only from hours it was not flagged in; the day baseline is 24 times it). An entity warns when a
horizon exceeds ``max(floor, 3 x mean + 4 sqrt(mean))`` and pages critical over
``max(floor, 6 x mean + 6 sqrt(mean))``; the floors (``floors``) are what a quiet population may
reach before any baseline exists. Warnings and criticals are raised once per entity and episode
(an entity quiet for a day starts over).

The alert's entity is the key, subnet or AS counted; for a resource or a network class across
the shop (which are not alert entities) it is the signing key of the request that crossed the
threshold, with the dimension named in the evidence, or its AS when the request named no key.

Victims: the customers read are counted (sketches of their ids, never the ids) and not named;
the entity (key, subnet, AS) is in the clear.

>>> from detectors.engine import Engine, EngineConfig
>>> T0 = 1_750_723_200  # 2025-06-24T00:00:00Z
>>> eng = Engine(EngineConfig(detectors=("spread_access",),
...                           params={"spread_access": {"home_countries": ("KR",)}}))
>>> out = []
>>> for i in range(40):  # forty customers' tokens without a session id, one per address
...     a, _ = eng.process_obj({"event_id": f"a{i}", "ts": T0 + 7200 + 30 * i,
...         "actor_id": f"c-{i}", "subject_id": f"c-{i}", "resource": "address",
...         "src_ip": f"121.134.{i}.9", "token_issued_at": T0 + 7000, "key_id": "cust-1"})
...     out += a
>>> [a["severity"] for a in out if a["entity"] == {"kind": "key", "id": "cust-1"}]
['warning', 'critical']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from heapq import heapify, heappop, heappush
from typing import TYPE_CHECKING, Any

from datasketches import hll_sketch, tgt_hll_type

from ._cap import evict
from .base import OBSERVATION, Detector, Finding, ev, observation

if TYPE_CHECKING:
    from .engine import Context
    from .events import Event

HOUR = 3600.0
DAY = 86400.0
_LG_K = 8
_HLL4 = tgt_hll_type.HLL_4
_NONE: list[Finding] = []
POPULATIONS = ("no_session", "adopted", "other_customer", "hosting_abroad")
_WORDS = {
    "no_session": "customer tokens without a session id",
    "adopted": "tokens adopted as older than the watch",
    "other_customer": "customers reading other customers' data",
    "hosting_abroad": "customer tokens used from hosting or VPN networks abroad",
}
_ABROAD_CLASSES = frozenset({"hosting", "vpn", "cloud"})
#: the entity of spread_access's observations: every read of a population meets in one place
#: (the counts are per key, resource and AS, and of the whole shop)
SHOP = "*"
SHOP_KIND = "asn"  # the entity kind of those observations (relayed or folded here: ``on_access``)


def _hll() -> hll_sketch:
    return hll_sketch(_LG_K, _HLL4)


@dataclass(slots=True)
class _Agg:
    """One entity and population: the current hour and day sketches, the previous ones'
    counts, the learned hourly mean, and what was raised in the current episode."""

    hour: int
    day: int
    cur_h: hll_sketch = field(default_factory=_hll)
    cur_d: hll_sketch = field(default_factory=_hll)
    prev_h: float = 0.0
    prev_d: float = 0.0
    mean: float = 0.0
    hours: int = 0  # closed hours learned
    peak: float = 0.0  # adopted only: the largest closed hour while the lifetime's first half ran
    level: int = 0  # 0 nothing, 1 warned, 2 critical in this episode
    flagged_hour: bool = False
    last: float = 0.0
    event_ids: list[str] = field(default_factory=list)

    # C++ sketches neither pickle nor go into a snapshot as they are: their bytes do
    def __getstate__(self) -> dict[str, Any]:
        state = {f: getattr(self, f) for f in self.__slots__}
        state["cur_h"] = self.cur_h.serialize_compact()
        state["cur_d"] = self.cur_d.serialize_compact()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for f, v in state.items():
            if f in ("cur_h", "cur_d"):
                v = hll_sketch.deserialize(bytes(v))
            object.__setattr__(self, f, v)


class SpreadAccess(Detector):
    id = "spread_access"
    title = "Unverifiable, cross-customer or hosting-abroad reads spread thin"
    description = ("Customer reads that no login vouches for, that read other customers, or "
                   "that come from hosting networks abroad, counted per key, resource, AS and "
                   "network class against their own baselines, however many addresses or "
                   "accounts they are spread over.")
    severity = "critical"
    attack = ("T1606.001", "T1550.001", "T1530", "T1090.003")
    status = "experimental"
    entity_kinds = ("key", "subnet", "asn")
    wants = frozenset({"access", "identity"})
    principal_types = ("customer",)  # the engine routes only customers' requests here (speed)
    triage = (
        "Check: which population grew (evidence: tokens without a session id, adopted tokens "
        "after the watch's first half-lifetime, customers reading other customers, customer "
        "tokens from hosting abroad), along which dimension (key, resource, AS, network class) "
        "and against which baseline; the addresses and accounts behind it (they are many and "
        "each is quiet: that is the point); for a key, whether its tokens can be verified "
        "against the IdP's log. False positives: a new client release that stops sending the "
        "session id, a feature that lets customers view each other's data (family accounts, "
        "gifts), a privacy-VPN provider becoming popular, a watch started with a lifetime "
        "shorter than the tokens really issued. Respond: for forged tokens revoke and rotate "
        "the key and force re-login; for the IDOR ring fix the authorisation check and lock "
        "the accounts involved; block the hosting ranges; count exposed customers."
    )

    def __init__(self, home_countries: tuple[str, ...] | None = None, home_share: float = 0.05,
                 lifetime: float = 172800.0, skew: float = 120.0,
                 floors: dict[str, tuple[float, float, float, float]] | None = None,
                 alpha: float = 1 / 24, min_hours: int = 3, idle: float = DAY) -> None:
        self.home_fixed = frozenset(home_countries) if home_countries else None
        self.home_share = home_share
        self.lifetime = lifetime
        self.skew = skew
        # per population: hour warning, hour critical, day warning, day critical
        self.floors = {
            "no_session": (10.0, 30.0, 40.0, 120.0),
            "adopted": (10.0, 30.0, 40.0, 120.0),
            "other_customer": (10.0, 30.0, 30.0, 100.0),
            "hosting_abroad": (15.0, 40.0, 60.0, 200.0),
            **(floors or {}),
        }
        self.alpha = alpha
        self.min_hours = min_hours
        self.idle = idle
        self._aggs: dict[tuple[str, str, str], _Agg] = {}  # (population, dim, id) -> agg
        self._lifetimes: dict[str, float] = {}
        self._countries: dict[str, int] = {}  # learned home countries (customer reads)
        self._total = 0
        self._delta: dict[str, int] = {}  # reads by country not yet sent (``on_access``)
        self._counted = 0  # reads by country sent (at most a million)
        # ``expire``'s queue of (time, seq, key, aggregate), transient; None: built at a sweep
        self._due: list[tuple[float, int, tuple[str, str, str], _Agg]] | None = None
        self._seq = 0

    # --- hooks ---------------------------------------------------------------------------
    def on_identity(self, e: Event, ctx: Context) -> list[Finding]:
        if e.change == "key_issued" and e.key_id:
            v = e.fields().get("max_token_lifetime_s")
            if not isinstance(v, bool) and isinstance(v, (int, float)) and v > 0:
                self._lifetimes[e.key_id] = float(min(v, 1e10))
        return _NONE

    def _is_home(self, country: str) -> bool:
        if self.home_fixed is not None:
            return country in self.home_fixed or country == "??"
        if self._total < 200 or country == "??":
            return True
        return self._countries.get(country, 0) >= self.home_share * self._total

    def on_access(self, e: Event, ctx: Context) -> list[Finding]:
        if e.actor_type not in (None, "customer"):
            return _NONE
        net = e.net
        learn = self.home_fixed is None
        if learn and net is not None and self._counted < 1_000_000:
            # home countries are learned from every customer read, where they are folded:
            # the counts since the last observation travel with the next one
            delta = self._delta
            c = net.country
            delta[c] = delta.get(c, 0) + 1
            self._counted += 1
        pops: list[str] = []
        if e.session_id is None:
            pops.append("no_session")
        else:
            tia = e.token_issued_at
            start = ctx.start
            # adopted as unissued_session adopts: issued before the watch, give or take skew
            if tia is not None and start is not None and tia < start + self.skew:
                pops.append("adopted")
        if e.subject_id != e.actor_id:
            pops.append("other_customer")
        abroad = net is not None and net.net_class in _ABROAD_CLASSES
        if abroad and not learn and self._is_home(net.country):
            abroad = False  # home countries fixed: a hosting network at home is no population
        if not pops and not abroad:  # abroad: judged at the fold (_is_home)
            return _NONE
        # The counts are of the whole shop (the ``global`` dimension) and of keys, resources
        # and ASes read through every partition: the read is an observation, folded where
        # every partition's observations meet (``on_observation``: the same engine in
        # ``replay``, the episode builder of :data:`SHOP` with several partitions).
        key = e.key_id
        subnet = net.subnet if net is not None else None
        life = self._lifetimes.get(key, self.lifetime) if key is not None else None
        start = ctx.start if ctx.start is not None else e.ts
        if SHOP_KIND not in ctx.relayed and (life is None or life > 0):
            # folded in this engine (no relay of the observation's kind): the fold of
            # ``on_observation`` at once, without the observation's message (speed, issue
            # 14); the same counts, findings and order (tests/test_spread_access.py)
            self._add_countries(self._take_delta())
            sub = subnet or None
            r = _Read(e.ts, ctx.hash_one(e.subject_id), e.event_id, e.src_ip,  # type: ignore[arg-type]  # a request has a subject_id and a src_ip (decode requires them)
                      key or None, (net.asn_key or None) if net is not None else None, sub,
                      (subnet if net is not None else e.src_ip) or "?",
                      net.net_class if net is not None else "?",
                      float(life) if life is not None else self.lifetime, float(start))
            return self._fold([p for p in pops if p != "hosting_abroad"], abroad,
                              net.country if net is not None else "??", e.resource or "?", r)
        return [observation(self.id, SHOP_KIND, SHOP, e.ts, e.event_id, {
            "pops": pops, "subject": ctx.hash_id(e.subject_id),  # type: ignore[arg-type]  # a request has a subject_id (decode requires it)
            "resource": e.resource or "?", "cls": net.net_class if net is not None else "?",
            "key": key, "asn": net.asn_key if net is not None else None,
            "subnet": subnet or None, "ip": e.src_ip,
            "fallback": (subnet if net is not None else e.src_ip) or "?",
            "life": life, "start": start,
            "abroad": abroad, "country": net.country if net is not None else "??",
            "countries": self._take_delta()})]

    def _take_delta(self) -> dict[str, int]:
        delta = self._delta
        self._delta = {}
        return delta

    def on_observation(self, obs: Finding, ctx: Context) -> list[Finding]:
        """One customer read in a population (:meth:`on_access`), counted per key,
        resource, AS, network class and subnet."""
        d = obs.extra[OBSERVATION]
        pops, subject, start = d["pops"], d["subject"], d["start"]
        key, asn, subnet, life = d["key"], d["asn"], d["subnet"], d["life"]
        if (not isinstance(pops, list) or not isinstance(subject, int)
                or not isinstance(start, int | float) or not math.isfinite(start)
                or (life is not None and (not isinstance(life, int | float) or not life > 0))):
            raise ValueError("spread_access: a malformed observation")
        delta = d.get("countries")
        if isinstance(delta, dict):
            self._add_countries(delta)
        pops = [p for p in pops if p in _WORDS and p != "hosting_abroad"]
        r = _Read(obs.ts, subject, obs.event_ids[0] if obs.event_ids else "", str(d["ip"]),
                  _opt(key), _opt(asn), _opt(subnet), str(d["fallback"]), str(d["cls"]),
                  float(life) if life is not None else self.lifetime, float(start))
        return self._fold(pops, d.get("abroad") is True, str(d.get("country")),
                          str(d["resource"]), r)

    def _add_countries(self, delta: dict[str, int]) -> None:
        """Customer reads by source country since the last fold (home countries)."""
        if self._total < 1_000_000:
            for c, n in delta.items():
                if isinstance(n, int) and n > 0:
                    self._countries[c] = self._countries.get(c, 0) + n
                    self._total += n

    def _fold(self, pops: list[str], abroad: bool, country: str, resource: str, r: _Read
              ) -> list[Finding]:
        """Count one read (``r``) in each of its populations along each dimension; the
        findings it makes. ``pops`` without ``hosting_abroad``: a read ``abroad`` (hosting
        or VPN) is in it when ``country`` is not a home country, as learned so far."""
        if abroad and not self._is_home(country):
            pops.append("hosting_abroad")
        out: list[Finding] = []
        for pop in pops:
            dims: list[tuple[str, str]] = [("resource", resource), ("global", r.cls)]
            if r.key is not None:
                dims.append(("key", r.key))
            if r.asn is not None:
                dims.append(("asn", r.asn))
            if pop in ("no_session", "adopted") and r.subnet:
                dims.append(("subnet", r.subnet))
            for dim, ident in dims:
                f = self._count(pop, dim, ident, r)
                if f is not None:
                    out.append(f)
        return out

    # --- counting ------------------------------------------------------------------------
    def _count(self, pop: str, dim: str, ident: str, r: _Read) -> Finding | None:
        ts = r.ts
        h, d = int(ts // HOUR), int(ts // DAY)
        k = (pop, dim, ident)
        a = self._aggs.get(k)
        if a is None:
            a = self._aggs[k] = _Agg(h, d)
            due = getattr(self, "_due", None)
            if due is not None:  # (``expire``'s queue; its time is ``ts`` once counted)
                self._seq = seq = self._seq + 1
                heappush(due, (ts, seq, k, a))
        if ts - a.last > self.idle and a.last:
            a.level = 0  # a quiet day ends the episode
        if h > a.hour:  # a late event (an earlier hour) counts in the current one
            self._close_hour(a, h, pop, r.start, r.life)
        if d > a.day:
            a.prev_d = a.cur_d.get_estimate() if d == a.day + 1 else 0.0
            a.cur_d = _hll()
            a.day = d
        a.cur_h.update(r.subject)
        a.cur_d.update(r.subject)
        if ts > a.last:  # (max(a.last, ts) without the builtin's call: base.py, "Speed")
            a.last = ts
        ids = a.event_ids  # the latest five reads counted: an alert shows the reads that
        ids.append(r.event_id)  # raised it, not the aggregate's first reads days before
        if len(ids) > 5:
            del ids[0]
        if a.level >= 2:
            return None
        wh, ch, wd, cd = self._thresholds(a, pop, r)
        if wh == ch == wd == cd == math.inf:  # (adopted reads not checkable yet: no count
            return None  # reaches these; speed: the sketches are not read for them)
        frac_h = (ts % HOUR) / HOUR
        frac_d = (ts % DAY) / DAY
        n_h = a.cur_h.get_estimate() + a.prev_h * (1 - frac_h)
        n_d = a.cur_d.get_estimate() + a.prev_d * (1 - frac_d)
        if n_h >= ch or n_d >= cd:
            level = 2
        elif n_h >= wh or n_d >= wd:
            level = 1
        else:
            return None
        a.flagged_hour = True
        if level <= a.level:
            return None
        a.level = level
        return self._finding(pop, dim, ident, a, level, n_h, n_d, (wh, ch, wd, cd), r)

    def _close_hour(self, a: _Agg, h: int, pop: str, start: float, life: float) -> None:
        closed = a.cur_h.get_estimate()
        a.prev_h = closed if h == a.hour + 1 else 0.0
        if pop == "adopted":  # the peak of the first half of its tokens' own lifetime
            if _remaining(life, a.hour * HOUR, start) >= 0.5:
                a.peak = max(a.peak, closed)
        elif not a.flagged_hour:
            gaps = max(0, min(h - a.hour - 1, 48))  # hours with no event at all count as 0
            for _ in range(gaps + 1):
                a.hours += 1
                w = max(self.alpha, 1.0 / a.hours)  # the mean of the first hours, then EWMA
                a.mean += w * ((closed if _ == 0 else 0.0) - a.mean)
        a.flagged_hour = False
        a.cur_h = _hll()
        a.hour = h

    def _thresholds(self, a: _Agg, pop: str, read: _Read) -> tuple[float, float, float, float]:
        fw_h, fc_h, fw_d, fc_d = self.floors[pop]
        if pop == "adopted":
            r = _remaining(read.life, read.ts, read.start)
            if r >= 0.5:
                return math.inf, math.inf, math.inf, math.inf  # cannot be checked yet
            allow = a.peak * 2 * r  # a shrinking population: at most this many an hour
            # ... and in the last day at most that rate summed over the day's share of the
            # lifetime (the day still holds the hours when the population was larger)
            day = a.peak * 2 * _remaining_hours(read.life, read.ts, read.start)
            return (fw_h + allow, fc_h + 2 * allow, fw_d + day, fc_d + 2 * day)
        m = a.mean if a.hours >= self.min_hours else 0.0
        md = 24 * m
        return (max(fw_h, 3 * m + 4 * math.sqrt(m)), max(fc_h, 6 * m + 6 * math.sqrt(m)),
                max(fw_d, 3 * md + 4 * math.sqrt(md)), max(fc_d, 6 * md + 6 * math.sqrt(md)))

    # --- findings ------------------------------------------------------------------------
    def _finding(self, pop: str, dim: str, ident: str, a: _Agg, level: int, n_h: float,
                 n_d: float, th: tuple[float, float, float, float], r: _Read) -> Finding:
        key, asn, cls = r.key, r.asn, r.cls
        if dim in ("key", "subnet", "asn"):
            kind, ent = dim, ident
        elif key is not None:
            kind, ent = "key", key
        elif asn is not None:
            kind, ent = "asn", asn
        else:
            kind, ent = "subnet", r.fallback
        where = {"key": f"key {ident}", "subnet": f"subnet {ident}", "asn": f"AS {ident}",
                 "resource": f"resource {ident}", "global": f"all {ident} networks"}[dim]
        sev = "critical" if level == 2 else "warning"
        wh, ch, wd, cd = th
        summary = (f"{_WORDS[pop][0].upper()}{_WORDS[pop][1:]} reached {n_h:.0f} customers in "
                   f"the last hour and {n_d:.0f} in the last day through {where}, spread so "
                   f"that no address or account stands out (latest from {r.ip}).")
        base = (f"learned mean {a.mean:.1f} an hour over {a.hours} h" if pop != "adopted"
                else f"adopted sessions must shrink: peak {a.peak:.0f} an hour early in the "
                     "tokens' lifetime, none after it")
        evidence = [
            ev("population", pop, "quiet in normal traffic", _WORDS[pop]),
            ev("dimension", f"{dim}:{ident}", "counted where spreading does not help",
               f"network class {cls}"),
            ev("customers_last_hour", round(n_h), f"warning {wh:.0f}, critical {ch:.0f}", base),
            ev("customers_last_day", round(n_d), f"warning {wd:.0f}, critical {cd:.0f}"),
        ]
        score = min(1.0, 0.5 + 0.5 * max(n_h / max(ch, 1.0), n_d / max(cd, 1.0)))
        return Finding(self.id, kind, ent, sev, score, summary, evidence, list(a.event_ids),
                       r.ts)

    # --- housekeeping --------------------------------------------------------------------
    def expire(self, now: float) -> None:
        """Forget the aggregates idle for two ``idle`` periods (``last`` before ``now``
        less that), read from a queue rather than the whole table (issue 14, speed): entries
        (time, seq, key, aggregate) ordered by a time no later than the aggregate's, whose
        time only grows; so every idle aggregate is at the head, and one whose time moved on
        is queued again at its time. Entries of aggregates evicted or replaced are dropped
        when they come up. The queue is transient (not in a checkpoint, ``__getstate__``):
        built from the table when there is none, or when such entries make it more than
        twice the table."""
        old = now - 2 * self.idle
        aggs = self._aggs
        due: list[tuple[float, int, tuple[str, str, str], _Agg]] | None = \
            getattr(self, "_due", None)
        if due is None or len(due) > 2 * len(aggs) + 64:
            due = self._due = [(a.last, i, k, a) for i, (k, a) in enumerate(aggs.items())]
            heapify(due)
            self._seq = len(due)
        while due and due[0][0] < old:
            _, _, k, agg = heappop(due)
            if aggs.get(k) is not agg:
                continue  # evicted, or forgotten and made anew (queued with its new time)
            if agg.last < old:
                del aggs[k]
            else:
                self._seq += 1
                heappush(due, (agg.last, self._seq, k, agg))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_due", None)  # rebuilt from the table at the next sweep (``expire``)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_delta", {})  # a checkpoint from before the learnt counts
        self.__dict__.setdefault("_counted", 0)

    def shed(self, cap: int) -> int:
        return evict(self._aggs, cap, _last, _flagged)

    def tracked(self) -> dict[str, int]:
        return {"key": len(self._aggs)}


@dataclass(slots=True)
class _Read:
    """One customer read in a population, as its observation says."""

    ts: float
    subject: int  # the customer read: a salted digest (``Context.hash_id``)
    event_id: str
    ip: str
    key: str | None
    asn: str | None
    subnet: str | None
    fallback: str  # the entity of a read through no key and no AS: its subnet, else address
    cls: str
    life: float  # the lifetime of its key's tokens
    start: float  # when the engine that saw it began watching


def _opt(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _remaining(life: float, ts: float, start: float) -> float:
    """Share of the adopted tokens' lifetime ``life`` still to run at ``ts`` (1 when watching
    began at ``start``)."""
    r = 1.0 - (ts - start) / life
    return r if r > 0.0 else 0.0  # max(0.0, r) (base.py, "Speed")


def _remaining_hours(life: float, ts: float, start: float) -> float:
    """The share of the lifetime still to run (:func:`_remaining`) summed over the day up to
    ``ts`` since watching began, in hours: a population that shrinks as its tokens expire
    reads at most ``peak x 2r`` customers an hour, so at most ``peak x 2`` times this in a
    day."""
    a = ts - DAY if ts - DAY > start else start
    b = ts if ts < start + life else start + life
    if b <= a:
        return 0.0
    return (b - a) / HOUR * (_remaining(life, a, start) + _remaining(life, b, start)) / 2


def _last(a: _Agg) -> float:
    return a.last


def _flagged(a: _Agg) -> bool:
    return a.level > 0


DETECTOR = SpreadAccess
