"""geoip2fast without its result object (``GeoIP2FastSource._country_org_fast``, issue 14
speed): the same country and AS name as the library's own ``lookup`` gives ``country_org``."""

from __future__ import annotations

import ipaddress
import random
from importlib.metadata import version

from detectors.geo import GEOIP2FAST_PINNED, UNKNOWN, _shared_geoip2fast


def _by_the_library(src, ip: str) -> tuple[str, int | None, str]:  # type: ignore[no-untyped-def]
    r = src._g.lookup(ip)
    cc = r.country_code if len(r.country_code or "") == 2 else UNKNOWN
    return cc, None, r.asn_name or ""


def test_the_pinned_geoip2fast_is_the_one_installed() -> None:
    # the fast path reads the library's tables: an upgrade is read and tested again first
    assert version("geoip2fast") == GEOIP2FAST_PINNED


def test_country_org_is_the_librarys_answer_for_any_address() -> None:
    src = _shared_geoip2fast()
    rng = random.Random(14)
    addrs = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(4000)]
    addrs += [str(ipaddress.IPv6Address(rng.getrandbits(128))) for _ in range(1000)]
    # IPv6 inside announced space (2000::/4) hits networks rather than gaps
    addrs += [str(ipaddress.IPv6Address((0x2 << 124) | rng.getrandbits(124))) for _ in range(1000)]
    addrs += ["0.0.0.0", "255.255.255.255", "10.1.2.3", "127.0.0.1", "169.254.1.1",
              "192.168.0.1", "8.8.8.8", "159.89.3.141", "121.134.3.3", "223.33.1.1", "::1",
              "::", "fe80::1", "2001:db8::1", "not an address", "", "1.2.3"]
    fast = 0
    for ip in addrs:
        assert src.country_org(ip) == _by_the_library(src, ip), ip
        fast += src._country_org_fast(ip) is not None
    assert fast > 3500  # the fast path answered (nearly every IPv4 one), not the fallback
