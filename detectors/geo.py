"""Offline network facts for an address: country, AS, network class, subnet.

The default source is the data shipped inside the ``geoip2fast`` wheel (country and AS name,
IPv4 and IPv6); an operator can use their own MaxMind ``.mmdb`` files instead
(:class:`MaxMindGeo`). Values the event carries (``country``, ``asn``) win only where the
configuration trusts its producer (``EngineConfig.trust_producer_geo``): otherwise decoding
drops them and the data here decides. IPv6 forms that carry an IPv4 address (mapped,
compatible, NAT64, 6to4) are looked up as that IPv4 address (``events.normal_ip``).

Network classes come from ``data/network_classes.tsv`` (see the sources at its top):
``hosting`` (cloud, datacenter), ``vpn``, ``relay``, ``isp`` (everything else), ``private``.
:func:`mobile_carrier` tells, from ``data/mobile_carriers.tsv``, the ``isp`` networks that serve
only mobile data (their addresses follow a roaming phone abroad: home-routed data).

>>> g = default_geo()
>>> n = g.lookup("52.95.110.1")
>>> n.country, n.net_class, n.subnet
('US', 'hosting', '52.95.110.0/24')
>>> g.lookup("10.1.2.3").net_class
'private'
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Protocol

from .events import normal_ip

UNKNOWN = "??"


@dataclass(frozen=True, slots=True)
class NetInfo:
    country: str  # ISO alpha-2, or "??"
    asn: int | None  # AS number when known
    org: str  # AS name ("" when unknown)
    net_class: str  # hosting / vpn / relay / isp / private
    subnet: str  # /24 for IPv4, /48 for IPv6
    version: int

    @property
    def asn_key(self) -> str:
        """A stable id for the AS: its number when known, else its name."""
        if self.asn is not None:
            return f"AS{self.asn}"
        return self.org or f"{self.country}-unknown"


#: (AS number, AS name) pairs whose class ``_Classes.classify`` remembers before it starts again
_CLASSIFY_MEMO_MAX = 65536


class _Classes:
    def __init__(self) -> None:
        self.by_asn: dict[int, str] = {}
        self.patterns: list[tuple[str, str]] = []
        self._memo: dict[tuple[int | None, str], str] = {}  # ``classify``'s answers
        text = resources.files("detectors").joinpath("data/network_classes.tsv").read_text()
        for line in text.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            cls, asn, pat = (line.split("\t") + ["-", "-"])[:3]
            if asn != "-":
                self.by_asn[int(asn)] = cls
            if pat != "-":
                self.patterns.append((pat.upper(), cls))

    def classify(self, asn: int | None, org: str) -> str:
        """The network class of an AS (number, else name patterns; ``isp`` when none
        matches). Remembered per (number, name): every new address of an AS is classified
        (issue 14, speed: a new address costs a scan of every pattern otherwise)."""
        memo = self._memo
        cls = memo.get((asn, org))
        if cls is None:
            cls = self._classify(asn, org)
            if len(memo) >= _CLASSIFY_MEMO_MAX:
                memo.clear()
            memo[(asn, org)] = cls
        return cls

    def _classify(self, asn: int | None, org: str) -> str:
        if asn is not None and asn in self.by_asn:
            return self.by_asn[asn]
        up = org.upper()
        for pat, cls in self.patterns:
            if pat in up:
                return cls
        return "isp"


@lru_cache(maxsize=1)
def network_classes() -> _Classes:
    return _Classes()


@lru_cache(maxsize=1)
def _mobile_carriers() -> tuple[frozenset[int], tuple[str, ...]]:
    asns: set[int] = set()
    pats: list[str] = []
    text = resources.files("detectors").joinpath("data/mobile_carriers.tsv").read_text()
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        asn, pat = (line.split("\t") + ["-", "-"])[:2]
        if asn != "-":
            asns.add(int(asn))
        if pat != "-":
            pats.append(pat.upper())
    return frozenset(asns), tuple(pats)


@lru_cache(maxsize=4096)
def _mobile(asn: int | None, org: str) -> bool:
    asns, pats = _mobile_carriers()
    if asn is not None:
        return asn in asns
    up = org.upper()
    return any(p in up for p in pats)


def mobile_network(asn: int | None, org: str) -> bool:
    """:func:`mobile_carrier` for an ``isp`` network known by its AS number and name only."""
    return _mobile(asn, org)


def mobile_carrier(net: NetInfo) -> bool:
    """True for an address of a mobile-only carrier (``data/mobile_carriers.tsv``): by AS number
    when known, else by AS name.

    >>> g = default_geo()
    >>> mobile_carrier(g.lookup("223.33.1.1")), mobile_carrier(g.lookup("121.134.3.3"))
    (True, False)
    """
    return net.net_class == "isp" and _mobile(net.asn, net.org)


def _subnet_of_reference(ip: str) -> tuple[str, int, bool]:
    """:func:`subnet_of` by the book (``ipaddress`` throughout): the fast path's yardstick."""
    addr = ipaddress.ip_address(ip)
    if addr.version == 4:
        net = ipaddress.ip_network(f"{ip}/24", strict=False)
    else:
        net = ipaddress.ip_network(f"{ip}/48", strict=False)
    private = addr.is_private or addr.is_loopback or addr.is_link_local
    return str(net), addr.version, private


def _v4_int(ip: str) -> int | None:
    """An IPv4 address in the form ``ipaddress`` accepts (four decimal octets, no leading
    zeros) as an integer; None for anything else."""
    parts = ip.split(".")
    if len(parts) != 4:
        return None
    n = 0
    for p in parts:
        if not 0 < len(p) <= 3 or not (p.isascii() and p.isdigit()) or (
                p[0] == "0" and len(p) > 1):
            return None
        v = int(p)
        if v > 255:
            return None
        n = n << 8 | v
    return n


def _v4_private_ranges() -> tuple[tuple[int, int], ...] | None:
    """``is_private or is_loopback or is_link_local`` of IPv4 as integer ranges, taken from
    ``ipaddress``'s own tables and checked against it at every range edge; None (use
    ``ipaddress`` per address) when this Python's rules are not that simple."""
    try:
        c = ipaddress.IPv4Address._constants  # type: ignore[attr-defined]  # private: checked against the public answers below
        if getattr(c, "_private_networks_exceptions", None):
            return None  # newer rules (carve-outs): not a union of ranges
        nets = [*c._private_networks, c._loopback_network, c._linklocal_network]
        ranges = tuple(sorted((int(n.network_address), int(n.broadcast_address))
                              for n in nets))
        probes = {0, 2**32 - 1, 0x08080808, 0x340101FF}
        for lo, hi in ranges:
            probes.update((max(lo - 1, 0), lo, hi, min(hi + 1, 2**32 - 1)))
        for n in probes:
            a = ipaddress.IPv4Address(n)
            fast = any(lo <= n <= hi for lo, hi in ranges)
            if fast != (a.is_private or a.is_loopback or a.is_link_local):
                return None
        return ranges
    except Exception:  # noqa: BLE001 - any surprise: the reference path
        return None


_V4_PRIVATE = _v4_private_ranges()


def subnet_of(ip: str) -> tuple[str, int, bool]:
    """(subnet: /24 for IPv4, /48 for IPv6; IP version; private, loopback or link-local).

    Raises ValueError for a string that is not an address, as ``ipaddress`` does. IPv4 is
    parsed here (the string is already canonical when ``ipaddress`` accepts it); IPv6 is parsed
    once by ``ipaddress`` and masked as an integer. Same results as
    :func:`_subnet_of_reference`, several times faster (each address is looked up once).

    >>> subnet_of("52.95.110.1"), subnet_of("2001:db8:1:2::1")
    (('52.95.110.0/24', 4, False), ('2001:db8:1::/48', 6, True))
    >>> import random
    >>> rng = random.Random(7)
    >>> addrs = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(3000)] + [
    ...     str(ipaddress.IPv6Address(rng.getrandbits(128))) for _ in range(1000)] + [
    ...     "10.1.2.3", "127.0.0.1", "169.254.1.1", "192.0.0.9", "255.255.255.255", "::1",
    ...     "fe80::1", "::ffff:10.0.0.1", "64:ff9b::1.2.3.4"]
    >>> all(subnet_of(a) == _subnet_of_reference(a) for a in addrs)
    True
    """
    ranges = _V4_PRIVATE
    if ranges is not None:
        n = _v4_int(ip)
        if n is not None:
            private = False
            for lo, hi in ranges:
                if lo <= n <= hi:
                    private = True
                    break
            return ip[:ip.rfind(".")] + ".0/24", 4, private
    if ":" not in ip or "%" in ip:
        return _subnet_of_reference(ip)  # IPv4 (if the fast path is off), scoped, or invalid
    addr = ipaddress.ip_address(ip)
    if addr.version != 6:  # pragma: no cover - a colon means IPv6 to ipaddress
        return _subnet_of_reference(ip)
    net = ipaddress.IPv6Address(int(addr) >> 80 << 80)
    private = addr.is_private or addr.is_loopback or addr.is_link_local
    return f"{net}/48", 6, private


class GeoSource(Protocol):
    def country_org(self, ip: str) -> tuple[str, int | None, str]: ...


class Geo:
    """Looks addresses up once and remembers them (bounded LRU)."""

    def __init__(self, source: GeoSource | None, cache_size: int = 262144) -> None:
        self.source = source
        self.classes = network_classes()
        self.cache_size = cache_size
        self.lookup = lru_cache(maxsize=cache_size)(self._lookup)

    def __getstate__(self) -> dict[str, object]:
        # The cache is rebuilt, not pickled: engine checkpoints stay small and picklable.
        return {"source": self.source, "cache_size": self.cache_size}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(state["source"], state["cache_size"])  # type: ignore[misc]  # __init__ rebuilds the cache, which is not pickled

    def _lookup(self, ip: str) -> NetInfo:
        ip = normal_ip(ip) or ip  # decoding normalised it already; other callers may not
        subnet, version, private = subnet_of(ip)
        if private:
            return NetInfo(UNKNOWN, None, "private", "private", subnet, version)
        country, asn, org = self.source.country_org(ip) if self.source else (UNKNOWN, None, "")
        return NetInfo(country, asn, org, self.classes.classify(asn, org), subnet, version)

    def enrich(self, ip: str, country: str | None, asn: int | None) -> NetInfo:
        """NetInfo for an event, the event's own country/asn taking precedence (decoding
        leaves them None unless their producer is trusted)."""
        n = self.lookup(ip)
        if country is None and asn is None:
            return n
        cls = n.net_class
        if asn is not None and asn != n.asn:
            cls = "private" if n.net_class == "private" else self.classes.classify(asn, "")
            if cls == "isp" and n.asn is None:
                cls = n.net_class
        return NetInfo(country or n.country, asn if asn is not None else n.asn, n.org, cls,
                       n.subnet, n.version)


#: the geoip2fast version ``GeoIP2FastSource._country_org_fast`` was read in and tested against
GEOIP2FAST_PINNED = "1.2.2"
_G2F: Any = None  # geoip2fast's module, once a source has loaded its data


class GeoIP2FastSource:
    """Country and AS name from the geoip2fast wheel's bundled data (IPv4 + IPv6)."""

    def __init__(self) -> None:
        from geoip2fast import GeoIP2Fast

        self._g = GeoIP2Fast(geoip2fast_data_file="geoip2fast-asn-ipv6.dat.gz")
        global _G2F
        import geoip2fast.geoip2fast as g2f

        _G2F = g2f  # the module whose tables the loaded data filled (``_country_org_fast``)

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (_shared_geoip2fast, ())

    def country_org(self, ip: str) -> tuple[str, int | None, str]:
        fast = self._country_org_fast(ip)
        if fast is not None:
            return fast
        r = self._g.lookup(ip)
        cc = r.country_code if len(r.country_code or "") == 2 else UNKNOWN
        return cc, None, r.asn_name or ""

    def _country_org_fast(self, ip: str) -> tuple[str, int | None, str] | None:
        """``country_org`` from geoip2fast's tables without its ``lookup``'s result object;
        None when the library's own ``lookup`` should answer (any doubt).

        The one reach into geoip2fast's internals, and why: ``GeoIP2Fast.lookup`` answers a
        country and an AS name, but also formats two CIDR strings (``_int2ip``), times
        itself twice and formats the time, and builds a ``GeoIPDetail``: ~35% of a look-up
        that finds its network, and each new address is looked up (issue 14, speed: a
        replay of many-entity traffic looks up thousands of new addresses). This walks the
        same tables the same way (``_ip2int``, the ``bisect_right`` of ``_main_index_lookup``
        and ``_asn_lookup``, ``_country_lookup``'s country and private rule) and gives what
        ``country_org`` makes of ``lookup``'s answer. An address whose network is not found,
        a city database, or any exception: the library's ``lookup`` decides, as before.
        ``tests/test_geo_fast.py`` compares both paths over random IPv4 and IPv6 addresses and
        pins the geoip2fast version (``GEOIP2FAST_PINNED``)."""
        g = self._g
        if g.country is not True:
            return None
        m = _G2F
        try:
            n = g._ip2int(ip)  # noqa: SLF001 - see the docstring
            root = bisect_right(m.mainIndex, n) - 1
            firsts = m.mainListFirstIP[root]
            chunk = bisect_right(firsts, n) - 1
            first = firsts[chunk]
            netlen = m.mainListNetlength[root][chunk]
            size = (m.numIPsv4 if n <= m.MAX_IPv4 else m.numIPsv6)[netlen]
            if n > first + size - 1:
                return None  # network not found: the library's answer
            org = ""
            if not g.asn == False:  # noqa: E712 - the library's own test (``_asn_lookup``)
                aroot = bisect_right(m.mainIndexASN, n) - 1
                afirsts = m.mainListFirstIPASN[aroot]
                achunk = bisect_right(afirsts, n) - 1
                afirst = afirsts[achunk]
                alen = m.mainListNetlengthASN[aroot][achunk]
                top = afirst + (m.numIPsv6 if g.ipv6 else m.numIPsv4)[alen] - 1
                if n <= top:
                    org = m.mainListNamesASN[m.mainListIDASN[aroot][achunk]]
            idx = m.mainListIDCountryCodes[root][chunk]
            cc, _name = m.mainListNamesCountry[idx].split(":")
            if idx < 16:
                cc = g.error_code_private_networks
        except Exception:  # noqa: BLE001 - any doubt: the library's lookup
            return None
        return (cc if len(cc or "") == 2 else UNKNOWN), None, org or ""


class MaxMindGeo:
    """Country and ASN from the operator's own MaxMind / DB-IP ``.mmdb`` files (``maxminddb``)."""

    def __init__(self, country_mmdb: str, asn_mmdb: str | None = None) -> None:
        try:
            import maxminddb
        except ImportError as e:  # pragma: no cover - optional extra
            raise RuntimeError("MaxMind files need the 'maxminddb' package: "
                               "pip install 'accesswatch[maxmind]'") from e
        self._paths = (country_mmdb, asn_mmdb)
        self._country = maxminddb.open_database(country_mmdb)
        self._asn = maxminddb.open_database(asn_mmdb) if asn_mmdb else None

    def __reduce__(self) -> tuple[object, tuple[str, str | None]]:
        return (MaxMindGeo, self._paths)

    def country_org(self, ip: str) -> tuple[str, int | None, str]:
        rec: Any = self._country.get(ip) or {}  # maxminddb's Record: a dict here
        cc = ((rec.get("country") or rec.get("registered_country") or {}).get("iso_code")
              or UNKNOWN)
        asn, org = None, ""
        if self._asn is not None:
            a: Any = self._asn.get(ip) or {}
            asn = a.get("autonomous_system_number")
            org = a.get("autonomous_system_organization") or ""
        return cc, asn, org


@lru_cache(maxsize=1)
def _shared_geoip2fast() -> GeoIP2FastSource:
    return GeoIP2FastSource()


@lru_cache(maxsize=1)
def default_geo() -> Geo:
    return Geo(_shared_geoip2fast())
