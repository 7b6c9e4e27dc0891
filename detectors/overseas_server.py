"""overseas_server — identities used from a network abroad that they (and their peers) never use.

Customers connect from home broadband and mobile carriers; a hosting provider abroad is about
the rarest place a customer session can come from. Employees travel and use the corporate VPN;
services run in clouds. So every *new* place (country + network operator) an identity uses is
weighed by how rare that kind of place is for its peer group (principal type):

- Per identity a tiny profile: the few places (country, AS) it used, with counts (bounded).
  Only a place the identity has not used before is looked at; known places cost one dict hit.
- Per peer group, counts of new places by ``(network class, abroad?)`` behind a prior written
  from experience (customers: home ISPs; staff: office, home, VPN; services: private and cloud),
  so the detector is useful from the first event. ``abroad`` means outside the home country
  (``home_country``, else the most common country of new places seen).
- A River ``GaussianScorer`` per peer group (deterministic: it has no random state) scores the
  surprise (-log10 of the peer probability) of each new place against the group's new places;
  it learns only from places it did not flag (an attacker cannot teach it that servers abroad
  are normal). Its score goes into the alert's ``score`` and evidence; the exact peer
  probability decides, so a cold model never hides a page.

Who gets paged. A forging server reads many *victims*, each a customer whose request looks like
their own: one page per victim would bury the on-call. Customer requests (``data-access``)
from a hosting network abroad, at a place that account never used (so no login from it
either), are therefore aggregated per source subnet (/24, /48): ``warn_accounts`` distinct
accounts make a warning, ``critical_accounts`` a critical page for the subnet. A single
customer account seen there with an established history elsewhere is only an ``info`` on the
account. Customers on a privacy VPN share its exits abroad, each in their own ordinary session:
such uses mark the subnet as a shared exit instead of counting against it. Own sessions are a
first login of an account new to us, a login that the device's refresh token or a second
factor vouched for (``method`` refresh / mfa: a stolen password gets neither), a request in a
session a login of the same account issued (the last ``max_sessions``; a VPN moves it between
exits), and a password login at a subnet where owners' own sessions already came within the
``window`` (stolen passwords there are left to the login detectors). Other logins of accounts
with a history elsewhere count against the source (stolen passwords from a server); so do
requests in sessions no login of the account issued (forged tokens). A request whose token says
it was issued before the watch began (give or take ``skew``, within ``max_token_lifetime``) is
unverifiable rather than forged: on the watch's first days a privacy-VPN customer's app carries
such a token through an exit; one per exit address is not counted, and from the second account
one address serves in the window they all count (a server forging them reads many accounts per
address; unissued_session and spread_access judge the tokens themselves). Shared exits are capped
at warning once two customers' own sessions came through them. Employees and services are judged one by one (``warning`` on the
account) when a new place is rare for their group; the first place an employee or service is
seen at, in the home country, is its baseline and is not judged (with no earlier place there is
nothing it moved from: a partner's first request of the watch from its own domestic provider).

When a customer's request is judged (h-par7, issue 14 item 5): a login may reach us after the
requests of the session it issued (logins up to ``login_lateness``, 60 s, late). Taken first, the
request would be the new place and the login a known one; taken in event time order (as the
worker merges the two topics), the place is the login's. So a customer's request at a new
hosting place abroad is judged once the login stream has passed it by ``login_lateness`` (the
newest login ts seen, any account, as unissued_session waits for a read no login issued), or,
with no login arriving, ``login_quiet`` (300 s) more of engine time; the end of input judges
every waiting request. A login of the same account at that place dated at or before the
request, arriving meanwhile, takes the place: it is judged as the new place, as if it had come
first, and the request is not counted. A login of the account that issued the request's session
arriving meanwhile makes it an own session (a shared exit's user). The verdict, when made,
carries the request's time (the alert id ``replay`` gives). The subnet's tally and its pages
come up to ``login_lateness`` later than the request; a login's own verdict and staff
(employees, services: ``warning`` on the account, judged on their own) are judged at once.
``login_lateness`` 0 judges every request at once (as before).

Victims: a subnet page counts the customer accounts (never names them); an account page names
the account it is about (its entity) and, when the request read another customer's data, that
customer by digest (``customer#...``). The hosting servers, their subnet and the signing keys
stay in the clear.

>>> from detectors.engine import Engine, EngineConfig
>>> T0 = 1_750_723_200  # 2025-06-24T00:00:00Z
>>> eng = Engine(EngineConfig(detectors=("overseas_server",)))
>>> for i in range(6):       # six customers at home (Korea Telecom), then "their" reads from AWS US
...     _ = eng.process_obj({"event_id": f"l{i}", "ts": T0 + 1000 + i, "account_id": f"c-{i}",
...                          "outcome": "success", "src_ip": "121.134.3.3", "session_id": f"s{i}"})
>>> alerts = []
>>> for i in range(6):
...     alerts += eng.process_obj({"event_id": f"a{i}", "ts": T0 + 2000 + i, "actor_id": f"c-{i}",
...                                "subject_id": f"c-{i}", "resource": "address",
...                                "src_ip": "3.101.4.4", "key_id": "kid-legacy"})[0]
>>> alerts  # each read waits for logins up to 60 s late (one would make the place its own)
[]
>>> alerts += eng.process_obj({"event_id": "l9", "ts": T0 + 2070, "account_id": "c-9",
...                            "outcome": "success", "src_ip": "121.134.3.3", "session_id": "s9"})[0]
>>> [(a["severity"], a["entity"]["kind"], a["entity"]["id"]) for a in alerts]
[('warning', 'subnet', '3.101.4.0/24'), ('critical', 'subnet', '3.101.4.0/24')]
>>> alerts[-1]["summary"]
'5 customer accounts read from hosting server 3.101.4.4 in US (AMAZON-02), a network none of them had used before; customers come from such places in 0.2% of new places.'
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import datasketches as ds
from river import anomaly

from ._cap import evict
from .base import (
    OBSERVATION,
    Detector,
    Finding,
    ev,
    finding_fields,
    finding_from_fields,
    is_observation,
    iso,
    observation,
)
from .impossible_travel import distance_km

if TYPE_CHECKING:
    from .engine import Context
    from .events import Event

# Prior pseudo-counts of new places per peer group, by (network class, abroad?). Written from
# what such populations do: customers at home on broadband and mobile, a few abroad or behind
# VPNs and privacy relays, almost never on a cloud server; staff in the office or at home,
# on the VPN, some travelling; services on private addresses and in clouds, hardly ever
# on a residential or mobile network.
PRIORS: dict[str, dict[tuple[str, bool], float]] = {
    "customer": {
        ("isp", False): 90.0, ("isp", True): 4.0, ("vpn", False): 0.5, ("vpn", True): 1.5,
        ("relay", False): 2.0, ("relay", True): 1.0, ("hosting", False): 0.4,
        ("hosting", True): 0.2, ("private", False): 0.2, ("private", True): 0.2,
    },
    "employee": {
        ("isp", False): 55.0, ("isp", True): 5.0, ("vpn", False): 12.0, ("vpn", True): 8.0,
        ("relay", False): 3.0, ("relay", True): 2.0, ("hosting", False): 3.0,
        ("hosting", True): 0.3, ("private", False): 10.0, ("private", True): 1.0,
    },
    "service": {
        ("isp", False): 0.3, ("isp", True): 0.1, ("vpn", False): 0.5, ("vpn", True): 0.2,
        ("relay", False): 0.5, ("relay", True): 0.2, ("hosting", False): 30.0,
        ("hosting", True): 10.0, ("private", False): 45.0, ("private", True): 4.0,
    },
}

# Login methods that prove more than a password: the device's own refresh token, a second
# factor. A customer logging in so through a shared exit is its owner, not a password thief.
VOUCHED_METHODS = frozenset({"refresh", "mfa"})


@dataclass(slots=True)
class _Profile:
    """Places one identity used: (country, AS) -> uses; bounded to ``max_places``."""

    places: dict[tuple[str, Any], int] = field(default_factory=dict)
    home: str = ""
    n: int = 0
    last: float = 0.0
    sessions: tuple[int, ...] = ()  # salted hashes of the sessions its last logins issued


@dataclass(slots=True)
class _Peer:
    counts: dict[tuple[str, bool], float]
    total: float
    scorer: anomaly.GaussianScorer
    learned: int = 0

    def prob(self, cls: str, abroad: bool) -> float:
        return self.counts.get((cls, abroad), 0.1) / self.total


@dataclass(slots=True)
class _Source:
    """Customer accounts seen at one hosting subnet abroad, at a place new to each of them."""

    subnet: str
    where: str
    first: float
    last: float
    accounts: Any  # datasketches.hll_sketch of salted account hashes
    ips: dict[str, int] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)
    login_accounts: int = 0  # customers new to us who logged in through it (a shared exit)
    logins: int = 0  # counted accounts that came by a login (stolen passwords, not tokens)
    peer_p: float = 0.0
    # issue 14 item 6: address -> the one account whose unverifiable session (a token issued
    # before the watch) it served so far, not counted; -1 once a second one came (then all count)
    held: dict[str, int] = field(default_factory=dict)
    sent: int = -1  # severity rank last reported
    sent_ts: float = 0.0
    event_ids: list[str] = field(default_factory=list)

    def __getstate__(self) -> dict[str, Any]:
        state = {f: getattr(self, f) for f in self.__slots__}
        state["accounts"] = self.accounts.serialize_updatable()  # C++ sketch: its wire form
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["accounts"] = ds.hll_sketch.deserialize(state["accounts"])
        state.setdefault("held", {})  # checkpoints written before unverifiable sessions
        for k, v in state.items():
            object.__setattr__(self, k, v)



def _last(x: _Profile | _Source) -> float:
    return x.last


def _reported(src: _Source) -> bool:
    return src.sent >= 0

class OverseasServer(Detector):
    id = "overseas_server"
    title = "Identity used from a server or country it never uses"
    description = (
        "An identity is used from a country or hosting network new to it and rare for its peer "
        "group; customer requests from a hosting server abroad are paged per source subnet."
    )
    severity = "critical"
    attack = ("T1078", "T1090.003", "T1550.001")  # Valid Accounts; Proxy; App Access Token
    status = "test"
    entity_kinds = ("subnet", "account")
    wants = frozenset({"login", "access"})
    triage = (
        "Check: the source network's owner (cloud provider, region), how many distinct customer "
        "accounts it read and which resources (addresses, order history), which signing key "
        "vouched for the tokens (key ids in the evidence) and whether those sessions have a "
        "login; for a single account, its earlier places and devices. False positives: a "
        "commercial VPN exit hosted at a cloud provider (its users' own sessions, vouched "
        "logins and first logins mark it shared and cap it at warning), a partner integration calling with customer tokens "
        "from its cloud, a customer travelling with a cloud desktop, a login pipeline more "
        "than login_lateness (60 s) behind (a customer request is judged once logins 60 s past "
        "it were seen, or 5 min later without any: a login later than that does not make the "
        "place its own). Respond: block the "
        "subnet at the edge, revoke the signing key behind the tokens, invalidate the "
        "sessions seen there, notify the affected accounts, preserve the request log."
    )

    def __init__(self, home_country: str | None = None, warn_accounts: int = 3,
                 critical_accounts: int = 5, window: float = 3600.0, rare_p: float = 0.01,
                 staff_rare_p: float = 0.005, max_places: int = 6, profile_ttl: float = 30 * 86400.0,
                 mature_uses: int = 3, reminder: float = 1800.0, grace: int = 100,
                 memo_ttl: float = 3600.0, memo_max: int = 200_000,
                 max_sessions: int = 3, skew: float = 120.0,
                 max_token_lifetime: float = 172800.0, login_lateness: float = 60.0,
                 login_quiet: float = 300.0) -> None:
        self.home_country = home_country
        # h-par7 (issue 14.5 / 17.5): a customer's read at a new hosting place abroad is judged
        # once the login stream has passed it by login_lateness (unissued_session's bound)
        self.login_lateness = login_lateness
        self.login_quiet = login_quiet
        self._login_max = float("-inf")  # newest login ts seen (any outcome)
        self._late: dict[tuple[int, str, str], list[Any]] = {}  # reads waiting (_LATE_* fields)
        self._late_due: list[tuple[float, int, str, str]] = []  # heap of (deadline, *key)
        #: subnets a waiting read was just judged for: kept from the next sweep (``expire``)
        self._judged: set[str] = set()
        self.skew = skew  # issue 14 item 6: tokens issued before the watch (as unissued_session)
        self.max_token_lifetime = max_token_lifetime
        self.max_sessions = max(1, max_sessions)
        self.warn_accounts = warn_accounts
        self.critical_accounts = critical_accounts
        self.window = window
        self.rare_p = rare_p
        self.staff_rare_p = staff_rare_p
        self.max_places = max_places
        self.profile_ttl = profile_ttl
        self.mature_uses = mature_uses
        self.reminder = reminder
        self.grace = grace
        self.memo_ttl = memo_ttl
        self.memo_max = memo_max
        self._profiles: dict[int, _Profile] = {}  # salted hash of the identity -> profile
        # raw id -> profile: a transient memo that saves hashing each event (~2 µs); cleared
        # every memo_ttl of event time, and whenever profiles are swept
        self._memo: dict[str, _Profile] = {}
        self._peers: dict[str, _Peer] = {}
        self._countries: dict[str, int] = {}  # countries of new places (learned home country)
        self._home: str | None = None  # the most common of them
        self._sources: dict[str, _Source] = {}
        self._next_sweep = 0.0
        self._memo_until = 0.0

    def __getstate__(self) -> dict[str, Any]:
        """Checkpoints keep hashed state only: the raw-id memo is left out."""
        state = self.__dict__.copy()
        state["_memo"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("max_sessions", 3)  # checkpoints written before own-session exits
        state.setdefault("skew", 120.0)  # ... and before unverifiable sessions
        state.setdefault("max_token_lifetime", 172800.0)
        state.setdefault("login_lateness", 60.0)  # ... and before late logins (h-par7)
        state.setdefault("login_quiet", 300.0)
        state.setdefault("_login_max", float("-inf"))
        state.setdefault("_late", {})
        state.setdefault("_late_due", [])
        state.setdefault("_judged", set())
        self.__dict__.update(state)

    # --- state ---------------------------------------------------------------------------
    def _peer(self, ptype: str) -> _Peer:
        p = self._peers.get(ptype)
        if p is None:
            prior = dict(PRIORS.get(ptype, PRIORS["customer"]))
            p = self._peers[ptype] = _Peer(prior, sum(prior.values()),
                                           anomaly.GaussianScorer(grace_period=self.grace))
        return p

    def home(self) -> str | None:
        if self.home_country:
            return self.home_country
        return self._home

    def _learn_country(self, country: str) -> None:
        c = self._countries[country] = self._countries.get(country, 0) + 1
        home = self._home
        if home is None or (country != home and c > self._countries.get(home, 0)):
            self._home = country

    def _profile(self, pid: str, ctx: Context) -> _Profile:
        h = ctx.hash_one(pid)
        p = self._profiles.get(h)
        if p is None:
            p = self._profiles[h] = _Profile()
        self._memo[pid] = p
        return p

    # --- hooks ---------------------------------------------------------------------------
    def on_login(self, e: Event, ctx: Context) -> list[Finding]:
        out: list[Finding] = []
        if e.outcome == "success":
            out = self._use(e, e.account_id, e.account_type, ctx)  # type: ignore[arg-type]  # account_id and account_type: decode requires the one, defaults the other
            if e.session_id and e.account_type == "customer":
                p = self._memo[e.account_id]  # type: ignore[index]  # a login has an account_id (decode requires it)
                p.sessions = (*p.sessions[-(self.max_sessions - 1):], ctx.hash_one(e.session_id))
        if e.ts > self._login_max:
            self._login_max = e.ts
            if self._late_due and self._late_due[0][0] <= e.ts:
                out = out + self._judge_late(e.ts, ctx)
        return out

    def on_time(self, now: float, ctx: Context) -> list[Finding]:
        return self._judge_late(max(self._login_max, now - self.login_quiet), ctx)

    def on_access(self, e: Event, ctx: Context) -> list[Finding]:
        return self._use(e, e.actor_id, e.actor_type, ctx)  # type: ignore[arg-type]  # actor_id and actor_type: decode requires the one, defaults the other

    def _use(self, e: Event, pid: str, ptype: str, ctx: Context) -> list[Finding]:
        net = e.net
        p = self._memo.get(pid)
        if p is None:
            p = self._profile(pid, ctx)
        key = (net.country, net.asn or net.org)
        places = p.places
        c = places.get(key)
        p.n += 1
        p.last = e.ts
        if c is not None:  # the common case: a place this identity uses
            if self._late and e.kind == "login":
                late = self._login_first(e, pid, ptype, p, key, ctx)
                if late is not None:
                    return late
            places[key] = c + 1
            return []
        return self._new_place(e, pid, ptype, p, key, ctx)

    # --- late logins (h-par7) ----------------------------------------------------------------
    def _login_first(self, e: Event, pid: str, ptype: str, p: _Profile, key: tuple[str, Any],
                     ctx: Context) -> list[Finding] | None:
        """A login dated at or before a read of the same account at the same place that is
        still waiting (the read made the place known, the login came late): the place is the
        login's, as if the login had come first. The read's verdict is dropped; the login is
        judged at a new place, with the account's uses as they were before the read. None:
        no such read."""
        lk = _late_key(pid, key, ctx)
        w = self._late.get(lk)
        if w is None or e.ts > w[_LATE_TS]:
            return None
        del self._late[lk]  # its heap entry is dropped when due
        uses = p.places.pop(key)  # the read's and the account's later ones there
        p.n -= uses
        out = self._new_place(e, pid, ptype, p, key, ctx)
        p.n += uses
        if key in p.places:
            p.places[key] += uses
        return out

    def _wait(self, e: Event, pid: str, key: tuple[str, Any], obs: Finding,
              ctx: Context) -> list[Finding]:
        """Put off the observation ``obs`` of a customer's read at a new place until the login
        stream has passed the read by ``login_lateness``: a login dated before it that comes
        later (up to that bound) makes the place the login's."""
        lk = _late_key(pid, key, ctx)
        if lk in self._late:  # its profile was swept while a read of the place waits
            return []
        deadline = e.ts + self.login_lateness
        sess = ctx.hash_one(e.session_id) if e.session_id else 0
        self._late[lk] = [deadline, e.ts, obs, sess]
        heapq.heappush(self._late_due, (deadline, *lk))
        if self._login_max >= deadline:  # the login stream is already past it
            return self._judge_late(self._login_max, ctx)
        ctx.wake_at(deadline + self.login_quiet, self.id)
        return []

    def _judge_late(self, upto: float, ctx: Context) -> list[Finding]:
        """The reads whose deadline is at most ``upto``, in (deadline, key) order: each one's
        observation, its session now checked against the logins that came meanwhile."""
        due = self._late_due
        out: list[Finding] = []
        while due and due[0][0] <= upto:
            deadline, h, cc, asn = heapq.heappop(due)
            lk = (h, cc, asn)
            w = self._late.get(lk)
            if w is None or w[_LATE_DEADLINE] != deadline:
                continue
            del self._late[lk]
            obs: Finding = w[_LATE_OBS]
            d = obs.extra[OBSERVATION]
            if d["own"] is not True and w[_LATE_SESSION]:
                p = self._profiles.get(h)
                if p is not None and w[_LATE_SESSION] in p.sessions:
                    d["own"] = True  # a late login of the account issued its session
            out.append(obs)
            self._judged.add(obs.entity_id)
        return out

    def undecided(self) -> dict[tuple[str, str], float]:
        """Each subnet with a read still waiting for the login stream, at its earliest read's
        time + ``login_lateness`` (when ``replay``'s login stream passes it)."""
        out: dict[tuple[str, str], float] = {}
        late = self.login_lateness
        for w in self._late.values():
            obs: Finding = w[_LATE_OBS]
            ent = (obs.entity_kind, obs.entity_id)
            at = w[_LATE_TS] + late
            if at < out.get(ent, math.inf):
                out[ent] = at
        return out

    def decided_for(self, f: Finding) -> float | None:
        """A read's observation (put off for the login stream): its time + ``login_lateness``."""
        if (f.detector == self.id and is_observation(f)
                and f.extra[OBSERVATION].get("login") is False):
            return f.ts + self.login_lateness
        return None

    # --- a place new to the identity -------------------------------------------------------
    def _new_place(self, e: Event, pid: str, ptype: str, p: _Profile, key: tuple[str, Any],
                   ctx: Context) -> list[Finding]:
        net = e.net
        assert net is not None
        cls, country = net.net_class, net.country
        home = self.home()
        abroad = cls != "private" and country != "??" and (home is None or country != home)
        peer = self._peer(ptype)
        prob = peer.prob(cls, abroad)
        surprise = -math.log10(max(prob, 1e-9))
        # the model's score only goes into a finding: read it for flagged places alone (the
        # scorer is not changed by reading it; most new places are not flagged)
        known_elsewhere = p.n - 1 >= self.mature_uses and bool(p.places)
        findings: list[Finding] = []
        flagged = False
        waiting: Finding | None = None
        if ptype == "customer":
            if cls == "hosting" and abroad and prob < self.rare_p:
                flagged = True
                river_score = peer.scorer.score_one(None, surprise)
                # A request at a place the account never logged in from, or a login there by
                # an account with a history elsewhere, counts against the source. A first
                # login of an account new to us is how VPN users look: it marks a shared exit;
                # so does the owner's own ordinary session there: a login its device's refresh
                # token or a second factor vouched for (a stolen password gets neither), or a
                # request in a session a login of the same account issued (moved to another exit
                # of a privacy VPN). A forger's tokens carry sessions no login issued.
                if e.kind == "login":
                    own = e.method in VOUCHED_METHODS  # else decided where the subnet's are
                else:
                    own = bool(e.session_id and p.sessions
                               and ctx.hash_id(e.session_id) in p.sessions)
                obs = self._observe(e, pid, ptype, p, prob, own, known_elsewhere, river_score,
                                    ctx)
                if e.kind == "login" or self.login_lateness <= 0:
                    findings.append(obs)  # login_lateness 0: judged at once (before h-par7)
                else:
                    waiting = obs  # judged once the login stream passed it (h-par7)
        elif prob < self.staff_rare_p and (abroad or p.places):
            # An identity's first place at home is its baseline, not a place it left: nothing
            # says it ever used another (a partner's first request of the watch from its
            # domestic provider). A first place abroad is still judged.
            flagged = True
            river_score = peer.scorer.score_one(None, surprise)
            findings.append(self._account_finding(e, pid, ptype, p, prob, "warning", river_score,
                                                  ctx))
        # Learn the place for the identity (so it is judged once), and for the peer group only
        # when it was not flagged: what was paged on never becomes normal.
        self._add_place(p, key, country)
        if not flagged:
            peer.counts[(cls, abroad)] = peer.counts.get((cls, abroad), 0.0) + 1.0
            peer.total += 1.0
            peer.scorer.learn_one(None, surprise)
            peer.learned += 1
            if country != "??" and cls != "private":
                self._learn_country(country)
        if waiting is not None:
            return self._wait(e, pid, key, waiting, ctx)
        return findings

    def _observe(self, e: Event, pid: str, ptype: str, p: _Profile, prob: float, own: bool,
                 known_elsewhere: bool, river_score: float, ctx: Context) -> Finding:
        """A customer's use of a hosting subnet abroad new to it, as an observation of the
        subnet: the subnet's tally is kept where every partition's uses of it meet
        (:meth:`on_observation`), not on the share of accounts this engine sees."""
        net = e.net
        assert net is not None
        where = f"{net.country} ({net.org})" if net.org else net.country
        single = (finding_fields(self._account_finding(e, pid, ptype, p, prob, "info",
                                                       river_score, ctx))
                  if known_elsewhere else None)
        return observation(self.id, "subnet", net.subnet, e.ts, e.event_id, {
            "login": e.kind == "login", "own": own, "account": ctx.hash_id(pid),
            "ip": e.src_ip, "key": e.key_id, "where": where, "prob": prob,
            "single": single, "unverifiable": self._unverifiable(e, ctx)})

    def on_observation(self, obs: Finding, ctx: Context) -> list[Finding]:
        """A customer's use of subnet ``obs.entity_id``: counted against it, or as one of a
        shared exit's own users; the subnet page, and the account's ``info`` while the
        subnet has seen that one account only."""
        d = obs.extra[OBSERVATION]
        subnet, ts, login = obs.entity_id, obs.ts, d["login"] is True
        own = d["own"] is True
        if login and not own:
            # a password login where owners' own sessions already come through is one more
            # of the exit's users (stolen passwords: the login detectors)
            src = self._sources.get(subnet)
            own = src is not None and src.login_accounts > 0 and ts - src.last <= self.window
        # a request at a place the account never logged in from, or a login there by an
        # account with a history elsewhere, counts against the source; a first login of an
        # account new to us, or the owner's own session, marks a shared exit
        if own or not (not login or d["single"] is not None):
            self._source_login(subnet, str(d["where"]), ts)
            return []
        findings = self._source_use(obs, d)
        src = self._sources.get(subnet)
        if (src is not None and src.sent < 0 and d["single"] is not None
                and int(round(src.accounts.get_estimate())) == 1):
            findings.append(finding_from_fields(d["single"]))
        return findings

    def _add_place(self, p: _Profile, key: tuple[str, Any], country: str) -> None:
        places = p.places
        if len(places) >= self.max_places:
            drop = min((k for k in places if k[0] != p.home), key=places.__getitem__,
                       default=None)
            if drop is None:
                drop = min(places, key=places.__getitem__)
            del places[drop]
        places[key] = 1
        if len(places) == 1:  # a first place (most identities): it is the home
            p.home = country
            return
        by_country: dict[str, int] = {}
        for (cc, _), n in places.items():
            by_country[cc] = by_country.get(cc, 0) + n
        p.home = max(by_country.items(), key=lambda kv: (kv[1], kv[0]))[0]

    def _source_login(self, subnet: str, where: str, ts: float) -> None:
        src = self._sources.get(subnet)
        if src is None:
            src = self._new_source(subnet, where, ts)
        src.login_accounts += 1
        src.last = ts

    def _new_source(self, subnet: str, where: str, ts: float) -> _Source:
        src = _Source(subnet, where, ts, ts, ds.hll_sketch(12))
        self._sources[subnet] = src
        return src

    def _unverifiable(self, e: Event, ctx: Context) -> bool:
        """A request in a session whose token says it was issued before the watch began (give
        or take ``skew``) and within ``max_token_lifetime``: no login can vouch for it, nor
        show it forged (a privacy-VPN customer's app carrying yesterday's token looks so)."""
        tia, start = e.token_issued_at, ctx.start
        return (e.kind == "access" and tia is not None and start is not None
                and tia < start + self.skew and e.ts - tia <= self.max_token_lifetime)

    def _source_use(self, obs: Finding, d: dict[str, Any]) -> list[Finding]:
        subnet, ts = obs.entity_id, obs.ts
        src = self._sources.get(subnet)
        if src is None or ts - src.last > self.window:
            src = self._new_source(subnet, str(d["where"]), ts)
        h = int(d["account"])
        if d.get("unverifiable") is True:
            # One unverifiable session per exit address is a VPN customer with a token from
            # before the watch; a server forging them reads many accounts per address: count
            # them from the second account one address serves in the window (the first too).
            ip = str(d["ip"])
            first = src.held.get(ip)
            if first is None:
                if len(src.held) < 64:
                    src.held[ip] = h
                    return []
            elif first == h:
                return []
            elif first != -1:
                src.accounts.update(first)
                src.held[ip] = -1
        src.accounts.update(h)
        src.last = ts
        if d["login"] is True:
            src.logins += 1
        src.peer_p = float(d["prob"])
        ip, key = str(d["ip"]), d["key"]
        if ip in src.ips or len(src.ips) < 8:
            src.ips[ip] = src.ips.get(ip, 0) + 1
        if isinstance(key, str) and key and (key in src.keys or len(src.keys) < 4):
            src.keys[key] = src.keys.get(key, 0) + 1
        if len(src.event_ids) < 20:
            src.event_ids.extend(obs.event_ids[:1])
        n = int(round(src.accounts.get_estimate()))
        if n >= self.critical_accounts and src.login_accounts < 2:
            rank = 2
        elif n >= self.warn_accounts:
            rank = 1
        else:
            return []
        if rank <= src.sent and ts - src.sent_ts < self.reminder:
            return []
        src.sent, src.sent_ts = max(rank, src.sent), ts
        return [self._source_finding(src, n, rank, ts)]

    # --- findings ------------------------------------------------------------------------
    def _source_finding(self, src: _Source, n: int, rank: int, ts: float) -> Finding:
        ips = sorted(src.ips, key=src.ips.__getitem__, reverse=True)
        server = (f"hosting server {ips[0]}" if len(ips) == 1
                  else f"{len(ips)} hosting servers in {src.subnet}")
        verb = "read from" if src.logins == 0 else "used from"
        summary = (f"{n} customer accounts {verb} {server} in {src.where}, a network none of "
                   f"them had used before; customers come from such places in "
                   f"{_pct(src.peer_p)} of new places.")
        keys = ", ".join(f"{k} ({c})" for k, c in sorted(src.keys.items())) or "none named"
        minutes = max(0.0, src.last - src.first) / 60
        evidence = [
            ev("distinct_customer_accounts", n,
               f"warning at {self.warn_accounts}, critical at {self.critical_accounts}",
               f"accounts whose requests came from {src.subnet} at a place new to each of them, "
               f"over {minutes:.0f} min since {iso(src.first)}"),
            ev("network", f"hosting, abroad: {src.where}",
               "customers: home broadband and mobile carriers",
               f"peer-group share of new places of this kind: {_pct(src.peer_p)}"),
            ev("signing_keys", keys, "tokens of these accounts signed from their own devices",
               "key ids presented by the requests from this subnet (requests per key)"),
            ev("first_logins_from_subnet", src.login_accounts, "0 for a forging server",
               "customers new to us who logged in through this subnet first (a shared VPN exit: "
               "caps the page at warning)"),
            ev("accounts_by_login", src.logins, "0 for forged tokens",
               "counted accounts that came with a password login (stolen credentials) rather "
               "than a token no login here issued"),
        ]
        score = min(1.0, 0.5 + 0.5 * (1.0 - 0.5 ** max(0, n - self.warn_accounts + 1)))
        sev = ("info", "warning", "critical")[rank]
        return Finding(self.id, "subnet", src.subnet, sev, score, summary, evidence,
                       list(src.event_ids), ts)

    def _account_finding(self, e: Event, pid: str, ptype: str, p: _Profile, prob: float,
                         severity: str, river_score: float, ctx: Context) -> Finding:
        net = e.net
        assert net is not None
        home = p.home or self.home() or "?"
        usual = ", ".join(f"{cc} {asn}" for (cc, asn) in list(p.places)[:4]) or "none yet"
        dist = distance_km(home, net.country)
        far = f"{dist:,.0f} km from {home}" if dist is not None else "distance unknown"
        names = ctx.victims()
        if e.kind == "login":
            what = "used"
        elif e.subject_id == pid:
            what = f"read {e.resource} of {pid}"
        else:
            what = f"read {e.resource} of 1 customer ({names('customer', e.subject_id)})"  # type: ignore[arg-type]  # a request has a subject_id (decode requires it)
        summary = (f"{ptype.capitalize()} {pid} {what} from {net.net_class} network "
                   f"{net.org or net.asn or '?'} in {net.country} ({e.src_ip}), a place it never "
                   f"used; {ptype}s come from such places in {_pct(prob)} of new places.")
        evidence = [
            ev("place", f"{net.country} {net.org or net.asn} ({net.net_class})", usual,
               f"{far}; {p.n - 1} earlier uses of this identity"),
            ev("peer_rarity", _pct(prob), f"{_pct(self.rare_p if ptype == 'customer' else self.staff_rare_p)} "
               f"for {ptype}s", "share of new places of this network class and abroad-ness"),
            ev("model_score", round(river_score, 3), "0 = typical new place for the group",
               "River GaussianScorer on the surprise of new places"),
        ]
        score = max(river_score, 1.0 - prob)
        return Finding(self.id, "account", pid, severity, score, summary, evidence,
                       [e.event_id], e.ts, names.extra())

    # --- housekeeping --------------------------------------------------------------------
    def expire(self, now: float) -> None:
        # a subnet a waiting read will count against stays, and one a read just judged will
        # (its observation is folded after this sweep): engine time may have jumped past the
        # read (a topic running ahead)
        waits = {w[_LATE_OBS].entity_id for w in self._late.values()}
        if self._judged:
            waits |= self._judged
            self._judged.clear()
        for s in [s for s, src in self._sources.items()
                  if now - src.last > self.window and s not in waits]:
            del self._sources[s]
        sweep = now >= self._next_sweep  # profiles live for weeks: sweep them ~24 times per ttl
        if sweep or now >= self._memo_until or len(self._memo) > self.memo_max:
            self._memo.clear()  # raw ids live here at most memo_ttl
            self._memo_until = now + self.memo_ttl
        if not sweep:
            return
        ttl = self.profile_ttl
        self._next_sweep = now + max(300.0, ttl / 24)
        for h in [h for h, p in self._profiles.items() if now - p.last > ttl]:
            del self._profiles[h]

    def shed(self, cap: int) -> int:
        if len(self._memo) > self.memo_max:
            self._memo.clear()  # a cache of profiles by raw id: refilled as ids come again
        n = evict(self._profiles, cap, _last)
        if len(self._judged) > cap > 0:
            self._judged.clear()  # subnets kept from the next sweep only
        n += evict(self._late, cap, _late_ts)  # an evicted read is not judged (h-par7)
        due = self._late_due
        if len(due) > 2 * cap > 0:  # entries of reads a login took or the cap shed: rebuild
            due[:] = [(w[_LATE_DEADLINE], *k) for k, w in self._late.items()]
            heapq.heapify(due)
        return n + evict(self._sources, cap, _last, _reported)

    def tracked(self) -> dict[str, int]:
        return {"account": len(self._profiles) + len(self._late), "subnet": len(self._sources)}

    def warmup(self) -> float:
        peer = self._peers.get("customer")
        return 0.0 if peer is None else min(1.0, peer.learned / self.grace)


# a waiting read (``OverseasServer._late``): a list, so a checkpoint needs no new class
_LATE_DEADLINE, _LATE_TS, _LATE_OBS, _LATE_SESSION = range(4)


def _late_key(pid: str, key: tuple[str, Any], ctx: Context) -> tuple[int, str, str]:
    """A waiting read's key in ``OverseasServer._late``: the identity's digest and the place."""
    return (ctx.hash_id(pid), str(key[0]), str(key[1]))


def _late_ts(w: list[Any]) -> float:
    return float(w[_LATE_TS])


def _pct(p: float) -> str:
    return f"{100 * p:.1f}%" if p >= 0.001 else f"{100 * p:.2f}%"


DETECTOR = OverseasServer
