"""mapping: a team's own JSON access logs (API gateway, nginx, Envoy, Kong, an app) as data access.

A mapping file (TOML) says where each contract field is in one log record, and which URL
paths read a customer's data. ``from_file(path)`` reads it and returns the adapter;
``--format mapping:FILE`` on the command line. Example::

    name = "gateway"                      # shown in summaries (default: the file's name)

    [fields]                              # contract field = dotted path in the record
    ts = "time"                           # RFC 3339 or epoch seconds (a number or digits)
    actor_id = "jwt.sub"                  # whose credential made the request (required)
    src_ip = "client_ip"                  # required
    path = "request.uri"                  # the URL path (query string ignored; required)
    session_id = "jwt.sid"                # optional from here on
    key_id = "jwt.kid"
    token_issued_at = "jwt.iat"
    user_agent = "request.headers.user-agent"
    method = "request.method"             # GET -> read, PUT/PATCH/POST -> update, DELETE -> delete
    status = "response.status"            # responses >= skip_status_from touched no data
    event_id = "request_id"               # default: a digest of the record and its position
    subject_id = "request.headers.x-customer-id"   # fallback when a route has no {subject_id}

    [options]
    skip_status_from = 400                # default 400; 0 keeps every response
    actor_type = "customer"               # customer / employee / service (default: not sent)
    time_unit = "s"                       # "ms" for epoch milliseconds (Kong's started_at)

    [[routes]]                            # the first template that matches the path wins
    template = "/customers/{subject_id}/address"
    resource = "address"                  # required
    [[routes]]
    template = "/orders/{order_id}"       # placeholders other than subject_id match any segment
    resource = "order_history"
    subject_header = "request.headers.x-customer-id"   # subject from this field instead
    action = "read"                       # overrides the method's action

A path is a dotted string (``"request.headers.user-agent"``) or a list of keys for names that
contain dots (``["kubernetes", "labels", "app.kubernetes.io/name"]``).

Records: one JSON object per line. Skipped (counted): ``no_route`` (a path no template
matches: a health check, a static file), ``not_served`` (a response at or above
``skip_status_from``). Rejected: ``invalid_json``, ``not_an_object``, ``missing_field``
(ts, actor_id, src_ip, path, subject_id), ``bad_field`` (a value of the wrong type).

A bad mapping file is a ValueError with one readable line.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from functools import partial
from hashlib import blake2b
from typing import Any, Protocol
from urllib.parse import unquote

import msgspec

from . import Adapter, Reject, Skip

NAME = "mapping"

_REQUIRED = ("ts", "actor_id", "src_ip", "path")
_OPTIONAL = ("session_id", "key_id", "token_issued_at", "user_agent", "method", "status",
             "event_id", "subject_id", "records", "country", "asn")
_ACTIONS = {"GET": "read", "HEAD": "read", "POST": "update", "PUT": "update",
            "PATCH": "update", "DELETE": "delete"}
_CONTRACT_ACTIONS = ("read", "search", "export", "update", "delete")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Route:
    template: str
    pattern: re.Pattern[str]
    resource: str
    subject_header: tuple[str, ...] | None
    action: str | None


@dataclass(frozen=True)
class Mapping:
    name: str
    fields: dict[str, tuple[str, ...]]
    routes: tuple[Route, ...]
    skip_status_from: int
    actor_type: str | None
    time_scale: float = 1.0
    #: the optional text and integer fields this mapping names, ``(field, path)``: the
    #: per-record loop reads only those (precomputed: the adapter's cost is per record)
    texts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    ints: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _path(where: str, v: Any) -> tuple[str, ...]:
    if isinstance(v, str) and v and all(v.split(".")):
        return tuple(v.split("."))
    if isinstance(v, list) and v and all(isinstance(p, str) and p for p in v):
        return tuple(v)
    raise ValueError(f"{where} must be a dotted path or a list of keys, not {v!r}")


def _template(where: str, t: Any) -> re.Pattern[str]:
    if not isinstance(t, str) or not t.startswith("/"):
        raise ValueError(f"{where}.template must be a path starting with /, not {t!r}")
    out, last = [], 0
    names = set()
    for m in _PLACEHOLDER.finditer(t):
        out.append(re.escape(t[last:m.start()]))
        name = m.group(1)
        if name in names:
            raise ValueError(f"{where}.template names {{{name}}} twice")
        names.add(name)
        out.append(f"(?P<{name}>[^/]+)")
        last = m.end()
    rest = t[last:]
    bare = _PLACEHOLDER.sub("", t)
    if "{" in bare or "}" in bare:
        raise ValueError(f"{where}.template has a brace that is not a {{name}}: {t!r}")
    out.append(re.escape(rest.rstrip("/")))
    return re.compile("^" + "".join(out) + "/?$")


def parse(doc: dict[str, Any], name: str) -> Mapping:
    """The mapping of a parsed TOML document (raises ValueError naming the problem)."""
    unknown = set(doc) - {"name", "fields", "options", "routes"}
    if unknown:
        raise ValueError(f"unknown table or key {sorted(unknown)[0]!r} (expected name, fields, "
                         "options, routes)")
    fields_doc = doc.get("fields")
    if not isinstance(fields_doc, dict):
        raise ValueError("missing [fields] table")
    fields: dict[str, tuple[str, ...]] = {}
    for k, v in fields_doc.items():
        if k not in _REQUIRED and k not in _OPTIONAL:
            raise ValueError(f"[fields] has unknown field {k!r} (known: "
                             f"{', '.join(_REQUIRED + _OPTIONAL)})")
        fields[k] = _path(f"fields.{k}", v)
    for k in _REQUIRED:
        if k not in fields:
            raise ValueError(f"[fields] needs {k!r}")
    opts = doc.get("options", {})
    if not isinstance(opts, dict):
        raise ValueError("[options] must be a table")
    bad = set(opts) - {"skip_status_from", "actor_type", "time_unit"}
    if bad:
        raise ValueError(f"[options] has unknown key {sorted(bad)[0]!r}")
    skip_from = opts.get("skip_status_from", 400)
    if not isinstance(skip_from, int) or isinstance(skip_from, bool) or skip_from < 0:
        raise ValueError(f"options.skip_status_from must be an integer >= 0, not {skip_from!r}")
    actor_type = opts.get("actor_type")
    if actor_type is not None and actor_type not in ("customer", "employee", "service"):
        raise ValueError(f"options.actor_type must be customer, employee or service, "
                         f"not {actor_type!r}")
    unit = opts.get("time_unit", "s")
    if unit not in ("s", "ms"):
        raise ValueError(f"options.time_unit must be \"s\" or \"ms\", not {unit!r}")
    routes_doc = doc.get("routes")
    if not isinstance(routes_doc, list) or not routes_doc:
        raise ValueError("needs at least one [[routes]] entry")
    routes = []
    for i, r in enumerate(routes_doc, 1):
        where = f"routes[{i}]"
        if not isinstance(r, dict):
            raise ValueError(f"{where} must be a table")
        bad = set(r) - {"template", "resource", "subject_header", "action"}
        if bad:
            raise ValueError(f"{where} has unknown key {sorted(bad)[0]!r}")
        pattern = _template(where, r.get("template"))
        resource = r.get("resource")
        if not isinstance(resource, str) or not resource or len(resource) > 128:
            raise ValueError(f"{where}.resource must be a name (e.g. address), not {resource!r}")
        header = _path(f"{where}.subject_header", r["subject_header"]) \
            if "subject_header" in r else None
        if ("subject_id" not in pattern.groupindex and header is None
                and "subject_id" not in fields):
            raise ValueError(f"{where}: no subject: the template has no {{subject_id}} and "
                             "neither subject_header nor fields.subject_id is given")
        action = r.get("action")
        if action is not None and action not in _CONTRACT_ACTIONS:
            raise ValueError(f"{where}.action must be one of {', '.join(_CONTRACT_ACTIONS)}, "
                             f"not {action!r}")
        routes.append(Route(r["template"], pattern, resource, header, action))
    label = doc.get("name", name)
    if not isinstance(label, str) or not label:
        raise ValueError(f"name must be a string, not {label!r}")
    return Mapping(label, fields, tuple(routes), skip_from, actor_type,
                   0.001 if unit == "ms" else 1.0,
                   tuple((k, fields[k]) for k in ("session_id", "key_id", "user_agent",
                                                  "country") if k in fields),
                   tuple((k, fields[k]) for k in ("asn", "records") if k in fields))


def from_file(path: str) -> Adapter:
    """The adapter a mapping file describes. Raises ValueError with one readable line."""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise ValueError(f"mapping file not found: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"mapping file is a directory: {path}") from None
    except OSError as e:
        raise ValueError(f"cannot read mapping file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"mapping file {path}: not valid TOML: {e}") from None
    try:
        m = parse(doc, os.path.splitext(os.path.basename(path))[0])
    except ValueError as e:
        raise ValueError(f"mapping file {path}: {e}") from None
    at = compile_mapping(m)
    return Adapter(name=f"mapping:{m.name}", adapt=partial(at, position=0), adapt_at=at)


def _text(v: Any, name: str) -> str:
    if isinstance(v, str) and v:
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    raise Reject("bad_field", f"{name} must be a string")


def _time(v: Any, name: str, scale: float) -> Any:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v * scale if scale != 1.0 else v
    if isinstance(v, str):
        if ":" in v:  # RFC 3339 (never a number: spares float() its exception per record)
            return v
        try:
            return float(v) * scale  # nginx $msec, epoch seconds as text
        except ValueError:
            return v  # the engine validates it
    raise Reject("bad_field", f"{name} must be a time")


def _walk(v: Any, rest: tuple[str, ...]) -> Any:
    """A nested path's value below its top-level member (None where a step is no object)."""
    for k in rest:
        if not isinstance(v, dict):
            return None
        v = v.get(k)
    return v


class _AdaptAt(Protocol):
    """A compiled mapping: ``position`` is passed by name too (``partial``)."""

    def __call__(self, record: bytes, position: int) -> list[dict[str, Any]]: ...


def adapt_at(m: Mapping, record: bytes, position: int) -> list[dict[str, Any]]:
    """One access log record to one data-access event (or a Skip / Reject)."""
    return compile_mapping(m)(record, position)


def compile_mapping(m: Mapping) -> _AdaptAt:
    """The mapping's per-record function: one access log record (and its position) to one
    data-access event, or a Skip / Reject.

    Built once per mapping because its cost is paid per record (``replay --format`` is to
    add at most 30% to ``replay``'s cost per event, bench/bench_format.py): msgspec decodes
    only the record's top-level members the mapping names (a Struct made for them: the
    others are skipped, not built as Python objects), each field's place is resolved to an
    index, and the optional fields are read in one loop over precomputed places. A record
    that is no JSON is ``invalid_json``, one that is no object ``not_an_object``. (msgspec
    checks UTF-8 in the members it reads; bytes that are not UTF-8 inside a member the
    mapping does not name do not reject the record: nothing of them reaches an event.)
    """
    f = m.fields
    named = list(dict.fromkeys(
        [*f.values(), *(r.subject_header for r in m.routes if r.subject_header)]))
    tops = list(dict.fromkeys(p[0] for p in named))
    record_type = msgspec.defstruct(
        "MappedRecord", [(f"f{i}", Any, None) for i in range(len(tops))],
        rename={f"f{i}": k for i, k in enumerate(tops)}, gc=False)
    decode = msgspec.json.Decoder(record_type).decode
    astuple = msgspec.structs.astuple

    # each named path's index in the values of a record: the decoded members themselves when
    # every path is one key (the usual flat log record), else each path walked from its member
    flat = all(len(p) == 1 for p in named)
    walks = tuple((tops.index(p[0]), p[1:]) for p in named)

    def place(p: tuple[str, ...]) -> int:
        return named.index(p)

    path_at, ts_at, actor_at, ip_at = (place(f[k]) for k in ("path", "ts", "actor_id", "src_ip"))
    status_at = place(f["status"]) if "status" in f else None
    method_at = place(f["method"]) if "method" in f else None
    iat_at = place(f["token_issued_at"]) if "token_issued_at" in f else None
    event_at = place(f["event_id"]) if "event_id" in f else None
    subject_at = place(f["subject_id"]) if "subject_id" in f else None
    texts = tuple((k, place(p)) for k, p in m.texts)
    ints = tuple((k, place(p)) for k, p in m.ints)
    routes = tuple((r.pattern.match, "subject_id" in r.pattern.groupindex,
                    place(r.subject_header) if r.subject_header else subject_at,
                    r.resource, r.action) for r in m.routes)
    name, scale, skip_from, actor_type = m.name, m.time_scale, m.skip_status_from, m.actor_type
    prefix = f"{name}-"
    digest = blake2b(digest_size=10, person=b"accesswatch-map").copy

    def adapt(record: bytes, position: int) -> list[dict[str, Any]]:
        # Each value is first tested for the usual case, a non-empty str, inline (one type
        # test, no call); anything else takes the general path (_text, _time), which gives
        # the same results and the same reasons: this is only the cost per record.
        try:
            vals = astuple(decode(record))
            if not flat:
                vals = tuple(_walk(vals[i], rest) for i, rest in walks)
        except msgspec.ValidationError as e:  # valid JSON, but not an object
            raise Reject("not_an_object", str(e)) from None
        except msgspec.DecodeError as e:
            raise Reject("invalid_json", str(e)) from None
        except RecursionError:  # nesting deeper than the interpreter follows
            raise Reject("invalid_json", "nested too deep") from None
        url = vals[path_at]
        if type(url) is not str or not url:
            if url is None:
                raise Reject("missing_field", "path")
            url = _text(url, "path")
        cut = url.find("?")  # the query string and the fragment are not the path
        if cut >= 0:
            url = url[:cut]
        cut = url.find("#")
        if cut >= 0:
            url = url[:cut]
        for route in routes:
            got = route[0](url)
            if got is not None:
                break
        else:
            raise Skip("no_route", url[:256])
        _, by_template, subject_where, resource, action = route
        if status_at is not None:
            status = vals[status_at]
            try:
                code = int(status) if status is not None else None
            except (TypeError, ValueError):
                raise Reject("bad_field", "status must be a number") from None
            if code is not None and skip_from and code >= skip_from:
                raise Skip("not_served", str(code))
        if by_template:
            subject = got.group("subject_id")
            if "%" in subject:
                subject = unquote(subject)
        else:
            v = None if subject_where is None else vals[subject_where]
            if v is None:
                raise Reject("missing_field", "subject_id")
            subject = v if type(v) is str and v else _text(v, "subject_id")
        ts = vals[ts_at]
        if type(ts) is not str or ":" not in ts:  # not RFC 3339 text: the general path
            if ts is None or ts == "":
                raise Reject("missing_field", "ts")
            ts = _time(ts, "ts", scale)
        actor = vals[actor_at]
        if type(actor) is not str or not actor:
            if actor is None or actor == "":
                raise Reject("missing_field", "actor_id")
            actor = _text(actor, "actor_id")
        ip = vals[ip_at]
        if type(ip) is not str or not ip:
            if ip is None or ip == "":
                raise Reject("missing_field", "src_ip")
            ip = _text(ip, "src_ip")
        out: dict[str, Any] = {"subject_id": subject, "resource": resource, "source": name,
                               "ts": ts, "actor_id": actor, "src_ip": ip}
        for k, where in texts:
            v = vals[where]
            if type(v) is str:
                if v and v != "-":  # nginx writes "-" for an empty variable
                    out[k] = v
            elif v is not None:
                out[k] = _text(v, k)
        for k, where in ints:
            v = vals[where]
            if v is not None and v != "" and v != "-":
                try:
                    out[k] = int(v)
                except (TypeError, ValueError):
                    raise Reject("bad_field", f"{k} must be an integer") from None
        if iat_at is not None:
            v = vals[iat_at]
            if v is not None and v != "" and v != "-":
                out["token_issued_at"] = _time(v, "token_issued_at", 1.0)  # JWT iat: seconds
        if action is None and method_at is not None:
            verb = vals[method_at]
            action = _ACTIONS.get(verb.upper()) if isinstance(verb, str) else None
        out["action"] = action or "read"
        if actor_type is not None:
            out["actor_type"] = actor_type
        if event_at is not None:
            v = vals[event_at]
            if v is None or v == "":
                raise Reject("missing_field", "event_id")
            out["event_id"] = prefix + (v if type(v) is str else _text(v, "event_id"))
        else:
            h = digest()  # a copy of the keyed, personalised state: cheaper than a new one
            h.update(record)
            h.update(b"\0%d" % position)
            out["event_id"] = prefix + h.hexdigest()
        return [out]

    return adapt
