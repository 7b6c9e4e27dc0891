"""Red team C: seeded, labelled traffic of a German card issuer, and adaptive attacks on it.

Written without reading the detectors (docs/redteam_c.md says what was read). Everything here
is the contract's events (docs/contract.md): logins, data-access and identity changes, in
arrival order (a login may arrive after the reads of its session), one JSON object a line.

The company, "Nordkarte Bank AG": a card issuer and direct bank in Germany (Europe/Berlin,
CET = UTC+1 over the simulated weeks), customers on German home broadband (Telekom, Vodafone,
Telefonica/O2), German mobile carriers' CGNAT, travellers abroad (roaming home-routed or on
hotel Wi-Fi), privacy VPN users; call-centre agents in Berlin, Hamburg and an outsourced
centre in Lisbon; back-office teams in Frankfurt (office or corporate VPN); internal services
and two partners with API keys; nightly statement batch, daily and monthly CRM exports.

``generate(scenario, seed)`` returns a :class:`Generated` (lines, truth, start, end);
``write(gen, path, truth_path)`` writes them. Every random draw comes from a
``random.Random`` seeded from (seed, scenario, component).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import math
import random
import time as _time
from collections.abc import Callable

DAY = 86400.0
HOUR = 3600.0
TZ = 3600.0  # CET: local = UTC + 1 h for 2026-10-26 .. 2026-11-30
START = 1792969200.0  # 2026-10-26T00:00:00+01:00 (a Monday) = 2026-10-25T23:00:00Z

# ---------------------------------------------------------------- address pools (real ranges)
# (name, expected country, kind, [CIDRs]); kind: broadband, mobile, hosting, vpn, business
POOLS: dict[str, tuple[str, str, list[str]]] = {
    # German home broadband
    "de_telekom": ("DE", "broadband", ["79.192.0.0/10", "91.0.0.0/11", "84.128.0.0/12", "93.192.0.0/12"]),
    "de_vodafone": ("DE", "broadband", ["88.64.0.0/12", "178.24.0.0/14", "2.200.0.0/13", "92.72.0.0/13"]),
    "de_o2": ("DE", "broadband", ["78.48.0.0/13", "95.112.0.0/13", "77.0.0.0/13"]),
    # German mobile carriers (CGNAT gateways)
    "de_mob_telekom": ("DE", "mobile", ["80.187.0.0/17"]),
    "de_mob_vodafone": ("DE", "mobile", ["109.42.0.0/15"]),
    "de_mob_o2": ("DE", "mobile", ["82.113.96.0/19", "46.114.0.0/15", "89.204.128.0/19"]),
    # German hosting
    "de_hetzner": ("DE", "hosting", ["5.9.0.0/16", "88.198.0.0/17", "136.243.0.0/18", "49.12.0.0/16"]),
    "de_ionos": ("DE", "hosting", ["217.160.0.0/23", "82.165.0.0/23"]),
    # traveller destinations (local ISPs)
    "es": ("ES", "broadband", ["88.0.0.0/11"]),
    "it": ("IT", "broadband", ["79.0.0.0/11"]),
    "at": ("AT", "broadband", ["80.108.0.0/15", "62.46.0.0/15"]),
    "nl": ("NL", "broadband", ["84.24.0.0/13"]),
    "tr": ("TR", "broadband", ["85.96.0.0/13"]),
    "th": ("TH", "broadband", ["171.96.0.0/13"]),
    "us": ("US", "broadband", ["73.10.0.0/16", "24.0.0.0/14"]),
    "pt": ("PT", "broadband", ["85.240.0.0/13"]),
    "pl": ("PL", "broadband", ["83.0.0.0/15", "79.184.0.0/18"]),
    # privacy VPN exits (shared by many customers)
    "vpn_mullvad_se": ("SE", "vpn", ["45.83.220.0/22"]),
    "vpn_mullvad_ch": ("CH", "vpn", ["193.32.127.0/24"]),
    "vpn_mullvad_nl": ("NL", "vpn", ["185.65.134.0/24"]),
    "vpn_m247_be": ("BE", "vpn", ["91.207.57.0/24"]),
    "vpn_datacamp_pl": ("PL", "vpn", ["185.246.208.0/24"]),
    # hosting abroad (the attackers' rented servers)
    "ab_do_us": ("US", "hosting", ["167.99.0.0/20", "137.184.0.0/19"]),
    "ab_do_sg": ("SG", "hosting", ["159.65.0.0/20"]),
    "ab_do_in": ("IN", "hosting", ["139.59.0.0/18"]),
    "ab_ovh_ca": ("CA", "hosting", ["51.79.0.0/17", "51.222.0.0/18"]),
    "ab_ali_jp": ("JP", "hosting", ["47.74.0.0/18"]),
    "ab_tencent_hk": ("HK", "hosting", ["43.128.0.0/18"]),
    "ab_melbikomas_ru": ("RU", "hosting", ["213.183.48.0/24"]),
    "ab_emanuel_bg": ("BG", "hosting", ["79.110.62.0/24"]),
    "ab_serverstech_nl": ("NL", "hosting", ["176.124.216.0/22"]),
    # business lines
    "pt_nos_business": ("PT", "business", ["89.180.0.0/15"]),
    "de_vodafone_business": ("DE", "business", ["88.64.0.0/12"]),
}

BROADBAND = ["de_telekom", "de_vodafone", "de_o2"]
BROADBAND_W = [0.42, 0.34, 0.24]
MOBILE = {"de_telekom": "de_mob_telekom", "de_vodafone": "de_mob_vodafone", "de_o2": "de_mob_o2"}
TRAVEL = ["es", "it", "at", "nl", "tr", "th", "us", "pt"]
TRAVEL_W = [0.25, 0.18, 0.16, 0.1, 0.1, 0.06, 0.08, 0.07]
VPNS = ["vpn_mullvad_se", "vpn_mullvad_ch", "vpn_mullvad_nl", "vpn_m247_be", "vpn_datacamp_pl"]
ABROAD_HOSTING = [k for k in POOLS if k.startswith("ab_")]

_NETS = {k: [ipaddress.ip_network(c) for c in v[2]] for k, v in POOLS.items()}


def addr(rng: random.Random, pool: str) -> str:
    nets = _NETS[pool]
    net = nets[rng.randrange(len(nets))] if len(nets) > 1 else nets[0]
    n = net.num_addresses
    while True:
        a = net.network_address + rng.randrange(1, n - 1)
        if a.packed[-1] not in (0, 255):
            return str(a)


def subnet24(rng: random.Random, pool: str) -> str:
    """A random /24 inside a pool, as 'a.b.c.' prefix."""
    a = addr(rng, pool)
    return a.rsplit(".", 1)[0] + "."


# ---------------------------------------------------------------- helpers

def iso(t: float) -> str:
    ms = int(round(t * 1000))
    s, ms = divmod(ms, 1000)
    return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(s)) + f".{ms:03d}Z"


def local_hour(t: float) -> float:
    return ((t + TZ) % DAY) / HOUR


def hexid(rng: random.Random, n: int = 16) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def pick_hour(rng: random.Random, weights: list[float]) -> float:
    """A local time of day (seconds) drawn from 24 hourly weights."""
    h = rng.choices(range(24), weights=weights)[0]
    return (h + rng.random()) * HOUR


# local-hour activity weights for customers
CUST_WD = [0.35, 0.18, 0.1, 0.08, 0.1, 0.3, 1.0, 2.2, 3.0, 2.6, 2.3, 2.4, 3.0, 2.6, 2.2, 2.1, 2.3,
           2.6, 3.0, 3.4, 3.6, 3.0, 2.0, 0.9]
CUST_WE = [0.6, 0.35, 0.2, 0.1, 0.08, 0.1, 0.3, 0.8, 1.6, 2.4, 2.8, 2.8, 2.6, 2.4, 2.3, 2.3, 2.4,
           2.6, 2.9, 3.2, 3.3, 2.8, 2.0, 1.1]
# card authorisations (fraud scoring), notifications
SHOP = [0.25, 0.12, 0.08, 0.06, 0.08, 0.2, 0.6, 1.2, 1.6, 1.8, 2.0, 2.2, 2.5, 2.3, 2.1, 2.1, 2.3,
        2.7, 2.9, 2.6, 2.1, 1.6, 1.0, 0.5]

APP_UA = ["Nordkarte/5.12.1 (iOS 18.1; iPhone15,2)", "Nordkarte/5.12.1 (iOS 17.6; iPhone13,1)",
          "Nordkarte/5.12.0 (Android 14; SM-S911B)", "Nordkarte/5.12.1 (Android 15; Pixel 8)",
          "Nordkarte/5.11.4 (Android 13; SM-A536B)"]
WEB_UA = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
          "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15",
          "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0"]
STAFF_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36 Edg/130.0"

CUST_RES = ["account_summary", "transactions", "card", "statements", "profile", "address", "payment",
            "limits"]
CUST_RES_W = [0.34, 0.3, 0.1, 0.07, 0.06, 0.03, 0.06, 0.04]

APP_KEY = "kid-app-2026-10"
APP_KEY_NEXT = "kid-app-2026-11"
LEGACY_KEY = "kid-app-2025-07"          # the previous signing key, never revoked
LEGACY_OWNER = "emp-plat-0417"          # the platform engineer who generated it; leaves on day 0
SSO_KEY = "kid-sso-entra-2026"


@dataclasses.dataclass
class Generated:
    scenario: str
    seed: int
    lines: list[str]
    truth: dict
    start: float
    end: float


@dataclasses.dataclass
class Scenario:
    days: int
    scale: float        # customers and services (staff always at full size)
    expected: str | None
    summary: str
    cc_scale: float = 1.0  # call-centre team sizes (back office always at full size)


SCENARIOS: dict[str, Scenario] = {
    "normal": Scenario(7, 1.0, None, "a week of the bank's traffic, no attack"),
    "forged_fresh_resi": Scenario(3, 0.5, "critical",
        "departed engineer's legacy signing key; fresh token_issued_at; German residential proxies, <=2 accounts per address per hour"),
    "forged_unannounced_nosession": Scenario(3, 0.5, "critical",
        "tokens with no session_id under 8 key ids the key store never announced; German mobile-carrier proxies"),
    "hosting_rotation_abroad": Scenario(3, 0.5, "critical",
        "stolen current signing key; hosting abroad rotated per account, <=2 accounts per /24, each /24 quiet >= 1 h"),
    "service_night_newip": Scenario(3, 0.5, "critical",
        "fraud-scoring service key used by malware at night from an internal address it never used"),
    "service_5x": Scenario(3, 0.5, "warning",
        "notification service key at 5x its rate, from its own addresses, in its own hours"),
    "partner_bulk_export": Scenario(3, 0.5, "critical",
        "collections partner's key exports 18,000-30,000 records per call where it exports tens"),
    "insider_slow": Scenario(30, 0.12, "warning",
        "back-office credit analyst reads ~40 extra customers a workday for 4 weeks", 0.25),
    "idor_ring": Scenario(5, 0.5, "warning",
        "60 mule customer accounts each read 4 other customers a day through their own sessions"),
    "session_theft": Scenario(3, 0.5, "warning",
        "infostealer: 120 customers' fresh sessions replayed from German residential proxies"),
    "stuffing_slow": Scenario(3, 0.5, "warning",
        "credential stuffing, 30,000 attempts over 60 h from 4,000 residential proxies, <=3 per address per hour"),
    "clock_poison": Scenario(3, 0.5, "critical",
        "forged_fresh_resi, preceded by one event dated 400 days ahead"),
}


# ---------------------------------------------------------------- the world

class World:
    def __init__(self, scenario: str, seed: int, days: int | None = None, scale: float | None = None,
                 cc_scale: float | None = None):
        self.scenario = scenario
        self.seed = seed
        self.sc = SCENARIOS[scenario]
        if days is not None or scale is not None or cc_scale is not None:  # smaller worlds, for tests
            self.sc = dataclasses.replace(self.sc, days=days or self.sc.days,
                                          scale=scale if scale is not None else self.sc.scale,
                                          cc_scale=cc_scale if cc_scale is not None else self.sc.cc_scale)
        self.days = self.sc.days
        self.start = START
        self.end = START + self.days * DAY
        self.items: list[tuple[float, int, dict, bool]] = []  # (arrival, seq, event, malicious)
        self.seq = 0
        self.lag_windows: list[tuple[float, float, float]] = []
        self._rngs: dict[str, random.Random] = {}

    def rng(self, part: str) -> random.Random:
        if part not in self._rngs:
            # the scenario does not enter the seed of normal parts: every scenario's
            # normal traffic is the same company on the same days
            self._rngs[part] = random.Random(f"redteam_c|{self.seed}|{part}")
        return self._rngs[part]

    # -- emitting
    def emit(self, ev: dict, t: float, malicious: bool = False, arrival: float | None = None):
        ev["ts"] = iso(t)
        if arrival is None:
            arrival = t + 0.02 + self.rng("arrive").random() * 0.4
        self.items.append((arrival, self.seq, ev, malicious))
        self.seq += 1

    def login_arrival(self, t: float) -> float:
        r = self.rng("late")
        for a, b, lag in self.lag_windows:
            if a <= t < b:
                return t + lag + r.random() * 3
        if r.random() < 0.015:
            return t + 2 + r.random() * 58
        return t + 0.05 + r.random() * 1.5

    def login(self, t, account, atype, outcome, ip, session=None, method="password", ua=None,
              device=None, malicious=False):
        ev = {"account_id": account, "account_type": atype, "outcome": outcome, "src_ip": ip,
              "method": method}
        if ua:
            ev["user_agent"] = ua
        if device:
            ev["device_id"] = device
        if outcome == "success":
            ev["session_id"] = session
        self.emit(ev, t, malicious, self.login_arrival(t))

    def access(self, t, actor, atype, subject, resource, ip, action="read", records=None,
               session=None, iat=None, key=None, ua=None, malicious=False):
        ev = {"actor_id": actor, "actor_type": atype, "subject_id": subject, "resource": resource,
              "action": action, "src_ip": ip}
        if records is not None:
            ev["records"] = records
        if session is not None:
            ev["session_id"] = session
        if iat is not None:
            ev["token_issued_at"] = iso(iat)
        if key is not None:
            ev["key_id"] = key
        if ua:
            ev["user_agent"] = ua
        self.emit(ev, t, malicious)

    def identity(self, t, change, malicious=False, **kw):
        ev = {"change": change}
        ev.update(kw)
        self.emit(ev, t, malicious, t + 1.0)

    def app_key_at(self, t: float) -> str:
        if self.days >= 5 and t >= self.start + 4 * DAY + 10 * HOUR:
            return APP_KEY_NEXT
        return APP_KEY

    def workday(self, d: int) -> bool:
        return d % 7 < 5


# ---------------------------------------------------------------- customers

class Customers:
    def __init__(self, w: World):
        self.w = w
        r = w.rng("customers")
        self.n = max(2000, int(40000 * w.sc.scale))
        self.ids = [f"c{r.randrange(10**7, 10**8)}" for _ in range(self.n)]
        # distinct ids
        seen: set[str] = set()
        for i, c in enumerate(self.ids):
            while c in seen:
                c = f"c{r.randrange(10**7, 10**8)}"
            seen.add(c)
            self.ids[i] = c
        self.weight = [math.exp(r.gauss(0, 1.25)) for _ in range(self.n)]
        tot = sum(self.weight)
        self.cum: list[float] = []
        acc = 0.0
        for x in self.weight:
            acc += x
            self.cum.append(acc)
        self.rate_total = 0.085 * self.n  # sessions per day over the base
        self.isp = r.choices(BROADBAND, weights=BROADBAND_W, k=self.n)
        self.home = [addr(r, p) for p in self.isp]
        self.vpn = [r.random() < 0.02 for _ in range(self.n)]
        self.vpn_pool = [r.choice(VPNS) for _ in range(self.n)]
        self.web = [r.random() < 0.3 for _ in range(self.n)]
        self.app_ua = [r.choice(APP_UA) for _ in range(self.n)]
        self.web_ua = [r.choice(WEB_UA) for _ in range(self.n)]
        self.device = [hexid(r, 12) for _ in range(self.n)]
        self.index = {c: i for i, c in enumerate(self.ids)}
        _ = tot
        # CGNAT gateways: a few hundred addresses per carrier, shared by everyone on it
        self.cgnat = {m: [addr(r, m) for _ in range(180)] for m in MOBILE.values()}
        self.vpn_exits = {v: [addr(r, v) for _ in range(12)] for v in VPNS}
        # travellers: trips of 3-10 days
        self.trip: dict[int, tuple[float, float, str]] = {}
        for i in range(self.n):
            if r.random() < 0.03 * max(1.0, w.days / 7):
                s = w.start + r.uniform(-5, w.days) * DAY
                self.trip[i] = (s, s + r.uniform(3, 10) * DAY, r.choices(TRAVEL, weights=TRAVEL_W)[0])
        self.hotel: dict[int, str] = {i: addr(r, dst) for i, (_, _, dst) in self.trip.items()}
        # joint accounts and family cards: a partner may look at the other's card and transactions
        self.partner: dict[int, int] = {}
        for i in range(self.n):
            if i not in self.partner and r.random() < 0.02:
                j = r.randrange(self.n)
                if j != i and j not in self.partner:
                    self.partner[i] = j
                    self.partner[j] = i

    def pick(self, r: random.Random) -> int:
        return r.choices(range(self.n), cum_weights=self.cum)[0]

    def where(self, i: int, t: float, r: random.Random) -> tuple[str, bool]:
        """(address, on_mobile) of customer i for a session at t."""
        if self.vpn[i] and r.random() < 0.8:
            return r.choice(self.vpn_exits[self.vpn_pool[i]]), False
        trip = self.trip.get(i)
        if trip and trip[0] <= t < trip[1]:
            if r.random() < 0.7:  # roaming: home-routed data, home carrier's gateway
                return r.choice(self.cgnat[MOBILE[self.isp[i]]]), True
            return self.hotel[i], False
        if r.random() < 0.45:
            return r.choice(self.cgnat[MOBILE[self.isp[i]]]), True
        return self.home[i], False

    def session(self, i: int, t: float, r: random.Random, ip: str | None = None, mobile=None,
                reads: int | None = None, extra: Callable | None = None) -> tuple[str, float, str]:
        """One customer session at t: maybe failures, a login, reads. Returns (session, t, ip)."""
        w = self.w
        c = self.ids[i]
        if ip is None:
            ip, mobile = self.where(i, t, r)
        web = (not mobile) and self.web[i] and r.random() < 0.6
        ua = self.web_ua[i] if web else self.app_ua[i]
        dev = None if web else self.device[i]
        if r.random() < 0.04:
            for _ in range(1 + (r.random() < 0.3)):
                w.login(t, c, "customer", "failure", ip, method="password", ua=ua, device=dev)
                t += r.uniform(5, 40)
        sid = "s-" + hexid(r, 20)
        method = "password" if web else r.choices(["refresh", "password", "mfa"], weights=[0.62, 0.23, 0.15])[0]
        w.login(t, c, "customer", "success", ip, sid, method, ua, dev)
        login_t = t
        key = w.app_key_at(t)
        n = reads if reads is not None else min(40, 1 + int(r.expovariate(1 / 3.2)))
        for _ in range(n):
            t += r.expovariate(1 / 25.0) + 1
            res = r.choices(CUST_RES, weights=CUST_RES_W)[0]
            action = "update" if res == "payment" and r.random() < 0.5 else "read"
            w.access(t, c, "customer", c, res, ip, action, session=sid, iat=login_t, key=key, ua=ua)
        j = self.partner.get(i)
        if j is not None and r.random() < 0.2:
            for _ in range(r.randint(1, 3)):
                t += r.expovariate(1 / 20.0) + 1
                w.access(t, c, "customer", self.ids[j], r.choice(["card", "transactions", "account_summary"]),
                         ip, session=sid, iat=login_t, key=key, ua=ua)
        if extra:
            extra(t, sid, login_t, ip, ua, key)
        return sid, login_t, ip

    def run(self):
        w = self.w
        r = w.rng("customer_sessions")
        for d in range(w.days):
            day0 = w.start + d * DAY
            wd = w.workday(d)
            prof = CUST_WD if wd else CUST_WE
            mult = (1.0 if wd else 0.8) * (1.25 if d % 7 == 0 else 1.0) * r.uniform(0.92, 1.08)
            n = int(self.rate_total * mult)
            for _ in range(n):
                i = self.pick(r)
                t = day0 + pick_hour(r, prof)
                if t < w.start or t >= w.end - 900:
                    continue
                self.session(i, t, r)
        # sessions that predate the watch: logged in up to 25 min before it began
        r2 = w.rng("predating")
        for _ in range(int(self.n * 0.0025)):
            i = self.pick(r2)
            login_t = w.start - r2.uniform(10, 1500)
            ip, mobile = self.where(i, login_t, r2)
            c = self.ids[i]
            sid = "s-" + hexid(r2, 20)
            t = w.start + r2.uniform(0, 600)
            ua = self.app_ua[i]
            for _ in range(1 + int(r2.expovariate(1 / 2.5))):
                w.access(t, c, "customer", c, r2.choices(CUST_RES, weights=CUST_RES_W)[0], ip,
                         session=sid, iat=login_t, key=APP_KEY, ua=ua)
                t += r2.expovariate(1 / 30.0) + 1
        # account locks by the fraud team, with the session revoked
        r3 = w.rng("locks")
        self.suspended: dict[str, list[tuple[float, float]]] = {}
        for d in range(w.days):
            for _ in range(r3.randint(0, 3)):
                t = w.start + d * DAY + r3.uniform(8, 20) * HOUR
                c = self.ids[self.pick(r3)]
                w.identity(t, "principal_suspended", principal_id=c)
                w.identity(t + 2, "session_revoked", session_id="s-" + hexid(r3, 20))
                until = float("inf")
                if r3.random() < 0.6:
                    until = t + r3.uniform(1, 20) * HOUR
                    w.identity(until, "principal_reinstated", principal_id=c)
                self.suspended.setdefault(c, []).append((t, until))

    def enforce_locks(self):
        """A locked customer cannot log in (the IdP answers failure) nor read until reinstated.

        Added after the first scoring run: the first version let locked customers go on
        logging in successfully, which no bank's IdP does (docs/redteam_c.md).
        """
        w = self.w
        dropped: set[str] = set()
        keep = []

        def locked(c: str, t: float) -> bool:
            return any(a <= t < b for a, b in self.suspended.get(c, ()))

        for item in w.items:
            ev, mal = item[2], item[3]
            if not mal and ev.get("account_type") == "customer" and ev["account_id"] in self.suspended:
                if ev["outcome"] == "success" and locked(ev["account_id"], _ts(ev["ts"])):
                    dropped.add(ev.pop("session_id"))
                    ev["outcome"] = "failure"
            elif not mal and ev.get("actor_type") == "customer" and (
                    ev.get("session_id") in dropped
                    or (ev["actor_id"] in self.suspended and locked(ev["actor_id"], _ts(ev["ts"])))):
                continue
            keep.append(item)
        w.items = keep


# ---------------------------------------------------------------- staff

@dataclasses.dataclass
class Staff:
    id: str
    team: str
    rate: float           # customers (calls / cases) per working day
    shift: str            # early, late, night, office
    site: str             # berlin, hamburg, lisbon, frankfurt
    first_day: int = 0
    last_day: int = 10**6
    desk: str = ""


TEAMS = [  # team, n, site, median customers per day
    ("cc-retail", 60, "berlin", 45.0), ("cc-cards", 30, "hamburg", 40.0),
    ("cc-lisbon", 30, "lisbon", 38.0), ("bo-credit", 12, "frankfurt", 10.0),
    ("bo-kyc", 10, "frankfurt", 18.0), ("bo-disputes", 10, "frankfurt", 14.0),
]
LISBON_EGRESS_N = 3


class StaffModel:
    def __init__(self, w: World, cust: Customers):
        self.w = w
        self.cust = cust
        r = w.rng("staff")
        self.staff: list[Staff] = []
        self.lisbon = [addr(r, "pt_nos_business") for _ in range(LISBON_EGRESS_N)]
        n = 0
        for team, k, site, med in TEAMS:
            if team.startswith("cc"):
                k = max(4, int(k * w.sc.cc_scale))
            for j in range(k):
                n += 1
                rate = med * math.exp(r.gauss(0, 0.35))
                if team.startswith("cc") and r.random() < 0.06:
                    rate *= 2.4  # the heavy, steady ones (short calls, card blocks)
                if team.startswith("cc"):
                    shift = "night" if team == "cc-cards" and j < 4 else ("early" if j % 2 else "late")
                else:
                    shift = "office"
                sid = f"emp-{team.split('-')[1][:4]}-{1000 + n}"
                desk = {"berlin": f"10.20.{r.randrange(1, 40)}.{r.randrange(2, 250)}",
                        "hamburg": f"10.30.{r.randrange(1, 20)}.{r.randrange(2, 250)}",
                        "frankfurt": f"10.10.{r.randrange(1, 60)}.{r.randrange(2, 250)}",
                        "lisbon": ""}[site]
                self.staff.append(Staff(sid, team, rate, shift, site, desk=desk))
        # new hires (cc-retail) from day 2, two leavers
        for j in range(3):
            s = Staff(f"emp-reta-{1200 + j}", "cc-retail", 30.0, "early" if j % 2 else "late",
                      "berlin", first_day=2, desk=f"10.20.{r.randrange(1, 40)}.{r.randrange(2, 250)}")
            self.staff.append(s)
        for s in r.sample([s for s in self.staff if s.team == "cc-retail"], 2):
            s.last_day = r.randint(1, max(1, w.days - 1))
        self.days_of: dict[str, dict[int, tuple[str, float, float, str]]] = {}

    def shift_window(self, s: Staff, d: int, r: random.Random) -> tuple[float, float] | None:
        wd = d % 7
        if s.shift == "office":
            if wd >= 5 or r.random() < 0.06:  # weekends, leave
                return None
            a, b = 7.6 + r.uniform(0, 1.6), 16.3 + r.uniform(0, 1.8)
        elif s.shift == "night":
            if r.random() < 0.25:
                return None
            a, b = 21.0 + r.uniform(-0.1, 0.2), 31.0 + r.uniform(-0.2, 0.1)
        else:
            if wd == 6 or (wd == 5 and r.random() < 0.6) or r.random() < 0.08:
                return None
            a, b = (6.9, 15.1) if s.shift == "early" else (12.9, 21.1)
            a += r.uniform(-0.05, 0.15)
            b += r.uniform(-0.1, 0.2)
        base = self.w.start + d * DAY
        return base + a * HOUR, base + b * HOUR

    def run(self):
        w = self.w
        r = w.rng("staff_days")
        for s in self.staff:
            self.days_of[s.id] = {}
            for d in range(w.days):
                if d < s.first_day or d > s.last_day:
                    continue
                win = self.shift_window(s, d, r)
                if win is None:
                    continue
                a, b = win
                if d == s.last_day and s.last_day < 10**5:
                    b = min(b, a + 3 * HOUR)
                if a >= w.end:
                    continue
                b = min(b, w.end - 60)
                self.work(s, d, a, b, r)
            if s.last_day < w.days:
                t = w.start + s.last_day * DAY + 17.5 * HOUR
                w.identity(t, "principal_terminated", principal_id=s.id)

    def ip_for(self, s: Staff, d: int, r: random.Random) -> str:
        if s.site == "lisbon":
            return self.lisbon[r.randrange(LISBON_EGRESS_N)]
        if s.team.startswith("bo") and r.random() < 0.4:  # home office through the corporate VPN
            return f"10.250.{r.randrange(0, 64)}.{r.randrange(2, 250)}"
        return s.desk

    def work(self, s: Staff, d: int, a: float, b: float, r: random.Random):
        w = self.w
        ip = self.ip_for(s, d, r)
        sid = "sso-" + hexid(r, 16)
        w.login(a, s.id, "employee", "success", ip, sid, "sso", STAFF_UA)
        self.days_of[s.id][d] = (sid, a, b, ip, sid, a)
        ramp = min(1.0, 0.4 + 0.2 * (d - s.first_day)) if s.first_day else 1.0
        frac = (b - a) / (8.2 * HOUR)
        if s.shift == "night":
            n = int(r.gauss(s.rate * 0.3, 2))
        else:
            n = int(max(0, r.gauss(s.rate * frac * ramp, math.sqrt(s.rate) * 0.8)))
        if d % 7 == 0:
            n = int(n * 1.15)
        # a second session after lunch
        relog = a + r.uniform(3.5, 5) * HOUR
        sid2 = None
        times = sorted(r.uniform(a + 300, b - 600) for _ in range(max(0, n)))
        for t in times:
            if t > relog and sid2 is None:
                sid2 = "sso-" + hexid(r, 16)
                w.login(relog, s.id, "employee", "success", ip, sid2, "sso", STAFF_UA)
                self.days_of[s.id][d] = (sid, a, b, ip, sid2, relog)
            cur, iat = (sid2, relog) if sid2 and t > relog else (sid, a)
            subj = self.cust.ids[self.cust.pick(r)] if r.random() < 0.7 else self.cust.ids[r.randrange(self.cust.n)]
            self.case(s, subj, t, ip, cur, iat, r)

    def case(self, s: Staff, subj: str, t: float, ip: str, sid: str, iat: float, r: random.Random,
             malicious: bool = False):
        w = self.w
        team = s.team
        if team.startswith("cc") or r.random() < 0.5:
            w.access(t, s.id, "employee", subj, "profile", ip, "search", records=r.choices([1, 2, 3, 4], [0.7, 0.15, 0.1, 0.05])[0],
                     session=sid, iat=iat, key=SSO_KEY, ua=STAFF_UA, malicious=malicious)
        if team == "bo-disputes" and r.random() < 0.4:
            t += r.uniform(5, 60)
            w.access(t, s.id, "employee", subj, "transactions", ip, "search",
                     records=r.randint(5, 60), session=sid, iat=iat, key=SSO_KEY, ua=STAFF_UA,
                     malicious=malicious)
        res_pool = {"cc-retail": ["account_summary", "transactions", "address", "phone", "email", "statements"],
                    "cc-cards": ["card", "transactions", "limits", "account_summary", "address"],
                    "cc-lisbon": ["account_summary", "transactions", "card", "address", "phone"],
                    "bo-credit": ["profile", "income", "transactions", "limits", "credit_report", "statements"],
                    "bo-kyc": ["profile", "id_documents", "address", "transactions"],
                    "bo-disputes": ["transactions", "card", "statements", "account_summary"]}[team]
        for _ in range(r.randint(1, 4) if team.startswith("cc") else r.randint(2, 7)):
            t += r.uniform(8, 90)
            w.access(t, s.id, "employee", subj, r.choice(res_pool), ip, "read", session=sid,
                     iat=iat, key=SSO_KEY, ua=STAFF_UA, malicious=malicious)
        if r.random() < 0.08:
            t += r.uniform(10, 120)
            w.access(t, s.id, "employee", subj, r.choice(["address", "phone", "card", "limits"]), ip,
                     "update", session=sid, iat=iat, key=SSO_KEY, ua=STAFF_UA, malicious=malicious)


# ---------------------------------------------------------------- services and partners

SERVICES = {
    # id: (api key, addresses, description)
    "svc-fraudscore": ("ak-fraudscore-prod-03", ["10.64.2.11", "10.64.2.12", "10.64.2.13", "10.64.2.14"]),
    "svc-notify": ("ak-notify-prod-01", ["10.64.3.20", "10.64.3.21"]),
    "svc-statements": ("ak-stmt-batch-02", ["10.64.5.7"]),
    "svc-crm-export": ("ak-crm-sync-07", ["10.64.6.30"]),
    "partner-inkasso": ("ak-partner-inkasso-01", []),   # office addresses drawn per seed
    "partner-bureau": ("ak-partner-bureau-02", []),     # hosted at IONOS DE
}


class Services:
    def __init__(self, w: World, cust: Customers):
        self.w = w
        self.cust = cust
        r = w.rng("services")
        self.addrs = {k: list(v[1]) for k, v in SERVICES.items()}
        self.addrs["partner-inkasso"] = [addr(r, "de_vodafone_business") for _ in range(2)]
        self.addrs["partner-bureau"] = [addr(r, "de_ionos") for _ in range(2)]
        self.tokens: dict[tuple[str, int], tuple[str, float]] = {}

    def token(self, svc: str, t: float, ip: str, r: random.Random, malicious=False) -> tuple[str, float]:
        """The service's hourly API token at t (a login the first time it is needed)."""
        slot = int((t - self.w.start) // HOUR)
        k = (svc, slot, ip) if malicious else (svc, slot)
        if k not in self.tokens:
            lt = self.w.start + slot * HOUR + r.uniform(0, 20)
            lt = min(lt, t - 0.5)
            tok = "tok-" + hexid(r, 16)
            self.w.login(lt, svc, "service", "success", ip, tok, "api_key", f"{svc}/2.4 (python-httpx)",
                         malicious=malicious)
            self.tokens[k] = (tok, lt)
        return self.tokens[k]

    def call(self, svc, t, subj, res, ip, r, action="read", records=None, malicious=False):
        tok, lt = self.token(svc, t, ip, r, malicious)
        self.w.access(t, svc, "service", subj, res, ip, action, records, session=tok, iat=lt,
                      key=SERVICES[svc][0], ua=f"{svc}/2.4 (python-httpx)", malicious=malicious)

    def hourly(self, svc: str, per_hour: float, prof: list[float], res: list[str], r: random.Random,
               weekend: float = 1.0, workdays_only=False, hours: tuple[int, int] = (0, 24)):
        w = self.w
        mean = sum(prof) / 24
        for h in range(w.days * 24):
            t0 = w.start + h * HOUR
            d = h // 24
            lh = int(local_hour(t0))
            if workdays_only and not w.workday(d):
                continue
            if not hours[0] <= lh < hours[1]:
                continue
            lam = per_hour * prof[lh] / mean * (1.0 if w.workday(d) else weekend)
            n = poisson(r, lam)
            addrs = self.addrs[svc]
            for _ in range(n):
                t = t0 + r.random() * HOUR
                subj = self.cust.ids[self.cust.pick(r)]
                self.call(svc, t, subj, r.choice(res), addrs[r.randrange(len(addrs))], r)

    def run(self):
        w = self.w
        s = w.sc.scale
        r = w.rng("svc_fraud")
        self.hourly("svc-fraudscore", 110 * s, SHOP, ["transactions", "card"], r, weekend=0.85)
        r = w.rng("svc_notify")
        self.hourly("svc-notify", 35 * s, CUST_WD, ["phone", "email"], r, weekend=0.7, hours=(7, 22))
        # nightly statement batch: every night 01:30 local, 1/28 of the base
        r = w.rng("svc_stmt")
        for d in range(w.days):
            t = w.start + d * DAY + 1.5 * HOUR + r.uniform(0, 120)
            if t >= w.end:
                break
            subjects = r.sample(self.cust.ids, self.cust.n // 28)
            ip = self.addrs["svc-statements"][0]
            for subj in subjects:
                t += r.uniform(0.5, 6.0)
                self.call("svc-statements", t, subj, "statements", ip, r)
        # CRM: a delta export every night at 04:00; the full export at month-end closing
        r = w.rng("svc_crm")
        ip = self.addrs["svc-crm-export"][0]
        for d in range(w.days):
            t = w.start + d * DAY + 4 * HOUR + r.uniform(0, 300)
            for _ in range(r.randint(1, 3)):
                self.call("svc-crm-export", t, self.cust.ids[r.randrange(self.cust.n)], "profile", ip, r,
                          "export", r.randint(20, 220))
                t += r.uniform(20, 90)
            if self.last_workday_of_month(d):
                total = self.cust.n
                t += 600
                while total > 0:
                    k = min(total, 1000)
                    self.call("svc-crm-export", t, self.cust.ids[r.randrange(self.cust.n)], "profile",
                              ip, r, "export", k)
                    total -= k
                    t += r.uniform(20, 45)
        # collections partner: business hours, reads of overdue customers; Monday export
        r = w.rng("partner_inkasso")
        overdue = r.sample(self.cust.ids, max(60, self.cust.n // 150))
        for d in range(w.days):
            if not w.workday(d):
                continue
            day0 = w.start + d * DAY
            for _ in range(r.randint(15, 40)):
                t = day0 + r.uniform(8.5, 17) * HOUR
                ip = self.addrs["partner-inkasso"][r.randrange(2)]
                subj = r.choice(overdue)
                for res in r.sample(["address", "phone", "account_summary"], r.randint(1, 3)):
                    self.call("partner-inkasso", t, subj, res, ip, r)
                    t += r.uniform(1, 10)
            if d % 7 == 0:
                t = day0 + 9 * HOUR + r.uniform(0, 1200)
                self.call("partner-inkasso", t, r.choice(overdue), "address",
                          self.addrs["partner-inkasso"][0], r, "export", r.randint(40, 90))
        # credit bureau: searches on workdays
        r = w.rng("partner_bureau")
        self.hourly("partner-bureau", 150 / 24 * max(0.3, s), [0] * 8 + [1] * 10 + [0] * 6, ["profile", "address"],
                    r, workdays_only=True, hours=(8, 18))

    def last_workday_of_month(self, d: int) -> bool:
        """Month-end closing: the last Monday-Friday of the calendar month."""
        if not self.w.workday(d):
            return False
        t = self.w.start + d * DAY + 12 * HOUR
        month = _time.gmtime(t).tm_mon
        nxt = d + (3 if d % 7 == 4 else 1)
        return _time.gmtime(self.w.start + nxt * DAY + 12 * HOUR).tm_mon != month


def poisson(r: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, int(r.gauss(lam, math.sqrt(lam)) + 0.5))
    L, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= r.random()
        if p <= L:
            return k
        k += 1


# ---------------------------------------------------------------- identity at the start

def key_store(w: World):
    t = w.start
    w.identity(t, "key_issued", key_id=APP_KEY, owner_id="svc-idp", max_token_lifetime_s=43200)
    w.identity(t, "key_issued", key_id=LEGACY_KEY, owner_id=LEGACY_OWNER, max_token_lifetime_s=43200)
    w.identity(t, "key_issued", key_id=SSO_KEY, owner_id="svc-entra", max_token_lifetime_s=36000)
    for svc, (key, _) in SERVICES.items():
        w.identity(t, "key_issued", key_id=key, owner_id=svc, max_token_lifetime_s=7200)
    # the platform engineer who generated the legacy key leaves on day 0
    w.identity(w.start + 17.5 * HOUR, "principal_terminated", principal_id=LEGACY_OWNER)
    if w.days >= 5:
        w.identity(w.start + 4 * DAY + 10 * HOUR, "key_issued", key_id=APP_KEY_NEXT, owner_id="svc-idp",
                   max_token_lifetime_s=43200)
        w.identity(w.start + 5 * DAY + 10 * HOUR, "key_revoked", key_id=APP_KEY)


def lag_days(w: World):
    r = w.rng("lagdays")
    for d in range(w.days):
        if r.random() < 0.35:
            a = w.start + d * DAY + r.uniform(7, 22) * HOUR
            w.lag_windows.append((a, a + r.uniform(10, 45) * 60, r.uniform(90, 420)))


# ---------------------------------------------------------------- attacks

class Truth:
    def __init__(self, expected: str):
        self.principals: list[str] = []
        self.keys: list[str] = []
        self.sessions: list[str] = []
        self.sources: list[str] = []
        self.exposures: list[tuple[float, str, int]] = []
        self.seen: set[str] = set()
        self.expected = expected

    def add(self, lst: list, x):
        if x not in lst:
            lst.append(x)

    def expose(self, t: float, subj: str, action: str, records: int | None):
        if action in ("export", "search"):
            self.exposures.append((t, subj, records or 1))
        elif subj not in self.seen:
            self.seen.add(subj)
            self.exposures.append((t, subj, 1))


class Attacker:
    def __init__(self, w: World, cust: Customers, truth: Truth):
        self.w, self.cust, self.truth = w, cust, truth
        # clock_poison is forged_fresh_resi's very attack (same draws), plus one event
        self.r = w.rng("attack|" + ("forged_fresh_resi" if w.scenario == "clock_poison" else w.scenario))
        self.used: set[str] = set()

    def access(self, t, actor, atype, subj, res, ip, action="read", records=None, **kw):
        self.w.access(t, actor, atype, subj, res, ip, action, records, malicious=True, **kw)
        self.truth.expose(t, subj, action, records)
        self.truth.add(self.truth.sources, ip)

    def victim(self) -> int:
        # the attacker walks a list of customer ids (a leaked or enumerated list), not activity
        while True:
            i = self.r.randrange(self.cust.n)
            if self.cust.ids[i] not in self.used:
                self.used.add(self.cust.ids[i])
                return i

    def pace(self, t0: float, t1: float, day_rate: float, night_rate: float):
        """Times of per-account visits: day_rate an hour 08-23 local, night_rate otherwise."""
        r = self.r
        t = t0
        out = []
        while t < t1:
            lh = local_hour(t)
            rate = day_rate if 8 <= lh < 23 else night_rate
            t += r.expovariate(rate / HOUR)
            if t < t1:
                out.append(t)
        return out

    # ---- forged tokens, departed key, German residential proxies
    def forged_fresh_resi(self):
        w, r, tr = self.w, self.r, self.truth
        tr.add(tr.keys, LEGACY_KEY)
        pool = [addr(r, p) for p in r.choices(BROADBAND, weights=BROADBAND_W, k=400)]
        last_use: dict[str, list[float]] = {}
        t0 = w.start + DAY + 9 * HOUR
        for t in self.pace(t0, t0 + 40 * HOUR, 14, 4):
            while True:
                ip = r.choice(pool)
                uses = [x for x in last_use.get(ip, []) if x > t - HOUR]
                if len(uses) < 2:
                    break
            last_use.setdefault(ip, []).append(t)
            i = self.victim()
            c = self.cust.ids[i]
            sid = "s-" + hexid(r, 20)
            tr.add(tr.sessions, sid)
            iat = t - r.uniform(60, 1800)
            ua = r.choice(APP_UA)
            for res in ["profile", "address", "card", "transactions"]:
                self.access(t, c, "customer", c, res, ip, session=sid, iat=iat, key=LEGACY_KEY, ua=ua)
                t += r.uniform(2, 20)

    def clock_poison(self):
        w, r = self.w, self.w.rng("poison")
        t = w.start + DAY + 8.9 * HOUR
        c = self.cust.ids[r.randrange(self.cust.n)]
        ip = addr(r, "de_telekom")
        ev = {"actor_id": c, "actor_type": "customer", "subject_id": c, "resource": "profile",
              "action": "read", "src_ip": ip, "session_id": "s-" + hexid(r, 20), "key_id": LEGACY_KEY,
              "token_issued_at": iso(t - 300)}
        w.emit(ev, t + 400 * DAY, True, arrival=t)
        self.forged_fresh_resi()

    # ---- no session id, unannounced key ids, German mobile proxies
    def forged_unannounced_nosession(self):
        w, r, tr = self.w, self.r, self.truth
        kids = [f"kid-app-2026-{x}" for x in ("10a", "10b", "09", "09b", "08", "11a", "rot1", "rot2")]
        for k in kids:
            tr.add(tr.keys, k)
        pool = [addr(r, MOBILE[p]) for p in r.choices(BROADBAND, weights=BROADBAND_W, k=300)]
        t0 = w.start + DAY + 10 * HOUR
        for t in self.pace(t0, t0 + 44 * HOUR, 10, 3):
            ip = r.choice(pool)
            i = self.victim()
            c = self.cust.ids[i]
            key = r.choice(kids)
            ua = r.choice(APP_UA)
            for res in ["address", "phone", "card"]:
                self.access(t, c, "customer", c, res, ip, iat=t - r.uniform(30, 900), key=key, ua=ua)
                t += r.uniform(1, 12)

    # ---- stolen current key, hosting abroad rotated per account
    def hosting_rotation_abroad(self):
        w, r, tr = self.w, self.r, self.truth
        tr.add(tr.keys, APP_KEY)
        nets: list[str] = []
        seen = set()
        while len(nets) < 400:
            n = subnet24(r, r.choice(ABROAD_HOSTING))
            if n not in seen:
                seen.add(n)
                nets.append(n)
        count = {n: 0 for n in nets}
        last = {n: -1e18 for n in nets}
        t0 = w.start + DAY + 7 * HOUR
        for t in self.pace(t0, t0 + 46 * HOUR, 12, 6):
            cands = [n for n in nets if count[n] < 2 and last[n] < t - HOUR]
            if not cands:
                break
            n = r.choice(cands)
            count[n] += 1
            last[n] = t
            ip = n + str(r.randrange(2, 250))
            i = self.victim()
            c = self.cust.ids[i]
            sid = "s-" + hexid(r, 20)
            tr.add(tr.sessions, sid)
            iat = t - r.uniform(2 * HOUR, 10 * HOUR)
            ua = r.choice(APP_UA)
            for res in ["address", "profile", "card", "transactions", "statements"]:
                self.access(t, c, "customer", c, res, ip, session=sid, iat=iat, key=APP_KEY, ua=ua)
                t += r.uniform(1, 15)

    # ---- service key reused by malware: night, new internal address
    def service_night_newip(self, svc: Services):
        w, r, tr = self.w, self.r, self.truth
        name = "svc-fraudscore"
        tr.add(tr.principals, name)
        tr.add(tr.keys, SERVICES[name][0])
        ip = "10.77.14.23"
        for night in (1, 2):
            t = w.start + night * DAY + 1.0 * HOUR
            end = t + 3.5 * HOUR
            while t < end:
                t += r.expovariate(300 / HOUR)
                i = self.victim()
                c = self.cust.ids[i]
                tok, lt = svc.token(name, t, ip, r, malicious=True)
                tr.add(tr.sessions, tok)
                for res in ["card", "profile", "phone"]:
                    self.access(t, name, "service", c, res, ip, session=tok, iat=lt,
                                key=SERVICES[name][0], ua=f"{name}/2.4 (python-httpx)")
                    t += r.uniform(0.05, 0.4)

    # ---- service at 5x from its usual addresses and hours
    def service_5x(self, svc: Services):
        w, r, tr = self.w, self.r, self.truth
        name = "svc-notify"
        tr.add(tr.principals, name)
        tr.add(tr.keys, SERVICES[name][0])
        s = w.sc.scale
        mean = sum(CUST_WD) / 24
        t_first = w.start + DAY + 10 * HOUR
        for h in range(24, w.days * 24):
            t0 = w.start + h * HOUR
            lh = int(local_hour(t0))
            if not 7 <= lh < 22 or t0 < t_first:
                continue
            lam = 4 * 35 * s * CUST_WD[lh] / mean * (1.0 if w.workday(h // 24) else 0.7)
            for _ in range(poisson(r, lam)):
                t = t0 + r.random() * HOUR
                i = self.victim()
                c = self.cust.ids[i]
                ip = svc.addrs[name][r.randrange(2)]
                tok, lt = svc.token(name, t, ip, r)
                for res in ["phone", "email"]:
                    self.access(t, name, "service", c, res, ip, session=tok, iat=lt,
                                key=SERVICES[name][0], ua=f"{name}/2.4 (python-httpx)")
                    t += r.uniform(0.05, 1)

    # ---- partner bulk export (Lotte Card)
    def partner_bulk_export(self, svc: Services):
        w, r, tr = self.w, self.r, self.truth
        name = "partner-inkasso"
        tr.add(tr.principals, name)
        tr.add(tr.keys, SERVICES[name][0])
        t = w.start + DAY + 14.2 * HOUR
        ip = svc.addrs[name][0]
        for _ in range(6):
            tok, lt = svc.token(name, t, ip, r)
            k = r.randint(18000, 30000)
            c = self.cust.ids[r.randrange(self.cust.n)]
            self.access(t, name, "service", c, "address", ip, "export", k, session=tok, iat=lt,
                        key=SERVICES[name][0], ua=f"{name}/2.4 (python-httpx)")
            t += r.uniform(300, 1500)

    # ---- insider, slow and low, four weeks
    def insider_slow(self, staff: StaffModel):
        w, r, tr = self.w, self.r, self.truth
        cands = [s for s in staff.staff if s.team == "bo-credit"]
        s = cands[r.randrange(len(cands))]
        tr.add(tr.principals, s.id)
        for d in range(2, w.days):
            day = staff.days_of[s.id].get(d)
            if not day:
                continue
            sid1, a, b, ip, sid2, relog = day
            n = int(r.gauss(40, 5))
            for t in sorted(r.uniform(a + 900, b - 900) for _ in range(n)):
                # the session of that time of day (the afternoon one once it exists)
                sid, iat = (sid2, relog) if sid2 != sid1 and t > relog + 60 else (sid1, a)
                tr.add(tr.sessions, sid)
                c = self.cust.ids[self.victim()]
                for res in r.sample(["profile", "income", "credit_report", "limits", "address"], r.randint(2, 4)):
                    self.access(t, s.id, "employee", c, res, ip, session=sid, iat=iat, key=SSO_KEY, ua=STAFF_UA)
                    t += r.uniform(10, 80)

    # ---- IDOR ring: mule accounts read other customers through their own sessions
    def idor_ring(self):
        w, r, tr = self.w, self.r, self.truth
        mules = [r.randrange(self.cust.n) for _ in range(60)]
        for m in mules:
            tr.add(tr.principals, self.cust.ids[m])
        for d in range(1, w.days):
            for m in mules:
                # a session of their own at an ordinary hour, then the other customers
                t = w.start + d * DAY + pick_hour(r, CUST_WD)
                if t >= w.end - 3600:
                    continue

                def others(t, sid, login_t, ip, ua, key, m=m):
                    for _ in range(4):
                        c = self.cust.ids[self.victim()]
                        t += r.uniform(20, 120)
                        for res in r.sample(["transactions", "card", "address", "account_summary"], 2):
                            self.access(t, self.cust.ids[m], "customer", c, res, ip, session=sid,
                                        iat=login_t, key=key, ua=ua)
                            t += r.uniform(2, 15)

                sid, _, _ = self.cust.session(m, t, r, extra=others)
                tr.add(tr.sessions, sid)

    # ---- session theft (infostealer)
    def session_theft(self):
        w, r, tr = self.w, self.r, self.truth
        proxies = [addr(r, p) for p in r.choices(BROADBAND, weights=BROADBAND_W, k=150)]
        t0 = w.start + DAY + 8 * HOUR
        for t in self.pace(t0, t0 + 40 * HOUR, 4, 0.8):
            i = self.victim()
            c = self.cust.ids[i]
            sid, login_t, _ = self.cust.session(i, t, r)
            tr.add(tr.principals, c)
            tr.add(tr.sessions, sid)
            ta = login_t + r.uniform(300, 2400)
            ip = r.choice(proxies)
            ua = self.cust.app_ua[i]
            for res in ["statements", "card", "address", "transactions", "limits"][: r.randint(3, 5)]:
                self.access(ta, c, "customer", c, res, ip, session=sid, iat=login_t, key=w.app_key_at(login_t),
                            ua=ua)
                ta += r.uniform(3, 25)
            if r.random() < 0.3:
                self.access(ta, c, "customer", c, "phone", ip, "update", session=sid, iat=login_t,
                            key=w.app_key_at(login_t), ua=ua)

    # ---- credential stuffing, low and slow
    def stuffing_slow(self):
        w, r, tr = self.w, self.r, self.truth
        pools = ["de_telekom", "de_vodafone", "de_o2", "at", "nl", "pl"]
        proxies = [addr(r, p) for p in r.choices(pools, weights=[0.3, 0.22, 0.14, 0.12, 0.1, 0.12], k=4000)]
        uses: dict[str, list[float]] = {}
        t0 = w.start + DAY + 6 * HOUR
        t1 = t0 + 60 * HOUR
        n = 30000
        times = sorted(r.uniform(t0, t1) for _ in range(n))
        for t in times:
            while True:
                ip = r.choice(proxies)
                if len([x for x in uses.get(ip, []) if x > t - HOUR]) < 3:
                    break
            uses.setdefault(ip, []).append(t)
            real = r.random() < 0.7
            if real:
                i = r.randrange(self.cust.n)
                acct = self.cust.ids[i]
            else:
                acct = f"c{r.randrange(10**7, 10**8)}"
            ua = r.choice(WEB_UA)
            ok = real and r.random() < 0.006
            if not ok:
                w.login(t, acct, "customer", "failure", ip, method="password", ua=ua,
                        device=hexid(r, 12), malicious=True)
                tr.add(tr.sources, ip)
                continue
            sid = "s-" + hexid(r, 20)
            w.login(t, acct, "customer", "success", ip, sid, "password", ua, hexid(r, 12), malicious=True)
            tr.add(tr.principals, acct)
            tr.add(tr.sessions, sid)
            ta = t + r.uniform(60, 600)
            key = w.app_key_at(t)
            for res in ["card", "profile", "address", "phone"]:
                self.access(ta, acct, "customer", acct, res, ip, session=sid, iat=t, key=key, ua=ua)
                ta += r.uniform(3, 30)
            if r.random() < 0.4:
                self.access(ta, acct, "customer", acct, r.choice(["phone", "email"]), ip, "update",
                            session=sid, iat=t, key=key, ua=ua)


# ---------------------------------------------------------------- generate / write

def generate(scenario: str, seed: int, days: int | None = None, scale: float | None = None,
             cc_scale: float | None = None) -> Generated:
    """The scenario's events and truth for a seed (days, scale, cc_scale: a smaller world, for tests)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}")
    w = World(scenario, seed, days, scale, cc_scale)
    lag_days(w)
    key_store(w)
    cust = Customers(w)
    cust.run()
    staff = StaffModel(w, cust)
    staff.run()
    svc = Services(w, cust)
    svc.run()
    cust.enforce_locks()
    truth = None
    sc = w.sc
    if sc.expected:
        tr = Truth(sc.expected)
        atk = Attacker(w, cust, tr)
        fn = getattr(atk, scenario)
        if scenario in ("service_night_newip", "service_5x", "partner_bulk_export"):
            fn(svc)
        elif scenario == "insider_slow":
            fn(staff)
        else:
            fn()
        truth = tr
    # arrival order; ids assigned in that order, like offsets
    w.items.sort(key=lambda x: (x[0], x[1]))
    lines = []
    mal_ids = []
    first_mal = None
    for n, (_arr, _, ev, mal) in enumerate(w.items):
        eid = f"nk{seed:02d}-{n:08d}"
        out = {"event_id": eid}
        out.update(ev)
        lines.append(json.dumps(out, separators=(",", ":")))
        if mal:
            mal_ids.append(eid)
            t = _ts(ev["ts"])
            if t < w.start + 100 * DAY and (first_mal is None or t < first_mal):
                first_mal = t
    t_res = {"scenario": scenario, "seed": seed, "days": sc.days, "scale": sc.scale,
             "start": iso(w.start), "end": iso(w.end), "summary": sc.summary, "attack": None}
    if truth:
        exps = sorted(truth.exposures, key=lambda x: x[0])
        t_res["attack"] = {
            "principals": truth.principals, "keys": truth.keys, "sessions": truth.sessions,
            "sources": truth.sources, "exposures": [[iso(t), s, n] for t, s, n in exps],
            "event_ids": mal_ids, "first_malicious": iso(first_mal) if first_mal else iso(w.start),
            "expected_severity": truth.expected,
        }
    return Generated(scenario, seed, lines, t_res, w.start, w.end)


def _ts(s: str) -> float:
    import calendar
    base = calendar.timegm(_time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S"))
    return base + (float(s[19:23]) if s[19] == "." else 0.0)


def write(gen: Generated, path: str, truth_path: str | None = None) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for line in gen.lines:
            f.write(line + "\n")
    if truth_path:
        with open(truth_path, "w", encoding="utf-8") as f:
            json.dump(gen.truth, f)


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description="red team C: a German card issuer's traffic, with attacks")
    ap.add_argument("scenario", choices=list(SCENARIOS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--truth")
    a = ap.parse_args(argv)
    write(generate(a.scenario, a.seed), a.out, a.truth)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
