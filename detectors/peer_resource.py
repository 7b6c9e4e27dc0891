"""peer_resource — an employee who, day after day, reads a kind of customer data their peers seldom read.

The slow insider of issue 14 item 4: a support agent or back-office employee who looks up a few
particular customers' most sensitive data (location, call records, payment details of a
celebrity, an ex-partner, people they were paid to track), a few a day, inside their normal
volume, from their own machine and session, for weeks. No count of requests or customers moves
(``bulk_lookup``'s staff thresholds follow the person's own steady volume); the contract has no
"sensitive" flag. What moves is the *mix*: the resource classes (``resource``) a peer group
seldom reads, read by one member far more than by the others over weeks, or the same customers'
rarely-read data read again on day after day.

The peer group. The contract carries no role or team, so the group is what the events say, as
in ``bulk_lookup``: the principal type (employees only) and the network class the employee works
from (office egress, VPN on private addresses, ...). Each group learns, over about
``window_days`` (reads decayed by 1 - 1/``window_days`` a local day), the share of its reads
that each class makes; a class under ``rare_share`` (1 in 20) of the group's reads is *rare* for
the group: a class that the whole group reads as part of the job is never rare, and none of this
detector's state is kept for it.

Per employee (< 1 KiB: ~0.8 KiB with a full table): a decayed count of its reads, a decayed
count of its distinct customer-days of each rare class (float32s in a ``bytearray``), and a
table of the last ``table_max`` (40) customers whose rare data it read, packed in a
``bytearray``: each a 32-bit salted victim digest, the class, and a bitmap of the local days (of
the last ``window_days``) it was read on; when it is full, the customer read on the fewest days,
the oldest of those, makes room. At each local midnight (the engine's local time,
``EngineConfig.timezone``, +9 h until "auto" decides; ``tz_offset_hours`` fixes an offset) every member with ``own_days`` (5) active days or more and not flagged within the
window is compared with its group: per rare class, its *repeat days* (over its customers of that
class, the days each was read on beyond its second) and, for members with ``min_reads`` (200)
decayed reads, its *share* (customer-days of the class / reads). Each group keeps, per class,
its largest ``_TOP`` (32) values of the day with the member they are of, so the peers' 99th
percentile is taken over the *others*: an employee never raises their own reference (in a group
of under 100 it is the largest other member's value). Exact values, not a sketch: a sketch of
member-days would learn the insider's own rising share as the peers' high. State per group:
a few floats per class and ``_TOP`` pairs per rare class.

Verdicts, at a rare read that adds a customer-day (a customer's class read again the same day
adds nothing):

- *coverage*: the employee's share of the class reaches ``share_x`` (2) x the peers' 99th
  percentile of shares (at least ``share_floor``, one read in 1,000), over at least
  ``min_customer_days`` (20) customer-days, and the Poisson probability of that many
  customer-days at the peers' rate is under ``share_p`` (1e-4): a member reading a seldom-read
  class at twice the rate of the most curious of their peers, relative to their own volume
  (a heavy but steady agent, whose reads of every class grow together, is not out of line),
  and by more than chance on a small count. When the group has ``min_share_peers`` (3) or
  fewer other members with ``min_reads`` reads, the shares of the staff of every group are
  the reference (wider and more varied, so its high is higher);
- *re-reads*: the repeat days of the class reach ``min_repeat_days`` (6) and ``repeat_x`` (2)
  x the peers' 99th percentile: a ticket is a day's work, and a customer who calls back about
  it is read on a second day (no repeat day) or rarely a third (one: over 30 days of red team
  B's traffic no agent read any customer's rare class on more than three days); the same
  customers' location read on day after day (one person on eight days, three on four days
  each) is tracking.

Either warns (never critical: the reads are within the person's access rights; a human
decides), once per employee and class within ``window_days``. Quiet by construction: new hires
(fewer than ``own_days`` active local days: no own history), a group with fewer than
``min_peers`` (8) members of ``own_days`` days compared, or compared on fewer than
``min_peer_closes`` (3) local midnights (a tiny team has no peers; the first days of the watch
none known), classes every peer reads often (not rare), a class that is ``job_share`` (a tenth)
or more of the employee's own reads (their job: a specialist working from the generalists'
network, such as a billing clerk whose every read is an invoice; the attack hides a few reads
inside a normal day's work, 1-5% of it), and one-off reads (a day's burst is neither eight
repeat days nor, over 30 days, twice the peers' share).

Partitions. Keyed by actor (``bulk_lookup``'s staff peers have the same limit): with several
partitions each engine sees only its own employees, so a group is the members hashed to that
partition. With few partitions a group is a sample of the team and its percentiles are as
good (a smaller sample: the largest other member is a lower reference, but the Poisson tail
still asks for a count no chance explains); with many, groups shrink under ``min_peers`` and
the detector stays quiet rather than compare an employee with two or three others. The
verdict is the engine's own: nothing is relayed between partitions.

Victims: the customers read are named by salted digest (``customer#...``): the one read at the
verdict (revealed where configured) and the table's digests of the class; counted otherwise.

>>> from detectors.engine import Engine, EngineConfig
>>> eng = Engine(EngineConfig(detectors=("peer_resource",)))
>>> t0, day, out, n = 1750726800, 86400, [], 0     # 2025-06-24 01:00 UTC = 10:00 in Seoul
>>> def read(who, subj, res, ts):
...     global n; n += 1
...     return eng.process_obj({"event_id": f"r{n}", "ts": ts, "actor_id": who,
...         "actor_type": "employee", "subject_id": subj, "resource": res,
...         "src_ip": "10.20.1.5"})[0]
>>> for d in range(16):                            # twelve agents, 40 reads a day each
...     for k in range(40):
...         for a in range(12):
...             res = "location" if k == a and (a + d) % 4 == 0 else "profile"
...             out += read(f"agent-{a}", f"c-{d}-{a}-{k}", res, t0 + d * day + k * 600 + a)
...     out += read("agent-0", "c-star", "location", t0 + d * day + 30000)  # the same star
>>> [(a["entity"]["id"], a["severity"]) for a in out]
[('agent-0', 'warning')]
>>> print(out[0]["summary"])  # doctest: +ELLIPSIS
Employee agent-0 read location data (a class its peers seldom read) of the same customers on day after day: 1 customer(s) read on three days or more since ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._cap import evict
from .base import Detector, Finding, ev, iso
from .context import DEFAULT_OFFSET, legacy_offset

if TYPE_CHECKING:
    from .engine import Context
    from .events import Event

DAY = 86400.0
#: resource classes one engine tells apart (the contract's resource is free text; a producer
#: that sends a new class per event must not grow the per-employee arrays): the rest untracked
MAX_CLASSES = 32
#: bytes of one table entry: victim digest, class, day bitmap (three little-endian uint32)
_ENTRY = 12


@dataclass(slots=True)
class _Staff:
    group: str = ""
    first: float = 0.0
    last: float = 0.0
    day: int = -1  # the local day of its last read
    days: int = 0  # active local days seen
    reads: float = 0.0  # decayed reads (every class)
    cdays: bytearray = field(default_factory=bytearray)  # float32 per class: customer-days
    table: bytearray = field(default_factory=bytearray)  # _ENTRY bytes per customer
    sent: int = 0  # bitmask of classes warned about within the window
    sent_day: int = -1


@dataclass(slots=True)
class _Group:
    reads: float = 0.0  # decayed reads of the group
    by_class: list[float] = field(default_factory=list)  # decayed reads per class
    members: int = 0  # members with ``own_days`` days at the last local midnight
    judged: int = 0  # members whose values the last local midnight compared
    closes: int = 0  # local midnights with ``min_peers`` members compared
    # per rare class, the largest members' values at the last local midnight, largest first,
    # with the member they are of (so a member is compared with the others, not itself)
    top_rep: dict[int, list[tuple[float, str]]] = field(default_factory=dict)
    top_share: dict[int, list[tuple[float, str]]] = field(default_factory=dict)
    n_share: int = 0  # members with ``min_reads`` reads in the share lists


def _last(s: _Staff) -> float:
    return s.last


def _flagged(s: _Staff) -> bool:
    return s.sent != 0


class PeerResource(Detector):
    id = "peer_resource"
    title = "Employee reads a class of customer data their peers seldom read"
    description = (
        "An employee's reads of a resource class their peer group seldom reads are, over weeks, "
        "far above their peers' relative to their own volume, or return to the same customers "
        "on day after day (slow-and-low insider: stalking, selling lookups)."
    )
    severity = "warning"
    attack = ("T1078", "T1213")  # Valid Accounts; Data from Information Repositories
    status = "experimental"
    entity_kinds = ("actor",)
    wants = frozenset({"access"})
    principal_types = ("employee",)
    triage = (
        "Check: the customers named by digest (reveal them where configured) against the "
        "employee's tickets or cases on those days; whether the employee moved to a team that "
        "reads this class as its job (their peer group is their network class, not their team: "
        "a specialist among generalists looks like this); whether the same customers were read "
        "by anyone else. False positives: a long-running case (fraud, a legal request) that needs "
        "one customer's records every day; a new duty. "
        "Respond: ask the employee's manager for the case behind the reads; if there is none, "
        "suspend access to the class and review every read of the named customers."
    )

    def __init__(self, tz_offset_hours: float | None = None, window_days: int = 30,
                 rare_share: float = 0.05, own_days: int = 5, min_peers: int = 8,
                 min_peer_closes: int = 3, min_group_reads: float = 2000.0,
                 min_reads: float = 200.0,
                 share_x: float = 2.0, min_customer_days: int = 20, share_p: float = 1e-4,
                 share_floor: float = 0.001, min_share_peers: int = 3, job_share: float = 0.1,
                 repeat_x: float = 2.0, min_repeat_days: int = 6, table_max: int = 40,
                 idle_days: float = 45.0) -> None:
        #: a fixed offset (seconds) when ``tz_offset_hours`` is given, else None: the
        #: deployment's local time (``ctx.local``); ``off``: the offset at the last read
        self.fixed_off = None if tz_offset_hours is None else tz_offset_hours * 3600.0
        self.off = DEFAULT_OFFSET if self.fixed_off is None else self.fixed_off
        self.window = max(1, min(30, int(window_days)))  # days in a 32-bit bitmap
        self.keep = 1.0 - 1.0 / self.window  # a local day's decay of reads
        self.full = (1 << self.window) - 1
        self.rare_share = rare_share
        self.own_days = own_days
        self.min_peers = min_peers
        self.min_peer_closes = min_peer_closes
        self.min_reads = min_reads
        self.min_group_reads = min_group_reads
        self.share_x = share_x
        self.min_customer_days = min_customer_days
        self.share_p = share_p
        self.share_floor = share_floor
        self.min_share_peers = min_share_peers
        self.job_share = job_share
        self.repeat_x = repeat_x
        self.min_repeat_days = min_repeat_days
        self.table_max = table_max
        self.idle = idle_days * DAY
        self._staff: dict[str, _Staff] = {}
        self._groups: dict[str, _Group] = {}
        # every member of staff of every group: the shares' reference when a group has too
        # few members with ``min_reads`` reads (wider, so its percentile is higher)
        self._all = _Group()
        self._classes: dict[str, int] = {}  # resource class -> index (< MAX_CLASSES)
        self._names: list[str] = []
        self._closed = -1  # local days up to this one are learnt by the groups
        self._next = -math.inf  # the start of the local day after the last one seen

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
        st = self._staff.get(pid)
        net = e.net
        group = net.net_class if net is not None else "isp"  # the group: employee/<class>
        if st is None:
            st = self._staff[pid] = _Staff(group=group, first=ts)
        day = int((ts + self.off) // DAY)
        if day != st.day:
            if day < st.day:
                return []  # a late read of a day already moved past
            self._advance(st, day)
            st.group = group  # the network of the day's first read
        if ts > st.last:
            st.last = ts
        st.reads += 1.0
        g = self._groups.get(st.group)
        if g is None:
            g = self._groups[st.group] = _Group()
        c = self._class(e.resource)  # type: ignore[arg-type]  # a request has a resource
        if c < 0:
            return []
        byc = g.by_class
        if c >= len(byc):
            byc.extend([0.0] * (c + 1 - len(byc)))
        byc[c] += 1.0
        g.reads += 1.0
        if g.reads < self.min_group_reads or byc[c] >= self.rare_share * g.reads:
            return []  # the group's mix is not known yet, or the class is not rare
        return self._rare(st, g, c, pid, e, ctx)

    # --- the rare read -------------------------------------------------------------------
    def _class(self, res: str) -> int:
        c = self._classes.get(res)
        if c is None:
            if len(self._names) >= MAX_CLASSES:
                return -1
            c = self._classes[res] = len(self._names)
            self._names.append(res)
        return c

    def _rare(self, st: _Staff, g: _Group, c: int, pid: str, e: Event, ctx: Context
              ) -> list[Finding]:
        label = ctx.victim("customer", e.subject_id)  # type: ignore[arg-type]  # a request has one
        dig = int(label[-8:], 16)
        tab = memoryview(st.table).cast("I")
        n = len(tab) // 3
        found = -1
        for i in range(n):
            if tab[3 * i] == dig and tab[3 * i + 1] == c:
                found = i
                break
        if found >= 0:
            m = tab[3 * found + 2]
            if not m & 1:
                tab[3 * found + 2] = m | 1
            tab.release()
            if m & 1:
                return []  # read today already: one customer-day
        else:
            tab.release()
            if n >= self.table_max:
                self._drop_one(st)
            st.table += (dig | (c << 32) | (1 << 64)).to_bytes(_ENTRY, "little")
        cd = st.cdays
        if len(cd) < 4 * (c + 1):
            cd.extend(bytes(4 * (c + 1) - len(cd)))
        cdv = memoryview(cd).cast("f")
        cdv[c] += 1.0
        cdv.release()
        return self._judge(st, g, c, pid, e, ctx, label)

    def _drop_one(self, st: _Staff) -> None:
        """Make room: the entry read on the fewest days, the oldest of those (a customer read
        again on another day is what the table is for)."""
        tab = memoryview(st.table).cast("I")
        best, key = 0, (99, 0)
        for i in range(len(tab) // 3):
            m = tab[3 * i + 2]
            k = (m.bit_count(), -m.bit_length())
            if k < key:
                best, key = i, k
        tab.release()
        del st.table[best * _ENTRY:(best + 1) * _ENTRY]

    def _advance(self, st: _Staff, day: int) -> None:
        """A new local day for the employee: the bitmaps shift, the counts decay."""
        if st.day >= 0:
            gap = day - st.day
            keep = self.keep ** gap
            st.reads *= keep
            cdv = memoryview(st.cdays).cast("f")
            for i in range(len(cdv)):
                cdv[i] *= keep
            cdv.release()
            out = bytearray()
            tab = memoryview(st.table).cast("I")
            for i in range(len(tab) // 3):
                m = (tab[3 * i + 2] << gap) & self.full
                if m:
                    out += (tab[3 * i] | (tab[3 * i + 1] << 32) | (m << 64)).to_bytes(
                        _ENTRY, "little")
            tab.release()
            st.table = out
        if st.sent and day - st.sent_day >= self.window:
            st.sent = 0
        st.day = day
        st.days += 1

    def _repeats(self, st: _Staff, c: int) -> tuple[int, int]:
        """(repeat days: the days beyond each customer's second, customers read on three
        days or more) of class ``c``."""
        rep = cust = 0
        tab = memoryview(st.table).cast("I")
        for i in range(len(tab) // 3):
            if tab[3 * i + 1] == c:
                k = tab[3 * i + 2].bit_count()
                if k > 2:
                    rep += k - 2
                    cust += 1
        tab.release()
        return rep, cust

    def _share(self, st: _Staff, c: int) -> float:
        cd = st.cdays
        if len(cd) < 4 * (c + 1) or st.reads <= 0:
            return 0.0
        v = memoryview(cd).cast("f")
        x = float(v[c])
        v.release()
        return x

    # --- verdicts ------------------------------------------------------------------------
    def _judge(self, st: _Staff, g: _Group, c: int, pid: str, e: Event, ctx: Context,
               label: str) -> list[Finding]:
        if st.sent >> c & 1 or st.days < self.own_days or g.judged < self.min_peers or \
                g.closes < self.min_peer_closes or c not in g.top_rep:
            return []  # warned already, a new hire, a tiny team or peers not learnt yet
        cdays = self._share(st, c)
        reads = st.reads
        if cdays >= self.job_share * reads:
            return []  # the class is this person's job (a specialist among generalists)
        rep, cust = self._repeats(st, c)
        rq = _others(g.top_rep[c], g.judged, pid)
        rep_lim = max(float(self.min_repeat_days), self.repeat_x * rq)
        share = cdays / reads if reads > 0 else 0.0
        sg = g if g.n_share > self.min_share_peers else self._all
        peers_ok = sg.n_share > self.min_share_peers and c in sg.top_share
        sq = _others(sg.top_share[c], sg.n_share, pid) if peers_ok else math.inf
        ref = sq if sq > self.share_floor else self.share_floor
        share_lim = self.share_x * ref
        by_rep = rep >= rep_lim
        by_share = cdays >= self.min_customer_days and reads >= self.min_reads and \
            share >= share_lim and _poisson_tail(int(cdays), ref * reads) < self.share_p
        if not (by_rep or by_share):
            return []
        st.sent |= 1 << c
        st.sent_day = st.day
        pooled = g.by_class[c] / g.reads
        wide = f"{sg.n_share} staff of every group" if sg is self._all else ""
        return [self._finding(st, g, c, pid, e, ctx, label, rep, cust, rq, rep_lim, cdays,
                              share, sq, pooled, share_lim, by_rep, wide)]

    def _finding(self, st: _Staff, g: _Group, c: int, pid: str, e: Event, ctx: Context,
                 label: str, rep: int, cust: int, rq: float, rep_lim: float, cdays: float,
                 share: float, sq: float, pooled: float, share_lim: float, by_rep: bool,
                 wide: str) -> Finding:
        names = ctx.victims()
        names("customer", e.subject_id)  # type: ignore[arg-type]  # a request has a subject
        res = self._names[c]
        tab = memoryview(st.table).cast("I")
        others: list[str] = []
        days_hit = 0
        for i in range(len(tab) // 3):
            if tab[3 * i + 1] == c:
                m = tab[3 * i + 2]
                days_hit |= m
                d = f"customer#{tab[3 * i]:08x}"
                if d != label and m.bit_count() > (2 if by_rep else 0) and len(others) < 10:
                    others.append(d)
        tab.release()
        span = days_hit.bit_count()
        # local dates (``st.day`` counts local days): the day index times a day, as UTC
        first_day = iso((st.day - (days_hit.bit_length() - 1)) * DAY)[:10] \
            if days_hit else iso(e.ts + self.off)[:10]
        peers = f"{g.members} peers (employee/{st.group})"
        if by_rep:
            summary = (f"Employee {pid} read {res} data (a class its peers seldom read) of the "
                       f"same customers on day after day: {cust} customer(s) read on three "
                       f"days or more since {first_day}, {rep} days beyond each one's second, "
                       f"against a peers' 99th percentile of {rq:.0f} ({peers}).")
        else:
            summary = (f"Employee {pid} read {res} data (a class its peers seldom read) of "
                       f"{cdays:.0f} customer-days over about {self.window} days, "
                       f"{100 * share:.1f}% of its reads against a peers' 99th percentile of "
                       f"{100 * sq:.1f}% ({wide or peers}).")
        evidence = [
            ev("resource_class", res, f"rare: {100 * pooled:.2f}% of the group's reads "
               f"(< {100 * self.rare_share:g}%)", f"peer group employee/{st.group}, {g.members} members "
               f"with {self.own_days}+ days"),
            ev("repeat_days", rep, f"warning at {rep_lim:.0f} (peers p99 {rq:.1f} x "
               f"{self.repeat_x:g}, at least {self.min_repeat_days})",
               f"days beyond each customer's second; {cust} customer(s) read on 3+ local "
               f"days of the last {self.window}"),
            ev("class_share", round(share, 4),
               (f"warning at {share_lim:.4f} (peers p99 {sq:.4f}, at least "
                f"{self.share_floor:g}, x {self.share_x:g}) with "
                f"{self.min_customer_days}+ customer-days and a Poisson tail under "
                f"{self.share_p:g} at the peers' rate" if math.isfinite(sq) else
                f"fewer than {self.min_share_peers} peers with {self.min_reads:g}+ reads"),
               f"{cdays:.0f} customer-days of {st.reads:.0f} reads (decayed over "
               f"{self.window} days)"),
            ev("days", span, f"local days with {res} reads in the table",
               f"since {first_day}; employee active on {st.days} days since "
               f"{iso(st.first + self.off)[:10]} (local dates)"),
            ev("victims", f"{names('customer', e.subject_id)} and {len(others)} more"  # type: ignore[arg-type]  # as above
               + (f": {', '.join(others)}" if others else ""), "salted digests",
               "customers of this class in the table" + (" read on 3+ days" if by_rep else "")),
        ]
        lim = rep_lim if by_rep else share_lim
        val = rep if by_rep else share
        score = min(1.0, 0.5 + 0.1 * (val / lim if lim > 0 else 1.0))
        return Finding(self.id, "actor", pid, "warning", score, summary, evidence,
                       [e.event_id], e.ts, names.extra())

    # --- peers ---------------------------------------------------------------------------
    def _close_days(self, ts: float) -> None:
        """At a local midnight (the first read past it): the values of every member with
        ``own_days`` days that is not flagged within the window (its repeat days and its share
        of each of its group's rare classes) are compared, and each group keeps the largest
        ones (``_TOP``, with their member) for the day; the groups' reads decay one day."""
        de = int((ts + self.off) // DAY)
        self._next = (de + 1) * DAY - self.off
        if de - 1 <= self._closed:
            return
        first = self._closed < 0
        self._closed = de - 1
        if first:
            return
        groups = self._groups
        rare: dict[str, list[int]] = {}
        for name, g in groups.items():
            g.members = g.judged = g.n_share = 0
            g.top_rep, g.top_share = {}, {}
            if g.reads >= self.min_group_reads:
                rare[name] = [c for c, n in enumerate(g.by_class)
                              if n < self.rare_share * g.reads]
        wide = self._all
        wide.n_share, wide.top_share = 0, {}
        every = sorted({c for cs in rare.values() for c in cs})
        for pid, st in self._staff.items():
            mg = groups.get(st.group)
            if mg is None or st.days < self.own_days:
                continue
            g = mg
            g.members += 1
            classes = rare.get(st.group)
            if st.sent or not classes:
                continue  # flagged within the window: not a peer's normal
            g.judged += 1
            reps: dict[int, int] = {}
            tab = memoryview(st.table).cast("I")
            for i in range(len(tab) // 3):
                k = tab[3 * i + 2].bit_count()
                if k > 2:
                    cc = tab[3 * i + 1]
                    reps[cc] = reps.get(cc, 0) + k - 2
            tab.release()
            for c in classes:
                _keep_top(g.top_rep, c, float(reps.get(c, 0)), pid)
            if st.reads < self.min_reads:
                continue
            g.n_share += 1
            wide.n_share += 1
            for c in classes:
                _keep_top(g.top_share, c, self._share(st, c) / st.reads, pid)
            for c in every:
                _keep_top(wide.top_share, c, self._share(st, c) / st.reads, pid)
        for g in groups.values():
            if g.judged >= self.min_peers:
                g.closes += 1
            g.reads *= self.keep
            g.by_class = [x * self.keep for x in g.by_class]

    # --- housekeeping --------------------------------------------------------------------
    def expire(self, now: float) -> None:
        idle = self.idle
        for pid in [p for p, st in self._staff.items() if now - st.last > idle]:
            del self._staff[pid]

    def shed(self, cap: int) -> int:
        return evict(self._staff, cap, _last, _flagged)

    def describe(self, kind: str, ident: str) -> list[dict[str, Any]]:
        """The employee's rare classes against its peers, for the entity page."""
        st = self._staff.get(ident) if kind == "actor" else None
        if st is None:
            return []
        g = self._groups.get(st.group)
        out: list[dict[str, Any]] = []
        for c, res in enumerate(self._names):
            if g is None or c not in g.top_rep:
                continue
            rep, cust = self._repeats(st, c)
            out.append({"detector": self.id, "feature": "rare_class", "resource": res,
                        "repeat_days": rep, "customers_repeated": cust,
                        "customer_days": round(self._share(st, c), 1),
                        "reads": round(st.reads, 1), "peer_group": f"employee/{st.group}",
                        "peers_p99_repeat_days": _others(g.top_rep[c], g.judged, ident),
                        "peers": g.judged})
        return out

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "fixed_off" not in state:  # a checkpoint from before the deployment's local time
            self.fixed_off = legacy_offset(state.get("off"))

    def tracked(self) -> dict[str, int]:
        return {"actor": len(self._staff)}

    def warmup(self) -> float:
        best = max((g.closes for g in self._groups.values()), default=0)
        return min(1.0, best / self.min_peer_closes)


#: the largest members' values a group keeps per class: the 99th percentile of the others is
#: exact for groups of up to ~3,000 members (and the 32nd largest beyond)
_TOP = 32


def _keep_top(tops: dict[int, list[tuple[float, str]]], c: int, v: float, pid: str) -> None:
    lst = tops.get(c)
    if lst is None:
        lst = tops[c] = []
    if len(lst) >= _TOP and v <= lst[-1][0]:
        return
    lst.append((v, pid))
    lst.sort(key=_first, reverse=True)
    if len(lst) > _TOP:
        lst.pop()


def _first(t: tuple[float, str]) -> float:
    return t[0]


def _poisson_tail(k: int, lam: float) -> float:
    """P(X >= k) for X ~ Poisson(``lam``), summed from k up (exact for the small tails asked)."""
    if k <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    term = math.exp(k * math.log(lam) - lam - math.lgamma(k + 1))
    total, i = 0.0, k
    while term > 1e-300 and i < k + 10_000:
        total += term
        i += 1
        term *= lam / i
        if term < total * 1e-12:
            break
    return total if total < 1.0 else 1.0


def _others(top: list[tuple[float, str]], n: int, pid: str) -> float:
    """The 99th percentile of the values of ``n`` members (``top``: the largest, largest
    first) leaving out member ``pid``'s own: the employee is compared with the others."""
    others = [v for v, who in top if who != pid]
    m = n - 1 if len(others) < len(top) else n  # members left
    j = m - math.ceil(0.99 * m)  # 0: the largest of the others
    if not others:
        return 0.0
    return others[j] if j < len(others) else others[-1]


DETECTOR = PeerResource
