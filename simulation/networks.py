"""Networks: real prefixes, their country and ASN checked with geoip2fast (tests/test_simulate.py
re-checks them), and the home countries, trips and far places the population model uses.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass


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
