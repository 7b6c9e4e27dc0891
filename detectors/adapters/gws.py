"""Google Workspace login audit (Admin SDK Reports API, application ``login``) in, contract
logins out.

Input: Reports API ``activity`` resources (``activities.list?applicationName=login``), one per
line, or whole list responses ``{"kind": "admin#reports#activities", "items": [...]}``, which
``frame`` splits into activities. An activity's ``events`` is an array (as the API returns it) or
a single object (as log shippers that split activities by event write it); each
``login_success`` or ``login_failure`` event in it becomes one login. An activity with neither
(``logout``, ``login_challenge``, ``login_verification``, ``suspicious_login``, account warnings,
...) is ``unsupported_event``, naming its events; one from another application is
``unsupported_event`` too.

Field mapping:

| contract | activity |
|---|---|
| event_id | ``gws:`` + ``id.time`` + ``:`` + ``id.uniqueQualifier`` (the API's key for an activity), plus ``:N`` for the N-th login event of an activity that holds more than one |
| ts | ``id.time`` |
| account_id | ``actor.email``, else ``actor.profileId`` |
| account_type | ``employee`` (Workspace accounts are the organisation's) |
| outcome | event ``name``: login_success → success, login_failure → failure |
| src_ip | ``ipAddress`` |
| session_id | the login audit names no session: a success gets ``EVENT_ID#login`` |
| method | parameter ``login_type`` ``saml`` → sso; a ``login_challenge_method`` other than ``password`` (a second factor) → mfa; ``password`` → password; else none |
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from . import Reject
from ._jsonrec import (
    adapt_many,
    address,
    dig,
    frame_wrapped,
    load_object,
    login_session,
    short,
    text,
    time_of,
    unwrap,
)

NAME = "gws"

_OUTCOMES = {"login_success": "success", "login_failure": "failure"}
MAX_EVENTS = 1000


def frame(stream: IO[bytes]) -> Iterator[bytes]:
    """One activity per record: list responses (``items``) are split."""
    return frame_wrapped(stream, (b'"items"',), lambda doc: unwrap(doc, ("items",)))


def adapt(record: bytes) -> list[dict[str, Any]]:
    obj = load_object(record, (b'"items"',))
    items = obj.get("items")
    if isinstance(items, list) and "events" not in obj:
        return adapt_many(items, _activity, "activity")
    return _activity(obj)


def _param(event: dict[str, Any], name: str) -> Any:
    params = event.get("parameters")
    if not isinstance(params, list):
        return None
    for p in params:
        if isinstance(p, dict) and p.get("name") == name:
            for key in ("value", "multiValue", "boolValue", "intValue"):
                if key in p:
                    return p[key]
    return None


def _method(event: dict[str, Any]) -> str | None:
    if _param(event, "login_type") == "saml":
        return "sso"
    challenge = _param(event, "login_challenge_method")
    methods = challenge if isinstance(challenge, list) else [challenge]
    methods = [m for m in methods if type(m) is str]
    if any(m != "password" for m in methods):
        return "mfa"
    return "password" if methods else None


def _activity(obj: dict[str, Any]) -> list[dict[str, Any]]:
    app = dig(obj, "id", "applicationName")
    if app != "login":
        raise Reject("unsupported_event", f"id.applicationName is {short(app)}, not login")
    events = obj.get("events")
    if isinstance(events, dict):
        events = [events]
    if not isinstance(events, list):
        raise Reject("missing_field" if events is None else "wrong_type",
                     "events is absent" if events is None else "events is not an array")
    if len(events) > MAX_EVENTS:
        raise Reject("too_large", f"{len(events):,} events in one activity (at most {MAX_EVENTS})")
    logins = [e for e in events
              if isinstance(e, dict) and type(e.get("name")) is str and e["name"] in _OUTCOMES]
    if not logins:
        names = sorted({str(e.get("name"))[:40] for e in events if isinstance(e, dict)})
        raise Reject("unsupported_event", "no login_success or login_failure event (events: "
                     f"{', '.join(names[:5]) or 'none'})")
    when = dig(obj, "id", "time")
    ts = time_of(when, "id.time")
    qualifier = text(dig(obj, "id", "uniqueQualifier"), "id.uniqueQualifier", numbers=True,
                     limit=64)
    base_id = text(f"gws:{when}:{qualifier}", "id")
    actor = None
    for field in ("email", "profileId"):
        actor = text(dig(obj, "actor", field), f"actor.{field}", required=False, numbers=True)
        if actor is not None:
            break
    if actor is None:
        raise Reject("missing_field", "actor.email and actor.profileId are absent")
    src = address(obj.get("ipAddress"), "ipAddress")
    out = []
    for i, e in enumerate(logins):
        eid = base_id if len(logins) == 1 else f"{base_id}:{i}"
        ev: dict[str, Any] = {"event_id": eid, "ts": ts, "account_id": actor,
                              "account_type": "employee", "outcome": _OUTCOMES[e["name"]],
                              "src_ip": src}
        if ev["outcome"] == "success":
            ev["session_id"] = login_session(eid)
        m = _method(e)
        if m is not None:
            ev["method"] = m
        out.append(ev)
    return out
