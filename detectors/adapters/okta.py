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
neither success nor failure). Rejected: ``invalid_json``, ``not_an_object``, ``bad_field`` (a field the mapping reads has
the wrong JSON type), ``missing_field`` (uuid, published, eventType, the actor or target),
``no_src_ip``, ``success_without_session``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import msgspec
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


# Only the fields the mapping reads are decoded (msgspec skips the rest of a LogEvent without
# building it: about a third of a full ``orjson.loads``); a field of the wrong JSON type is a
# rejected record (``bad_field``). Hand-written structs rather than a schema library: these few
# fields are all the adapter trusts. ``gc=False``: a decoded LogEvent is a tree of these holding
# only strings, numbers and each other (no cycle can form), so the collector need not track
# the ~10 objects each record allocates (cheaper to allocate and free; what the collector
# walks stays the engine's state).
class _Named(msgspec.Struct, gc=False):
    id: Any = None
    type: Any = None
    alternateId: Any = None  # noqa: N815 - Okta's name


class _UA(msgspec.Struct, gc=False):
    rawUserAgent: Any = None  # noqa: N815


class _Client(msgspec.Struct, gc=False):
    ipAddress: Any = None  # noqa: N815
    userAgent: _UA | None = None  # noqa: N815


class _AuthCtx(msgspec.Struct, gc=False):
    externalSessionId: Any = None  # noqa: N815
    credentialType: Any = None  # noqa: N815


class _Outcome(msgspec.Struct, gc=False):
    result: Any = None


class _SecCtx(msgspec.Struct, gc=False):
    asNumber: Any = None  # noqa: N815


class _Ip(msgspec.Struct, gc=False):
    ip: Any = None


class _Request(msgspec.Struct, gc=False):
    ipChain: list[_Ip] | None = None  # noqa: N815


class _Device(msgspec.Struct, gc=False):
    id: Any = None


class _LogEvent(msgspec.Struct, gc=False):
    uuid: Any = None
    published: Any = None
    eventType: Any = None  # noqa: N815
    actor: _Named | None = None
    client: _Client | None = None
    authenticationContext: _AuthCtx | None = None  # noqa: N815
    outcome: _Outcome | None = None
    securityContext: _SecCtx | None = None  # noqa: N815
    request: _Request | None = None
    device: _Device | None = None
    target: list[_Named] | None = None


_decode = msgspec.json.Decoder(_LogEvent).decode


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def adapt(record: bytes) -> list[dict[str, Any]]:
    try:
        ev = _decode(record)
    except msgspec.ValidationError as e:
        if str(e).startswith("Expected `object`, got"):
            raise Reject("not_an_object", str(e)) from None
        raise Reject("bad_field", str(e)) from None
    except msgspec.DecodeError as e:
        raise Reject("invalid_json", str(e)) from None
    kind = _str(ev.eventType)
    if kind is None:
        raise Reject("missing_field", "eventType")
    login = kind == "user.session.start" or kind.startswith("user.authentication.")
    change = _CHANGES.get(kind)
    if not login and change is None:
        raise Skip("not_mapped", kind[:128])
    uuid = _str(ev.uuid)
    if uuid is None:
        raise Reject("missing_field", "uuid")
    published = _str(ev.published)
    if published is None:
        raise Reject("missing_field", "published")
    result = _str(ev.outcome.result) if ev.outcome is not None else None
    base: dict[str, Any] = {"event_id": f"okta-{uuid}", "ts": published, "source": NAME,
                            "okta_event_type": kind}
    if change is not None:
        if result not in _SUCCESS:
            raise Skip("not_final", f"{kind} {result}")
        who = None
        for t in ev.target or ():
            if t.type == "User":
                who = _str(t.alternateId) or _str(t.id)
                break
        if who is None:
            raise Reject("missing_field", "target of type User")
        return [{**base, "change": change, "principal_id": who}]
    actor = ev.actor
    account = (_str(actor.alternateId) or _str(actor.id)) if actor is not None else None
    if account is None or account == "unknown":
        raise Reject("missing_field", "actor.alternateId")
    if result in _SUCCESS:
        outcome = "success"
    elif result in _FAILURE:
        outcome = "failure"
    else:
        raise Skip("not_final", f"{kind} {result}")
    client = ev.client
    src = _str(client.ipAddress) if client is not None else None
    if src is None and ev.request is not None and ev.request.ipChain:
        src = _str(ev.request.ipChain[0].ip)
    if src is None:
        raise Reject("no_src_ip", "neither client.ipAddress nor request.ipChain")
    out: dict[str, Any] = {**base, "account_id": account, "outcome": outcome, "src_ip": src}
    ctx = ev.authenticationContext
    session = _str(ctx.externalSessionId) if ctx is not None else None
    if session is not None and session != "unknown":
        out["session_id"] = session
    elif outcome == "success":
        raise Reject("success_without_session", "authenticationContext.externalSessionId")
    cred = _str(ctx.credentialType) if ctx is not None else None
    method = ("sso" if kind == "user.authentication.sso" else
              "mfa" if kind == "user.authentication.auth_via_mfa" else _METHOD.get(cred or ""))
    if method is not None:
        out["method"] = method
    ua = _str(client.userAgent.rawUserAgent) if client is not None and client.userAgent else None
    if ua is not None:
        out["user_agent"] = ua[:1024]
    dev = _str(ev.device.id) if ev.device is not None else None
    if dev is not None:
        out["device_id"] = dev
    asn = ev.securityContext.asNumber if ev.securityContext is not None else None
    if isinstance(asn, int) and not isinstance(asn, bool) and 0 <= asn < 2**32:
        out["asn"] = asn
    return [out]
