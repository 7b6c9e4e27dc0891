"""impossible_travel: speeds between country centroids, what counts as a location."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.engine import Engine, EngineConfig
from detectors.impossible_travel import (
    ImpossibleTravel,
    centroids,
    distance_km,
    haversine_km,
    travel_km,
)

T0 = 1750723200.0
KR, RU, US, JP, DE = "121.134.3.3", "95.24.1.1", "73.15.3.3", "153.144.2.3", "79.192.4.4"


class Feed:
    def __init__(self, **params: Any) -> None:
        self.eng = Engine(EngineConfig(detectors=("impossible_travel",),
                                       params={"impossible_travel": params}))
        self.n = 0
        self.alerts: list[dict] = []

    def login(self, t: float, acct: str, ip: str, sid: str | None = None,
              typ: str = "customer", outcome: str = "success",
              ua: str | None = None) -> list[dict]:
        self.n += 1
        e = {"event_id": f"l{self.n}", "ts": T0 + t, "account_id": acct, "account_type": typ,
             "outcome": outcome, "src_ip": ip}
        if ua is not None:
            e["user_agent"] = ua
        if outcome == "success":
            e["session_id"] = sid or f"s{self.n}"
        out = self.eng.process_obj(e)[0]
        self.alerts += out
        return out

    def access(self, t: float, actor: str, ip: str, sid: str, typ: str = "customer",
               ua: str | None = None) -> list[dict]:
        self.n += 1
        e = {"event_id": f"a{self.n}", "ts": T0 + t, "actor_id": actor, "actor_type": typ,
             "subject_id": actor, "resource": "address", "src_ip": ip, "session_id": sid}
        if ua is not None:
            e["user_agent"] = ua
        out = self.eng.process_obj(e)[0]
        self.alerts += out
        return out


def test_centroid_table_covers_every_country() -> None:
    c = centroids()
    assert len(c) >= 245
    for cc in ("KR", "US", "RU", "BR", "NG", "DE", "GB", "JP", "VN", "XK"):
        assert cc in c
    assert all(-90 <= lat <= 90 and -180 <= lon <= 180 for lat, lon in c.values())


def test_haversine_and_country_distances() -> None:
    assert haversine_km((0.0, 0.0), (0.0, 1.0)) == pytest.approx(111.2, abs=0.1)
    assert haversine_km((90.0, 0.0), (-90.0, 0.0)) == pytest.approx(20015, abs=1)
    assert distance_km("KR", "US") == pytest.approx(10700, rel=0.03)
    assert travel_km("KR", "KR") == 0.0
    assert travel_km("KR", "ZZ") is None
    # big countries are shortened by half their radius: US-CA is not a 2,000 km journey
    assert travel_km("US", "CA") < distance_km("US", "CA") - 1700  # type: ignore[operator]


def test_fast_journey_warns_with_speed_against_threshold() -> None:
    f = Feed()
    f.login(0, "c-1", KR)
    out = f.login(15 * 60, "c-1", RU)
    assert [(a["severity"], a["entity"]) for a in out] == [
        ("warning", {"kind": "account", "id": "c-1"})]
    a = out[0]
    assert "from RU (PVimpelCom) 15 min after KR (Korea Telecom)" in a["summary"]
    speed = a["evidence"][0]
    assert speed["feature"] == "speed_kmh" and speed["observed"] > 5000
    assert speed["baseline"] == "<= 1000 km/h"
    assert a["evidence"][1]["observed"].startswith("KR")
    assert a["event_ids"] == ["l1", "l2"]


def test_plausible_flights_are_quiet() -> None:
    f = Feed()
    f.login(0, "c-1", KR)
    f.login(13 * 3600, "c-1", US)  # 11 h flight + airports
    f.login(0, "c-2", KR)
    f.login(3.5 * 3600, "c-2", JP)  # 2.5 h flight
    assert f.alerts == []


def test_threshold_is_a_parameter() -> None:
    f = Feed(max_kmh=20000.0)
    f.login(0, "c-1", KR)
    f.login(3600, "c-1", US)  # ~9,800 km in an hour: under 20,000 km/h
    assert f.alerts == []


def test_same_session_in_two_countries_is_critical() -> None:
    f = Feed()
    f.login(0, "c-1", KR, sid="s-x")
    f.access(60, "c-1", KR, "s-x")
    out = f.access(120, "c-1", US, "s-x")
    assert [a["severity"] for a in out] == ["critical"]
    label = f.eng.ctx.victim("session", "s-x")
    assert f"the same session ({label}) was used at both ends" in out[0]["summary"]
    assert "s-x" not in str(out[0])  # the account's session: a bearer token, by digest


def test_not_locations_vpn_relay_hosting_private_and_same_country() -> None:
    f = Feed()
    f.login(0, "c-1", KR)
    for t, ip in enumerate(["146.70.40.2", "172.224.127.3", "3.101.4.4", "10.1.2.3",
                            "39.4.1.1", "2001:e60::1"], start=1):
        f.access(t * 30, "c-1", ip, "s1")
    assert f.alerts == []


def test_failed_logins_and_services_do_not_move_anyone() -> None:
    f = Feed()
    f.login(0, "c-1", KR)
    f.login(60, "c-1", RU, outcome="failure")
    f.login(0, "svc-1", KR, typ="service")
    f.login(60, "svc-1", US, typ="service")
    assert f.alerts == []


def test_return_to_owner_side_is_not_a_second_page() -> None:
    f = Feed()
    f.login(0, "c-1", KR)
    f.login(600, "c-1", RU)
    f.login(2 * 3600 + 600, "c-1", KR)  # the owner again, after the episode gap
    f.login(5 * 3600, "c-1", KR)
    assert len(f.alerts) == 1


def test_state_is_hashed_and_expires() -> None:
    f = Feed(ttl=3600, home_country="KR", shared_window=3600)
    det = f.eng.detectors["impossible_travel"]
    assert isinstance(det, ImpossibleTravel)
    f.login(0, "c-secret", KR)
    assert det.tracked() == {"account": 1, "src_ip": 1}  # the home address's customers
    assert all(isinstance(k, int) for k in det._last)
    assert all(isinstance(k, int) for p in det._pools.values() for k in p.seen)
    det.expire(T0 + 60)
    assert det._memo == {} and det.tracked() == {"account": 1, "src_ip": 1}
    det.expire(T0 + 7200)
    assert det.tracked() == {"account": 0, "src_ip": 0}
    assert det.warmup() == 1.0  # an exact check


def test_checkpoint_drops_the_raw_id_memo() -> None:
    from streams.snapshot import decode, encode

    f = Feed()
    f.login(0, "c-secret", KR)
    det = f.eng.detectors["impossible_travel"]
    assert det._memo
    blob = encode(det)  # the checkpoint format (before sealing)
    back = decode(blob)
    assert back._memo == {} and len(back._last) == 1
    assert b"c-secret" not in blob


KR_MOBILE = "223.33.1.1"  # SK Telecom: a mobile-only carrier (data/mobile_carriers.tsv)


def test_roaming_phone_on_home_routed_mobile_data_is_not_travel() -> None:
    # a traveller in Germany: hotel broadband, then the phone's home-routed SK Telecom data, back
    # and forth; the home country (KR) is learnt from where the accounts are first seen
    f = Feed()
    for i in range(3):
        f.login(0, f"home-{i}", KR)
    f.login(3600, "c-1", DE, sid="s-trip")
    for k in range(1, 6):
        f.access(3600 + k * 600, "c-1", KR_MOBILE if k % 2 else DE, "s-trip")
    assert f.alerts == []


def test_broadband_at_home_then_abroad_still_pages_next_to_roaming() -> None:
    # the attack beside it: the owner at home on broadband, a second login in Russia 15 min
    # later; a home-mobile use in between does not hide the hop
    f = Feed()
    for i in range(3):
        f.login(0, f"home-{i}", KR)
    f.login(0, "c-1", KR)
    f.access(300, "c-1", KR_MOBILE, "s1")
    out = f.login(15 * 60, "c-1", RU)
    assert [a["severity"] for a in out] == ["warning"]


def test_foreign_mobile_carrier_is_still_a_location() -> None:
    f = Feed(home_country="KR")
    f.login(0, "c-1", KR)
    out = f.login(20 * 60, "c-1", "172.56.1.1")  # T-Mobile US: a place abroad, not home-routed
    assert [a["severity"] for a in out] == ["warning"]


def test_owner_on_home_mobile_then_login_abroad_still_pages() -> None:
    f = Feed(home_country="KR")
    f.login(0, "c-1", KR_MOBILE)  # a phone-only owner at home
    out = f.login(15 * 60, "c-1", RU)
    assert [a["severity"] for a in out] == ["warning"]


def test_a_refresh_token_renewal_abroad_is_info_and_a_password_login_still_warns() -> None:
    """Issue 14 item 6: a traveller's phone on a hotel line renews its own session with its
    refresh token (a non-interactive sign-in) hours after a use at home: info, not a page (the
    red-team travellers' renewals gave 3 of the 6 travel pages left). A password login at the
    same far place still warns, and one session used at both ends is still critical."""
    def login(f: Feed, t: float, acct: str, ip: str, method: str) -> list[dict]:
        f.n += 1
        out = f.eng.process_obj({"event_id": f"l{f.n}", "ts": T0 + t, "account_id": acct,
                                 "outcome": "success", "src_ip": ip, "session_id": f"s{f.n}",
                                 "method": method})[0]
        f.alerts += out
        return out

    f = Feed(home_country="KR")
    f.login(0, "c-1", KR_MOBILE)
    renewal = login(f, 3 * 3600, "c-1", US, "refresh")
    assert [a["severity"] for a in renewal] == ["info"]
    assert any(x["feature"] == "login_method" for x in renewal[0]["evidence"])
    f.login(0, "c-2", KR_MOBILE)
    assert [a["severity"] for a in login(f, 3 * 3600, "c-2", US, "password")] == ["warning"]
    f.login(0, "c-3", KR, sid="s-stolen")
    assert [a["severity"] for a in f.access(20 * 60, "c-3", US, "s-stolen")] == ["critical"]


def test_sweeps_between_whole_passes_expire_exactly_what_a_whole_pass_would() -> None:
    # issue 14 (speed): the sweeps between two whole passes over the accounts read only the
    # queue of those that may go idle before the next pass. Late events add accounts with old
    # times after a pass; accounts seen again leave the queue's order. At every sweep the
    # accounts that remain must be exactly those a scan of the whole table would keep.
    import random

    rng = random.Random(14)
    f = Feed(ttl=6 * 3600.0)  # sweeps every 15 min (the 300 s floor is below ttl / 24)
    det = f.eng.detectors["impossible_travel"]
    assert isinstance(det, ImpossibleTravel)
    inner = det.expire
    swept = {"queue": 0, "whole": 0, "queue_removed": 0}
    wrong: list[float] = []  # sweeps that kept or dropped other accounts than a whole pass

    def checked(now: float) -> None:
        before = dict(det._last)
        sweep = now >= det._next_sweep
        whole = det._due is None or now > det._due_until
        inner(now)
        if set(det._last) != {h for h, w in before.items()
                              if not (sweep and now - w.ts > det.ttl)}:
            wrong.append(now)
        if sweep:
            swept["whole" if whole else "queue"] += 1
            if not whole:
                swept["queue_removed"] += len(before) - len(det._last)

    det.expire = checked  # type: ignore[method-assign]
    t = 0.0
    for _ in range(4000):
        t += rng.expovariate(1 / 90.0)  # four days of event time
        # a quarter of the events hours late: accounts seen again after they were queued
        when = t - rng.uniform(3 * 3600, 6 * 3600) if rng.random() < 0.25 else t
        acct = f"c-{rng.randrange(300)}" if rng.random() < 0.7 else f"n-{rng.randrange(10**6)}"
        f.login(when, acct, KR)
    assert wrong == [] and not f.eng.internal_errors
    assert swept["whole"] >= 3 and swept["queue"] >= 3 * swept["whole"]
    assert swept["queue_removed"] > 50  # the queue did expire accounts, not only the passes


# Issue 14 item 6: carrier NAT pools learnt from the traffic, and home-routed roaming phones.
KT_POOL = "121.134.9.9"  # Korea Telecom: one AS for broadband and mobile (not in the list)
PHONE = "KestrelApp/8.4.1 (iPhone; iOS 17.7)"
LAPTOP = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def _pool(f: Feed, t: float = 0.0, n: int = 6, ip: str = KT_POOL, typ: str = "customer") -> None:
    """``n`` distinct accounts use ``ip`` one minute apart from ``t`` on."""
    for i in range(n):
        f.access(t + 60 * i, f"crowd-{typ}-{i}", ip, f"sc{i}", typ=typ)


def test_an_address_many_customers_share_is_learnt_as_a_carrier_pool() -> None:
    f = Feed(home_country="KR")
    det = f.eng.detectors["impossible_travel"]
    assert isinstance(det, ImpossibleTravel)
    _pool(f, n=5)
    assert not det.shared(KT_POOL, T0 + 600)  # five: a household (a family plan) at home
    _pool(f, n=20, typ="employee")  # an office's egress: employees are not counted
    assert not det.shared(KT_POOL, T0 + 600)
    f.access(600, "crowd-customer-5", KT_POOL, "sc5")
    assert det.shared(KT_POOL, T0 + 600) and det.tracked()["src_ip"] == 1
    assert not det.shared(KR, T0 + 600)
    # spread over more than the window, the same six customers are no pool
    g = Feed(home_country="KR", shared_window=3600)
    for i in range(6):
        g.access(i * 1800, f"c-{i}", KT_POOL, f"s{i}")
    det2 = g.eng.detectors["impossible_travel"]
    assert isinstance(det2, ImpossibleTravel) and not det2.shared(KT_POOL, T0 + 3 * 3600)
    # a learnt pool stays one ``shared_hold`` after its last use, then goes
    det.expire(T0 + 8 * 86400)
    assert not det.shared(KT_POOL, T0 + 8 * 86400) and det.tracked()["src_ip"] == 0
    # state per address stays small: fewer digests than ``shared_accounts``
    assert det.shared_accounts == 6


def test_roaming_traveller_on_a_learnt_pool_then_hotel_abroad_is_info() -> None:
    """The phone abroad on home-routed data shows up on its carrier's pool address, then on the
    hotel's line in Germany with the same app, in another session: info, not a page. Back on
    the pool address it ends no journey (the location stays Germany)."""
    f = Feed(home_country="KR")
    _pool(f)
    f.access(600, "traveller", KT_POOL, "s-mobile", ua=PHONE)
    out = f.login(20 * 60, "traveller", DE, sid="s-hotel", ua=PHONE)
    assert [a["severity"] for a in out] == ["info"]
    assert any(x["feature"] == "home_carrier" for x in out[0]["evidence"])
    for k in range(1, 5):
        f.access(20 * 60 + k * 300, "traveller", KT_POOL if k % 2 else DE,
                 "s-mobile" if k % 2 else "s-hotel", ua=PHONE)
    assert [a["severity"] for a in f.alerts] == ["info"]
    # the first use in the watch on a mobile-only carrier (already roaming), then the hotel
    g = Feed(home_country="KR")
    g.access(0, "t2", KR_MOBILE, "s-m", ua=PHONE)
    assert [a["severity"] for a in g.login(30 * 60, "t2", DE, sid="s-h", ua=PHONE)] == ["info"]


def test_owner_on_a_pool_address_and_a_stolen_password_abroad_still_pages() -> None:
    """The attacker case next to the roaming traveller: the owner on their phone at home (a
    pool address), a password login abroad minutes later from another device: a warning; the
    owner's session used abroad is critical whatever the device. A home address only a
    household uses is a place: the same device abroad 20 min later still warns."""
    f = Feed(home_country="KR")
    _pool(f)
    f.access(600, "owner", KT_POOL, "s-owner", ua=PHONE)
    out = f.login(15 * 60, "owner", RU, sid="s-thief", ua=LAPTOP)
    assert [a["severity"] for a in out] == ["warning"]
    f.access(600, "owner2", KT_POOL, "s-owner2", ua=PHONE)
    assert [a["severity"] for a in f.access(15 * 60, "owner2", RU, "s-owner2", ua=PHONE)] == [
        "critical"]
    f.access(0, "home-1", KR, "s-h1", ua=PHONE)
    assert [a["severity"] for a in f.login(20 * 60, "home-1", RU, ua=PHONE)] == ["warning"]


def test_a_checkpoint_from_before_pools_restores() -> None:
    from detectors.impossible_travel import _Where
    from streams.snapshot import decode, encode

    w = _Where("KR", "Korea Telecom", T0, KR, "e1", "s1", ua=PHONE)
    again = decode(encode(w))  # the checkpoint format (no pickle anywhere)
    assert again == w
    old = _Where.__new__(_Where)
    old.__setstate__((None, {"country": "KR", "org": "", "ts": T0, "ip": KR, "event_id": "e",
                             "session": None, "flagged": 0, "origin": ""}))
    assert old.asn is None and old.ua is None
