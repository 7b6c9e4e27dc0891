"""The CloudTrail adapter on AWS's documented records (tests/data/adapters/cloudtrail/,
PROVENANCE.md there): framing, logins, data events, identity changes, rejections, and a forged
session in CloudTrail's own terms raising unissued_session through the replay path."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from detectors.adapters import cloudtrail
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

FMT = "cloudtrail"


# ---- framing -------------------------------------------------------------------------------
def test_frame_splits_a_pretty_records_document_into_its_records() -> None:
    recs = records(cloudtrail, sample(FMT, "s3_management_records.json"))
    assert [orjson.loads(r)["eventName"] for r in recs] == [
        "ListBuckets", "PutBucketAcl", "GetBucketVersioning"]


def test_frame_splits_records_documents_one_per_line_and_passes_single_records() -> None:
    doc = orjson.dumps(sample_obj(FMT, "s3_management_records.json"))
    single = orjson.dumps(sample_obj(FMT, "console_login_mfa.json"))
    recs = records(cloudtrail, doc + b"\n" + single + b"\n\n" + doc + b"\n")
    assert [orjson.loads(r)["eventName"] for r in recs] == [
        "ListBuckets", "PutBucketAcl", "GetBucketVersioning", "ConsoleLogin",
        "ListBuckets", "PutBucketAcl", "GetBucketVersioning"]


def test_frame_yields_a_record_before_the_stream_ends() -> None:
    """A pipe (``tail -f ... | accesswatch replay --format cloudtrail -``) is not waited on:
    the first record comes out before the next line is read."""
    first = orjson.dumps(sample_obj(FMT, "console_login_mfa.json"))

    def stream():
        yield first + b"\n"
        raise AssertionError("frame read past the first record")

    assert next(iter(cloudtrail.frame(stream()))) == first  # type: ignore[arg-type]


def test_a_pretty_document_over_the_limit_is_yielded_line_by_line(monkeypatch) -> None:
    from detectors.adapters import _jsonrec
    monkeypatch.setattr(_jsonrec, "MAX_DOCUMENT_BYTES", 100)
    raw = sample(FMT, "console_login_mfa.json")
    recs = records(cloudtrail, raw)
    assert recs == [x for x in raw.split(b"\n") if x.strip()]  # every line, none dropped
    assert {reject_of(cloudtrail, r).reason for r in recs} == {"invalid_json"}


def test_a_truncated_line_does_not_swallow_the_records_after_it() -> None:
    line = orjson.dumps(sample_obj(FMT, "console_login_mfa.json"))
    recs = records(cloudtrail, line[:50] + b"\n" + line + b"\n" + line + b"\n")
    assert recs == [line[:50], line, line]


def test_adapt_of_a_whole_records_document_returns_its_usable_records_events() -> None:
    doc = {"Records": [sample_obj(FMT, "console_login_mfa.json"),
                       sample_obj(FMT, "iam_get_user_policy.json"),
                       sample_obj(FMT, "console_login_failure.json")]}
    evs = adapt_ok(cloudtrail, doc)
    assert [e["event_id"] for e in evs] == [
        "cloudtrail:fed06f42-cb12-4764-8c69-121063dc79b9",
        "cloudtrail:d38ce1b3-4575-4cb8-a632-611b8243bfc3"]


def test_a_records_document_with_nothing_usable_is_rejected_with_the_first_reason() -> None:
    r = reject_of(cloudtrail, sample(FMT, "s3_management_records.json"))
    assert r.reason == "unsupported_event"
    assert "no usable record among 3" in r.detail


# ---- logins --------------------------------------------------------------------------------
def test_console_login_success_from_the_documented_records_file() -> None:
    [rec] = records(cloudtrail, sample(FMT, "console_login_success.json"))
    [ev] = adapt_ok(cloudtrail, rec)
    assert ev == {
        "event_id": "cloudtrail:3fcfb182-98f8-4744-bd45-10a395ab61cb",
        "ts": "2022-11-10T16:24:34.000Z",
        "account_id": "arn:aws:iam::111122223333:user/anaya",
        "account_type": "employee",
        "outcome": "success",
        "src_ip": "192.0.2.0",
        "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.12; rv:62.0) Gecko/20100101 "
                      "Firefox/62.0",
        "session_id": "cloudtrail:3fcfb182-98f8-4744-bd45-10a395ab61cb#login",
        "method": "password",
    }


def test_console_login_with_mfa_and_a_failure_name_the_same_account() -> None:
    [ok] = adapt_ok(cloudtrail, sample(FMT, "console_login_mfa.json"))
    [bad] = adapt_ok(cloudtrail, sample(FMT, "console_login_failure.json"))
    assert ok["method"] == "mfa" and ok["outcome"] == "success"
    assert bad["outcome"] == "failure" and "session_id" not in bad
    # the failed record carries no arn: the account is written as the success writes it
    assert bad["account_id"] == ok["account_id"] == "arn:aws:iam::111122223333:user/anaya"


def test_assume_role_is_a_login_issuing_the_temporary_key_as_its_session() -> None:
    [ev] = adapt_ok(cloudtrail, sample(FMT, "sts_assume_role.json"))
    assert ev["event_id"] == "cloudtrail:dEXAMPLE-ac7f-466c-a608-4ac8dEXAMPLE"
    assert ev["account_id"] == "arn:aws:sts::111122223333:assumed-role/EC2-dev/JohnDoe-EC2-dev"
    assert ev["outcome"] == "success"
    assert ev["session_id"] == "AKIAQRSTUVWXYZEXAMPLE"
    assert ev["method"] == "mfa"  # requestParameters.serialNumber
    assert ev["ts"] == "2014-07-18T15:07:39.000Z"


def test_a_denied_assume_role_is_a_failed_login_on_the_role() -> None:
    r = sample_obj(FMT, "sts_assume_role.json")
    r["errorCode"] = "AccessDenied"
    r["responseElements"] = None
    [ev] = adapt_ok(cloudtrail, r)
    assert ev["outcome"] == "failure"
    assert ev["account_id"] == "arn:aws:iam::111122223333:role/EC2-dev"
    assert "session_id" not in ev


def test_get_session_token_and_saml_logins() -> None:
    r = sample_obj(FMT, "sts_assume_role.json")
    r["eventName"] = "GetSessionToken"
    r["requestParameters"] = {"durationSeconds": 3600}
    r["responseElements"] = {"credentials": {"accessKeyId": "ASIAGETSESSIONEXAMPLE"}}
    [ev] = adapt_ok(cloudtrail, r)
    assert ev["account_id"] == "arn:aws:iam::777788889999:user/JohnDoe"  # the caller
    assert ev["session_id"] == "ASIAGETSESSIONEXAMPLE" and ev["method"] == "api_key"
    r = sample_obj(FMT, "sts_assume_role.json")
    r["eventName"] = "AssumeRoleWithSAML"
    [ev] = adapt_ok(cloudtrail, r)
    assert ev["method"] == "sso"


# ---- data events and identity changes ------------------------------------------------------
def _get_object(key_id: str = "ASIAFORGEDEXAMPLE", created: str = "2023-03-17T16:43:57Z",
                when: str = "2023-03-17T17:07:59Z", event_id: str = "get-1",
                obj_key: str = "customers/c-1/address.json") -> dict[str, Any]:
    """S3 GetObject data event built from AWS's documented S3 data event (the Outposts
    PutObject record) and the documented assumed-role userIdentity (iam_create_user_...)."""
    r = sample_obj(FMT, "s3_outposts_put_object.json")
    ui = sample_obj(FMT, "iam_create_user_assumed_role.json")["userIdentity"]
    ui["accessKeyId"] = key_id
    ui["sessionContext"]["attributes"]["creationDate"] = created
    r.update(userIdentity=ui, eventSource="s3.amazonaws.com", eventName="GetObject",
             readOnly=True, eventTime=when, eventID=event_id, responseElements=None,
             requestParameters={"bucketName": "customer-data", "key": obj_key})
    r["resources"] = [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::customer-data/{obj_key}"},
                      {"type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::customer-data"}]
    r["sourceIPAddress"] = "52.95.4.21"
    return r


def test_documented_data_event_is_data_access_with_the_access_key() -> None:
    [ev] = adapt_ok(cloudtrail, sample(FMT, "s3_outposts_put_object.json"))
    assert ev == {
        "event_id": "cloudtrail:ee3b4e0c-ab12-459b-9998-0a5a6f2e4015",
        "ts": "2020-11-30T15:44:33.000Z",
        "actor_id": "arn:aws:iam::111122223333:user/yourUserName",
        "actor_type": "employee",
        "subject_id": "arn:aws:s3-outposts:us-east-1:YYY:outpost/op-01ac5d28a6a232904/bucket/"
                      "path/upload.sh",
        "resource": "AWS::S3Outposts::Object",
        "action": "update",
        "src_ip": "26.29.66.20",
        "user_agent": "aws-cli/1.18.39 Python/3.4.10 Darwin/18.7.0 botocore/1.15.39",
        "key_id": "AKIAIOSFODNN7EXAMPLE",  # a long-term key: no session
    }


def test_get_object_with_temporary_credentials_carries_session_and_issue_time() -> None:
    [ev] = adapt_ok(cloudtrail, _get_object())
    assert ev["actor_id"] == "arn:aws:sts::112233445566:assumed-role/Admin/Admin-user"
    assert ev["subject_id"] == "arn:aws:s3:::customer-data/customers/c-1/address.json"
    assert ev["resource"] == "AWS::S3::Object" and ev["action"] == "read"
    assert ev["key_id"] == ev["session_id"] == "ASIAFORGEDEXAMPLE"
    assert ev["token_issued_at"] == "2023-03-17T16:43:57.000Z"


def test_creation_date_in_basic_iso_8601_as_the_docs_show_it() -> None:
    [ev] = adapt_ok(cloudtrail, _get_object(created="20131102T010628Z"))
    assert ev["token_issued_at"] == "2013-11-02T01:06:28.000Z"


def test_subject_from_request_parameters_when_resources_are_absent() -> None:
    r = _get_object()
    del r["resources"]
    [ev] = adapt_ok(cloudtrail, r)
    assert ev["subject_id"] == "arn:aws:s3:::customer-data/customers/c-1/address.json"


def test_key_and_user_removals_are_identity_changes() -> None:
    base = sample_obj(FMT, "iam_create_user_assumed_role.json")
    r = dict(base, eventName="DeleteAccessKey",
             requestParameters={"accessKeyId": "AKIAOLDKEYEXAMPLE", "userName": "bob"})
    assert adapt_ok(cloudtrail, r)[0] | {} == {
        "event_id": "cloudtrail:7dd15a89-ae0f-4340-8e6c-d6981246c71b",
        "ts": "2023-03-17T17:07:59.000Z", "change": "key_revoked", "key_id": "AKIAOLDKEYEXAMPLE"}
    r = dict(base, eventName="UpdateAccessKey",
             requestParameters={"accessKeyId": "AKIAOLDKEYEXAMPLE", "status": "Inactive"})
    assert adapt_ok(cloudtrail, r)[0]["change"] == "key_revoked"
    r = dict(base, eventName="DeleteUser", requestParameters={"userName": "test_user2"})
    [ev] = adapt_ok(cloudtrail, r)
    assert ev["change"] == "principal_terminated"
    assert ev["principal_id"] == "arn:aws:iam::112233445566:user/test_user2"


# ---- rejections ----------------------------------------------------------------------------
@pytest.mark.parametrize("name,reason,fragment", [
    ("iam_create_user_assumed_role.json", "unsupported_event", "CreateUser"),
    ("iam_get_user_policy.json", "unsupported_event", "GetUserPolicy"),
    ("directconnect_describe.json", "unsupported_event", "DescribeDirectConnectGateways"),
])
def test_documented_management_events_are_rejected_with_their_name(name, reason, fragment) -> None:
    r = reject_of(cloudtrail, sample(FMT, name))
    assert r.reason == reason and fragment in r.detail


def _mutated(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    r = copy.deepcopy(base if base is not None else _get_object())
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
    ("eventID", KeyError, "missing_field"),
    ("eventID", 12.5, "wrong_type"),
    ("eventID", "x" * 5000, "too_large"),
    ("eventID", "a\x00b", "bad_value"),
    ("eventTime", "yesterday", "bad_value"),
    ("eventTime", "2023-03-17T17:07:59", "bad_value"),  # no zone
    ("eventTime", ["2023"], "wrong_type"),
    ("eventName", KeyError, "missing_field"),
    ("eventName", {"a": 1}, "wrong_type"),
    ("sourceIPAddress", "s3.amazonaws.com", "bad_value"),
    ("sourceIPAddress", "", "missing_field"),
    ("sourceIPAddress", "999.1.1.1", "bad_value"),
    ("userIdentity", KeyError, "missing_field"),
    ("userIdentity", "root", "wrong_type"),
    ("userIdentity.arn", 7, "wrong_type"),
    ("userIdentity.sessionContext.attributes.creationDate", "soon", "bad_value"),
    ("errorCode", "AccessDenied", "request_failed"),
    ("resources", "all", "wrong_type"),
])
def test_unusable_data_records_are_rejected_with_a_reason(path, value, reason) -> None:
    assert reject_of(cloudtrail, _mutated(path, value)).reason == reason


def test_an_anonymous_data_read_has_no_actor() -> None:
    r = _get_object()
    r["userIdentity"] = {"type": "AWSAccount", "accountId": "ANONYMOUS_PRINCIPAL"}
    assert reject_of(cloudtrail, r).reason == "missing_field"


def test_console_login_without_an_outcome_is_unknown_outcome() -> None:
    r = sample_obj(FMT, "console_login_mfa.json")
    r["responseElements"] = {"ConsoleLogin": "Maybe"}
    assert reject_of(cloudtrail, r).reason == "unknown_outcome"


def test_a_long_user_agent_is_cut_not_rejected() -> None:
    [ev] = adapt_ok(cloudtrail, _mutated("userAgent", "x" * 100_000))
    assert len(ev["user_agent"]) == 1024


@hostile_params()
def test_hostile_input_is_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    r = reject_of(cloudtrail, raw)
    assert not reason or r.reason == reason


def test_every_documented_usable_record_decodes_as_contract_v1() -> None:
    evs = []
    for name in ("console_login_success.json", "console_login_mfa.json",
                 "console_login_failure.json", "sts_assume_role.json",
                 "s3_outposts_put_object.json"):
        for rec in records(cloudtrail, sample(FMT, name)):
            evs += adapt_ok(cloudtrail, rec)
    assert len(evs) == 5
    assert_contract(evs)


# ---- through the engine --------------------------------------------------------------------
def test_a_read_with_a_temporary_key_no_sts_login_issued_raises_unissued_session() -> None:
    """AssumeRole issues ASIALEGIT...; reads with it pass. A read presenting ASIAFORGED...,
    a key whose session says it was issued after watching began but that no sts call issued,
    pages unissued_session on that key."""
    login = sample_obj(FMT, "sts_assume_role.json")
    login["eventTime"] = "2023-03-17T16:43:57Z"
    login["responseElements"]["credentials"]["accessKeyId"] = "ASIALEGITEXAMPLE"
    login["responseElements"]["assumedRoleUser"]["arn"] = (
        "arn:aws:sts::112233445566:assumed-role/Admin/Admin-user")
    doc = {"Records": [
        login,
        _get_object("ASIALEGITEXAMPLE", "2023-03-17T16:43:57Z", "2023-03-17T16:50:00Z", "get-ok-1"),
        _get_object("ASIALEGITEXAMPLE", "2023-03-17T16:43:57Z", "2023-03-17T16:51:00Z", "get-ok-2",
                    "customers/c-2/address.json"),
        _get_object("ASIAFORGEDEXAMPLE", "2023-03-17T16:55:00Z", "2023-03-17T17:00:00Z",
                    "get-forged", "customers/c-3/address.json"),
    ]}
    evs = [ev for rec in records(cloudtrail, orjson.dumps(doc))
           for ev in adapt_ok(cloudtrail, rec)]
    alerts = run_engine(evs, ("unissued_session",))
    assert [(a["detector"], a["entity"]) for a in alerts] == [
        ("unissued_session", {"kind": "key", "id": "ASIAFORGEDEXAMPLE"})]
    assert alerts[0]["event_ids"] == ["cloudtrail:get-forged"]


@pytest.mark.parametrize("build", [
    _get_object,
    lambda: sample_obj(FMT, "console_login_failure.json"),
    lambda: sample_obj(FMT, "sts_assume_role.json"),
], ids=["get-object", "console-login", "assume-role"])
def test_any_field_of_any_type_is_events_or_a_reject(build) -> None:
    assert fuzz_fields(cloudtrail, build()) > 100


def test_an_eventbridge_event_is_read_as_the_record_in_its_detail() -> None:
    record = sample_obj(FMT, "console_login_mfa.json")
    event = {"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
             "detail-type": "AWS Console Sign In via CloudTrail", "source": "aws.signin",
             "time": "2022-11-10T16:24:34Z", "region": "us-east-1", "detail": record}
    assert adapt_ok(cloudtrail, event) == adapt_ok(cloudtrail, record)


def test_an_object_key_too_long_for_an_id_is_digested_not_rejected() -> None:
    """S3 keys run to 1,024 bytes: whoever names the objects must not be able to make the
    reads of them unusable."""
    long_key = "customers/" + "k" * 1000
    [ev] = adapt_ok(cloudtrail, _get_object(obj_key=long_key))
    assert ev["subject_id"].startswith("sha256:") and len(ev["subject_id"]) == 71
    [again] = adapt_ok(cloudtrail, _get_object(obj_key=long_key, event_id="get-2"))
    assert again["subject_id"] == ev["subject_id"]
