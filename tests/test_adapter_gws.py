"""The Google Workspace adapter on login audit activities (tests/data/adapters/gws/,
PROVENANCE.md there: a published login_success activity and an Alert Center alert, verbatim from
a public MIT-licensed collector's test fixture; the rest written from the Reports API reference,
no public open-licensed login_failure record being found): login_success and login_failure,
the other login events as rejects with a reason, Reports API list responses and shipper-split
activities, and a stuffing run raising credential_stuffing through the replay path."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from detectors.adapters import gws
from tests.adapters_support import (
    adapt_ok,
    assert_contract,
    fuzz_fields,
    hostile_params,
    records,
    reject_of,
    run_engine,
    sample,
)

FMT = "gws"


def _activity(i: int) -> dict[str, Any]:
    """The activity as the Reports API returns it: ``events`` is an array."""
    return orjson.loads(records(gws, sample(FMT, "login_activities.jsonl"))[i])


def _shipper_shaped(i: int) -> dict[str, Any]:
    """The activity as log shippers that split activities by event write it: one event, an
    object."""
    r = _activity(i)
    [r["events"]] = r["events"]
    return r


# ---- positives -----------------------------------------------------------------------------
FAILURE_ID = "gws:2024-05-14T08:30:05.000Z:7391046528301846172"


def test_login_failure_is_a_failed_login() -> None:
    [ev] = adapt_ok(gws, _activity(1))
    assert ev == {"event_id": FAILURE_ID, "ts": "2024-05-14T08:30:05.000Z",
                  "account_id": "alice@example.com", "account_type": "employee",
                  "outcome": "failure", "src_ip": "203.0.113.7", "method": "password"}


def test_login_success_with_password_and_with_a_second_factor() -> None:
    [pw] = adapt_ok(gws, _activity(4))
    assert pw["outcome"] == "success" and pw["method"] == "password"
    assert (pw["account_id"], pw["src_ip"]) == ("bob@example.com", "2001:db8::42")
    assert pw["session_id"] == "gws:2024-05-14T10:15:09.000Z:6602918374650192837#login"
    [code] = adapt_ok(gws, _activity(3))
    assert code["method"] == "mfa"  # login_challenge_method password and google_authenticator


def test_saml_login_is_sso() -> None:
    r = _activity(4)
    params = r["events"][0]["parameters"]
    r["events"][0]["parameters"] = [{"name": "login_type", "value": "saml"}] + [
        p for p in params if p.get("name") != "login_type"]
    [ev] = adapt_ok(gws, r)
    assert ev["method"] == "sso"


@pytest.mark.parametrize("i", [1, 3, 4])
def test_a_shipper_split_activity_gives_the_same_login(i) -> None:
    assert adapt_ok(gws, _shipper_shaped(i)) == adapt_ok(gws, _activity(i))


def test_an_activity_with_two_login_events_gives_two_ids() -> None:
    r = _activity(1)
    r["events"] += _activity(4)["events"]
    evs = adapt_ok(gws, r)
    assert [(e["event_id"], e["outcome"]) for e in evs] == [
        (FAILURE_ID + ":0", "failure"), (FAILURE_ID + ":1", "success")]


def test_a_list_response_is_framed_into_activities() -> None:
    page = {"kind": "admin#reports#activities",
            "items": [_activity(1), _activity(2), _activity(4)]}
    recs = records(gws, orjson.dumps(page, option=orjson.OPT_INDENT_2))
    assert len(recs) == 3
    assert [reject_of(gws, recs[1]).reason] == ["unsupported_event"]  # logout
    assert [e["outcome"] for e in adapt_ok(gws, orjson.dumps(page))] == ["failure", "success"]


def test_a_published_login_success_activity_is_a_successful_password_login() -> None:
    """A record taken verbatim from a public source (PROVENANCE.md: the paws-collector fixture):
    its etag, its actor without callerType and its parameter layout as the API returned them."""
    [rec] = records(gws, sample(FMT, "paws_collector_login_success.json"))
    [ev] = adapt_ok(gws, rec)
    assert ev == {"event_id": "gws:2020-01-09T05:56:41.462Z:210793348270",
                  "ts": "2020-01-09T05:56:41.462Z", "account_id": "name@test.com",
                  "account_type": "employee", "outcome": "success", "src_ip": "125.255.255.1",
                  "session_id": "gws:2020-01-09T05:56:41.462Z:210793348270#login",
                  "method": "password"}


# ---- rejections ----------------------------------------------------------------------------
@pytest.mark.parametrize("i,name", [(0, "account_disabled_password_leak"), (2, "logout"),
                                    (5, "suspicious_login")])
@pytest.mark.parametrize("shape", [_activity, _shipper_shaped], ids=["api", "shipper"])
def test_other_login_events_are_unsupported_and_named(i, name, shape) -> None:
    r = reject_of(gws, shape(i))
    assert r.reason == "unsupported_event" and name in r.detail


def test_a_published_alert_center_alert_is_not_a_login_activity() -> None:
    """The same public fixture's Alert Center alert (a "Suspicious login" alert, what a team
    polling both APIs into one topic would mix in): no Reports API activity, so no login."""
    [rec] = records(gws, sample(FMT, "paws_collector_alert_center_alert.json"))
    r = reject_of(gws, rec)
    assert r.reason == "unsupported_event" and "applicationName" in r.detail


@pytest.mark.parametrize("changes,reason", [
    ({"id": {"time": "2024-05-14T08:30:05.000Z", "uniqueQualifier": "1",
             "applicationName": "drive"}}, "unsupported_event"),
    ({"id": "x"}, "unsupported_event"),
    ({"id": {"applicationName": "login", "uniqueQualifier": "1"}}, "missing_field"),
    ({"id": {"applicationName": "login", "time": "2024-05-14T08:30:05.000Z"}}, "missing_field"),
    ({"id": {"applicationName": "login", "time": "May 14", "uniqueQualifier": "1"}},
     "bad_value"),
    ({"actor": {}}, "missing_field"),
    ({"actor": {"email": ["a@b"]}}, "wrong_type"),
    ({"ipAddress": None}, "missing_field"),
    ({"ipAddress": "203.0.113"}, "bad_value"),
    ({"events": None}, "missing_field"),
    ({"events": "login_success"}, "wrong_type"),
    ({"events": [{"name": ["login_success"]}]}, "unsupported_event"),
    ({"events": [{"name": "login_success"}] * 1001}, "too_large"),
])
def test_unusable_activities(changes, reason) -> None:
    r = _activity(1)
    r.update(changes)
    assert reject_of(gws, r).reason == reason


@hostile_params()
def test_hostile_input_is_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    r = reject_of(gws, raw)
    assert not reason or r.reason == reason


@pytest.mark.parametrize("build", [lambda: _shipper_shaped(1), lambda: _activity(4)],
                         ids=["shipper", "api"])
def test_any_field_of_any_type_is_events_or_a_reject(build) -> None:
    assert fuzz_fields(gws, build()) > 100


def test_every_usable_sample_decodes_as_contract_v1() -> None:
    assert_contract([ev for i in (1, 3, 4) for ev in adapt_ok(gws, _activity(i))])


# ---- through the engine --------------------------------------------------------------------
def test_login_failures_on_many_accounts_from_one_address_raise_credential_stuffing() -> None:
    evs = []
    for i in range(12):
        r = _activity(1)
        r["id"]["time"] = f"2024-05-14T08:30:{i * 4:02d}.000Z"
        r["id"]["uniqueQualifier"] = str(1000 + i)
        r["actor"]["email"] = f"user{i}@example.com"
        r["ipAddress"] = "45.33.2.10"
        evs += adapt_ok(gws, r)
    alerts = run_engine(evs, ("credential_stuffing",))
    assert {(a["detector"], a["entity"]["kind"], a["entity"]["id"]) for a in alerts} == {
        ("credential_stuffing", "src_ip", "45.33.2.10")}
