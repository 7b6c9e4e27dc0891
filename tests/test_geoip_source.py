"""The worker's GeoIP source (issue 16): the operator's MaxMind-format databases, written
here by mmdb-writer, give the worker's engines their countries and AS numbers."""

from __future__ import annotations

from dataclasses import replace
from io import BytesIO
from pathlib import Path

import orjson
import pytest

from simulation import SimConfig, simulate
from streams.settings import Settings, SettingsError

pytest.importorskip("maxminddb", reason="pip install 'accesswatch[maxmind]'")
mmdb_writer = pytest.importorskip("mmdb_writer", reason="pip install mmdb-writer (test extra)")
from netaddr import IPSet  # noqa: E402 (mmdb-writer's dependency)

KEY = "test-state-key-0123456789"
#: the Coupang-style attacker's server (the bundled data: DE, DIGITALOCEAN-ASN, no number)
ATTACKER = "159.89.3.141"


def write_dbs(tmp_path: Path) -> tuple[Path, Path]:
    country = mmdb_writer.MMDBWriter(ip_version=6, ipv4_compatible=True,
                                     database_type="GeoLite2-Country")
    country.insert_network(IPSet(["159.89.0.0/16"]),
                           {"country": {"iso_code": "NL", "names": {"en": "Netherlands"}}})
    country.insert_network(IPSet(["139.180.0.0/16"]), {"country": {"iso_code": "AU"}})
    asn = mmdb_writer.MMDBWriter(ip_version=6, ipv4_compatible=True,
                                 database_type="GeoLite2-ASN")
    # 16509 is a hosting AS in detectors/data/network_classes.tsv; the name matches nothing
    asn.insert_network(IPSet(["159.89.0.0/16"]), {
        "autonomous_system_number": 16509, "autonomous_system_organization": "Test Org One"})
    cpath, apath = tmp_path / "Country.mmdb", tmp_path / "ASN.mmdb"
    country.to_db_file(str(cpath))
    asn.to_db_file(str(apath))
    return cpath, apath


def maxmind_settings(cpath: Path, apath: Path | None) -> Settings:
    # one partition: the test replays through the worker's own engine, which with several
    # hands its findings to the episode builders (streams.episodes) instead of alerting
    return replace(Settings.from_env({}), state_keys=(KEY,), geoip_source="maxmind",
                   geoip_country_db=str(cpath), geoip_asn_db=str(apath) if apath else "",
                   partitions=1)


def test_the_worker_uses_the_maxmind_countries_and_as_numbers(tmp_path: Path) -> None:
    from streams.app import create_app
    from streams.replay import replay

    cpath, apath = write_dbs(tmp_path)
    rt = create_app(maxmind_settings(cpath, apath).validate()).accesswatch
    engine = rt._fresh_engine()
    assert engine.ctx.geo is rt.geo
    net = rt.geo.lookup(ATTACKER)
    assert (net.country, net.asn, net.org, net.net_class) == (
        "NL", 16509, "Test Org One", "hosting")  # the class from the AS number alone
    assert net.asn_key == "AS16509"
    assert rt.geo.lookup("139.180.134.136").country == "AU"
    # a simulated attack through the worker's engine: the alerts place the attacker where
    # the operator's database says, not where the bundled data does (DE)
    sim = simulate(SimConfig(seed=5, customers=300, hours=3, attacks=("coupang",),
                             attack_start_hour=1))
    alerts = replay((orjson.dumps(e) for e in sim.events), engine, BytesIO())
    about = [a["summary"] for a in alerts if ATTACKER in a["summary"]]
    assert about, [a["summary"] for a in alerts]
    assert all("NL" in s and "DE" not in s.split(ATTACKER)[1][:8] for s in about), about
    assert any("Test Org One" in s for s in about), about
    # the bundled source, for contrast: the same address is DE and has no AS number
    bundled = create_app(replace(Settings.from_env({}), state_keys=(KEY,))).accesswatch.geo
    assert (bundled.lookup(ATTACKER).country, bundled.lookup(ATTACKER).asn) == ("DE", None)


def test_a_city_database_gives_the_countries_too(tmp_path: Path) -> None:
    from streams.geoip import make_geo

    city = mmdb_writer.MMDBWriter(ip_version=6, ipv4_compatible=True,
                                  database_type="GeoLite2-City")
    city.insert_network(IPSet(["159.89.0.0/16"]), {"city": {"names": {"en": "Amsterdam"}},
                                                   "country": {"iso_code": "NL"}})
    path = tmp_path / "City.mmdb"
    city.to_db_file(str(path))
    s = replace(Settings.from_env({}), state_keys=(KEY,), geoip_source="maxmind",
                geoip_city_db=str(path)).validate()
    net = make_geo(s).lookup(ATTACKER)
    assert (net.country, net.asn) == ("NL", None)


def test_unusable_databases_are_one_line_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(b"not a database at all")
    cases = [
        (replace(Settings.from_env({}), geoip_source="maxmind"), "needs a Country or City"),
        (maxmind_settings(tmp_path / "missing.mmdb", None), "cannot read it"),
        (maxmind_settings(junk, None), "not a MaxMind DB"),
    ]
    for s, match in cases:
        with pytest.raises(SettingsError, match=match) as info:
            s.validate()
        assert "\n" not in str(info.value)
