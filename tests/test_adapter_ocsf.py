"""The OCSF adapter on the OCSF project's examples (tests/data/adapters/ocsf/, PROVENANCE.md
there): Authentication, API Activity, Web Resources Activity and Account Change, rejections, and
a credential stuffing run in OCSF terms raising credential_stuffing through the replay path."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from detectors.adapters import ocsf
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

FMT = "ocsf"


def _auth() -> dict[str, Any]:
    return sample_obj(FMT, "authentication_cloudtrail.json")


def _api(**changes: Any) -> dict[str, Any]:
    """The documented CloudTrail-to-OCSF API Activity, given the resource it read and a
    session (the example has neither)."""
    r = sample_obj(FMT, "api_activity_cloudtrail.json")
    r["api"]["operation"] = "GetObject"
    r["resources"] = [{"uid": "arn:aws:s3:::customer-data/c-1/address.json",
                       "type": "AWS::S3::Object"}]
    r["actor"]["session"] = {"uid": "sess-1", "created_time": 1695334900000}
    r.update(changes)
    return r


def _web(**changes: Any) -> dict[str, Any]:
    """A Web Resources Activity (6001), built on the documented API Activity's actor,
    endpoint and metadata with the class's own attributes (``web_resources``)."""
    r = sample_obj(FMT, "api_activity_cloudtrail.json")
    for k in ("api", "resources"):
        r.pop(k, None)
    r.update(class_uid=6001, class_name="Web Resources Activity", activity_id=7,
             type_uid=600107, status_id=1,
             web_resources=[{"uid": "c-000113", "type": "customer_profile",
                             "url_string": "https://shop.example/customers/c-000113"}],
             http_request={"url": {"path": "/customers/c-000113"},
                           "user_agent": "curl/8.4.0"})
    r.update(changes)
    return r


# ---- positives -----------------------------------------------------------------------------
def test_documented_authentication_is_a_successful_mfa_login() -> None:
    [ev] = adapt_ok(ocsf, _auth())
    assert ev == {
        "event_id": "ocsf:fed06f42-cb12-4764-8c69-example",
        "ts": "2023-11-10T16:24:34.000Z",  # time: 1699633474000 ms
        "account_id": "arn:aws:iam::111122223333:user/anaya",
        "account_type": "employee",
        "outcome": "success",
        "src_ip": "192.0.2.0",
        "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_6) AppleWebKit/537.36 "
                      "(KHTML, like Gecko) Chrome/67.0.3396.99 Safari/537.36",
        "session_id": "ocsf:fed06f42-cb12-4764-8c69-example#login",
        "method": "mfa",
    }


def test_a_failed_logon_with_a_session_and_sso() -> None:
    r = _auth()
    r.update(status_id=2, is_mfa=False, auth_protocol_id=5, session={"uid": "okta-sess-9"})
    [ev] = adapt_ok(ocsf, r)
    assert ev["outcome"] == "failure" and ev["method"] == "sso"
    assert ev["session_id"] == "okta-sess-9"
    r["status_id"] = 1
    assert adapt_ok(ocsf, r)[0]["session_id"] == "okta-sess-9"


def test_windows_logon_names_the_account_by_uid_and_a_system_user_is_a_service() -> None:
    r = sample_obj(FMT, "authentication_windows_4624.json")
    r["src_endpoint"]["ip"] = "10.1.2.3"
    r["user"]["type_id"] = 3
    [ev] = adapt_ok(ocsf, r)
    assert ev["account_id"] == "NT AUTHORITY\\SYSTEM"
    assert ev["account_type"] == "service"
    assert ev["session_id"] == "0x3E7"  # actor.session.uid
    r = sample_obj(FMT, "authentication_windows_4625.json")
    r["src_endpoint"]["ip"] = "203.0.113.7"
    [ev] = adapt_ok(ocsf, r)
    # the failed logon's uid is the NULL SID placeholder: the name identifies the account
    assert ev["account_id"] == "Administrator" and ev["outcome"] == "failure"


def test_api_activity_is_data_access_with_key_session_and_issue_time() -> None:
    [ev] = adapt_ok(ocsf, _api())
    assert ev == {
        "event_id": "ocsf:71c88be9-ea5c-43c7-8c82-example",
        "ts": "2023-09-21T22:22:52.000Z",
        "actor_id": "arn:aws:iam::1111111111111:user/Level6",
        "actor_type": "employee",
        "subject_id": "arn:aws:s3:::customer-data/c-1/address.json",
        "resource": "AWS::S3::Object",
        "action": "read",  # activity_id 2
        "src_ip": "205.8.181.128",
        "user_agent": "Boto3/1.15.2 Python/3.8.2 Linux/5.6.3-arch1-1 Botocore/1.18.2",
        "session_id": "sess-1",
        "token_issued_at": "2023-09-21T22:21:40.000Z",
        "key_id": "AKIA3Z2XBVEXAMPLE",
    }


@pytest.mark.parametrize("activity,action", [(1, "update"), (3, "update"), (4, "delete"),
                                             (99, None)])
def test_api_activity_actions(activity, action) -> None:
    [ev] = adapt_ok(ocsf, _api(activity_id=activity))
    assert ev.get("action") == action


def test_web_resources_activity_is_data_access() -> None:
    [ev] = adapt_ok(ocsf, _web())
    assert ev["subject_id"] == "c-000113" and ev["resource"] == "customer_profile"
    assert ev["action"] == "export"  # activity 7 Export
    assert ev["user_agent"] == "curl/8.4.0"
    r = _web(activity_id=5, web_resources=[{"name": "search results"}])
    [ev] = adapt_ok(ocsf, r)
    assert ev["subject_id"] == "search results" and ev["action"] == "search"
    [ev] = adapt_ok(ocsf, _web(web_resources=None))
    assert ev["subject_id"] == "/customers/c-000113" and ev["resource"] == "web"


@pytest.mark.parametrize("activity,change", [(5, "principal_suspended"), (9, "principal_suspended"),
                                             (6, "principal_terminated"),
                                             (2, "principal_reinstated")])
def test_account_change_disable_lock_delete_enable(activity, change) -> None:
    r = sample_obj(FMT, "account_change_cloudtrail.json")
    r["activity_id"] = activity
    [ev] = adapt_ok(ocsf, r)
    assert ev == {"event_id": "ocsf:7dd15a89-ae0f-4340-8e6c-example",
                  "ts": "2023-03-17T17:07:59.000Z", "change": change,
                  "principal_id": "AROA2W7SOKHEXAMPLE:Admin-user"}


# ---- rejections ----------------------------------------------------------------------------
@pytest.mark.parametrize("name,reason,fragment", [
    ("account_change_cloudtrail.json", "unsupported_event", "activity_id 1"),
    ("api_activity_cloudtrail.json", "missing_field", "resources"),
    ("api_activity_eks.json", "bad_value", "time"),  # microseconds where OCSF says ms
    ("authentication_windows_4624.json", "missing_field", "src_endpoint.ip"),
    ("authentication_windows_4625.json", "missing_field", "src_endpoint.ip"),
])
def test_documented_examples_that_cannot_be_used(name, reason, fragment) -> None:
    r = reject_of(ocsf, sample_obj(FMT, name))
    assert r.reason == reason and fragment in r.detail


def _set(r: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    r = copy.deepcopy(r)
    *parents, last = path.split(".")
    node = r
    for p in parents:
        node = node[p]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return r


@pytest.mark.parametrize("path,value,reason", [
    ("class_uid", KeyError, "missing_field"),
    ("class_uid", "3002", "wrong_type"),
    ("class_uid", 4001, "unsupported_event"),
    ("activity_id", 2, "unsupported_event"),  # Logoff
    ("activity_id", "1", "wrong_type"),
    ("status_id", 0, "unknown_outcome"),
    ("status_id", KeyError, "unknown_outcome"),
    ("time", "1699633474000", "bad_value"),
    ("time", 10**18, "bad_value"),  # beyond year 9999
    ("time", -5, "bad_value"),
    ("user", KeyError, "missing_field"),
    ("user", "anaya", "wrong_type"),
    ("user.uid", ["x"], "wrong_type"),
    ("user.uid", "u" * 300, "too_large"),
    ("user.uid", "ana\nya", "bad_value"),
    ("src_endpoint.ip", "192.0.2.300", "bad_value"),
    ("src_endpoint.ip", 3232235777, "wrong_type"),
    ("metadata.uid", {"id": 1}, "wrong_type"),
])
def test_unusable_authentication_records(path, value, reason) -> None:
    assert reject_of(ocsf, _set(_auth(), path, value)).reason == reason


def test_a_failed_api_call_read_nothing() -> None:
    assert reject_of(ocsf, _api(status_id=2)).reason == "request_failed"


def test_a_failed_account_change_did_not_happen() -> None:
    r = sample_obj(FMT, "account_change_cloudtrail.json")
    r.update(activity_id=5, status_id=2)
    assert reject_of(ocsf, r).reason == "unsupported_event"


def test_a_zero_session_creation_time_is_absent_not_1970() -> None:
    r = _api()
    r["actor"]["session"]["created_time"] = 0
    assert "token_issued_at" not in adapt_ok(ocsf, r)[0]


@hostile_params()
def test_hostile_input_is_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    r = reject_of(ocsf, raw)
    assert not reason or r.reason == reason


def test_every_usable_example_decodes_as_contract_v1() -> None:
    assert_contract([ev for r in (_auth(), _api(), _web()) for ev in adapt_ok(ocsf, r)])


# ---- through the engine --------------------------------------------------------------------
def test_failed_logons_on_many_accounts_from_one_address_raise_credential_stuffing() -> None:
    """Twelve OCSF Authentication failures, each on another account, from one hosting
    address within a minute: a stuffing run, paged on that address."""
    evs = []
    for i in range(12):
        r = _auth()
        r["metadata"]["uid"] = f"stuff-{i}"
        r["time"] = 1699633474000 + i * 5000
        r["status_id"] = 2
        r["user"] = {"uid": f"arn:aws:iam::111122223333:user/u{i}", "name": f"u{i}"}
        r["src_endpoint"]["ip"] = "45.33.2.10"
        evs += adapt_ok(ocsf, r)
    alerts = run_engine(evs, ("credential_stuffing",))
    assert {(a["detector"], a["entity"]["kind"], a["entity"]["id"]) for a in alerts} == {
        ("credential_stuffing", "src_ip", "45.33.2.10")}


@pytest.mark.parametrize("build", [_auth, _api, _web,
                                   lambda: sample_obj(FMT, "account_change_cloudtrail.json")],
                         ids=["auth", "api", "web", "change"])
def test_any_field_of_any_type_is_events_or_a_reject(build) -> None:
    assert fuzz_fields(ocsf, build()) > 100


def test_frame_splits_a_pretty_printed_event_and_an_array_export() -> None:
    [one] = records(ocsf, sample(FMT, "authentication_cloudtrail.json"))
    assert adapt_ok(ocsf, one)[0]["event_id"] == "ocsf:fed06f42-cb12-4764-8c69-example"
    export = orjson.dumps([_auth(), _api()], option=orjson.OPT_INDENT_2)
    assert [e["event_id"] for r in records(ocsf, export) for e in adapt_ok(ocsf, r)] == [
        "ocsf:fed06f42-cb12-4764-8c69-example", "ocsf:71c88be9-ea5c-43c7-8c82-example"]
    lines_ = orjson.dumps(_auth()) + b"\n" + orjson.dumps(_api()) + b"\n"
    assert len(records(ocsf, lines_)) == 2


def test_ocsf_api_reads_meet_entra_sign_ins_and_a_session_no_sign_in_issued_pages() -> None:
    """Entra ID sign-ins (the Graph sample, one per user, each with its session id) and OCSF
    API Activity reads presenting those sessions meet in one engine: reads with an issued
    session pass, a read with a session no sign-in issued pages unissued_session."""
    from detectors.adapters import entra
    signin = sample_obj("entra", "graph_signin_get_response.repaired.json")["value"][0]
    t0 = 1695334800  # 2023-09-21T22:20:00Z
    evs = []
    for i, user in enumerate(["alice@contoso.com", "bob@contoso.com"]):
        s = dict(signin, id=f"signin-{i}", userPrincipalName=user, sessionId=f"sid-{i}",
                 createdDateTime=f"2023-09-21T22:20:0{i}Z")
        evs += adapt_ok(entra, s)

    def read(uid: str, user: str, session: str, issued_ms: int, at_ms: int) -> dict[str, Any]:
        r = _api()
        r["metadata"]["uid"] = uid
        r["time"] = at_ms
        r["actor"]["user"] = {"uid": user, "type_id": 1}
        r["actor"]["session"] = {"uid": session, "created_time": issued_ms}
        r["src_endpoint"]["ip"] = "52.95.110.1"
        return r

    evs += adapt_ok(ocsf, read("r-1", "alice@contoso.com", "sid-0", t0 * 1000, t0 * 1000 + 60_000))
    evs += adapt_ok(ocsf, read("r-2", "bob@contoso.com", "sid-1", t0 * 1000, t0 * 1000 + 61_000))
    # issued 5 min after the first event: past the clocks' skew at the watch's start, within
    # which a token's login may predate the stream (unissued_session adopts those)
    evs += adapt_ok(ocsf, read("r-3", "bob@contoso.com", "sid-forged", t0 * 1000 + 300_000,
                               t0 * 1000 + 360_000))
    alerts = run_engine(evs, ("unissued_session",))
    assert [(a["detector"], a["event_ids"]) for a in alerts] == [
        ("unissued_session", ["ocsf:r-3"])]
    assert alerts[0]["entity"] == {"kind": "src_ip", "id": "52.95.110.1"}  # no key named
