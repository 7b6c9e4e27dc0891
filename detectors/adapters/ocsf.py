"""OCSF (Open Cybersecurity Schema Framework) events in, contract events out.

One OCSF event per record (a JSON object per line, as the OCSF tools and most SIEM exports
write them; ``frame`` also splits a file that is one pretty-printed event or a JSON array of
events). The class tells the contract kind:

| OCSF class | class_uid | contract event |
|---|---|---|
| Authentication | 3002 | login (activity Logon 1 or Authentication Ticket 3; others ``unsupported_event``) |
| API Activity | 6003 | data access |
| Web Resources Activity | 6001 | data access |
| Account Change | 3001 | identity change (Disable, Lock, Delete, Enable; others ``unsupported_event``) |

Any other class is ``unsupported_event``.

Field mapping (``a.b`` is a nested attribute; "or" is the fallback order):

| contract | OCSF |
|---|---|
| event_id | ``ocsf:`` + ``metadata.uid``, or ``ocsf:sha256:`` + a digest of the record |
| ts | ``time`` (epoch milliseconds), or ``time_dt`` |
| account_id (3002) | ``user.uid`` or ``user.name`` (placeholders such as ``NULL SID`` and ``-`` count as absent) |
| account_type (3002) | ``service`` when ``user.type_id`` is 3 (System), else ``employee`` |
| outcome (3002) | ``status_id`` 1 success, 2 failure; anything else ``unknown_outcome`` |
| src_ip | ``src_endpoint.ip`` |
| user_agent | ``http_request.user_agent`` (cut to 1,024 characters) |
| session_id (3002) | ``session.uid`` or ``actor.session.uid``; a success without one gets ``EVENT_ID#login`` |
| method (3002) | ``mfa`` when ``is_mfa``; ``sso`` for ``auth_protocol_id`` 4 OpenID, 5 SAML, 6 OAUTH 2.0 |
| actor_id (6003, 6001) | ``actor.user.uid`` or ``actor.user.name`` |
| actor_type (6003, 6001) | as account_type, from ``actor.user.type_id`` |
| subject_id (6003) | the first of ``resources``: its ``uid`` or ``name`` |
| subject_id (6001) | the first of ``web_resources``: its ``uid``, ``url_string`` or ``name``; else ``http_request.url.path`` (a subject over 256 characters, or with a control character, becomes ``sha256:`` + its digest) |
| resource | that resource's ``type``; else ``api.service.name`` (6003) or ``web`` (6001) |
| action | ``activity_id``: 6003 1 Create / 3 Update → update, 2 Read → read, 4 Delete → delete; 6001 adds 5 Search → search, 7 Export / 8 Share → export, 6 Import → update; other activities leave the contract default (read) |
| session_id (access) | ``actor.session.uid`` |
| token_issued_at | ``actor.session.created_time`` (epoch ms; 0 counts as absent) or ``created_time_dt`` |
| key_id | ``actor.user.credential_uid`` (an access key id) |
| change (3001) | ``activity_id`` 5 Disable / 9 Lock → principal_suspended, 6 Delete → principal_terminated, 2 Enable → principal_reinstated |
| principal_id (3001) | ``user.uid`` or ``user.name`` (the account changed) |

A data request whose ``status_id`` is 2 (Failure) is ``request_failed``: it read nothing. An
account change that failed (``status_id`` 2) is ``unsupported_event``: it did not happen.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from . import Reject
from ._jsonrec import (
    address,
    claim,
    dig,
    event_id,
    fitted,
    frame_wrapped,
    load_object,
    login_session,
    text,
    time_of,
    unwrap,
)

NAME = "ocsf"


def frame(stream: IO[bytes]) -> Iterator[bytes]:
    """One OCSF event per record: a file that is one pretty-printed OCSF event, or one
    JSON array of them (an export), is split; other files are read one per line."""
    return frame_wrapped(stream, (), unwrap)


AUTHENTICATION, ACCOUNT_CHANGE, WEB_RESOURCES, API_ACTIVITY = 3002, 3001, 6001, 6003
_LOGON_ACTIVITIES = {1, 3}  # Logon, Authentication Ticket
_SSO_PROTOCOLS = {4, 5, 6}  # OpenID, SAML, OAUTH 2.0
_PLACEHOLDERS = frozenset({"-", "NULL SID", "S-1-0-0", "unknown", "Unknown"})
_API_ACTIONS = {1: "update", 2: "read", 3: "update", 4: "delete"}
_WEB_ACTIONS = {1: "update", 2: "read", 3: "update", 4: "delete", 5: "search", 6: "update",
                7: "export", 8: "export"}
_CHANGES = {5: "principal_suspended", 9: "principal_suspended", 6: "principal_terminated",
            2: "principal_reinstated"}


def adapt(record: bytes) -> list[dict[str, Any]]:
    obj = load_object(record)
    cls = obj.get("class_uid")
    if type(cls) is not int:
        if cls is None:
            raise Reject("missing_field", "class_uid is absent: not an OCSF event")
        raise Reject("wrong_type", f"class_uid is a {type(cls).__name__}, not an integer")
    if cls == AUTHENTICATION:
        return [_login(obj)]
    if cls in (API_ACTIVITY, WEB_RESOURCES):
        return [_access(obj, cls)]
    if cls == ACCOUNT_CHANGE:
        return [_change(obj)]
    raise Reject("unsupported_event", f"class_uid {cls} is not Authentication, API Activity, "
                 "Web Resources Activity or Account Change")


# ---- shared --------------------------------------------------------------------------------
def _base(obj: dict[str, Any]) -> dict[str, Any]:
    eid = event_id("ocsf", dig(obj, "metadata", "uid"), obj, "metadata.uid")
    when = obj.get("time")
    ts = (time_of(when, "time", unit=1e-3) if when is not None
          else time_of(obj.get("time_dt"), "time_dt"))
    return {"event_id": eid, "ts": ts}


def _activity(obj: dict[str, Any]) -> int | None:
    a = obj.get("activity_id")
    if a is not None and type(a) is not int:
        raise Reject("wrong_type", f"activity_id is a {type(a).__name__}, not an integer")
    return a


def _status(obj: dict[str, Any]) -> int | None:
    s = obj.get("status_id")
    if s is not None and type(s) is not int:
        raise Reject("wrong_type", f"status_id is a {type(s).__name__}, not an integer")
    return s


def _who(user: Any, field: str) -> str:
    """A user object's identity: its uid, else its name (placeholders count as absent)."""
    if user is not None and not isinstance(user, dict):
        raise Reject("wrong_type", f"{field} is a {type(user).__name__}, not an object")
    for key in ("uid", "name"):
        v = dig(user, key)
        if type(v) is str and v in _PLACEHOLDERS:
            continue
        got = text(v, f"{field}.{key}", required=False, numbers=True)
        if got is not None:
            return got
    raise Reject("missing_field", f"{field}.uid and {field}.name are absent")


def _type_of(user: Any) -> str:
    return "service" if dig(user, "type_id") == 3 else "employee"


def _src(obj: dict[str, Any]) -> str:
    ip = dig(obj, "src_endpoint", "ip")
    if ip == "-":
        ip = None
    return address(ip, "src_endpoint.ip")


def _agent(obj: dict[str, Any], ev: dict[str, Any]) -> None:
    ua = claim(dig(obj, "http_request", "user_agent"))
    if ua is not None:
        ev["user_agent"] = ua


# ---- classes -------------------------------------------------------------------------------
def _login(obj: dict[str, Any]) -> dict[str, Any]:
    act = _activity(obj)
    if act not in _LOGON_ACTIVITIES:
        raise Reject("unsupported_event", f"Authentication activity_id {act} is not a logon")
    ev = _base(obj)
    user = obj.get("user")
    ev["account_id"] = _who(user, "user")
    ev["account_type"] = _type_of(user)
    status = _status(obj)
    if status not in (1, 2):
        raise Reject("unknown_outcome", f"status_id {status} is neither 1 (Success) nor 2 (Failure)")
    ev["outcome"] = "success" if status == 1 else "failure"
    ev["src_ip"] = _src(obj)
    _agent(obj, ev)
    sid = text(dig(obj, "session", "uid"), "session.uid", required=False, numbers=True)
    if sid is None:
        sid = text(dig(obj, "actor", "session", "uid"), "actor.session.uid", required=False,
                   numbers=True)
    if sid is not None:
        ev["session_id"] = sid
    elif ev["outcome"] == "success":
        ev["session_id"] = login_session(ev["event_id"])
    if obj.get("is_mfa") is True:
        ev["method"] = "mfa"
    elif type(obj.get("auth_protocol_id")) is int and obj["auth_protocol_id"] in _SSO_PROTOCOLS:
        ev["method"] = "sso"
    return ev


def _access(obj: dict[str, Any], cls: int) -> dict[str, Any]:
    if _status(obj) == 2:
        raise Reject("request_failed", "status_id 2 (Failure): the request read nothing")
    ev = _base(obj)
    actor_user = dig(obj, "actor", "user")
    ev["actor_id"] = _who(actor_user, "actor.user")
    ev["actor_type"] = _type_of(actor_user)
    key = "resources" if cls == API_ACTIVITY else "web_resources"
    items = obj.get(key)
    if items is not None and not isinstance(items, list):
        raise Reject("wrong_type", f"{key} is a {type(items).__name__}, not an array")
    first = items[0] if items else None
    if first is not None and not isinstance(first, dict):
        raise Reject("wrong_type", f"{key}[0] is a {type(first).__name__}, not an object")
    subject = None
    for attr in ("uid", "url_string", "name") if cls == WEB_RESOURCES else ("uid", "name"):
        subject = fitted(dig(first, attr), f"{key}[0].{attr}")
        if subject is not None:
            break
    if subject is None and cls == WEB_RESOURCES:
        subject = fitted(dig(obj, "http_request", "url", "path"), "http_request.url.path")
    if subject is None:
        raise Reject("missing_field", f"{key}: no resource names whose data was touched")
    ev["subject_id"] = subject
    kind = text(dig(first, "type"), f"{key}[0].type", required=False, limit=128)
    if kind is None:
        kind = (text(dig(obj, "api", "service", "name"), "api.service.name", required=False,
                     limit=128) if cls == API_ACTIVITY else "web")
    ev["resource"] = kind or "api"
    action = (_API_ACTIONS if cls == API_ACTIVITY else _WEB_ACTIONS).get(_activity(obj))  # type: ignore[arg-type]  # None: no key, no action
    if action is not None:
        ev["action"] = action
    ev["src_ip"] = _src(obj)
    _agent(obj, ev)
    session = dig(obj, "actor", "session")
    sid = text(dig(session, "uid"), "actor.session.uid", required=False, numbers=True)
    if sid is not None:
        ev["session_id"] = sid
    created = dig(session, "created_time")
    if type(created) in (int, float) and created > 0:
        ev["token_issued_at"] = time_of(created, "actor.session.created_time", unit=1e-3)
    elif dig(session, "created_time_dt") is not None:
        ev["token_issued_at"] = time_of(dig(session, "created_time_dt"),
                                        "actor.session.created_time_dt")
    kid = text(dig(actor_user, "credential_uid"), "actor.user.credential_uid", required=False)
    if kid is not None:
        ev["key_id"] = kid
    return ev


def _change(obj: dict[str, Any]) -> dict[str, Any]:
    act = _activity(obj)
    change = _CHANGES.get(act)  # type: ignore[arg-type]  # None: no key, no change
    if change is None:
        raise Reject("unsupported_event", f"Account Change activity_id {act} is not a "
                     "disable, lock, delete or enable")
    if _status(obj) == 2:
        raise Reject("unsupported_event", "status_id 2 (Failure): the change did not happen")
    ev = _base(obj)
    ev["change"] = change
    ev["principal_id"] = _who(obj.get("user"), "user")
    return ev
