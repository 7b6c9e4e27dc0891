"""service_baseline — a service credential used off its seasonal baseline or from a network it never used.

Services are the principals whose credentials malware on an internal server uses (SK Telecom,
2025: a service credential at night from an internal host the service never used), and whose
volume an attacker multiplies from the service's own host. Per service (``actor_type`` =
``service``) the detector keeps, in local time (``tz_offset_hours``, default +9 KST, as
``unusual_hour``):

- a *seasonal* baseline: per hour of day and day type (weekday / weekend, 48 bins) an EWMA of
  the busiest 10-minute bucket's distinct customers in that hour (its rate at the scale an
  attack is seen at), learnt at the end of each hour (hours without a request are learnt as
  zeros; hours it flagged are not learnt); the resources it reads;
- the addresses and networks (/16 for IPv4, /48 for IPv6) it has used: every one in its first
  ``learn_hours``, later only the ones whose requests raised nothing.

Each request is judged at once (integer compares; the customer is added to the current
10-minute bucket's transient set, dropped at the bucket's end):

- *volume*: the bucket's distinct customers over ``volume_x`` times the busiest bucket usual
  for this hour and day type (and over a Poisson margin). Judged only where this hour of day
  has been seen on an earlier day (either day type), so a first day, a nightly batch's first
  night, or a new service teach the baseline and are not judged by a guess;
- *off hours*: a request in an hour of day the service is known to be idle at (seen, usual
  busiest bucket under 5% of its busy hours'), or at local night (22:00-06:00) in an hour not seen yet
  after at least ``gap_hours`` of silence (a daytime service woken at night: its requests
  stay off hours for the rest of that night, up to 8 hours);
- *new network / new address*: a /16 (/48) or an address the service never used;
- *new host beside a stable set*: an internal (private) address it never used, in a known
  network, of a service whose hosts are a small set (at most 8) to which no address was added
  for ``stable_hours`` (24) and 36 active 10-minute buckets (six hours of activity), once it
  has been used for ``persist_minutes`` (60; not learnt meanwhile: a pod of a one-off job or an
  operator's shell used for minutes stays quiet). Malware on
  a neighbour of the service's own hosts (the SK Telecom pattern: the /24 is familiar, the
  hours, resources and volume can be the usual) uses its credential from a host the attacker
  could reach, not one of the service's: to stay quiet it must take over one of those very
  hosts. A pool whose addresses keep changing (autoscaling) is never stable, a cloud's public
  addresses are not judged this way.

Severity: a new network at night or at volume is critical (the SK Telecom pattern); a new
host beside a stable set warns after its first hour (critical at night or at volume); a new
address in a known network at night or at volume, and volume from known addresses, warn
(critical at ``crit_x`` times the usual bucket); a new network alone (daytime, usual volume: a
migration) is info. Nightly batches that run every night are seen at their hour on earlier
nights, so they are their own baseline. Not judged: a service younger than ``learn_hours``.
Customers and employees are other detectors' (``bulk_lookup``, ``record_volume``).

State: under 1 KiB per service (a 48-bin float array and two floats (when an address was
last added, active buckets since), 48 day counts, up to 16 address, 8 network and 16 resource
CRCs; test); a new host's CRC and first time (kept while it is judged); the current bucket's
set of customer ids (transient: dropped when the bucket ends).

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
from typing import TYPE_CHECKING
from zlib import crc32

from ._cap import evict
from .base import SEVERITIES, Detector, Finding, ev, iso

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
_STABLE_SET = 8  # at most this many hosts: a set, not a pool that churns (the cap is 16)


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


class _Svc:
    __slots__ = ("first", "last", "h_epoch", "h_flag", "b_epoch", "b_subj", "b_peak",
                 "peak", "seen", "busy", "known", "sent", "sent_ts", "eids", "u", "wn",
                 "lip", "woke", "pend")

    def __init__(self, ts: float) -> None:
        self.first = self.last = ts
        self.h_epoch = -1
        self.h_flag = False
        self.b_epoch = -1
        self.b_subj: set[str] = set()
        self.b_peak = 0  # busiest bucket's distinct customers in the current hour
        # bytearrays (the snapshot format's own type) read through memoryview casts:
        # float32 EWMA busiest 10-min bucket, distinct customers, per bin; a 49th and 50th
        # float32: the hour (since the epoch) the last address was added, and the active
        # 10-minute buckets since then
        self.peak = bytearray(4 * 50)
        memoryview(self.peak).cast("f")[48] = ts / HOUR
        self.seen = bytearray(48)  # days each (day type, hour) bin was learnt (capped at 255)
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
        self.pend: tuple[int, float] | None = None  # a new host beside a stable set: its
        # address CRC and first request (it pages once it has been used for ``persist``)


def _added(s: _Svc) -> float:
    """When the last address was added to ``s.known`` (the service's start in a checkpoint
    written before this was kept)."""
    if len(s.peak) < 200:
        return s.first
    return float(memoryview(s.peak).cast("f")[48]) * HOUR


def _active(s: _Svc) -> float:
    """Active 10-minute buckets since the last address was added (0 in an older checkpoint)."""
    return float(memoryview(s.peak).cast("f")[49]) if len(s.peak) == 200 else 0.0


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
                   "of day, or is used from a network it never used at night or at volume.")
    severity = "critical"
    attack = ("T1078.004", "T1119", "T1530")  # Valid Accounts: cloud; Automated Collection
    status = "experimental"
    entity_kinds = ("actor",)
    wants = frozenset({"access"})
    principal_types = ("service",)  # the engine routes only services' requests here (speed)
    triage = (
        "Check: which host the requests came from (evidence: new network / new address) and "
        "whether a deployment or migration moved the service there; the hour against the "
        "service's schedule; the distinct customers per 10 minutes against the usual for this "
        "hour and day type; the resources read (new ones are listed). False positives: a "
        "migration to a new network, a backfill or re-run after an outage (volume at an odd "
        "hour), a new nightly job on its first nights, a planned campaign; for a new host "
        "beside a stable set, a deployment that added or replaced a host or a failover to a "
        "standby host (the address is not learnt while it pages: allow-list it once the owner "
        "confirms). Respond: ask the service's owner; if nobody changed it, rotate the service "
        "credential, isolate the host it was used from (malware using a service credential is "
        "the SK Telecom pattern), preserve its logs and count the customers read.")

    def __init__(self, tz_offset_hours: float = 9.0, learn_hours: float = 6.0,
                 volume_x: float = 3.0, crit_x: float = 10.0, min_volume: int = 20,
                 gap_hours: float = 4.0, idle_days: float = 45.0,
                 stable_hours: float = 24.0, persist_minutes: float = 60.0) -> None:
        self.tz = tz_offset_hours
        self._off = tz_offset_hours * HOUR
        self.learn = learn_hours * HOUR
        self.volume_x = volume_x
        self.crit_x = crit_x
        self.min_volume = min_volume
        self.gap = gap_hours * HOUR
        self.idle = idle_days * 86400.0
        self.stable = stable_hours * HOUR
        self.persist = persist_minutes * 60.0
        self._svcs: dict[str, _Svc] = {}

    # --- baseline --------------------------------------------------------------------------
    @staticmethod
    def _bin(hour_epoch: int) -> int:
        day = hour_epoch // 24
        weekend = (day + 3) % 7 >= 5  # epoch day 0 was a Thursday
        return (24 if weekend else 0) + hour_epoch % 24

    def _close_hours(self, s: _Svc, he: int) -> None:
        """Learn the hours from ``s.h_epoch`` up to (not including) ``he``."""
        if s.h_epoch >= 0:
            self._learn(s, s.h_epoch, s.b_peak, s.h_flag)
            for h in range(s.h_epoch + 1, min(he, s.h_epoch + 1 + 7 * 24)):
                self._learn(s, h, 0, False)
        s.h_epoch = he
        s.b_peak = 0
        s.h_flag = False
        usual = self._usual(s, self._bin(he))
        if usual is None:
            s.u, s.wn = -1.0, math.inf
        else:
            s.u = usual
            s.wn = max(self.volume_x * usual, usual + 6.0 * math.sqrt(usual) + 8.0,
                       float(self.min_volume))

    def _learn(self, s: _Svc, h: int, peak: int, flagged: bool) -> None:
        if flagged:
            return
        b = self._bin(h)
        n = s.seen[b]
        a = 1.0 / (n + 1) if n < 3 else 0.3
        pk = memoryview(s.peak).cast("f")
        pk[b] += a * (peak - pk[b])
        if n < 255:
            s.seen[b] = n + 1
        if peak:
            s.busy += (0.5 if s.busy == 0.0 else 0.1) * (peak - s.busy)

    def _usual(self, s: _Svc, b: int) -> float | None:
        """Usual busiest bucket at bin ``b`` (this day type, else the other; the largest of the
        hour and its two neighbours); None when this hour of day was never learnt."""
        seen = s.seen
        for c in (b, (b + 24) % 48):
            if seen[c]:
                pk = memoryview(s.peak).cast("f")
                base = c - c % 24  # a job that starts a few minutes early or late: neighbours
                return max(pk[base + (c + d) % 24] for d in (-1, 0, 1)
                           if seen[base + (c + d) % 24])
        return None

    # --- event path ------------------------------------------------------------------------
    def on_access(self, e: Event, ctx: Context) -> list[Finding]:
        if e.actor_type != "service":
            return []
        ts = e.ts
        local = ts + self._off
        act: str = e.actor_id  # type: ignore[assignment]  # a request has an actor_id (decode requires it)
        s = self._svcs.get(act)
        if s is None:
            s = self._svcs[act] = _Svc(ts)
        he = int(local // HOUR)
        if he != s.h_epoch:
            self._close_hours(s, he)
        be = int(local // BUCKET)
        if be != s.b_epoch:
            s.b_epoch = be
            s.b_subj = set()
            if len(s.peak) == 200:
                pk = memoryview(s.peak).cast("f")
                if pk[49] < 1e6:
                    pk[49] += 1
        subj: str = e.subject_id  # type: ignore[assignment]  # a request has a subject_id (decode requires it)
        bs = s.b_subj
        if subj not in bs and len(bs) < 100_000:
            bs.add(subj)
            if len(bs) > s.b_peak:
                s.b_peak = len(bs)
        gap = ts - s.last
        if ts > s.last:  # max(s.last, ts) (base.py, "Speed")
            s.last = ts
        ip: str = e.src_ip  # type: ignore[assignment]  # logins and requests have a src_ip (decode requires it)
        n = len(bs)
        if n < s.wn and ip in s.lip:  # a known address below the volume threshold
            return []
        a_crc = crc32(ip.encode())
        n_crc = _net_of(ip) | 1 << 32
        r_crc = (crc32(e.resource.encode()) if e.resource else 0) | 2 << 32
        known = s.known
        if ts - s.first < self.learn:  # learning: every address, network and resource
            if not (_has(known, a_crc) and _has(known, n_crc) and _has(known, r_crc)):
                self._remember(s, a_crc, n_crc, r_crc)
            return []
        new_addr = not _has(known, a_crc)
        new_net = not _has(known, n_crc)
        new_res = not _has(known, r_crc)
        usual = s.u if s.u >= 0 else None
        crit = max(self.crit_x * s.u, 2.0 * s.wn)
        vol = 2 if n >= crit else 1 if n >= s.wn else 0
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
        new_host = (new_addr and not new_net and ts - _added(s) >= self.stable
                    and _active(s) >= self.learn / BUCKET
                    and ts - s.first >= self.stable and _internal(ip)
                    and sum(1 for x in memoryview(known).cast("Q") if x >> 32 == 0)
                    <= _STABLE_SET)
        held = 0.0  # how long this new host has been used
        if new_host:
            p = s.pend
            if p is None or (p[0] != a_crc and ts - p[1] > 2 * self.persist):
                p = s.pend = (a_crc, ts)
            held = ts - p[1] if p[0] == a_crc else 0.0
            new_host = held >= self.persist  # a host that stays, not a pod used for minutes
            pending = not new_host
        else:
            pending = False
        rank = 0
        if new_host:
            rank = 2 if off or vol else 1
        elif new_net and (off or vol):
            rank = 2
        elif new_addr and (off or vol):
            rank = max(1, vol)
        elif vol:
            rank = vol
        if rank == 0:
            if pending:  # judged again at its next request: not learnt yet
                return []
            if new_addr or new_net or new_res:
                self._remember(s, a_crc, n_crc, r_crc)
            if ip not in s.lip:
                s.lip = (ip,) + s.lip[:2]
            if not new_net:
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
                              new_res, lh, new_host, held)]

    @staticmethod
    def _remember(s: _Svc, a: int, n: int, r: int) -> None:
        for v, cap in ((a, _ADDRS), (n, _NETS), (r, _RES)):
            if not _has(s.known, v):
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
                 new_host: bool = False, held: float = 0.0) -> Finding:
        act = e.actor_id
        what = []
        if new_net:
            what.append(f"from {e.src_ip}, a network it never used")
        elif new_host:
            what.append(f"from {e.src_ip}, a new host (used for {held / 60:.0f} min) beside "
                        f"the ones it has used since {iso(_added(s))}")
        elif new_addr:
            what.append(f"from {e.src_ip}, an address it never used")
        if off:
            what.append(f"at {lh:02d}:00 local, an hour it is usually idle at")
        if thr[0] and n >= thr[0]:
            what.append(f"reading {n} distinct customers in 10 minutes")
        known = memoryview(s.known).cast("Q").tolist()
        n_addr = sum(1 for x in known if x >> 32 == 0)
        n_net = sum(1 for x in known if x >> 32 == 1)
        n_res = len(known) - n_addr - n_net
        summary = (f"Service {act} was used " + ", ".join(what or ["from a new network"])
                   + (f": its busiest 10 minutes at {lh:02d}:00 usually read {usual:.0f} "
                      f"customers, from {n_addr} known addresses." if usual is not None else
                      f" (no earlier day at {lh:02d}:00; {n_addr} known addresses)."))
        evidence = [
            ev("distinct_customers_10min", n,
               f"warning >= {thr[0]:.0f}, critical >= {thr[1]:.0f}" if thr[0] else "not judged",
               "busiest 10-minute bucket usual for this hour and day type"),
            ev("usual_busiest_10min_this_hour", round(usual, 1) if usual is not None else None,
               f"idle below {0.05 * s.busy:.1f} (5% of its busy hours' {s.busy:.0f})",
               f"hour {lh:02d}:00 local (UTC{self.tz:+g})"),
            ev("new_network", new_net, f"{n_net} networks (/16, /48) used before",
               str(e.src_ip)),
            ev("new_address", new_addr, f"{n_addr} addresses used before", ""),
            ev("new_host_in_stable_set", new_host, f"internal, used for >= "
               f"{self.persist / 60:g} min, no address added for >= "
               f"{self.stable / HOUR:g} h before, <= {_STABLE_SET} hosts",
               f"no address added since {iso(_added(s))}"),
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

    def tracked(self) -> dict[str, int]:
        return {"actor": len(self._svcs)} if self._svcs else {}


DETECTOR = ServiceBaseline
