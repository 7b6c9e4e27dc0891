"""service_baseline — a service credential used off its seasonal baseline or from a network it never used.

Services are the principals whose credentials malware on an internal server uses (SK Telecom,
2025: a service credential at night from an internal host the service never used), and whose
volume an attacker multiplies from the service's own host; partners call with service keys
from their own cloud, and a key leaked from a partner's CI is called from the same cloud
elsewhere. Per service (``actor_type`` = ``service``) the detector keeps, in local time (the engine's local time, ``EngineConfig.timezone``, +9 h until "auto" decides;
``tz_offset_hours`` fixes an offset; as ``unusual_hour``):

- a *seasonal* baseline: per hour of day and day type (weekday / weekend, 48 bins) an EWMA of
  the busiest 10-minute bucket's distinct customers in that hour (its rate at the scale an
  attack is seen at), learnt at the end of each hour (hours without a request are learnt as
  zeros; hours it flagged are not learnt); per bin too, an EWMA of its customers in the whole
  hour (each 10-minute bucket's distinct customers, summed): what a window of hours is
  expected to read (hand-written EWMAs packed in one bytearray, not River's ``EWMean``: 96 of
  those objects a service would be ~10 KiB against a 1 KiB budget); the resources it reads;
- the addresses and networks (/16 for IPv4, /48 for IPv6) it has used, and the countries of
  its public addresses: every one in its first ``learn_hours``, later only the ones whose
  requests raised nothing; the key ids it calls with, with their uses.

Each request is judged at once (integer compares; the customer is added to the current
10-minute bucket's transient set, dropped at the bucket's end):

- *volume*: the bucket's distinct customers over ``volume_x`` times the busiest bucket usual
  for this hour and day type (and over a Poisson margin). Judged only where this hour of day
  has been seen on an earlier day (either day type), so a first day, a nightly batch's first
  night, or a new service teach the baseline and are not judged by a guess; in an hour not
  seen yet, requests from a new address or network are judged against the busiest usual
  bucket of any hour (the highest reference the service has). The same rule on the whole hour
  (session 20): the hour's customers so far (each bucket's distinct ones, summed) over
  ``volume_x`` times the usual whole hour (its EWMA; the largest of the hour and its
  neighbours; judged where that hour reads at least ``min_volume``) and over the same Poisson
  margin, critical at twice that, while the current 10 minutes read more than the usual
  busiest 10 minutes (a pace; a nightly batch that runs longer at its usual pace is not one):
  a service read at a
  sustained multiple of its usual rate (malware reading through its key at five times its
  pace) crosses it within the hour although no single bucket passes the bucket's margin,
  which at a few customers per 10 minutes is wide (6 sigma + 8 is 5-7 times the usual). Both
  rules take the hour just ended as it was before it was learnt (an attack's first, partial
  hour does not raise the next hour's reference); an hour seen only in part (the watch's
  first, or one across a change of the local time's offset: "auto" deciding, DST) is learnt
  but for its total, and the hours read while "auto" has not decided the local time (at most
  ``learn_hours`` from the watch's start) are not learnt at all;
- *off hours*: a request in an hour of day the service is known to be idle at (seen, usual
  busiest bucket under 5% of its busy hours'), or at local night (22:00-06:00) in an hour not seen yet
  after at least ``gap_hours`` of silence (a daytime service woken at night: its requests
  stay off hours for the rest of that night, up to 8 hours);
- *new network / new address*: a /16 (/48) or an address the service never used (a new
  network at local night in an hour not seen yet warns: no daytime migration);
- *new host beside a stable set*: an internal (private) address it never used, in a known
  network, of a service whose hosts are a small set (at most 8) to which no address was added
  for ``stable_hours`` (24) and 36 active 10-minute buckets (six hours of activity), once it
  has been used for ``persist_minutes`` (60; not learnt meanwhile: a pod of a one-off job or an
  operator's shell used for minutes stays quiet). Malware on
  a neighbour of the service's own hosts (the SK Telecom pattern: the /24 is familiar, the
  hours, resources and volume can be the usual) uses its credential from a host the attacker
  could reach, not one of the service's: to stay quiet it must take over one of those very
  hosts. A pool whose addresses keep changing (autoscaling) is never stable, a cloud's public
  addresses are not judged this way. From the new host's first request a *window* counts the
  service's customers (every host, and the new one) against what its hourly season expects
  over the same span: malware reusing the key in the service's busy hours adds its reads to
  the service's own (its hosts keep their volume), a deployment's new host takes a share of
  the same reads (the others cede it). So, from 30 minutes on: *critical* when the service
  reads ``1.3`` times its usual (tens of percent: what an attacker reading "many more
  customers" adds) and the excess is past a margin (3 Poisson sigma + 10% + 3: a normal hour
  of either red-team generator's services stays within 2-4.5 sigma) and mostly the new
  host's; a *warning* when the new host reads more than a host's fair share (1 / (hosts + 1))
  and the excess is past a looser margin (2.5 sigma); after ``persist_minutes`` a warning as
  before, unless the known hosts ceded at least half of the new host's reads (by more than 2
  sigma): then it is learnt, quietly (a deployment or autoscaling);
- *new country beside an established set*: a country the service never used, when it has
  used at most two countries (a place) for ``place_days`` (2) and added none for
  ``stable_hours``: a leaked partner or service key called from the partner's own cloud in
  another region (the AS stays familiar, the volume, customers and resources can be the
  usual). A warning at the first request; *critical* with corroboration the attacker does
  not choose: a key id the service rarely uses (under 5% of its requests: a CI or repository
  key), reads at volume (the volume rule), or reads on top of the usual places' (from 30
  minutes: the window's excess past the margin; from ``persist_minutes``: the known places
  ceded under half of the new country's reads, which are past 2.5 sigma). A region failover
  moves the volume (the known places fall short of the season by at least half the new
  country's reads): after ``persist_minutes`` the country is learnt (an info says so). A
  multi-country service (three or four countries) gets an info for one more, a warning when
  corroborated; a service not established yet learns it.

Severity: a new network at night or at volume is critical (the SK Telecom pattern); a new
host beside a stable set is critical when it adds tens of percent to the service's season,
warns sooner when its additive share is large, warns after its first hour otherwise
(critical at night or at volume), and is learnt when it took the others' share; a new
country beside an established set warns, critical with corroboration; a new address in a
known network at night or at volume, and volume from known addresses, warn (critical at
``crit_x`` times the usual bucket); a new network alone (daytime, usual volume: a migration)
is info. Nightly batches that run every night are seen at their hour on earlier nights, so
they are their own baseline. Not judged: a service younger than ``learn_hours``. Customers
and employees are other detectors' (``bulk_lookup``, ``record_volume``).

State: under 1 KiB per service (one bytearray: a 48-bin float32 array and two floats (when
an address was last added, active buckets since), 48 day counts, a 48-bin float16 array of
hourly customers and when a country was last added; up to 16 address, 8 network, 16 resource
and 4 country CRCs and 4 key CRCs with their uses; test); a new host's or country's window
(kept while it is judged); the current bucket's set of customer ids (transient: dropped when
the bucket ends).

>>> from detectors.engine import Engine, EngineConfig
>>> eng = Engine(EngineConfig(detectors=("service_baseline",)))
>>> t0, out = 1772377200, []                     # 2026-03-02 00:00 KST, a Monday
>>> for h in range(9, 18):                       # a weekday billing job from its own host
...     for i in range(40):
...         out += eng.process_obj({"event_id": f"n{h}-{i}", "ts": t0 + h * 3600 + 90 * i,
...             "actor_id": "svc-bill", "actor_type": "service", "subject_id": f"c-{h * 40 + i}",
...             "resource": "payment", "src_ip": "10.10.4.7", "key_id": "k-bill"})[0]
>>> for i in range(5):                           # the next night, 01:00, a host it never used
...     out += eng.process_obj({"event_id": f"x{i}", "ts": t0 + 86400 + 3600 + 20 * i,
...         "actor_id": "svc-bill", "actor_type": "service", "subject_id": f"c-9{i}",
...         "resource": "phone", "src_ip": "10.77.3.25", "key_id": "k-bill"})[0]
>>> [(a["entity"]["id"], a["severity"]) for a in out]
[('svc-bill', 'critical')]
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from struct import pack_into, unpack_from
from typing import TYPE_CHECKING, Any
from zlib import crc32

from ._cap import evict
from .base import SEVERITIES, Detector, Finding, ev, iso
from .context import DEFAULT_OFFSET, legacy_offset

if TYPE_CHECKING:
    from .engine import Context
    from .events import Event

HOUR = 3600.0
BUCKET = 600.0
_ADDRS = 16
_NETS = 8
_RES = 16
_REFRESH = 1800.0
_NEG_INF = -math.inf  # one shared object (every service starts with it, twice)
_PARTIAL = 2  # ``_Svc.h_flag`` of an hour seen in part: learnt but for its total
_STABLE_SET = 8  # at most this many hosts: a set, not a pool that churns (the cap is 16)
_SEEN, _RATE, _CCT, _LEN = 200, 248, 344, 348  # ``peak``'s byte layout after its 50 floats
_CCS = 4  # countries kept per service
_PLACES = 2  # a service on at most this many countries has "a place"; more: a multi-country one
_KEYS = 4  # key ids counted per service
_RARE_KEY = 0.05  # a key id under this share of the service's requests is one it rarely uses
_SURGE = 1.3  # "tens of percent" over the season, sustained, from the new host: critical
_W_MIN = 1800.0  # a window is judged against the season from 30 minutes on (3 buckets) ...
_W_EARLY = 1800.0  # ... and a new host's large additive share too: a host used for less than
# half an hour (a pod of a one-off job, an operator's shell) is not judged on its share


def _internal(ip: str) -> bool:
    """Whether ``ip`` is a private (internal) address: a managed host of the company's own."""
    try:
        return ipaddress.ip_address(ip).is_private
    except ValueError:
        return False


def _net_of(ip: str) -> int:
    """CRC of the address's /16 (IPv4) or /48 (IPv6): 'a network the service never used'."""
    if ":" not in ip:
        return crc32(ip[:ip.find(".", ip.find(".") + 1)].encode())
    try:
        n = ipaddress.ip_network(f"{ip}/48", strict=False)
    except ValueError:
        return crc32(ip.encode())
    return crc32(str(n).encode())


def _margin(exp: float) -> float:
    """How far above the season's ``exp`` customers a window must be to count as added: a
    Poisson 3 sigma, plus 10% (the seasonal mean is learnt over a few days, and days differ),
    plus 3 (a handful of customers is never a signal). Measured on both red-team generators'
    normal traffic: a service's hour deviates from its learnt season by at most 2-4.5 Poisson
    sigma (99th percentile; 90th: 1.3-2.4), so this is past what a normal hour does."""
    return 3.0 * math.sqrt(exp) + 0.1 * exp + 3.0


class _Win:
    """The window since a new place (a host beside a stable set, a country beside an
    established set) was first used: the service's customers from every place and from the
    new one (each 10-minute bucket's distinct customers, summed), and the customers its
    seasonal hourly baseline expects over the same span."""

    __slots__ = ("place", "first", "last", "tot", "new", "exp", "acc", "rate")

    def __init__(self, place: int | str, ts: float, rate: float) -> None:
        self.place = place  # the host's address CRC, or the country code
        self.first = self.last = ts
        self.tot = 0  # customers since ``first``, every place
        self.new = 0  # ... from the new place
        self.exp = 0.0  # customers the season expects from ``first`` up to ``acc`` ...
        self.acc = ts
        self.rate = rate  # ... and an hour from ``acc`` on (-1: an hour never learnt)

    def expected(self, ts: float) -> float | None:
        if self.rate < 0:
            return None
        return self.exp + self.rate * max(0.0, ts - self.acc) / HOUR


class _Svc:
    __slots__ = ("first", "last", "h_epoch", "h_flag", "b_epoch", "b_subj", "b_peak",
                 "peak", "seen", "busy", "known", "sent", "sent_ts", "eids", "u", "wn",
                 "lip", "woke", "pend", "h_cnt", "lkey", "lkn", "pcc", "hw")

    def __init__(self, ts: float) -> None:
        self.first = self.last = ts
        self.h_epoch = -1
        self.h_flag: bool | int = False  # True: flagged; _PARTIAL: seen in part
        self.b_epoch = -1
        self.b_subj: set[str] = set()
        self.b_peak = 0  # busiest bucket's distinct customers in the current hour
        # bytearrays (the snapshot format's own type) read through memoryview casts:
        # float32 EWMA busiest 10-min bucket, distinct customers, per bin; a 49th and 50th
        # float32: the hour (since the epoch) the last address was added, and the active
        # 10-minute buckets since then
        self.peak = bytearray(4 * 50)
        memoryview(self.peak).cast("f")[48] = ts / HOUR
        # then (bytes 200-347) the days each (day type, hour) bin was learnt (uint8, capped at
        # 255), a float16 EWMA per bin of the customers an hour (the sum of each 10-minute
        # bucket's distinct customers) and a float32: the hour a country was last added
        self.peak += bytes(_LEN - 200)
        memoryview(self.peak)[_CCT:_LEN].cast("f")[0] = ts / HOUR
        self.seen: bytearray | None = None  # (the learnt days, in a checkpoint before _LEN)
        self.busy = 0.0  # EWMA of the busiest bucket in its active hours
        # uint64 CRC32s of the addresses, networks and resources used, tagged in bits 32-33
        self.known = bytearray()
        self.sent = 0
        self.sent_ts = _NEG_INF
        self.eids: list[str] | None = None
        self.u = -1.0  # usual busiest bucket for the current hour (-1: not judged) ...
        self.wn = math.inf  # ... and its warning threshold (critical: ``crit_x`` or twice it)
        self.lip: tuple[str, ...] = ()  # the last 3 addresses that raised nothing: fast path
        self.woke = _NEG_INF  # a night request after gap_hours of silence: woken then
        self.pend: _Win | None = None  # a new host beside a stable set: its address CRC and
        # window (it pages once it has been used for ``persist``, sooner when it adds volume)
        self.h_cnt = 0  # customers (bucket-distinct) in the current hour
        self.lkey: str | None = None  # the key of the last requests and their uses not yet
        self.lkn = 0  # added to ``keys`` (one compare a request)
        self.pcc: _Win | None = None  # a new country beside an established set (its window)
        self.hw: float = math.inf  # this hour's warning threshold on ``h_cnt`` (the hour rule)


def _around(s: _Svc, b: int, before: int, pre: float | None,
            value: Callable[[_Svc, int], float]) -> float | None:
    """The largest ``value`` of bin ``b`` and its two neighbours (a job that starts a few
    minutes early or late), in this day type, else the other; None when neither type learnt
    this hour. Bin ``before`` counts as ``pre`` (its value before this hour's learning; None:
    not learnt then)."""
    seen = memoryview(s.peak)[_SEEN:_RATE]
    for c in (b, (b + 24) % 48):
        if seen[c]:
            base = c - c % 24
            vals = []
            for d in (-1, 0, 1):
                i = base + (c + d) % 24
                if i == before:
                    if pre is not None:
                        vals.append(pre)
                elif seen[i]:
                    vals.append(value(s, i))
            return max(vals, default=0.0)
    return None


def _peak(s: _Svc, b: int) -> float:
    """Bin ``b``'s EWMA of the hour's busiest 10-minute bucket."""
    return float(unpack_from("f", s.peak, 4 * b)[0])  # native, as the casts write it


def _raw_rate(s: _Svc, b: int) -> float:
    """Bin ``b``'s EWMA of customers an hour as stored (NaN: seen only in part so far)."""
    return float(unpack_from("<e", s.peak, _RATE + 2 * b)[0])


def _rate(s: _Svc, b: int) -> float:
    """Bin ``b``'s EWMA of customers an hour; 0 where only a partial hour was seen."""
    r = _raw_rate(s, b)
    return 0.0 if r != r else r


def _added(s: _Svc) -> float:
    """When the last address was added to ``s.known`` (the service's start in a checkpoint
    written before this was kept)."""
    if len(s.peak) < 200:
        return s.first
    return float(memoryview(s.peak).cast("f")[48]) * HOUR


def _active(s: _Svc) -> float:
    """Active 10-minute buckets since the last address was added (0 in an older checkpoint)."""
    return float(memoryview(s.peak).cast("f")[49]) if len(s.peak) >= 200 else 0.0


def _cc_added(s: _Svc) -> float:
    """When the last country was added to ``s.known`` (the service's start, at first)."""
    return float(memoryview(s.peak)[_CCT:_LEN].cast("f")[0]) * HOUR


def _key_flush(s: _Svc) -> None:
    """Add the current run of the last key's uses to its count in ``s.known`` (tag 4: CRC32 |
    (4 | uses << 3) << 32; at most ``_KEYS`` keys: a new one replaces the least used)."""
    if s.lkey is None or not s.lkn:
        return
    crc = crc32(s.lkey.encode())
    ks = memoryview(s.known).cast("Q")
    least, lc = -1, 1 << 62
    n = 0
    for i, x in enumerate(ks):
        if (x >> 32) & 7 == 4:
            c = x >> 35
            if x & 0xFFFFFFFF == crc:
                ks[i] = crc | (4 | min(c + s.lkn, 1 << 28) << 3) << 32
                s.lkn = 0
                return
            n += 1
            if c < lc:
                least, lc = i, c
    v = (crc | (4 | min(s.lkn, 1 << 28) << 3) << 32).to_bytes(8, "little")
    ks.release()
    if n >= _KEYS:
        s.known[8 * least: 8 * least + 8] = v
    else:
        s.known += v
    s.lkn = 0


def _key_share(s: _Svc, key: str | None) -> float | None:
    """The share of the service's requests (as counted) made with ``key`` (None: fewer than
    100 counted, too few to call a key rare)."""
    _key_flush(s)
    if key is None:
        return None
    crc = crc32(key.encode())
    tot = mine = 0
    for x in memoryview(s.known).cast("Q"):
        if (x >> 32) & 7 == 4:
            tot += x >> 35
            if x & 0xFFFFFFFF == crc:
                mine = x >> 35
    return mine / tot if tot >= 100 else None


def _has(buf: bytearray, v: int) -> bool:
    """Whether the packed uint64 ``v`` is one of ``buf``'s (aligned match; C-speed find)."""
    b = v.to_bytes(8, "little")
    i = buf.find(b)
    while i > 0 and i & 7:
        i = buf.find(b, i + 1)
    return i >= 0


def _last(s: _Svc) -> float:
    return s.last


def _reported(s: _Svc) -> bool:
    return s.sent > 0


class ServiceBaseline(Detector):
    id = "service_baseline"
    title = "Service credential off its baseline"
    description = ("A service credential reads customers far above its usual volume for the hour "
                   "of day, is used from a network it never used at night or at volume, from "
                   "a new host adding to its seasonal volume, or from a country it never used.")
    severity = "critical"
    attack = ("T1078.004", "T1119", "T1530")  # Valid Accounts: cloud; Automated Collection
    status = "experimental"
    entity_kinds = ("actor",)
    wants = frozenset({"access"})
    _v2 = False  # the services' windows, hourly customers, countries and keys are kept
    _v3 = False  # the hour rule's threshold is kept (session 20)
    _hour_since = _NEG_INF  # the hour rule judges hours from then (an upgrade's relearning)
    _shift = _NEG_INF  # when the local time's offset last changed (not learnt across it)
    principal_types = ("service",)  # the engine routes only services' requests here (speed)
    triage = (
        "Check: which host the requests came from (evidence: new network / new address) and "
        "whether a deployment or migration moved the service there; the hour against the "
        "service's schedule; the distinct customers per 10 minutes against the usual for this "
        "hour and day type; the resources read (new ones are listed); for a new host or "
        "country, window_customers (the service's customers since it was first used, and the "
        "new place's) against the usual, and key_share (a key it rarely uses). False "
        "positives: a migration to a new network, a backfill or re-run after an outage "
        "(volume at an odd hour), a new nightly job on its first nights, a planned campaign; "
        "for a new host beside a stable set, a deployment that added a host beside the others "
        "or a failover to a standby host; for a new country, a partner opening a new region "
        "for new traffic (the address or country is not learnt while it pages: allow-list it "
        "once the owner confirms). Respond: ask the service's or partner's owner; if nobody "
        "changed it, rotate the credential (for a partner, its key id), isolate the host it was "
        "used from (malware using a service credential is the SK Telecom pattern), preserve "
        "its logs and count the customers read (window_customers' new place).")

    def __init__(self, tz_offset_hours: float | None = None, learn_hours: float = 6.0,
                 volume_x: float = 3.0, crit_x: float = 10.0, min_volume: int = 20,
                 gap_hours: float = 4.0, idle_days: float = 45.0,
                 stable_hours: float = 24.0, persist_minutes: float = 60.0,
                 place_days: float = 2.0) -> None:
        #: a fixed offset (seconds) when ``tz_offset_hours`` is given, else None: the
        #: deployment's local time (``ctx.local``)
        self.fixed_off = None if tz_offset_hours is None else tz_offset_hours * HOUR
        self._off = DEFAULT_OFFSET if self.fixed_off is None else self.fixed_off  # at the last event
        self.learn = learn_hours * HOUR
        self.volume_x = volume_x
        self.crit_x = crit_x
        self.min_volume = min_volume
        self.gap = gap_hours * HOUR
        self.idle = idle_days * 86400.0
        self.stable = stable_hours * HOUR
        self.persist = persist_minutes * 60.0
        self.place_days = place_days
        self._svcs: dict[str, _Svc] = {}

    # --- baseline --------------------------------------------------------------------------
    @staticmethod
    def _bin(hour_epoch: int) -> int:
        day = hour_epoch // 24
        weekend = (day + 3) % 7 >= 5  # epoch day 0 was a Thursday
        return (24 if weekend else 0) + hour_epoch % 24

    def _close_hours(self, s: _Svc, he: int) -> None:
        """Learn the hours from ``s.h_epoch`` up to (not including) ``he``."""
        before = self._bin(he - 1)  # the hour before, as it was before this learning
        known = len(s.peak) >= _LEN and s.peak[_SEEN + before]
        pre = _rate(s, before) if known else None
        pre_peak = _peak(s, before) if known else None
        if s.h_epoch >= 0:
            flag = s.h_flag  # True: flagged (not learnt); _PARTIAL: its total is not learnt
            self._learn(s, s.h_epoch, s.b_peak, flag is True,
                        -1 if flag == _PARTIAL else s.h_cnt)
            for h in range(s.h_epoch + 1, min(he, s.h_epoch + 1 + 7 * 24)):
                self._learn(s, h, 0, False, 0)
        s.h_epoch = he
        s.b_peak = 0
        s.h_cnt = 0
        s.h_flag = False
        rate = self._rate_now(s)
        t = he * HOUR - self._off  # the hour's start (UTC seconds)
        for w in (s.pend, s.pcc):  # a window's expectation: the hours it spans, each its own
            if w is not None and w.rate >= 0:
                w.exp += w.rate * max(0.0, t - w.acc) / HOUR
                w.acc = max(w.acc, t)
                w.rate = rate
        usual = self._usual(s, self._bin(he), before, pre_peak)
        if usual is None:
            s.u, s.wn, s.hw = -1.0, math.inf, math.inf
        else:
            s.u = usual
            s.wn = max(self.volume_x * usual, usual + 6.0 * math.sqrt(usual) + 8.0,
                       float(self.min_volume))
            # the hour rule, for an hour that usually reads at least ``min_volume`` customers
            # (a pace to multiply; idle and sporadic hours are the off-hours rule's): an
            # integer count (a float per service would take the state past its budget)
            hour = self._usual_hour(s, self._bin(he), before, pre)
            s.hw = (math.ceil(max(self.volume_x * hour, hour + 6.0 * math.sqrt(hour) + 8.0))
                    if hour >= self.min_volume and t >= self._hour_since else math.inf)

    def _learn(self, s: _Svc, h: int, peak: int, flagged: bool, cnt: int) -> None:
        if flagged:
            return
        b = self._bin(h)
        n = s.peak[_SEEN + b]
        a = 1.0 / (n + 1) if n < 3 else 0.3
        pk = memoryview(s.peak).cast("f")
        pk[b] += a * (peak - pk[b])
        r = unpack_from("<e", s.peak, _RATE + 2 * b)[0]  # float16: 3 significant digits
        if cnt < 0:  # a partial hour: no total; the hour's first total is learnt as it comes
            if n == 0:
                pack_into("<e", s.peak, _RATE + 2 * b, math.nan)
        elif r != r:  # (NaN: seen so far only in part)
            pack_into("<e", s.peak, _RATE + 2 * b, min(60000.0, float(cnt)))
        else:
            pack_into("<e", s.peak, _RATE + 2 * b, min(60000.0, r + a * (cnt - r)))
        if n < 255:
            s.peak[_SEEN + b] = n + 1
        if peak:
            s.busy += (0.5 if s.busy == 0.0 else 0.1) * (peak - s.busy)

    def _usual(self, s: _Svc, b: int, before: int = -1,
               pre: float | None = None) -> float | None:
        """Usual busiest bucket at bin ``b`` (this day type, else the other; the largest of the
        hour and its two neighbours); None when this hour of day was never learnt. The hour
        just ended (bin ``before``) counts as it was before it was learnt (``pre``), as in
        :meth:`_usual_hour`."""
        return _around(s, b, before, pre, _peak)

    @staticmethod
    def _usual_hour(s: _Svc, b: int, before: int, pre: float | None) -> float:
        """Usual customers in the whole hour at bin ``b`` (as :meth:`_usual`: this day type,
        else the other; the largest of the hour and its learnt neighbours); 0 when this
        hour of day was never learnt. The hour just ended (bin ``before``) counts as it was
        before it was learnt (``pre``; None: unlearnt then): an attack's first hour, under
        the threshold and learnt, otherwise raised the next hour's reference, that hour the
        next one's, and the attack was never judged against the service's own day."""
        v = _around(s, b, before, pre, _rate)
        return 0.0 if v is None else v

    # --- event path ------------------------------------------------------------------------
    def _upgrade(self) -> None:
        """Services restored from a checkpoint written before the windows, hourly customers,
        countries and keys were kept: the learnt days move into ``peak``, the rest starts
        empty (learnt from now on)."""
        for s in self._svcs.values():
            if s.seen is not None:
                pk = s.peak
                if len(pk) < 200:
                    pk += bytes(200 - len(pk))
                    memoryview(pk).cast("f")[48] = s.first / HOUR
                pk += bytes(s.seen[:48]) + bytes(_LEN - 248)
                memoryview(pk)[_CCT:_LEN].cast("f")[0] = s.last / HOUR
                s.seen = None
                s.h_cnt, s.lkey, s.lkn, s.pcc = 0, None, 0, None
                # the hourly customers start at zero beside days already learnt: the hour
                # rule waits until three days of them are (an EWMA at 0.3 a day: 66%)
                self._hour_since = max(self._hour_since, s.last + 3 * 86400.0)
                p: object = s.pend
                s.pend = (_Win(p[0], p[1], -1.0) if isinstance(p, tuple) else None)
        self._v2 = True

    def _upgrade_hour(self) -> None:
        """Services restored from a checkpoint written before the hour rule: no threshold
        until their next hour starts."""
        for s in self._svcs.values():
            if getattr(s, "hw", None) is None:
                s.hw = math.inf
        self._v3 = True

    def on_access(self, e: Event, ctx: Context) -> list[Finding]:
        if e.actor_type != "service":
            return []
        if not self._v2:
            self._upgrade()
        if not self._v3:
            self._upgrade_hour()
        ts = e.ts
        off = self.fixed_off
        guess = False
        if off is None:
            off = ctx.local.offset(ts)
            # "auto" still counting the first customer logins: the hour of day is a guess
            # (UTC+9) for the watch's first minutes; learnt, a German night was a Korean
            # morning's season (red team C's normal traffic: Monday 08:00 paged against it)
            guess = ctx.local.pending and ctx.start is not None and ts - ctx.start < self.learn
        if off != self._off:
            self._shift = ts  # the local time moved (decided, DST): the open hours are partial
        self._off = off
        local = ts + off
        act: str = e.actor_id  # type: ignore[assignment]  # a request has an actor_id (decode requires it)
        s = self._svcs.get(act)
        if s is None:
            s = self._svcs[act] = _Svc(ts)
        he = int(local // HOUR)
        if he != s.h_epoch:
            self._close_hours(s, he)
            start = he * HOUR - off  # the hour's start (UTC): before the watch's start or
            if start < self._shift or (ctx.start is not None and start < ctx.start):
                s.h_flag = _PARTIAL  # the last move of the local time, a part of it is
                # unseen: its customers are no hour's total (learnt, a full hour the next
                # day looked like three times the usual: red team C's nightly batch); its
                # busiest bucket and its being seen are learnt
        if guess:
            s.h_flag = True  # an hour read in a guessed local time is not learnt
        be = int(local // BUCKET)
        if be != s.b_epoch:
            s.b_epoch = be
            s.b_subj = set()
            if len(s.peak) >= 200:
                pk = memoryview(s.peak).cast("f")
                if pk[49] < 1e6:
                    pk[49] += 1
        subj: str = e.subject_id  # type: ignore[assignment]  # a request has a subject_id (decode requires it)
        bs = s.b_subj
        added = 0
        if subj not in bs and len(bs) < 100_000:
            bs.add(subj)
            added = 1
            s.h_cnt += 1
            if len(bs) > s.b_peak:
                s.b_peak = len(bs)
            if s.pend is not None:
                s.pend.tot += 1
            if s.pcc is not None:
                s.pcc.tot += 1
        if e.key_id == s.lkey:  # the key's uses, counted in runs (one compare a request)
            s.lkn += 1
        else:
            _key_flush(s)
            s.lkey = e.key_id
            s.lkn = 1
        gap = ts - s.last
        if ts > s.last:  # max(s.last, ts) (base.py, "Speed")
            s.last = ts
        ip: str = e.src_ip  # type: ignore[assignment]  # logins and requests have a src_ip (decode requires it)
        n = len(bs)
        if n < s.wn and s.h_cnt < s.hw and ip in s.lip:  # known address, usual volume
            return []
        a_crc = crc32(ip.encode())
        n_crc = _net_of(ip) | 1 << 32
        r_crc = (crc32(e.resource.encode()) if e.resource else 0) | 2 << 32
        net = e.net
        cc = (net.country if net is not None and net.net_class != "private"
              and len(net.country) == 2 and net.country != "??" else "")
        c_crc = (crc32(cc.encode()) | 3 << 32) if cc else 0
        known = s.known
        if ts - s.first < self.learn:  # learning: every address, network, resource, country
            if not (_has(known, a_crc) and _has(known, n_crc) and _has(known, r_crc)
                    and (not c_crc or _has(known, c_crc))):
                self._remember(s, a_crc, n_crc, r_crc, c_crc)
            return []
        new_addr = not _has(known, a_crc)
        new_net = not _has(known, n_crc)
        new_res = not _has(known, r_crc)
        new_cc = bool(c_crc) and not _has(known, c_crc)
        usual = s.u if s.u >= 0 else None
        crit = max(self.crit_x * s.u, 2.0 * s.wn)
        vol = 2 if n >= crit else 1 if n >= s.wn else 0
        if s.h_cnt >= s.hw and n > s.u:  # the hour rule: a sustained multiple (at a pace
            # over the usual busiest 10 minutes now), under each bucket's own margin
            vol = max(vol, 2 if s.h_cnt >= 2.0 * s.hw else 1)
        if usual is None and (new_addr or new_net) and s.busy > 0.0:
            # An hour of the day not seen yet (the first days of the watch, or a deployment's
            # local time that moved its hours): volume from a new address or network is judged
            # against the service's busiest usual bucket of any hour, the highest reference
            # it has. Its own addresses at a new hour (a batch's first night) are not.
            wn = max(self.volume_x * s.busy, s.busy + 6.0 * math.sqrt(s.busy) + 8.0,
                     float(self.min_volume))
            vol = 2 if n >= 2.0 * wn else 1 if n >= wn else 0
        thr = (s.wn, crit) if usual is not None else (0.0, 0.0)
        lh = int(local // HOUR) % 24
        night = lh >= 22 or lh < 6
        if usual is not None:
            off = s.busy > 0 and usual < 0.05 * s.busy
        else:  # an hour not seen yet: night, and woken from a silence in the last 8 hours
            if night and gap >= self.gap:
                s.woke = ts
            off = night and ts - s.woke < 8 * HOUR
        # A new internal host of a service whose hosts have been one small set for a whole
        # day (no address added since): a host joined; malware on a neighbour of the
        # service's own hosts uses its credential from there (SK Telecom, 2025).
        n_addr = 0  # known addresses (counted when they matter)
        new_host = (new_addr and not new_net and ts - _added(s) >= self.stable
                    and _active(s) >= self.learn / BUCKET
                    and ts - s.first >= self.stable and _internal(ip)
                    and (n_addr := sum(1 for x in memoryview(known).cast("Q") if x >> 32 == 0))
                    <= _STABLE_SET)
        held = 0.0  # how long this new host has been used
        pending = False
        win: _Win | None = None
        host_rank = 0
        replaced = False
        if new_host:
            p = s.pend
            if p is None or (p.place != a_crc and ts - p.last > 2 * self.persist):
                p = s.pend = _Win(a_crc, ts, self._rate_now(s))
                p.tot = added
            if p.place != a_crc:  # another new host is being judged: this one waits
                pending = True
            else:
                p.new += added
                p.last = ts
                held = ts - p.first
                win = p
                add, replaced, lean, _ = self._window(p, ts)
                big = p.tot > 0 and p.new >= p.tot / (n_addr + 1)  # over a host's fair share
                if add and held >= _W_MIN and p.tot >= _SURGE * (p.expected(ts) or 0.0):
                    host_rank = 2  # tens of percent over the season, sustained: the new host's
                elif lean and big and held >= _W_EARLY:
                    host_rank = 1  # a large share that adds to the service's reads: sooner
                elif held >= self.persist and not replaced:
                    host_rank = 2 if off or vol else 1  # a host that stays, not a pod for minutes
                elif held < self.persist:
                    pending = True
                # else: it took the others' share (a deployment, autoscaling): learnt below
            new_host = host_rank > 0
        # A country the service never used, beside the one or two it has used for days: a
        # leaked partner key called from the same cloud in another region (the AS stays
        # familiar). Critical with corroboration the attacker does not control: a key it
        # rarely uses, reads at volume, or reads that add to its usual places' instead of
        # replacing them (a region failover moves the volume; it is learnt once it has).
        cc_rank = 0
        key_share: float | None = None
        cc_state = ""
        if new_cc:
            n_cc = sum(1 for x in memoryview(known).cast("Q") if x >> 32 == 3)
            settled = (n_cc >= 1 and ts - s.first >= self.place_days * 86400.0
                       and ts - _cc_added(s) >= self.stable)
            w = s.pcc
            if w is None or ts - w.last > 2 * HOUR:  # (a country unused for two hours: anew)
                w = s.pcc = _Win(cc, ts, self._rate_now(s))
                w.tot = added
            add = moved = kept = False
            if w.place == cc:  # (a second new country meanwhile: judged without a window)
                w.new += added
                w.last = ts
                win = w
                add, moved, _, kept = self._window(w, ts)
            key_share = _key_share(s, e.key_id)
            rare_key = key_share is not None and key_share < _RARE_KEY
            corroborated = (rare_key or vol > 0 or (add and ts - w.first >= _W_MIN)
                            or (kept and ts - w.first >= self.persist))
            if not settled:
                cc_state = "young"  # no established set of places yet: learnt
            elif moved and ts - w.first >= self.persist and not corroborated:
                cc_state = "moved"  # a failover: the usual places went quiet; learnt
            elif n_cc <= _PLACES:
                cc_rank = 2 if corroborated else 1
                cc_state = "new"
            else:  # a multi-country service: one more country, judged on corroboration
                cc_rank = 1 if corroborated else 0
                cc_state = "multi"
        rank = max(host_rank, cc_rank)
        if new_host:  # judged above (off hours and volume included)
            pass
        elif new_net and (off or vol):
            rank = 2
        elif new_net and usual is None and night:
            rank = max(rank, 1)  # a night hour not seen yet: no daytime migration (below)
        elif new_addr and (off or vol):
            rank = max(rank, 1, vol)
        elif vol:
            rank = max(rank, vol)
        if rank == 0:
            if pending:  # judged again at its next request: not learnt yet
                return []
            if new_addr or new_net or new_res or new_cc:
                self._remember(s, a_crc, n_crc, r_crc, c_crc)
                if new_cc and s.pcc is not None and s.pcc.place == cc:
                    s.pcc = None
            if s.pend is not None and s.pend.place == a_crc:
                s.pend = None
            if ip not in s.lip:
                s.lip = (ip,) + s.lip[:2]
            if not new_net and not (new_cc and cc_state in ("moved", "multi")):
                return []
            sev = "info"  # a new network in daytime at its usual volume: a migration
        else:
            sev = SEVERITIES[rank]
            s.h_flag = True
        r = SEVERITIES.index(sev)
        if s.eids is None:
            s.eids = []
        if len(s.eids) < 5:
            s.eids.append(e.event_id)
        if ts - s.sent_ts > 3 * HOUR:
            s.sent = -1
        if r <= s.sent and ts - s.sent_ts < _REFRESH:
            return []
        s.sent = max(s.sent, r)
        s.sent_ts = ts
        return [self._finding(e, s, sev, n, thr, usual, off, night, gap, new_addr, new_net,
                              new_res, lh, new_host, held, cc if new_cc else "", cc_state,
                              win, key_share)]

    def _rate_now(self, s: _Svc) -> float:
        """The usual customers an hour at the current hour (-1: this hour never learnt)."""
        b = self._bin(s.h_epoch)
        for c in (b, (b + 24) % 48):
            if s.peak[_SEEN + c]:
                r = _raw_rate(s, c)
                return -1.0 if r != r else r  # (seen only in part: unknown)
        return -1.0

    @staticmethod
    def _window(w: _Win, ts: float) -> tuple[bool, bool, bool, bool]:
        """Whether the new place's reads add to the service's usual volume (the excess over
        the season is significant and mostly the new place's), whether they replaced the
        known places' (these ceded at least half of the new place's reads, by more than
        chance), whether they add by a warning's looser margin, and whether the known places
        kept their volume beside the new place's (its reads on top of theirs).

        The margin is :func:`_margin`; with no learnt hour, a replacement is the known places
        going quiet."""
        exp = w.expected(ts)
        known = w.tot - w.new
        if exp is None:
            return False, w.new > 0 and known <= 0.1 * w.new, False, False
        margin = _margin(exp)
        excess = w.tot - exp
        add = excess >= margin and w.new >= 0.5 * excess
        # a warning's looser margin (2.5 sigma), for a new host that also takes more than a
        # host's fair share: a deployment's new host takes its share from the others
        lean = excess >= 2.5 * math.sqrt(exp) + 0.1 * exp + 3.0 and w.new >= 0.5 * excess
        # the known places fell short of the season by at least half the new place's reads,
        # and by more than chance (two Poisson sigma): they ceded them
        replaced = w.new > 0 and exp - known >= max(0.5 * w.new, 2.0 * math.sqrt(exp))
        # the known places kept their volume (ceded under half the new place's reads) while
        # the new place read more than chance could hide in them (2.5 sigma): its reads are
        # on top of theirs, even when too few to show in the total yet
        kept = w.new >= 2.5 * math.sqrt(exp) + 3.0 and exp - known <= 0.5 * w.new
        return add, replaced, lean, kept

    @staticmethod
    def _remember(s: _Svc, a: int, n: int, r: int, c: int = 0) -> None:
        for v, cap in ((a, _ADDRS), (n, _NETS), (r, _RES), (c, _CCS)):
            if v and not _has(s.known, v):
                if v == c:
                    memoryview(s.peak)[_CCT:_LEN].cast("f")[0] = s.last / HOUR
                if v == a:
                    if len(s.peak) < 200:
                        s.peak += bytes(200 - len(s.peak))
                    pk = memoryview(s.peak).cast("f")
                    pk[48] = s.last / HOUR
                    pk[49] = 0.0
                known = memoryview(s.known).cast("Q").tolist()
                tag = v >> 32
                if sum(1 for x in known if x >> 32 == tag) >= cap:  # forget the oldest
                    i = next(i for i, x in enumerate(known) if x >> 32 == tag)
                    del s.known[8 * i: 8 * i + 8]
                s.known += v.to_bytes(8, "little")

    def _finding(self, e: Event, s: _Svc, sev: str, n: int, thr: tuple[float, float],
                 usual: float | None, off: bool, night: bool, gap: float,
                 new_addr: bool, new_net: bool, new_res: bool, lh: int,
                 new_host: bool = False, held: float = 0.0, cc: str = "",
                 cc_state: str = "", win: _Win | None = None,
                 key_share: float | None = None) -> Finding:
        act = e.actor_id
        what = []
        if new_net:
            what.append(f"from {e.src_ip}, a network it never used")
        elif new_host:
            what.append(f"from {e.src_ip}, a new host (used for {held / 60:.0f} min) beside "
                        f"the ones it has used since {iso(_added(s))}")
        elif new_addr:
            what.append(f"from {e.src_ip}, an address it never used")
        if cc:
            what.append(f"from {cc}, a country it never used" + (
                " (a failover: its usual places went quiet)" if cc_state == "moved" else ""))
        exp = win.expected(e.ts) if win is not None else None
        if win is not None and exp is not None and win.tot > exp:
            what.append(f"{win.tot} customers in {(e.ts - win.first) / 60:.0f} min against "
                        f"{exp:.0f} usual, {win.new} of them from the new place")
        if off:
            what.append(f"at {lh:02d}:00 local, an hour it is usually idle at")
        if thr[0] and n >= thr[0]:
            what.append(f"reading {n} distinct customers in 10 minutes")
        if s.h_cnt >= s.hw and n > s.u:
            what.append(f"reading {s.h_cnt} customers since {lh:02d}:00")
        known = memoryview(s.known).cast("Q").tolist()
        n_addr = sum(1 for x in known if x >> 32 == 0)
        n_net = sum(1 for x in known if x >> 32 == 1)
        n_cc = sum(1 for x in known if x >> 32 == 3)
        n_res = sum(1 for x in known if x >> 32 == 2)
        margin = _margin(exp) if exp is not None else None
        summary = (f"Service {act} was used " + ", ".join(what or ["from a new network"])
                   + (f": its busiest 10 minutes at {lh:02d}:00 usually read {usual:.0f} "
                      f"customers, from {n_addr} known addresses." if usual is not None else
                      f" (no earlier day at {lh:02d}:00; {n_addr} known addresses)."))
        evidence = [
            ev("distinct_customers_10min", n,
               f"warning >= {thr[0]:.0f}, critical >= {thr[1]:.0f}" if thr[0] else "not judged",
               "busiest 10-minute bucket usual for this hour and day type"),
            ev("customers_this_hour", s.h_cnt,
               f"warning >= {s.hw:.0f}, critical >= {2.0 * s.hw:.0f}" if s.hw < math.inf
               else "not judged", "each 10-minute bucket's distinct customers since "
               f"{lh:02d}:00, against the usual whole hour at this hour and day type"),
            ev("usual_busiest_10min_this_hour", round(usual, 1) if usual is not None else None,
               f"idle below {0.05 * s.busy:.1f} (5% of its busy hours' {s.busy:.0f})",
               f"hour {lh:02d}:00 local (UTC{self._off / HOUR:+g})"),
            ev("new_network", new_net, f"{n_net} networks (/16, /48) used before",
               str(e.src_ip)),
            ev("new_address", new_addr, f"{n_addr} addresses used before", ""),
            ev("new_host_in_stable_set", new_host, f"internal, used for >= "
               f"{self.persist / 60:g} min, no address added for >= "
               f"{self.stable / HOUR:g} h before, <= {_STABLE_SET} hosts",
               f"no address added since {iso(_added(s))}"),
            ev("new_country", cc or False,
               f"{n_cc} countries used before, none added for >= {self.stable / HOUR:g} h, "
               f"service seen >= {self.place_days:g} days; <= {_PLACES}: a place, more: "
               "multi-country", cc_state),
            ev("window_customers", [win.tot, win.new] if win is not None else None,
               f"usual {exp:.0f} (+{margin:.0f} margin; critical for a new host at "
               f">= {_SURGE:g}x)" if exp is not None and margin is not None else
               "no learnt hour: not judged against the season",
               "customers since the new place was first used (every place, the new one)"),
            ev("key_share", round(key_share, 3) if key_share is not None else None,
               f"rarely used below {_RARE_KEY:g}", "this key id's share of the service's "
               "requests"),
            ev("new_resource", new_res, f"{n_res} resources read before", str(e.resource)),
            ev("silence_before_h", round(gap / HOUR, 1), f"night after >= {self.gap / HOUR:g} h "
               "silence when this hour is not known yet", f"night: {night}"),
            ev("first_seen", iso(s.first), f"learning {self.learn / HOUR:g} h", ""),
        ]
        score = {"info": 0.3, "warning": 0.7, "critical": 0.95}[sev]
        return Finding(self.id, "actor", act, sev, score, summary, evidence,  # type: ignore[arg-type]  # a request has an actor_id (decode requires it)
                       list(s.eids or ()), e.ts)

    # --- housekeeping ----------------------------------------------------------------------
    def expire(self, now: float) -> None:
        dead = [k for k, s in self._svcs.items() if now - s.last > self.idle]
        for k in dead:
            del self._svcs[k]
        bucket = int((now + self._off) // BUCKET)
        for s in self._svcs.values():  # a finished bucket's customer ids are not kept
            if s.b_subj and s.b_epoch < bucket:
                s.b_subj = set()

    def shed(self, cap: int) -> int:
        return evict(self._svcs, cap, _last, _reported)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "fixed_off" not in state:  # a checkpoint from before the deployment's local time
            self.fixed_off = legacy_offset(state.get("_off"))
            self.__dict__.pop("tz", None)

    def tracked(self) -> dict[str, int]:
        return {"actor": len(self._svcs)} if self._svcs else {}


DETECTOR = ServiceBaseline
