"""overseas_server: per-source pages for customer reads from hosting abroad, staff rarity."""

from __future__ import annotations

import random
from typing import Any

from detectors.engine import Engine, EngineConfig
from detectors.overseas_server import OverseasServer

T0 = 1750723200.0


def engine(**params: Any) -> Engine:
    """An engine of overseas_server whose reads are judged at once (``login_lateness`` 0):
    these tests count what a subnet and an account see; the wait for late logins (h-par7)
    has its own tests below, with the default."""
    params.setdefault("login_lateness", 0.0)
    return Engine(EngineConfig(detectors=("overseas_server",), params={"overseas_server": params}))


class Feed:
    def __init__(self, eng: Engine) -> None:
        self.eng, self.n, self.alerts = eng, 0, []  # type: ignore[var-annotated]

    def login(self, t: float, acct: str, ip: str, typ: str = "customer") -> list[dict]:
        self.n += 1
        out = self.eng.process_obj({"event_id": f"l{self.n}", "ts": t, "account_id": acct,
                                    "account_type": typ, "outcome": "success", "src_ip": ip,
                                    "session_id": f"s{self.n}"})[0]
        self.alerts += out
        return out

    def access(self, t: float, actor: str, ip: str, typ: str = "customer",
               key: str | None = None) -> list[dict]:
        self.n += 1
        e = {"event_id": f"a{self.n}", "ts": t, "actor_id": actor, "actor_type": typ,
             "subject_id": actor if typ == "customer" else "c-1", "resource": "address",
             "src_ip": ip}
        if key:
            e["key_id"] = key
        out = self.eng.process_obj(e)[0]
        self.alerts += out
        return out


def home_customers(f: Feed, n: int, rng: random.Random) -> None:
    for i in range(n):
        ip = f"121.134.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        f.login(T0 + i, f"c-{i}", ip)
        for k in range(3):
            f.access(T0 + i + 0.1 * (k + 1), f"c-{i}", ip)


def test_source_escalates_warning_then_critical_at_thresholds() -> None:
    f = Feed(engine())
    home_customers(f, 20, random.Random(1))
    sev = []
    for i in range(6):
        out = f.access(T0 + 600 + i, f"c-{i}", "3.101.4.4", key="kid-legacy")
        sev.append([(a["severity"], a["entity"]["kind"]) for a in out])
    # c-0 had 4 uses at home: its lone read from the server is an info on the account
    assert sev[0] == [("info", "account")]
    assert sev[1] == []
    assert sev[2] == [("warning", "subnet")]  # 3 distinct accounts
    assert sev[3] == []
    assert sev[4] == [("critical", "subnet")]  # 5 distinct accounts
    assert sev[5] == []  # one page per source: later victims join the episode
    crit = f.alerts[-1]
    assert crit["entity"] == {"kind": "subnet", "id": "3.101.4.0/24"}
    assert crit["summary"].startswith("5 customer accounts read from hosting server 3.101.4.4 "
                                      "in US (AMAZON-02)")
    ev = {e["feature"]: e for e in crit["evidence"]}
    assert ev["distinct_customer_accounts"]["observed"] == 5
    assert "critical at 5" in ev["distinct_customer_accounts"]["baseline"]
    assert "kid-legacy (5)" in ev["signing_keys"]["observed"]


def test_same_account_repeated_counts_once() -> None:
    f = Feed(engine())
    home_customers(f, 5, random.Random(2))
    for k in range(50):
        f.access(T0 + 600 + k, "c-1", "3.101.4.4")
    assert [a for a in f.alerts if a["entity"]["kind"] == "subnet"] == []


def test_thresholds_are_parameters() -> None:
    f = Feed(engine(warn_accounts=2, critical_accounts=3))
    for i in range(3):
        f.access(T0 + i, f"c-{i}", "45.77.0.9")
    assert [a["severity"] for a in f.alerts] == ["warning", "critical"]


def test_vpn_exit_where_customers_log_in_is_not_paged() -> None:
    f = Feed(engine())
    for i in range(12):  # Datacamp JP is listed as hosting; its users log in through it
        f.login(T0 + i, f"c-{i}", f"89.187.160.{10 + i}")
        f.access(T0 + i + 0.5, f"c-{i}", f"89.187.160.{10 + i}")
    assert f.alerts == []


def test_shared_exit_is_capped_at_warning() -> None:
    f = Feed(engine())
    f.login(T0, "c-a", "89.187.160.5")  # two customers log in through the exit...
    f.login(T0 + 1, "c-b", "89.187.160.6")
    for i in range(8):  # ...then sessions opened elsewhere show up there
        f.access(T0 + 10 + i, f"c-x{i}", "89.187.160.7")
    assert {a["severity"] for a in f.alerts} == {"warning"}


def test_traveller_on_foreign_isp_and_relay_users_are_quiet() -> None:
    f = Feed(engine())
    home_customers(f, 10, random.Random(3))
    for i in range(10):
        f.login(T0 + 40000 + i, f"c-{i}", f"153.144.2.{i + 1}")  # Japanese ISP
        f.access(T0 + 40000 + i + 0.5, f"c-{i}", f"172.224.127.{i + 1}")  # relay in KR
    assert f.alerts == []


def test_employee_from_hosting_abroad_warns_on_the_account() -> None:
    f = Feed(engine())
    for d in range(3):
        f.login(T0 + d * 86400, "e-1", "203.246.168.10", typ="employee")
    out = f.login(T0 + 4 * 86400, "e-1", "159.89.4.7", typ="employee")
    assert [(a["severity"], a["entity"]) for a in out] == [
        ("warning", {"kind": "account", "id": "e-1"})]
    a = out[0]
    assert "hosting network" in a["summary"] and "DE" in a["summary"]
    place = a["evidence"][0]
    assert place["observed"].startswith("DE") and place["baseline"].startswith("KR")
    assert "km from KR" in place["detail"]
    # the second use of that place is known: no repeat
    assert f.login(T0 + 4 * 86400 + 60, "e-1", "159.89.4.7", typ="employee") == []


def test_employee_vpn_and_services_internal_or_cloud_are_quiet() -> None:
    f = Feed(engine())
    f.login(T0, "e-2", "146.70.40.2", typ="employee")  # M247 VPN in FR
    f.access(T0 + 1, "svc-a", "10.20.9.3", typ="service")
    f.access(T0 + 2, "svc-b", "3.101.4.4", typ="service")  # a service in a US cloud region
    assert f.alerts == []


def test_a_services_first_place_at_home_is_its_baseline_abroad_still_warns() -> None:
    f = Feed(engine(home_country="KR"))
    # a partner's first request of the watch from a domestic broadband network: nothing it left
    assert f.access(T0, "svc-p", "121.134.3.3", typ="service") == []
    # once it has a place, a residential network abroad is new and rare for services: warns
    out = f.access(T0 + 120, "svc-p", "95.24.1.1", typ="service")
    assert [(a["severity"], a["entity"]["id"]) for a in out] == [("warning", "svc-p")]
    # a service whose very first place is a residential network abroad is still judged
    out = f.access(T0 + 180, "svc-q", "95.24.1.2", typ="service")
    assert [(a["severity"], a["entity"]["id"]) for a in out] == [("warning", "svc-q")]


def test_flagged_places_do_not_teach_the_peer_group() -> None:
    det = OverseasServer(home_country="KR")
    f = Feed(Engine(detectors=[det]))
    for i in range(40):
        f.access(T0 + i, f"c-{i}", "3.101.4.4")
    peer = det._peers["customer"]
    assert peer.counts[("hosting", True)] == 0.2  # the prior only
    assert peer.learned == 0
    home_customers(f, 10, random.Random(4))
    assert peer.learned == 10 and peer.counts[("isp", False)] == 100.0


def test_home_country_is_learned_when_not_given() -> None:
    det = OverseasServer()
    assert det.home() is None
    f = Feed(Engine(detectors=[det]))
    home_customers(f, 5, random.Random(5))
    f.login(T0 + 100, "c-j", "153.144.2.9")
    assert det.home() == "KR"
    assert OverseasServer(home_country="JP").home() == "JP"


def test_profiles_are_bounded_hashed_and_expire() -> None:
    det = OverseasServer(max_places=3, profile_ttl=3600)
    f = Feed(Engine(detectors=[det]))
    ips = ["121.134.3.3", "223.33.1.1", "153.144.2.3", "73.15.3.3", "95.24.1.1"]
    for k, ip in enumerate(ips):
        f.login(T0 + k, "c-secret", ip)
    (h, prof), = det._profiles.items()
    assert isinstance(h, int) and len(prof.places) == 3
    assert all("c-secret" not in repr(k) for k in det._profiles)
    det.expire(T0 + 10)
    assert det._memo == {} and len(det._profiles) == 1
    det.expire(T0 + 7200)
    assert det._profiles == {} and det.tracked() == {"account": 0, "subnet": 0}


def test_warmup_grows_with_learned_places() -> None:
    det = OverseasServer(grace=10)
    assert det.warmup() == 0.0
    f = Feed(Engine(detectors=[det]))
    home_customers(f, 5, random.Random(6))
    assert det.warmup() == 0.5
    home_customers(f, 20, random.Random(7))
    assert det.warmup() == 1.0


def test_logins_of_established_accounts_count_against_the_source() -> None:
    f = Feed(engine())
    home_customers(f, 6, random.Random(8))  # each has 4 uses at home
    for i in range(5):
        f.login(T0 + 900 + i, f"c-{i}", "45.77.0.9")  # Vultr US, with stolen passwords
    subnet = [a for a in f.alerts if a["entity"]["kind"] == "subnet"]
    assert [a["severity"] for a in subnet] == ["warning", "critical"]
    assert subnet[-1]["summary"].startswith("5 customer accounts used from hosting server")
    ev = {e["feature"]: e for e in subnet[-1]["evidence"]}
    assert ev["accounts_by_login"]["observed"] == 5


def test_checkpoint_holds_no_raw_customer_ids() -> None:
    from streams.snapshot import decode, encode

    f = Feed(engine())
    home_customers(f, 5, random.Random(9))
    det = f.eng.detectors["overseas_server"]
    assert det._memo  # the transient memo is in use...
    blob = encode(det)  # the checkpoint format (before sealing)
    assert b"c-1" not in blob and b"c-4" not in blob  # ...but never checkpointed
    back = decode(blob)
    assert back._memo == {} and len(back._profiles) == 5


def _login(f: Feed, t: float, acct: str, ip: str, method: str, sid: str) -> list[dict]:
    out = f.eng.process_obj({"event_id": f"l-{acct}-{t}", "ts": t, "account_id": acct,
                             "account_type": "customer", "outcome": "success", "src_ip": ip,
                             "method": method, "session_id": sid})[0]
    f.alerts += out
    return out


def _read(f: Feed, t: float, acct: str, ip: str, sid: str) -> list[dict]:
    out = f.eng.process_obj({"event_id": f"a-{acct}-{t}", "ts": t, "actor_id": acct,
                             "actor_type": "customer", "subject_id": acct, "resource": "address",
                             "src_ip": ip, "session_id": sid, "key_id": "kid-1"})[0]
    f.alerts += out
    return out


def test_privacy_vpn_exit_shared_by_established_customers_stays_quiet() -> None:
    # customers with a history at home switch on a privacy VPN (Datacamp exits abroad): their
    # devices refresh their tokens or pass MFA there, others then log in with a password, and
    # sessions opened at one exit move to another exit of the same VPN
    f = Feed(engine())
    home_customers(f, 12, random.Random(11))
    t = T0 + 3600
    for i in range(12):
        vpn = f"89.187.160.{10 + i}"
        method = ("refresh", "mfa", "password")[i % 3]
        _login(f, t + 60 * i, f"c-{i}", vpn, method, f"vpn-{i}")
        _read(f, t + 60 * i + 5, f"c-{i}", vpn, f"vpn-{i}")
        _read(f, t + 60 * i + 30, f"c-{i}", "156.146.56.9", f"vpn-{i}")  # exit moved to SG
    assert [a for a in f.alerts if a["severity"] != "info"] == []


def test_forged_tokens_from_a_server_abroad_still_page_beside_the_shared_exit() -> None:
    # the attack the detector exists for, next to the shared exit above: the same customers'
    # data read from a hosting server abroad in sessions no login of theirs issued
    f = Feed(engine())
    home_customers(f, 12, random.Random(12))
    t = T0 + 3600
    for i in range(3):
        _login(f, t + i, f"c-{i}", f"89.187.160.{10 + i}", "refresh", f"vpn-{i}")
    for i in range(3, 9):
        _read(f, t + 600 + i, f"c-{i}", "3.101.4.4", f"forged-{i}")
    pages = [(a["entity"]["id"], a["severity"]) for a in f.alerts if a["severity"] != "info"]
    assert pages == [("3.101.4.0/24", "warning"), ("3.101.4.0/24", "critical")]


def _old_token_read(f: Feed, t: float, acct: str, ip: str, tia: float) -> list[dict]:
    out = f.eng.process_obj({"event_id": f"a-{acct}-{t}", "ts": t, "actor_id": acct,
                             "actor_type": "customer", "subject_id": acct, "resource": "address",
                             "src_ip": ip, "session_id": f"old-{acct}", "key_id": "kid-1",
                             "token_issued_at": tia})[0]
    f.alerts += out
    return out


def test_vpn_customers_with_tokens_from_before_the_watch_stay_quiet_a_server_still_pages() -> None:
    """Issue 14 item 6: on the watch's first day, privacy-VPN customers' apps present tokens
    issued before the watch began (no login to vouch for them) at exits of one hosting /24
    abroad, one account per exit address: no page (before, each counted as a forged session:
    three in an hour warned). A server reading such tokens for many accounts from one address
    still pages: unverifiable sessions count from the second account one address serves."""
    f = Feed(engine())
    home_customers(f, 12, random.Random(13))
    t = T0 + 3600
    for i in range(6):
        _old_token_read(f, t + 300 * i, f"c-{i}", f"212.102.42.{10 + i}", T0 - 6 * 3600)
    assert [a for a in f.alerts if a["severity"] != "info"] == []
    for i in range(6, 12):
        _old_token_read(f, t + 3000 + 10 * i, f"c-{i}", "3.101.4.4", T0 - 6 * 3600)
    pages = [(a["entity"]["id"], a["severity"]) for a in f.alerts if a["severity"] != "info"]
    assert pages == [("3.101.4.0/24", "warning"), ("3.101.4.0/24", "critical")]


# --- h-par7: a read at a new place waits for late logins (issue 14.5 / 17.5) ---------------

SERVER = "138.199.3.73"  # a hosting network in the US (the red-team case: a login 1 s late)


def _late_case(f: Feed, login_at: float, read_at: float, method: str = "refresh") -> None:
    """c-0 (a history at home) reads from SERVER in the session its login there issued; the
    login is dated ``login_at``, the read ``read_at`` (each sent in the order given)."""
    home_customers(f, 6, random.Random(21))
    if login_at <= read_at:
        _read(f, read_at, "c-0", SERVER, "s-far")
        _login(f, login_at, "c-0", SERVER, method, "s-far")
    else:
        _login(f, login_at, "c-0", SERVER, method, "s-far")
        _read(f, read_at, "c-0", SERVER, "s-far")


def _in_order(login_at: float, read_at: float, method: str) -> Feed:
    """``_late_case``'s login and read taken in event time order (the login first), to the
    end of input: what the worker's merge of the two topics gives."""
    first = Feed(engine(login_lateness=60.0))
    home_customers(first, 6, random.Random(21))
    _login(first, login_at, "c-0", SERVER, method, "s-far")
    _read(first, read_at, "c-0", SERVER, "s-far")
    first.alerts += first.eng.flush()
    return first


def _infos(alerts: list[dict]) -> list[tuple[str, str]]:
    return [(a["entity"]["id"], a["episode"]["started"]) for a in alerts
            if a["detector"] == "overseas_server"]


def test_a_late_login_makes_the_new_place_its_own_as_if_it_came_first() -> None:
    """The login (dated 1 s before the read) arrives after the read: the place is the login's,
    as in the worker, which merges logins and reads by event time. Before h-par7 ``replay``
    took the read first (a new place: an ``info`` on the account) and the worker did not."""
    t = T0 + 3600
    late = Feed(engine(login_lateness=60.0))
    _late_case(late, t - 1, t)
    late.eng.process_obj({"event_id": "x", "ts": t + 400, "account_id": "c-5",
                          "outcome": "success", "src_ip": "121.134.9.9", "session_id": "x"})
    late.alerts += late.eng.flush()
    first = _in_order(t - 1, t, "refresh")
    assert _infos(late.alerts) == _infos(first.alerts) == []


def test_a_password_login_come_late_is_judged_as_if_it_came_first() -> None:
    """A password login at the server counts against it (stolen credentials): its ``info``
    is the login's, at the login's time, whichever of the two arrived first."""
    t = T0 + 3600
    late = Feed(engine(login_lateness=60.0))
    _late_case(late, t - 1, t, method="password")
    late.alerts += late.eng.flush()
    first = _in_order(t - 1, t, "password")
    from detectors.base import iso

    assert _infos(late.alerts) == _infos(first.alerts) == [("c-0", iso(t - 1))]


def test_a_new_place_with_no_login_is_judged_once_the_login_stream_passed_it() -> None:
    """No login for the read: its ``info`` comes once a login dated ``login_lateness`` (60 s)
    after the read is seen, stamped with the read's time (``replay``'s alert id)."""
    from detectors.base import iso

    t = T0 + 3600
    f = Feed(engine(login_lateness=60.0))
    home_customers(f, 6, random.Random(21))
    assert _read(f, t, "c-0", SERVER, "s-x") == []
    assert f.login(t + 59, "c-5", "121.134.9.9") == []  # not yet past the read's bound
    out = f.login(t + 60, "c-5", "121.134.9.9")
    assert _infos(out) == [("c-0", iso(t))]
    # a login dated before the read that comes now is too late: the verdict stands
    assert _login(f, t - 1, "c-0", SERVER, "refresh", "s-x") == []
    assert _infos(f.alerts) == [("c-0", iso(t))]


def test_with_no_login_stream_the_wait_is_bounded_as_unissued_sessions() -> None:
    """With no login at all, the engine clock judges the read at its time + login_lateness +
    login_quiet (360 s, unissued_session's bound); the end of input judges every read."""
    from detectors.base import iso

    t = T0 + 3600
    f = Feed(engine(login_lateness=60.0, login_quiet=300.0))
    home_customers(f, 6, random.Random(21))
    _read(f, t, "c-0", SERVER, "s-x")
    assert f.access(t + 359, "c-1", "121.134.9.9") == []
    assert _infos(f.access(t + 361, "c-1", "121.134.9.9")) == [("c-0", iso(t))]
    g = Feed(engine(login_lateness=60.0))
    home_customers(g, 6, random.Random(21))
    _read(g, t, "c-0", SERVER, "s-x")
    assert _infos(g.eng.flush()) == [("c-0", iso(t))]


def test_reads_waiting_for_logins_are_tracked_and_held_to_the_cap() -> None:
    from detectors.base import Finding

    f = Feed(engine(login_lateness=60.0))
    det = f.eng.detectors["overseas_server"]
    n = 60
    for i in range(n):  # first uses at home, then one read each from a server abroad
        f.access(T0 + i, f"c-{i}", "121.134.5.5")
        for k in range(3):
            f.access(T0 + i + 0.1 * (k + 1), f"c-{i}", "121.134.5.5")
    for i in range(n):
        _read(f, T0 + 1000 + i, f"c-{i}", SERVER, f"s-{i}")
    assert len(det._late) == n and det.tracked()["account"] == 2 * n
    held = det.undecided()
    assert held == {("subnet", "138.199.3.0/24"): T0 + 1000 + 60.0}
    obs = det._late[next(iter(det._late))][2]
    assert isinstance(obs, Finding) and det.decided_for(obs) == obs.ts + 60.0
    assert det.shed(20) > 0 and len(det._late) <= 20
    assert min(w[1] for w in det._late.values()) > T0 + 1000 + n - 20 - 1  # the newest stay


def test_a_read_waiting_for_logins_survives_a_checkpoint() -> None:
    from detectors.base import iso
    from detectors.geo import default_geo
    from streams.checkpoint import restore, snapshot
    from streams.snapshot import StateKeys

    keys = StateKeys(["test-state-key-0123456789"])
    t = T0 + 3600
    f = Feed(engine(login_lateness=60.0))
    home_customers(f, 6, random.Random(21))
    _read(f, t, "c-0", SERVER, "s-x")
    _read(f, t + 5, "c-1", SERVER, "s-y")
    blob = snapshot(f.eng, {}, keys=keys, context="t/0")
    back, _ = restore(blob, default_geo(), f.eng.ctx.directory, keys=keys, context="t/0")
    g = Feed(back)
    _login(g, t - 1, "c-1", SERVER, "refresh", "s-y")  # late: c-1's place is its login's
    assert _infos(g.eng.flush()) == [("c-0", iso(t))]
