"""Red-team traffic: an independent generator of contract-v1 events with labelled attacks.

Written from the event contract (docs/contract.md) and the attack descriptions only, without
reading the detectors or the project's own simulator. It has its own normal-traffic model
(Korean customers on home broadband and mobile carriers, support staff, engineers, new hires,
internal services, key store and HR facts) with the confounders real traffic has, and a set of
named attack scenarios, each with its ground truth: the attacker's entities, the ids of the
attack's events, and when each victim was first exposed.

Everything random comes from one ``random.Random(seed)``: the same seed gives the same bytes.

>>> out = generate("normal", seed=1, small=True)
>>> out.events[0]["change"]
'key_issued'
>>> generate("normal", seed=1, small=True).lines() == out.lines()
True
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

__all__ = ["Params", "Generated", "SCENARIOS", "ATTACKS", "generate", "write"]

# The watch starts on Monday 2026-03-02 00:00 KST (2026-03-01 15:00 UTC).
T0 = datetime(2026, 3, 1, 15, 0, tzinfo=UTC).timestamp()
DAY = 86400.0
HOUR = 3600.0
KST = 9 * HOUR

# Customer activity by hour of day in KST (relative weights): quiet night, lunch and evening peaks.
DIURNAL = [
    1.2, 0.7, 0.4, 0.3, 0.3, 0.5, 1.0, 2.0, 3.0, 3.4, 3.6, 3.8,
    4.4, 4.0, 3.6, 3.6, 3.7, 3.9, 4.4, 5.2, 6.0, 6.2, 5.2, 2.8,
]  # fmt: skip

# Address space, checked against the bundled geoip2fast data (country, AS name) when written.
KR_BROADBAND = [  # (prefix, weight): KT, SK Broadband, LG U+ (POWERCOMM), D'LIVE cable
    ("121.134.0.0/17", 3), ("59.6.0.0/16", 3), ("112.160.0.0/16", 3), ("183.96.0.0/17", 2),
    ("125.128.0.0/18", 2), ("58.120.0.0/19", 2), ("180.64.0.0/17", 3), ("115.136.0.0/13", 4),
    ("182.208.0.0/12", 3), ("49.160.0.0/12", 3), ("124.5.0.0/16", 1),
]  # fmt: skip
KR_MOBILE = [  # carrier -> prefixes its CGNAT egress pools sit in
    ("SKT", ["223.32.0.0/11"]),
    ("KT", ["39.4.0.0/14", "110.68.0.0/14", "175.216.0.0/13", "118.234.0.0/15"]),
    ("LGU+", ["106.101.0.0/21"]),
]
HOSTING_ABROAD = [  # DigitalOcean, Hetzner, Vultr (Choopa), Scaleway
    "167.71.0.0/16", "134.209.0.0/16", "159.65.0.0/16", "46.101.0.0/16", "178.62.0.0/16",
    "64.227.0.0/17", "157.245.0.0/16", "143.198.0.0/17", "188.166.0.0/16", "104.248.0.0/16",
    "116.202.0.0/15", "65.108.0.0/15", "5.161.0.0/16", "135.181.0.0/16", "45.76.0.0/15",
    "207.148.0.0/19", "108.61.0.0/18", "51.158.0.0/15",
]  # fmt: skip
VPN_EXITS_ABROAD = ["212.102.40.0/22", "89.187.160.0/19", "138.199.0.0/22", "194.5.0.0/22"]
FOREIGN_LOCAL = ["126.0.0.0/12", "1.72.0.0/16", "113.144.0.0/13", "172.32.0.0/11", "73.0.0.0/13"]
OFFICE_EGRESS = ["211.234.10.5", "211.234.10.6", "211.234.10.7"]  # the company's own KR range
ENGINEER_VPN = "10.8.0.0/16"

CUSTOMER_RESOURCES = [("address", 5), ("order_history", 4), ("profile", 3), ("payment", 1)]
SUPPORT_RESOURCES = [("profile", 5), ("order_history", 4), ("address", 3), ("phone", 2),
                     ("email", 1), ("payment", 1)]  # fmt: skip


@dataclass(frozen=True)
class Params:
    """The normal-traffic model. Defaults: a mid-size shop, a few thousand principals a day."""

    days: int = 3
    customers: int = 20_000  # registered customers
    daily_active: float = 0.15  # share of customers who visit on a given day
    extra_visit_p: float = 0.3  # geometric: chance of one more visit the same day
    mobile_share: float = 0.55  # visits from a phone on a mobile carrier (CGNAT)
    cgnat_pool: int = 96  # public egress addresses per carrier, shared by all its users
    vpn_share: float = 0.02  # customers who always use a privacy VPN with exits abroad
    vpn_exits: int = 24  # exits, shared by every VPN customer
    traveller_share: float = 0.01  # active customers abroad on a given day
    traveller_local_p: float = 0.25  # a traveller's visit over a foreign hotel/ISP line
    home_ip_change_p: float = 0.03  # broadband lease renewed on a given day
    login_failure_p: float = 0.04
    late_login_p: float = 0.03  # logins that reach the pipeline after their accesses
    late_login_max_s: float = 60.0
    prewatch_p: float = 0.35  # day-0 visits that reuse a token issued before the watch
    token_lifetime_s: float = 86_400.0
    support_staff: int = 36
    support_median_per_day: float = 90.0
    heavy_support: int = 4  # steady ~280 customers a day each
    heavy_support_per_day: float = 280.0
    back_office: int = 8  # low steady volume (~10 a day)
    engineers: int = 12
    new_hires: int = 3  # start on day 1, ramp up over three days
    order_api_per_hour: float = 250.0  # svc-order-api, follows the customer curve
    notify_batch: int = 1500  # svc-notify-batch, nightly 02:00 KST
    billing_per_hour: float = 40.0  # svc-billing-recon, office hours on weekdays
    crm_per_hour: float = 60.0  # svc-crm-sync, around the clock
    exports_per_day: tuple[int, int] = (3, 6)  # svc-card-analytics exports, 10-80 rows each


SMALL = Params(days=1, customers=1500, support_staff=6, heavy_support=1, back_office=2,
               engineers=3, new_hires=1, order_api_per_hour=30, notify_batch=100,
               billing_per_hour=10, crm_per_hour=10)  # fmt: skip
# The 30-day scenario: 45 days of a smaller shop.
LONG = Params(days=45, customers=6000, daily_active=0.05, support_staff=10, heavy_support=1,
              back_office=4, engineers=4, new_hires=1, order_api_per_hour=20, notify_batch=150,
              billing_per_hour=6, crm_per_hour=6)  # fmt: skip


def _iso(ts: float) -> str:
    dt = datetime.fromtimestamp(round(ts, 3), UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _kst_hour(ts: float) -> int:
    return int(((ts + KST) % DAY) // HOUR)


def _day_start(day: int) -> float:
    return T0 + day * DAY


def _weekday(day: int) -> int:
    return day % 7  # day 0 is a Monday


@dataclass
class Attack:
    """Ground truth of one attack in a generated file."""

    name: str
    description: str
    start: float
    entities: set[tuple[str, str]] = field(default_factory=set)
    event_ids: set[str] = field(default_factory=set)
    victims: dict[str, float] = field(default_factory=dict)  # victim id -> first exposure ts
    weight: dict[str, int] = field(default_factory=dict)  # export rows behind one victim id
    decoys: set[str] = field(default_factory=set)  # attacker events that expose no one

    def expose(self, victim: str, ts: float, rows: int = 1) -> None:
        if victim not in self.victims or ts < self.victims[victim]:
            self.victims[victim] = ts
        if rows > 1:
            self.weight[victim] = rows

    def exposures(self) -> list[tuple[float, int]]:
        """(first-exposure time, customers exposed) in time order; an export exposes its rows."""
        return sorted((ts, self.weight.get(v, 1)) for v, ts in self.victims.items())

    def exposed_before(self, ts: float | None) -> int:
        return sum(n for t, n in self.exposures() if ts is None or t < ts)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "start": self.start,
            "entities": sorted([k, i] for k, i in self.entities),
            "event_ids": sorted(self.event_ids),
            "decoys": sorted(self.decoys),
            "victims": len(self.victims),
            "exposed": self.exposed_before(None),
            "exposures": [[round(t, 3), n] for t, n in self.exposures()],
        }


@dataclass
class Generated:
    scenario: str
    seed: int
    params: Params
    events: list[dict]
    attacks: list[Attack]
    start: float
    end: float

    def lines(self) -> list[str]:
        return [json.dumps(e, separators=(",", ":")) for e in self.events]

    def truth(self) -> dict:
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "start": self.start,
            "end": self.end,
            "days": self.params.days,
            "attacks": [a.to_json() for a in self.attacks],
        }


class _World:
    """Population, addresses and the event sink shared by normal traffic and attacks."""

    def __init__(self, p: Params, seed: int):
        self.p = p
        self.rng = random.Random(seed)
        self._rows: list[tuple[float, int, dict]] = []
        self._seq = 0
        self._ids: set[str] = set()
        r = self.rng
        self.customers = [f"cust-{i:07d}" for i in range(1, p.customers + 1)]
        # Each customer: a home line, a carrier, maybe a privacy VPN.
        self._bb = [(ipaddress.ip_network(n), w) for n, w in KR_BROADBAND]
        self.home: dict[str, str] = {}
        self.carrier: dict[str, int] = {}
        self.vpn_users: set[str] = set()
        for c in self.customers:
            self.home[c] = self._host(self._pick_weighted(self._bb))
            self.carrier[c] = r.choices(range(len(KR_MOBILE)), weights=[45, 35, 20])[0]
            if r.random() < p.vpn_share:
                self.vpn_users.add(c)
        self.cgnat = [
            [self._host(ipaddress.ip_network(r.choice(prefixes))) for _ in range(p.cgnat_pool)]
            for _, prefixes in KR_MOBILE
        ]
        self.vpn_exits = [self._host(ipaddress.ip_network(r.choice(VPN_EXITS_ABROAD)))
                          for _ in range(p.vpn_exits)]  # fmt: skip
        self.cust_keys = [("cust-jwt-2025b", 0.0), ("cust-jwt-2026a", _day_start(1))]

    # -- helpers ------------------------------------------------------------------------
    def _pick_weighted(self, items: list[tuple]):
        return self.rng.choices([i[0] for i in items], weights=[i[1] for i in items])[0]

    def _host(self, net: ipaddress._BaseNetwork) -> str:
        return str(net[self.rng.randrange(1, net.num_addresses - 1)])

    def new_id(self) -> str:
        while True:
            eid = f"{self.rng.getrandbits(64):016x}-{self.rng.getrandbits(32):08x}"
            if eid not in self._ids:
                self._ids.add(eid)
                return eid

    def session_id(self) -> str:
        return f"s-{self.rng.getrandbits(96):024x}"

    def cust_key(self, ts: float) -> str:
        key = self.cust_keys[0][0]
        for k, since in self.cust_keys:
            if ts >= since:
                key = k
        return key

    def day_time(self, day: int) -> float:
        hour = self.rng.choices(range(24), weights=DIURNAL)[0]
        return _day_start(day) + hour * HOUR + self.rng.random() * HOUR

    def emit(self, ev: dict, ts: float, *, delay: float = 0.0, epoch: bool = False,
             attack: Attack | None = None) -> dict:  # fmt: skip
        eid = self.new_id()
        out = {"event_id": eid, "ts": round(ts, 3) if epoch else _iso(ts)}
        out.update(ev)
        self._seq += 1
        self._rows.append((ts + delay, self._seq, out))
        if attack is not None:
            attack.event_ids.add(eid)
        return out

    def login(self, account: str, ts: float, ip: str, *, kind: str = "customer",
              method: str = "password", ok: bool = True, delay: float = 0.0,
              ua: str | None = None, attack: Attack | None = None) -> str | None:  # fmt: skip
        ev = {"account_id": account, "account_type": kind, "outcome": "success" if ok else "failure",
              "src_ip": ip, "method": method}  # fmt: skip
        if ua:
            ev["user_agent"] = ua
        sid = None
        if ok:
            sid = self.session_id()
            ev["session_id"] = sid
        self.emit(ev, ts, delay=delay, attack=attack)
        return sid

    def access(self, actor: str, subject: str, ts: float, ip: str, resource: str, *,
               kind: str = "customer", action: str = "read", records: int | None = None,
               session: str | None = None, iat: float | None = None, key: str | None = None,
               ua: str | None = None, epoch: bool = False, extra: dict | None = None,
               attack: Attack | None = None) -> dict:  # fmt: skip
        ev: dict = {"actor_id": actor, "actor_type": kind, "subject_id": subject,
                    "resource": resource, "action": action, "src_ip": ip}  # fmt: skip
        if records is not None:
            ev["records"] = records
        if session is not None:
            ev["session_id"] = session
        if iat is not None:
            ev["token_issued_at"] = _iso(iat)
        if key is not None:
            ev["key_id"] = key
        if ua:
            ev["user_agent"] = ua
        if extra:
            ev.update(extra)
        out = self.emit(ev, ts, epoch=epoch, attack=attack)
        if attack is not None:
            attack.expose(subject, ts, records or 1)
        return out

    def identity(self, change: str, ts: float, **kw) -> None:
        self.emit({"change": change, **kw}, ts)

    def rows(self) -> list[dict]:
        return [ev for _, _, ev in sorted(self._rows, key=lambda r: (r[0], r[1]))]


# -- normal traffic -------------------------------------------------------------------------
MOBILE_UA = ["ShopApp/7.12 (iOS 18.3)", "ShopApp/7.12 (Android 15)", "ShopApp/7.11 (Android 14)"]
DESKTOP_UA = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/133.0",
              "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) Safari/605.1.15"]  # fmt: skip


@dataclass
class Staff:
    id: str
    role: str  # support / back_office / engineer
    per_day: float
    start_day: int = 0
    end_ts: float = math.inf
    office_ip: str = OFFICE_EGRESS[0]


def _normal(w: _World, skip_staff: set[str] | frozenset = frozenset()) -> dict[str, Staff]:
    p, r = w.p, w.rng
    # Key store and HR facts known when the watch starts.
    w.identity("key_issued", T0, key_id="cust-jwt-2025b", owner_id="svc-auth")
    w.identity("key_issued", T0 + 1, key_id="emp-sso-2025", owner_id="svc-sso")
    for svc in SERVICES:
        w.identity("key_issued", T0 + 2, key_id=SERVICES[svc]["key"], owner_id=svc)
    # Customer signing key rotation on day 1: new logins sign with the new key.
    if p.days > 1:
        w.identity("key_issued", _day_start(1) - 600, key_id="cust-jwt-2026a", owner_id="svc-auth")

    staff: dict[str, Staff] = {}
    for i in range(p.support_staff):
        heavy = i < p.heavy_support
        per_day = (
            p.heavy_support_per_day
            if heavy
            else p.support_median_per_day * math.exp(r.gauss(0, 0.35))
        )
        staff[f"emp-sup-{i + 1:03d}"] = Staff(f"emp-sup-{i + 1:03d}", "support", per_day)
    for i in range(p.back_office):
        staff[f"emp-bo-{i + 1:03d}"] = Staff(
            f"emp-bo-{i + 1:03d}", "back_office", 10 * math.exp(r.gauss(0, 0.2))
        )
    for i in range(p.engineers):
        staff[f"emp-eng-{i + 1:02d}"] = Staff(f"emp-eng-{i + 1:02d}", "engineer", r.uniform(1, 6))
        w.identity(
            "key_issued", T0 + 3, key_id=f"pk-eng-{i + 1:02d}", owner_id=f"emp-eng-{i + 1:02d}"
        )
    for i in range(p.new_hires):
        sid = f"emp-sup-n{i + 1:02d}"
        staff[sid] = Staff(sid, "support", p.support_median_per_day, start_day=min(1, p.days - 1))
    for s in staff.values():
        s.office_ip = r.choice(OFFICE_EGRESS)
    # One ordinary departure: a support agent leaves at the end of day 0's shift.
    leaver = f"emp-sup-{p.support_staff:03d}"
    if leaver in staff and p.days > 1:
        staff[leaver].end_ts = _day_start(0) + 18 * HOUR
        w.identity("principal_terminated", staff[leaver].end_ts + 1800, principal_id=leaver)

    for day in range(p.days):
        _customers_day(w, day)
        for s in staff.values():
            if s.id not in skip_staff:
                _staff_day(w, s, day)
        _services_day(w, day)
    return staff


def _customers_day(w: _World, day: int) -> None:
    p, r = w.p, w.rng
    n_active = int(p.customers * p.daily_active * r.uniform(0.93, 1.07))
    for c in r.sample(w.customers, n_active):
        if r.random() < p.home_ip_change_p:
            w.home[c] = w._host(w._pick_weighted(w._bb))
        # A traveller stays in one place abroad that day: one hotel/ISP line there.
        abroad = None
        if r.random() < p.traveller_share:
            abroad = w._host(ipaddress.ip_network(r.choice(FOREIGN_LOCAL)))
        visits = 1
        while r.random() < p.extra_visit_p and visits < 6:
            visits += 1
        for _ in range(visits):
            _visit(w, c, w.day_time(day), day, abroad)


def _visit(w: _World, c: str, ts: float, day: int, abroad: str | None) -> None:
    p, r = w.p, w.rng
    traveller = abroad is not None
    mobile = r.random() < p.mobile_share
    if c in w.vpn_users:
        ip = r.choice(w.vpn_exits)
    elif traveller and r.random() < p.traveller_local_p:
        ip = abroad  # hotel wifi abroad
    elif mobile or traveller:  # roaming phones are home-routed: a KR carrier address
        ip = r.choice(w.cgnat[w.carrier[c]])
    else:
        ip = w.home[c]
    ua = r.choice(MOBILE_UA) if mobile or traveller else r.choice(DESKTOP_UA)
    if day == 0 and ts - T0 < p.token_lifetime_s and r.random() < p.prewatch_p:
        # A token issued before the watch began (no login in the stream).
        iat = ts - r.uniform(ts - T0 + 60, p.token_lifetime_s)
        sid, key = w.session_id(), w.cust_key(iat)
    else:
        if r.random() < p.login_failure_p:
            w.login(c, ts - r.uniform(5, 40), ip, ok=False, ua=ua)
        delay = r.uniform(1, p.late_login_max_s) if r.random() < p.late_login_p else 0.0
        method = r.choice(["password", "password", "mfa", "refresh"])
        sid = w.login(c, ts, ip, method=method, delay=delay, ua=ua)
        iat, key = ts, w.cust_key(ts)
    t = ts + r.uniform(0.3, 3)
    for _ in range(r.choice([1, 1, 2, 2, 3, 3, 4, 5, 6, 8])):
        res = w._pick_weighted(CUSTOMER_RESOURCES)
        w.access(c, c, t, ip, res, session=sid, iat=iat, key=key, ua=ua)
        t += r.expovariate(1 / 25)


def _staff_day(w: _World, s: Staff, day: int) -> None:
    r = w.rng
    if day < s.start_day or _day_start(day) > s.end_ts:
        return
    weekend = _weekday(day) >= 5
    if s.role == "support":
        if weekend and r.random() < 0.5:
            return
        n = s.per_day
        if day - s.start_day < 3 and s.id.startswith("emp-sup-n"):
            n *= (0.3, 0.6, 0.9)[day - s.start_day]  # a new hire ramps up
        n = max(0, int(r.gauss(n, 0.08 * n)))
        begin, length = 9 + r.uniform(-0.5, 0.5), 9.0
    elif s.role == "back_office":
        if weekend:
            return
        n = max(0, int(r.gauss(s.per_day, 2)))
        begin, length = 9.5, 8.0
    else:  # engineers: a few look-ups, sometimes on call at night over the VPN
        n = int(r.expovariate(1 / s.per_day)) if not weekend else 0
        begin, length = 10.0, 9.0
        if r.random() < 0.08:
            night = _day_start(day) + r.uniform(0, 5) * HOUR
            ip = w._host(ipaddress.ip_network(ENGINEER_VPN))
            sid = w.login(s.id, night, ip, kind="employee", method="sso")
            for j in range(r.randint(1, 4)):
                w.access(s.id, r.choice(w.customers), night + 30 + 60 * j, ip, "order_history",
                         kind="employee", session=sid, iat=night, key="emp-sso-2025")  # fmt: skip
    if n <= 0:
        return
    t = _day_start(day) + begin * HOUR
    ip = s.office_ip
    sid = w.login(s.id, t, ip, kind="employee", method="sso")
    iat = t
    step = length * HOUR / n
    for _ in range(n):
        t += r.uniform(0.2, 1.8) * step
        if t > s.end_ts:
            break
        if t - iat > 8 * HOUR:  # the SSO session is renewed during a long shift
            iat = t
            sid = w.login(s.id, t, ip, kind="employee", method="sso")
        subj = r.choice(w.customers)
        if r.random() < 0.15:
            w.access(s.id, subj, t, ip, "profile", kind="employee", action="search",
                     records=r.randint(1, 12), session=sid, iat=iat, key="emp-sso-2025")  # fmt: skip
        for _ in range(r.choice([1, 1, 2, 3])):
            w.access(s.id, subj, t, ip, w._pick_weighted(SUPPORT_RESOURCES), kind="employee",
                     session=sid, iat=iat, key="emp-sso-2025")  # fmt: skip
            t += r.uniform(2, 20)


SERVICES = {
    "svc-order-api": {
        "key": "api-order-01",
        "ips": ["10.10.1.11", "10.10.1.12", "10.10.1.13", "10.10.1.14"],
    },
    "svc-notify-batch": {"key": "api-notify-01", "ips": ["10.10.7.21"]},
    "svc-card-analytics": {"key": "api-cardana-01", "ips": ["10.10.9.31"]},
    "svc-billing-recon": {"key": "api-billing-01", "ips": ["10.20.5.11", "10.20.5.12"]},
    "svc-crm-sync": {"key": "api-crm-01", "ips": ["10.10.3.41"]},
}


def _svc(w: _World, svc: str, subj: str, ts: float, res: str, *, ip: str | None = None,
         action: str = "read", records: int | None = None, attack: Attack | None = None) -> None:  # fmt: skip
    conf = SERVICES[svc]
    w.access(svc, subj, ts, ip or w.rng.choice(conf["ips"]), res, kind="service", action=action,
             records=records, key=conf["key"], epoch=True, attack=attack)  # fmt: skip


def _poisson_times(w: _World, start: float, end: float, rate_per_h: float) -> Iterable[float]:
    t = start
    while True:
        t += w.rng.expovariate(rate_per_h / HOUR)
        if t >= end:
            return
        yield t


def _services_day(w: _World, day: int) -> None:
    p, r = w.p, w.rng
    d0 = _day_start(day)
    mean_w = sum(DIURNAL) / 24
    for h in range(24):  # the order API follows its customers
        for t in _poisson_times(
            w, d0 + h * HOUR, d0 + (h + 1) * HOUR, p.order_api_per_hour * DIURNAL[h] / mean_w
        ):
            _svc(
                w, "svc-order-api", r.choice(w.customers), t, r.choice(["address", "order_history"])
            )
    # Nightly notification batch, 02:00 KST, every night, a few minutes' run.
    t = d0 + 2 * HOUR + r.uniform(0, 120)
    for c in r.sample(w.customers, min(p.notify_batch, len(w.customers))):
        t += r.uniform(0.05, 0.25)
        _svc(w, "svc-notify-batch", c, t, r.choice(["email", "phone"]))
    # Billing reconciliation, weekday office hours.
    if _weekday(day) < 5:
        for t in _poisson_times(w, d0 + 9 * HOUR, d0 + 18 * HOUR, p.billing_per_hour):
            _svc(w, "svc-billing-recon", r.choice(w.customers), t, r.choice(["payment", "phone"]))
    # CRM sync: searches around the clock.
    for t in _poisson_times(w, d0, d0 + DAY, p.crm_per_hour):
        _svc(w, "svc-crm-sync", r.choice(w.customers), t, "profile", action="search",
             records=r.randint(1, 20))  # fmt: skip
    # Card analytics: a few small exports in office hours.
    for _ in range(r.randint(*p.exports_per_day)):
        t = d0 + r.uniform(10, 17) * HOUR
        _svc(w, "svc-card-analytics", r.choice(w.customers), t, "payment", action="export",
             records=r.randint(10, 80))  # fmt: skip


# -- attacks ----------------------------------------------------------------------------------
ATTACK_UA = "ShopApp/7.12 (Android 15)"  # the attacker copies the app's user agent


def _victim_pool(w: _World, exclude: set[str] = frozenset()) -> Callable[[], str]:
    """The attacker enumerates customer ids: each victim once, in an order of its own."""
    order = [c for c in w.customers if c not in exclude]
    w.rng.shuffle(order)
    it = itertools.cycle(order)  # wraps only in the small test populations
    return lambda: next(it)


def _kr_residential(w: _World, n: int) -> list[str]:
    """A residential proxy network's exits in Korea: home broadband lines, one per /24."""
    out: dict[str, str] = {}
    while len(out) < n:
        ip = w._host(w._pick_weighted(w._bb))
        out.setdefault(ip.rsplit(".", 1)[0], ip)
    return list(out.values())


def _hosting_24s(w: _World, n: int) -> list[str]:
    """Distinct /24s (as 'a.b.c') in hosting providers abroad."""
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        net = ipaddress.ip_network(w.rng.choice(HOSTING_ABROAD))
        p24 = w._host(net).rsplit(".", 1)[0]
        if p24 not in seen:
            seen.add(p24)
            out.append(p24)
    return out


def _mark_ips(a: Attack, ips: Iterable[str]) -> None:
    for ip in ips:
        a.entities.add(("src_ip", ip))


def _forged_read(w: _World, a: Attack, victim: str, ts: float, ip: str, *, session: bool = True,
                 iat: float | None, key: str | None, extra: dict | None = None) -> None:  # fmt: skip
    """What a forged customer token does: the victim 'views their own' address and orders."""
    sid = w.session_id() if session else None
    if sid:
        a.entities.add(("session", sid))
    a.entities.add(("account", victim))
    a.entities.add(("actor", victim))
    t = ts
    for res in ["address"] + (["order_history"] if w.rng.random() < 0.5 else []):
        w.access(victim, victim, t, ip, res, session=sid, iat=iat, key=key, ua=ATTACK_UA,
                 extra=extra, attack=a)  # fmt: skip
        t += w.rng.uniform(0.5, 4)


def _paced_residential(w: _World, a: Attack, *, start: float, hours: float, addrs: int,
                       per_addr_per_h: int, make: Callable[[float], dict]) -> None:  # fmt: skip
    """Each proxy exit serves per_addr_per_h accounts an hour, at random minutes."""
    ips = _kr_residential(w, addrs)
    _mark_ips(a, ips)
    nxt = _victim_pool(w)
    for h in range(int(hours)):
        for ip in ips:
            for _ in range(per_addr_per_h):
                ts = start + h * HOUR + w.rng.random() * HOUR
                _forged_read(w, a, nxt(), ts, ip, **make(ts))


def _old_iat(w: _World) -> Callable[[float], float]:
    return lambda ts: ts - w.rng.uniform(30, 400) * DAY


def atk_forged_old_iat(w: _World, a: Attack) -> None:
    old = _old_iat(w)
    _paced_residential(w, a, start=a.start, hours=4, addrs=240, per_addr_per_h=2,
                       make=lambda ts: {"iat": old(ts), "key": w.cust_key(ts)})  # fmt: skip
    a.entities.add(("key", w.cust_key(a.start)))


def atk_forged_unannounced_keys(w: _World, a: Attack) -> None:
    old = _old_iat(w)
    keys = [f"cust-jwt-{y}{c}" for y, c in
            [(2019, "a"), (2019, "b"), (2020, "a"), (2021, "a"), (2021, "c"), (2022, "b"), (2023, "a"), (2024, "b")]]  # fmt: skip
    a.entities.update(("key", k) for k in keys)
    _paced_residential(w, a, start=a.start, hours=4, addrs=240, per_addr_per_h=2,
                       make=lambda ts: {"iat": old(ts), "key": w.rng.choice(keys)})  # fmt: skip


def atk_no_session_id(w: _World, a: Attack) -> None:
    _paced_residential(w, a, start=a.start, hours=4, addrs=240, per_addr_per_h=2,
                       make=lambda ts: {"session": False, "iat": ts - w.rng.uniform(60, 3000),
                                        "key": w.cust_key(ts)})  # fmt: skip
    a.entities.add(("key", w.cust_key(a.start)))


def atk_hosting_rotation(w: _World, a: Attack) -> None:
    """One address per account; a /24 serves at most 2 accounts, then rests at least an hour."""
    pool = _hosting_24s(w, 160)
    uses: dict[str, list[float]] = {p: [] for p in pool}  # the current burst of each /24
    nxt = _victim_pool(w)
    used_ips: set[str] = set()
    for ts in _poisson_times(w, a.start, a.start + 6 * HOUR, 120):
        # a /24 in an open burst (one account, minutes ago) or rested for an hour
        ok = [p for p in pool if (len(uses[p]) == 1 and ts - uses[p][0] < 600)
              or not uses[p] or ts - uses[p][-1] >= HOUR]  # fmt: skip
        p24 = w.rng.choice(ok)
        uses[p24] = uses[p24] + [ts] if len(uses[p24]) == 1 and ts - uses[p24][0] < 600 else [ts]
        ip = f"{p24}.{w.rng.randrange(2, 254)}"
        while ip in used_ips:
            ip = f"{p24}.{w.rng.randrange(2, 254)}"
        used_ips.add(ip)
        _forged_read(w, a, nxt(), ts, ip, iat=ts - w.rng.uniform(30, 600), key=w.cust_key(ts))
    _mark_ips(a, used_ips)
    a.entities.add(("key", w.cust_key(a.start)))


def atk_coupang_obvious(w: _World, a: Attack) -> None:
    """The attack as first imagined: forged fresh tokens from three servers abroad."""
    ips = [f"{p}.{w.rng.randrange(2, 254)}" for p in _hosting_24s(w, 3)]
    _mark_ips(a, ips)
    nxt = _victim_pool(w)
    for t in _poisson_times(w, a.start, a.start + 3 * HOUR, 600):
        _forged_read(
            w, a, nxt(), t, w.rng.choice(ips), iat=t - w.rng.uniform(5, 600), key=w.cust_key(t)
        )
    a.entities.add(("key", w.cust_key(a.start)))


def atk_future_dated(w: _World, a: Attack) -> None:
    """One access dated 400 days ahead, ten minutes before the obvious attack starts."""
    ip = f"{_hosting_24s(w, 1)[0]}.77"
    victim = w.rng.choice(w.customers)
    ev = w.access(victim, victim, a.start - 600 + 400 * DAY, ip, "address", session=w.session_id(),
                  iat=a.start - 700, key=w.cust_key(a.start), ua=ATTACK_UA)  # fmt: skip
    a.decoys.add(ev["event_id"])
    # It arrives now, not 400 days on: move it to its place in the file.
    for i, (arr, seq, row) in enumerate(w._rows):
        if row is ev:
            w._rows[i] = (arr - 400 * DAY, seq, row)
    atk_coupang_obvious(w, a)


def atk_idor_ring(w: _World, a: Attack) -> None:
    """Sixty real, logged-in accounts each read ~4 other customers a day (days 1-3)."""
    ring = w.rng.sample(w.customers, 60)
    ring_set = set(ring)
    nxt = _victim_pool(w, ring_set)
    for acct in ring:
        a.entities.add(("account", acct))
        a.entities.add(("actor", acct))
    for day in range(1, w.p.days):
        for acct in ring:
            mobile = w.rng.random() < 0.5
            ip = w.rng.choice(w.cgnat[w.carrier[acct]]) if mobile else w.home[acct]
            ts = max(a.start, w.day_time(day))
            sid = w.login(acct, ts, ip, method="password", ua=ATTACK_UA)
            t = ts + w.rng.uniform(1, 5)
            w.access(
                acct, acct, t, ip, "profile", session=sid, iat=ts, key=w.cust_key(ts), ua=ATTACK_UA
            )
            for _ in range(max(1, round(w.rng.gauss(4, 1)))):
                t += w.rng.uniform(20, 400)
                w.access(acct, nxt(), t, ip, w.rng.choice(["address", "order_history"]), session=sid,
                         iat=ts, key=w.cust_key(ts), ua=ATTACK_UA, attack=a)  # fmt: skip


def atk_service_5x(w: _World, a: Attack) -> None:
    """The order API's key, used from one of its own hosts at 4x extra (5x in all) for 8 h."""
    svc = "svc-order-api"
    a.entities.update({("actor", svc), ("account", svc), ("key", SERVICES[svc]["key"])})
    nxt = _victim_pool(w)
    mean_w = sum(DIURNAL) / 24
    for h in range(8):
        t0 = a.start + h * HOUR
        rate = 4 * w.p.order_api_per_hour * DIURNAL[_kst_hour(t0)] / mean_w
        for t in _poisson_times(w, t0, t0 + HOUR, rate):
            _svc(
                w,
                svc,
                nxt(),
                t,
                w.rng.choice(["address", "order_history"]),
                ip="10.10.1.12",
                attack=a,
            )


def atk_service_night_new_ip(w: _World, a: Attack) -> None:
    """Malware on an internal host uses the billing service's key at night (SK Telecom)."""
    svc, ip = "svc-billing-recon", "10.77.3.25"
    a.entities.update(
        {("actor", svc), ("account", svc), ("key", SERVICES[svc]["key"]), ("src_ip", ip)}
    )
    nxt = _victim_pool(w)
    for night in range(2):
        t0 = a.start + night * DAY
        for t in _poisson_times(w, t0, t0 + 3 * HOUR, 150):
            _svc(w, svc, nxt(), t, w.rng.choice(["phone", "payment", "address"]), ip=ip, attack=a)


def atk_service_export_volume(w: _World, a: Attack) -> None:
    """The analytics key exports tens of thousands of rows per call (Lotte Card)."""
    svc = "svc-card-analytics"
    a.entities.update({("actor", svc), ("account", svc), ("key", SERVICES[svc]["key"])})
    nxt = _victim_pool(w)
    t = a.start
    for _ in range(5):
        _svc(
            w,
            svc,
            nxt(),
            t,
            "payment",
            action="export",
            records=w.rng.randint(20_000, 60_000),
            attack=a,
        )
        t += w.rng.uniform(10, 25) * 60


def atk_departed_key(w: _World, a: Attack) -> None:
    """Invented: the departed engineer's personal signing key (never revoked) signs fresh
    customer tokens, used through Korean residential proxies at one account per exit an hour."""
    key, owner = "sign-legacy-2021", "emp-eng-03"
    w.identity("key_issued", T0 + 4, key_id=key, owner_id=owner)
    w.identity("principal_terminated", _day_start(0) + 18 * HOUR, principal_id=owner)
    a.entities.add(("key", key))
    _paced_residential(w, a, start=a.start, hours=4, addrs=400, per_addr_per_h=1,
                       make=lambda ts: {"iat": ts - w.rng.uniform(30, 1800), "key": key})  # fmt: skip


def atk_spoofed_provenance(w: _World, a: Attack) -> None:
    """Invented: hosting servers abroad, the address written in IPv6 forms that carry the IPv4
    address (IPv4-mapped, 6to4), and country/asn fields claiming a Korean carrier."""
    v4 = [f"{p}.{w.rng.randrange(2, 254)}" for p in _hosting_24s(w, 24)]
    forms = []
    for ip in v4:
        n = int(ipaddress.IPv4Address(ip))
        forms.append(f"::ffff:{ip}")
        forms.append(str(ipaddress.IPv6Address((0x2002 << 112) | (n << 80) | 1)))
    _mark_ips(a, v4 + forms)
    nxt = _victim_pool(w)
    for t in _poisson_times(w, a.start, a.start + 3 * HOUR, 300):
        _forged_read(w, a, nxt(), t, w.rng.choice(forms), iat=t - w.rng.uniform(5, 900),
                     key=w.cust_key(t), extra={"country": "KR", "asn": 4766})  # fmt: skip
    a.entities.add(("key", w.cust_key(a.start)))


def atk_mobile_proxy_blend(w: _World, a: Attack) -> None:
    """Invented: forged fresh tokens through Korean mobile-carrier CGNAT exits (rented mobile
    proxies), the same addresses genuine phone users share; one account per exit per 30 min."""
    exits = [ip for pool in w.cgnat for ip in pool]
    _mark_ips(a, exits)
    nxt = _victim_pool(w)
    last: dict[str, float] = {}
    for t in _poisson_times(w, a.start, a.start + 6 * HOUR, 200):
        free = [ip for ip in exits if t - last.get(ip, -math.inf) >= 1800]
        ip = w.rng.choice(free)
        last[ip] = t
        _forged_read(w, a, nxt(), t, ip, iat=t - w.rng.uniform(5, 1800), key=w.cust_key(t))
    a.entities.add(("key", w.cust_key(a.start)))


def atk_slow_insider(w: _World, a: Attack) -> None:
    """A back-office employee (own ~10 a day) reads 40 more customers a day for 30 days."""
    insider = "emp-bo-001"
    a.entities.update({("actor", insider), ("account", insider)})
    nxt = _victim_pool(w)
    first = int((a.start - T0) // DAY)
    for day in range(first, min(first + 30, w.p.days)):
        if _weekday(day) >= 5:
            continue  # works weekdays only, like everyone on the team
        t = _day_start(day) + 9.5 * HOUR
        ip = OFFICE_EGRESS[0]
        sid = w.login(insider, t, ip, kind="employee", method="sso")
        for _ in range(50):  # 50 a day in all: ~10 for work, ~40 for sale
            t += w.rng.uniform(0.3, 1.6) * 8 * HOUR / 50
            own = w.rng.random() < 0.2
            w.access(insider, w.rng.choice(w.customers) if own else nxt(), t, ip,
                     w.rng.choice(["profile", "address", "order_history", "phone"]), kind="employee",
                     session=sid, iat=_day_start(day) + 9.5 * HOUR, key="emp-sso-2025",
                     attack=None if own else a)  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    name: str
    make: Callable[[_World, Attack], None] | None
    description: str
    start_day: int = 2
    start_hour_kst: float = 19.0
    params: Params = Params()
    skip_staff: frozenset = frozenset()


SCENARIOS: dict[str, Scenario] = {s.name: s for s in [
    Scenario("normal", None, "three days of attack-free traffic"),
    Scenario("forged_old_iat", atk_forged_old_iat,
             "forged customer tokens (real key, old token_issued_at, unissued session ids) via 240 "
             "Korean residential proxy exits, 2 accounts per exit per hour, 4 h"),
    Scenario("forged_unannounced_keys", atk_forged_unannounced_keys,
             "as forged_old_iat, signed with eight key ids the key store never announced"),
    Scenario("no_session_id", atk_no_session_id,
             "customer tokens with no session_id via 240 Korean residential exits, 2 per exit per hour, 4 h"),
    Scenario("hosting_rotation", atk_hosting_rotation,
             "forged fresh tokens from hosting servers abroad, one address per account, at most 2 "
             "accounts per /24, a used /24 rests an hour; 120 accounts/h for 6 h from 17:00 KST",
             start_hour_kst=17.0),
    Scenario("idor_ring", atk_idor_ring,
             "60 logged-in customer accounts each read ~4 other customers a day, days 1-3",
             start_day=1, start_hour_kst=0.0, params=Params(days=4)),
    Scenario("service_5x", atk_service_5x,
             "svc-order-api's key at 5x its usual rate from its usual host, 8 h from 10:00 KST",
             start_hour_kst=10.0),
    Scenario("service_night_new_ip", atk_service_night_new_ip,
             "svc-billing-recon's key from an internal host it never used, 01:00-04:00 KST, two nights",
             start_day=1, start_hour_kst=1.0),
    Scenario("service_export_volume", atk_service_export_volume,
             "svc-card-analytics exports 20,000-60,000 rows per call (usually 10-80), 5 calls",
             start_hour_kst=14.0),
    Scenario("slow_insider", atk_slow_insider,
             "a back-office employee (own ~10/day) reads 50 customers a day for 30 days",
             start_day=15, start_hour_kst=0.0, params=LONG, skip_staff=frozenset({"emp-bo-001"})),
    Scenario("coupang_obvious", atk_coupang_obvious,
             "control: forged fresh tokens from 3 hosting servers abroad, 600 accounts/h for 3 h"),
    Scenario("future_dated", atk_future_dated,
             "one access dated 400 days ahead, then coupang_obvious ten minutes later"),
    Scenario("departed_key", atk_departed_key,
             "invented: a departed engineer's unrevoked key signs fresh customer tokens, 400 Korean "
             "residential exits, 1 account per exit per hour, 4 h"),
    Scenario("spoofed_provenance", atk_spoofed_provenance,
             "invented: 24 hosting servers abroad written as IPv4-mapped / 6to4 IPv6 with "
             "country=KR asn=4766 filled in, 300 accounts/h for 3 h"),
    Scenario("mobile_proxy_blend", atk_mobile_proxy_blend,
             "invented: forged fresh tokens through Korean mobile-carrier CGNAT exits shared with "
             "real users, one account per exit per 30 min, 200 accounts/h for 6 h from 17:00 KST",
             start_hour_kst=17.0),
]}  # fmt: skip
ATTACKS = [n for n, s in SCENARIOS.items() if s.make is not None]


def generate(
    scenario: str, seed: int = 1, *, small: bool = False, params: Params | None = None
) -> Generated:
    """Events (arrival order) and ground truth of one scenario; ``small`` for tests."""
    sc = SCENARIOS[scenario]
    p = params or (SMALL if small else sc.params)
    if small and sc.make is not None:
        p = replace(p, days=max(p.days, sc.start_day + 1) if sc.name != "slow_insider" else 16)
    w = _World(p, seed)
    _normal(w, sc.skip_staff)
    if sc.name == "slow_insider":  # the insider's own ~10 a day before the attack
        _insider_baseline(w, "emp-bo-001", sc.start_day)
    attacks = []
    if sc.make is not None:
        start = _day_start(sc.start_day) + sc.start_hour_kst * HOUR
        a = Attack(sc.name, sc.description, start)
        sc.make(w, a)
        attacks.append(a)
    events = w.rows()
    return Generated(sc.name, seed, p, events, attacks, T0, _day_start(p.days))


def _insider_baseline(w: _World, insider: str, days: int) -> None:
    for day in range(days):
        if _weekday(day) >= 5:
            continue
        t = _day_start(day) + 9.5 * HOUR
        sid = w.login(insider, t, OFFICE_EGRESS[0], kind="employee", method="sso")
        iat = t
        for _ in range(max(1, int(w.rng.gauss(10, 2)))):
            t += w.rng.uniform(0.3, 1.6) * 8 * HOUR / 10
            w.access(insider, w.rng.choice(w.customers), t, OFFICE_EGRESS[0],
                     w.rng.choice(["profile", "address", "order_history", "phone"]), kind="employee",
                     session=sid, iat=iat, key="emp-sso-2025")  # fmt: skip


def write(gen: Generated, events_path: str, truth_path: str | None = None) -> None:
    with open(events_path, "w", encoding="utf-8") as f:
        for line in gen.lines():
            f.write(line + "\n")
    if truth_path:
        with open(truth_path, "w", encoding="utf-8") as f:
            json.dump(gen.truth(), f)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m simulation.redteam", description=__doc__.split("\n")[0]
    )
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--small", action="store_true")
    ap.add_argument("-o", "--out", required=True, help="events (JSON lines)")
    ap.add_argument("--truth", help="ground truth (JSON)")
    args = ap.parse_args(argv)
    write(generate(args.scenario, args.seed, small=args.small), args.out, args.truth)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
