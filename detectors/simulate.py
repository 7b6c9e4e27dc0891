"""Seeded, labeled synthetic traffic: the ``accesswatch simulate`` generator.

A pure and deterministic model of one online shop's access traffic (stdlib ``random.Random``
seeded from the config, no wall clock): customers logging in from Korean broadband and mobile
carriers and reading their own data, support staff reading the customers they help, internal
services with their API keys and a nightly export batch, and the identity facts (keys issued,
people leaving, sessions revoked) around them. Named attacks from :data:`ATTACKS` are injected
on top; every event carries a ``label`` (``"normal"`` or the attack name) and every attack
yields one ground-truth record.

Events follow the event contract v1 in ``shared/DESIGN.md``; times are RFC 3339 strings with
milliseconds and ``Z``. IP addresses come from real prefixes whose country and ASN were
checked against the bundled geoip2fast data (see :data:`NETWORKS`); only ``src_ip`` is sent,
the engine enriches it, except a few logins that carry their own ``country`` and ``asn``.

Conventions a consumer should know:

- ``event_id`` is ``e-<seed>-<n>``, ``n`` counting from 0 in stream order.
- Every event lies in ``[start, start + hours)``. The key store is replayed at ``start``:
  one ``key_issued`` per existing key, its real issue date (2018-2025) in an extra
  ``issued_at`` field; keys of new hires are issued mid-stream.
- ``label`` is the attack name on the attacker's own actions only. Facts an attack needs
  (its legacy key's ``key_issued``, the owner's ``principal_terminated``) and the victims'
  own genuine activity stay ``"normal"``; the truth record lists the former under
  ``context_event_ids``.
- A truth record: ``attack``, ``description``, ``start_ts``/``end_ts`` (first and last
  attack event), ``event_ids``, ``entities`` (``actor``, ``src_ip``, ``key``, ``account``,
  ``session`` seen in the attack events, leaving out what normal traffic shares: the office
  IP, the active customer and staff keys), ``expected_detectors``, ``victims`` (customers
  whose data was read, in first-touch order; for login-only attacks the accounts taken
  over), ``context_event_ids`` and ``params`` (the seeded choices: servers, keys, people).
- ``run`` writes the truth as one JSON array; :func:`simulate` also returns a
  ``population`` summary (travellers, VPN and relay users, new hires...) for tests.

>>> res = simulate(SimConfig(seed=1, hours=6, customers=60, employees=8, services=2,
...                          attacks=("coupang",)))
>>> res.events[0]["event_id"], res.truth[0]["attack"], res.truth[0]["params"]["key_id"]
('e-1-0', 'coupang', 'kid-legacy-2019')
>>> all(a["ts"] <= b["ts"] for a, b in zip(res.events, res.events[1:]))
True
"""

from __future__ import annotations

import argparse
import heapq
import ipaddress
import math
import random
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import orjson

# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------

ATTACKS: dict[str, str] = {
    "coupang": "departed engineer's still-valid legacy signing key forges customer tokens; "
    "3-5 hosting servers abroad read address/order history of many customers, ramping up",
    "coupang_predating": "as coupang, but every forged token claims to be issued before the "
    "stream started, so no login can be checked against it",
    "coupang_active_key": "as coupang, but the forged tokens are signed with the active "
    "customer key, so key-owner checks see nothing",
    "insider": "one support employee reads thousands of distinct customers in one shift "
    "from the office",
    "departed_key": "a service API key whose owner was terminated is used after the "
    "termination, from outside the internal network",
    "terminated_session": "an employee is terminated mid-shift and their still-open SSO "
    "session keeps reading customers",
    "stuffing": "credential stuffing: a few hosting IPs try thousands of accounts, a handful "
    "succeed and the takeovers read address/payment from a new device",
    "spray": "password spray: one password across many accounts, slowly, from many IPs of "
    "one hosting ASN",
    "impossible_travel": "12 accounts log in from home and minutes later from another "
    "continent (no VPN, no relay) and read their data there",
    "session_hijack": "one customer's session is used from several countries at once while "
    "its owner is still using it at home",
}

EXPECTED_DETECTORS: dict[str, list[str]] = {
    "coupang": ["overseas_server", "bulk_lookup", "unissued_session", "revoked_credential"],
    "coupang_predating": ["overseas_server", "bulk_lookup", "revoked_credential"],
    "coupang_active_key": ["overseas_server", "bulk_lookup", "unissued_session"],
    "insider": ["bulk_lookup"],
    "departed_key": ["revoked_credential"],
    "terminated_session": ["revoked_credential"],
    "stuffing": ["credential_stuffing", "account_takeover"],
    "spray": ["password_spray"],
    "impossible_travel": ["impossible_travel"],
    "session_hijack": ["impossible_travel"],
}

ENTITY_KINDS = ("actor", "src_ip", "key", "account", "session")


@dataclass
class SimConfig:
    seed: int = 7
    start: str = "2025-06-24T00:00:00Z"  # RFC 3339
    hours: float = 24.0
    customers: int = 2000
    employees: int = 30  # support staff + engineers
    services: int = 5
    attacks: tuple[str, ...] = ()  # names from ATTACKS
    home_country: str = "KR"
    attack_start_hour: float = 2.0  # hours after start when attacks begin


@dataclass
class SimResult:
    events: list[dict]  # sorted by ts, RFC 3339 strings with ms and "Z"
    truth: list[dict]  # one record per injected attack
    # Who is who in the normal population (travellers, VPN users, new hires...): for tests
    # and demos; not part of any wire format.
    population: dict[str, Any] = field(default_factory=dict)


class SimulationError(ValueError):
    """A configuration the generator cannot honour (one readable line)."""


def simulate(cfg: SimConfig) -> SimResult:
    """All events (sorted by ``ts``) and the ground truth of every injected attack."""
    world = _World(cfg)
    events = list(world.stream())
    return SimResult(events=events, truth=world.truth(), population=world.population())


def iter_events(cfg: SimConfig) -> Iterator[dict]:
    """The same events as :func:`simulate`, generated lazily (for 1M+ event benchmarks)."""
    return _World(cfg).stream()


# --------------------------------------------------------------------------------------------
# Networks: real prefixes, checked with geoip2fast (tests/test_simulate.py re-checks them)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prefix:
    cidr: str
    country: str
    asn_name: str  # as geoip2fast names it
    asn: int | None = None  # only where certain; used for the few self-enriched events

    def __post_init__(self) -> None:
        net = ipaddress.ip_network(self.cidr)
        object.__setattr__(self, "_base", int(net.network_address))
        object.__setattr__(self, "_size", net.num_addresses)
        object.__setattr__(self, "_v6", net.version == 6)
        object.__setattr__(self, "_plen", net.prefixlen)

    def ip(self, rng: random.Random) -> str:
        """A random host address inside the prefix (never .0 or .255 in IPv4)."""
        if self._v6:  # type: ignore[attr-defined]
            return self.ip6(rng, self.subnet64(rng))
        n = self._base + rng.randrange(self._size)  # type: ignore[attr-defined]
        n = (n & ~0xFF) | rng.randrange(1, 255)
        return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"

    def subnet64(self, rng: random.Random) -> int:
        """A random /64 inside an IPv6 prefix (a customer's home or phone network)."""
        bits = 64 - self._plen  # type: ignore[attr-defined]
        return self._base | (rng.getrandbits(bits) << 64)  # type: ignore[attr-defined]

    @staticmethod
    def ip6(rng: random.Random, net64: int) -> str:
        """A privacy-extension style interface id inside a /64."""
        return ipaddress.IPv6Address(net64 | rng.getrandbits(64) | 1).compressed


def _p(cidr: str, cc: str, asn_name: str, asn: int | None = None) -> Prefix:
    return Prefix(cidr, cc, asn_name, asn)


NETWORKS: dict[str, tuple[Prefix, ...]] = {
    "kr_broadband": (
        _p("121.134.0.0/17", "KR", "Korea Telecom", 4766),
        _p("59.6.0.0/16", "KR", "Korea Telecom", 4766),
        _p("222.106.0.0/18", "KR", "Korea Telecom", 4766),
        _p("183.98.0.0/18", "KR", "Korea Telecom", 4766),
        _p("1.224.0.0/20", "KR", "SK Broadband Co Ltd", 9318),
        _p("58.120.0.0/19", "KR", "SK Broadband Co Ltd", 9318),
        _p("211.234.0.0/20", "KR", "LG DACOM Corporation", 3786),
        _p("106.244.0.0/14", "KR", "LG DACOM Corporation", 3786),
    ),
    "kr_mobile": (
        _p("223.32.0.0/13", "KR", "SK Telecom"),
        _p("39.4.0.0/14", "KR", "Korea Telecom"),
        _p("110.68.0.0/14", "KR", "Korea Telecom"),
        _p("175.216.0.0/13", "KR", "Korea Telecom"),
        _p("106.101.0.0/21", "KR", "LGTELECOM"),
        _p("211.36.128.0/19", "KR", "LGTELECOM"),
        _p("117.111.0.0/19", "KR", "LGTELECOM"),
    ),
    "kr_v6": (
        _p("2001:e60::/34", "KR", "Korea Telecom"),
        _p("2001:2d8::/32", "KR", "SK Telecom"),
        _p("2406:5900::/32", "KR", "LG DACOM Corporation"),
    ),
    # The company's egress /24 (a Seoul data-centre block).
    "kr_office": (_p("203.246.168.0/24", "KR", "KINX"),),
    # iCloud Private Relay / similar egress nodes geolocated in Korea.
    "kr_relay": (
        _p("172.224.127.0/24", "KR", "AKAMAI-AS"),
        _p("172.226.94.0/23", "KR", "AKAMAI-AS"),
        _p("146.75.48.0/22", "KR", "FASTLY"),
    ),
    # Commercial VPN exits abroad (Datacamp/CDN77, M247, Mullvad's AS).
    "vpn": (
        _p("89.187.160.0/23", "JP", "Datacamp Limited"),
        _p("156.146.56.0/24", "SG", "Datacamp Limited"),
        _p("146.70.40.0/24", "FR", "M247 Europe SRL"),
        _p("185.65.134.0/24", "NL", "31173 Services AB"),
    ),
    # Cloud and hosting providers outside Korea.
    "hosting": (
        _p("3.101.0.0/16", "US", "AMAZON-02"),
        _p("18.176.0.0/13", "JP", "AMAZON-02"),
        _p("52.220.0.0/15", "SG", "AMAZON-02"),
        _p("3.120.0.0/13", "DE", "AMAZON-02"),
        _p("54.236.0.0/15", "US", "AMAZON-AES"),
        _p("159.89.0.0/19", "DE", "DIGITALOCEAN-ASN"),
        _p("167.71.0.0/20", "NL", "DIGITALOCEAN-ASN"),
        _p("188.166.0.0/18", "NL", "DIGITALOCEAN-ASN"),
        _p("103.253.144.0/22", "SG", "DIGITALOCEAN-ASN"),
        _p("141.94.0.0/19", "FR", "OVH SAS"),
        _p("51.91.0.0/20", "FR", "OVH SAS"),
        _p("45.77.0.0/21", "US", "AS-CHOOPA"),
        _p("139.180.128.0/19", "SG", "AS-CHOOPA"),
        _p("65.108.0.0/17", "FI", "Hetzner Online GmbH"),
        _p("95.216.0.0/16", "FI", "Hetzner Online GmbH"),
        _p("139.162.0.0/18", "SG", "Akamai Connected Cloud"),
    ),
    # Home broadband and mobile carriers abroad (travellers, and attackers at home).
    "residential_abroad": (
        _p("153.144.0.0/12", "JP", "NTT Communications Corporation"),
        _p("106.128.0.0/10", "JP", "KDDI CORPORATION"),
        _p("126.32.0.0/12", "JP", "SoftBank Corp."),
        _p("49.98.0.0/20", "JP", "NTT DOCOMO, INC."),
        _p("73.15.0.0/17", "US", "COMCAST-7922"),
        _p("24.4.0.0/20", "US", "COMCAST-7922"),
        _p("172.56.0.0/15", "US", "T-MOBILE-AS21928"),
        _p("174.192.0.0/12", "US", "CELLCO-PART"),
        _p("27.64.0.0/14", "VN", "Viettel Group"),
        _p("171.224.0.0/13", "VN", "Viettel Group"),
        _p("14.160.0.0/12", "VN", "VNPT Corp"),
        _p("113.160.0.0/11", "VN", "VNPT Corp"),
        _p("187.10.0.0/15", "BR", "TELEFONICA BRASIL S.A"),
        _p("79.192.0.0/10", "DE", "Deutsche Telekom AG"),
        _p("87.160.0.0/13", "DE", "Deutsche Telekom AG"),
        _p("86.128.0.0/14", "GB", "British Telecommunications PLC"),
        _p("102.88.0.0/13", "NG", "MTN NIGERIA Communication limited"),
        _p("197.210.0.0/16", "NG", "MTN NIGERIA Communication limited"),
        _p("95.24.0.0/16", "RU", "PVimpelCom"),
    ),
}

# Home countries the population model knows (networks and local time zone).
_HOME = {"KR": {"utc_offset_h": 9}}

# Trips a real traveller makes from Korea: destination and flight hours.
_TRIPS = (("JP", 2.5), ("VN", 5.0), ("US", 11.0), ("DE", 12.5))
# Far places for journeys no traveller makes in minutes.
_FAR = ("BR", "NG", "RU", "US", "DE", "GB")

# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------

SEC, MIN, HOUR, DAY = 1000, 60_000, 3_600_000, 86_400_000

_MINUTE_CACHE: dict[int, str] = {}


def fmt_ts(ms: int) -> str:
    """Epoch milliseconds as RFC 3339 with milliseconds and ``Z``.

    >>> fmt_ts(1750734765120)
    '2025-06-24T03:12:45.120Z'
    """
    minute, r = divmod(ms, 60_000)
    head = _MINUTE_CACHE.get(minute)
    if head is None:
        if len(_MINUTE_CACHE) > 500_000:
            _MINUTE_CACHE.clear()
        head = datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%dT%H:%M:")
        _MINUTE_CACHE[minute] = head
    sec, milli = divmod(r, 1000)
    return f"{head}{sec:02d}.{milli:03d}Z"


def parse_ts(text: str) -> int:
    """RFC 3339 (with a zone) to epoch milliseconds; SimulationError when it is not one."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise SimulationError(f"start: {text!r} is not an RFC 3339 time") from None
    if dt.tzinfo is None:
        raise SimulationError(f"start: {text!r} has no time zone (add Z or +09:00)")
    return round(dt.timestamp() * 1000)


# Customer activity by local hour (0..23): quiet before dawn, lunch and evening peaks.
_DIURNAL = (
    3.0,
    2.0,
    1.2,
    0.8,
    0.6,
    0.7,
    1.2,
    2.5,
    4.0,
    4.5,
    5.0,
    5.5,
    6.5,
    6.0,
    5.0,
    5.0,
    5.2,
    5.5,
    6.0,
    7.0,
    8.0,
    8.5,
    7.0,
    5.0,
)
_DIURNAL_MAX = max(_DIURNAL)

_APP_UAS = (
    "ShopApp/7.12.0 (iPhone15,2; iOS 17.5.1; Scale/3.00)",
    "ShopApp/7.12.0 (iPhone14,5; iOS 17.4; Scale/3.00)",
    "ShopApp/7.11.3 (Android 14; SM-S921N; Build/UP1A.231005.007)",
    "ShopApp/7.12.0 (Android 14; SM-S928N; Build/UP1A.231005.007)",
    "ShopApp/7.10.1 (Android 13; SM-A546S; Build/TP1A.220624.014)",
)
_WEB_UAS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; SM-S921N) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
)
_STAFF_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0"
)

_CUSTOMER_RESOURCES = ("profile", "address", "order_history", "payment", "email", "phone")
_CUSTOMER_WEIGHTS = (25, 20, 35, 10, 5, 5)
_STAFF_RESOURCES = ("profile", "address", "order_history")

_SERVICE_NAMES = (
    "svc-billing",
    "svc-shipping",
    "svc-notify",
    "svc-recommend",
    "svc-analytics",
    "svc-fraud",
    "svc-search",
    "svc-crm",
    "svc-returns",
    "svc-loyalty",
)
_SERVICE_PROFILE: dict[str, tuple[float, tuple[str, ...]]] = {
    # name: (requests per second at 2000 customers, resources it reads)
    "svc-billing": (0.5, ("payment", "order_history", "profile")),
    "svc-shipping": (0.4, ("address", "order_history", "phone")),
    "svc-notify": (0.3, ("email", "phone", "profile")),
    "svc-recommend": (0.6, ("order_history", "profile")),
    "svc-analytics": (0.1, ("order_history", "profile")),
    "svc-fraud": (0.3, ("payment", "profile", "address")),
    "svc-search": (0.2, ("profile",)),
    "svc-crm": (0.15, ("profile", "email", "phone")),
    "svc-returns": (0.1, ("order_history", "address")),
    "svc-loyalty": (0.1, ("profile", "order_history")),
}

CUSTOMER_KEY = "kid-cust-2025a"
STAFF_KEY = "kid-sso-2024"


def _hex(rng: random.Random, bits: int = 64) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _ordered(sessions: Iterable[tuple[int, list[tuple[int, dict]]]]) -> Iterator[tuple[int, dict]]:
    """Merge bursts of events into one time-ordered stream.

    ``sessions`` gives (start, events) with non-decreasing starts, every event at or after its
    own start: an event is released once no later burst can precede it.
    """
    heap: list[tuple[int, int, dict]] = []
    seq = 0
    for start, evs in sessions:
        while heap and heap[0][0] <= start:
            ms, _, ev = heapq.heappop(heap)
            yield ms, ev
        for ms, ev in evs:
            heapq.heappush(heap, (ms, seq, ev))
            seq += 1
    while heap:
        ms, _, ev = heapq.heappop(heap)
        yield ms, ev


def _login(
    ts: int,
    account: str,
    account_type: str,
    outcome: str,
    ip: str,
    method: str,
    label: str,
    session: str | None = None,
    ua: str | None = None,
    device: str | None = None,
) -> dict:
    ev: dict[str, Any] = {
        "event_id": "",
        "ts": fmt_ts(ts),
        "account_id": account,
        "account_type": account_type,
        "outcome": outcome,
        "src_ip": ip,
        "method": method,
    }
    if session is not None:
        ev["session_id"] = session
    if ua is not None:
        ev["user_agent"] = ua
    if device is not None:
        ev["device_id"] = device
    ev["label"] = label
    return ev


def _access(
    ts: int,
    actor: str,
    actor_type: str,
    subject: str,
    resource: str,
    action: str,
    ip: str,
    label: str,
    session: str | None = None,
    issued: str | None = None,
    key: str | None = None,
    ua: str | None = None,
    records: int | None = None,
) -> dict:
    ev: dict[str, Any] = {
        "event_id": "",
        "ts": fmt_ts(ts),
        "actor_id": actor,
        "actor_type": actor_type,
        "subject_id": subject,
        "resource": resource,
        "action": action,
        "src_ip": ip,
    }
    if records is not None:
        ev["records"] = records
    if session is not None:
        ev["session_id"] = session
    if issued is not None:
        ev["token_issued_at"] = issued
    if key is not None:
        ev["key_id"] = key
    if ua is not None:
        ev["user_agent"] = ua
    ev["label"] = label
    return ev


def _identity(ts: int, change: str, label: str = "normal", **fields: str) -> dict:
    ev: dict[str, Any] = {"event_id": "", "ts": fmt_ts(ts), "change": change}
    ev.update(fields)
    ev["label"] = label
    return ev


def _key_snapshot(ts: int, key: str, owner: str, issued: str) -> dict:
    """``key_issued`` replayed from the key store at ``ts``; ``issued_at`` is the key's age."""
    issued = fmt_ts(parse_ts(issued))
    return _identity(ts, "key_issued", key_id=key, owner_id=owner, issued_at=issued)


# --------------------------------------------------------------------------------------------
# Population
# --------------------------------------------------------------------------------------------


@dataclass
class _Customer:
    cid: str
    net: str  # broadband / mobile / v6 / vpn / relay
    prefix: Prefix
    home_ip: str
    net64: int = 0
    devices: list[tuple[str, str, bool]] = field(default_factory=list)  # (id, ua, is_app)
    activity: float = 1.0
    role: str = "home"  # home / traveller / vpn / relay
    trip: tuple[int, int, str] | None = None  # departure, arrival, destination country


@dataclass
class _Employee:
    eid: str
    role: str  # platform / support / engineer
    home_ip: str
    shift_start_h: float  # local hour
    shift_len_h: float
    laptop: str
    hired_ms: int | None = None
    shifts: list[tuple[int, int, str]] = field(default_factory=list)  # (login, end, kind)


class _World:
    """Everything planned up front from the seed; streams expand it lazily."""

    def __init__(self, cfg: SimConfig) -> None:
        _validate(cfg)
        self.cfg = cfg
        self.seed = cfg.seed
        self.t0 = parse_ts(cfg.start)
        self.t1 = self.t0 + round(cfg.hours * HOUR)
        self.utc_off = _HOME[cfg.home_country]["utc_offset_h"] * HOUR
        self.customers: list[_Customer] = []
        self.employees: list[_Employee] = []
        self.services: list[str] = []
        self.reserved: set[int] = set()  # customer indexes attacks took over as victims
        self.terminated_at: dict[str, int] = {}  # employee id -> termination (ms)
        self.skip_shifts: set[tuple[str, int]] = set()  # (employee, login ms) attacks own
        self.preopen: list[str] = []
        self.revoked_sessions: list[str] = []
        self.former_staff: list[str] = []
        self.new_hires: list[str] = []
        self.used_employee_ids: set[str] = set()
        self._plan_customers()
        self._plan_employees()
        self._plan_services()
        self.attacks: list[_Attack] = []
        arng = random.Random(f"{self.seed}/attacks")
        for name in cfg.attacks:
            self.attacks.append(_ATTACK_CLASSES[name](self, name, random.Random(arng.random())))

    # -- time helpers ------------------------------------------------------------------------

    def local_hour(self, ms: int) -> int:
        return ((ms + self.utc_off) // HOUR) % 24

    def local_days(self) -> Iterator[int]:
        """UTC ms of each local midnight from the one before start to the end."""
        d = ((self.t0 + self.utc_off) // DAY) * DAY - self.utc_off
        while d < self.t1:
            yield d
            d += DAY

    def diurnal_time(self, rng: random.Random, lo: int, hi: int) -> int:
        """A time in [lo, hi) drawn by rejection against the customer diurnal curve."""
        for _ in range(64):
            t = rng.randrange(lo, hi)
            if rng.random() * _DIURNAL_MAX <= _DIURNAL[self.local_hour(t)]:
                return t
        return rng.randrange(lo, hi)

    # -- planning ----------------------------------------------------------------------------

    def _plan_customers(self) -> None:
        rng = random.Random(f"{self.seed}/population")
        n = self.cfg.customers
        width = max(6, len(str(n)))
        order = list(range(n))
        rng.shuffle(order)
        small = n >= 20

        def count(frac: float) -> int:
            return max(1 if small else 0, round(frac * n))

        n_trav = count(0.005) if self.cfg.hours >= 7 else 0
        n_vpn, n_relay = count(0.01), count(0.02)
        roles = {}
        for i in order[:n_trav]:
            roles[i] = "traveller"
        for i in order[n_trav : n_trav + n_vpn]:
            roles[i] = "vpn"
        for i in order[n_trav + n_vpn : n_trav + n_vpn + n_relay]:
            roles[i] = "relay"
        vpn_exits = NETWORKS["vpn"]
        for i in range(n):
            cid = f"c-{i:0{width}d}"
            role = roles.get(i, "home")
            r = rng.random()
            if role == "vpn":
                prefix = rng.choice(vpn_exits)
                net = "vpn"
            elif role == "relay":
                prefix, net = rng.choice(NETWORKS["kr_relay"]), "relay"
            elif r < 0.15:
                prefix, net = rng.choice(NETWORKS["kr_v6"]), "v6"
            elif r < 0.55:
                prefix, net = rng.choice(NETWORKS["kr_mobile"]), "mobile"
            else:
                prefix, net = rng.choice(NETWORKS["kr_broadband"]), "broadband"
            c = _Customer(cid, net, prefix, prefix.ip(rng))
            if net == "v6":
                c.net64 = prefix.subnet64(rng)
                c.home_ip = Prefix.ip6(rng, c.net64)
            for _ in range(1 if rng.random() < 0.7 else 2):
                app = rng.random() < 0.65
                ua = rng.choice(_APP_UAS if app else _WEB_UAS)
                c.devices.append((f"d-{_hex(rng, 48)}", ua, app))
            c.activity = min(8.0, rng.lognormvariate(0.0, 0.8))
            c.role = role
            self.customers.append(c)
        for i in order[:n_trav]:
            self._plan_trip(rng, self.customers[i])

    def _plan_trip(self, rng: random.Random, c: _Customer) -> None:
        hours = (self.t1 - self.t0) / HOUR
        feasible = [(cc, fh) for cc, fh in _TRIPS if hours >= fh + 4.5]
        if not feasible:
            c.role = "home"
            return
        cc, flight_h = rng.choice(feasible)
        flight = round((flight_h + rng.uniform(1.5, 3.0)) * HOUR)  # airport to hotel wifi
        lo, hi = self.t0 + 90 * MIN, self.t1 - flight - 2 * HOUR
        if hi <= lo:
            flight = round(flight_h * HOUR)
            hi = self.t1 - flight - 2 * HOUR
        dep = rng.randrange(lo, max(lo + 1, hi))
        c.trip = (dep, dep + flight, cc)

    def _plan_employees(self) -> None:
        rng = random.Random(f"{self.seed}/staff")
        n = self.cfg.employees
        # Two platform engineers (they hold the signing keys), then ~70% support staff.
        n_support = max(min(n - 2, 2), round(0.7 * (n - 2)))
        staff_roles = ["support"] * n_support + ["engineer"] * (n - 2 - n_support)
        rng.shuffle(staff_roles)
        for i in range(1, n + 1):
            eid = f"e-{i:04d}"
            role = "platform" if i <= 2 else staff_roles[i - 3]
            if role == "support":
                start_h, len_h = rng.choice(((9.0, 9.0), (9.0, 9.0), (13.0, 9.0)))
            else:
                start_h, len_h = 10.0, 9.0
            home = rng.choice(NETWORKS["kr_broadband"]).ip(rng)
            self.employees.append(
                _Employee(eid, role, home, start_h, len_h, f"lt-{eid[2:]}-{_hex(rng, 24)}")
            )
            self.used_employee_ids.add(eid)
        # New hires: start on the first working morning after 30% of the stream.
        n_new = max(1, n // 15)
        hire_at = self.t0 + (self.t1 - self.t0) * 3 // 10
        for d in self.local_days():
            morning = d + 9 * HOUR + 30 * MIN
            if morning >= hire_at and morning < self.t1 - HOUR:
                hire_at = morning
                break
        for k in range(n_new):
            eid = f"e-{n + 1 + k:04d}"
            home = rng.choice(NETWORKS["kr_broadband"]).ip(rng)
            emp = _Employee(eid, "support", home, 9.0, 9.0, f"lt-{eid[2:]}-{_hex(rng, 24)}")
            emp.hired_ms = max(self.t0, min(hire_at + k * 20 * MIN, self.t1 - 30 * MIN))
            self.employees.append(emp)
            self.new_hires.append(eid)
            self.used_employee_ids.add(eid)
        # Shifts by local day.
        for emp in self.employees:
            for d in self.local_days():
                weekday = datetime.fromtimestamp((d + self.utc_off) / 1000, UTC).weekday()
                works = rng.random() < (0.9 if weekday < 5 else 0.2)
                login = d + round((emp.shift_start_h + rng.uniform(-0.25, 0.4)) * HOUR)
                end = login + round((emp.shift_len_h + rng.uniform(-0.5, 0.5)) * HOUR)
                if emp.hired_ms is not None:
                    if end <= emp.hired_ms:
                        continue
                    if login <= emp.hired_ms:
                        login, works = emp.hired_ms + 10 * MIN, True
                        end = max(end, login + 2 * HOUR)
                if works and login < self.t1 and end > self.t0:
                    emp.shifts.append((max(login, self.t0), min(end, self.t1), "shift"))
                if emp.role != "support" and rng.random() < 0.12:
                    late = d + round(rng.uniform(22.0, 25.0) * HOUR)
                    if self.t0 <= late < self.t1 - 10 * MIN:
                        emp.shifts.append(
                            (late, min(late + rng.randrange(15, 90) * MIN, self.t1), "late")
                        )
            emp.shifts.sort()
        # Former staff without keys, terminated during the stream.
        for _ in range(max(1, n // 10)):
            self.former_staff.append(self.fresh_employee_id(rng, 500, 899))

    def fresh_employee_id(self, rng: random.Random, lo: int, hi: int) -> str:
        while True:
            eid = f"e-{rng.randint(lo, hi):04d}"
            if eid not in self.used_employee_ids:
                self.used_employee_ids.add(eid)
                return eid

    def _plan_services(self) -> None:
        n = self.cfg.services
        names = list(_SERVICE_NAMES[:n])
        names += [f"svc-extra-{k:02d}" for k in range(1, n - len(names) + 1)]
        self.services = names
        self.batch_service = "svc-analytics" if "svc-analytics" in names else names[-1]

    def pick_customer(self, rng: random.Random, roles: tuple[str, ...] = ("home",)) -> int:
        """An unreserved customer with one of ``roles``; reserves it."""
        pool = [
            i for i, c in enumerate(self.customers) if c.role in roles and i not in self.reserved
        ]
        if not pool:
            raise SimulationError("too few customers for the attacks asked for")
        i = rng.choice(pool)
        self.reserved.add(i)
        return i

    def pick_employee(self, rng: random.Random, role: str, after: int | None = None) -> _Employee:
        """A free employee of ``role``; one with a shift starting at or after ``after`` if any."""
        pool = [
            e
            for e in self.employees
            if e.role == role
            and e.eid not in self.terminated_at
            and e.hired_ms is None
            and not any(k[0] == e.eid for k in self.skip_shifts)
        ]
        if not pool:
            raise SimulationError(f"too few employees (no free {role} staff) for the attacks")
        if after is not None:
            later = [e for e in pool if any(a >= after and k == "shift" for a, _, k in e.shifts)]
            pool = later or pool
        return rng.choice(pool)

    # -- streams -----------------------------------------------------------------------------

    def stream(self) -> Iterator[dict]:
        sources: list[Iterator[tuple[int, dict]]] = [
            self._identity_stream(),
            self._customer_stream(),
            self._employee_stream(),
            self._batch_stream(),
        ]
        sources += [self._service_stream(k, name) for k, name in enumerate(self.services)]
        sources += [a.events() for a in self.attacks]
        prefix = f"e-{self.seed}-"
        n = 0
        for _, ev in heapq.merge(*sources, key=itemgetter(0)):
            ev["event_id"] = prefix + str(n)
            n += 1
            yield ev

    def _identity_stream(self) -> Iterator[tuple[int, dict]]:
        rng = random.Random(f"{self.seed}/identity")
        out: list[tuple[int, dict]] = []
        # The key store as it stands: every active key and its holder, at its issue time.
        # The key store as it stands at the start: every active key, its holder, its age.
        t0 = self.t0
        out.append((t0, _key_snapshot(t0, CUSTOMER_KEY, "e-0001", "2025-01-06T01:00:00Z")))
        out.append((t0, _key_snapshot(t0, STAFF_KEY, "e-0002", "2024-03-04T02:30:00Z")))
        for name in self.services:
            issued = parse_ts("2024-09-02T00:00:00Z") + rng.randrange(0, 200) * DAY
            out.append((t0, _key_snapshot(t0, f"key-{name}-1", name, fmt_ts(issued))))
        for emp in self.employees:
            if emp.hired_ms is not None:
                t = emp.hired_ms
                out.append(
                    (t, _identity(t, "key_issued", key_id=f"pat-{emp.eid}-1", owner_id=emp.eid))
                )
        for eid in self.former_staff:
            t = rng.randrange(self.t0, self.t1)
            out.append((t, _identity(t, "principal_terminated", principal_id=eid)))
        out.sort(key=itemgetter(0))
        return iter(out)

    def _customer_sessions(self) -> list[tuple[int, int, str]]:
        rng = random.Random(f"{self.seed}/sessions")
        days = (self.t1 - self.t0) / DAY
        plan: list[tuple[int, int, str]] = []
        for i, c in enumerate(self.customers):
            for _ in range(_poisson(rng, 1.4 * c.activity * days)):
                plan.append((self.diurnal_time(rng, self.t0, self.t1), i, "login"))
            if rng.random() < 0.08:  # a session already open when the stream starts
                first = self.t0 + rng.randrange(0, min(90 * MIN, self.t1 - self.t0))
                plan.append((first, i, "preopen"))
            if c.trip is not None:
                dep, arr, _ = c.trip
                plan.append((dep - rng.randrange(30, 120) * MIN, i, "login"))
                plan.append(
                    (min(arr + rng.randrange(20, 150) * MIN, self.t1 - 20 * MIN), i, "login")
                )
        plan.sort()
        return plan

    def _customer_stream(self) -> Iterator[tuple[int, dict]]:
        return _ordered(self._expand_customer_sessions())

    def _expand_customer_sessions(self) -> Iterator[tuple[int, list[tuple[int, dict]]]]:
        rng = random.Random(f"{self.seed}/customers")
        t1 = self.t1
        for start, i, kind in self._customer_sessions():
            c = self.customers[i]
            prefix, net = c.prefix, c.net
            if c.trip is not None:
                dep, arr, cc = c.trip
                if dep <= start < arr:
                    continue  # in the air
                if start >= arr:
                    prefix = _trip_prefix(rng, c, cc)
                    net = "abroad"
            if net == "broadband":
                ip = c.home_ip
            elif net == "v6":
                ip = Prefix.ip6(rng, c.net64)
            elif net == "vpn":
                ip = c.home_ip  # one exit server, consistently
            else:
                ip = prefix.ip(rng)
            device, ua, app = rng.choice(c.devices)
            sid = f"s-{_hex(rng)}"
            evs: list[tuple[int, dict]] = []
            t = start
            if kind == "preopen":
                issued_ms = self.t0 - rng.randrange(10, 20 * 60) * MIN
                self.preopen.append(sid)
            else:
                if rng.random() < 0.03:  # a typo or two first
                    for _ in range(rng.randint(1, 2)):
                        evs.append(
                            (
                                t,
                                _login(
                                    t,
                                    c.cid,
                                    "customer",
                                    "failure",
                                    ip,
                                    "password",
                                    "normal",
                                    ua=ua,
                                    device=device,
                                ),
                            )
                        )
                        t += rng.randrange(4, 30) * SEC
                if app and not evs and rng.random() < 0.45:
                    method = "refresh"
                else:
                    method = "mfa" if rng.random() < 0.15 else "password"
                login = _login(
                    t, c.cid, "customer", "success", ip, method, "normal", sid, ua, device
                )
                if net == "broadband" and rng.random() < 0.02:
                    login["country"], login["asn"] = prefix.country, prefix.asn
                evs.append((t, login))
                issued_ms = t
            issued = fmt_ts(issued_ms)
            n = 1 + min(40, int(rng.expovariate(1 / 5.0)))
            for _ in range(n):
                t += round(rng.lognormvariate(3.0, 0.9) * SEC)
                if t >= t1:
                    break
                if net == "mobile" and rng.random() < 0.12:
                    ip = prefix.ip(rng)  # carrier NAT hop
                elif net == "relay" and rng.random() < 0.05:
                    ip = prefix.ip(rng)
                res = rng.choices(_CUSTOMER_RESOURCES, _CUSTOMER_WEIGHTS)[0]
                action = (
                    "update" if res in ("address", "profile") and rng.random() < 0.03 else "read"
                )
                evs.append(
                    (
                        t,
                        _access(
                            t,
                            c.cid,
                            "customer",
                            c.cid,
                            res,
                            action,
                            ip,
                            "normal",
                            sid,
                            issued,
                            CUSTOMER_KEY,
                            ua,
                        ),
                    )
                )
            if rng.random() < 0.01 and t + 2 * MIN < t1:  # logged out everywhere
                t += rng.randrange(1, 30) * MIN
                if t < t1:
                    evs.append((t, _identity(t, "session_revoked", session_id=sid)))
                    self.revoked_sessions.append(sid)
            yield start, evs

    def _employee_stream(self) -> Iterator[tuple[int, dict]]:
        return _ordered(self._expand_shifts())

    def _expand_shifts(self) -> Iterator[tuple[int, list[tuple[int, dict]]]]:
        rng = random.Random(f"{self.seed}/shifts")
        plan = sorted(
            (login, end, kind, k)
            for k, emp in enumerate(self.employees)
            for login, end, kind in emp.shifts
        )
        for login, end, kind, k in plan:
            emp = self.employees[k]
            cut = self.terminated_at.get(emp.eid, self.t1)
            if (emp.eid, login) in self.skip_shifts or login >= cut:
                continue
            evs = self.shift_events(rng, emp, login, min(end, cut), kind, "normal")
            yield login, [(t, ev) for t, ev in evs if t < cut]

    def office_ip(self, rng: random.Random) -> str:
        # Two NAT egress addresses of the office /24.
        base = NETWORKS["kr_office"][0].cidr.rsplit(".", 1)[0]
        return f"{base}.{rng.choice((10, 11))}"

    def shift_events(
        self,
        rng: random.Random,
        emp: _Employee,
        login: int,
        end: int,
        kind: str,
        label: str,
        lookups: int | None = None,
    ) -> list[tuple[int, dict]]:
        """One SSO session of an employee: the login and the customer reads in it."""
        ip = emp.home_ip if kind == "late" else self.office_ip(rng)
        sid = f"s-{_hex(rng)}"
        method = "mfa" if kind == "late" else "sso"
        evs = [
            (
                login,
                _login(
                    login,
                    emp.eid,
                    "employee",
                    "success",
                    ip,
                    method,
                    label,
                    sid,
                    _STAFF_UA,
                    emp.laptop,
                ),
            )
        ]
        issued = fmt_ts(login)
        span = max(MIN, end - login - 10 * MIN)
        if lookups is None:
            if emp.role == "support" and kind == "shift":
                full = rng.lognormvariate(math.log(60), 0.6) * span / (9 * HOUR)
                lookups = max(3, min(250, round(full)))
            else:
                lookups = rng.randint(0, 4 if kind == "shift" else 8)
        n_cust = len(self.customers)
        subjects = rng.sample(range(n_cust), min(lookups, n_cust))
        if lookups > n_cust:
            subjects += [rng.randrange(n_cust) for _ in range(lookups - n_cust)]
        times = sorted(login + 5 * MIN + rng.randrange(span) for _ in subjects)
        for t, s in zip(times, subjects, strict=True):
            cid = self.customers[s].cid
            if rng.random() < 0.6:
                evs.append(
                    (
                        t,
                        _access(
                            t,
                            emp.eid,
                            "employee",
                            cid,
                            "profile",
                            "search",
                            ip,
                            label,
                            sid,
                            issued,
                            STAFF_KEY,
                            _STAFF_UA,
                            records=rng.randint(1, 5),
                        ),
                    )
                )
            for _ in range(rng.randint(1, 3)):
                t += rng.randrange(3, 90) * SEC
                res = rng.choice(_STAFF_RESOURCES)
                evs.append(
                    (
                        t,
                        _access(
                            t,
                            emp.eid,
                            "employee",
                            cid,
                            res,
                            "read",
                            ip,
                            label,
                            sid,
                            issued,
                            STAFF_KEY,
                            _STAFF_UA,
                        ),
                    )
                )
        return [(t, ev) for t, ev in evs if t < self.t1]

    def _service_stream(self, k: int, name: str) -> Iterator[tuple[int, dict]]:
        rng = random.Random(f"{self.seed}/svc/{name}")
        per_s, resources = _SERVICE_PROFILE.get(name, (0.2, ("profile",)))
        rate = per_s * self.cfg.customers / 2000 / SEC  # events per ms at peak-ish
        pods = [f"10.{20 + k}.{rng.randrange(0, 8)}.{rng.randrange(2, 250)}" for _ in range(3)]
        key = f"key-{name}-1"
        ua = f"{name[4:]}-worker/3.{rng.randrange(1, 9)}.{rng.randrange(0, 20)} python-httpx/0.27"
        cids = [c.cid for c in self.customers]
        n = len(cids)
        t = self.t0
        t1 = self.t1
        rnd, expo = rng.random, rng.expovariate
        n_res = len(resources)
        # Traffic follows the shoppers, never below half of its peak (by local hour).
        hourly = [rate * (0.5 + 0.5 * w / _DIURNAL_MAX) for w in _DIURNAL]
        off = self.utc_off
        while True:
            t += 1 + int(expo(hourly[((t + off) // HOUR) % 24]))
            if t >= t1:
                return
            res = resources[0] if rnd() < 0.5 else resources[int(rnd() * n_res)]
            yield (
                t,
                {
                    "event_id": "",
                    "ts": fmt_ts(t),
                    "actor_id": name,
                    "actor_type": "service",
                    "subject_id": cids[int(rnd() * n)],
                    "resource": res,
                    "action": "read",
                    "src_ip": pods[int(rnd() * 3)],
                    "key_id": key,
                    "user_agent": ua,
                    "label": "normal",
                },
            )

    def _batch_stream(self) -> Iterator[tuple[int, dict]]:
        """The nightly export (02:00-03:00 local) over every customer, in id order."""
        rng = random.Random(f"{self.seed}/batch")
        name = self.batch_service
        ip = f"10.{20 + self.services.index(name)}.9.{rng.randrange(2, 250)}"
        key = f"key-{name}-1"
        for d in self.local_days():
            lo = d + 2 * HOUR
            step = HOUR / max(1, len(self.customers))
            for j, c in enumerate(self.customers):
                t = lo + int(j * step) + rng.randrange(0, 500)
                if t < self.t0 or t >= self.t1:
                    continue
                yield (
                    t,
                    _access(
                        t,
                        name,
                        "service",
                        c.cid,
                        "order_history",
                        "export",
                        ip,
                        "normal",
                        key=key,
                        ua="nightly-export/1.4 (spark 3.5)",
                        records=max(1, round(rng.lognormvariate(3.0, 1.1))),
                    ),
                )

    # -- results -----------------------------------------------------------------------------

    def truth(self) -> list[dict]:
        return [a.truth() for a in self.attacks]

    def population(self) -> dict[str, Any]:
        return {
            "travellers": [
                {
                    "customer": c.cid,
                    "departure": fmt_ts(c.trip[0]),
                    "arrival": fmt_ts(c.trip[1]),
                    "destination": c.trip[2],
                }
                for c in self.customers
                if c.trip is not None
            ],
            "vpn_users": [c.cid for c in self.customers if c.role == "vpn"],
            "relay_users": [c.cid for c in self.customers if c.role == "relay"],
            "ipv6_users": [c.cid for c in self.customers if c.net == "v6"],
            "preopen_sessions": list(self.preopen),
            "revoked_sessions": list(self.revoked_sessions),
            "support_staff": [e.eid for e in self.employees if e.role == "support"],
            "engineers": [e.eid for e in self.employees if e.role in ("engineer", "platform")],
            "new_hires": list(self.new_hires),
            "former_staff_terminated": list(self.former_staff),
            "services": list(self.services),
            "batch_service": self.batch_service,
            "customer_key": CUSTOMER_KEY,
            "staff_key": STAFF_KEY,
            "office_prefix": NETWORKS["kr_office"][0].cidr,
        }


def _trip_prefix(rng: random.Random, c: _Customer, cc: str) -> Prefix:
    options = [p for p in NETWORKS["residential_abroad"] if p.country == cc]
    return rng.choice(options)


def _validate(cfg: SimConfig) -> None:
    if cfg.home_country not in _HOME:
        raise SimulationError(
            f"home_country {cfg.home_country!r} is not modelled (known: {', '.join(_HOME)})"
        )
    parse_ts(cfg.start)
    if not cfg.hours > 0 or not math.isfinite(cfg.hours):
        raise SimulationError(f"hours must be > 0, not {cfg.hours}")
    if cfg.customers < 20:
        raise SimulationError(f"customers must be at least 20, not {cfg.customers}")
    if cfg.employees < 4:
        raise SimulationError(f"employees must be at least 4, not {cfg.employees}")
    if not 1 <= cfg.services <= 100:
        raise SimulationError(f"services must be between 1 and 100, not {cfg.services}")
    unknown = [a for a in cfg.attacks if a not in ATTACKS]
    if unknown:
        raise SimulationError(
            f"unknown attack {unknown[0]!r} (known: {', '.join(ATTACKS)}; see --list-attacks)"
        )
    if len(set(cfg.attacks)) != len(cfg.attacks):
        raise SimulationError("each attack can be asked for once")
    if cfg.attacks and not 0 <= cfg.attack_start_hour < cfg.hours:
        raise SimulationError(
            f"attack_start_hour {cfg.attack_start_hour} must lie within the {cfg.hours} hours"
        )


# --------------------------------------------------------------------------------------------
# Attacks
# --------------------------------------------------------------------------------------------


class _Attack:
    """One injected attack: plans itself against the world, then streams labeled events.

    ``own_kinds`` are the entity kinds that belong to the attacker (collected from its events
    into the truth record); kinds shared with normal traffic (the office IP, the active
    customer key) are left out so that they do not count as attack entities.
    """

    own_kinds: tuple[str, ...] = ("actor", "src_ip", "account", "session")

    def __init__(self, world: _World, name: str, rng: random.Random) -> None:
        self.w = world
        self.name = name
        self.rng = rng
        self.t_start = world.t0 + round(world.cfg.attack_start_hour * HOUR)
        self.malicious: list[dict] = []
        self.context: list[dict] = []  # setup facts (key issued, termination), label normal
        self.params: dict[str, Any] = {}
        self.plan()

    def plan(self) -> None:  # pragma: no cover - overridden
        pass

    def generate(self) -> Iterator[tuple[int, dict]]:  # pragma: no cover - overridden
        return iter(())

    def events(self) -> Iterator[tuple[int, dict]]:
        t1 = self.w.t1
        for t, ev in self.generate():
            if t >= t1:
                continue
            if ev["label"] != "normal":
                self.malicious.append(ev)
            yield t, ev

    def bad(self, t: int, ev: dict) -> tuple[int, dict]:
        ev["label"] = self.name
        return t, ev

    def ctx(self, t: int, ev: dict) -> tuple[int, dict]:
        self.context.append(ev)
        return t, ev

    def truth(self) -> dict:
        fields = {
            "actor": ("actor_id",),
            "src_ip": ("src_ip",),
            "key": ("key_id",),
            "account": ("account_id",),
            "session": ("session_id",),
        }
        entities: dict[str, list[str]] = {}
        for kind in ENTITY_KINDS:
            seen: dict[str, None] = {}
            if kind in self.own_kinds:
                for ev in self.malicious:
                    for f in fields[kind]:
                        v = ev.get(f)
                        if v is not None and not (kind == "account" and "change" in ev):
                            seen[v] = None
            entities[kind] = list(seen)
        victims: dict[str, None] = {}
        for ev in self.malicious:
            if "subject_id" in ev:
                victims[ev["subject_id"]] = None
        if not victims:
            for ev in self.malicious:
                if ev.get("outcome") == "success":
                    victims[ev["account_id"]] = None
        ms = self.malicious
        return {
            "attack": self.name,
            "description": ATTACKS[self.name],
            "start_ts": ms[0]["ts"] if ms else None,
            "end_ts": ms[-1]["ts"] if ms else None,
            "event_ids": [ev["event_id"] for ev in ms],
            "entities": entities,
            "expected_detectors": list(EXPECTED_DETECTORS[self.name]),
            "victims": list(victims),
            "context_event_ids": [ev["event_id"] for ev in self.context if ev["event_id"]],
            "params": dict(self.params),
        }


def _sorted(evs: list[tuple[int, dict]]) -> Iterator[tuple[int, dict]]:
    evs.sort(key=itemgetter(0))
    return iter(evs)


class _Coupang(_Attack):
    own_kinds: tuple[str, ...] = ("actor", "src_ip", "key", "account", "session")
    key = "kid-legacy-2019"
    key_issued = "2019-03-14T01:20:00Z"
    predating = False
    active_key = False

    def plan(self) -> None:
        w, rng = self.w, self.rng
        outside = [p for p in NETWORKS["hosting"] if p.country != w.cfg.home_country]
        prefixes = rng.sample(outside, rng.randint(3, 5))
        self.servers = [p.ip(rng) for p in prefixes]
        self.weights = [rng.uniform(0.5, 2.0) for _ in self.servers]
        self.victim_pool = list(range(len(w.customers)))
        rng.shuffle(self.victim_pool)
        self.n_victims = max(10, int(0.6 * len(w.customers)))
        self.engineer = None if self.active_key else w.fresh_employee_id(rng, 300, 499)
        if self.active_key:
            self.key = CUSTOMER_KEY
            self.own_kinds = ("actor", "src_ip", "account", "session")
        self.params = {
            "servers": list(self.servers),
            "server_countries": [p.country for p in prefixes],
            "key_id": self.key,
            "departed_engineer": self.engineer,
            "planned_victims": self.n_victims,
        }

    def generate(self) -> Iterator[tuple[int, dict]]:
        return _ordered(self._visits())

    def _visits(self) -> Iterator[tuple[int, list[tuple[int, dict]]]]:
        w, rng = self.w, self.rng
        t0 = self.t_start + min(rng.randrange(0, 10) * MIN, (w.t1 - self.t_start) // 4)
        if self.engineer is not None:
            t = w.t0
            yield t, [self.ctx(t, _key_snapshot(t, self.key, self.engineer, self.key_issued))]
            t = min(w.t0 + rng.randrange(2, 10) * MIN, t0)
            yield t, [self.ctx(t, _identity(t, "principal_terminated", principal_id=self.engineer))]
        # A slow ramp: ~3 forged page views a minute growing to ~40 (faster if time is short).
        remaining = max(MIN, w.t1 - t0)
        d_min = min(max(20.0, self.n_victims / 14.3), remaining / MIN)
        factor = self.n_victims / (d_min * 14.3)
        r0, r1 = 3.0 * factor, 40.0 * factor
        span = d_min * MIN
        t = t0
        for vi in self.victim_pool[: self.n_victims]:
            frac = min(1.0, (t - t0) / span)
            rate = r0 * (r1 / r0) ** frac  # per minute
            t += 1 + int(rng.expovariate(rate / MIN))
            if t >= w.t1:
                return
            cid = w.customers[vi].cid
            ip = rng.choices(self.servers, self.weights)[0]
            sid = f"s-{_hex(rng)}"
            if self.predating:
                issued = w.t0 - rng.randrange(10, 30 * 24 * 60) * MIN
            else:
                issued = t - rng.randrange(20, 300) * SEC
            iat = fmt_ts(issued)
            ua = rng.choice(_APP_UAS)
            visit: list[tuple[int, dict]] = []
            tt = t
            for _ in range(1 if rng.random() < 0.7 else 2):
                visit.append(
                    self.bad(
                        tt,
                        _access(
                            tt,
                            cid,
                            "customer",
                            cid,
                            "address",
                            "read",
                            ip,
                            self.name,
                            sid,
                            iat,
                            self.key,
                            ua,
                        ),
                    )
                )
                tt += rng.randrange(800, 5000)
            if rng.random() < 0.2:
                visit.append(
                    self.bad(
                        tt,
                        _access(
                            tt,
                            cid,
                            "customer",
                            cid,
                            "order_history",
                            "read",
                            ip,
                            self.name,
                            sid,
                            iat,
                            self.key,
                            ua,
                        ),
                    )
                )
            yield t, visit


class _CoupangPredating(_Coupang):
    key = "kid-legacy-2018"
    key_issued = "2018-05-21T06:00:00Z"
    predating = True


class _CoupangActiveKey(_Coupang):
    active_key = True


class _Insider(_Attack):
    own_kinds = ("actor", "account", "session")  # office IP and staff key are shared

    def plan(self) -> None:
        w, rng = self.w, self.rng
        self.emp = w.pick_employee(rng, "support", after=self.t_start)
        shifts = [(a, b) for a, b, k in self.emp.shifts if k == "shift" and b > self.t_start]
        shift = next((x for x in shifts if x[0] >= self.t_start), shifts[0] if shifts else None)
        if shift is None:
            login, end = self.t_start, min(w.t1, self.t_start + 9 * HOUR)
        else:
            w.skip_shifts.add((self.emp.eid, shift[0]))
            login, end = max(shift[0], self.t_start), shift[1]
        self.login, self.end = login, end
        self.n = min(int(0.8 * len(w.customers)), rng.randint(2000, 3500))
        self.params = {
            "employee": self.emp.eid,
            "distinct_customers": self.n,
            "shift": [fmt_ts(login), fmt_ts(end)],
        }

    def generate(self) -> Iterator[tuple[int, dict]]:
        evs = self.w.shift_events(
            self.rng, self.emp, self.login, self.end, "shift", self.name, lookups=self.n
        )
        return _sorted(evs)


class _DepartedKey(_Attack):
    own_kinds = ("actor", "src_ip", "key", "account", "session")

    def plan(self) -> None:
        w, rng = self.w, self.rng
        try:  # an engineer who works in the stream until the termination...
            self.owner = w.pick_employee(rng, "engineer").eid
        except SimulationError:  # ...or, in a tiny company, one who is not on shift today
            self.owner = w.fresh_employee_id(rng, 100, 299)
        self.t_term = self.t_start
        w.terminated_at[self.owner] = self.t_term
        self.actor = "svc-reporting"
        self.key = "key-svc-reporting-legacy"
        self.ip = rng.choice(NETWORKS["kr_broadband"]).ip(rng)
        self.n = min(len(w.customers), rng.randint(150, 400))
        self.params = {
            "owner": self.owner,
            "key_id": self.key,
            "actor": self.actor,
            "terminated": fmt_ts(self.t_term),
            "src_ip": self.ip,
        }

    def generate(self) -> Iterator[tuple[int, dict]]:
        w, rng = self.w, self.rng
        out: list[tuple[int, dict]] = []
        t = w.t0
        out.append(self.ctx(t, _key_snapshot(t, self.key, self.owner, "2023-02-13T05:00:00Z")))
        out.append(
            self.ctx(
                self.t_term,
                _identity(self.t_term, "principal_terminated", principal_id=self.owner),
            )
        )
        # Before: an hourly internal report job uses the key (legitimately).
        job_ip = f"10.19.{rng.randrange(0, 8)}.{rng.randrange(2, 250)}"
        h = w.t0 + rng.randrange(1, 30) * MIN
        while h < self.t_term:
            for _ in range(rng.randint(5, 20)):
                t = h + rng.randrange(0, 5 * MIN)
                if t < self.t_term:
                    cid = rng.choice(w.customers).cid
                    out.append(
                        (
                            t,
                            _access(
                                t,
                                self.actor,
                                "service",
                                cid,
                                "order_history",
                                "read",
                                job_ip,
                                "normal",
                                key=self.key,
                            ),
                        )
                    )
            h += HOUR
        # After: the key reads customers from someone's home connection.
        room = w.t1 - self.t_term
        t = self.t_term + min(rng.randrange(20, 90) * MIN, room // 4)
        gap = max(SEC, min(rng.randrange(30, 90) * MIN, room // 2) // max(1, self.n))
        for s in rng.sample(range(len(w.customers)), self.n):
            t += 1 + int(rng.expovariate(1 / gap))
            cid = w.customers[s].cid
            res = rng.choice(("address", "phone", "email", "profile"))
            action = "export" if rng.random() < 0.3 else "read"
            out.append(
                self.bad(
                    t,
                    _access(
                        t,
                        self.actor,
                        "service",
                        cid,
                        res,
                        action,
                        self.ip,
                        self.name,
                        key=self.key,
                        ua="python-requests/2.32.3",
                        records=rng.randint(1, 3),
                    ),
                )
            )
        return _sorted(out)


class _TerminatedSession(_Attack):
    own_kinds = ("actor", "account", "session")

    def plan(self) -> None:
        w, rng = self.w, self.rng
        self.emp = w.pick_employee(rng, "support")
        shift = next(
            ((a, b) for a, b, k in self.emp.shifts if k == "shift" and b > self.t_start + 30 * MIN),
            None,
        )
        if shift is None:
            login, end = self.t_start, min(w.t1, self.t_start + 9 * HOUR)
        else:
            login, end = shift
        self.login, self.end = login, end
        self.t_term = max(self.t_start, login + rng.randrange(20, 120) * MIN)
        self.t_term = min(self.t_term, max(login + MIN, w.t1 - 30 * MIN))
        w.terminated_at[self.emp.eid] = self.login  # the attack owns this and later shifts
        self.params = {"employee": self.emp.eid, "terminated": fmt_ts(self.t_term)}

    def generate(self) -> Iterator[tuple[int, dict]]:
        w, rng = self.w, self.rng
        evs = w.shift_events(rng, self.emp, self.login, self.t_term, "shift", "normal")
        out = [(t, ev) for t, ev in evs if t < self.t_term]
        login_ev = out[0][1]
        sid, ip = login_ev["session_id"], login_ev["src_ip"]
        out.append(
            self.ctx(
                self.t_term,
                _identity(self.t_term, "principal_terminated", principal_id=self.emp.eid),
            )
        )
        issued = login_ev["ts"]
        t = self.t_term + rng.randrange(1, 10) * MIN
        stop = t + rng.randrange(60, 120) * MIN
        n_cust = len(w.customers)
        while t < stop:
            cid = w.customers[rng.randrange(n_cust)].cid
            for res in rng.sample(_STAFF_RESOURCES, rng.randint(1, 3)):
                out.append(
                    self.bad(
                        t,
                        _access(
                            t,
                            self.emp.eid,
                            "employee",
                            cid,
                            res,
                            "read",
                            ip,
                            self.name,
                            sid,
                            issued,
                            STAFF_KEY,
                            _STAFF_UA,
                        ),
                    )
                )
                t += rng.randrange(2, 20) * SEC
            t += rng.randrange(10, 60) * SEC
        return _sorted(out)


class _Stuffing(_Attack):
    def plan(self) -> None:
        w, rng = self.w, self.rng
        outside = [p for p in NETWORKS["hosting"] if p.country != w.cfg.home_country]
        self.ips = [p.ip(rng) for p in rng.sample(outside, rng.randint(1, 3))]
        n_cust = len(w.customers)
        self.n = min(3000, max(300, int(n_cust * 1.2)))
        existing = rng.sample(range(n_cust), min(n_cust, int(self.n * 0.7)))
        width = max(6, len(str(n_cust)))
        unknown = [
            f"c-{k:0{width}d}"
            for k in rng.sample(range(n_cust, n_cust * 10 + 1000), self.n - len(existing))
        ]
        self.accounts = [w.customers[i].cid for i in existing] + unknown
        rng.shuffle(self.accounts)
        home = [i for i in existing if w.customers[i].role == "home" and i not in w.reserved]
        self.taken = set(rng.sample(home, min(len(home), rng.randint(3, 6))))
        w.reserved.update(self.taken)
        self.taken_ids = {w.customers[i].cid for i in self.taken}
        self.params = {
            "src_ips": list(self.ips),
            "attempts": self.n,
            "takeovers": sorted(self.taken_ids),
        }

    def generate(self) -> Iterator[tuple[int, dict]]:
        rng = self.rng
        out: list[tuple[int, dict]] = []
        t = self.t_start + min(rng.randrange(0, 30) * MIN, (self.w.t1 - self.t_start) // 6)
        per_s = rng.uniform(3.0, 8.0)
        uas = rng.sample(_WEB_UAS, 3)
        for acct in self.accounts:
            t += 1 + int(rng.expovariate(per_s / SEC))
            ip = rng.choice(self.ips)
            ua = rng.choice(uas)
            if acct in self.taken_ids:
                sid = f"s-{_hex(rng)}"
                dev = f"d-{_hex(rng, 48)}"
                out.append(
                    self.bad(
                        t,
                        _login(
                            t, acct, "customer", "success", ip, "password", self.name, sid, ua, dev
                        ),
                    )
                )
                tt = t + rng.randrange(1, 10) * MIN
                for res in ("profile", "address", "payment", "address"):
                    out.append(
                        self.bad(
                            tt,
                            _access(
                                tt,
                                acct,
                                "customer",
                                acct,
                                res,
                                "read",
                                ip,
                                self.name,
                                sid,
                                fmt_ts(t),
                                CUSTOMER_KEY,
                                ua,
                            ),
                        )
                    )
                    tt += rng.randrange(3, 40) * SEC
            else:
                out.append(
                    self.bad(
                        t, _login(t, acct, "customer", "failure", ip, "password", self.name, ua=ua)
                    )
                )
        return _sorted(out)


class _Spray(_Attack):
    def plan(self) -> None:
        w, rng = self.w, self.rng
        asn_name = "DIGITALOCEAN-ASN"
        prefixes = [p for p in NETWORKS["hosting"] if p.asn_name == asn_name]
        self.ips = [rng.choice(prefixes).ip(rng) for _ in range(rng.randint(40, 80))]
        n_cust = len(w.customers)
        self.n = min(n_cust, 400)
        picks = rng.sample(range(n_cust), self.n)
        self.accounts = [w.customers[i].cid for i in picks]
        home = [i for i in picks if w.customers[i].role == "home" and i not in w.reserved]
        self.hits = {w.customers[i].cid for i in rng.sample(home, min(len(home), 2))}
        w.reserved.update(i for i in picks if w.customers[i].cid in self.hits)
        self.params = {
            "asn_name": asn_name,
            "ips": len(self.ips),
            "attempts": self.n,
            "successes": sorted(self.hits),
        }

    def generate(self) -> Iterator[tuple[int, dict]]:
        w, rng = self.w, self.rng
        out: list[tuple[int, dict]] = []
        t = self.t_start + min(rng.randrange(0, 20) * MIN, (w.t1 - self.t_start) // 6)
        gap = min(55 * SEC, max(SEC, (w.t1 - t) // (self.n + 1)))
        ua = rng.choice(_WEB_UAS)
        for acct in self.accounts:
            t += 1 + int(rng.uniform(0.4, 1.6) * gap)
            ip = rng.choice(self.ips)
            if acct in self.hits:
                out.append(
                    self.bad(
                        t,
                        _login(
                            t,
                            acct,
                            "customer",
                            "success",
                            ip,
                            "password",
                            self.name,
                            f"s-{_hex(rng)}",
                            ua,
                        ),
                    )
                )
            else:
                out.append(
                    self.bad(
                        t, _login(t, acct, "customer", "failure", ip, "password", self.name, ua=ua)
                    )
                )
        return _sorted(out)


class _ImpossibleTravel(_Attack):
    def plan(self) -> None:
        w, rng = self.w, self.rng
        k = min(12, len(w.customers) // 10)
        self.victims = [w.pick_customer(rng) for _ in range(k)]
        self.params = {"accounts": [w.customers[i].cid for i in self.victims]}

    def generate(self) -> Iterator[tuple[int, dict]]:
        w, rng = self.w, self.rng
        out: list[tuple[int, dict]] = []
        lo = self.t_start
        hi = max(lo + 1, min(w.t1 - 90 * MIN, lo + (w.t1 - lo) // 2))
        far_prefixes = [p for p in NETWORKS["residential_abroad"] if p.country in _FAR]
        countries = []
        for i in self.victims:
            c = w.customers[i]
            t = rng.randrange(lo, hi)
            device, ua, _ = c.devices[0]
            ip = c.home_ip if c.net in ("broadband", "v6") else c.prefix.ip(rng)
            sid = f"s-{_hex(rng)}"
            out.append(
                (
                    t,
                    _login(
                        t, c.cid, "customer", "success", ip, "password", "normal", sid, ua, device
                    ),
                )
            )
            tt = t
            for _ in range(rng.randint(1, 4)):
                tt += rng.randrange(5, 90) * SEC
                out.append(
                    (
                        tt,
                        _access(
                            tt,
                            c.cid,
                            "customer",
                            c.cid,
                            "order_history",
                            "read",
                            ip,
                            "normal",
                            sid,
                            fmt_ts(t),
                            CUSTOMER_KEY,
                            ua,
                        ),
                    )
                )
            prefix = rng.choice(far_prefixes)
            countries.append(prefix.country)
            far_ip = prefix.ip(rng)
            t2 = t + min(rng.randrange(5, 40) * MIN, max(MIN, (w.t1 - t) // 3))
            sid2 = f"s-{_hex(rng)}"
            ua2 = rng.choice(_WEB_UAS)
            dev2 = f"d-{_hex(rng, 48)}"
            out.append(
                self.bad(
                    t2,
                    _login(
                        t2,
                        c.cid,
                        "customer",
                        "success",
                        far_ip,
                        "password",
                        self.name,
                        sid2,
                        ua2,
                        dev2,
                    ),
                )
            )
            tt = t2
            for res in rng.sample(
                ("profile", "address", "payment", "order_history"), rng.randint(2, 4)
            ):
                tt += rng.randrange(5, 120) * SEC
                out.append(
                    self.bad(
                        tt,
                        _access(
                            tt,
                            c.cid,
                            "customer",
                            c.cid,
                            res,
                            "read",
                            far_ip,
                            self.name,
                            sid2,
                            fmt_ts(t2),
                            CUSTOMER_KEY,
                            ua2,
                        ),
                    )
                )
        self.params["far_countries"] = countries
        return _sorted(out)


class _SessionHijack(_Attack):
    def plan(self) -> None:
        w, rng = self.w, self.rng
        self.victim = w.pick_customer(rng)
        picks = rng.sample(
            [
                p
                for p in NETWORKS["hosting"] + NETWORKS["residential_abroad"]
                if p.country != w.cfg.home_country
            ],
            12,
        )
        chosen: list[Prefix] = []
        for p in picks:
            if p.country not in {q.country for q in chosen}:
                chosen.append(p)
        self.prefixes = chosen[: rng.randint(3, 4)]
        self.params = {
            "account": w.customers[self.victim].cid,
            "countries": [p.country for p in self.prefixes],
        }

    def generate(self) -> Iterator[tuple[int, dict]]:
        w, rng = self.w, self.rng
        c = w.customers[self.victim]
        out: list[tuple[int, dict]] = []
        room = w.t1 - self.t_start
        t = self.t_start + min(rng.randrange(0, 60) * MIN, room // 6)
        device, ua, _ = c.devices[0]
        ip = c.home_ip if c.net in ("broadband", "v6") else c.prefix.ip(rng)
        sid = f"s-{_hex(rng)}"
        iat = fmt_ts(t)
        self.params["session"] = sid
        out.append(
            (t, _login(t, c.cid, "customer", "success", ip, "password", "normal", sid, ua, device))
        )
        tt = t
        while tt < t + 40 * MIN:  # the owner keeps shopping at home
            tt += rng.randrange(30, 120) * SEC
            res = rng.choices(_CUSTOMER_RESOURCES, _CUSTOMER_WEIGHTS)[0]
            out.append(
                (
                    tt,
                    _access(
                        tt,
                        c.cid,
                        "customer",
                        c.cid,
                        res,
                        "read",
                        ip,
                        "normal",
                        sid,
                        iat,
                        CUSTOMER_KEY,
                        ua,
                    ),
                )
            )
        for p in self.prefixes:
            hip = p.ip(rng)
            hua = rng.choice(_WEB_UAS)
            th = t + min(rng.randrange(3, 10) * MIN, room // 6)
            for _ in range(rng.randint(8, 16)):
                th += rng.randrange(20, 180) * SEC
                res = rng.choice(("address", "payment", "order_history", "profile", "email"))
                out.append(
                    self.bad(
                        th,
                        _access(
                            th,
                            c.cid,
                            "customer",
                            c.cid,
                            res,
                            "read",
                            hip,
                            self.name,
                            sid,
                            iat,
                            CUSTOMER_KEY,
                            hua,
                        ),
                    )
                )
        return _sorted(out)


_ATTACK_CLASSES: dict[str, type[_Attack]] = {
    "coupang": _Coupang,
    "coupang_predating": _CoupangPredating,
    "coupang_active_key": _CoupangActiveKey,
    "insider": _Insider,
    "departed_key": _DepartedKey,
    "terminated_session": _TerminatedSession,
    "stuffing": _Stuffing,
    "spray": _Spray,
    "impossible_travel": _ImpossibleTravel,
    "session_hijack": _SessionHijack,
}

# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``accesswatch simulate``."""
    d = SimConfig()
    parser.add_argument(
        "--seed", type=int, default=d.seed, help="random seed (default %(default)s)"
    )
    parser.add_argument(
        "--start", default=d.start, help="RFC 3339 start time (default %(default)s)"
    )
    parser.add_argument("--hours", type=float, default=d.hours, help="hours of traffic")
    parser.add_argument("--customers", type=int, default=d.customers, help="customer accounts")
    parser.add_argument(
        "--employees", type=int, default=d.employees, help="support staff and engineers"
    )
    parser.add_argument("--services", type=int, default=d.services, help="internal services")
    parser.add_argument(
        "--attack",
        action="append",
        default=[],
        metavar="NAME",
        help="inject this attack (repeatable; see --list-attacks)",
    )
    parser.add_argument(
        "--attack-start-hour",
        type=float,
        default=d.attack_start_hour,
        help="hours after start when attacks begin (default %(default)s)",
    )
    parser.add_argument("--home-country", default=d.home_country, help=argparse.SUPPRESS)
    parser.add_argument(
        "--out", default="-", metavar="FILE", help="JSON lines of events (default - for stdout)"
    )
    parser.add_argument(
        "--truth",
        default=None,
        metavar="FILE",
        help="write the ground truth (a JSON array, one record per attack)",
    )
    parser.add_argument("--list-attacks", action="store_true", help="list attacks and exit")


def config_from_args(args: argparse.Namespace) -> SimConfig:
    return SimConfig(
        seed=args.seed,
        start=args.start,
        hours=args.hours,
        customers=args.customers,
        employees=args.employees,
        services=args.services,
        attacks=tuple(args.attack or ()),
        home_country=getattr(args, "home_country", "KR"),
        attack_start_hour=getattr(args, "attack_start_hour", 2.0),
    )


def run(args: argparse.Namespace) -> int:
    """``accesswatch simulate``: events as JSON lines to --out, truth to --truth."""
    if getattr(args, "list_attacks", False):
        width = max(map(len, ATTACKS))
        for name, desc in ATTACKS.items():
            print(f"{name:<{width}}  {desc}")
        return 0
    try:
        cfg = config_from_args(args)
        world = _World(cfg)
    except SimulationError as exc:
        print(f"accesswatch simulate: error: {exc}", file=sys.stderr)
        return 2
    out_path = args.out or "-"
    dumps = orjson.dumps
    n = 0
    try:
        sink = sys.stdout.buffer if out_path == "-" else open(out_path, "wb")  # noqa: SIM115
    except OSError as exc:
        print(
            f"accesswatch simulate: error: cannot write {out_path}: {exc.strerror}", file=sys.stderr
        )
        return 2
    try:
        buf: list[bytes] = []
        for ev in world.stream():
            buf.append(dumps(ev))
            n += 1
            if len(buf) >= 8192:
                buf.append(b"")
                sink.write(b"\n".join(buf))
                buf.clear()
        if buf:
            buf.append(b"")
            sink.write(b"\n".join(buf))
        sink.flush()
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except OSError as exc:
        print(f"accesswatch simulate: error: writing {out_path}: {exc.strerror}", file=sys.stderr)
        return 2
    finally:
        if sink is not sys.stdout.buffer:
            sink.close()
    if args.truth:
        try:
            with open(args.truth, "wb") as fh:
                fh.write(orjson.dumps(world.truth(), option=orjson.OPT_INDENT_2) + b"\n")
        except OSError as exc:
            print(
                f"accesswatch simulate: error: cannot write {args.truth}: {exc.strerror}",
                file=sys.stderr,
            )
            return 2
    counts: dict[str, int] = {}
    for t in world.truth():
        counts[t["attack"]] = len(t["event_ids"])
    attacks = ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"
    print(f"accesswatch simulate: {n} events (attack events: {attacks})", file=sys.stderr)
    return 0


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="accesswatch simulate", description="Seeded, labeled synthetic traffic."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "ATTACKS",
    "EXPECTED_DETECTORS",
    "NETWORKS",
    "Prefix",
    "SimConfig",
    "SimResult",
    "SimulationError",
    "add_arguments",
    "fmt_ts",
    "iter_events",
    "run",
    "simulate",
]
