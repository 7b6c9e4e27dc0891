"""session_shared: one session used by turns from a home network and from a cloud server."""

from __future__ import annotations

import pickle

from detectors.engine import Engine, EngineConfig

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
    assert det.tracked() == {"session": 1}
    assert SID.encode() not in pickle.dumps(det)
    det.expire(T0 + 60 + det.ttl + 1)
    assert det.tracked() == {"session": 0}


def test_a_late_request_does_not_count_as_a_turn() -> None:
    alerts = run(engine(), [read(1, T0, HOME), read(2, T0 + 300, SERVER),
                            read(3, T0 + 200, HOME)])  # older than the last: arrived late
    assert alerts == []
