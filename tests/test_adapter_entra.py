"""The Entra ID adapter on Microsoft's documented sign-ins (tests/data/adapters/entra/,
PROVENANCE.md there): Graph signIn objects and Azure Monitor (Event Hubs) records, wrappers,
rejections, and a password spray in Entra terms raising credential_stuffing through the replay
path."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from detectors.adapters import entra
from tests.adapters_support import (
    adapt_ok,
    assert_contract,
    fuzz_fields,
    hostile_params,
    records,
    reject_of,
    run_engine,
    sample,
    sample_obj,
)

FMT = "entra"


def _signin(**changes: Any) -> dict[str, Any]:
    r = sample_obj(FMT, "graph_signin_get_response.repaired.json")["value"][0]
    r.update(changes)
    return r


def _failed(**changes: Any) -> dict[str, Any]:
    return _signin(status={"errorCode": 50126, "failureReason": "Error validating credentials "
                           "due to invalid username or password."}, **changes)


def _monitor(**changes: Any) -> dict[str, Any]:
    r = sample_obj(FMT, "azure_monitor_signin_record.json")
    r["properties"].update(changes)
    return r


# ---- positives -----------------------------------------------------------------------------
def test_documented_graph_signin_is_a_successful_login() -> None:
    [rec] = records(entra, sample(FMT, "graph_signin_get_response.repaired.json"))
    [ev] = adapt_ok(entra, rec)
    assert ev == {
        "event_id": "entra:66ea54eb-6301-4ee5-be62-ff5a759b0100",
        "ts": "2020-03-13T19:15:41.619Z",
        "account_id": "testaccount1@contoso.com",
        "account_type": "employee",
        "outcome": "success",
        "src_ip": "131.107.159.37",
        "session_id": "entra:66ea54eb-6301-4ee5-be62-ff5a759b0100#login",
    }


def test_a_nonzero_error_code_is_a_failure_without_a_session() -> None:
    [ev] = adapt_ok(entra, _failed())
    assert ev["outcome"] == "failure" and "session_id" not in ev


def test_session_device_agent_and_method_when_the_sign_in_has_them() -> None:
    [ev] = adapt_ok(entra, _signin(sessionId="sid-7", uniqueTokenIdentifier="uti-1",
                                   userAgent="Mozilla/5.0", deviceDetail={"deviceId": "dev-1"},
                                   authenticationRequirement="multiFactorAuthentication"))
    assert (ev["session_id"], ev["user_agent"], ev["device_id"], ev["method"]) == (
        "sid-7", "Mozilla/5.0", "dev-1", "mfa")
    [ev] = adapt_ok(entra, _signin(sessionId="", uniqueTokenIdentifier="uti-1",
                                   incomingTokenType="refreshToken"))
    assert (ev["session_id"], ev["method"]) == ("uti-1", "refresh")
    [ev] = adapt_ok(entra, _signin(authenticationDetails=[{"authenticationMethod": "Password"}]))
    assert ev["method"] == "password"


def test_service_principal_sign_ins_are_services() -> None:
    r = _signin(userPrincipalName=None, userId=None, servicePrincipalId="sp-1",
                signInEventTypes=["servicePrincipal"])
    [ev] = adapt_ok(entra, r)
    assert (ev["account_id"], ev["account_type"]) == ("sp-1", "service")


def test_azure_monitor_record_reads_its_properties() -> None:
    [ev] = adapt_ok(entra, _monitor(ipAddress="203.0.113.8", userPrincipalName="tim@contoso.com",
                                    userAgent="Mozilla/5.0 (Windows NT 10.0)"))
    assert ev == {
        "event_id": "entra:0231f922-93fa-4005-bb11-b344eca03c01",
        "ts": "2019-03-12T16:02:15.552Z",
        "account_id": "tim@contoso.com",
        "account_type": "employee",
        "outcome": "failure",  # 50140, the "keep me signed in" interrupt
        "src_ip": "203.0.113.8",
        "user_agent": "Mozilla/5.0 (Windows NT 10.0)",
        "device_id": "8bfcb982-6856-4402-924c-ada2486321cc",
        "method": "mfa",
    }


def test_event_hubs_records_wrapper_is_framed_and_adapted() -> None:
    one = _monitor(ipAddress="203.0.113.8", userPrincipalName="tim@contoso.com")
    two = copy.deepcopy(one)
    two["properties"].update(id="second", status={"errorCode": 0})
    body = orjson.dumps({"records": [one, two]})
    recs = records(entra, body + b"\n" + body)
    assert len(recs) == 4
    assert [e["outcome"] for r in recs[:2] for e in adapt_ok(entra, r)] == ["failure", "success"]
    assert [e["event_id"] for e in adapt_ok(entra, body)] == [
        "entra:0231f922-93fa-4005-bb11-b344eca03c01", "entra:second"]


def test_result_type_stands_in_for_a_missing_status() -> None:
    r = _monitor(ipAddress="203.0.113.8")
    del r["properties"]["status"]
    r["resultType"] = "0"
    assert adapt_ok(entra, r)[0]["outcome"] == "success"


# ---- rejections ----------------------------------------------------------------------------
def test_documented_records_that_cannot_be_used() -> None:
    # the schema page's record keeps its placeholders: "<IP ADDRESS>" is not an address
    r = reject_of(entra, sample(FMT, "azure_monitor_signin_record.json"))
    assert r.reason == "bad_value" and "ipAddress" in r.detail
    # the Graph page's example response has a trailing comma: not JSON
    assert reject_of(entra, sample(FMT, "graph_signin_get_response.json")).reason == "invalid_json"
    recs = records(entra, sample(FMT, "graph_signin_get_response.json"))
    assert len(recs) > 50  # read line by line, each line a counted reject
    assert {reject_of(entra, x).reason for x in recs} == {"invalid_json"}


@pytest.mark.parametrize("changes,reason", [
    ({"id": None}, "missing_field"),
    ({"id": 5}, None),
    ({"status": {"errorCode": "0"}}, "unknown_outcome"),
    ({"status": None}, "unknown_outcome"),
    ({"status": "ok"}, "unknown_outcome"),
    ({"createdDateTime": "13/03/2020"}, "bad_value"),
    ({"userPrincipalName": None, "userId": None}, "missing_field"),
    ({"userPrincipalName": {"upn": 1}}, "wrong_type"),
    ({"userPrincipalName": "u" * 1000}, "too_large"),
    ({"ipAddress": ""}, "missing_field"),
    ({"ipAddress": "1.2.3"}, "bad_value"),
    ({"sessionId": "s" * 300}, "too_large"),
])
def test_unusable_sign_ins(changes, reason) -> None:
    if reason is None:
        adapt_ok(entra, _signin(**changes))
    else:
        assert reject_of(entra, _signin(**changes)).reason == reason


def test_other_diagnostic_categories_are_unsupported() -> None:
    r = _monitor(ipAddress="203.0.113.8")
    r["category"] = "AuditLogs"
    assert reject_of(entra, r).reason == "unsupported_event"


@hostile_params()
def test_hostile_input_is_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    r = reject_of(entra, raw)
    assert not reason or r.reason == reason


@pytest.mark.parametrize("build", [_signin, lambda: _monitor(ipAddress="203.0.113.8")],
                         ids=["graph", "monitor"])
def test_any_field_of_any_type_is_events_or_a_reject(build) -> None:
    assert fuzz_fields(entra, build()) > 100


def test_every_usable_sample_decodes_as_contract_v1() -> None:
    assert_contract([ev for r in (_signin(), _failed(), _monitor(ipAddress="203.0.113.8"))
                     for ev in adapt_ok(entra, r)])


# ---- through the engine --------------------------------------------------------------------
def test_failed_sign_ins_on_many_accounts_from_one_address_raise_credential_stuffing() -> None:
    evs = []
    for i in range(12):
        evs += adapt_ok(entra, _failed(id=f"spray-{i}", userPrincipalName=f"user{i}@contoso.com",
                                       createdDateTime=f"2020-03-13T19:15:{10 + i * 3:02d}Z",
                                       ipAddress="45.33.2.10"))
    alerts = run_engine(evs, ("credential_stuffing",))
    assert {(a["detector"], a["entity"]["kind"], a["entity"]["id"]) for a in alerts} == {
        ("credential_stuffing", "src_ip", "45.33.2.10")}


def test_a_result_type_of_thousands_of_digits_is_no_outcome_not_a_traceback() -> None:
    r = _monitor(ipAddress="203.0.113.8")
    del r["properties"]["status"]
    r["resultType"] = "9" * 5000
    assert reject_of(entra, r).reason == "unknown_outcome"
