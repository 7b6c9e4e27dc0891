"""unusual_hour — an employee or a service busy at an hour it essentially never works.

Per principal (employees and services; customers are ignored) a 24-bin histogram of the local
hours it was active in (one count per active hour-slot, small ints in a ``bytearray`` that
halves itself before a bin overflows) is learned online. The probability of the current hour
blends the principal's own histogram (smoothed over the neighbouring hours: someone who works
until 20:00 is not strange at 21:00) with its peer group's (principal type) histogram, which
starts from a prior (employees: office hours; services: any hour) so the detector is useful in
the first hour and a principal with little history leans on its peers. The peer part weighs
``prior_weight`` hour-slots: a new employee at 03:00 is judged by office hours at once; a
service (whose prior is flat) is judged on its own hours once it has about two weeks of them,
so a nightly batch is never paged for running at night, from its first night on.

It pages only on *volume*: a single late login never does. When the events of one principal in
one hour-slot reach ``info_events`` (``warn_events``) at an hour whose probability is below
``rare_p``, it raises an info (a warning) on the principal. The volume is also scored by a
River ``GaussianScorer`` per peer group (deterministic, no random state), fitted on the
log-volumes of ordinary hour-slots; flagged hour-slots teach neither the histograms nor it.

Hours are local to the deployment: the engine's local time (``EngineConfig.timezone``: an IANA
zone with its DST, or "auto", the home country's zone from the first customer logins, +9 h
until then; ``detectors.context.LocalTime``). ``tz_offset_hours``, when given, fixes the
offset instead (0 for UTC). Events carry UTC times and the contract has no per-event zone,
so one zone is the honest choice. A DST change moves the hour-slots by an hour: the local
hour repeated in autumn is skipped (its requests count as an earlier slot's, already judged).

Victims: none are named. The page is about the employee or service (its entity, in the clear)
and counts its requests; the customers it read are in the events behind ``event_ids``.

>>> from detectors.engine import Engine, EngineConfig
>>> eng = Engine(EngineConfig(detectors=("unusual_hour",)))
>>> day, t = 86400, 1750723200           # 2025-06-24 00:00 UTC = 09:00 in Seoul
>>> n = 0
>>> for d in range(5):                   # five office days, 10:00-17:00 local
...     for h in range(1, 8):
...         for k in range(4):
...             n += 1
...             _ = eng.process_obj({"event_id": f"a{n}", "ts": t + d * day + h * 3600 + k * 60,
...                                  "actor_id": "e-7", "actor_type": "employee",
...                                  "subject_id": "c-1", "resource": "address",
...                                  "src_ip": "203.246.168.10"})
>>> night = t + 5 * day + 18 * 3600      # 03:00 local
>>> alerts = []
>>> for k in range(60):
...     alerts += eng.process_obj({"event_id": f"n{k}", "ts": night + k * 30, "actor_id": "e-7",
...                                "actor_type": "employee", "subject_id": f"c-{k}",
...                                "resource": "address", "src_ip": "203.246.168.10"})[0]
>>> [(a["severity"], a["entity"]["id"]) for a in alerts]
[('info', 'e-7'), ('warning', 'e-7')]
>>> alerts[-1]["summary"]
'Employee e-7 made 50 requests at 03:00-04:00 (UTC+9), an hour it was active in 0 of 35 hour-slots since 2025-06-24; its usual hours are 10-16.'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from river import anomaly

from ._cap import evict
from .base import Detector, Finding, ev, iso
from .context import legacy_offset

if TYPE_CHECKING:
    from .engine import Context
    from .events import Event

# Prior peer histograms (relative weights by local hour). Employees: office hours with a tail
# into the evening; services: any hour.
_OFFICE = [0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 2, 6, 10, 10, 10, 9, 10, 10, 10, 10, 9, 6, 3,
           2, 1.5, 1, 0.5]
PRIORS: dict[str, list[float]] = {"employee": _OFFICE, "service": [1.0] * 24}
_SMOOTH = (0.25, 0.5, 0.25)  # weights of hour-1, hour, hour+1


@dataclass(slots=True)
class _Principal:
    hist: bytearray = field(default_factory=lambda: bytearray(24))
    slots: int = 0  # active hour-slots learned (sum of hist before halvings)
    first: float = 0.0
    last: float = 0.0
    slot: int = -1  # current hour-slot (hours since epoch, local)
    count: int = 0  # events in the current hour-slot
    p: float = 1.0  # probability of the current slot's hour, computed at slot start
    sent: int = -1  # severity rank reported in the current slot
    event_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Peer:
    hist: list[float]
    total: float
    scorer: anomaly.GaussianScorer
    learned: int = 0



def _last(p: _Principal) -> float:
    return p.last


def _reported(p: _Principal) -> bool:
    return p.sent >= 0  # reported in its current hour-slot

class UnusualHour(Detector):
    id = "unusual_hour"
    title = "Activity at an unusual hour"
    description = (
        "An employee or a service makes many requests at an hour of the day it (and its peer "
        "group) essentially never works."
    )
    severity = "warning"
    attack = ("T1078",)  # Valid Accounts
    status = "experimental"
    entity_kinds = ("actor",)
    wants = frozenset({"login", "access"})
    triage = (
        "Check: whether the person was on call or on a trip (time zone), what was read in that "
        "hour (distinct customers, exports), from which network and device; for a service, a "
        "changed schedule or a backfill. False positives: shift changes, deadlines, daylight "
        "saving in deployments with a zone, a job moved to a new hour (services learn their own "
        "hours over about two weeks). "
        "Respond: ask the principal's manager, suspend the session if they did not do it, and "
        "review the accessed records."
    )

    def __init__(self, tz_offset_hours: float | None = None, rare_p: float = 0.01,
                 info_events: int = 20, warn_events: int = 50, prior_weight: float = 8.0,
                 ttl: float = 45 * 86400.0, grace: int = 50,
                 principal_types: tuple[str, ...] = ("employee", "service")) -> None:
        #: a fixed offset (seconds) when ``tz_offset_hours`` is given, else None: the
        #: deployment's local time (``ctx.local``)
        self.fixed_off = None if tz_offset_hours is None else tz_offset_hours * 3600.0
        self.rare_p = rare_p
        self.info_events = info_events
        self.warn_events = warn_events
        self.prior_weight = prior_weight
        self.ttl = ttl
        self.grace = grace
        self.principal_types = frozenset(principal_types)
        self._state: dict[str, _Principal] = {}  # staff and service ids (not customer ids)
        self._peers: dict[str, _Peer] = {}

    def _peer(self, ptype: str) -> _Peer:
        p = self._peers.get(ptype)
        if p is None:
            prior = PRIORS.get(ptype, PRIORS["service"])
            scale = 24.0 / sum(prior)  # the prior weighs as one day of one principal
            hist = [w * scale for w in prior]
            p = self._peers[ptype] = _Peer(hist, sum(hist),
                                           anomaly.GaussianScorer(grace_period=self.grace))
        return p

    # --- hooks ---------------------------------------------------------------------------
    def on_login(self, e: Event, ctx: Context) -> list[Finding]:
        if e.account_type not in self.principal_types:
            return []
        return self._active(e, e.account_id, e.account_type, ctx)  # type: ignore[arg-type]  # a login has an account_id (decode requires it)

    def on_access(self, e: Event, ctx: Context) -> list[Finding]:
        if e.actor_type not in self.principal_types:
            return []
        return self._active(e, e.actor_id, e.actor_type, ctx)  # type: ignore[arg-type]  # a request has an actor_id (decode requires it)

    def _active(self, e: Event, pid: str, ptype: str, ctx: Context) -> list[Finding]:
        st = self._state.get(pid)
        if st is None:
            st = self._state[pid] = _Principal(first=e.ts)
        off = self.fixed_off
        if off is None:
            off = ctx.local.offset(e.ts)
        slot = int((e.ts + off) // 3600)
        if slot != st.slot:
            if slot < st.slot:
                return []  # late event from an earlier hour: already judged
            self._close(st, ptype)
            st.slot, st.count, st.sent = slot, 0, -1
            st.p = self.prob(st, ptype, slot % 24)
            st.event_ids = []
        st.count += 1
        st.last = e.ts
        if st.p >= self.rare_p:
            return []
        if len(st.event_ids) < 20:
            st.event_ids.append(e.event_id)
        n = st.count
        if n == self.warn_events:
            return self._finding(st, pid, ptype, 1, e.ts, off)
        if n == self.info_events and st.sent < 0:
            return self._finding(st, pid, ptype, 0, e.ts, off)
        return []

    # --- model ---------------------------------------------------------------------------
    def prob(self, st: _Principal, ptype: str, hour: int) -> float:
        """P(active at this local hour) for the principal: own smoothed histogram blended with
        the peer group's, the peer weighing ``prior_weight`` hour-slots."""
        peer = self._peer(ptype)
        hist = st.hist
        own = sum(w * hist[(hour + d) % 24] for w, d in zip(_SMOOTH, (-1, 0, 1), strict=True))
        total = sum(hist)
        peer_p = sum(w * peer.hist[(hour + d) % 24]
                     for w, d in zip(_SMOOTH, (-1, 0, 1), strict=True)) / peer.total
        k = self.prior_weight
        return (own + k * peer_p) / (total + k)

    def _close(self, st: _Principal, ptype: str) -> None:
        """Learn the finished hour-slot, unless it was flagged."""
        if st.slot < 0 or st.count == 0 or st.sent >= 0:
            return
        h = st.slot % 24
        hist = st.hist
        if hist[h] >= 255:
            for i in range(24):
                hist[i] //= 2
        hist[h] += 1
        st.slots += 1
        peer = self._peer(ptype)
        peer.hist[h] += 1.0
        peer.total += 1.0
        peer.scorer.learn_one(None, math.log1p(st.count))
        peer.learned += 1

    # --- findings ------------------------------------------------------------------------
    def _finding(self, st: _Principal, pid: str, ptype: str, rank: int, ts: float,
                 off: float) -> list[Finding]:
        st.sent = rank
        hour = st.slot % 24
        peer = self._peer(ptype)
        vol = peer.scorer.score_one(None, math.log1p(st.count))
        usual = _usual_hours(st.hist)
        own_n = st.hist[hour]
        tz = f"UTC{off / 3600.0:+g}" if off else "UTC"
        learned = sum(st.hist)
        since = iso(st.first)[:10]
        summary = (f"{ptype.capitalize()} {pid} made {st.count} requests at "
                   f"{hour:02d}:00-{(hour + 1) % 24:02d}:00 ({tz}), an hour it was active in "
                   f"{own_n} of {learned} hour-slots since {since}; its usual hours are {usual}.")
        peer_p = peer.hist[hour] / peer.total
        evidence = [
            ev("events_in_hour", st.count,
               f"info at {self.info_events}, warning at {self.warn_events} in an unusual hour",
               "logins and requests in this hour-slot"),
            ev("hour_probability", round(st.p, 5), f"< {self.rare_p:g} is unusual",
               f"own histogram ({learned} active hour-slots, usual hours {usual}) blended with "
               f"the {ptype} peer group ({100 * peer_p:.2f}% of {ptype} activity at this hour)"),
            ev("volume_score", round(vol, 3), "0 = a typical hourly volume for the peer group",
               "River GaussianScorer on log-volume of ordinary hour-slots"),
        ]
        score = max(vol, 1.0 - st.p / self.rare_p) * (0.7 if rank == 0 else 1.0)
        sev = ("info", "warning")[rank]
        return [Finding(self.id, "actor", pid, sev, score, summary, evidence,
                        list(st.event_ids), ts)]

    # --- housekeeping --------------------------------------------------------------------
    def expire(self, now: float) -> None:
        for pid in [p for p, st in self._state.items() if now - st.last > self.ttl]:
            del self._state[pid]

    def shed(self, cap: int) -> int:
        return evict(self._state, cap, _last, _reported)

    def describe(self, kind: str, ident: str) -> list[dict[str, Any]]:
        """The principal's hours against its own history blended with its peer group's, for
        the entity page (``detectors/explain.py``)."""
        st = self._state.get(ident) if kind in ("actor", "account") else None
        if st is None:
            return []
        return [{"detector": self.id, "feature": "active_hour_probability",
                 "observed": round(st.p, 6), "hour_local": st.slot % 24 if st.slot >= 0 else None,
                 "events_this_hour": st.count, "rare_below": self.rare_p,
                 "own_hours": [h for h in range(24) if st.hist[h]],
                 "own_slots": st.slots, "peer_weight_slots": self.prior_weight}]

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "fixed_off" not in state:  # a checkpoint from before the deployment's local time
            self.fixed_off = legacy_offset(self.__dict__.pop("_off", None))
            self.__dict__.pop("tz", None)

    def tracked(self) -> dict[str, int]:
        return {"actor": len(self._state)}

    def warmup(self) -> float:
        if not self._peers:
            return 0.0
        return min(1.0, max(p.learned for p in self._peers.values()) / self.grace)


def _usual_hours(hist: bytearray) -> str:
    """The hours holding most activity, as ranges: '10-16' or '2, 9-17'."""
    total = sum(hist)
    if not total:
        return "none learned yet"
    hours = sorted(h for h in range(24) if hist[h] * 24 >= total * 0.5)
    out: list[str] = []
    start = prev = None
    for h in hours:
        if start is None:
            start = prev = h
        elif h == prev + 1:  # type: ignore[operator]  # prev is set with start, on the first hour
            prev = h
        else:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = h
    if start is not None:
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ", ".join(out)


DETECTOR = UnusualHour
