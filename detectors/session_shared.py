"""session_shared — one session used by turns from two places at once: home and a cloud server, or two fixed lines.

A session (the bearer token a login issued) lives on one device. When its requests come by
turns from two unrelated places within minutes, two parties hold it: the owner, still at work
or at home, and someone who copied the token (cookie or token theft: infostealer malware, an
adversary-in-the-middle phishing proxy, a leaked log). One move is not enough (a user who goes
home, or turns a VPN or a cloud desktop on, goes over and stays); the page needs the session
to go **back and forth**. Two kinds of place:

**Home and server.** Requests by turns from a residential or mobile network and from a hosting
/ cloud network (a datacenter address, not a known VPN exit or privacy relay): critical at the
second change of side, home -> server -> home or server -> home -> server, within ``window``
seconds (default 30 min) of the first.

**Two fixed lines** (an infostealer's buyer on a residential line or a residential proxy in the
owner's own country, while the owner works on). A line is an ``isp`` network; two lines are two
ASes (the IPv4 and IPv6 addresses of one line, and a carrier pool's rotating addresses, are one
AS). For staff, two subnets (/24, /48) of one AS are two lines as well (the thief's line is
often at the owner's ISP; a phone's carrier pool is left out by its user agent, below), an IPv4
and an IPv6 subnet of one AS pair up as one (dual stack). A mobile-only carrier's line
(``data/mobile_carriers.tsv``: a phone's mobile data, what it falls back to when its Wi-Fi
drops, or a laptop on the phone's hotspot) counts only with two devices (below). The session's
first line is A, any other B; the changes A -> B and B -> A within ``window`` are counted (one
move is 1; a move and back, a lunch at a café or a VPN that dropped once, is 2):

- ``warn_turns`` (3) changes, A -> B -> A -> B: both places resumed after the other, faster
  than a person carries a laptop between them. **Staff** (employees: a staff session comes
  from one place at a time, the office, the corporate VPN or their home line) warn; customers
  do not, unless from two devices (below).
- The user agent is one at each line and differs between them: **two devices**, and a session
  lives on one. Staff: critical. Customers: warning (critical when it persists).
- ``persist_turns`` (6) changes (each place came back three times): it persists. Staff:
  critical. Customers with one desktop user agent at both lines: warning (an infostealer
  runs on a desktop and its buyer may copy the browser's user agent).
- Not evidence: one phone (a phone's or tablet's user agent, for customers also none, at both
  lines) between Wi-Fi and a carrier whose AS serves broadband too (Korea Telecom, KDDI,
  SoftBank cannot be told from a home line by AS), for customers and staff alike (staff without
  a user agent warn: staff tools run on desktops); for staff, two lines that are
  both the company's egress (learnt: a subnet ``office_principals`` (3) distinct employees use
  within ``office_window`` (a day), more than a household, stays learnt ``office_hold`` (a
  week) after its last use): an office with two uplinks, the office and its VPN's exit.
  Customers' NAT pools are not learnt: a customer pages only on two devices or on a desktop
  user agent, neither of which is a phone switching networks.

impossible_travel does not see this: hosting networks are not places a person is, and two
lines in one country are no journey; and the owner and the thief each present a session that
a real login issued, so unissued_session has nothing to say either.

State per session (salted digest of the session id, never the id): which side it was last used
from, when it last switched, the last address and event on each side, its first fixed line (AS,
staff's subnets, last address and event, a 32-bit checksum of the user agent) and, once a
second line is seen, the turns between the two (~0.5 KiB); idle sessions go after ``ttl``. Per
subnet employees use, fewer than ``office_principals`` employee digests (idle subnets go after
``office_window``). Victims: the account is named (the one whose sessions to end); addresses
and the session by digest. Cost: ~1-2 µs per request on many-entity traffic
(docs/benchmarks.md).

>>> from detectors.engine import Engine, EngineConfig
>>> eng, out = Engine(EngineConfig(detectors=("session_shared",))), []
>>> for i, ip in enumerate(["183.98.1.212", "65.108.124.208", "183.98.1.212"]):  # KT, Hetzner, KT
...     out += eng.process_obj({"event_id": f"r{i}", "ts": 1750730820 + 60 * i,
...         "actor_id": "c-1", "subject_id": "c-1", "resource": "address", "src_ip": ip,
...         "session_id": "s-1"})[0]
>>> [(a["detector"], a["severity"], a["entity"]["id"]) for a in out]
[('session_shared', 'critical', 'c-1')]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zlib import crc32

from ._cap import evict
from .base import Detector, Finding, ev, iso
from .geo import mobile_carrier

if TYPE_CHECKING:
    from .context import Context
    from .events import Event

#: the two sides: a network where people are, and a datacenter's
_HOME, _SERVER = 0, 1
_SIDES = {"isp": _HOME, "hosting": _SERVER}
#: two user agents seen at one line: no device evidence
_MIXED = -1
#: user agents whose checksum ``SessionShared._ua`` remembers before it starts again
_UA_MEMO_MAX = 4096
#: words of a phone's or tablet's user agent (Android, iOS, iPadOS browsers and apps)
_HANDHELD = ("mobile", "android", "iphone", "ipad", "ipod")


@dataclass(slots=True)
class _Two:
    """A session seen at two fixed lines (``isp`` networks of two ASes, neither a mobile
    carrier's): the turns between its first line (A) and the other (B)."""

    a: int | str  # the AS (name, else number) of A: the session's first fixed line
    b: int | str  # the AS of B, the latest other line
    at_b: bool  # which of the two the newest request came from
    first: float  # event time of the first change of line counted (A -> B)
    turns: int  # changes of line since ``first`` (1: one move)
    a_ip: str
    a_event: str
    b_ip: str
    b_event: str
    ua_a: int  # crc32 of A's user agent; 0 none seen; -1 several
    ua_b: int
    a_sub: str = ""  # staff: A's subnet, IPv4 and IPv6 ("" not seen yet)
    a_sub6: str = ""
    b_sub: str = ""  # staff: B's
    b_sub6: str = ""
    a_mobile: bool = False  # A, B: a mobile-only carrier's (a phone's mobile data)
    b_mobile: bool = False
    b_nets: int = 1  # distinct other lines (a rotating proxy's exits), capped at 9
    b_reads: int = 0  # requests from the other lines since ``first``
    b_others: int = 0  # of them, reads of another customer's data (actor != subject)
    level: int = 0  # 0 nothing said, 1 warned, 2 critical


@dataclass(slots=True)
class _Session:
    side: int
    last: float  # event time of the newest request or login of the session
    switched: float | None = None  # event time of the last change of side
    home_ip: str = ""
    home_event: str = ""
    home_net: str = ""
    server_ip: str = ""
    server_event: str = ""
    server_net: str = ""
    flagged: bool = False
    # lines (the same-country residential exit): the session's first line (A) ...
    line: int | str | None = None
    line_ua: int = 0  # its user agent (crc32; -1 several)
    line_sub: str = ""  # staff: its subnet, IPv4 and IPv6 ("" not seen yet)
    line_sub6: str = ""
    line_mobile: bool = False  # a mobile-only carrier's
    two: _Two | None = None  # ... and, once a second line is seen, the turns between them


@dataclass(slots=True)
class _Egress:
    """Distinct employees seen on one subnet: is it an office's or a corporate VPN's egress?"""

    seen: dict[int, float]  # employee digest -> last time; fewer than ``office_principals``
    last: float
    until: float = 0.0  # a learnt egress until then (0: not learnt)


def _last(s: _Session) -> float:
    return s.last


def _flagged(s: _Session) -> bool:
    return s.flagged or (s.two is not None and s.two.level > 0)


def _egress_last(g: _Egress) -> float:
    return g.last


def _egress_learnt(g: _Egress) -> bool:
    return g.until > 0.0


def _merge(have: int, ua: int) -> int:
    """A line's user agent after one more request: the same, the first, or several."""
    if ua == 0 or have == ua or have == _MIXED:
        return have
    return ua if have == 0 else _MIXED


def _same(org: int | str, sub: str, sub6: str, line: int | str, net: Any, staff: bool) -> bool:
    """Whether ``net`` (of AS ``line``) is the fixed line of AS ``org`` and, for staff, subnets
    ``sub`` / ``sub6``: one AS for a customer; for staff one AS and the same subnet of the
    address's IP version when that one is known (the IPv4 and IPv6 subnets of one line pair up
    the first time each is seen)."""
    if line != org:
        return False
    if not staff:
        return True
    have = sub if net.version == 4 else sub6
    return not have or have == net.subnet


def _note_subnet(t: _Two, at_a: bool, net: Any) -> None:
    """Staff: the subnet of line A's (``at_a``) or B's newest request, by its IP version."""
    v4 = net.version == 4
    if at_a:
        if v4:
            t.a_sub = net.subnet
        else:
            t.a_sub6 = net.subnet
    elif v4:
        t.b_sub = net.subnet
    else:
        t.b_sub6 = net.subnet


def handheld(ua: str | None) -> bool | None:
    """Whether a user agent is a phone's or tablet's; None without one.

    >>> handheld("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148")
    True
    >>> handheld("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0 Safari/537.36")
    False
    """
    if not ua:
        return None
    low = ua.lower()
    return any(w in low for w in _HANDHELD)


class SessionShared(Detector):
    id = "session_shared"
    title = "Session used by turns from two places at once"
    description = (
        "One session's requests alternate within minutes between a residential or mobile "
        "network and a hosting / cloud network, or between two fixed lines of two ISPs: the "
        "owner and a copy of the token used at the same time."
    )
    severity = "critical"
    attack = ("T1539", "T1550.004")  # Steal Web Session Cookie; Use Alternate Auth: Web Cookie
    status = "experimental"
    entity_kinds = ("account",)
    wants = frozenset({"login", "access"})
    triage = (
        "Check: the two networks in the evidence (the home side, or line A, is usually the "
        "owner: their ISP or carrier, the office, their device's user agent), what the other "
        "side read (``other_line_reads``), whether other accounts' sessions are used from the "
        "same server or line (a stolen-cookie campaign). False positives: a user whose own "
        "cloud desktop or remote browser shares the session with their device (rare for a "
        "customer), a VPN provider missing from data/network_classes.tsv (its exits read as "
        "hosting: add its AS, then the flapping of its users' connections stays quiet); for "
        "two fixed lines, an office with two uplinks balanced per connection that fewer than "
        "3 employees a day use (allow-list its subnets), a phone on Wi-Fi and on a mobile "
        "carrier that data/mobile_carriers.tsv does not list, with a desktop user agent "
        "(add the carrier's AS). Respond: end the session and the account's other sessions, "
        "force a re-login with MFA, check what the other side read or changed, block the "
        "server's address; for staff, check the owner's machine for an infostealer."
    )

    def __init__(self, window: float = 1800.0, ttl: float = 7200.0,
                 principal_types: tuple[str, ...] = ("customer", "employee"),
                 memo_max: int = 200_000, warn_turns: int = 3, persist_turns: int = 6,
                 office_principals: int = 3, office_window: float = 86400.0,
                 office_hold: float = 7 * 86400.0) -> None:
        self.window = window
        self.ttl = ttl
        self.principal_types = frozenset(principal_types)
        self.memo_max = memo_max
        self.warn_turns = warn_turns
        self.persist_turns = persist_turns
        self.office_principals = office_principals
        self.office_window = office_window
        self.office_hold = office_hold
        self._sessions: dict[int, _Session] = {}
        self._memo: dict[str, int] = {}  # raw session id -> its digest; transient
        self._ua_memo: dict[str, int] = {}  # user agent -> its crc32; transient
        self._next_sweep = 0.0
        # subnet -> the employees seen there (office and corporate VPN egress learning)
        self._egress: dict[str, _Egress] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Checkpoints keep digests only: the raw-id memo is left out."""
        state = self.__dict__.copy()
        state["_memo"] = {}
        state["_ua_memo"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Checkpoints written before fixed lines restore with the defaults."""
        for k, v in (("warn_turns", 3), ("persist_turns", 6), ("office_principals", 3),
                     ("office_window", 86400.0), ("office_hold", 7 * 86400.0)):
            state.setdefault(k, v)
        state.setdefault("_egress", {})
        state.setdefault("_ua_memo", {})
        self.__dict__.update(state)

    def on_login(self, e: Event, ctx: Context) -> list[Finding]:
        if e.outcome != "success" or e.account_type not in self.principal_types:
            return []
        return self._seen(e, e.account_id, ctx)  # type: ignore[arg-type]  # a login has an account_id (decode requires it)

    def on_access(self, e: Event, ctx: Context) -> list[Finding]:
        if e.actor_type not in self.principal_types:
            return []
        return self._seen(e, e.actor_id, ctx)  # type: ignore[arg-type]  # a request has an actor_id (decode requires it)

    def _seen(self, e: Event, pid: str, ctx: Context) -> list[Finding]:
        sid, net = e.session_id, e.net
        if sid is None or net is None:
            return []
        side = _SIDES.get(net.net_class)
        if side is None:  # a VPN exit, a relay, a private address: neither side
            return []
        ts = e.ts
        employee = e.principal_type == "employee"
        if employee and side == _HOME:
            self._learn(net.subnet, ctx.hash_one(pid), ts)
        h = self._memo.get(sid)
        if h is None:
            if len(self._memo) >= self.memo_max:
                self._memo.clear()
            h = self._memo[sid] = ctx.hash_one(sid)
        s = self._sessions.get(h)
        if s is None:
            s = self._sessions[h] = _Session(side, ts)
            self._note(s, side, e, net)
            if side == _HOME:
                self._fixed(s, e, net, pid, employee, ctx)
            return []
        if ts < s.last:  # late and out of order: its side is not the session's latest
            return []
        s.last = ts
        out: list[Finding] = []
        if side == _HOME:
            f = self._fixed(s, e, net, pid, employee, ctx)
            if f is not None:
                out.append(f)
        if side == s.side:  # the usual case: one more request from the same side (speed:
            if side == _HOME:  # the network's name is kept from the turn's first request)
                s.home_ip, s.home_event = e.src_ip, e.event_id  # type: ignore[assignment]  # logins and requests have a src_ip (decode requires it)
            else:
                s.server_ip, s.server_event = e.src_ip, e.event_id  # type: ignore[assignment]  # as above
            return out
        first = s.switched
        s.switched, s.side = ts, side
        self._note(s, side, e, net)
        if first is None or ts - first > self.window or s.flagged:
            return out
        s.flagged = True
        out.append(self._finding(s, e, pid, first, ctx))
        return out

    # ---- two fixed lines -------------------------------------------------------------------
    def _fixed(self, s: _Session, e: Event, net: Any, pid: str, employee: bool,
               ctx: Context) -> Finding | None:
        """One more request of the session from an ``isp`` network: a change of fixed line?

        Two lines are two ASes (the IPv4 and IPv6 addresses of one line, and a carrier pool's
        rotating addresses, are one AS), for staff two subnets of a fixed line's AS
        (``_same``); a mobile-only carrier's line is marked (it counts with two devices only)."""
        # the AS's name, else its number: the name is the address's own (GeoIP), the number
        # may come with one event and not the next
        line: int | str | None = net.org or net.asn
        if line is None:
            return None
        t = s.two
        if t is None and line == s.line and (  # the usual case: one more request at line A
                not employee or net.subnet == (s.line_sub if net.version == 4 else s.line_sub6)):
            if s.line_ua != _MIXED:
                s.line_ua = _merge(s.line_ua, self._ua(e.user_agent))
            return None
        mobile = mobile_carrier(net)
        sub = employee and not mobile  # a carrier pool's subnets rotate: one line by its AS
        ua = self._ua(e.user_agent)
        v4 = net.version == 4
        if t is None:
            if s.line is None or _same(s.line, s.line_sub, s.line_sub6, line, net, sub):
                if s.line is None:
                    s.line, s.line_mobile = line, mobile
                if sub:
                    if v4:
                        s.line_sub = net.subnet
                    else:
                        s.line_sub6 = net.subnet
                s.line_ua = _merge(s.line_ua, ua)
                return None
            # A's newest request is the session's newest on the home side (``_seen`` notes this
            # one after): its address and event are those of line A
            t = s.two = _Two(s.line, line, True, e.ts, 1, s.home_ip, s.home_event,
                             e.src_ip, e.event_id, s.line_ua, ua,  # type: ignore[arg-type]  # as above
                             s.line_sub, s.line_sub6, a_mobile=s.line_mobile, b_mobile=mobile,
                             b_reads=1, b_others=int(e.subject_id not in (None, pid)))
            if sub:
                _note_subnet(t, False, net)
            return None
        if _same(t.a, t.a_sub, t.a_sub6, line, net, sub):
            if sub:
                _note_subnet(t, True, net)
            t.a_ip, t.a_event = e.src_ip, e.event_id  # type: ignore[assignment]  # as above
            t.ua_a = _merge(t.ua_a, ua)
            if not t.at_b:
                return None
            t.at_b = False
        else:
            if not _same(t.b, t.b_sub, t.b_sub6, line, net, sub):
                t.b, t.b_sub, t.b_sub6 = line, "", ""
                t.b_mobile = mobile
                if t.b_nets < 9:
                    t.b_nets += 1
            if sub:
                _note_subnet(t, False, net)
            t.b_ip, t.b_event = e.src_ip, e.event_id  # type: ignore[assignment]  # as above
            t.ua_b = _merge(t.ua_b, ua)
            t.b_reads += 1
            if e.subject_id is not None and e.subject_id != pid:
                t.b_others += 1
            if t.at_b:
                return None
            t.at_b = True
        if e.ts - t.first > self.window:  # the last turns are too far back: count afresh
            t.first, t.turns, t.b_reads, t.b_others = e.ts, 1, int(t.at_b), 0
            return None
        t.turns += 1
        return self._judge(s, t, e, pid, employee, ctx)

    def _ua(self, ua: str | None) -> int:
        """A user agent's crc32 (1 for a crc of 0), 0 for none; remembered (a few hundred
        distinct strings, emptied at ``_UA_MEMO_MAX``: transient, never in a checkpoint)."""
        if not ua:
            return 0
        memo = self._ua_memo
        h = memo.get(ua)
        if h is None:
            if len(memo) >= _UA_MEMO_MAX:
                memo.clear()
            h = memo[ua] = crc32(ua.encode("utf-8", "surrogatepass")) or 1
        return h

    def _judge(self, s: _Session, t: _Two, e: Event, pid: str, employee: bool,
               ctx: Context) -> Finding | None:
        """The severity of ``t.turns`` changes of fixed line within ``window`` (see the module
        docstring, "Two fixed lines"), if it pages."""
        if t.turns < self.warn_turns:
            return None
        # one user agent at each line, not the same: two devices; the same one at both: one
        two_devices = t.ua_a > 0 and t.ua_b > 0 and t.ua_a != t.ua_b
        one_device = t.ua_a > 0 and t.ua_a == t.ua_b
        phone = handheld(e.user_agent)
        if (t.a_mobile or t.b_mobile) and not two_devices:
            return None  # a phone's Wi-Fi and mobile data by turns, or a laptop on its hotspot
        if employee:
            if self.office(t.a_ip, e.ts, ctx) and self.office(t.b_ip, e.ts, ctx):
                return None  # two egresses of the company (two uplinks, the office and its VPN)
            if two_devices:
                level = 2
            elif phone:
                return None  # one phone between Wi-Fi and a carrier its AS does not tell
            else:
                level = 2 if t.turns >= self.persist_turns else 1
        elif two_devices:
            level = 2 if t.turns >= self.persist_turns else 1
        elif one_device and phone is False and t.turns >= self.persist_turns:
            level = 1
        else:
            return None  # one phone (or an unknown device) on two networks: not evidence
        if level <= t.level:
            return None
        t.level = level
        return self._two_finding(s, t, e, pid, level, two_devices, phone, employee, ctx)

    def _two_finding(self, s: _Session, t: _Two, e: Event, pid: str, level: int,
                     two_devices: bool, phone: bool | None, employee: bool,
                     ctx: Context) -> Finding:
        names = ctx.victims()
        mins = (e.ts - t.first) / 60
        a, b = ctx.geo.lookup(t.a_ip), ctx.geo.lookup(t.b_ip)  # names, not kept per session
        a_net, b_net = f"{a.country} {a.org}", f"{b.country} {b.org}"
        who = "staff" if employee else "customer"
        summary = (f"Account {pid}'s session ({names('session', e.session_id)}) was used by "  # type: ignore[arg-type]  # _seen returns early without a session
                   f"turns from two fixed lines, {a_net.strip() or '?'} and "
                   f"{b_net.strip() or '?'}: {t.turns} changes within {mins:.0f} min"
                   + (", from two devices" if two_devices else "")
                   + f": two parties hold one {who} session.")
        if two_devices:
            device = ("two devices", "one device (a session lives on one)",
                      "the user agent differs at the two lines, and is one at each")
        else:
            kind = "a phone or tablet" if phone else "unknown" if phone is None else "a desktop"
            one = t.ua_a > 0 and t.ua_a == t.ua_b
            device = ("one user agent" if one else "several or none", "two devices page "
                      "sooner", f"the newest request's device: {kind} (a phone switching "
                      "between Wi-Fi and mobile data keeps its user agent; a stolen cookie's "
                      "user can copy it)")
        evidence = [
            ev("line_a", f"{a_net} {names('address', t.a_ip)}",
               "the session's first fixed line (usually the owner)", f"event {t.a_event}"),
            ev("line_b", f"{b_net} {names('address', t.b_ip)}",
               "another ISP's line (not the same AS; for staff another subnet of the same "
               "AS; a mobile carrier's with two devices only)",
               f"event {t.b_event}; {t.b_nets} other line(s) in all"),
            ev("line_changes", t.turns, f"{self.warn_turns} within {self.window / 60:g} min "
               f"warn, {self.persist_turns} persist (one move is 1, a move and back 2)",
               f"A -> B -> A ...; the first at {iso(t.first)}, the last at {iso(e.ts)}"),
            ev("user_agents", *device),
            ev("other_line_reads", t.b_reads, "requests from line B since the first change",
               f"{t.b_others} of them of another customer's data"),
        ]
        sev = "critical" if level == 2 else "warning"
        return Finding(self.id, "account", pid, sev, 0.9 if level == 2 else 0.7, summary,
                       evidence, [t.a_event, t.b_event], e.ts, names.extra())

    def _learn(self, subnet: str, h: int, ts: float) -> None:
        """Counts an employee's use of ``subnet``; a subnet at least ``office_principals``
        distinct employees use within ``office_window`` is the company's egress (an office,
        a corporate VPN's exit) for ``office_hold`` after its last use. A home line serves
        one employee, two when a couple works here: three is more than a household."""
        eg = self._egress.get(subnet)
        if eg is None:
            self._egress[subnet] = _Egress({h: ts}, ts)
            return
        if ts > eg.last:
            eg.last = ts
        if eg.until:
            if eg.until < ts:  # unused for ``office_hold``: learnt again
                eg.until, eg.seen = 0.0, {}
            else:
                if ts + self.office_hold > eg.until:
                    eg.until = ts + self.office_hold
                return
        seen = eg.seen
        if seen.get(h, -math.inf) < ts:
            seen[h] = ts
        if len(seen) < self.office_principals:
            return
        cut = ts - self.office_window
        for k in [k for k, t in seen.items() if t < cut]:
            del seen[k]
        if len(seen) >= self.office_principals:
            eg.seen, eg.until = {}, ts + self.office_hold

    def office(self, ip: str, now: float, ctx: Context) -> bool:
        """Whether ``ip``'s subnet is a learnt egress of the company at ``now``."""
        eg = self._egress.get(ctx.geo.lookup(ip).subnet) if ip else None
        return eg is not None and eg.until >= now

    # ---- home and server -------------------------------------------------------------------
    @staticmethod
    def _note(s: _Session, side: int, e: Event, net: Any) -> None:
        """The side's address, event and network, at the first request of a turn."""
        where = f"{net.country} {net.org}"
        if side == _HOME:
            s.home_ip, s.home_event, s.home_net = e.src_ip, e.event_id, where  # type: ignore[assignment]  # logins and requests have a src_ip (decode requires it)
        else:
            s.server_ip, s.server_event, s.server_net = e.src_ip, e.event_id, where  # type: ignore[assignment]  # as above

    def _finding(self, s: _Session, e: Event, pid: str, first: float, ctx: Context
                 ) -> Finding:
        names = ctx.victims()
        mins = (e.ts - first) / 60
        summary = (f"Account {pid}'s session ({names('session', e.session_id)}) was used by "  # type: ignore[arg-type]  # _seen returns early without a session
                   f"turns from {s.home_net.strip() or '?'} (a home network) and from "
                   f"{s.server_net.strip() or '?'} (a hosting network) within {mins:.0f} min: "
                   "the owner and a copy of the token on a server.")
        evidence = [
            ev("home_side", f"{s.home_net} {names('address', s.home_ip)}",
               "residential / mobile network", f"event {s.home_event}"),
            ev("server_side", f"{s.server_net} {names('address', s.server_ip)}",
               "hosting / cloud network (not a known VPN or relay)", f"event {s.server_event}"),
            ev("switches_minutes", round(mins, 1), f"two changes of side within "
               f"{self.window / 60:g} min", "home -> server -> home or server -> home -> "
               f"server; the second at {iso(e.ts)}"),
        ]
        return Finding(self.id, "account", pid, "critical", 0.9, summary, evidence,
                       [s.home_event, s.server_event], e.ts, names.extra())

    def expire(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + max(300.0, self.ttl / 12)
        self._memo.clear()  # raw ids live here at most one sweep
        ttl = self.ttl
        dead = [h for h, s in self._sessions.items() if now - s.last > ttl]
        for h in dead:
            del self._sessions[h]
        egress, idle = self._egress, now - self.office_window
        for k in [k for k, g in egress.items() if (g.until < now if g.until else g.last < idle)]:
            del egress[k]

    def shed(self, cap: int) -> int:
        if len(self._memo) > self.memo_max:
            self._memo.clear()
        return (evict(self._sessions, cap, _last, _flagged)
                + evict(self._egress, cap, _egress_last, _egress_learnt))

    def tracked(self) -> dict[str, int]:
        return {"session": len(self._sessions), "subnet": len(self._egress)}


DETECTOR = SessionShared
