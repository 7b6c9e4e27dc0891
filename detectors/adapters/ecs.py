"""Elastic Common Schema (ECS) documents in, contract events out.

One ECS document per record (a JSON object per line, as Filebeat's and Elastic Agent's Kafka
and file outputs write them; ``frame`` also splits a file that is one pretty-printed document or a
JSON array of documents). Fields may be nested (``{"source": {"ip": ...}}``)
or flattened with dots (``{"source.ip": ...}``), as Beats' own test fixtures are; both are read.
``event.category`` (a string or an array) tells the kind:

| event.category | contract event |
|---|---|
| ``authentication`` | login |
| ``web`` or ``api`` | data access |
| anything else (``iam``, ``process``, none) | ``unsupported_event`` |

Field mapping ("or" is the fallback order):

| contract | ECS |
|---|---|
| event_id | ``ecs:`` + ``event.id``, or ``ecs:sha256:`` + a digest of the document (two identical documents are one event: keep ``log.offset`` or ``event.id`` in them) |
| ts | ``@timestamp`` |
| account_id / actor_id | ``user.name`` or ``user.id`` or ``user.email`` (``-``, as web servers log "no user", counts as absent) |
| account_type / actor_type | not set: the contract's default, ``customer`` (ECS does not say whose users they are) |
| outcome | ``event.outcome`` success / failure; ``unknown`` or absent is ``unknown_outcome`` |
| src_ip | ``source.ip`` or ``client.ip`` |
| user_agent | ``user_agent.original`` (cut to 1,024 characters) |
| session_id (login) | ECS has no session field: a success gets ``EVENT_ID#login`` |
| subject_id (access) | ``url.path`` (or ``url.original`` without its query); a path over 256 characters, or with a character that is not printable, becomes ``sha256:`` + its digest. ECS does not say whose data a URL holds: the path, which carries the account id in a REST API, stands for it. To take ``subject_id`` from a URL template or a header, use the ``mapping`` format |
| resource | the path's first segment (``/customers/123/address`` → ``customers``), ``/`` for the root |
| action | ``http.request.method``: GET, HEAD → read; PUT, PATCH, POST → update; DELETE → delete |

A web request without an authenticated user is ``missing_field`` (an anonymous request has no
actor). One that failed (``event.outcome: failure``, or ``http.response.status_code`` 400 or
more) is ``request_failed``: it returned no data.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from . import Reject
from ._jsonrec import (
    address,
    claim,
    event_id,
    fitted,
    frame_wrapped,
    load_object,
    login_session,
    text,
    time_of,
    unwrap,
)

NAME = "ecs"


def frame(stream: IO[bytes]) -> Iterator[bytes]:
    """One ECS document per record: a file that is one pretty-printed ECS document, or one
    JSON array of them (an export), is split; other files are read one per line."""
    return frame_wrapped(stream, (), unwrap)


_NO_USER = frozenset({"-", ""})
_ACTIONS = {"GET": "read", "HEAD": "read", "PUT": "update", "PATCH": "update", "POST": "update",
            "DELETE": "delete"}


def get(obj: Any, path: str) -> Any:
    """An ECS field by its dotted name, whether the document nests it, flattens it with dots,
    or mixes both (``{"source": {"geo.country_iso_code": ...}}``)."""
    if not isinstance(obj, dict):
        return None
    if path in obj:
        return obj[path]
    parts = path.split(".")
    for i in range(1, len(parts)):
        head = ".".join(parts[:i])
        if head in obj:
            got = get(obj[head], ".".join(parts[i:]))
            if got is not None:
                return got
    return None


def adapt(record: bytes) -> list[dict[str, Any]]:
    obj = load_object(record)
    cats = get(obj, "event.category")
    if isinstance(cats, str):
        cats = [cats]
    if cats is None:
        raise Reject("unsupported_event", "event.category is absent")
    if not isinstance(cats, list):
        raise Reject("wrong_type", f"event.category is a {type(cats).__name__}, not a string "
                     "or an array")
    if "authentication" in cats:
        return [_login(obj)]
    if "web" in cats or "api" in cats:
        return [_access(obj)]
    raise Reject("unsupported_event", "event.category has neither authentication, web nor api")


def _base(obj: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": event_id("ecs", get(obj, "event.id"), obj, "event.id"),
            "ts": time_of(get(obj, "@timestamp"), "@timestamp")}


def _user(obj: dict[str, Any]) -> str | None:
    for field in ("user.name", "user.id", "user.email"):
        v = get(obj, field)
        if type(v) is str and v in _NO_USER:
            continue
        got = text(v, field, required=False, numbers=True)
        if got is not None:
            return got
    return None


def _source(obj: dict[str, Any]) -> str:
    ip = get(obj, "source.ip")
    if ip is None:
        ip = get(obj, "client.ip")
        return address(ip, "client.ip" if ip is not None else "source.ip")
    return address(ip, "source.ip")


def _agent(obj: dict[str, Any], ev: dict[str, Any]) -> None:
    ua = claim(get(obj, "user_agent.original"))
    if ua is not None and ua != "-":
        ev["user_agent"] = ua


def _login(obj: dict[str, Any]) -> dict[str, Any]:
    ev = _base(obj)
    who = _user(obj)
    if who is None:
        raise Reject("missing_field", "user.name, user.id and user.email are absent")
    ev["account_id"] = who
    outcome = get(obj, "event.outcome")
    if outcome not in ("success", "failure"):
        raise Reject("unknown_outcome", f"event.outcome is {outcome!r}, not success or failure")
    ev["outcome"] = outcome
    ev["src_ip"] = _source(obj)
    _agent(obj, ev)
    if outcome == "success":
        ev["session_id"] = login_session(ev["event_id"])
    return ev


def _path(obj: dict[str, Any]) -> str | None:
    p = get(obj, "url.path")
    if p is None:
        orig = get(obj, "url.original")
        if type(orig) is str:
            p = orig.split("?", 1)[0].split("#", 1)[0]
    if p is None or p == "":
        return None
    if type(p) is not str:
        raise Reject("wrong_type", f"url.path is a {type(p).__name__}, not a string")
    return p


def _access(obj: dict[str, Any]) -> dict[str, Any]:
    status = get(obj, "http.response.status_code")
    if type(status) is str and status.isdigit() and len(status) <= 3:  # an HTTP status
        status = int(status)
    if get(obj, "event.outcome") == "failure" or (type(status) is int and status >= 400):
        raise Reject("request_failed", f"the request failed (status {status}): it read nothing")
    ev = _base(obj)
    who = _user(obj)
    if who is None:
        raise Reject("missing_field", "user.name, user.id and user.email are absent: an "
                     "anonymous request has no actor")
    ev["actor_id"] = who
    path = _path(obj)
    subject = fitted(path, "url.path")
    if path is None or subject is None:
        raise Reject("missing_field", "url.path and url.original are absent or blank")
    ev["subject_id"] = subject
    ev["resource"] = fitted(path.strip("/").split("/", 1)[0], "url.path", 128) or "/"
    method = get(obj, "http.request.method")
    action = _ACTIONS.get(method.upper()) if type(method) is str else None
    if action is not None:
        ev["action"] = action
    ev["src_ip"] = _source(obj)
    _agent(obj, ev)
    return ev
