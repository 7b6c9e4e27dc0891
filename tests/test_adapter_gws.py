"""The Google Workspace adapter on login audit activities (tests/data/adapters/gws/,
PROVENANCE.md there): login_success and login_failure, the other login events as rejects with a
reason, Reports API list responses, and a stuffing run raising credential_stuffing through the
replay path."""

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
    return orjson.loads(records(gws, sample(FMT, "login_activities.jsonl"))[i])


def _api_shaped(i: int, **changes: Any) -> dict[str, Any]:
    """The activity as the Reports API returns it: ``events`` is an array."""
    r = _activity(i)
    r["events"] = [r["events"]]
    r.update(changes)
    return r


# ---- positives -----------------------------------------------------------------------------
def test_login_failure_is_a_failed_login() -> None:
    [ev] = adapt_ok(gws, _activity(1))
    assert ev == {"event_id": "gws:2020-10-02T15:00:00Z:1", "ts": "2020-10-02T15:00:00.000Z",
                  "account_id": "foo@bar.com", "account_type": "employee",
                  "outcome": "failure", "src_ip": "67.43.156.13", "method": "mfa"}


def test_login_success_with_password_and_with_a_second_factor() -> None:
    [pw] = adapt_ok(gws, _activity(4))
    assert pw["outcome"] == "success" and pw["method"] == "password"
    assert pw["session_id"] == "gws:2020-10-02T15:00:00Z:1#login"
    [code] = adapt_ok(gws, _activity(3))
    assert code["method"] == "mfa"  # login_challenge_method backup_code


def test_api_shaped_activity_and_saml() -> None:
    r = _api_shaped(4)
    r["events"][0]["parameters"].append({"name": "login_type", "value": "saml"})
    r["events"][0]["parameters"] = [p for p in r["events"][0]["parameters"]
                                    if p != {"name": "login_type", "value": "google_password"}]
    [ev] = adapt_ok(gws, r)
    assert ev["method"] == "sso"


def test_an_activity_with_two_login_events_gives_two_ids() -> None:
    r = _api_shaped(1)
    r["events"].append(_activity(4)["events"])
    evs = adapt_ok(gws, r)
    assert [(e["event_id"], e["outcome"]) for e in evs] == [
        ("gws:2020-10-02T15:00:00Z:1:0", "failure"), ("gws:2020-10-02T15:00:00Z:1:1", "success")]


def test_a_list_response_is_framed_into_activities() -> None:
    page = {"kind": "admin#reports#activities",
            "items": [_api_shaped(1), _api_shaped(2), _api_shaped(4)]}
    recs = records(gws, orjson.dumps(page, option=orjson.OPT_INDENT_2))
    assert len(recs) == 3
    assert [reject_of(gws, recs[1]).reason] == ["unsupported_event"]  # logout
    assert [e["outcome"] for e in adapt_ok(gws, orjson.dumps(page))] == ["failure", "success"]


# ---- rejections ----------------------------------------------------------------------------
@pytest.mark.parametrize("i,name", [(0, "account_disabled_password_leak"), (2, "logout"),
                                    (5, "login_verification")])
def test_other_login_events_are_unsupported_and_named(i, name) -> None:
    r = reject_of(gws, _activity(i))
    assert r.reason == "unsupported_event" and name in r.detail


@pytest.mark.parametrize("changes,reason", [
    ({"id": {"time": "2020-10-02T15:00:00Z", "uniqueQualifier": 1, "applicationName": "drive"}},
     "unsupported_event"),
    ({"id": "x"}, "unsupported_event"),
    ({"id": {"applicationName": "login", "uniqueQualifier": 1}}, "missing_field"),
    ({"id": {"applicationName": "login", "time": "2020-10-02T15:00:00Z"}}, "missing_field"),
    ({"id": {"applicationName": "login", "time": "Oct 2", "uniqueQualifier": 1}}, "bad_value"),
    ({"actor": {}}, "missing_field"),
    ({"actor": {"email": ["a@b"]}}, "wrong_type"),
    ({"ipAddress": None}, "missing_field"),
    ({"ipAddress": "67.43.156"}, "bad_value"),
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


@pytest.mark.parametrize("build", [lambda: _activity(1), lambda: _api_shaped(4)],
                         ids=["shipper", "api"])
def test_any_field_of_any_type_is_events_or_a_reject(build) -> None:
    assert fuzz_fields(gws, build()) > 100


def test_every_usable_sample_decodes_as_contract_v1() -> None:
    assert_contract([ev for i in (1, 3, 4) for ev in adapt_ok(gws, _activity(i))])


# ---- through the engine --------------------------------------------------------------------
def test_login_failures_on_many_accounts_from_one_address_raise_credential_stuffing() -> None:
    evs = []
    for i in range(12):
        r = _api_shaped(1)
        r["id"]["time"] = f"2020-10-02T15:00:{i * 4:02d}Z"
        r["id"]["uniqueQualifier"] = str(1000 + i)
        r["actor"]["email"] = f"user{i}@bar.com"
        r["ipAddress"] = "45.33.2.10"
        evs += adapt_ok(gws, r)
    alerts = run_engine(evs, ("credential_stuffing",))
    assert {(a["detector"], a["entity"]["kind"], a["entity"]["id"]) for a in alerts} == {
        ("credential_stuffing", "src_ip", "45.33.2.10")}
