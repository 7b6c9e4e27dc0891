"""session_shared: one session used by turns from a home network and from a cloud server, or
from two fixed lines."""

from __future__ import annotations

from detectors.engine import Engine, EngineConfig
from streams.snapshot import decode, encode

HOME = "183.98.1.212"  # Korea Telecom (isp)
SERVER = "65.108.124.208"  # Hetzner, FI (hosting)
SERVER2 = "139.180.128.19"  # Vultr (hosting)
RELAY = "172.224.226.1"  # Akamai's privacy relay exits (relay)
PRIVATE = "10.8.3.4"
SID = "s-00b86bd731499e4a"
T0 = 1_750_730_820.0  # 2025-06-24T02:07:00Z


def engine() -> Engine:
    return Engine(EngineConfig(detectors=("session_shared",)))


def login(n: int, t: float, ip: str = HOME, sid: str = SID) -> dict:
    return {"event_id": f"l-{n}", "ts": t, "account_id": "c-1", "account_type": "customer",
            "outcome": "success", "src_ip": ip, "session_id": sid, "method": "password"}


def read(n: int, t: float, ip: str, sid: str | None = SID, actor: str = "c-1") -> dict:
    e = {"event_id": f"r-{n}", "ts": t, "actor_id": actor, "actor_type": "customer",
         "subject_id": actor, "resource": "address", "src_ip": ip}
    if sid is not None:
        e["session_id"] = sid
    return e


def run(eng: Engine, objs: list[dict]) -> list[dict]:
    out: list[dict] = []
    for o in objs:
        alerts, rej = eng.process_obj(o)
        assert rej is None, rej
        out += alerts
    return out


def test_home_server_home_within_the_window_pages_critical_on_the_account() -> None:
    alerts = run(engine(), [login(0, T0), read(1, T0 + 60, HOME), read(2, T0 + 260, SERVER),
                            read(3, T0 + 290, HOME), read(4, T0 + 300, SERVER)])
    assert [(a["detector"], a["severity"], a["entity"]) for a in alerts] == [
        ("session_shared", "critical", {"kind": "account", "id": "c-1"})]
    a = alerts[0]
    assert a["ts"].startswith("2025-06-24T02:11:50")  # at the second switch, back home
    assert set(a["event_ids"]) == {"r-2", "r-3"}
    text = repr(a)
    assert SID not in text and HOME not in text and SERVER not in text  # digests only
    assert "Hetzner" in a["summary"] and "Korea Telecom" in a["summary"]


def test_server_home_server_pages_as_well() -> None:
    alerts = run(engine(), [read(1, T0, SERVER), read(2, T0 + 100, HOME),
                            read(3, T0 + 200, SERVER2)])
    assert [a["severity"] for a in alerts] == ["critical"]


def test_one_move_to_a_server_that_stays_there_is_quiet() -> None:
    # a user who turns a cloud desktop (or a VPN the list does not know) on and keeps it
    alerts = run(engine(), [login(0, T0), read(1, T0 + 60, HOME)]
                 + [read(2 + i, T0 + 120 + 60 * i, SERVER) for i in range(20)])
    assert alerts == []


def test_turns_farther_apart_than_the_window_are_quiet() -> None:
    alerts = run(engine(), [read(1, T0, HOME), read(2, T0 + 600, SERVER),
                            read(3, T0 + 600 + 1801, HOME)])
    assert alerts == []


def test_relays_vpns_private_addresses_and_requests_without_a_session_take_no_side() -> None:
    assert run(engine(), [read(1, T0, HOME), read(2, T0 + 60, RELAY), read(3, T0 + 120, HOME),
                          read(4, T0 + 180, RELAY), read(5, T0 + 240, PRIVATE),
                          read(6, T0 + 300, HOME)]) == []
    assert run(engine(), [read(1, T0, HOME, None), read(2, T0 + 60, SERVER, None),
                          read(3, T0 + 120, HOME, None)]) == []


def test_one_page_per_session_and_other_sessions_are_their_own() -> None:
    eng = engine()
    first = run(eng, [read(1, T0, HOME), read(2, T0 + 60, SERVER), read(3, T0 + 120, HOME),
                      read(4, T0 + 180, SERVER), read(5, T0 + 240, HOME)])
    other = run(eng, [read(6, T0 + 300, HOME, "s-other"), read(7, T0 + 320, HOME, "s-other")])
    assert len(first) == 1 and other == []


def test_state_holds_digests_not_session_ids_and_idle_sessions_expire() -> None:
    eng = engine()
    run(eng, [read(1, T0, HOME), read(2, T0 + 60, SERVER)])
    det = eng.detectors["session_shared"]
    assert det.tracked() == {"session": 1, "subnet": 0}
    assert SID.encode() not in encode(det)  # the checkpoint format (no pickle anywhere)
    det.expire(T0 + 60 + det.ttl + 1)
    assert det.tracked() == {"session": 0, "subnet": 0}


def test_a_late_request_does_not_count_as_a_turn() -> None:
    alerts = run(engine(), [read(1, T0, HOME), read(2, T0 + 300, SERVER),
                            read(3, T0 + 200, HOME)])  # older than the last: arrived late
    assert alerts == []


# ---- two fixed lines (issue 14: an infostealer's buyer on a line in the owner's country) ----
OFFICE = "1.224.1.1"  # SK Broadband (isp)
HOMELINE = "183.98.1.212"  # Korea Telecom (isp): another AS
OTHER = "61.43.1.1"  # LG DACOM (isp): a third AS
MOBILE = "223.33.1.1"  # SK Telecom mobile (a mobile-only carrier)
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


def staff(n: int, t: float, ip: str, ua: str | None = DESKTOP, sid: str = "s-staff",
          subject: str = "c-77", actor: str = "e-1") -> dict:
    e = {"event_id": f"a-{n}", "ts": t, "actor_id": actor, "actor_type": "employee",
         "subject_id": subject, "resource": "address", "src_ip": ip, "session_id": sid}
    if ua is not None:
        e["user_agent"] = ua
    return e


def cust(n: int, t: float, ip: str, ua: str | None, sid: str = SID) -> dict:
    e = read(n, t, ip, sid)
    if ua is not None:
        e["user_agent"] = ua
    return e


def interleave(make, places: list[tuple[str, str | None]], n: int, step: float = 60.0,
               per_turn: int = 2) -> list[dict]:
    """``n`` turns between the places, ``per_turn`` requests each, ``step`` seconds apart."""
    out, k = [], 0
    for turn in range(n):
        ip, ua = places[turn % len(places)]
        for _ in range(per_turn):
            out.append(make(k, T0 + step * k, ip, ua))
            k += 1
    return out


def test_an_employee_session_interleaved_between_office_and_a_home_line_warns() -> None:
    # the owner at the office, the thief on a line of another ISP, the same browser copied
    alerts = run(engine(), interleave(staff, [(OFFICE, DESKTOP), (HOMELINE, DESKTOP)], 4))
    assert [(a["severity"], a["entity"]) for a in alerts] == [
        ("warning", {"kind": "account", "id": "e-1"})]
    a = alerts[0]
    assert "SK Broadband" in a["summary"] and "Korea Telecom" in a["summary"]
    assert "staff session" in a["summary"]
    text = repr(a)
    assert OFFICE not in text and HOMELINE not in text and "s-staff" not in text
    changes = {e["feature"]: e["observed"] for e in a["evidence"]}
    assert changes["line_changes"] == 3 and changes["other_line_reads"] == 3


def test_an_employee_interleave_that_persists_is_critical() -> None:
    alerts = run(engine(), interleave(staff, [(OFFICE, DESKTOP), (HOMELINE, DESKTOP)], 7))
    assert [a["severity"] for a in alerts] == ["warning", "critical"]


def test_an_employee_session_from_two_devices_at_two_lines_is_critical_at_once() -> None:
    alerts = run(engine(), interleave(staff, [(OFFICE, DESKTOP), (HOMELINE, LINUX)], 4))
    assert [a["severity"] for a in alerts] == ["critical"]
    ua = next(e for e in alerts[0]["evidence"] if e["feature"] == "user_agents")
    assert ua["observed"] == "two devices"


def test_one_move_from_office_to_home_and_a_move_back_are_quiet() -> None:
    assert run(engine(), interleave(staff, [(OFFICE, DESKTOP), (HOMELINE, DESKTOP)], 2,
                                     per_turn=10)) == []
    # a lunch at a café and back: two changes
    assert run(engine(), interleave(staff, [(OFFICE, DESKTOP), (HOMELINE, DESKTOP),
                                            (OFFICE, DESKTOP)], 3, per_turn=5)) == []


def test_turns_spread_over_more_than_the_window_are_quiet() -> None:
    # office in the morning, home in the evening, office the next morning ...: hours apart
    assert run(engine(), interleave(staff, [(OFFICE, DESKTOP), (HOMELINE, DESKTOP)], 5,
                                    step=1500.0, per_turn=1)) == []


def test_a_phone_alternating_wifi_and_mobile_data_is_quiet() -> None:
    # a mobile-only carrier is no fixed line, whoever holds the phone
    assert run(engine(), interleave(lambda n, t, ip, ua: cust(n, t, ip, ua),
                                    [(HOMELINE, PHONE), (MOBILE, PHONE)], 12)) == []
    assert run(engine(), interleave(staff, [(OFFICE, PHONE), (MOBILE, PHONE)], 12)) == []
    # a carrier whose one AS serves homes and phones (KT) reads as a second fixed line: one
    # phone's user agent at both ends is still no evidence, for a customer or staff
    assert run(engine(), interleave(lambda n, t, ip, ua: cust(n, t, ip, ua),
                                    [(OFFICE, PHONE), (HOMELINE, PHONE)], 12)) == []
    assert run(engine(), interleave(staff, [(OFFICE, PHONE), (HOMELINE, PHONE)], 12)) == []


def test_dual_stack_of_one_line_is_one_place() -> None:
    v6 = "2001:e60::1"  # Korea Telecom over IPv6: the same AS as HOMELINE
    assert run(engine(), interleave(staff, [(HOMELINE, DESKTOP), (v6, DESKTOP)], 12)) == []


def test_a_customer_session_from_two_devices_at_two_lines_warns_then_critical() -> None:
    alerts = run(engine(), interleave(lambda n, t, ip, ua: cust(n, t, ip, ua),
                                      [(OFFICE, PHONE), (HOMELINE, DESKTOP)], 7))
    assert [(a["severity"], a["entity"]["id"]) for a in alerts] == [
        ("warning", "c-1"), ("critical", "c-1")]
    assert "customer session" in alerts[0]["summary"]


def test_a_customer_desktop_at_two_lines_warns_only_when_it_persists() -> None:
    c = lambda n, t, ip, ua: cust(n, t, ip, ua)  # noqa: E731
    assert run(engine(), interleave(c, [(OFFICE, DESKTOP), (HOMELINE, DESKTOP)], 6)) == []
    alerts = run(engine(), interleave(c, [(OFFICE, DESKTOP), (HOMELINE, DESKTOP)], 7))
    assert [a["severity"] for a in alerts] == ["warning"]
    # no user agent: the device is unknown, a customer's is most often a phone
    assert run(engine(), interleave(c, [(OFFICE, None), (HOMELINE, None)], 12)) == []


def test_one_user_agent_seen_at_both_lines_is_not_two_devices() -> None:
    # an app and its web view on one phone: both user agents at both lines
    c = lambda n, t, ip, ua: cust(n, t, ip, ua)  # noqa: E731
    assert run(engine(), interleave(c, [(OFFICE, PHONE), (HOMELINE, DESKTOP),
                                         (OFFICE, DESKTOP), (HOMELINE, PHONE)], 12)) == []


def test_a_rotating_thief_on_several_lines_against_the_owner_on_one() -> None:
    alerts = run(engine(), interleave(staff, [(OFFICE, DESKTOP), (HOMELINE, DESKTOP),
                                              (OFFICE, DESKTOP), (OTHER, DESKTOP)], 4))
    assert [a["severity"] for a in alerts] == ["warning"]
    b = next(e for e in alerts[0]["evidence"] if e["feature"] == "line_b")
    assert "2 other line(s)" in b["detail"]


def test_two_egresses_of_the_company_are_quiet_for_staff() -> None:
    # an office with two uplinks: three employees use each within a day, then one session
    # flaps between them (per-connection balancing)
    eng = engine()
    warm = [staff(100 + i, T0 - 3600 + i, ip, actor=f"e-{i % 3 + 2}", sid=f"s-{i}")
            for i, ip in enumerate([OFFICE, HOMELINE] * 3)]
    assert run(eng, warm) == []
    assert run(eng, interleave(staff, [(OFFICE, DESKTOP), (HOMELINE, DESKTOP)], 12)) == []
    assert eng.detectors["session_shared"].tracked()["subnet"] == 2


def test_the_owner_at_the_office_and_a_thief_on_a_home_line_still_pages() -> None:
    eng = engine()
    warm = [staff(100 + i, T0 - 3600 + i, OFFICE, actor=f"e-{i + 2}", sid=f"s-{i}")
            for i in range(3)]
    run(eng, warm)
    alerts = run(eng, interleave(staff, [(OFFICE, DESKTOP), (HOMELINE, DESKTOP)], 4))
    assert [a["severity"] for a in alerts] == ["warning"]


def test_the_hosting_rule_is_unchanged_beside_fixed_lines() -> None:
    # home line, server, home line: critical at the second change of side, as before
    alerts = run(engine(), [staff(1, T0, HOMELINE), staff(2, T0 + 60, SERVER),
                            staff(3, T0 + 120, HOMELINE)])
    assert [(a["severity"], a["evidence"][0]["feature"]) for a in alerts] == [
        ("critical", "home_side")]


def test_state_stays_small_and_round_trips_through_the_checkpoint_codec() -> None:
    eng = engine()
    run(eng, interleave(staff, [(OFFICE, DESKTOP), (HOMELINE, LINUX)], 4))
    det = eng.detectors["session_shared"]
    (s,) = det._sessions.values()
    assert s.two is not None and s.two.level == 2
    again = decode(encode(det))
    assert again._sessions == det._sessions and again._egress == det._egress
    assert len(encode(s)) < 1024


def test_staff_same_isp_another_subnet_is_another_line_but_not_for_customers() -> None:
    # the owner on a Korea Telecom line, the thief on another Korea Telecom line
    kt2 = "121.134.3.3"
    alerts = run(engine(), interleave(staff, [(HOMELINE, DESKTOP), (kt2, DESKTOP)], 4))
    assert [a["severity"] for a in alerts] == ["warning"]
    c = lambda n, t, ip, ua: cust(n, t, ip, ua)  # noqa: E731
    assert run(engine(), interleave(c, [(HOMELINE, PHONE), (kt2, DESKTOP)], 12)) == []
    # staff on one line over IPv4 and IPv6 by turns: one place
    v6 = "2001:e60::1"
    assert run(engine(), interleave(staff, [(HOMELINE, DESKTOP), (v6, DESKTOP)], 12)) == []


def test_staff_without_a_user_agent_still_warn() -> None:
    alerts = run(engine(), interleave(staff, [(OFFICE, None), (HOMELINE, None)], 4))
    assert [a["severity"] for a in alerts] == ["warning"]


def test_a_mobile_carrier_line_counts_with_two_devices_only() -> None:
    # the thief on a mobile proxy (or their phone), the owner's laptop at the office
    alerts = run(engine(), interleave(staff, [(OFFICE, DESKTOP), (MOBILE, PHONE)], 4))
    assert [a["severity"] for a in alerts] == ["critical"]
    c = lambda n, t, ip, ua: cust(n, t, ip, ua)  # noqa: E731
    alerts = run(engine(), interleave(c, [(HOMELINE, DESKTOP), (MOBILE, LINUX)], 4))
    assert [a["severity"] for a in alerts] == ["warning"]
    # one laptop between the office's Wi-Fi and its phone's hotspot: one device, quiet
    assert run(engine(), interleave(staff, [(OFFICE, DESKTOP), (MOBILE, DESKTOP)], 12)) == []
    # a carrier pool's addresses in several subnets: one line
    pool = ["223.33.1.1", "223.33.9.1", "223.33.77.1"]
    assert run(engine(), [staff(i, T0 + 60 * i, pool[i % 3]) for i in range(20)]) == []


def test_memory_per_tracked_session_is_small() -> None:
    import tracemalloc

    eng = engine()
    events = []
    for i in range(300):  # 300 staff sessions, each at two lines (a move and back: no page)
        sid, actor = f"s-{i:04d}-0123456789abcdef", f"e-{i}"
        for k in range(3):
            ip = OFFICE if k % 2 == 0 else f"183.98.{i % 200}.{k + 2}"
            ua = DESKTOP if k % 2 == 0 else LINUX
            events.append(staff(10 * i + k, T0 + i + 60 * k, ip, ua, sid=sid, actor=actor))
    events.sort(key=lambda e: e["ts"])
    tracemalloc.start()
    run(eng, events)
    snap = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, "*detectors/session_shared.py")])
    tracemalloc.stop()
    used = sum(st.size for st in snap.statistics("filename"))
    det = eng.detectors["session_shared"]
    assert all(s.two is not None for s in det._sessions.values())
    assert len(det._sessions) == 300
    # bytes of detector state per session with two lines (the subnets' state counted in too)
    assert used / len(det._sessions) < 1024
