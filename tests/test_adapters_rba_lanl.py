"""The rba and lanl adapters: the published rows of each data set, their events, skips and
rejects with reasons, and the real files under ../shared/data through the engine."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from detectors import adapters
from detectors import events as E
from detectors.adapters import lanl, rba
from detectors.engine import Engine, EngineConfig

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RBA_FIXTURE = SHARED / "rba_schema_fixture" / "rba-dataset_first18rows.csv"
LANL_REDTEAM = SHARED / "lanl_redteam" / "redteam.txt"

# The RBA data set's header and rows 0 and 2, verbatim (rba_schema_fixture, its first rows)
RBA_HEADER = (b"index,Login Timestamp,User ID,Round-Trip Time [ms],IP Address,Country,Region,City,"
              b"ASN,User Agent String,Browser Name and Version,OS Name and Version,Device Type,"
              b"Login Successful,Is Attack IP,Is Account Takeover")
RBA_FAILED = (b"0,2020-02-03 12:43:30.772,-4324475583306591935,,10.0.65.171,NO,-,-,29695,"
              b"Mozilla/5.0  (iPhone; CPU iPhone OS 13_4 like Mac OS X) Gecko/20150101 "
              b"Firefox/20.0.0.1618 (Chrome variation/248113,Firefox 20.0.0.1618,iOS 13.4,mobile,"
              b"False,False,False")
RBA_OK = (b'2,2020-02-03 12:43:55.873,-3284137479262433373,,81.167.144.58,NO,Vestland,Urangsvag,'
          b'29695,"Mozilla/5.0  (iPad; CPU OS 7_1 like Mac OS X) AppleWebKit/533.1 (KHTML, like '
          b'Gecko Version/4.0 Mobile Safari/533.1 variation/277457",Android 2.3.3.2672,iOS 7.1,'
          b'mobile,True,False,False')
# LANL auth.txt's published example lines (the data set's page) and redteam.txt's first row
LANL_LOGON = b"1,C1020$@DOM1,SYSTEM@C1020,C1020,C1020,Negotiate,Service,LogOn,Success"
LANL_ANON = b"1,ANONYMOUS LOGON@C586,ANONYMOUS LOGON@C586,C1250,C586,NTLM,Network,LogOn,Success"
LANL_AUTHMAP = b"1,C101$@DOM1,C101$@DOM1,C988,C988,?,?,AuthMap,Success"
LANL_USER_FAIL = b"2,U22@DOM1,U22@DOM1,C1708,C528,Kerberos,Network,LogOn,Fail"
LANL_REDTEAM_ROW = b"150885,U620@DOM1,C17693,C1003"


def reason(mod: object, record: bytes) -> tuple[str, str]:
    with pytest.raises(adapters.Reject) as err:
        mod.adapt_at(record, 1)  # type: ignore[attr-defined]
    return type(err.value).__name__, err.value.reason


def decoded(ev: dict) -> E.Event:
    out = E.decode_obj(ev, None, E.DEFAULT_POLICY, None)
    assert not isinstance(out, E.Rejection), out
    return out


# --- rba ------------------------------------------------------------------------------------


def test_an_rba_row_is_a_customer_login_with_the_data_sets_time_address_and_outcome() -> None:
    ok, = rba.adapt_at(RBA_OK, 3)
    assert (ok["event_id"], ok["ts"], ok["account_id"], ok["account_type"], ok["outcome"],
            ok["src_ip"], ok["session_id"]) == (
        "rba-2", "2020-02-03T12:43:55.873Z", "-3284137479262433373", "customer", "success",
        "81.167.144.58", "rba-2")
    assert (ok["country"], ok["asn"], ok["rba_attack_ip"], ok["rba_takeover"]) == (
        "NO", 29695, False, False)
    assert ok["user_agent"].startswith("Mozilla/5.0  (iPad") and "KHTML, like" in ok["user_agent"]
    bad, = rba.adapt_at(RBA_FAILED, 1)
    assert bad["outcome"] == "failure" and "session_id" not in bad
    ev = decoded(ok)
    assert ev.kind == E.LOGIN and ev.account_id == "-3284137479262433373"


def test_rba_header_is_skipped_and_broken_rows_are_rejected_with_a_reason() -> None:
    assert reason(rba, RBA_HEADER) == ("Skip", "header")
    assert reason(rba, RBA_HEADER.split(b",", 1)[1]) == ("Skip", "header")  # no index column
    assert reason(rba, b"1,2,3") == ("Reject", "bad_csv")
    assert reason(rba, RBA_OK.replace(b"2020-02-03 12:43:55.873", b"yesterday")) == (
        "Reject", "bad_time")
    assert reason(rba, RBA_OK.replace(b"81.167.144.58", b"")) == ("Reject", "missing_field")


def test_rba_rows_without_an_index_get_ids_from_the_row_and_its_place() -> None:
    row = RBA_OK.split(b",", 1)[1]
    a, = rba.adapt_at(row, 5)
    b, = rba.adapt_at(row, 5)
    c, = rba.adapt_at(row, 6)
    assert a["event_id"] == b["event_id"] != c["event_id"] and a["event_id"].startswith("rba-")


def test_rba_labels_ride_along_and_an_offset_time_is_read_as_utc() -> None:
    row = RBA_OK.replace(b"True,False,False", b"True,True,True").replace(
        b"2020-02-03 12:43:55.873", b"2020-02-03 21:43:55.873+09:00")
    ev, = rba.adapt_at(row, 1)
    assert ev["rba_attack_ip"] is True and ev["rba_takeover"] is True
    assert ev["ts"] == "2020-02-03T12:43:55.873Z"
    ms, = rba.adapt_at(RBA_OK.replace(b"2020-02-03 12:43:55.873", b"1580733835873"), 1)
    assert ms["ts"] == "2020-02-03T12:43:55.873Z"


@pytest.mark.skipif(not RBA_FIXTURE.exists(), reason="../shared/data/rba_schema_fixture is absent")
def test_the_published_rba_rows_all_become_valid_logins() -> None:
    out = list(adapters.records(adapters.load("rba"), io.BytesIO(RBA_FIXTURE.read_bytes())))
    skips = [o.reject.reason for o in out if o.reject is not None]
    events = [e for o in out for e in o.events]
    assert skips == ["header"] and len(events) == len(out) - 1 >= 18
    assert len({e["event_id"] for e in events}) == len(events)
    engine = Engine(EngineConfig())
    for e in events:
        assert engine.process(decoded(e))[1] is None
    assert engine.stats[E.LOGIN] == len(events)


# --- lanl -----------------------------------------------------------------------------------


def test_a_lanl_logon_is_a_login_from_the_source_computers_stand_in_address() -> None:
    ev, = lanl.adapt_at(LANL_USER_FAIL, 7)
    assert (ev["ts"], ev["account_id"], ev["account_type"], ev["outcome"], ev["src_host"],
            ev["dst_host"], ev["auth_type"], ev["logon_type"]) == (
        "2015-01-01T00:00:02Z", "U22@DOM1", "employee", "failure", "C1708", "C528", "Kerberos",
        "Network")
    assert ev["src_ip"].startswith("fd") and "session_id" not in ev
    svc, = lanl.adapt_at(LANL_LOGON, 1)
    assert svc["account_type"] == "service" and svc["session_id"] == svc["event_id"]
    assert svc["src_ip"] == lanl.adapt_at(LANL_AUTHMAP.replace(b"AuthMap", b"LogOn").replace(
        b"C988,C988", b"C1020,C988"), 2)[0]["src_ip"]  # one computer, one address
    decoded(ev)


def test_lanl_non_logons_and_system_accounts_are_skipped_and_bad_lines_rejected() -> None:
    assert reason(lanl, LANL_AUTHMAP) == ("Skip", "not_a_logon")
    assert reason(lanl, LANL_ANON) == ("Skip", "system_account")
    assert reason(lanl, b"1,U1@DOM1,C1") == ("Reject", "bad_record")
    assert reason(lanl, b"x,U1@DOM1,C1,C2") == ("Reject", "bad_time")
    assert reason(lanl, LANL_USER_FAIL.replace(b"Fail", b"Maybe")) == ("Reject", "bad_record")


def test_lanl_time_zero_is_the_start_of_the_given_year_and_ids_follow_the_position() -> None:
    ad = adapters.load("lanl", year=2020)
    ev, = ad.events(LANL_REDTEAM_ROW, 1)
    assert ev["ts"] == "2020-01-02T17:54:45Z" and ev["lanl_redteam"] is True
    assert ad.events(LANL_REDTEAM_ROW, 1)[0]["event_id"] == ev["event_id"]
    assert ad.events(LANL_REDTEAM_ROW, 2)[0]["event_id"] != ev["event_id"]
    with pytest.raises(ValueError, match="--year"):
        adapters.load("lanl", year=12)


@pytest.mark.skipif(not LANL_REDTEAM.exists(), reason="../shared/data/lanl_redteam is absent")
def test_lanls_red_team_file_becomes_one_valid_login_per_row() -> None:
    data = LANL_REDTEAM.read_bytes()
    out = list(adapters.records(adapters.load("lanl"), io.BytesIO(data)))
    rows = len(data.splitlines())
    assert all(o.reject is None for o in out) and len(out) == rows == 749
    events = [e for o in out for e in o.events]
    assert len({e["event_id"] for e in events}) == rows
    engine = Engine(EngineConfig())
    for e in events:
        assert engine.process(decoded(e))[1] is None
    assert engine.stats[E.LOGIN] == rows
