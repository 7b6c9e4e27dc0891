"""Red team B: a second, independent red-team generator (issue 14).

Written from docs/contract.md, README.md, the issue's attack descriptions and public accounts
of the 2025 breaches only, without reading the detectors or the other generators. It models a
different company than the Coupang-like shop: **Kestrel Mobile**, a Japanese mobile operator
(subscribers on phones behind carrier CGNAT and on home broadband, call-centre agents, shop
staff, back-office analysts, engineers with personal API keys, internal provisioning /
notification / fraud / billing services, a corporate self-service web portal, an MVNO partner
and an insurance partner). Times are JST business rhythms; events are UTC.

Every attack parameter was fixed from what the attacker and the company would plausibly do
before the product was first run on these files, and has not been changed since (docs/redteam_b.md).

Usage: ``python -m simulation.redteam_b SCENARIO --seed N -o events.jsonl --truth truth.json``
(``--list`` prints the scenarios). One ``random.Random(seed)``; the same seed gives the same
bytes.
"""

from __future__ import annotations

import argparse
import calendar
import ipaddress
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field

DAY = 86400.0
HOUR = 3600.0
JST = 9 * HOUR
# Monday 2025-09-01 00:00 JST
T0 = float(calendar.timegm((2025, 8, 31, 15, 0, 0)))  # 2025-08-31T15:00:00Z

# --- address space (each checked with geoip2fast: tests/test_redteam_b.py) --------------------

MOBILE = {  # carrier -> CIDRs whose addresses the carrier hands out behind CGNAT (JP)
    "docomo": ["1.66.32.0/19", "49.98.0.0/20", "49.104.0.0/17"],
    "au": ["106.128.0.0/10", "111.236.0.0/14"],
    "softbank": ["126.200.0.0/16"],
    "rakuten": ["133.106.32.0/19"],
}
MOBILE_SHARE = {"docomo": 0.36, "au": 0.30, "softbank": 0.24, "rakuten": 0.10}
BROADBAND = [  # JP home broadband
    "153.128.0.0/10", "180.0.0.0/10", "118.0.0.0/12", "114.160.0.0/11",  # NTT OCN
    "126.32.0.0/12", "60.64.0.0/10",  # SoftBank BB
    "36.8.0.0/13", "27.80.0.0/12",  # KDDI
    "125.8.0.0/13",  # J:COM
    "220.100.0.0/17",  # IIJ
    "221.114.0.0/15",  # ARTERIA
]
ABROAD_LOCAL = {  # travellers on hotel / local networks
    "US": ["73.15.0.0/17", "98.210.0.0/15"],
    "KR": ["121.130.0.0/19", "114.30.0.0/19"],
    "TW": ["36.224.0.0/12", "118.160.0.0/13"],
    "TH": ["1.10.128.0/17"],
    "FR": ["90.12.0.0/18", "86.240.0.0/17"],
    "AU": ["180.150.0.0/17"],
    "VN": ["14.160.0.0/12"],
}
ABROAD_SHARE = {"US": 0.22, "KR": 0.22, "TW": 0.18, "TH": 0.12, "FR": 0.08, "AU": 0.08, "VN": 0.10}
VPN_EXITS = [  # privacy VPN exits shared by many subscribers
    "185.65.134.10", "185.65.134.11", "185.65.134.12",  # NL (31173 Services / Mullvad)
    "146.70.20.4", "146.70.20.5",  # DE (M247)
    "89.187.160.5", "89.187.160.6",  # JP (Datacamp)
    "89.44.10.20",  # AU (M247)
    "219.100.37.5", "219.100.37.6", "219.100.37.7",  # JP (VPN Gate / SoftEther)
]
OFFICE_TOKYO = ["210.138.20.10", "210.138.20.11", "210.138.20.12", "210.138.20.13"]  # IIJ
OFFICE_OSAKA = ["202.214.10.20", "202.214.10.21"]  # IIJ
SHOP_NETS = ["118.0.0.0/12", "114.160.0.0/11"]  # NTT business lines of the shops
PARTNER_MVNO_IPS = ["13.112.40.10", "13.112.40.11", "13.112.40.12"]  # AWS Tokyo
PARTNER_INS_IPS = ["49.212.10.4", "49.212.10.5"]  # SAKURA Internet, JP
ATTACK_VPS = {  # hosting abroad the attackers rent
    "NL": ["188.166.10.3", "188.166.12.9"],
    "GB": ["159.65.20.2"],
    "US": ["167.99.10.1", "167.99.12.40"],
    "SG": ["139.180.130.5"],
}
AWS_SINGAPORE = ["13.229.10.1", "13.229.10.2", "13.229.11.40"]

CUSTOMER_KEY = "kc-2021-03"  # the customer-token signing key (issued 2021, never rotated)
APP_UAS = [
    "KestrelApp/8.4.1 (iPhone; iOS 18.6)", "KestrelApp/8.4.1 (iPhone; iOS 17.7)",
    "KestrelApp/8.4.0 (Android 15; SC-51E)", "KestrelApp/8.4.1 (Android 14; SO-51D)",
    "KestrelApp/8.3.9 (Android 13; A302SH)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 Mobile Safari",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/139.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Safari/605.1.15",
]
STAFF_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/138.0 Edg/138.0"

# customer-page resources and their weights (self-service app / web)
CUST_RES = [("usage", 30), ("billing", 18), ("plan", 15), ("profile", 10), ("invoice", 10),
            ("address", 5), ("payment", 5), ("esim", 2), ("call_records", 3), ("points", 2)]
AGENT_RES = [("profile", 30), ("plan", 22), ("billing", 18), ("usage", 12), ("address", 8),
             ("payment", 4), ("esim", 3), ("call_records", 2.5), ("location", 0.5)]

# hour-of-day weights, JST
H_CUST = [3, 2, 1, 1, 1, 2, 4, 7, 9, 8, 8, 9, 12, 10, 8, 8, 8, 9, 11, 13, 14, 13, 10, 6]
H_PROV = [2, 1, 1, 1, 1, 1, 2, 4, 8, 11, 12, 12, 11, 12, 12, 12, 11, 11, 10, 9, 7, 5, 3, 2]
H_PARTNER = [3, 2, 1, 1, 1, 2, 3, 6, 9, 11, 11, 11, 10, 11, 11, 11, 10, 10, 9, 9, 8, 7, 5, 4]


def _cdf(weights):
    tot = float(sum(weights))
    out, acc = [], 0.0
    for w in weights:
        acc += w / tot
        out.append(acc)
    out[-1] = 1.0
    return out


@dataclass
class Net:
    lo: int
    size: int


def _nets(cidrs):
    out = []
    for c in cidrs:
        n = ipaddress.ip_network(c)
        out.append(Net(int(n.network_address), n.num_addresses))
    return out


def _fmt_ts(t: float) -> str:
    ms = int(round(t * 1000))
    s, m = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{m:03d}Z"


def _ip(n: int) -> str:
    return f"{n >> 24 & 255}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


@dataclass
class Attack:
    name: str
    story: str
    severity: str  # what a person should be told: warning / critical
    tell: str
    start: float = 0.0
    principals: set = field(default_factory=set)  # compromised principals (actor/account ids)
    keys: set = field(default_factory=set)
    sessions: set = field(default_factory=set)
    sources: set = field(default_factory=set)
    event_ids: set = field(default_factory=set)
    exposures: list = field(default_factory=list)  # (ts, subject, records)
    params: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


class Gen:
    """The company's normal traffic, with hooks for the attacks."""

    def __init__(self, seed: int, days: int, scale: float):
        self.r = random.Random(seed)
        self.seed = seed
        self.days = days
        self.scale = scale
        self.start = T0
        self.end = T0 + days * DAY
        self.out: list = []  # (deliver_t, seq, event)
        self.seq = 0
        self.attack: Attack | None = None
        self.h_cust = _cdf(H_CUST)
        self.h_prov = _cdf(H_PROV)
        self.h_partner = _cdf(H_PARTNER)
        self.cust_res = ([r for r, _ in CUST_RES], _cdf([w for _, w in CUST_RES]))
        self.agent_res = ([r for r, _ in AGENT_RES], _cdf([w for _, w in AGENT_RES]))
        self.mobile_nets = {c: _nets(v) for c, v in MOBILE.items()}
        self.bb_nets = _nets(BROADBAND)
        self.abroad_nets = {c: _nets(v) for c, v in ABROAD_LOCAL.items()}
        self.shop_nets = _nets(SHOP_NETS)
        self.login_lag: list = []  # (from, to, seconds): windows where the login pipeline lags
        self._build()

    # --- primitives ---------------------------------------------------------------------------

    def pick(self, names, cdf):
        x = self.r.random()
        for n, c in zip(names, cdf, strict=False):
            if x <= c:
                return n
        return names[-1]

    def rand_ip(self, nets) -> str:
        n = nets[self.r.randrange(len(nets))]
        return _ip(n.lo + 1 + self.r.randrange(max(1, n.size - 2)))

    def eid(self) -> str:
        return f"kx-{self.r.getrandbits(64):016x}"

    def sid(self) -> str:
        return f"s-{self.r.getrandbits(80):020x}"

    def hour_time(self, day: int, cdf) -> float:
        h = 0
        x = self.r.random()
        while cdf[h] < x:
            h += 1
        return self.start + day * DAY + h * HOUR + self.r.random() * HOUR

    def emit(self, ev: dict, t: float, *, malicious=False, late=None, producer="gw-1") -> dict:
        ev["event_id"] = self.eid()
        skew = self.skew.get(producer, 0.0)
        ev["ts"] = _fmt_ts(t + skew)
        if producer != "gw-1":
            ev["producer"] = producer
        deliver = t + 0.05 + self.r.random() * 0.8
        if late is not None:
            deliver = t + late
        elif "outcome" in ev:
            for a, b, lag in self.login_lag:
                if a <= t < b:
                    deliver = t + lag
            if self.r.random() < 0.02:  # logins delivered late, up to 60 s
                deliver = t + 2 + self.r.random() * 58
        self.seq += 1
        self.out.append((deliver, self.seq, ev))
        if self.r.random() < 0.002:  # at-least-once delivery: the same event again
            self.seq += 1
            self.out.append((deliver + 1 + self.r.random() * 29, self.seq, ev))
        if malicious and self.attack is not None:
            self.attack.event_ids.add(ev["event_id"])
        return ev

    def login(self, t, account, ip, *, atype="customer", outcome="success", method="password",
              ua=None, session=None, malicious=False, producer="gw-1"):
        ev = {"account_id": account, "outcome": outcome, "src_ip": ip, "method": method}
        if atype != "customer":
            ev["account_type"] = atype
        if ua:
            ev["user_agent"] = ua
        if outcome == "success":
            ev["session_id"] = session or self.sid()
        return self.emit(ev, t, malicious=malicious, producer=producer)

    def access(self, t, actor, subject, resource, ip, *, atype="customer", action="read",
               records=None, session=None, iat=None, key=None, ua=None, malicious=False,
               producer="gw-1"):
        ev = {"actor_id": actor, "subject_id": subject, "resource": resource, "src_ip": ip}
        if atype != "customer":
            ev["actor_type"] = atype
        if action != "read":
            ev["action"] = action
        if records is not None:
            ev["records"] = int(records)
        if session:
            ev["session_id"] = session
        if iat is not None:
            ev["token_issued_at"] = _fmt_ts(iat)
        if key:
            ev["key_id"] = key
        if ua:
            ev["user_agent"] = ua
        ev = self.emit(ev, t, malicious=malicious, producer=producer)
        if malicious and self.attack is not None:
            self.attack.exposures.append((t, subject, int(records or 1), action))
        return ev

    def identity(self, t, change, **kw):
        ev = {"change": change, **kw}
        return self.emit(ev, t, producer="idm")

    # --- the company --------------------------------------------------------------------------

    def _build(self):
        r, s = self.r, self.scale
        # producers: the API gateways; gw-3's clock runs 2.4 s fast, the IdP's 1.1 s slow
        self.skew = {"gw-1": 0.0, "gw-2": -0.6, "gw-3": 2.4, "idp": -1.1, "idm": 0.0}
        n_sub = int(24000 * s)
        ids = r.sample(range(10_000_000, 99_999_999), n_sub + int(900 * s) + 50)
        self.subs = [f"sub-{i:08d}" for i in ids[:n_sub]]
        self.corps = [f"corp-{i % 1_000_000:06d}" for i in ids[n_sub:n_sub + int(900 * s)]][:int(400 * s) + 10]
        self.corp_lines = {c: max(5, int(r.lognormvariate(3.3, 1.1))) for c in self.corps}
        self.sub_kind = {}
        self.sub_carrier = {}
        self.sub_home = {}
        self.sub_act = {}
        self.sub_vpn = {}
        carriers = list(MOBILE_SHARE)
        ccdf = _cdf(list(MOBILE_SHARE.values()))
        # CGNAT: each carrier's subscribers share a pool of public addresses (~40 per address)
        self.cgnat = {}
        for c in carriers:
            k = max(8, int(n_sub * MOBILE_SHARE[c] / 40))
            self.cgnat[c] = [self.rand_ip(self.mobile_nets[c]) for _ in range(k)]
        for sub in self.subs:
            self.sub_carrier[sub] = self.pick(carriers, ccdf)
            self.sub_kind[sub] = "bb" if r.random() < 0.45 else "mobile"
            if self.sub_kind[sub] == "bb":
                self.sub_home[sub] = self.rand_ip(self.bb_nets)
            # daily activity probability: most subscribers seldom open the app
            self.sub_act[sub] = min(0.9, r.betavariate(0.7, 3.2))
            if r.random() < 0.015:
                self.sub_vpn[sub] = r.choice(VPN_EXITS)
        self.sub_ua = {sub: r.choice(APP_UAS) for sub in self.subs}
        # trips abroad: one destination per trip, 2-8 days, so that ~1.2% of subscribers are
        # abroad on a given day
        self.trips = {}
        q = 0.012 * (self.days + 7) / 5.0
        dests, dcdf = list(ABROAD_SHARE), _cdf(list(ABROAD_SHARE.values()))
        for sub in self.subs:
            if r.random() < q:
                a = r.randint(-7, self.days - 1)
                self.trips[sub] = (self.pick(dests, dcdf), a, a + r.randint(2, 8) - 1)
        # family plans: 8% of subscribers hold 1-3 member lines
        self.family = {}
        pool = self.subs[:]
        for sub in self.subs:
            if r.random() < 0.08:
                self.family[sub] = [r.choice(pool) for _ in range(r.randint(1, 3))]
        self.mvno = [x for x in self.subs if r.random() < 0.06]
        # staff
        self.agents = []
        n_ag = max(12, int(110 * s))
        for i in range(n_ag):
            x = r.random()
            shift = "day" if x < 0.6 else ("evening" if x < 0.9 else "night")
            site = "tokyo" if r.random() < 0.65 else "osaka"
            rate = min(320, max(20, r.lognormvariate(math.log(90), 0.5)))
            vdi = f"10.20.{r.randrange(1, 60)}.{r.randrange(2, 250)}" if r.random() < 0.3 else None
            self.agents.append({"id": f"emp-a{1000 + i:04d}", "shift": shift, "site": site,
                                "rate": rate, "vdi": vdi, "from_day": 0, "to_day": 10**6,
                                "workdays": set(r.sample(range(7), 5))})
        self.shops = []
        for i in range(max(10, int(150 * s))):
            self.shops.append({"id": f"emp-s{3000 + i:04d}", "ip": self.rand_ip(self.shop_nets),
                               "rate": r.randint(3, 25), "off": set(r.sample(range(7), 2))})
        self.analysts = [{"id": f"emp-b{5000 + i:04d}"} for i in range(max(3, int(8 * s)))]
        self.engineers = []
        for i in range(max(5, int(15 * s))):
            eid = f"emp-e{7000 + i:04d}"
            self.engineers.append({"id": eid, "key": f"ak-eng-{7000 + i:04d}",
                                   "ip": f"10.30.{r.randrange(1, 20)}.{r.randrange(2, 250)}"})
        # new hires (agents starting on day 1 at a trainee's pace) and leavers
        for i in range(3 if self.days >= 2 else 0):
            self.agents.append({"id": f"emp-a{1900 + i:04d}", "shift": "day", "site": "tokyo",
                                "rate": 35.0, "vdi": None, "from_day": 1, "to_day": 10**6,
                                "workdays": {0, 1, 2, 3, 4}, "new": True})
        self.leavers = []
        for a in r.sample(self.agents[:n_ag], 2):
            a["to_day"] = 1  # last shift on day 0, terminated that evening
            self.leavers.append(a["id"])
        self.services = {
            "svc-provisioning": {"key": "ak-svc-prov-7", "ips": ["10.40.12.11", "10.40.12.12",
                                                                 "10.40.12.13", "10.40.12.14"]},
            "svc-notify": {"key": "ak-svc-notify-3", "ips": ["10.40.20.21", "10.40.20.22"]},
            "svc-fraud": {"key": "ak-svc-fraud-1", "ips": ["10.40.40.8"]},
            "svc-billing-batch": {"key": "ak-svc-bill-5", "ips": ["10.40.30.5"]},
            "svc-bizportal": {"key": "ak-bizportal-2", "ips": ["10.60.1.20", "10.60.1.21"]},
        }
        self.partner_keys = {"ptn-mvno-sakura": "pk-sakura-01", "ptn-insure-mobi": "pk-insure-04"}

    def subscriber_ip(self, sub: str) -> str:
        if sub in self.sub_vpn:
            return self.sub_vpn[sub]
        if self.sub_kind[sub] == "bb" and self.r.random() < 0.6:
            return self.sub_home[sub]
        return self.r.choice(self.cgnat[self.sub_carrier[sub]])

    # --- normal traffic -----------------------------------------------------------------------

    def normal(self):
        r = self.r
        # the key store's and HR's inventory at the start of watching
        t = self.start + 1.0
        self.identity(t, "key_issued", key_id=CUSTOMER_KEY, owner_id="team-platform-auth",
                      max_token_lifetime_s=43200)
        for name, sv in self.services.items():
            self.identity(t, "key_issued", key_id=sv["key"], owner_id=name)
        for name, k in self.partner_keys.items():
            self.identity(t, "key_issued", key_id=k, owner_id=name)
        for e in self.engineers:
            self.identity(t, "key_issued", key_id=e["key"], owner_id=e["id"])
        if self.engineers:  # suspended day 1 10:00 to day 3 09:00 (below): no work then
            self.engineers[0]["off_days"] = {1, 2}
        # the login pipeline falls 3 minutes behind for 20 minutes on day 1, 14:00 JST
        if self.days >= 2:
            a = self.start + DAY + 14 * HOUR
            self.login_lag.append((a, a + 1200, 180.0))
        for day in range(self.days):
            self.day_customers(day)
            self.day_agents(day)
            self.day_shops(day)
            self.day_backoffice(day)
            self.day_services(day)
            self.day_partners(day)
            for a in self.agents:
                if a["id"] in self.leavers and day == 0:  # after their last shift ends
                    self.identity(self.shift_window(a["shift"], 0)[1] + r.uniform(1, 3) * HOUR,
                                  "principal_terminated", principal_id=a["id"])
            if day == 1 and self.engineers:
                e = self.engineers[0]  # parental leave: suspended, back two days later
                self.identity(self.start + DAY + 10 * HOUR, "principal_suspended",
                              principal_id=e["id"])
            if day == 3 and self.engineers:
                self.identity(self.start + 3 * DAY + 9 * HOUR, "principal_reinstated",
                              principal_id=self.engineers[0]["id"])

    def day_customers(self, day: int):
        r = self.r
        wd = day % 7
        boost = 1.15 if wd >= 5 else 1.0
        for sub in self.subs:
            p = self.sub_act[sub] * boost
            if r.random() >= p:
                continue
            trip = self.trips.get(sub)
            abroad = None
            if trip is not None and trip[1] <= day <= trip[2]:
                # departure and return days: roaming only; in between, local networks too
                abroad = trip[0] if trip[1] < day < trip[2] else "roaming"
            n = 1 + (r.random() < 0.35) + (r.random() < 0.12)
            for _ in range(n):
                t = self.hour_time(day, self.h_cust)
                self.customer_session(sub, t, abroad=abroad)
        # tokens issued before the watch began (up to the key's 12 h lifetime), used on day 0
        if day == 0:
            for sub in r.sample(self.subs, int(len(self.subs) * 0.04)):
                iat = self.start - r.random() * 11.5 * HOUR
                t = self.start + r.random() * (iat + 12 * HOUR - self.start)
                sess = self.sid()
                ip = self.subscriber_ip(sub)
                for k in range(r.randint(1, 3)):
                    res = self.pick(*self.cust_res)
                    self.access(t + k * r.uniform(3, 40), sub, sub, res, ip, session=sess,
                                iat=iat, key=CUSTOMER_KEY, ua=self.sub_ua[sub])

    def customer_session(self, sub: str, t: float, abroad=None):
        r = self.r
        if t >= self.end:
            return
        if abroad in self.abroad_nets and sub not in self.sub_vpn and r.random() < 0.35:
            # on a hotel / local network in the trip's country; else roaming, home-routed
            ip = self.rand_ip(self.abroad_nets[abroad])
        else:
            ip = self.subscriber_ip(sub)
        ua = self.sub_ua[sub]
        producer = "gw-3" if r.random() < 0.25 else ("gw-2" if r.random() < 0.4 else "gw-1")
        if r.random() < 0.03:  # a mistyped password first
            self.login(t - r.uniform(5, 40), sub, ip, outcome="failure", ua=ua, producer="idp")
        x = r.random()
        method = "password" if x < 0.55 else ("mfa" if x < 0.72 else "refresh")
        sess = self.sid()
        self.login(t, sub, ip, method=method, ua=ua, session=sess, producer="idp")
        n = 1 + int(r.expovariate(0.45))
        tt = t
        for _ in range(min(n, 12)):
            tt += r.uniform(1.5, 90)
            res = self.pick(*self.cust_res)
            action = "update" if (res in ("address", "plan", "payment") and r.random() < 0.05) else "read"
            self.access(tt, sub, sub, res, ip, action=action, session=sess, iat=t,
                        key=CUSTOMER_KEY, ua=ua, producer=producer)
        if sub in self.family and r.random() < 0.3:
            for m in self.family[sub][: r.randint(1, len(self.family[sub]))]:
                tt += r.uniform(2, 60)
                self.access(tt, sub, m, r.choice(["usage", "billing", "plan"]), ip,
                            session=sess, iat=t, key=CUSTOMER_KEY, ua=ua, producer=producer)
        if r.random() < 0.08:  # the app reopened hours later on the same token
            t2 = t + r.uniform(1, 11) * HOUR
            if t2 < self.end:
                ip2 = ip if r.random() < 0.5 else self.subscriber_ip(sub)
                self.access(t2, sub, sub, self.pick(*self.cust_res), ip2, session=sess,
                            iat=t, key=CUSTOMER_KEY, ua=ua, producer=producer)

    def shift_window(self, shift: str, day: int):
        base = self.start + day * DAY
        if shift == "day":
            return base + 9 * HOUR, base + 18 * HOUR
        if shift == "evening":
            return base + 13 * HOUR, base + 22 * HOUR
        return base + 22 * HOUR, base + 31 * HOUR

    def agent_ip(self, a) -> str:
        if a["vdi"]:
            return a["vdi"]
        return self.r.choice(OFFICE_TOKYO if a["site"] == "tokyo" else OFFICE_OSAKA)

    def day_agents(self, day: int):
        for a in self.agents:
            if not (a["from_day"] <= day < a["to_day"]) or (day % 7) not in a["workdays"]:
                continue
            self.agent_day(a, day)

    def agent_day(self, a, day, *, session=None):
        r = self.r
        lo, hi = self.shift_window(a["shift"], day)
        ip = self.agent_ip(a)
        sess = session or self.sid()
        a.setdefault("sessions", {})[day] = (sess, lo, hi, ip)
        self.login(lo - r.uniform(60, 900), a["id"], ip, atype="employee", method="sso",
                   session=sess, ua=STAFF_UA, producer="idp")
        n = max(1, int(r.gauss(a["rate"], a["rate"] * 0.15)))
        for _ in range(n):
            t = r.uniform(lo, hi - 300)
            if t >= self.end:
                continue
            self.agent_case(a, t, ip, sess, r.choice(self.subs))
        return sess

    def agent_case(self, a, t, ip, sess, subject, *, malicious=False, resources=None):
        r = self.r
        if resources is None and r.random() < 0.6:
            self.access(t, a["id"], subject, "profile", ip, atype="employee", action="search",
                        records=r.randint(1, 4), session=sess, ua=STAFF_UA, malicious=malicious)
            t += r.uniform(3, 20)
        res = resources or [self.pick(*self.agent_res) for _ in range(r.randint(1, 4))]
        for x in res:
            self.access(t, a["id"], subject, x, ip, atype="employee", session=sess,
                        ua=STAFF_UA, malicious=malicious)
            t += r.uniform(4, 120)

    def day_shops(self, day: int):
        r = self.r
        for s in self.shops:
            if day % 7 in s["off"]:
                continue
            base = self.start + day * DAY
            sess = self.sid()
            self.login(base + 9.5 * HOUR + r.uniform(0, 1200), s["id"], s["ip"], atype="employee",
                       method="sso", session=sess, ua=STAFF_UA, producer="idp")
            for _ in range(max(0, int(r.gauss(s["rate"], 3)))):
                t = base + r.uniform(10 * HOUR, 20 * HOUR)
                sub = r.choice(self.subs)
                for x in r.sample(["profile", "plan", "esim", "payment", "billing"], r.randint(1, 3)):
                    self.access(t, s["id"], sub, x, s["ip"], atype="employee", session=sess,
                                ua=STAFF_UA)
                    t += r.uniform(20, 300)

    def day_backoffice(self, day: int):
        r = self.r
        if day % 7 >= 5:
            return
        base = self.start + day * DAY
        for b in self.analysts:
            ip = r.choice(OFFICE_TOKYO)
            sess = self.sid()
            self.login(base + 9 * HOUR + r.uniform(0, 1800), b["id"], ip, atype="employee",
                       method="sso", session=sess, ua=STAFF_UA, producer="idp")
            for _ in range(r.randint(0, 3)):
                t = base + r.uniform(10 * HOUR, 18 * HOUR)
                corp = r.choice(self.corps)
                self.access(t, b["id"], corp, "invoice", ip, atype="employee", action="export",
                            records=min(5000, self.corp_lines[corp] * r.randint(1, 3)),
                            session=sess, ua=STAFF_UA)
        for e in self.engineers:
            if day >= e.get("to_day", 10**6) or day in e.get("off_days", ()) or r.random() < 0.5:
                continue
            for _ in range(r.randint(1, 5)):  # debugging a subscriber's ticket
                t = base + r.uniform(10 * HOUR, 19 * HOUR)
                self.access(t, e["id"], r.choice(self.subs), r.choice(["profile", "plan", "esim"]),
                            e["ip"], atype="employee", key=e["key"], ua="curl/8.5.0")

    def day_services(self, day: int):
        r, s = self.r, self.scale
        base = self.start + day * DAY
        # provisioning: SIM activations and changes read USIM and HSS data
        sv = self.services["svc-provisioning"]
        for _ in range(int(r.gauss(4200, 200) * s)):
            t = self.hour_time(day, self.h_prov)
            sub = r.choice(self.subs)
            ip = r.choice(sv["ips"])
            self.access(t, "svc-provisioning", sub, "usim", ip, atype="service", key=sv["key"])
            self.access(t + r.uniform(0.05, 2), "svc-provisioning", sub, "hss_profile", ip,
                        atype="service", key=sv["key"])
        # notifications: steady, plus the 10:00 campaign every day
        sv = self.services["svc-notify"]
        for _ in range(int(r.gauss(2600, 150) * s)):
            t = self.hour_time(day, self.h_cust)
            self.access(t, "svc-notify", r.choice(self.subs), r.choice(["phone", "email"]),
                        r.choice(sv["ips"]), atype="service", key=sv["key"])
        for sub in r.sample(self.subs, int(len(self.subs) * 0.08)):
            t = base + 10 * HOUR + r.random() * 1800
            self.access(t, "svc-notify", sub, "phone", r.choice(sv["ips"]), atype="service",
                        key=sv["key"])
        # fraud scoring, all day
        sv = self.services["svc-fraud"]
        for _ in range(int(r.gauss(1200, 60) * s)):
            t = base + r.random() * DAY
            self.access(t, "svc-fraud", r.choice(self.subs), r.choice(["usage", "call_records"]),
                        sv["ips"][0], atype="service", key=sv["key"])
        # nightly billing batch, 02:00-03:30 JST: one export per corporate account in the cycle
        sv = self.services["svc-billing-batch"]
        t = base + 2 * HOUR + r.uniform(0, 300)
        for corp in self.corps[day % 30::30]:
            self.access(t, "svc-billing-batch", corp, "invoice", sv["ips"][0], atype="service",
                        action="export", records=self.corp_lines[corp], key=sv["key"])
            t += r.uniform(20, 120)
        # consumer bills run in shards every night too
        for k in range(12):
            self.access(t, "svc-billing-batch", self.subs[(day * 12 + k) % len(self.subs)],
                        "invoice", sv["ips"][0], atype="service", action="export",
                        records=max(1, len(self.subs) // 30 // 12), key=sv["key"])
            t += r.uniform(30, 90)
        # the corporate self-service portal (web app) exports lines for corporate admins
        sv = self.services["svc-bizportal"]
        n = r.randint(30, 60) if day % 7 < 5 else r.randint(2, 8)
        n = max(2, int(n * s / 0.6))
        for _ in range(n):
            t = base + r.uniform(9 * HOUR, 19 * HOUR)
            self.bizportal_export(t, r.choice(self.corps), r.randint(10, 80))

    def bizportal_export(self, t, corp, records, *, ip=None, malicious=False):
        sv = self.services["svc-bizportal"]
        self.access(t, "svc-bizportal", corp, "invoice_lines", ip or self.r.choice(sv["ips"]),
                    atype="service", action="export", records=records, key=sv["key"],
                    malicious=malicious)

    def day_partners(self, day: int):
        r, s = self.r, self.scale
        base = self.start + day * DAY
        # MVNO partner: its own subscribers only; key rotated on day 1 (new key 09:00, switch
        # 15:00, old key revoked day 2 09:00)
        if day == 1:
            self.identity(base + 9 * HOUR, "key_issued", key_id="pk-sakura-02",
                          owner_id="ptn-mvno-sakura")
        if day == 2:
            self.identity(base + 9 * HOUR, "key_revoked", key_id="pk-sakura-01")
        switch = self.start + DAY + 15 * HOUR
        for _ in range(int(r.gauss(3000, 150) * s)):
            t = self.hour_time(day, self.h_partner)
            key = "pk-sakura-01" if t < switch else "pk-sakura-02"
            self.access(t, "ptn-mvno-sakura", r.choice(self.mvno), r.choice(["plan", "usim", "usage"]),
                        r.choice(PARTNER_MVNO_IPS), atype="service", key=key)
        if day % 7 < 6:
            for _ in range(int(r.gauss(320, 30) * s)):
                t = base + r.uniform(9 * HOUR, 19 * HOUR)
                self.access(t, "ptn-insure-mobi", r.choice(self.subs), r.choice(["profile", "device"]),
                            r.choice(PARTNER_INS_IPS), atype="service", key="pk-insure-04")

    def partner_key_at(self, t):
        return "pk-sakura-01" if t < self.start + DAY + 15 * HOUR else "pk-sakura-02"

    # --- output -------------------------------------------------------------------------------

    def lines(self):
        self.out.sort(key=lambda x: (x[0], x[1]))
        return [json.dumps(ev, separators=(",", ":")) for _, _, ev in self.out]


# --- the attacks ------------------------------------------------------------------------------


def _resi_proxy(g: Gen) -> str:
    """An exit of a residential proxy network in Japan: a home broadband or mobile address."""
    if g.r.random() < 0.7:
        return g.rand_ip(g.bb_nets)
    c = g.pick(list(MOBILE_SHARE), _cdf(list(MOBILE_SHARE.values())))
    return g.rand_ip(g.mobile_nets[c])


def a_forged_resi_slow(g: Gen, at: Attack):
    """Coupang, adapted: tokens forged with the current customer signing key, slowly, from
    Japanese residential proxies, each exit used for one or two accounts, fresh token_issued_at."""
    r = g.r
    p = at.params
    t_start = g.start + p["start_day"] * DAY + 9 * HOUR
    at.start = t_start
    victims = [s for s in g.subs]
    r.shuffle(victims)
    vi = 0
    at.keys.add(CUSTOMER_KEY)
    for day in range(p["start_day"], g.days):
        n = max(1, int(r.gauss(p["per_day"], p["per_day"] * 0.15)))
        ip, used = _resi_proxy(g), 0
        times = sorted(g.start + day * DAY + r.uniform(8 * HOUR, 23 * HOUR) for _ in range(n))
        for t in times:
            if t < t_start or vi >= len(victims):
                continue
            sub = victims[vi]
            vi += 1
            if used >= r.randint(1, 2):
                ip, used = _resi_proxy(g), 0
            used += 1
            at.sources.add(ip)
            sess = g.sid()
            at.sessions.add(sess)
            iat = t - r.uniform(120, 2400)
            ua = r.choice(APP_UAS)
            tt = t
            for res in r.sample(["profile", "address", "plan", "billing", "esim"], r.randint(2, 4)):
                g.access(tt, sub, sub, res, ip, session=sess, iat=iat, key=CUSTOMER_KEY, ua=ua,
                         malicious=True, producer=r.choice(["gw-1", "gw-2", "gw-3"]))
                tt += r.uniform(2, 25)


def a_departed_engineer_key(g: Gen, at: Attack):
    """A departed engineer's personal API key, never revoked, used once a day from home."""
    r = g.r
    e = g.engineers[-1]
    at.principals.add(e["id"])
    at.keys.add(e["key"])
    g.identity(g.start + DAY + 10 * HOUR, "principal_terminated", principal_id=e["id"])
    for day in range(2, g.days):
        t = g.start + day * DAY + r.uniform(21 * HOUR, 23.5 * HOUR)
        ip = r.choice([g.rand_ip(g.bb_nets)])
        at.sources.add(ip)
        at.start = at.start or t
        sub = r.choice(g.subs)
        g.access(t, e["id"], sub, "profile", ip, atype="employee", action="search",
                 records=r.randint(40, 120), key=e["key"], ua="python-requests/2.32.3",
                 malicious=True)
        for _ in range(r.randint(2, 5)):
            t += r.uniform(5, 60)
            g.access(t, e["id"], r.choice(g.subs), r.choice(["address", "usim", "call_records"]),
                     ip, atype="employee", key=e["key"], ua="python-requests/2.32.3",
                     malicious=True)


def a_stolen_agent_session(g: Gen, at: Attack):
    """An infostealer on a day-shift agent's PC: each morning the SSO session goes to the
    attacker, who reads from a residential proxy in Japan during the shift at 30% of the
    agent's own pace."""
    r = g.r
    a = g.victim_agent
    at.principals.add(a["id"])
    for day in range(g.days):
        if day < 2:
            continue
        sess, lo, hi, office_ip = a["sessions"][day]
        at.sessions.add(sess)
        ip = _resi_proxy(g)
        at.sources.add(ip)
        n = max(3, int(a["rate"] * 0.3))
        for _ in range(n):
            t = r.uniform(lo + HOUR, hi - HOUR)
            if at.start is None or t < at.start:
                at.start = t
            g.agent_case(a, t, ip, sess, r.choice(g.subs), malicious=True,
                         resources=r.sample(["profile", "address", "esim", "payment", "plan"], 2))


def a_svc_malware_subnet(g: Gen, at: Attack):
    """SK Telecom, adapted: malware on a host in the provisioning service's own subnet reuses
    its API key at its busy hours, reading the same USIM/HSS resources for 60% more
    subscribers than the service does."""
    r = g.r
    sv = g.services["svc-provisioning"]
    ip = "10.40.12.37"
    at.sources.add(ip)
    at.principals.add("svc-provisioning")
    at.keys.add(sv["key"])
    at.start = g.start + 2 * DAY + 10 * HOUR
    per_day = int(4200 * g.scale * 0.6)
    for day in range(2, g.days):
        for _ in range(per_day):
            t = g.hour_time(day, g.h_prov)
            lo_h = (t - g.start) % DAY / HOUR
            if t < at.start or not (9 <= lo_h < 20):
                continue
            sub = r.choice(g.subs)
            g.access(t, "svc-provisioning", sub, "usim", ip, atype="service", key=sv["key"],
                     malicious=True)
            g.access(t + r.uniform(0.05, 2), "svc-provisioning", sub, "hss_profile", ip,
                     atype="service", key=sv["key"], malicious=True)


def a_export_creep(g: Gen, at: Attack):
    """Lotte Card, adapted: a web shell on the corporate portal's web server calls the export
    API through the portal's own credential, from the portal's own host, four times a
    day; records per export start at the portal's usual size and grow 25% a day."""
    r = g.r
    p = at.params
    ip = g.services["svc-bizportal"]["ips"][1]
    at.sources.add(ip)
    at.principals.add("svc-bizportal")
    at.keys.add(g.services["svc-bizportal"]["key"])
    records = float(p["first_records"])
    for day in range(p["start_day"], g.days):
        for _ in range(p["per_day"]):
            t = g.start + day * DAY + r.uniform(9.5 * HOUR, 18.5 * HOUR)
            if at.start is None or t < at.start:
                at.start = t
            g.bizportal_export(t, r.choice(g.corps), int(records), ip=ip, malicious=True)
        records *= p["growth"]


def a_vip_stalker(g: Gen, at: Attack):
    """An evening-shift agent reads VIP subscribers' location and call records, two to four a
    day inside normal work, for three weeks."""
    r = g.r
    cands = [a for a in g.agents if a["shift"] == "evening" and a["to_day"] > 100
             and 60 <= a["rate"] <= 140]
    a = cands[0] if cands else g.agents[0]
    at.principals.add(a["id"])
    vips = r.sample(g.subs, max(30, int(150 * g.scale / 0.25)))
    at.extra["vips"] = vips
    todo = vips[:]
    r.shuffle(todo)
    for day in range(at.params["start_day"], g.days):
        if day % 7 not in a["workdays"] or day not in a.get("sessions", {}):
            continue
        sess, lo, hi, ip = a["sessions"][day]
        for _ in range(r.randint(2, 4)):
            if not todo:
                break
            t = r.uniform(lo + 0.5 * HOUR, hi - 0.5 * HOUR)
            if at.start is None or t < at.start:
                at.start = t
            g.agent_case(a, t, ip, sess, todo.pop(), malicious=True,
                         resources=r.sample(["profile", "location", "call_records"], 2) + ["location"])


def a_partner_new_country(g: Gen, at: Attack):
    """The MVNO partner's new API key leaks from its CI; the attacker calls from AWS
    Singapore (the partner's own cloud, another country), at the partner's hours, 50% of the
    partner's own rate, any subscriber, the partner's usual resources."""
    r, s = g.r, g.scale
    at.principals.add("ptn-mvno-sakura")
    at.keys.add("pk-sakura-02")
    at.start = g.start + 2 * DAY + 8 * HOUR + 1234.0
    end = at.start + 36 * HOUR
    n = int(3000 * s * 0.5)  # per day: half the partner's own daily volume, on its curve
    for _ in range(2 * n):
        day = 2 + (_ % 2)
        t = g.hour_time(day, g.h_partner)
        if not (at.start <= t < min(end, g.end)):
            continue
        ip = r.choice(AWS_SINGAPORE)
        at.sources.add(ip)
        g.access(t, "ptn-mvno-sakura", r.choice(g.subs), r.choice(["plan", "usim", "usage"]), ip,
                 atype="service", key="pk-sakura-02", ua="okhttp/4.12.0", malicious=True)


def a_stuffing_low_slow(g: Gen, at: Attack):
    """Credential stuffing over 48 h from ~1,800 Japanese residential proxy exits (one or two
    attempts each), then the taken accounts are read from the same exit and 30% SIM-swapped."""
    r = g.r
    at.start = g.start + DAY + 20 * HOUR
    n_attempts = 2400
    # the combo list: 60% of the attempts are subscribers' real ids, 40% unknown ids;
    # 4% of the real ones reuse a leaked password and have no MFA
    existing = r.sample(g.subs, min(len(g.subs), int(n_attempts * 0.6)))
    cracked = set(r.sample(existing, int(len(existing) * 0.04)))
    ip, used = _resi_proxy(g), 0
    ei = 0
    for _k in range(n_attempts):
        t = at.start + r.random() * 48 * HOUR
        if used >= r.randint(1, 2):
            ip, used = _resi_proxy(g), 0
        used += 1
        at.sources.add(ip)
        ua = r.choice(APP_UAS)
        if r.random() < 0.6:
            acct = existing[ei % len(existing)]
            ei += 1
        else:
            acct = f"sub-{r.randrange(10_000_000, 99_999_999):08d}"
        if acct in cracked and acct not in at.principals:
            sess = g.sid()
            g.login(t, acct, ip, ua=ua, session=sess, malicious=True, producer="idp")
            at.principals.add(acct)
            at.sessions.add(sess)
            tt = t + r.uniform(60, 600)
            for res in ["profile", "address", "billing", "payment", "esim"]:
                g.access(tt, acct, acct, res, ip, session=sess, iat=t, key=CUSTOMER_KEY, ua=ua,
                         malicious=True)
                tt += r.uniform(3, 30)
            if r.random() < 0.3:
                g.access(tt, acct, acct, "esim", ip, action="update", session=sess, iat=t,
                         key=CUSTOMER_KEY, ua=ua, malicious=True)
        else:
            g.login(t, acct, ip, outcome="failure", ua=ua, malicious=True, producer="idp")


def a_session_hijack_abroad(g: Gen, at: Attack):
    """An infostealer campaign: a victim's app token is used from a VPS abroad 3-25 minutes
    after the victim's own login; the victim goes on using it at home."""
    r = g.r
    at.start = None
    vps = [ip for v in ATTACK_VPS.values() for ip in v]
    victims = r.sample(g.subs, 70)
    for sub in victims:
        t = g.start + 2 * DAY + r.random() * 48 * HOUR
        if t >= g.end - HOUR:
            continue
        ip_home = g.subscriber_ip(sub)
        sess = g.sid()
        ua = g.sub_ua[sub]
        g.login(t, sub, ip_home, ua=ua, session=sess, producer="idp")
        g.access(t + r.uniform(2, 30), sub, sub, "usage", ip_home, session=sess, iat=t,
                 key=CUSTOMER_KEY, ua=ua)
        ta = t + r.uniform(180, 1500)
        ip = r.choice(vps)
        at.sources.add(ip)
        at.principals.add(sub)
        at.sessions.add(sess)
        if at.start is None or ta < at.start:
            at.start = ta
        for res in ["profile", "address", "payment", "esim"]:
            g.access(ta, sub, sub, res, ip, session=sess, iat=t, key=CUSTOMER_KEY, ua=ua,
                     malicious=True)
            ta += r.uniform(3, 20)
        if r.random() < 0.25:
            g.access(ta, sub, sub, "esim", ip, action="update", session=sess, iat=t,
                     key=CUSTOMER_KEY, ua=ua, malicious=True)
        g.access(ta + r.uniform(300, 3000), sub, sub, "billing", ip_home, session=sess, iat=t,
                 key=CUSTOMER_KEY, ua=ua)


def a_idor_family_ring(g: Gen, at: Attack):
    """25 accounts the attacker signed up (each on its own mobile line) exploit the family
    plan endpoint: each reads six other subscribers' usage, address and billing a day."""
    r = g.r
    ring = [f"sub-{r.randrange(10_000_000, 99_999_999):08d}" for _ in range(25)]
    carriers = list(MOBILE_SHARE)
    at.principals.update(ring)
    for day in range(2, g.days):
        for acct in ring:
            t = g.hour_time(day, g.h_cust)
            ip = g.rand_ip(g.mobile_nets[r.choice(carriers)])
            at.sources.add(ip)
            sess = g.sid()
            ua = r.choice(APP_UAS)
            at.sessions.add(sess)
            g.login(t, acct, ip, ua=ua, session=sess, producer="idp", malicious=True)
            g.access(t + 5, acct, acct, "usage", ip, session=sess, iat=t, key=CUSTOMER_KEY, ua=ua,
                     malicious=False)
            tt = t + 20
            for v in r.sample(g.subs, 6):
                if at.start is None or tt < at.start:
                    at.start = tt
                for res in ["usage", "address", "billing"]:
                    g.access(tt, acct, v, res, ip, session=sess, iat=t, key=CUSTOMER_KEY, ua=ua,
                             malicious=True)
                    tt += r.uniform(2, 15)
                tt += r.uniform(10, 200)


SCENARIOS = {
    # name: (days, scale, attack fn, severity, params, tell)
    "normal": (3, 0.5, None, None, {}, ""),
    "forged_resi_slow": (8, 0.3, a_forged_resi_slow, "critical", {"start_day": 2, "per_day": 50},
                         "Customer tokens no login issued, signed with the live customer key, "
                         "read ~50 customers a day through Japanese residential proxies."),
    "departed_engineer_key": (7, 0.3, a_departed_engineer_key, "critical", {},
                              "A terminated engineer's API key is still in use, once a night, "
                              "searching subscribers from a home broadband address."),
    "stolen_agent_session": (4, 0.4, a_stolen_agent_session, "warning", {},
                             "A call-centre agent's SSO session is used at the same time from "
                             "the office and from a residential address."),
    "svc_malware_subnet": (4, 0.4, a_svc_malware_subnet, "critical", {},
                           "The provisioning service's key is used from a new host in its subnet, "
                           "reading USIM/HSS data of 60% more subscribers than usual."),
    "export_creep": (30, 0.12, a_export_creep, "critical",
                     {"start_day": 4, "per_day": 4, "first_records": 60, "growth": 1.25},
                     "The corporate portal's exports grow 25% a day, from its usual tens of "
                     "rows to thousands, from one of its own web servers."),
    "vip_stalker": (30, 0.12, a_vip_stalker, "warning", {"start_day": 8},
                    "An agent reads VIP subscribers' location and call records, a few a day."),
    "partner_new_country": (4, 0.4, a_partner_new_country, "critical", {},
                            "The MVNO partner's API key is used from Singapore (it only ever "
                            "called from Tokyo) for any subscriber, not only its own."),
    "stuffing_low_slow": (4, 0.4, a_stuffing_low_slow, "warning", {},
                          "Low-rate credential stuffing from ~1,800 Japanese residential exits; "
                          "the taken accounts are read and some SIM-swapped."),
    "session_hijack_abroad": (4, 0.4, a_session_hijack_abroad, "critical", {},
                              "Customers' app sessions are used from servers abroad minutes "
                              "after they logged in at home."),
    "idor_family_ring": (5, 0.4, a_idor_family_ring, "warning", {},
                         "25 new accounts each read six other subscribers a day through the "
                         "family-plan endpoint."),
}


@dataclass
class Generated:
    scenario: str
    seed: int
    start: float
    end: float
    lines: list
    attack: Attack | None
    truth: dict


def generate(scenario: str, seed: int, *, days: int | None = None,
             scale: float | None = None) -> Generated:
    """The scenario's events and truth; ``days`` / ``scale`` override its size (tests)."""
    d, sc, fn, severity, params, tell = SCENARIOS[scenario]
    days, scale = days or d, scale or sc
    g = Gen(seed, days, scale)
    at = None
    if fn is not None:
        at = Attack(name=scenario, story=(fn.__doc__ or "").strip(), severity=severity, tell=tell,
                    params=dict(params))
        at.start = None
        g.attack = at
    if scenario == "departed_engineer_key":
        g.engineers[-1]["to_day"] = 1  # left on day 1 (terminated 10:00 JST)
    if scenario == "stolen_agent_session":
        cands = [a for a in g.agents if a["shift"] == "day" and a["to_day"] > 100
                 and not a.get("new") and 60 <= a["rate"] <= 140]
        g.victim_agent = cands[0] if cands else g.agents[0]
        g.victim_agent["workdays"] = set(range(7))  # covering for colleagues: every day
    # agents' sessions are made before the attacks that reuse them
    g.normal()
    if fn is not None:
        fn(g, at)
        at.start = min(t for t, *_ in at.exposures) if at.exposures else at.start
        mal_ts = [ev for _, _, ev in g.out if ev["event_id"] in at.event_ids]
        first = min(_parse(ev["ts"]) for ev in mal_ts)  # as written (producers' clocks)
        at.extra["first_malicious"] = first
    lines = g.lines()
    truth = _truth(g, scenario, seed, at)
    return Generated(scenario, seed, g.start, g.end, lines, at, truth)


def _parse(s: str) -> float:
    base, frac = s[:19], s[20:23]
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + int(frac) / 1000


def _truth(g: Gen, scenario, seed, at: Attack | None) -> dict:
    out = {
        "generator": "redteam_b",
        "company": "Kestrel Mobile (JP mobile operator)",
        "scenario": scenario,
        "seed": seed,
        "start": _fmt_ts(g.start),
        "end": _fmt_ts(g.end),
        "days": g.days,
        "scale": g.scale,
        "deliberately_bad_lines": 0,
        "leavers": g.leavers,
        "attack": None,
    }
    if at is not None:
        first_exp: dict = {}
        seq = []
        for t, subj, rec, action in sorted(at.exposures):
            if action in ("export", "search"):
                seq.append([_fmt_ts(t), subj, rec])
            elif subj not in first_exp:
                first_exp[subj] = t
                seq.append([_fmt_ts(t), subj, 1])
        out["attack"] = {
            "name": at.name,
            "story": at.story,
            "tell": at.tell,
            "expected_severity": at.severity,
            "params": at.params,
            "first_malicious": _fmt_ts(at.extra["first_malicious"]),
            "principals": sorted(at.principals),
            "keys": sorted(at.keys),
            "sessions": sorted(at.sessions),
            "sources": sorted(at.sources),
            "customers_exposed": len({s for _, s, _ in seq if True}),
            "records_exposed": sum(n for _, _, n in seq),
            "exposures": seq,  # [ts, subject, count] in time order: count = records for exports
            "event_ids": sorted(at.event_ids),
        }
        if "vips" in at.extra:
            out["attack"]["vips"] = sorted(at.extra["vips"])
    return out


def write(gen: Generated, events_path: str, truth_path: str | None):
    with open(events_path, "w", encoding="utf-8") as f:
        f.write("\n".join(gen.lines))
        f.write("\n")
    if truth_path:
        with open(truth_path, "w", encoding="utf-8") as f:
            json.dump(gen.truth, f, indent=1)
            f.write("\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m simulation.redteam_b", description=__doc__.split("\n")[0])
    ap.add_argument("scenario", nargs="?", choices=sorted(SCENARIOS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-o", "--out", default="-")
    ap.add_argument("--truth")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args(argv)
    if a.list or not a.scenario:
        for k, v in SCENARIOS.items():
            print(f"{k:24s} {v[0]:3d} days  scale {v[1]}  {v[5]}")
        return 0
    gen = generate(a.scenario, a.seed)
    if a.out == "-":
        sys.stdout.write("\n".join(gen.lines) + "\n")
        if a.truth:
            with open(a.truth, "w", encoding="utf-8") as f:
                json.dump(gen.truth, f, indent=1)
    else:
        write(gen, a.out, a.truth)
    print(f"{a.scenario} seed {a.seed}: {len(gen.lines)} events", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
