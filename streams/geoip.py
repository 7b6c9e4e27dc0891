"""The worker's GeoIP source (issue 16): the bundled geoip2fast data, or the operator's
MaxMind GeoLite2 / GeoIP2 ``.mmdb`` files read with ``maxminddb``.

``geoip2fast`` (default) knows countries and AS *names* (a 2024 snapshot, no AS numbers);
``maxmind`` takes a Country database (or a City one: it holds the countries too) and,
optionally, an ASN database, whose AS numbers then key the network classes
(``detectors/data/network_classes.tsv``) and the per-AS views of the detectors.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from detectors.geo import Geo, MaxMindGeo, default_geo


class GeoIPError(ValueError):
    """A GeoIP database that cannot be used: one readable line naming it."""


def check_mmdb(path: str, what: str) -> None:
    """Open ``path`` as a MaxMind DB (``GeoIPError`` with the reason when it is not one)."""
    try:
        import maxminddb
    except ImportError:
        raise GeoIPError("GeoIP source maxmind needs the maxminddb package: "
                         "pip install 'accesswatch[maxmind]'") from None
    try:
        maxminddb.open_database(path).close()
    except OSError as e:
        raise GeoIPError(f"GeoIP {what} database {path}: cannot read it "
                         f"({e.strerror or e})") from None
    except (ValueError, maxminddb.InvalidDatabaseError) as e:
        raise GeoIPError(f"GeoIP {what} database {path}: not a MaxMind DB ({e})") from None


@lru_cache(maxsize=4)
def _maxmind(country_or_city: str, asn: str | None) -> Geo:
    return Geo(MaxMindGeo(country_or_city, asn))


def make_geo(settings: Any) -> Geo:
    """The ``Geo`` the settings ask for (one per process and set of files)."""
    if getattr(settings, "geoip_source", "geoip2fast") != "maxmind":
        return default_geo()
    return _maxmind(settings.geoip_country_db or settings.geoip_city_db,
                    settings.geoip_asn_db or None)
