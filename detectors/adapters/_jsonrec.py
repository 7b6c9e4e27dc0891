"""What the JSON adapters share (ocsf, ecs, cloudtrail, entra, gws): reading one source record
into a dict and taking typed values out of it, each failure a :class:`Reject` with a reason.

Every value a source record carries may have been chosen by an attacker (a user name typed at a
login form, a URL path, a user agent). So nothing here trusts a type or a length: a field of the
wrong JSON type is ``wrong_type``, an id longer than the contract allows is ``too_large``, a
control character in an id is ``bad_value``, and the detail names the field, never echoing more
than a few dozen characters of the value. Reasons, shared by the five adapters:

| reason | when |
|---|---|
| invalid_json | not JSON, not UTF-8, empty |
| not_object | JSON, but not an object |
| too_large | a record over ``MAX_RECORD_BYTES``, or an id over the contract's 256 characters |
| missing_field | a field the mapping needs is absent, null or empty |
| wrong_type | a field of the wrong JSON type |
| bad_value | a time that is not one, an address that is not one, a control character |
| unsupported_event | a record of a kind this format's mapping does not turn into an event |
| unknown_outcome | a login whose source does not say whether it succeeded |
| request_failed | a data request that the source says failed (no data was read) |
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import IO, Any, Literal, overload

import orjson

from detectors import events as E

from . import Reject, lines

#: the largest source record an adapter reads (a CloudTrail record is at most 256 KiB; an
#: Entra sign-in or an OCSF event a few KiB): larger ones are ``too_large`` before parsing.
MAX_RECORD_BYTES = 1 << 20
#: the largest document read whole: a pretty-printed document ``frame`` gathers, or a record
#: holding a wrapper key (a CloudTrail log file, an Event Hubs batch) given to ``adapt``.
MAX_DOCUMENT_BYTES = 256 << 20

#: characters an event id leaves free for the prefix's colon, an index (``:3``) and ``#login``
ID_ROOM = 16

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def short(value: Any, n: int = 40) -> str:
    """A value for a rejection's detail: its repr, cut to about ``n`` characters."""
    r = repr(value)
    return r if len(r) <= n else r[: n - 3] + "..."


def load_object(record: bytes | str, wrappers: tuple[bytes, ...] = ()) -> dict[str, Any]:
    """One record's JSON object; ``Reject`` when it is too large, not JSON or not an object.

    A record may be up to ``MAX_RECORD_BYTES``; one that holds a wrapper key (``wrappers``,
    such as ``b'"Records"'``: a whole delivered file in one message) up to
    ``MAX_DOCUMENT_BYTES``."""
    raw = record.encode("utf-8", "surrogatepass") if isinstance(record, str) else record
    limit = MAX_RECORD_BYTES
    if len(raw) > limit and wrappers and any(k in raw for k in wrappers):
        limit = MAX_DOCUMENT_BYTES
    if len(raw) > limit:
        raise Reject("too_large", f"record of {len(raw):,} bytes (at most {limit:,})")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise Reject("invalid_json", str(e)[:120]) from None
    if not isinstance(obj, dict):
        raise Reject("not_object", f"a JSON {type(obj).__name__}, not an object")
    return obj


def dig(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]...``, or None where a hop is missing or not an object."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


@overload
def text(value: Any, field: str, *, required: Literal[True] = True,
         limit: int = E.MAX_ID_CHARS, numbers: bool = False) -> str: ...
@overload
def text(value: Any, field: str, *, required: bool, limit: int = E.MAX_ID_CHARS,
         numbers: bool = False) -> str | None: ...
def text(value: Any, field: str, *, required: bool = True, limit: int = E.MAX_ID_CHARS,
         numbers: bool = False) -> str | None:
    """A string field for an id or name of the contract: present, a string (or, with
    ``numbers``, an integer written as one), without control characters, at most ``limit``
    characters. Absent, null or blank is ``missing_field`` when ``required``, else None."""
    if numbers and type(value) is int:
        value = str(value)
    if value is None or (type(value) is str and not value.strip()):
        if required:
            raise Reject("missing_field", f"{field} is absent or empty")
        return None
    if type(value) is not str:
        raise Reject("wrong_type", f"{field} is a {type(value).__name__}, not a string")
    if len(value) > limit:
        raise Reject("too_large", f"{field} has {len(value):,} characters (at most {limit})")
    if _CONTROL.search(value):
        raise Reject("bad_value", f"{field} holds a control character")
    return value


def claim(value: Any, limit: int = E.MAX_TEXT_CHARS) -> str | None:
    """A field the client chooses (a user agent): kept when it is a non-empty string, cut to
    ``limit`` characters, else left out. Never a rejection: an attacker who could make their
    own requests unusable by sending a long or odd header would hide them from the detectors
    (the contract escapes control characters in these fields itself)."""
    if type(value) is not str or not value.strip():
        return None
    return value[:limit]


def fitted(value: Any, field: str, limit: int = E.MAX_ID_CHARS) -> str | None:
    """An id that may be longer or odder than the contract allows (a URL path, an object key,
    a resource name, which whoever made the request or the object chose): itself when it fits
    (at most ``limit`` characters, printable), else ``sha256:`` and the hex digest of its
    UTF-8 (71 characters; the same value gives the same id). Never a rejection: a client
    could otherwise hide its requests behind long or odd names. None when absent or empty;
    an integer is written as text; another type is ``wrong_type``."""
    if type(value) is int:
        value = str(value)
    if value is None or (type(value) is str and not value.strip()):
        return None
    if type(value) is not str:
        raise Reject("wrong_type", f"{field} is a {type(value).__name__}, not a string")
    if len(value) <= limit and value.isprintable():
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def address(value: Any, field: str) -> str:
    """An IPv4 or IPv6 address as text (the contract canonicalises it further)."""
    if value is None or (type(value) is str and not value.strip()):
        raise Reject("missing_field", f"{field} is absent or empty")
    if type(value) is not str:
        raise Reject("wrong_type", f"{field} is a {type(value).__name__}, not a string")
    v = value.strip()
    if len(v) > 64:
        raise Reject("bad_value", f"{field} is not an IP address ({len(v)} characters)")
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        raise Reject("bad_value", f"{field} is not an IP address: {short(v)}") from None


def rfc3339(dt: datetime) -> str:
    """A zone-aware datetime as the contract's RFC 3339 text, UTC, milliseconds."""
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def time_of(value: Any, field: str, *, unit: float = 1.0) -> str:
    """A source time as RFC 3339 text. Strings are ISO 8601 with a zone (extended or basic
    form, any number of fraction digits: CloudTrail's ``creationDate`` comes in both);
    numbers are epoch times in ``unit`` seconds (1e-3 for milliseconds). A time without a
    zone is ``bad_value``: guessing one would move every event by hours."""
    if value is None or (type(value) is str and not value.strip()):
        raise Reject("missing_field", f"{field} is absent or empty")
    if type(value) in (int, float):
        secs = value * unit
        if not math.isfinite(secs) or not 0 <= secs < 253402300800:  # year 10000
            raise Reject("bad_value", f"{field} is not a time: {short(value)}")
        return rfc3339(datetime.fromtimestamp(secs, UTC))
    if type(value) is not str:
        raise Reject("wrong_type", f"{field} is a {type(value).__name__}, not a time")
    if len(value) > 40:
        raise Reject("bad_value", f"{field} is not a time ({len(value)} characters)")
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Reject("bad_value", f"{field} is not an ISO 8601 time: {short(value)}") from None
    if dt.tzinfo is None:
        raise Reject("bad_value", f"{field} has no time zone: {short(value)}")
    try:
        return rfc3339(dt)
    except OverflowError:
        raise Reject("bad_value", f"{field} is not representable: {short(value)}") from None


def event_id(prefix: str, source_id: Any, obj: Any, field: str) -> str:
    """The contract ``event_id``: ``PREFIX:ID`` from the source's own id when it has one (a
    number is written as text), else ``PREFIX:sha256:`` and 32 hex digits of the record's
    canonical JSON (sorted keys), so a record sent twice gets the same id and is processed
    once."""
    if source_id is not None and not (type(source_id) is str and not source_id.strip()):
        sid = text(source_id, field, limit=E.MAX_ID_CHARS - len(prefix) - ID_ROOM, numbers=True)
        return f"{prefix}:{sid}"
    digest = hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"{prefix}:sha256:{digest[:32]}"


def login_session(eid: str) -> str:
    """The ``session_id`` of a successful login whose source names no session: the login's
    own event id, marked. No request presents it, so it issues nothing a later request could
    borrow; the contract requires a session on success, and this one is honest about being
    none."""
    return f"{eid}#login"


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')


def _depth(line: bytes) -> int:
    """How many JSON values a line opens minus how many it closes (brackets inside strings do
    not count)."""
    t = _STRINGS.sub(b"", line)
    return t.count(b"{") + t.count(b"[") - t.count(b"}") - t.count(b"]")


def frame_wrapped(stream: IO[bytes], keys: tuple[bytes, ...],
                  split: Callable[[bytes], list[bytes] | None]) -> Iterator[bytes]:
    """Framing for formats whose files may hold JSON documents that span lines or wrap many
    records (CloudTrail's ``Records``, Entra's ``records`` / ``value``, the Reports API's
    ``items``, an export as one array), read as a stream: each record is yielded as soon as
    its document is complete, so a pipe is never waited on to its end.

    - A line holding one of ``keys``, or starting with ``[``, is given to ``split``, which
      returns its records as JSON texts (None: not one document; the line passes as it is).
    - A line that opens more values than it closes (``{``, ``{"Records": [{``) starts a
      pretty-printed document: the following lines are gathered until the brackets balance,
      and the whole is split. A document that does not parse then, one that an object's
      member line starting at column 0 with ``{`` or ``[`` shows was no document (a truncated
      line followed by whole ones), one over ``MAX_DOCUMENT_BYTES``, and one the stream ends
      in, are yielded line by line, for ``adapt`` to reject each: nothing is dropped.
    - Any other line passes as it is."""
    buf: list[bytes] = []
    size = depth = 0
    opener = b""
    for line in lines(stream):
        if buf:
            if opener == b"{" and line[:1] in (b"{", b"["):
                yield from buf  # a new top-level value: the gathered lines were no document
                buf = []
            else:
                buf.append(line)
                size += len(line) + 1
                depth += _depth(line)
                if depth <= 0:
                    got = split(b"\n".join(buf))
                    yield from buf if got is None else got
                    buf = []
                elif size > MAX_DOCUMENT_BYTES:
                    yield from buf
                    buf = []
                continue
        s = line.rstrip()
        if s[:1] in (b"{", b"[") and s[-1:] not in (b"}", b"]"):
            d = _depth(s)
            if d > 0:  # the first line of a pretty-printed document
                buf, size, depth, opener = [line], len(line) + 1, d, s[:1]
                continue
        if s[:1] == b"[" or any(k in line for k in keys):
            got = split(s)
            if got is not None:
                yield from got
                continue
        yield line
    yield from buf


def unwrap(doc: bytes, wrappers: tuple[str, ...] = ()) -> list[bytes] | None:
    """The records of a JSON document ``{"<wrapper>": [...]}`` or ``[...]`` (an export as one
    array) as compact JSON texts; a document that is one object without a wrapper as itself
    (compacted: a pretty-printed record); None when ``doc`` is not one JSON object or array."""
    if not doc.startswith((b"{", b"[")):
        return None
    try:
        obj = orjson.loads(doc)
    except orjson.JSONDecodeError:
        return None
    if isinstance(obj, list):
        return [orjson.dumps(x) for x in obj]
    if not isinstance(obj, dict):
        return None
    for w in wrappers:
        items = obj.get(w)
        if isinstance(items, list):
            return [orjson.dumps(x) for x in items]
    return [orjson.dumps(obj)]


def adapt_many(items: list[Any], one: Callable[[dict[str, Any]], list[dict[str, Any]]],
               what: str, limit: int = 100_000) -> list[dict[str, Any]]:
    """The events of every usable record of a wrapper given to ``adapt`` whole. The records
    it cannot use are not reported one by one (``frame`` the document for that); when none
    is usable, the first one's reason is the wrapper's."""
    if len(items) > limit:
        raise Reject("too_large", f"{len(items):,} {what}s in one document (at most {limit:,})")
    out: list[dict[str, Any]] = []
    first: Reject | None = None
    for x in items:
        try:
            if not isinstance(x, dict):
                raise Reject("not_object", f"a {what} is a JSON {type(x).__name__}")
            out.extend(one(x))
        except Reject as e:
            first = first or e
    if not out and first is not None:
        raise Reject(first.reason, f"no usable {what} among {len(items)} (first: {first.detail})")
    return out
