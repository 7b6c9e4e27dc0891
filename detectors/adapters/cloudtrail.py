"""AWS CloudTrail records in, contract events out.

Input: the log files CloudTrail delivers to S3 (one JSON document ``{"Records": [...]}``, pretty
or not), the same documents one per line (a Kafka message per file, as the S3/SQS route sends
them), or one record per line (an EventBridge event, whose ``detail`` is the record, is read as
that record). ``frame`` splits any of these into single records, so each is adapted or rejected
on its own; ``adapt`` given a whole ``Records`` document returns the events of its usable
records (it has no way to report the others one by one: frame the document instead).

Which records become which events:

| record | contract event |
|---|---|
| ``ConsoleLogin`` (signin.amazonaws.com) | login; outcome from ``responseElements.ConsoleLogin`` |
| ``AssumeRole``, ``AssumeRoleWithSAML``, ``AssumeRoleWithWebIdentity``, ``GetSessionToken`` (sts.amazonaws.com) | login; failure when ``errorCode`` is set; the session it issues is the temporary access key |
| a data event (``eventCategory: Data``, or ``managementEvent: false`` in records older than 1.08), e.g. S3 ``GetObject`` | data access |
| ``DeleteAccessKey``, ``UpdateAccessKey`` to ``Inactive`` (iam.amazonaws.com) | identity change ``key_revoked`` |
| ``DeleteUser`` (iam.amazonaws.com) | identity change ``principal_terminated`` |
| any other management event | ``unsupported_event`` |

Field mapping:

| contract | CloudTrail |
|---|---|
| event_id | ``cloudtrail:`` + ``eventID`` (required) |
| ts | ``eventTime`` |
| account_id (ConsoleLogin, GetSessionToken) | ``userIdentity.arn``; without one (a failed console sign-in), ``arn:aws:iam::ACCOUNT:user/NAME`` from ``accountId`` and ``userName``, as a success would write it (AWS logs a user name that does not exist as ``HIDDEN_DUE_TO_SECURITY_REASONS``: such failures count as one account) |
| account_id (AssumeRole*) | ``responseElements.assumedRoleUser.arn``: the identity the issued credentials act as in later records; a failure: ``requestParameters.roleArn`` |
| account_type / actor_type | ``service`` when ``userIdentity.type`` is ``AWSService``, else ``employee`` |
| outcome | ConsoleLogin: ``responseElements.ConsoleLogin`` Success / Failure; sts: failure when ``errorCode`` is set |
| src_ip | ``sourceIPAddress`` (a service name there, as in calls AWS makes on a principal's behalf, is ``bad_value``) |
| user_agent | ``userAgent`` (cut to 1,024 characters) |
| session_id (sts login) | ``responseElements.credentials.accessKeyId``, the temporary key (``ASIA...``) later records present |
| session_id (ConsoleLogin) | the console session is not in the record: ``EVENT_ID#login`` |
| method | ConsoleLogin: ``mfa`` when ``additionalEventData.MFAUsed`` is Yes, else ``password``; AssumeRoleWithSAML / WithWebIdentity ``sso``; AssumeRole / GetSessionToken ``mfa`` with ``requestParameters.serialNumber``, else ``api_key`` |
| actor_id (data) | ``userIdentity.arn``, else ``principalId`` (an anonymous request is ``missing_field``) |
| subject_id (data) | the ARN of the record's object resource (``resources[].type`` ending ``::Object``), else its first resource, else ``arn:aws:s3:::BUCKET/KEY`` from ``requestParameters`` (an ARN over 256 characters, as an object key of up to 1,024 bytes makes it, becomes ``sha256:`` + its digest) |
| resource (data) | that resource's ``type`` (``AWS::S3::Object``), else ``eventSource`` |
| action (data) | ``readOnly: true`` or ``Get*``, ``Head*``, ``Select*`` → read; ``List*`` → search; ``Delete*`` → delete; other writes → update |
| key_id (data) | ``userIdentity.accessKeyId`` |
| session_id (data) | ``userIdentity.accessKeyId`` when it is temporary (``ASIA...``): the session an sts login issued |
| token_issued_at (data) | ``userIdentity.sessionContext.attributes.creationDate`` (extended or basic ISO 8601) |
| key_id (key_revoked) | ``requestParameters.accessKeyId`` |
| principal_id (principal_terminated) | ``arn:aws:iam::ACCOUNT:user/NAME`` from ``recipientAccountId`` and ``requestParameters.userName`` |

A data event with ``errorCode`` (AccessDenied, NoSuchKey) is ``request_failed``: it read nothing.
An identity change with ``errorCode`` did not happen: ``unsupported_event``.
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
    fitted,
    frame_wrapped,
    load_object,
    login_session,
    short,
    text,
    time_of,
    unwrap,
)

NAME = "cloudtrail"

_STS_LOGINS = frozenset({"AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity",
                         "GetSessionToken"})
_SSO = frozenset({"AssumeRoleWithSAML", "AssumeRoleWithWebIdentity"})
_READ_PREFIXES = ("Get", "Head", "Select")


# ---- framing -------------------------------------------------------------------------------
def frame(stream: IO[bytes]) -> Iterator[bytes]:
    """Single records out of a file or raw message: a ``Records`` document (pretty-printed or
    on one line) is split into its records; other JSON lines pass as they are (``adapt``
    judges them)."""
    return frame_wrapped(stream, (b'"Records"',), lambda doc: unwrap(doc, ("Records",)))


# ---- adapting ------------------------------------------------------------------------------
def adapt(record: bytes) -> list[dict[str, Any]]:
    obj = load_object(record, (b'"Records"',))
    recs = obj.get("Records")
    if recs is None:
        detail = obj.get("detail")
        if isinstance(detail, dict) and "detail-type" in obj:  # an EventBridge event
            return _one(detail)
        return _one(obj)
    if not isinstance(recs, list):
        raise Reject("wrong_type", f"Records is a {type(recs).__name__}, not an array")
    return adapt_many(recs, _one, "record")


def _one(r: dict[str, Any]) -> list[dict[str, Any]]:
    name = text(r.get("eventName"), "eventName", limit=128)
    source = text(r.get("eventSource"), "eventSource", limit=128)
    base = {"event_id": event_id("cloudtrail", r.get("eventID"), r, "eventID"),
            "ts": time_of(r.get("eventTime"), "eventTime")}
    if base["event_id"].startswith("cloudtrail:sha256:"):
        raise Reject("missing_field", "eventID is absent")
    if name == "ConsoleLogin" and source == "signin.amazonaws.com":
        return [_console_login(r, base)]
    if name in _STS_LOGINS and source == "sts.amazonaws.com":
        return [_sts_login(r, name, base)]
    category = r.get("eventCategory")
    if category == "Data" or (category is None and r.get("managementEvent") is False):
        return [_data(r, name, source, base)]
    if source == "iam.amazonaws.com" and name in ("DeleteAccessKey", "UpdateAccessKey",
                                                   "DeleteUser"):
        return [_identity(r, name, base)]
    raise Reject("unsupported_event", f"{name} from {source} is neither a login, a data event "
                 "nor a key or user removal")


def _who(r: dict[str, Any]) -> str:
    ui = r.get("userIdentity")
    if not isinstance(ui, dict):
        raise Reject("missing_field" if ui is None else "wrong_type",
                     "userIdentity is absent" if ui is None else "userIdentity is not an object")
    arn = text(ui.get("arn"), "userIdentity.arn", required=False)
    if arn is not None:
        return arn
    acct = text(ui.get("accountId"), "userIdentity.accountId", required=False, numbers=True)
    user = text(ui.get("userName"), "userIdentity.userName", required=False)
    kind = ui.get("type")
    if kind == "IAMUser" and acct and user:
        return f"arn:aws:iam::{acct}:user/{user}"
    if kind == "Root" and acct:
        return f"arn:aws:iam::{acct}:root"
    pid = text(ui.get("principalId"), "userIdentity.principalId", required=False)
    if pid is not None and acct != "ANONYMOUS_PRINCIPAL":
        return pid
    raise Reject("missing_field", "userIdentity names no principal (arn, userName, principalId): "
                 "an anonymous request has no actor")


def _type(r: dict[str, Any]) -> str:
    return "service" if dig(r, "userIdentity", "type") == "AWSService" else "employee"


def _src(r: dict[str, Any]) -> str:
    ip = r.get("sourceIPAddress")
    try:
        return address(ip, "sourceIPAddress")
    except Reject as e:
        if e.reason == "bad_value" and type(ip) is str and (
                ip.endswith(".amazonaws.com") or ip == "AWS Internal"):
            raise Reject("bad_value", f"sourceIPAddress {short(ip)} names a service, not an "
                         "address (a call AWS made on a principal's behalf)") from None
        raise


def _agent(r: dict[str, Any], ev: dict[str, Any]) -> None:
    ua = claim(r.get("userAgent"))
    if ua is not None:
        ev["user_agent"] = ua


def _console_login(r: dict[str, Any], ev: dict[str, Any]) -> dict[str, Any]:
    result = dig(r, "responseElements", "ConsoleLogin")
    if result == "Success" and r.get("errorCode") is None:
        outcome = "success"
    elif result == "Failure" or r.get("errorMessage") is not None:
        outcome = "failure"
    else:
        raise Reject("unknown_outcome", f"responseElements.ConsoleLogin is {short(result)}")
    ev["account_id"] = _who(r)
    ev["account_type"] = _type(r)
    ev["outcome"] = outcome
    ev["src_ip"] = _src(r)
    _agent(r, ev)
    if outcome == "success":
        ev["session_id"] = login_session(ev["event_id"])
    ev["method"] = "mfa" if dig(r, "additionalEventData", "MFAUsed") == "Yes" else "password"
    return ev


def _sts_login(r: dict[str, Any], name: str, ev: dict[str, Any]) -> dict[str, Any]:
    failed = r.get("errorCode") is not None
    if name == "GetSessionToken":
        account = _who(r)
    elif failed:
        account = text(dig(r, "requestParameters", "roleArn"), "requestParameters.roleArn")
    else:
        account = text(dig(r, "responseElements", "assumedRoleUser", "arn"),
                       "responseElements.assumedRoleUser.arn")
    ev["account_id"] = account
    ev["account_type"] = _type(r)
    ev["outcome"] = "failure" if failed else "success"
    ev["src_ip"] = _src(r)
    _agent(r, ev)
    if not failed:
        key = text(dig(r, "responseElements", "credentials", "accessKeyId"),
                   "responseElements.credentials.accessKeyId", required=False)
        ev["session_id"] = key if key is not None else login_session(ev["event_id"])
    if name in _SSO:
        ev["method"] = "sso"
    elif dig(r, "requestParameters", "serialNumber") is not None:
        ev["method"] = "mfa"
    else:
        ev["method"] = "api_key"
    return ev


def _subject(r: dict[str, Any]) -> tuple[str, str | None]:
    res = r.get("resources")
    if res is not None and not isinstance(res, list):
        raise Reject("wrong_type", f"resources is a {type(res).__name__}, not an array")
    items = [x for x in res or () if isinstance(x, dict)]
    pick = next((x for x in items if str(x.get("type", "")).endswith("::Object")), None)
    pick = pick or (items[0] if items else None)
    if pick is not None:
        arn = fitted(pick.get("ARN"), "resources[].ARN")
        if arn is not None:
            return arn, text(pick.get("type"), "resources[].type", required=False, limit=128)
    bucket = dig(r, "requestParameters", "bucketName")
    key = dig(r, "requestParameters", "key")
    if type(bucket) is str and bucket and type(key) is str and key:
        return fitted(f"arn:aws:s3:::{bucket}/{key}", "requestParameters.key"), "AWS::S3::Object"  # type: ignore[return-value]  # fitted() of a non-empty str is one
    raise Reject("missing_field", "resources and requestParameters name no object that was read")


def _data(r: dict[str, Any], name: str, source: str, ev: dict[str, Any]) -> dict[str, Any]:
    if r.get("errorCode") is not None:
        raise Reject("request_failed", f"errorCode {short(r.get('errorCode'))}: it read nothing")
    ev["actor_id"] = _who(r)
    ev["actor_type"] = _type(r)
    subject, kind = _subject(r)
    ev["subject_id"] = subject
    ev["resource"] = kind or source
    if r.get("readOnly") is True or name.startswith(_READ_PREFIXES):
        action = "read"
    elif name.startswith("List"):
        action = "search"
    elif name.startswith("Delete"):
        action = "delete"
    else:
        action = "update"
    ev["action"] = action
    ev["src_ip"] = _src(r)
    _agent(r, ev)
    key = text(dig(r, "userIdentity", "accessKeyId"), "userIdentity.accessKeyId", required=False)
    if key is not None:
        ev["key_id"] = key
        if key.startswith("ASIA"):
            ev["session_id"] = key
    created = dig(r, "userIdentity", "sessionContext", "attributes", "creationDate")
    if created is not None:
        ev["token_issued_at"] = time_of(created, "userIdentity.sessionContext.attributes."
                                        "creationDate")
    return ev


def _identity(r: dict[str, Any], name: str, ev: dict[str, Any]) -> dict[str, Any]:
    if r.get("errorCode") is not None:
        raise Reject("unsupported_event", f"{name} failed ({short(r.get('errorCode'))}): "
                     "nothing changed")
    params = r.get("requestParameters")
    if name == "DeleteUser":
        acct = text(r.get("recipientAccountId"), "recipientAccountId", numbers=True)
        user = text(dig(params, "userName"), "requestParameters.userName")
        ev["change"] = "principal_terminated"
        ev["principal_id"] = text(f"arn:aws:iam::{acct}:user/{user}", "requestParameters.userName")
        return ev
    if name == "UpdateAccessKey" and dig(params, "status") != "Inactive":
        raise Reject("unsupported_event", f"UpdateAccessKey to {short(dig(params, 'status'))} "
                     "revokes nothing")
    ev["change"] = "key_revoked"
    ev["key_id"] = text(dig(params, "accessKeyId"), "requestParameters.accessKeyId")
    return ev
