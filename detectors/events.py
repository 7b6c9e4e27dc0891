"""Event contract v1: decoding and validation of the three event kinds.

Every input is either an :class:`Event` or a :class:`Rejection` with a reason code and the
field at fault; nothing here raises on bad input.

>>> ev = decode(b'{"event_id":"e1","ts":"2025-06-24T03:12:45.120Z","account_id":"c-1",'
...             b'"outcome":"success","src_ip":"121.131.0.7","session_id":"s-1"}')
>>> ev.kind, ev.ts, ev.account_type
('login', 1750734765.12, 'customer')
>>> decode(b'[1, 2]')
Rejection(reason='not_object', field=None, detail='a JSON array, not an object')
>>> decode(b'{"event_id":"e2","ts":"2025-06-24T03:12:45","account_id":"c","outcome":"success","src_ip":"1.2.3.4"}').reason
'bad_value'
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

import msgspec
import orjson

LOGIN, ACCESS, IDENTITY = "login", "access", "identity"
KINDS = (LOGIN, ACCESS, IDENTITY)
TOPIC_OF_KIND = {LOGIN: "auth-logins", ACCESS: "data-access", IDENTITY: "identity-changes"}

MAX_LINE_BYTES = 64 * 1024
MAX_ID_CHARS = 256
MAX_TEXT_CHARS = 1024

PRINCIPAL_TYPES = frozenset({"customer", "employee", "service"})
OUTCOMES = frozenset({"success", "failure"})
METHODS = frozenset({"password", "mfa", "sso", "api_key", "refresh"})
ACTIONS = frozenset({"read", "search", "export", "update", "delete"})
CHANGES = frozenset(
    {
        "principal_terminated",
        "principal_suspended",
        "principal_reinstated",
        "key_issued",
        "key_revoked",
        "session_revoked",
    }
)

# Rejection reasons (also the label values of accesswatch_invalid_events_total{reason}).
REASONS = (
    "invalid_json",
    "not_object",
    "missing_field",
    "wrong_type",
    "bad_value",
    "too_large",
    "unknown_kind",
    "duplicate",
)


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    field: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "field": self.field, "detail": self.detail}


_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_CHARS)]
_Time = float | int | str


class Event(msgspec.Struct, gc=False, repr_omit_defaults=True):
    """One decoded event. Attributes not used by its kind stay None.

    ``raw`` is what it was decoded from (the original line's bytes, or the dict): unknown
    fields stay there, untouched. The field types here are the fast path's first check
    (done by msgspec in C); :func:`decode` then applies the rest of the contract.
    """

    kind: str | None = None
    event_id: _Id | None = None
    ts: _Time | None = None
    # login + access
    src_ip: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    country: str | None = None
    asn: Annotated[int, msgspec.Meta(ge=0, lt=2**32)] | None = None
    user_agent: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT_CHARS)] | None = None
    session_id: _Id | None = None
    # login
    account_id: _Id | None = None
    account_type: Literal["customer", "employee", "service"] | None = None
    outcome: Literal["success", "failure"] | None = None
    device_id: _Id | None = None
    method: Literal["password", "mfa", "sso", "api_key", "refresh"] | None = None
    # access
    actor_id: _Id | None = None
    actor_type: Literal["customer", "employee", "service"] | None = None
    subject_id: _Id | None = None
    resource: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None
    action: Literal["read", "search", "export", "update", "delete"] | None = None
    records: Annotated[int, msgspec.Meta(ge=1, le=10**12)] | None = None
    token_issued_at: _Time | None = None
    key_id: _Id | None = None
    # identity
    change: str | None = None
    principal_id: _Id | None = None
    owner_id: _Id | None = None
    # not from the input: what it was decoded from, and the engine's enrichment
    raw: Any = None
    net: Any = None

    def fields(self) -> dict[str, Any]:
        """Every field of the input, unknown ones included."""
        raw = self.raw
        return orjson.loads(raw) if isinstance(raw, (bytes, str)) else dict(raw or {})

    @property
    def principal(self) -> str | None:
        """Whose credential this is: account_id for logins, actor_id for access."""
        return self.account_id if self.kind == LOGIN else self.actor_id

    @property
    def principal_type(self) -> str | None:
        return self.account_type if self.kind == LOGIN else self.actor_type

    def __repr__(self) -> str:
        return f"Event({self.kind}, {self.event_id!r}, ts={self.ts})"


class _Bad(Exception):
    def __init__(self, reason: str, field: str | None, detail: str) -> None:
        self.rejection = Rejection(reason, field, detail)


def classify(obj: dict[str, Any]) -> str | None:
    """The event kind of a decoded object: its ``kind`` field, else told by its fields."""
    kind = obj.get("kind")
    if kind in KINDS:
        return kind  # type: ignore[return-value]
    if kind is not None:
        return None
    if obj.get("outcome") is not None:  # a null field counts as absent, everywhere
        return LOGIN
    if obj.get("subject_id") is not None:
        return ACCESS
    if obj.get("change") is not None:
        return IDENTITY
    return None


def parse_ts(value: Any, field: str = "ts") -> float:
    """RFC 3339 with a zone, or epoch seconds as a number, to epoch seconds."""
    if isinstance(value, bool):
        raise _Bad("wrong_type", field, "a boolean, not a time")
    if isinstance(value, (int, float)):
        v = float(value)
        if not math.isfinite(v) or v < 0 or v > 32503680000:  # year 3000
            raise _Bad("bad_value", field, "epoch seconds out of range")
        return v
    if isinstance(value, str):
        if len(value) > 40:
            raise _Bad("bad_value", field, "time string too long")
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise _Bad("bad_value", field, "not an RFC 3339 time") from None
        if dt.tzinfo is None or "T" not in value.upper():
            raise _Bad("bad_value", field, "RFC 3339 time without a zone")
        return dt.timestamp()
    raise _Bad("wrong_type", field, f"{type(value).__name__}, not a time")


def _v4_ok(value: str) -> bool:
    """True for an IPv4 address in the only form ``ipaddress`` accepts (four decimal octets
    0-255, no leading zeros); False means "ask ``ipaddress``", not "invalid"."""
    if type(value) is not str:
        return False
    parts = value.split(".")
    if len(parts) != 4:
        return False
    for p in parts:
        if not 0 < len(p) <= 3 or not (p.isascii() and p.isdigit()) or (
                p[0] == "0" and len(p) > 1) or int(p) > 255:
            return False
    return True


@lru_cache(maxsize=262144)
def _check_ip(value: str) -> bool:
    if _v4_ok(value):
        return True
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _str(obj: dict[str, Any], field: str, required: bool, limit: int = MAX_ID_CHARS) -> str | None:
    v = obj.get(field)
    if v is None:
        if required:
            raise _Bad("missing_field", field, f"{field} is required")
        return None
    if type(v) is not str:
        raise _Bad("wrong_type", field, f"{type(v).__name__}, not a string")
    if not v:
        if required:
            raise _Bad("bad_value", field, "empty string")
        return None
    if len(v) > limit:
        raise _Bad("too_large", field, f"longer than {limit} characters")
    return v


def _enum(obj: dict[str, Any], field: str, allowed: frozenset[str], default: str | None) -> str | None:
    v = obj.get(field)
    if v is None:
        return default
    if type(v) is not str:
        raise _Bad("wrong_type", field, f"{type(v).__name__}, not a string")
    if v not in allowed:
        raise _Bad("bad_value", field, f"not one of {', '.join(sorted(allowed))}")
    return v


def _ip(obj: dict[str, Any]) -> str:
    v = _str(obj, "src_ip", True, 64)
    assert v is not None
    if not _check_ip(v):
        raise _Bad("bad_value", "src_ip", "not an IPv4 or IPv6 address")
    return v


def _net_fields(ev: Event, obj: dict[str, Any]) -> None:
    ev.src_ip = _ip(obj)
    c = _str(obj, "country", False, 2)
    if c is not None and (len(c) != 2 or not c.isalpha()):
        raise _Bad("bad_value", "country", "not an ISO 3166-1 alpha-2 code")
    ev.country = c.upper() if c else None
    asn = obj.get("asn")
    if asn is not None:
        if type(asn) is not int:
            raise _Bad("wrong_type", "asn", f"{type(asn).__name__}, not an integer")
        if not 0 <= asn < 2**32:
            raise _Bad("bad_value", "asn", "out of range")
    ev.asn = asn
    ev.user_agent = _str(obj, "user_agent", False, MAX_TEXT_CHARS)
    ev.session_id = _str(obj, "session_id", False)


def _decode_obj(obj: dict[str, Any], kind: str | None) -> Event:
    kind = kind or classify(obj)
    if kind is None:
        raise _Bad("unknown_kind", "kind", "neither a login, an access nor an identity change")
    event_id = _str(obj, "event_id", True)
    if "ts" not in obj:
        raise _Bad("missing_field", "ts", "ts is required")
    ev = Event(kind=kind, event_id=event_id, ts=parse_ts(obj["ts"]), raw=obj, records=1)
    if kind == LOGIN:
        ev.account_id = _str(obj, "account_id", True)
        ev.account_type = _enum(obj, "account_type", PRINCIPAL_TYPES, "customer")
        ev.outcome = _enum(obj, "outcome", OUTCOMES, None)
        if ev.outcome is None:
            raise _Bad("missing_field", "outcome", "outcome is required")
        _net_fields(ev, obj)
        ev.device_id = _str(obj, "device_id", False)
        ev.method = _enum(obj, "method", METHODS, None)
        if ev.outcome == "success" and ev.session_id is None:
            raise _Bad("missing_field", "session_id", "a successful login must name its session")
    elif kind == ACCESS:
        ev.actor_id = _str(obj, "actor_id", True)
        ev.actor_type = _enum(obj, "actor_type", PRINCIPAL_TYPES, "customer")
        ev.subject_id = _str(obj, "subject_id", True)
        ev.resource = _str(obj, "resource", True, 128)
        ev.action = _enum(obj, "action", ACTIONS, "read")
        rec = obj.get("records")
        if rec is not None:
            if type(rec) is not int:
                raise _Bad("wrong_type", "records", f"{type(rec).__name__}, not an integer")
            if rec < 1 or rec > 10**12:
                raise _Bad("bad_value", "records", "must be an integer >= 1")
            ev.records = rec
        _net_fields(ev, obj)
        tia = obj.get("token_issued_at")
        if tia is not None:
            ev.token_issued_at = parse_ts(tia, "token_issued_at")
        ev.key_id = _str(obj, "key_id", False)
    else:
        change = _enum(obj, "change", CHANGES, None)
        if change is None:
            raise _Bad("missing_field", "change", "change is required")
        ev.change = change
        ev.principal_id = _str(obj, "principal_id", change.startswith("principal_"))
        ev.key_id = _str(obj, "key_id", change.startswith("key_"))
        ev.owner_id = _str(obj, "owner_id", False)
        ev.session_id = _str(obj, "session_id", change == "session_revoked")
    return ev


def decode_obj(obj: Any, kind: str | None = None) -> Event | Rejection:
    """Validate an already-parsed JSON value."""
    if not isinstance(obj, dict):
        what = "a JSON array" if isinstance(obj, list) else f"a JSON {type(obj).__name__}"
        return Rejection("not_object", None, f"{what}, not an object")
    try:
        return _decode_obj(obj, kind)
    except _Bad as bad:
        return bad.rejection


_WIRE = msgspec.json.Decoder(Event)
_MAX_EPOCH = 32503680000.0


_fromiso = datetime.fromisoformat


def _fast_time(v: Any) -> float | None:
    if type(v) is str:
        if len(v) > 40 or v[10:11] not in _T:
            return None
        try:
            dt = _fromiso(v)
        except ValueError:
            return None
        return None if dt.tzinfo is None else dt.timestamp()
    v = float(v)
    return v if 0.0 <= v <= _MAX_EPOCH else None  # NaN fails both comparisons


_T = ("T", "t")
# token_issued_at repeats (one value per session): its parsed form, memoised; cleared when full
_ISSUED: dict[str, float] = {}
_ISSUED_MAX = 65536


def _accept(ev: Event, line: bytes | str, kind: str | None) -> Event | None:
    """The rest of the contract on a struct msgspec already type-checked; None = let the
    reference path decide (it either accepts or names the reason).

    Hot path (every valid event): checks in the order of the commonest kind, time parsed
    inline; any failed check returns None, so their order does not change the outcome.
    """
    k = kind or ev.kind
    if k is None:
        if ev.outcome is not None:
            k = LOGIN
        elif ev.subject_id is not None:
            k = ACCESS
        elif ev.change is not None:
            k = IDENTITY
        else:
            return None
    elif k not in KINDS:
        return None
    if ev.event_id is None:
        return None
    v = ev.ts
    if type(v) is str:  # _fast_time, inline
        if len(v) > 40 or v[10:11] not in _T:
            return None
        try:
            dt = _fromiso(v)
        except ValueError:
            return None
        if dt.tzinfo is None:
            return None
        ts = dt.timestamp()
    elif v is None:
        return None
    else:
        ts = float(v)
        if not 0.0 <= ts <= _MAX_EPOCH:  # NaN fails too
            return None
    if k != IDENTITY:
        ip = ev.src_ip
        if ip is None or not _check_ip(ip):
            return None
        cc = ev.country
        if cc is not None:
            if len(cc) != 2 or not (cc.isascii() and cc.isalpha()):
                return None
            ev.country = cc.upper()
        # fields of other kinds are ignored, as on the reference path
        if k == ACCESS:
            if ev.actor_id is None or ev.subject_id is None or ev.resource is None:
                return None
            if (ev.account_id is not None or ev.account_type is not None  # reads are cheaper
                    or ev.outcome is not None or ev.device_id is not None  # than writes
                    or ev.method is not None or ev.change is not None
                    or ev.principal_id is not None or ev.owner_id is not None):
                ev.account_id = ev.account_type = ev.outcome = ev.device_id = ev.method = None
                ev.change = ev.principal_id = ev.owner_id = None
            tia = ev.token_issued_at
            if tia is not None:
                t = _ISSUED.get(tia) if type(tia) is str else None
                if t is None:
                    t = _fast_time(tia)
                    if t is None:
                        return None
                    if type(tia) is str:
                        if len(_ISSUED) >= _ISSUED_MAX:
                            _ISSUED.clear()
                        _ISSUED[tia] = t
                ev.token_issued_at = t
            if ev.actor_type is None:
                ev.actor_type = "customer"
            if ev.action is None:
                ev.action = "read"
            if ev.records is None:
                ev.records = 1
        else:
            ev.actor_id = ev.actor_type = ev.subject_id = ev.resource = ev.action = None
            ev.token_issued_at = ev.key_id = ev.change = ev.principal_id = ev.owner_id = None
            if ev.account_id is None or ev.outcome is None or (
                    ev.outcome == "success" and ev.session_id is None):
                return None
            if ev.account_type is None:
                ev.account_type = "customer"
            ev.records = 1
    else:
        ev.src_ip = ev.country = ev.asn = ev.user_agent = ev.account_id = None
        ev.account_type = ev.outcome = ev.device_id = ev.method = ev.actor_id = None
        ev.actor_type = ev.subject_id = ev.resource = ev.action = ev.token_issued_at = None
        c = ev.change
        if c not in CHANGES:
            return None
        if (c.startswith("principal_") and ev.principal_id is None) or (
                c.startswith("key_") and ev.key_id is None) or (
                c == "session_revoked" and ev.session_id is None):
            return None
        ev.records = 1
    ev.kind, ev.ts, ev.raw = k, ts, line
    if ev.net is not None:  # not from the input: the engine's enrichment
        ev.net = None
    return ev


def decode(line: bytes | str, kind: str | None = None) -> Event | Rejection:
    """Parse and validate one JSON line (bytes preferred).

    Fast path: msgspec decodes and type-checks in one C pass, :func:`_accept` applies the
    rest. Anything it does not accept goes through the reference path (orjson and the
    field-by-field checks of :func:`decode_obj`), which gives the precise reason.
    """
    if len(line) > MAX_LINE_BYTES:
        return Rejection("too_large", None, f"line longer than {MAX_LINE_BYTES} bytes")
    try:
        ev = _accept(_WIRE.decode(line), line, kind)
    except Exception:  # noqa: BLE001 - any doubt goes to the reference path below
        ev = None
    if ev is not None:
        return ev
    if not line.strip():
        return Rejection("invalid_json", None, "empty line")
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        msg = str(e)
        if "utf-8" in msg.lower() or "surrogate" in msg.lower():
            return Rejection("invalid_json", None, "invalid UTF-8")
        return Rejection("invalid_json", None, msg.split(":")[0][:120])
    return decode_obj(obj, kind)
