"""okta: Okta System Log events (LogEvent objects) as logins and identity changes.

Framing: one LogEvent per line (an export, a Vector/Fluent Bit pipeline), a JSON array of them
(one page of ``GET /api/v1/logs``), or an event hook delivery (``{"data": {"events": [...]}}``);
each LogEvent is one record.

Logins (``auth-logins``), from ``user.session.start`` and ``user.authentication.*``:

==========================  ======================================================================
contract                    LogEvent
==========================  ======================================================================
event_id                    ``okta-`` + ``uuid``
ts                          ``published``
account_id                  ``actor.alternateId`` (the login, as in Okta access tokens' ``sub``),
                            else ``actor.id``
outcome                     ``outcome.result``: SUCCESS, ALLOW -> success; FAILURE, DENY ->
                            failure (CHALLENGE, SKIPPED, UNKNOWN: a step, skipped)
src_ip                      ``client.ipAddress``, else the first ``request.ipChain[].ip``
session_id                  ``authenticationContext.externalSessionId`` (required on success)
method                      ``credentialType`` PASSWORD -> password; OTP, SMS, EMAIL, push
                            -> mfa; ASSERTION, IWA, OAUTH2, JWT -> sso; ``user.authentication.
                            sso`` -> sso, ``auth_via_mfa`` -> mfa
user_agent                  ``client.userAgent.rawUserAgent``
device_id                   ``device.id`` (Okta Verify devices)
asn                         ``securityContext.asNumber`` (used only if the engine trusts
                            producers' geography)
==========================  ======================================================================

Okta's ``country`` is a country's full name, not ISO 3166 alpha-2: left out (GeoIP decides).

Identity changes (``identity-changes``), when ``outcome.result`` is SUCCESS; the principal is
the first ``target`` of type User (``alternateId``, else ``id``):

``user.lifecycle.deactivate``, ``user.lifecycle.delete.initiated`` -> principal_terminated;
``user.lifecycle.suspend``, ``user.account.lock`` -> principal_suspended;
``user.lifecycle.unsuspend``, ``user.lifecycle.reactivate``, ``user.lifecycle.activate``,
``user.account.unlock`` -> principal_reinstated.

Skipped (counted): ``not_mapped`` (any other event type), ``not_final`` (a login step that is
neither success nor failure). Rejected: ``invalid_json``, ``not_an_object``, ``missing_field``
(uuid, published, eventType, the actor or target), ``no_src_ip``, ``success_without_session``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import orjson

from . import Reject, Skip, lines

NAME = "okta"

_SUCCESS = {"SUCCESS", "ALLOW"}
_FAILURE = {"FAILURE", "DENY"}
_METHOD = {"PASSWORD": "password", "OTP": "mfa", "SMS": "mfa", "EMAIL": "mfa",
           "ASSERTION": "sso", "IWA": "sso", "OAUTH2": "sso", "JWT": "sso"}
_CHANGES = {
    "user.lifecycle.deactivate": "principal_terminated",
    "user.lifecycle.delete.initiated": "principal_terminated",
    "user.lifecycle.suspend": "principal_suspended",
    "user.account.lock": "principal_suspended",
    "user.lifecycle.unsuspend": "principal_reinstated",
    "user.lifecycle.reactivate": "principal_reinstated",
    "user.lifecycle.activate": "principal_reinstated",
    "user.account.unlock": "principal_reinstated",
}


def frame(stream: IO[bytes]) -> Iterator[bytes]:
    """One LogEvent per record: lines, and the elements of an array or event hook line."""
    for line in lines(stream):
        head = line.lstrip()[:1]
        if head == b"[" or (head == b"{" and b'"events"' in line):
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                yield line  # adapt rejects it with the reason
                continue
            items = doc if isinstance(doc, list) else (
                (doc.get("data") or {}).get("events") if isinstance(doc, dict)
                and isinstance(doc.get("data"), dict) else None)
            if isinstance(items, list):
                for item in items:
                    yield orjson.dumps(item)
                continue
        yield line


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _get(obj: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(p)
    return obj


def adapt(record: bytes) -> list[dict[str, Any]]:
    try:
        ev = orjson.loads(record)
    except orjson.JSONDecodeError as e:
        raise Reject("invalid_json", str(e)) from None
    if not isinstance(ev, dict):
        raise Reject("not_an_object", type(ev).__name__)
    kind = _str(ev.get("eventType"))
    if kind is None:
        raise Reject("missing_field", "eventType")
    login = kind == "user.session.start" or kind.startswith("user.authentication.")
    change = _CHANGES.get(kind)
    if not login and change is None:
        raise Skip("not_mapped", kind[:128])
    uuid = _str(ev.get("uuid"))
    if uuid is None:
        raise Reject("missing_field", "uuid")
    published = _str(ev.get("published"))
    if published is None:
        raise Reject("missing_field", "published")
    result = _str(_get(ev, "outcome", "result"))
    base: dict[str, Any] = {"event_id": f"okta-{uuid}", "ts": published, "source": NAME,
                            "okta_event_type": kind}
    if change is not None:
        if result not in _SUCCESS:
            raise Skip("not_final", f"{kind} {result}")
        who = None
        for t in ev.get("target") or []:
            if isinstance(t, dict) and t.get("type") == "User":
                who = _str(t.get("alternateId")) or _str(t.get("id"))
                break
        if who is None:
            raise Reject("missing_field", "target of type User")
        return [{**base, "change": change, "principal_id": who}]
    account = _str(_get(ev, "actor", "alternateId")) or _str(_get(ev, "actor", "id"))
    if account is None or account == "unknown":
        raise Reject("missing_field", "actor.alternateId")
    if result in _SUCCESS:
        outcome = "success"
    elif result in _FAILURE:
        outcome = "failure"
    else:
        raise Skip("not_final", f"{kind} {result}")
    src = _str(_get(ev, "client", "ipAddress"))
    if src is None:
        chain = _get(ev, "request", "ipChain")
        if isinstance(chain, list) and chain:
            src = _str(_get(chain[0], "ip"))
    if src is None:
        raise Reject("no_src_ip", "neither client.ipAddress nor request.ipChain")
    out: dict[str, Any] = {**base, "account_id": account, "outcome": outcome, "src_ip": src}
    session = _str(_get(ev, "authenticationContext", "externalSessionId"))
    if session is not None and session != "unknown":
        out["session_id"] = session
    elif outcome == "success":
        raise Reject("success_without_session", "authenticationContext.externalSessionId")
    cred = _str(_get(ev, "authenticationContext", "credentialType"))
    method = ("sso" if kind == "user.authentication.sso" else
              "mfa" if kind == "user.authentication.auth_via_mfa" else _METHOD.get(cred or ""))
    if method is not None:
        out["method"] = method
    ua = _str(_get(ev, "client", "userAgent", "rawUserAgent"))
    if ua is not None:
        out["user_agent"] = ua[:1024]
    dev = _str(_get(ev, "device", "id"))
    if dev is not None:
        out["device_id"] = dev
    asn = _get(ev, "securityContext", "asNumber")
    if isinstance(asn, int) and not isinstance(asn, bool) and 0 <= asn < 2**32:
        out["asn"] = asn
    return [out]
