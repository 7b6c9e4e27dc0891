"""The normal population: customers, staff and services, their activity by hour, devices and
user agents, the resources they read, the active signing keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .networks import Prefix

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
