"""The Okta System Log adapter on LogEvents from Okta's own documentation."""

from __future__ import annotations

import copy
import io
from typing import Any

import orjson
import pytest

from detectors import adapters
from detectors.adapters import okta

# Provenance: Okta developer documentation, "Events API to System Log API migration" guide
# (developer.okta.com/docs/concepts/events-api-migration/, source in github.com/okta/
# okta-developer-docs), section "System Log API LogEvent": the LogEvent of a user accessing the
# admin app, verbatim.
DOC_ADMIN_APP: dict[str, Any] = {
    "actor": {"id": "00u1qmc3wcC6KIsgi0g7", "type": "User", "alternateId": "jdoe@example.com",
              "displayName": "Jane Doe", "detailEntry": None},
    "client": {"userAgent": {"rawUserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_3)...",
                             "os": "Mac OS X", "browser": "CHROME"},
               "zone": "null", "device": "Computer", "id": None, "ipAddress": "99.225.99.159",
               "geographicalContext": {"city": "Toronto", "state": "Ontario", "country": "Canada",
                                       "postalCode": "M6G",
                                       "geolocation": {"lat": 43.6655, "lon": -79.4204}}},
    "authenticationContext": {"authenticationProvider": None, "credentialProvider": None,
                              "credentialType": None, "issuer": None, "interface": None,
                              "authenticationStep": 0,
                              "externalSessionId": "102PfloXybbT3q1IOdqDAQoeQ"},
    "displayMessage": "User accessing Okta admin app",
    "eventType": "user.session.access_admin_app",
    "outcome": {"result": "SUCCESS", "reason": None},
    "published": "2018-08-02T14:52:11.272Z",
    "securityContext": {"asNumber": None, "asOrg": None, "isp": None, "domain": None,
                        "isProxy": None},
    "severity": "INFO",
    "debugContext": {"debugData": {"requestUri": "/admin/sso/request"}},
    "legacyEventType": "app.admin.sso.login.success",
    "transaction": {"type": "WEB", "id": "W2Mam7t4pcvodL-w@kNCrQAABSM", "detail": {}},
    "uuid": "b5ef15a1-e78f-4125-b425-cc10f04e24f3",
    "version": "0",
    "request": {"ipChain": [{"ip": "99.225.99.159", "version": "V4", "source": None}]},
    "target": [{"id": "0ua1qmc3wf2xDawpN0g7", "type": "AppUser", "alternateId": "unknown",
                "displayName": "Jane Doe", "detailEntry": None}],
}


def _variant(**changes: Any) -> dict[str, Any]:
    ev = copy.deepcopy(DOC_ADMIN_APP)
    for path, value in changes.items():
        obj = ev
        *head, last = path.split("__")
        for p in head:
            obj = obj[p]
        obj[last] = value
    return ev


# Provenance: the documented LogEvent above with the event type, uuid, session and transaction
# of the "User login to Okta" row of the System Log API reference's "Event correlation" table
# (developer.okta.com/docs/reference/api/system-log/#event-correlation: externalSessionId
# 102GALFw8CzRT2KXoqnca8Jdg, transaction Wij-AJeCbHF7In2MKNaOpAAAEC4, uuid b9ab9263-...),
# credentialType PASSWORD (one of the AuthenticationContext values the reference lists).
DOC_SESSION_START = _variant(
    eventType="user.session.start", displayMessage="User login to Okta",
    legacyEventType="core.user_auth.login_success", uuid="b9ab9263-a4ae-4780-9981-377ec8f2da86",
    authenticationContext__externalSessionId="102GALFw8CzRT2KXoqnca8Jdg",
    authenticationContext__credentialType="PASSWORD",
    transaction__id="Wij-AJeCbHF7In2MKNaOpAAAEC4", target=[])
# Provenance: the same table's last row: a user.session.start whose externalSessionId is null,
# which the reference explains as a sign-in failure; outcome FAILURE with reason
# INVALID_CREDENTIALS (the reference's Outcome object example).
DOC_SESSION_FAILED = _variant(
    eventType="user.session.start", displayMessage="User login to Okta",
    uuid="566671be-ec0b-400d-ad2e-6fc73ed12fb1",
    authenticationContext__externalSessionId=None,
    outcome={"result": "FAILURE", "reason": "INVALID_CREDENTIALS"},
    transaction__id="Wm@-R2s5lEMbNIB03krtvAAACyo", target=[])
# Provenance: the table's user.authentication.sso row (uuid ff325685-..., same session).
DOC_SSO = _variant(
    eventType="user.authentication.sso", displayMessage="User single sign on to app",
    uuid="ff325685-0220-484c-82cf-5f8dc596acbe",
    authenticationContext__externalSessionId="102GALFw8CzRT2KXoqnca8Jdg",
    transaction__id="Wij-7q4YuniRd9yTmWHrBQAAAKQ")
# Provenance: the reference's Target object example (a User: id 00u3gjksoiRGRAZHLSYV,
# alternateId 00uKrs9rsRSAXN) as the target of a user.lifecycle.deactivate (an event type the
# reference's event-type catalogue lists); uuid ours.
DOC_DEACTIVATE = _variant(
    eventType="user.lifecycle.deactivate", displayMessage="Deactivate Okta user",
    uuid="0c3f1f0e-6a7e-4d4c-9a53-5b1d4b7f2a11",
    target=[{"id": "00u3gjksoiRGRAZHLSYV", "displayName": "Jon Stewart",
             "alternateId": "00uKrs9rsRSAXN", "login": "jon@example.com", "type": "User"}])


def adapt(ev: dict[str, Any]) -> list[dict[str, Any]]:
    return okta.adapt(orjson.dumps(ev))


def reason(raw: bytes) -> tuple[str, str]:
    with pytest.raises(adapters.Reject) as err:
        okta.adapt(raw)
    return type(err.value).__name__, err.value.reason


def test_session_start_is_a_login_that_issued_the_external_session() -> None:
    e, = adapt(DOC_SESSION_START)
    assert e == {**e, "event_id": "okta-b9ab9263-a4ae-4780-9981-377ec8f2da86",
                 "ts": "2018-08-02T14:52:11.272Z", "account_id": "jdoe@example.com",
                 "outcome": "success", "src_ip": "99.225.99.159",
                 "session_id": "102GALFw8CzRT2KXoqnca8Jdg", "method": "password",
                 "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_3)..."}
    assert "country" not in e  # Okta's is a full name, not ISO alpha-2: GeoIP decides


def test_a_failed_sign_in_has_no_session_and_is_a_failure() -> None:
    e, = adapt(DOC_SESSION_FAILED)
    assert e["outcome"] == "failure" and "session_id" not in e


def test_sso_is_a_login_by_sso_and_the_engine_accepts_every_event() -> None:
    from detectors.engine import Engine, EngineConfig
    e, = adapt(DOC_SSO)
    assert (e["method"], e["outcome"]) == ("sso", "success")
    eng = Engine(EngineConfig(max_future_skew=None))
    for ev in (DOC_SESSION_START, DOC_SESSION_FAILED, DOC_SSO, DOC_DEACTIVATE):
        for out in adapt(ev):
            assert eng.process_obj(out)[1] is None


def test_deactivation_is_a_termination_of_the_target_user() -> None:
    e, = adapt(DOC_DEACTIVATE)
    assert (e["change"], e["principal_id"]) == ("principal_terminated", "00uKrs9rsRSAXN")


@pytest.mark.parametrize(("ev", "why"), [
    (DOC_ADMIN_APP, ("Skip", "not_mapped")),
    (_variant(eventType="user.session.start", outcome={"result": "CHALLENGE"}),
     ("Skip", "not_final")),
    (_variant(eventType="user.session.start", client__ipAddress=None, request={"ipChain": []}),
     ("Reject", "no_src_ip")),
    (_variant(eventType="user.session.start", authenticationContext__externalSessionId=None),
     ("Reject", "success_without_session")),
    (_variant(eventType="user.session.start", uuid=None), ("Reject", "missing_field")),
    (_variant(eventType="user.lifecycle.suspend", target=[]), ("Reject", "missing_field")),
    (_variant(eventType="user.session.start", request={"ipChain": "99.225.99.159"}),
     ("Reject", "bad_field")),
])
def test_unusable_records_are_skipped_or_rejected_with_their_reason(
        ev: dict[str, Any], why: tuple[str, str]) -> None:
    assert reason(orjson.dumps(ev)) == why


def test_garbage_is_rejected() -> None:
    assert reason(b"{not json") == ("Reject", "invalid_json")
    assert reason(b"42") == ("Reject", "not_an_object")


def test_an_api_page_and_an_event_hook_are_framed_into_their_log_events() -> None:
    page = orjson.dumps([DOC_SESSION_START, DOC_SSO])
    hook = orjson.dumps({"eventType": "com.okta.event_hook", "data": {"events": [DOC_DEACTIVATE]}})
    line = orjson.dumps(DOC_SESSION_FAILED)
    stream = io.BytesIO(page + b"\n" + hook + b"\n" + line + b"\n")
    outs = list(adapters.records(adapters.load("okta"), stream))
    kinds = [o.events[0].get("change") or o.events[0]["outcome"] for o in outs]
    assert kinds == ["success", "success", "principal_terminated", "failure"]
