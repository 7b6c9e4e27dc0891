"""session_shared — one session used by turns from a home network and from a cloud server.

A session (the bearer token a login issued) lives on one device. When requests carrying it
come by turns from a residential or mobile network and from a hosting / cloud network (a
datacenter address, not a known VPN exit or privacy relay), two parties hold it: the owner,
still at home, and someone who copied the token to a server (cookie or token theft:
infostealer malware, an adversary-in-the-middle phishing proxy, a leaked log). One switch is
not enough (a user who turns a VPN or a cloud desktop on goes over and stays): the page needs
the session to go **back**, home -> server -> home or server -> home -> server, within
``window`` seconds (default 30 min) of the first switch.

impossible_travel does not see this: hosting networks are not places a person is, so they
never start or end a journey there; and the owner and the thief each present a session that a
real login issued, so unissued_session has nothing to say either.

State per session (salted digest of the session id, never the id): which side it was last
used from, when it last switched, the last address and event on each side; idle sessions go
after ``ttl``. Victims: the account is named (the one whose sessions to end); addresses and
the session by digest. Cost: ~1-2 µs per request on many-entity traffic (docs/benchmarks.md).

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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._cap import evict
from .base import Detector, Finding, ev, iso

if TYPE_CHECKING:
    from .context import Context
    from .events import Event

#: the two sides: a network where people are, and a datacenter's
_HOME, _SERVER = 0, 1
_SIDES = {"isp": _HOME, "hosting": _SERVER}


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


def _last(s: _Session) -> float:
    return s.last


def _flagged(s: _Session) -> bool:
    return s.flagged


class SessionShared(Detector):
    id = "session_shared"
    title = "Session used by turns from home and from a cloud server"
    description = (
        "One session's requests alternate between a residential or mobile network and a "
        "hosting / cloud network within minutes: the owner and a copy of the token on a "
        "server use it at the same time."
    )
    severity = "critical"
    attack = ("T1539", "T1550.004")  # Steal Web Session Cookie; Use Alternate Auth: Web Cookie
    status = "experimental"
    entity_kinds = ("account",)
    wants = frozenset({"login", "access"})
    triage = (
        "Check: the two networks in the evidence (the home side is usually the owner: their "
        "ISP or carrier, their device's user agent), what the server side read, whether other "
        "accounts' sessions are used from the same server (a stolen-cookie campaign). False "
        "positives: a user whose own cloud desktop or remote browser shares the session with "
        "their device (rare for a customer), a VPN provider missing from "
        "data/network_classes.tsv (its exits read as hosting: add its AS, then the flapping "
        "of its users' connections stays quiet). Respond: end the session and the account's "
        "other sessions, force a re-login with MFA, check what the server side changed, block "
        "the server's address."
    )

    def __init__(self, window: float = 1800.0, ttl: float = 7200.0,
                 principal_types: tuple[str, ...] = ("customer", "employee"),
                 memo_max: int = 200_000) -> None:
        self.window = window
        self.ttl = ttl
        self.principal_types = frozenset(principal_types)
        self.memo_max = memo_max
        self._sessions: dict[int, _Session] = {}
        self._memo: dict[str, int] = {}  # raw session id -> its digest; transient
        self._next_sweep = 0.0

    def __getstate__(self) -> dict[str, Any]:
        """Checkpoints keep digests only: the raw-id memo is left out."""
        state = self.__dict__.copy()
        state["_memo"] = {}
        return state

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
        h = self._memo.get(sid)
        if h is None:
            if len(self._memo) >= self.memo_max:
                self._memo.clear()
            h = self._memo[sid] = ctx.hash_one(sid)
        s = self._sessions.get(h)
        ts = e.ts
        if s is None:
            s = self._sessions[h] = _Session(side, ts)
            self._note(s, side, e, net)
            return []
        if ts < s.last:  # late and out of order: its side is not the session's latest
            return []
        s.last = ts
        if side == s.side:  # the usual case: one more request from the same side (speed:
            if side == _HOME:  # the network's name is kept from the turn's first request)
                s.home_ip, s.home_event = e.src_ip, e.event_id  # type: ignore[assignment]  # logins and requests have a src_ip (decode requires it)
            else:
                s.server_ip, s.server_event = e.src_ip, e.event_id  # type: ignore[assignment]  # as above
            return []
        first = s.switched
        s.switched, s.side = ts, side
        self._note(s, side, e, net)
        if first is None or ts - first > self.window or s.flagged:
            return []
        s.flagged = True
        return [self._finding(s, e, pid, first, ctx)]

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

    def shed(self, cap: int) -> int:
        if len(self._memo) > self.memo_max:
            self._memo.clear()
        return evict(self._sessions, cap, _last, _flagged)

    def tracked(self) -> dict[str, int]:
        return {"session": len(self._sessions)}


DETECTOR = SessionShared
