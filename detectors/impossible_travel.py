"""impossible_travel — one account used from two countries faster than any traveller can move.

For each account the last *location* it was used from (successful logins and requests) is kept:
a country, read only from networks that say where a person is. Privacy relays, commercial VPN
exits, hosting and cloud networks and private addresses move with the service, not the person:
they are not locations and never start or end a journey. Moving inside one country (mobile
carrier hops, home to office) is no travel at all.

Home-country carrier addresses say which carrier a person has, not where they are: a roaming
phone's mobile data is home-routed, so a traveller abroad keeps showing up on an address of their
home carrier between uses of the hotel or café network. Two kinds are known (the home country is
``home_country``, else the most common country where accounts are first seen): an address of a
mobile-only carrier (``geo.mobile_carrier``, ``data/mobile_carriers.tsv``), and a carrier's NAT
pool learnt from the traffic: an IPv4 address of the home country that at least
``shared_accounts`` (6) distinct customers used within ``shared_window`` (a day), more than a
household shares at home (a family plan's lines included). Employees are not counted, so an
office's egress is no pool; a pool stays learnt ``shared_hold`` (a week) after its last use; under
``shared_accounts`` account digests are kept per address, and idle addresses go after a window.
Carriers whose one AS serves broadband and mobile (KDDI, SoftBank, Korea Telecom) cannot be told
by AS: their pools are found this way, a broadband line used by one household stays a place.
While the account's last location is abroad such an address ends no journey (the last location
stays the place abroad). When the account was last at home on one and its next use abroad is
too fast, with the same device (user agent) in another session, the owner may already be there
on their own phone: reported at info (evidence ``home_carrier``). Another device abroad minutes
after the owner's phone at home (a stolen password) still warns, and one session at both ends is
critical: the attacker cannot make the owner's address a pool, and must know the owner's exact
app and OS version to pass as their device (a user agent is no secret, so the session stays the
strong signal). Foreign mobile carriers stay locations. (Red team B's normal traffic, a
Japanese mobile operator: 6 of its 9 travel pages were such roaming phones, on DOCOMO, Rakuten
Mobile and learnt KDDI and SoftBank pools.)

When the account next shows up in another country, the distance between the two countries'
centroids (haversine, ``data/country_centroids.tsv``), shortened by half of each country's
radius so that a short hop across a border between two large countries is not a 2,000 km
"journey", is divided by the time between the two events. Above ``max_kmh`` (default 1,000
km/h, faster than an airliner) over at least ``min_km`` it pages on the account: a warning;
critical when the same session is used at both ends (a stolen token, not a second login by a
second device). When the far end is a refresh-token renewal (``method`` refresh: a
non-interactive sign-in, the app on a device the account enrolled at an earlier login renewing
its session, as a travelling phone on a hotel line or a household PC does) it is reported at
info: nobody typed a credential there (red-team normal traffic: 3 of the 6 travel pages left
were such renewals).

Victims: the page is about the account (its entity, in the clear: the one to lock). Its two
addresses and its session are named by digest (``address#...``, ``session#...``): either end may
be the owner at home, and a session id is a bearer credential. Countries and networks stay.

This is an exact check with no warm-up (a carrier pool is known once its customers have been
seen); state is one small record per account seen in the last ``ttl`` (a day: no journey between
centroids takes longer at 1,000 km/h) and one per home-country IPv4 address customers used in
the last ``shared_window`` (fewer than ``shared_accounts`` digests: at most ~0.7 KiB), both
capped.

>>> from detectors.engine import Engine, EngineConfig
>>> T0 = 1_750_723_200  # 2025-06-24T00:00:00Z
>>> eng = Engine(EngineConfig(detectors=("impossible_travel",)))
>>> _ = eng.process_obj({"event_id": "l1", "ts": T0 + 1000, "account_id": "c-1", "outcome": "success",
...                      "src_ip": "121.134.3.3", "session_id": "s-1"})
>>> a = eng.process_obj({"event_id": "l2", "ts": T0 + 1000 + 20 * 60, "account_id": "c-1",
...                      "outcome": "success", "src_ip": "95.24.1.1", "session_id": "s-2"})[0][0]
>>> a["severity"], a["entity"]
('warning', {'kind': 'account', 'id': 'c-1'})
>>> a["summary"]
'Account c-1 was used from RU (PVimpelCom) 20 min after KR (Korea Telecom): 3,250 km apart (at least 2,010 km allowing for country size) needs 6,040 km/h; no traveller exceeds 1,000 km/h.'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from heapq import heapify, heappop, heappush
from importlib import resources
from typing import TYPE_CHECKING, Any

from ._cap import evict
from .base import Detector, Finding, ev, iso
from .geo import mobile_carrier, mobile_network

if TYPE_CHECKING:
    from .engine import Context
    from .events import Event

EARTH_RADIUS_KM = 6371.0088

# Approximate radius (km) of the countries too large for a centroid to stand for them:
# sqrt(area / pi), stretched for long or scattered ones (Chile, Japan, Indonesia...).
# Areas from the CIA World Factbook, rounded. Every other country counts as ``DEFAULT_RADIUS``.
RADIUS_KM: dict[str, float] = {
    "RU": 2330, "CA": 1780, "US": 1770, "CN": 1750, "BR": 1650, "AU": 1560, "IN": 1020,
    "AR": 1100, "KZ": 930, "DZ": 870, "CD": 860, "GL": 830, "SA": 830, "MX": 900, "ID": 1500,
    "SD": 770, "LY": 750, "IR": 730, "MN": 700, "PE": 640, "TD": 640, "NE": 630, "AO": 630,
    "ML": 630, "ZA": 620, "CO": 600, "ET": 600, "BO": 590, "MR": 575, "EG": 565, "TZ": 555,
    "NG": 540, "VE": 540, "PK": 535, "NA": 510, "MZ": 600, "TR": 500, "CL": 1500, "ZM": 490,
    "MM": 550, "AF": 450, "SO": 500, "CF": 440, "UA": 440, "MG": 450, "KE": 435, "BW": 430,
    "FR": 420, "YE": 400, "TH": 450, "ES": 400, "TM": 395, "CM": 390, "PG": 450, "SE": 500,
    "UZ": 400, "MA": 375, "IQ": 375, "JP": 800, "NO": 700, "VN": 600, "DE": 340, "FI": 400,
    "MY": 600, "PH": 600, "IT": 500, "GB": 450, "NZ": 700, "PL": 315,
}
DEFAULT_RADIUS = 150.0


@lru_cache(maxsize=1)
def centroids() -> dict[str, tuple[float, float]]:
    """ISO alpha-2 -> (lat, lon) of the approximate country centroid (see the data file)."""
    out: dict[str, tuple[float, float]] = {}
    text = resources.files("detectors").joinpath("data/country_centroids.tsv").read_text()
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cc, lat, lon = line.split("\t")[:3]
        out[cc] = (float(lat), float(lon))
    return out


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in km between two (lat, lon) points in degrees."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@lru_cache(maxsize=65536)
def distance_km(a: str, b: str) -> float | None:
    """Centroid distance between two countries in km; None when either is unknown.

    >>> round(distance_km("KR", "JP")), distance_km("KR", "KR"), distance_km("KR", "??")
    (943, 0.0, None)
    """
    c = centroids()
    if a not in c or b not in c:
        return None
    return haversine_km(c[a], c[b])


def travel_km(a: str, b: str) -> float | None:
    """The least distance a person must cover between two countries (centroids less half of
    each country's radius), 0 for the same country, None when either is unknown."""
    d = distance_km(a, b)
    if d is None:
        return None
    if a == b:
        return 0.0
    return max(0.0, d - 0.5 * (RADIUS_KM.get(a, DEFAULT_RADIUS) + RADIUS_KM.get(b, DEFAULT_RADIUS)))


@dataclass(slots=True)
class _Where:
    """The last location of one account."""

    country: str
    org: str
    ts: float
    ip: str
    event_id: str
    session: str | None
    flagged: int = 0
    origin: str = ""  # where the account was before a flagged jump (the owner's side)
    asn: int | None = None  # the AS number of ``ip`` when known (a mobile-only carrier's?)
    ua: str | None = None  # the user agent of that last use (the device at the owner's end)

    def __setstate__(self, state: Any) -> None:
        """Pickles of records written before ``asn`` and ``ua`` restore with their defaults."""
        self.asn, self.ua = None, None
        for k, v in (state[1] if isinstance(state, tuple) else state).items():
            setattr(self, k, v)


@dataclass(slots=True)
class _Pool:
    """Distinct customers seen at one home-country IPv4 address: is it a carrier's NAT pool?"""

    seen: dict[int, float]  # account digest -> last time; fewer than ``shared_accounts`` entries
    last: float  # the address's last use
    until: float = 0.0  # a learnt pool until then (0: not learnt)


def _pool_last(p: _Pool) -> float:
    return p.last


def _pool_learnt(p: _Pool) -> bool:
    return p.until > 0.0



#: sweeps between two whole passes over the accounts (``ImpossibleTravel.expire``)
_PASSES = 6


def _where_ts(w: _Where) -> float:
    return w.ts


def _where_flagged(w: _Where) -> bool:
    return w.flagged > 0

class ImpossibleTravel(Detector):
    id = "impossible_travel"
    title = "Impossible travel"
    description = (
        "One account is used from two countries in less time than any traveller needs to go "
        "between them (residential and mobile networks only)."
    )
    severity = "warning"
    attack = ("T1078", "T1539", "T1550.004")  # Valid Accounts; Steal Session Cookie; Web Cookie
    status = "test"
    entity_kinds = ("account",)
    wants = frozenset({"login", "access"})
    triage = (
        "Check: both ends in the evidence (networks, devices, user agents), whether the second "
        "place logged in with a password or reused the first place's session, what the account "
        "read from the far place. False positives: a residential proxy or a mobile roaming "
        "address geolocated to the wrong country (a roaming phone's home-routed data on a "
        "home-country carrier address the detector does not know as one: add mobile-only ASes "
        "to data/mobile_carriers.tsv; NAT pools of carriers whose AS serves broadband too are "
        "learnt once 6 customers a day use an address; a phone and a hotel line with the same "
        "device but another session are info), a VPN or relay the network list does not "
        "know yet (add its AS to data/network_classes.tsv), two people sharing one account. "
        "Respond: end the account's sessions, force a password reset with MFA, check the "
        "changes made from the far place (addresses, payment methods)."
    )

    def __init__(self, max_kmh: float = 1000.0, min_km: float = 500.0, ttl: float = 86400.0,
                 location_classes: tuple[str, ...] = ("isp",),
                 principal_types: tuple[str, ...] = ("customer", "employee"),
                 memo_ttl: float = 3600.0, memo_max: int = 200_000,
                 home_country: str | None = None, shared_accounts: int = 6,
                 shared_window: float = 86400.0, shared_hold: float = 7 * 86400.0) -> None:
        self.max_kmh = max_kmh
        self.min_km = min_km
        self.ttl = ttl
        self.location_classes = frozenset(location_classes)
        self.principal_types = frozenset(principal_types)
        self.memo_ttl = memo_ttl
        self.memo_max = memo_max
        self._last: dict[int, _Where] = {}  # salted hash of the account -> last location
        self._memo: dict[str, int] = {}  # raw id -> its hash; transient (memo_ttl), saves ~2 µs
        self._next_sweep = 0.0
        self._memo_until = 0.0
        # transient (never in a checkpoint): the accounts that may go idle before the next
        # whole pass over ``_last``, by their time (``expire``)
        self._due: list[tuple[float, int]] | None = None
        self._due_until = -math.inf
        self._due_cut = -math.inf
        self.home_country = home_country
        self._countries: dict[str, int] = {}  # country where accounts were first seen -> count
        self._home: str | None = None  # the most common of them
        self.shared_accounts = shared_accounts
        self.shared_window = shared_window
        self.shared_hold = shared_hold
        # home-country IPv4 address -> the customers seen there (carrier NAT learning)
        self._pools: dict[str, _Pool] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("home_country", None)  # checkpoints written before home-routed roaming
        state.setdefault("_countries", {})
        state.setdefault("_home", None)
        state.setdefault("shared_accounts", 6)  # checkpoints written before carrier NAT learning
        state.setdefault("shared_window", 86400.0)
        state.setdefault("shared_hold", 7 * 86400.0)
        state.setdefault("_pools", {})
        self.__dict__.update(state)
        self._due, self._due_until, self._due_cut = None, -math.inf, -math.inf  # a whole pass

    def home(self) -> str | None:
        return self.home_country or self._home

    def _learn_country(self, country: str) -> None:
        c = self._countries[country] = self._countries.get(country, 0) + 1
        home = self._home
        if home is None or (country != home and c > self._countries.get(home, 0)):
            self._home = country

    def __getstate__(self) -> dict[str, Any]:
        """Checkpoints keep hashed state only: the raw-id memo is left out."""
        state = self.__dict__.copy()
        state["_memo"] = {}
        for k in ("_due", "_due_until", "_due_cut"):  # rebuilt by the next whole pass
            state.pop(k, None)
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
        net = e.net
        if net is None or net.net_class not in self.location_classes or net.country == "??":
            return []
        h = self._memo.get(pid)
        if h is None:
            h = self._memo[pid] = ctx.hash_one(pid)
        home = self.home_country or self._home
        if net.country == home and net.version == 4 and e.principal_type == "customer":
            self._learn(e.src_ip, h, e.ts)  # type: ignore[arg-type]  # logins and requests have a src_ip (decode requires it)
        w = self._last.get(h)
        if w is None:
            self._learn_country(net.country)
            self._last[h] = _Where(net.country, net.org, e.ts, e.src_ip, e.event_id,  # type: ignore[arg-type]  # logins and requests have a src_ip (decode requires it)
                                   e.session_id, asn=net.asn, ua=e.user_agent)
            if e.ts < self._due_cut:  # (late) may go idle before the next whole pass
                heappush(self._due, (e.ts, h))  # type: ignore[arg-type]  # a cut is set with the queue
            return []
        if (w.country != net.country and net.country == home
                and (mobile_carrier(net) or self.shared(e.src_ip, e.ts))):  # type: ignore[arg-type]  # logins and requests have a src_ip (decode requires it)
            return []  # abroad, on home-routed mobile data: the carrier's country, not theirs
        if w.country == net.country or e.ts < w.ts:  # same country, or late and out of order
            if e.ts >= w.ts:
                w.ts, w.ip, w.event_id, w.session = e.ts, e.src_ip, e.event_id, e.session_id  # type: ignore[assignment]  # logins and requests have a src_ip (decode requires it)
                w.asn, w.ua = net.asn, e.user_agent
            return []
        if w.flagged and net.country == w.origin:
            out = []  # back on the owner's side of a jump already reported
        else:
            out = self._judge(w, e, pid, ctx)
        self._last[h] = _Where(net.country, net.org, e.ts, e.src_ip, e.event_id,  # type: ignore[arg-type]  # logins and requests have a src_ip (decode requires it)
                               e.session_id, w.flagged + (1 if out else 0),
                               w.country if out else w.origin, net.asn, e.user_agent)
        return out

    def _learn(self, ip: str, h: int, ts: float) -> bool:
        """Counts a customer's use of ``ip`` (an IPv4 address of the home country); whether it is
        a carrier's NAT pool: used by at least ``shared_accounts`` distinct customers within
        ``shared_window``. A learnt pool stays one ``shared_hold`` after its last use. At most
        ``shared_accounts - 1`` digests per address."""
        pools = self._pools
        p = pools.get(ip)
        if p is None:
            pools[ip] = _Pool({h: ts}, ts)
            return False
        if ts > p.last:
            p.last = ts
        if p.until and p.until < ts:  # a pool no one used for ``shared_hold``: learnt again
            p.until, p.seen = 0.0, {}
        if p.until:
            if ts + self.shared_hold > p.until:
                p.until = ts + self.shared_hold
            return True
        seen = p.seen
        if seen.get(h, -math.inf) < ts:
            seen[h] = ts
        if len(seen) < self.shared_accounts:
            return False
        cut = ts - self.shared_window
        for k in [k for k, t in seen.items() if t < cut]:
            del seen[k]
        if len(seen) < self.shared_accounts:
            return False
        p.seen = {}
        p.until = ts + self.shared_hold
        return True

    def shared(self, ip: str, now: float) -> bool:
        """Whether ``ip`` is a learnt carrier NAT pool (many customers' address) at ``now``."""
        p = self._pools.get(ip)
        return p is not None and p.until >= now

    def _judge(self, w: _Where, e: Event, pid: str, ctx: Context) -> list[Finding]:
        net = e.net
        assert net is not None
        km = travel_km(w.country, net.country)
        if km is None or km < self.min_km:
            return []
        hours = max(e.ts - w.ts, 1.0) / 3600.0
        kmh = km / hours
        if kmh <= self.max_kmh:
            return []
        centre = distance_km(w.country, net.country) or 0.0
        same_session = e.session_id is not None and e.session_id == w.session
        # A refresh-token renewal is a non-interactive sign-in: the app on a device the account
        # enrolled at an earlier login renewing its own session (a phone that roamed onto a
        # hotel line, a household PC). No one typed a credential at the far end, so it is
        # reported at info; interactive logins and one session used at both ends still page.
        renewal = e.kind == "login" and e.method == "refresh" and not same_session
        # A home-country carrier address (a mobile-only carrier's, or a NAT pool many customers
        # share) says which carrier the person has, not where they are: a roaming phone's data
        # is home-routed. When the next use abroad is the same device (user agent) in another
        # session, the owner may already be there (the phone on a hotel line): info. Another
        # device abroad, or one session at both ends, still pages.
        roaming = (not same_session and e.user_agent is not None and e.user_agent == w.ua
                   and w.country == (self.home_country or self._home)
                   and (mobile_network(w.asn, w.org) or self.shared(w.ip, e.ts)))
        severity = "critical" if same_session else "info" if renewal or roaming else "warning"
        mins = (e.ts - w.ts) / 60
        gap = f"{mins:.0f} min" if mins >= 1 else f"{e.ts - w.ts:.0f} s"
        summary = (f"Account {pid} was used from {net.country} ({net.org or '?'}) {gap} after "
                   f"{w.country} ({w.org or '?'}): {_r(centre)} km apart (at least {_r(km)} km "
                   f"allowing for country size) needs {_r(kmh)} km/h; no traveller exceeds "
                   f"{_r(self.max_kmh)} km/h.")
        names = ctx.victims()
        if same_session:
            summary = (summary[:-1] + f"; the same session ({names('session', e.session_id)}) "  # type: ignore[arg-type]  # same_session: both events name it
                       "was used at both ends.")
        flight_h = km / self.max_kmh
        evidence = [
            ev("speed_kmh", round(kmh), f"<= {self.max_kmh:g} km/h",
               f"{_r(km)} km (centroids {_r(centre)} km less half of each country's radius) in "
               f"{gap}; the fastest plausible trip needs {flight_h:.1f} h"),
            ev("from", f"{w.country} {w.org} {names('address', w.ip)}", "last location of the account",
               f"at {iso(w.ts)}, event {w.event_id}"),
            ev("to", f"{net.country} {net.org} {names('address', e.src_ip)}",  # type: ignore[arg-type]  # logins and requests have a src_ip (decode requires it)
               "residential / mobile network",
               f"at {iso(e.ts)}, {e.kind}" + (f" of {e.resource}" if e.resource else "")),
            ev("same_session", same_session, "a new login at a new place",
               "the session presented at both places" if same_session else
               "different sessions: a second login (password or device) far away"),
        ]
        if renewal:
            evidence.append(ev("login_method", "refresh", "an interactive login (password, "
                               "MFA, SSO) pages", "the device's own refresh token renewed "
                               "its session: info only"))
        if roaming:
            evidence.append(ev("home_carrier", f"{w.country} {w.org}", "a fixed-line or foreign "
                               "network at the far end of a page",
                               "a home-country carrier address (mobile-only, or shared by many "
                               "customers: a NAT pool) and the same device abroad: home-routed "
                               "roaming data, info only"))
        score = min(1.0, 0.6 + 0.4 * (1 - self.max_kmh / kmh)) if kmh > 0 else 0.6
        if same_session:
            score = max(score, 0.95)
        return [Finding(self.id, "account", pid, severity, score, summary, evidence,
                        [w.event_id, e.event_id], e.ts, names.extra())]

    def expire(self, now: float) -> None:
        if now >= self._memo_until or len(self._memo) > self.memo_max:
            self._memo.clear()  # raw ids live here at most memo_ttl
            self._memo_until = now + self.memo_ttl
        if now < self._next_sweep:  # sweep the accounts ~24 times per ttl, not every call
            return
        step = max(300.0, self.ttl / 24)
        self._next_sweep = now + step
        last, ttl = self._last, self.ttl
        due = self._due
        if due is None or now > self._due_until:
            # A whole pass every _PASSES sweeps: the accounts idle past ``ttl`` go, and those
            # that may go before the next whole pass are queued by their time. An account's
            # time only grows, and one added later with an older time is queued then, so the
            # sweeps in between find exactly the accounts a whole pass would (a second of
            # slack in the cut for float rounding); they read the queue's head only.
            self._due_until = now + _PASSES * step
            cut = self._due_cut = self._due_until - ttl + 1.0
            dead: list[int] = []
            due = []
            for h, w in last.items():
                if now - w.ts > ttl:
                    dead.append(h)
                elif w.ts < cut:
                    due.append((w.ts, h))
            for h in dead:
                del last[h]
            pools, idle = self._pools, now - self.shared_window
            for ip in [ip for ip, p in pools.items()
                       if (p.until < now if p.until else p.last < idle)]:
                del pools[ip]  # a pool unused for ``shared_hold``, an address idle a window
            heapify(due)
            self._due = due
            return
        cut = self._due_cut
        again = []
        while due and now - due[0][0] > ttl:
            h = heappop(due)[1]
            q = last.get(h)
            if q is None:
                continue  # evicted at the cap
            if now - q.ts > ttl:
                del last[h]
            elif q.ts < cut:  # seen since it was queued, still before the cut
                again.append((q.ts, h))
        for item in again:
            heappush(due, item)

    def shed(self, cap: int) -> int:
        if len(self._memo) > self.memo_max:
            self._memo.clear()  # a cache of hashes: refilled as ids come again
        return (evict(self._last, cap, _where_ts, _where_flagged)
                + evict(self._pools, cap, _pool_last, _pool_learnt))

    def tracked(self) -> dict[str, int]:
        return {"account": len(self._last), "src_ip": len(self._pools)}


def _r(x: float) -> str:
    """Rounded for reading: 3 significant figures, thousands separated."""
    if x >= 1000:
        return f"{round(x, -int(math.floor(math.log10(x))) + 2):,.0f}"
    return f"{x:,.0f}"


DETECTOR = ImpossibleTravel
