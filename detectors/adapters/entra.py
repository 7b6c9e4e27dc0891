"""Microsoft Entra ID (Azure AD) sign-in logs in, contract logins out.

Input, any of:

- a Graph ``signIn`` resource (``GET /auditLogs/signIns``: one object per line, or a whole
  response ``{"value": [...]}``);
- an Azure Monitor diagnostic record, as Event Hubs streaming and storage-account export write
  them: ``{"category": "SignInLogs", "properties": {signIn...}, ...}`` (also the
  ``NonInteractiveUserSignInLogs``, ``ServicePrincipalSignInLogs`` and
  ``ManagedIdentitySignInLogs`` categories), one per line or a whole Event Hubs message body
  ``{"records": [...]}``.

``frame`` splits ``value`` and ``records`` wrappers into single sign-ins, so each is adapted or
rejected on its own; ``adapt`` given a wrapper returns the events of its usable sign-ins.

Field mapping (``properties.`` is implied for a diagnostic record):

| contract | signIn |
|---|---|
| event_id | ``entra:`` + ``id`` (required) |
| ts | ``createdDateTime`` (a diagnostic record's ``time`` when it has none) |
| account_id | ``userPrincipalName``, else ``userId``; a service principal's sign-in: ``servicePrincipalId`` |
| account_type | ``service`` for service principal and managed identity sign-ins, else ``employee`` |
| outcome | ``status.errorCode`` 0 success, any other code failure (the diagnostic record's ``resultType`` when there is no status); neither is ``unknown_outcome`` |
| src_ip | ``ipAddress`` (a diagnostic record's ``callerIpAddress`` when it has none) |
| user_agent | ``userAgent`` (cut to 1,024 characters) |
| device_id | ``deviceDetail.deviceId`` when not empty |
| session_id | ``sessionId`` (the ``sid`` claim of the tokens issued: a gateway that logs it meets these logins), else ``uniqueTokenIdentifier`` (the token's ``uti``), else ``EVENT_ID#login`` on success |
| method | ``mfa`` when ``authenticationRequirement`` is multiFactorAuthentication; ``refresh`` when ``incomingTokenType`` is a refresh token; ``password`` when a step of ``authenticationDetails`` used one; else none |

``location.countryOrRegion`` and ``autonomousSystemNumber`` are not copied: the contract believes a
producer's geography only where configured, and GeoIP decides otherwise. Every non-zero error code
counts as a failure, interrupts included (50140 "keep me signed in", 50074 "strong
authentication required"): the sign-in did not complete.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from . import Reject
from ._jsonrec import (
    adapt_many,
    address,
    claim,
    dig,
    event_id,
    frame_wrapped,
    load_object,
    login_session,
    short,
    text,
    time_of,
    unwrap,
)

NAME = "entra"

_SERVICE_CATEGORIES = frozenset({"ServicePrincipalSignInLogs", "ManagedIdentitySignInLogs"})
_SERVICE_TYPES = frozenset({"servicePrincipal", "managedIdentity"})
_REFRESH = frozenset({"refreshToken", "primaryRefreshToken"})
_WRAPPERS = ("records", "value")


def frame(stream: IO[bytes]) -> Iterator[bytes]:
    """One sign-in per record: ``records`` and ``value`` wrappers (a whole document, or one
    per line) are split; other lines pass as they are."""
    return frame_wrapped(stream, (b'"records"', b'"value"'), lambda doc: unwrap(doc, _WRAPPERS))


def adapt(record: bytes) -> list[dict[str, Any]]:
    obj = load_object(record, (b'"records"', b'"value"'))
    for w in _WRAPPERS:
        items = obj.get(w)
        if isinstance(items, list) and "id" not in obj and "properties" not in obj:
            return adapt_many(items, lambda x: [_one(x)], "sign-in")
    return [_one(obj)]


def _one(rec: dict[str, Any]) -> dict[str, Any]:
    outer: dict[str, Any] = {}
    s = rec
    if "properties" in rec:
        if not isinstance(rec["properties"], dict):
            raise Reject("wrong_type", "properties is not an object")
        outer, s = rec, rec["properties"]
    category = outer.get("category")
    if category is not None and not (type(category) is str and category.endswith("SignInLogs")):
        raise Reject("unsupported_event", f"category {short(category)} is not a sign-in log")
    ev: dict[str, Any] = {"event_id": event_id("entra", s.get("id"), s, "id")}
    if ev["event_id"].startswith("entra:sha256:"):
        raise Reject("missing_field", "id is absent")
    when = s.get("createdDateTime")
    ev["ts"] = (time_of(when, "createdDateTime") if when is not None
                else time_of(outer.get("time"), "time"))
    types = s.get("signInEventTypes")
    service = category in _SERVICE_CATEGORIES or (
        isinstance(types, list) and any(type(t) is str and t in _SERVICE_TYPES for t in types))
    who = None
    for field in ("userPrincipalName", "userId"):
        who = text(s.get(field), field, required=False)
        if who is not None:
            break
    if who is None:
        who = text(s.get("servicePrincipalId"), "servicePrincipalId", required=False)
        service = service or who is not None
    if who is None:
        raise Reject("missing_field", "userPrincipalName, userId and servicePrincipalId are absent")
    ev["account_id"] = who
    ev["account_type"] = "service" if service else "employee"
    code = dig(s, "status", "errorCode")
    if code is None:
        rt = outer.get("resultType")
        code = int(rt) if type(rt) is str and rt.isdigit() and len(rt) <= 9 else rt
    if type(code) is not int:
        raise Reject("unknown_outcome", f"status.errorCode is {short(code)}, not a number")
    ev["outcome"] = "success" if code == 0 else "failure"
    ip = s.get("ipAddress")
    ev["src_ip"] = address(ip if ip is not None else outer.get("callerIpAddress"), "ipAddress")
    ua = claim(s.get("userAgent"))
    if ua is not None:
        ev["user_agent"] = ua
    device = text(dig(s, "deviceDetail", "deviceId"), "deviceDetail.deviceId", required=False)
    if device is not None:
        ev["device_id"] = device
    sid = text(s.get("sessionId"), "sessionId", required=False)
    if sid is None:
        sid = text(s.get("uniqueTokenIdentifier"), "uniqueTokenIdentifier", required=False)
    if sid is not None:
        ev["session_id"] = sid
    elif ev["outcome"] == "success":
        ev["session_id"] = login_session(ev["event_id"])
    details = s.get("authenticationDetails")
    if s.get("authenticationRequirement") == "multiFactorAuthentication":
        ev["method"] = "mfa"
    elif type(s.get("incomingTokenType")) is str and s["incomingTokenType"] in _REFRESH:
        ev["method"] = "refresh"
    elif isinstance(details, list) and any(
            dig(d, "authenticationMethod") == "Password" for d in details):
        ev["method"] = "password"
    return ev
