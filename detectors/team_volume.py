"""team_volume — an employee who, day after day, reads several times as many customers as their team.

The slow insider of issue 14 item 4 by volume: an employee who, inside their own session, from the
office or the home VPN, in working hours, reading the resources their job reads, reads several
times as many distinct customers a day as the other members of their team, for weeks, from the
first days of the watch (so their own history is no baseline: their second day is already the
insider's). ``bulk_lookup`` judges staff days against their own history and a peer group of
(principal type, network class), where a light team (~10 customers a day each) sits with a call
centre whose agents read hundreds: the insider is invisible there.

The team. The contract carries no team or role, so the team is what the events show: employees
who read the same *mix* of resource classes (a credit team reads income, credit reports, limits;
a call centre profiles, addresses, transactions). Each employee keeps its reads per class (decayed
by 1 - 1/``mix_days`` a local day); at each local midnight (the engine's local time,
``EngineConfig.timezone``, +9 h until "auto" decides; ``tz_offset_hours`` fixes an offset) the
employees active within ``active_days`` are grouped, the busiest first, each into the first team
whose mix (the sum of its members' normalised mixes) has a cosine similarity of ``same_team``
(0.8) or more with its own, else into a team of its own (at most ``max_teams``, 200: a member
beyond is alone, so a midnight stays bounded). A member's *typical day* is the median of its last ``hist_days`` (9) active days' distinct customers (a weekend or a short day does not
move it); a team's reference for a member is the *other* members' typical days (the member never
raises its own reference; a member warned within ``quiet_days`` is no one's reference).

The rule. A member's day is *over* when its distinct customers reach ``day_x`` (4) x the median
of the others' typical days, ``high_x`` (2) x the busiest other member's typical day, and
``day_floor`` (30): the floor is low enough for a light team (a team at 8 a day whose busiest
member reads 13 is over at 32), the median keeps a member at three times a tight team's day
quiet, and the busiest other keeps a heavy-tailed team quiet (a call centre whose busiest agents
read four times its median every day: their limit is twice the busiest agent's day). A member
warns at the read that makes today over when ``min_days`` (3) of its last ``span_days`` (7)
local days, today included, are over: sustained, so one busy day (a backlog, a campaign) is not
a page. Today is judged at the reads against the limit computed at the last local midnight;
each completed day is judged again at the midnight, against the team of that day. Quiet by
construction: a team with fewer than ``min_peers`` (4) other members (a tiny team has no
reference; a member with no team of its mix is alone), the first local day of the watch (no team
known before its midnight: that day is judged at it and counts toward the sustained days), a
steady member whose team reads as much as it does (heavy teams are their own peers, not a light
team's). One warning per member within ``quiet_days`` (30). Warning only, never critical: the
reads are within the person's rights; a human decides. Limits: two insiders in one team raise
each other's reference (the busiest other member); an insider whose team has a heavy member
must read twice that member's day.

State per employee (< 0.5 KiB): the distinct customers of the current local day in a 512-bit
linear-counting bitmap (64 bytes, salted digests: no customer id; exact to a few percent up to a
few hundred a day, ~1,000 before it saturates, which is far above any limit it serves), the reads
per resource class (float32s in a ``bytearray``, at most ``MAX_CLASSES``), the over days as a
bitmask and a few numbers. State per team: none kept between midnights (the teams are rebuilt
each night from the members' mixes).

Partitions. Keyed by actor (as ``peer_resource`` and ``bulk_lookup``'s staff peers): with
several partitions each engine sees only its own employees, so a team is the members of that
mix hashed to that partition. With few partitions a team is a sample of the team and its median
is about as good; with many, teams shrink under ``min_peers`` and the detector stays quiet rather
than compare an employee with one or two others. Nothing is relayed between partitions.

Victims: the customers read are counted, the one read at the verdict named by salted digest
(revealed where configured).

>>> from detectors.engine import Engine, EngineConfig
>>> eng = Engine(EngineConfig(detectors=("team_volume",)))
>>> t0, day, out, n = 1750726800, 86400, [], 0     # 2025-06-24 01:00 UTC = 10:00 in Seoul
>>> def read(who, subj, res, ts):
...     global n; n += 1
...     return eng.process_obj({"event_id": f"r{n}", "ts": ts, "actor_id": who,
...         "actor_type": "employee", "subject_id": subj, "resource": res,
...         "src_ip": "10.20.1.5"})[0]
>>> for d in range(5):       # a credit team of six (10 customers a day, one of them 50)
...     for k in range(50):  # and a call centre of six (200 a day): one office
...         for a in range(6):
...             if k < 10 or a == 0:
...                 out += read(f"credit-{a}", f"c-{d}-{a}-{k}", ("income", "limits")[k % 2],
...                             t0 + d * day + k * 500 + a)
...             for j in range(4):
...                 out += read(f"call-{a}", f"p-{d}-{a}-{k}-{j}", ("profile", "address")[j % 2],
...                             t0 + d * day + k * 500 + a + 10 * j)
>>> [(a["entity"]["id"], a["severity"]) for a in out]
[('credit-0', 'warning')]
>>> print(out[0]["summary"])  # doctest: +ELLIPSIS
Employee credit-0 read 41 distinct customers today, 4.1x its team's typical day of 10 (5 peers who read the same mix of data), and was over 4x on 3 of its last 7 local days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._cap import evict
from .base import Detector, Finding, ev, iso
from .context import DEFAULT_OFFSET

if TYPE_CHECKING:
    from .engine import Context
    from .events import Event

DAY = 86400.0
#: resource classes one engine tells apart (the contract's resource is free text: a producer
#: that sends a new class per event must not grow the per-employee arrays): the rest untracked
MAX_CLASSES = 32
#: bits of the per-day distinct-customer bitmap (linear counting)
_BITS = 512
_MASK = _BITS - 1


@dataclass(slots=True)
class _Member:
    first: float = 0.0
    last: float = 0.0
    day: int = -1  # the local day of its last read
    days: int = 0  # active local days completed (judged at a midnight)
    seen: bytearray = field(default_factory=lambda: bytearray(_BITS // 8))  # today's customers
    nset: int = 0  # bits set in ``seen``
    mix: bytearray = field(default_factory=bytearray)  # float32 per class: decayed reads
    hist: bytearray = field(default_factory=bytearray)  # uint16 per completed active day
    typical: float = 0.0  # the median of ``hist``: its typical day
    over: int = 0  # bit i: the local day ``day - i`` was over
    limit: float = math.inf  # today's limit (from the last midnight)
    ref: float = 0.0  # the team's typical day (the others') at the last midnight
    high: float = 0.0  # the busiest other member's typical day
    peers: int = 0  # the team's other members at the last midnight
    sent_day: int = -1_000_000  # the local day it last warned on


def _last(m: _Member) -> float:
    return m.last


def _flagged(m: _Member) -> bool:
    return m.sent_day >= 0


def _count(nset: int) -> float:
    """Distinct customers from the bits set (linear counting)."""
    if nset >= _BITS:
        return _BITS * math.log(_BITS)
    return -_BITS * math.log(1.0 - nset / _BITS)


class TeamVolume(Detector):
    id = "team_volume"
    title = "Employee reads several times as many customers a day as their team"
    description = (
        "An employee reads, on several days of a week, several times as many distinct customers "
        "as the typical day of the employees who read the same mix of data (their team as the "
        "events show it): slow-and-low insider, bulk lookups inside a normal session."
    )
    severity = "warning"
    attack = ("T1078", "T1213")  # Valid Accounts; Data from Information Repositories
    status = "experimental"
    entity_kinds = ("actor",)
    wants = frozenset({"access"})
    principal_types = ("employee",)
    triage = (
        "Check: the evidence's team (how many peers, their typical day) and the employee's days "
        "over it; the employee's tickets or cases on those days; whether the employee changed "
        "role (a new duty reading the same data at volume: a team lead, a back-office batch "
        "done by hand) or is covering for absent colleagues; whether the customers read share "
        "anything (a region, a segment, a list). False positives: a member who does a heavier "
        "part of the team's work every day (their team as the events show it is everyone reading "
        "the same mix); a campaign or backlog assigned to one person for a week. "
        "Respond: ask the employee's manager for the work behind the volume; if there is none, "
        "suspend the employee's access and review the customers read since the first day over."
    )

    def __init__(self, tz_offset_hours: float | None = None, day_x: float = 4.0,
                 day_floor: float = 30.0, min_days: int = 3, span_days: int = 7,
                 high_x: float = 2.0, min_peers: int = 4, same_team: float = 0.8, mix_days: float = 14.0,
                 hist_days: int = 9, active_days: int = 10, quiet_days: int = 30,
                 max_teams: int = 200, idle_days: float = 45.0) -> None:
        self.fixed_off = None if tz_offset_hours is None else tz_offset_hours * 3600.0
        self.off = DEFAULT_OFFSET if self.fixed_off is None else self.fixed_off
        self.day_x = day_x
        self.day_floor = day_floor
        self.min_days = min_days
        self.high_x = high_x
        self.span = max(1, min(31, int(span_days)))
        self.span_mask = (1 << self.span) - 1
        self.min_peers = min_peers
        self.same_team = same_team
        self.keep = 1.0 - 1.0 / max(1.0, mix_days)
        self.hist_days = max(1, int(hist_days))
        self.active_days = active_days
        self.quiet_days = quiet_days
        self.max_teams = max_teams
        self.idle = idle_days * DAY
        self._members: dict[str, _Member] = {}
        self._classes: dict[str, int] = {}  # resource class -> index (< MAX_CLASSES)
        self._names: list[str] = []
        self._closed = -1  # local days up to this one are judged
        self._next = -math.inf  # the start of the local day after the last one seen
        self._teams = 0  # teams at the last midnight (for the warm-up and the entity page)

    # --- hooks ---------------------------------------------------------------------------
    def on_access(self, e: Event, ctx: Context) -> list[Finding]:
        if e.actor_type != "employee":
            return []
        ts = e.ts
        off = self.fixed_off
        self.off = off if off is not None else ctx.local.offset(ts)
        if ts >= self._next:
            self._close_days(ts)
        pid: str = e.actor_id  # type: ignore[assignment]  # a request has an actor_id
        m = self._members.get(pid)
        if m is None:
            m = self._members[pid] = _Member(first=ts)
        day = int((ts + self.off) // DAY)
        if day != m.day:
            if day < m.day:
                return []  # a late read of a day already moved past
            self._advance(m, day)
        if ts > m.last:
            m.last = ts
        c = self._class(e.resource)  # type: ignore[arg-type]  # a request has a resource
        if c >= 0:
            mix = m.mix
            if len(mix) < 4 * (c + 1):
                mix.extend(bytes(4 * (c + 1) - len(mix)))
            v = memoryview(mix).cast("f")
            v[c] += 1.0
            v.release()
        h = ctx.hash_one(e.subject_id) & _MASK  # type: ignore[arg-type]  # a request has one
        i, bit = h >> 3, 1 << (h & 7)
        seen = m.seen
        if seen[i] & bit:
            return []  # a customer already read today
        seen[i] |= bit
        m.nset += 1
        if m.over & 1 or m.limit == math.inf:
            return []  # today is over already, or no team known
        n = _count(m.nset)
        if n < m.limit:
            return []
        m.over |= 1
        k = (m.over & self.span_mask).bit_count()
        if k < self.min_days or day - m.sent_day < self.quiet_days:
            return []
        m.sent_day = day
        return [self._finding(m, pid, n, k, e, ctx)]

    def _class(self, res: str) -> int:
        c = self._classes.get(res)
        if c is None:
            if len(self._names) >= MAX_CLASSES:
                return -1
            c = self._classes[res] = len(self._names)
            self._names.append(res)
        return c

    def _advance(self, m: _Member, day: int) -> None:
        """A new local day for the member: today's customers start again, the mix decays, the
        over days shift (a completed day was judged at its midnight)."""
        if m.day >= 0:
            gap = day - m.day
            m.over = (m.over << gap) & self.span_mask if gap < 64 else 0
            keep = self.keep ** gap
            v = memoryview(m.mix).cast("f")
            for j in range(len(v)):
                v[j] *= keep
            v.release()
            if m.nset:
                m.seen = bytearray(_BITS // 8)
                m.nset = 0
        m.day = day

    # --- the verdict ---------------------------------------------------------------------
    def _finding(self, m: _Member, pid: str, n: float, k: int, e: Event, ctx: Context
                 ) -> Finding:
        names = ctx.victims()
        label = names("customer", e.subject_id)  # type: ignore[arg-type]  # a request has one
        ratio = n / m.ref if m.ref > 0 else math.inf
        days = [iso((m.day - i) * DAY)[:10] for i in range(self.span - 1, -1, -1)
                if m.over >> i & 1]
        summary = (f"Employee {pid} read {n:.0f} distinct customers today, {ratio:.1f}x its "
                   f"team's typical day of {m.ref:.0f} ({m.peers} peers who read the same mix "
                   f"of data), and was over {self.day_x:g}x on {k} of its last {self.span} "
                   f"local days.")
        top = self._top_classes(m)
        evidence = [
            ev("distinct_customers_local_day", round(n), f"warning at {m.limit:.0f} (team's "
               f"typical day {m.ref:.1f} x {self.day_x:g}, its busiest other member's "
               f"{m.high:.1f} x {self.high_x:g}, at least {self.day_floor:g})",
               f"local day {iso(m.day * DAY)[:10]}; linear-counting estimate"),
            ev("days_over", k, f"warning at {self.min_days} of the last {self.span} local days",
               "over on " + ", ".join(days)),
            ev("team", m.peers, f"at least {self.min_peers} other members",
               f"employees whose mix of resource classes has a cosine of {self.same_team:g}+ "
               f"with this one's; the employee's mix: {top}"),
            ev("own_typical_day", round(m.typical, 1), f"team's typical day {m.ref:.1f}",
               f"the employee's median day over its last {self.hist_days} of {m.days} "
               f"completed active days since "
               f"{iso(m.first + self.off)[:10]} (local dates): no baseline for an insider "
               "from the first days"),
            ev("victims", f"{label} and {max(0, round(n) - 1)} more today", "salted digest",
               "the customer read at the verdict"),
        ]
        score = min(1.0, 0.5 + 0.1 * (n / m.limit if m.limit > 0 else 1.0))
        return Finding(self.id, "actor", pid, "warning", score, summary, evidence,
                       [e.event_id], e.ts, names.extra())

    def _top_classes(self, m: _Member) -> str:
        v = memoryview(m.mix).cast("f")
        vals = [(float(x), j) for j, x in enumerate(v)]
        v.release()
        tot = sum(x for x, _ in vals) or 1.0
        vals.sort(reverse=True)
        return ", ".join(f"{self._names[j]} {100 * x / tot:.0f}%" for x, j in vals[:4] if x > 0)

    # --- teams ---------------------------------------------------------------------------
    def _close_days(self, ts: float) -> None:
        """At a local midnight (the first read past it): every member's completed day is
        folded into its typical day, the teams are rebuilt from the mixes, each member's
        reference (the median of the other members' typical days) and limit are set, and the
        completed day is judged against it."""
        de = int((ts + self.off) // DAY)
        self._next = (de + 1) * DAY - self.off
        if de - 1 <= self._closed:
            return
        first = self._closed < 0
        self._closed = de - 1
        if first:
            return
        done = de - 1
        active: list[tuple[str, _Member, list[float]]] = []
        keep = self.hist_days
        for pid, m in self._members.items():
            if m.day == done and m.nset:  # its completed day: into its typical day
                hist = m.hist
                hist += min(65535, round(_count(m.nset))).to_bytes(2, "little")
                if len(hist) > 2 * keep:
                    del hist[:2]
                m.typical = _median(sorted(memoryview(hist).cast("H").tolist()))
                m.days += 1
            if m.days == 0 or done - m.day >= self.active_days:
                m.limit = math.inf
                continue
            v = memoryview(m.mix).cast("f")
            vec = [float(x) for x in v]
            v.release()
            norm = math.sqrt(sum(x * x for x in vec))
            if norm <= 0:
                m.limit = math.inf
                continue
            active.append((pid, m, [x / norm for x in vec]))
        active.sort(key=_busiest, reverse=True)
        teams: list[tuple[list[float], list[float], list[_Member]]] = []  # (sum, [norm], ...)
        for _pid, m, vec in active:
            best, best_cos = None, self.same_team
            for t in teams:
                cen, cn = t[0], t[1][0]
                cos = sum(x * y for x, y in zip(vec, cen, strict=False)) / cn if cn > 0 else 0.0
                if cos >= best_cos:
                    best, best_cos = t, cos
            if best is None:
                if len(teams) < self.max_teams:  # beyond: alone (quiet), bounded midnight
                    teams.append((list(vec), [1.0], [m]))
                else:
                    m.limit = math.inf
                continue
            cen = best[0]
            if len(cen) < len(vec):
                cen.extend([0.0] * (len(vec) - len(cen)))
            for j, x in enumerate(vec):
                cen[j] += x
            best[1][0] = math.sqrt(sum(y * y for y in cen))
            best[2].append(m)
        self._teams = len(teams)
        quiet = self.quiet_days
        for _cen, _cn, ms in teams:
            vals = sorted(x.typical for x in ms if done - x.sent_day >= quiet)
            for m in ms:
                others = list(vals)
                if done - m.sent_day >= quiet:
                    others.remove(m.typical)
                m.peers = len(others)
                if m.peers < self.min_peers:
                    m.limit = math.inf
                    m.ref = _median(others) if others else 0.0
                    continue
                m.ref = _median(others)
                m.high = others[-1]
                m.limit = max(self.day_floor, self.day_x * m.ref, self.high_x * m.high)
                if m.day == done and m.nset and _count(m.nset) >= m.limit:
                    m.over |= 1  # the completed day, judged against its team

    # --- housekeeping --------------------------------------------------------------------
    def expire(self, now: float) -> None:
        idle = self.idle
        for pid in [p for p, m in self._members.items() if now - m.last > idle]:
            del self._members[pid]

    def shed(self, cap: int) -> int:
        return evict(self._members, cap, _last, _flagged)

    def describe(self, kind: str, ident: str) -> list[dict[str, Any]]:
        """The employee's day against its team, for the entity page."""
        m = self._members.get(ident) if kind == "actor" else None
        if m is None:
            return []
        return [{"detector": self.id, "feature": "team_day",
                 "distinct_customers_today": round(_count(m.nset)),
                 "typical_day": round(m.typical, 1), "team_typical_day": round(m.ref, 1),
                 "team_peers": m.peers,
                 "limit": None if m.limit == math.inf else round(m.limit, 1),
                 "days_over": (m.over & self.span_mask).bit_count(),
                 "mix": self._top_classes(m)}]

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a checkpoint from before an attribute was added: the class default
        self.__dict__.update(TeamVolume().__dict__)
        self.__dict__.update(state)

    def tracked(self) -> dict[str, int]:
        return {"actor": len(self._members)}

    def warmup(self) -> float:
        return 1.0 if self._teams else 0.0


def _busiest(t: tuple[str, _Member, list[float]]) -> float:
    return t[1].typical


def _median(vals: list[float]) -> float:
    n = len(vals)
    if n == 0:
        return 0.0
    h = n // 2
    return vals[h] if n % 2 else 0.5 * (vals[h - 1] + vals[h])


DETECTOR = TeamVolume
