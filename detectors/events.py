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
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

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

# ISO 3166-1 alpha-2 codes: the 249 of the tz database's ``iso3166.tab`` (public domain;
# "current as of ISO/TC 46 N1108 (2023-04-05)", tzdata 2025b), plus XK (Kosovo: user-assigned,
# used by the GeoIP databases and the EU). Python ships no such list.
COUNTRIES = frozenset("""
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS XK YE YT ZA ZM ZW
""".split())

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
    "ts_out_of_range",  # a time outside the configured years (Policy.ts_min .. ts_max)
    "future_ts",  # ts further ahead of the record's arrival than Policy.future_skew
    "duplicate_conflict",  # an event id seen before with other content: both processed
)

# Event times accepted by default: years 2000 to 2100, both whole.
TS_MIN = 946684800.0  # 2000-01-01T00:00:00Z
TS_MAX = 4133980800.0  # 2101-01-01T00:00:00Z (excluded)
#: how far ahead of its arrival an event's ts may be by default (seconds)
FUTURE_SKEW = 300.0


def year_start(year: int) -> float:
    """Epoch seconds of ``year``-01-01T00:00:00Z (proleptic Gregorian, any year)."""
    days = (year - 1970) * 365 + (year - 1969) // 4 - (year - 1901) // 100 + (year - 1601) // 400
    return days * 86400.0


@dataclass(frozen=True, slots=True)
class Policy:
    """What decoding accepts beyond the format, and which producer claims it believes.

    ``ts_min`` <= every time field < ``ts_max`` (else ``ts_out_of_range``); ``ts`` at most
    ``future_skew`` seconds after the ``arrival`` the caller passes (the wall clock when the
    record was received; else ``future_ts``; None = no such check); ``trust_geo``: keep the
    producer's ``country`` / ``asn`` (validated either way), else they are dropped from the
    decoded event (still in ``raw``) and GeoIP decides.

    >>> p = Policy.years(2000, 2100)
    >>> p.ts_min == TS_MIN and p.ts_max == TS_MAX
    True
    """

    ts_min: float = TS_MIN
    ts_max: float = TS_MAX
    future_skew: float | None = FUTURE_SKEW
    trust_geo: bool = False

    @classmethod
    def years(cls, first: int, last: int, future_skew: float | None = FUTURE_SKEW,
              trust_geo: bool = False) -> Policy:
        """Times from the start of year ``first`` to the end of year ``last``."""
        if not 1970 <= first <= last <= 9998:
            raise ValueError(f"years must be 1970 <= first <= last <= 9998, not {first}..{last}")
        if future_skew is not None and not future_skew >= 0:
            raise ValueError(f"future skew must be >= 0 seconds, not {future_skew}")
        return cls(year_start(first), year_start(last + 1), future_skew, trust_geo)


DEFAULT_POLICY = Policy()


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

    if TYPE_CHECKING:
        # The types every Event has once decoded: decode() and decode_obj() set its kind,
        # reject an event without an id, and convert the wire's time (RFC 3339 text or a
        # number) to epoch seconds. Only _accept() reads the fields in their wire form
        # (msgspec's), typed there as such.
        kind: str = ""
        event_id: str = ""
        ts: float = 0.0
    else:
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
    if TYPE_CHECKING:  # decoded: a count for every kind (1 unless an access says more), and
        records: int = 1  # the token's time in epoch seconds or absent (see ts above)
        token_issued_at: float | None = None
    else:
        records: Annotated[int, msgspec.Meta(ge=1, le=10**12)] | None = None
        token_issued_at: _Time | None = None
    key_id: _Id | None = None
    # identity
    change: str | None = None
    principal_id: _Id | None = None
    owner_id: _Id | None = None
    # not from the input: what it was decoded from, the engine's enrichment, and the first
    # credential claim that decoding could not take as sent (see ``_claims``)
    raw: Any = None
    net: Any = None
    invalid_claim: Any = None

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


def kind_by_fields(outcome: object, subject_id: object, change: object) -> str | None:
    """The kind of an event that does not declare one, told by its fields: ``outcome`` makes
    a login, else ``subject_id`` an access, else ``change`` an identity change. A field that
    is null (None) counts as absent, everywhere. The one definition of this rule: the
    engine's decoders, ``produce`` and the ingest adapters' output all go through it.

    >>> kind_by_fields("success", None, None), kind_by_fields(None, "c-1", None)
    ('login', 'access')
    >>> kind_by_fields(None, None, "key_revoked"), kind_by_fields(None, None, None)
    ('identity', None)
    """
    if outcome is not None:
        return LOGIN
    if subject_id is not None:
        return ACCESS
    if change is not None:
        return IDENTITY
    return None


def classify(obj: dict[str, Any]) -> str | None:
    """The event kind of a decoded object: its ``kind`` field (null: absent), else told by
    its fields (:func:`kind_by_fields`); None when it declares an unknown kind or none
    can be told."""
    kind = obj.get("kind")
    if kind in KINDS:
        return kind  # type: ignore[no-any-return]  # a member of KINDS: a str
    if kind is not None:
        return None
    return kind_by_fields(obj.get("outcome"), obj.get("subject_id"), obj.get("change"))


#: The fields an event's partition key is taken from, by kind, in order of preference: an
#: account's logins and that account's own requests (``actor_id``) meet in one partition;
#: an identity change by the principal, key or session it is about. ``produce``, the ingest
#: agents and the worker (which re-sends an event found on another partition) use it.
KEY_FIELDS: dict[str, tuple[str, ...]] = {
    LOGIN: ("account_id",),
    ACCESS: ("actor_id",),
    IDENTITY: ("principal_id", "key_id", "session_id"),
}


def partition_key(obj: dict[str, Any], kind: str) -> bytes | None:
    """The partition key of an event object of ``kind``: its first ``KEY_FIELDS`` value that
    is a non-empty string (UTF-8) or an integer (decimal); None when it has none (it is
    still sent; the worker dead-letters it).

    >>> partition_key({"account_id": "c-7"}, LOGIN), partition_key({"actor_id": 42}, ACCESS)
    (b'c-7', b'42')
    >>> partition_key({"key_id": "", "session_id": "s-1"}, IDENTITY)
    b's-1'
    >>> partition_key({"account_id": None}, LOGIN) is None
    True
    """
    for name in KEY_FIELDS[kind]:
        value = obj.get(name)
        if isinstance(value, str) and value:
            return value.encode("utf-8")
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value).encode("ascii")
    return None


def _rfc3339_shape(v: str) -> bool:
    """Whether ``v`` has the layout of an RFC 3339 time (ISO 8601 extended format with
    seconds and a zone): ``YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)``. Digits and the calendar
    are ``datetime.fromisoformat``'s to check; this rejects the other forms it accepts
    (basic format, week dates, no seconds, no zone, a comma fraction, a zone with seconds)."""
    if not 20 <= len(v) <= 40 or v[4:17:3] not in _SEPARATORS:  # the - - T : : of the layout
        return False
    c = v[19]
    if c == ".":
        if not v[20:21].isdigit():
            return False
    elif c not in _ZS:
        return False
    return v[-1] == "Z" or (v[-3] == ":" and v[-6] in _SIGNS)


#: (issue 14, speed) ``YYYY-MM-DDTHH:MM:`` -> its epoch microseconds (None: not a time the
#: reference path accepts), for :func:`_time_of`'s fast path; emptied when full
_MINUTES: dict[str, int | None] = {}
_MINUTES_MAX = 65536
_SECONDS = {f"{i:02d}": i * 1_000_000 for i in range(60)}  # "SS" -> microseconds
_MILLIS = {f"{i:03d}": i * 1000 for i in range(1000)}  # "fff" -> microseconds


def _time_of(value: Any) -> float | None:
    """A string or number time to epoch seconds; None when it is not one (wrong form or
    type, or not representable: a year beyond 9999 once its zone is applied).

    Fast path (issue 14, speed): the commonest form, ``YYYY-MM-DDTHH:MM:SS.fffZ``, is its
    minute's epoch microseconds (the reference path's, remembered per minute) plus the
    seconds and milliseconds (ASCII digits, seconds 00-59, looked up), divided by 10**6:
    the integer division ``datetime.timestamp`` does for an aware time, so the same float
    (tests/test_events.py compares the two paths). Anything else takes the reference path,
    which decides."""
    if type(value) is str and len(value) == 24 and value[23] == "Z" and value[19] == ".":
        sec = _SECONDS.get(value[17:19])
        ms = _MILLIS.get(value[20:23])
        if sec is not None and ms is not None:
            minute = value[:17]
            base = _MINUTES.get(minute)
            if base is None and minute not in _MINUTES:
                base = _minute_us(minute)
            if base is not None:
                return (base + sec + ms) / 1_000_000
    return _time_of_reference(value)


def _minute_us(minute: str) -> int | None:
    """Epoch microseconds of ``minute`` (``YYYY-MM-DDTHH:MM:``) as the reference path reads
    ``minute + "00.000Z"`` (None: it does not), remembered."""
    t = _time_of_reference(minute + "00.000Z")
    v = None if t is None else int(t) * 1_000_000  # a whole second: exact in a float
    if len(_MINUTES) >= _MINUTES_MAX:
        _MINUTES.clear()
    _MINUTES[minute] = v
    return v


def _time_of_reference(value: Any) -> float | None:
    """:func:`_time_of` for every form: the layout check and ``datetime.fromisoformat``."""
    if type(value) is str:
        if not _rfc3339_shape(value):
            return None
        try:
            dt = _fromiso(value)
            return None if dt.tzinfo is None else dt.timestamp()
        except (ValueError, OverflowError):
            return None
    v = float(value)  # int or float: the caller has checked the type
    return v if math.isfinite(v) else None


def parse_ts(value: Any, field: str = "ts", lo: float = 0.0, hi: float = 32503680000.0
             ) -> float:
    """RFC 3339 with a zone, or epoch seconds as a number, to epoch seconds in ``lo`` ..
    ``hi`` (by default 1970 to 3000; decoding passes its :class:`Policy`'s years)."""
    if isinstance(value, bool):
        raise _Bad("wrong_type", field, "a boolean, not a time")
    if isinstance(value, (int, float)):
        v = float(value)
        if not math.isfinite(v) or not lo <= v < hi:
            raise _Bad("ts_out_of_range", field, "epoch seconds out of the accepted years")
        return v
    if isinstance(value, str):
        if len(value) > 40:
            raise _Bad("bad_value", field, "time string too long")
        if not _rfc3339_shape(value):
            raise _Bad("bad_value", field,
                       "not an RFC 3339 time (YYYY-MM-DDTHH:MM:SS[.fff] and Z or ±HH:MM)")
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise _Bad("bad_value", field, "not an RFC 3339 time") from None
        if dt.tzinfo is None:
            raise _Bad("bad_value", field, "RFC 3339 time without a zone")
        try:
            t = dt.timestamp()
        except (ValueError, OverflowError):
            raise _Bad("ts_out_of_range", field, "time out of the accepted years") from None
        if not lo <= t < hi:
            raise _Bad("ts_out_of_range", field, "time out of the accepted years")
        return t
    raise _Bad("wrong_type", field, f"{type(value).__name__}, not a time")


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_BACKSLASH, _DEL = b"\\", b"\x7f"
_TEXT_FIELDS = ("event_id", "account_id", "actor_id", "subject_id", "session_id", "device_id",
                "key_id", "principal_id", "owner_id", "resource", "user_agent")


def _control_field(ev: Event) -> str | None:
    """The first text field of a decoded event holding a control character (C0, DEL, C1:
    they have no business in an id and reach logs, terminals and chat through alerts)."""
    search = _CONTROL.search
    for name in _TEXT_FIELDS:
        v = getattr(ev, name)
        if v is not None and search(v):
            return name
    return None


#: Fields of logins and requests whose value the client or its credential chooses (the
#: User-Agent header, the device, the token's session and key ids): a value decoding cannot
#: take as sent is repaired and the event kept, never rejected, or an attacker would put a
#: control character (or an impossible ``token_issued_at``) into every request of their own
#: and send all of them to the dead-letter topic instead of the detectors. The event then
#: carries ``invalid_claim`` (the first such field), which the engine counts.
_CLAIM_FIELDS = ("user_agent", "device_id", "session_id", "key_id")


def _escape_claims(ev: Event) -> None:
    """Control characters in the client-chosen fields written as ``\\xNN`` text."""
    search = _CONTROL.search
    for name in _CLAIM_FIELDS:
        v = getattr(ev, name)
        if v is not None and search(v):
            setattr(ev, name, _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", v))
            if ev.invalid_claim is None:
                ev.invalid_claim = name


def content_key(ev: Event) -> int:
    """A digest of what an event says (every decoded field, not ``raw``: key order,
    spacing and unknown fields do not count), to tell a repeat from another event that
    reuses its id. Process-local (``hash``); not for storage.

    Decoding (both paths) leaves the fields of other kinds None, so a request's and a
    login's digests skip them (speed, issue 14: one per event); the kind, first in each,
    keeps two kinds' digests apart as before.
    """
    k = ev.kind
    if k == ACCESS:
        return hash((k, ev.ts, ev.src_ip, ev.country, ev.asn, ev.user_agent, ev.session_id,
                     ev.actor_id, ev.actor_type, ev.subject_id, ev.resource, ev.action,
                     ev.records, ev.token_issued_at, ev.key_id))
    if k == LOGIN:
        return hash((k, ev.ts, ev.src_ip, ev.country, ev.asn, ev.user_agent, ev.session_id,
                     ev.account_id, ev.account_type, ev.outcome, ev.device_id, ev.method,
                     ev.records))
    return hash((k, ev.ts, ev.src_ip, ev.country, ev.asn, ev.user_agent, ev.session_id,
                 ev.account_id, ev.account_type, ev.outcome, ev.device_id, ev.method,
                 ev.actor_id, ev.actor_type, ev.subject_id, ev.resource, ev.action, ev.records,
                 ev.token_issued_at, ev.key_id, ev.change, ev.principal_id, ev.owner_id))


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


_NAT64 = int(ipaddress.IPv6Address("64:ff9b::")) >> 32  # RFC 6052 well-known prefix, /96
_NAT64_LOCAL = int(ipaddress.IPv6Address("64:ff9b:1::")) >> 80  # RFC 8215 local use, /48


def embedded_v4(addr: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address | None, bool]:
    """The IPv4 address an IPv6 address stands for, if it is one of the forms that carry
    one, and whether that form may only carry a public (global) one.

    IPv4-mapped ``::ffff:a.b.c.d`` (any IPv4: how a dual-stack socket shows an IPv4 client)
    and NAT64 local-use ``64:ff9b:1::/48`` (RFC 8215, any IPv4, in the last 32 bits) carry
    any; IPv4-compatible ``::a.b.c.d`` (not ``::`` or ``::1``), 6to4 ``2002:AABB:CCDD::/48``
    (RFC 3056), Teredo ``2001::/32`` (its client address, RFC 4380) and the NAT64 well-known
    prefix ``64:ff9b::/96`` (RFC 6052) a public one only. ``ipaddress`` gives ``ipv4_mapped``,
    ``sixtofour`` and ``teredo``; IPv4-compatible and NAT64 are written here (it has neither).

    >>> [str(embedded_v4(ipaddress.IPv6Address(a))[0]) for a in (
    ...     "::ffff:52.95.110.1", "::52.95.110.1", "2002:345f:6e01::1", "64:ff9b::345f:6e01",
    ...     "64:ff9b:1::52.95.110.1", "2001:0:4136:e378:8000:63bf:cba0:91fe", "2001:db8::1",
    ...     "::1")]
    ['52.95.110.1', '52.95.110.1', '52.95.110.1', '52.95.110.1', '52.95.110.1', '52.95.110.1', 'None', 'None']
    """
    v4 = addr.ipv4_mapped
    if v4 is not None:
        return v4, False
    v4 = addr.sixtofour
    if v4 is not None:
        return v4, True
    teredo = addr.teredo
    if teredo is not None:
        return teredo[1], True
    n = int(addr)
    if n >> 32 == 0:
        return (ipaddress.IPv4Address(n), True) if n > 1 else (None, False)
    if n >> 32 == _NAT64:
        return ipaddress.IPv4Address(n & 0xFFFFFFFF), True
    if n >> 80 == _NAT64_LOCAL:
        return ipaddress.IPv4Address(n & 0xFFFFFFFF), False
    return None, False


@lru_cache(maxsize=262144)
def normal_ip(value: str) -> str | None:
    """The address ``value`` names, as every detector sees it: IPv4 unchanged; an IPv6 form
    that carries an IPv4 address (:func:`embedded_v4`) as that IPv4 address; other IPv6 in
    ``ipaddress``'s compressed lower-case form (so one address is one entity, however
    written). None when ``value`` is not an address, or is a form that may only carry a
    public IPv4 address carrying another (no such packet reaches an edge: a forged address,
    which would otherwise be classed private).

    >>> normal_ip("::FFFF:52.95.110.1"), normal_ip("2001:DB8:0::1"), normal_ip("1.2.3")
    ('52.95.110.1', '2001:db8::1', None)
    >>> normal_ip("::ffff:10.0.0.1"), normal_ip("2002:a00:1::1"), normal_ip("64:ff9b::10.0.0.1")
    ('10.0.0.1', None, None)
    """
    if _v4_ok(value):
        return value
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    if addr.version == 6:
        v4, public_only = embedded_v4(addr)
        if v4 is not None:
            return None if public_only and not v4.is_global else str(v4)
    return str(addr)


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


def _enum(obj: dict[str, Any], field: str, allowed: frozenset[str], default: str | None
          ) -> Any:  # a member of ``allowed`` or ``default``: the Literal the field declares
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
    ip = normal_ip(v)
    if ip is None:
        try:
            ipaddress.ip_address(v)
        except ValueError:
            raise _Bad("bad_value", "src_ip", "not an IPv4 or IPv6 address") from None
        raise _Bad("bad_value", "src_ip", "an IPv6 form that carries only public IPv4 "
                   "addresses (6to4, Teredo, NAT64 64:ff9b::/96, IPv4-compatible) carries "
                   "another")
    return ip


def _net_fields(ev: Event, obj: dict[str, Any], policy: Policy) -> None:
    ev.src_ip = _ip(obj)
    c = _str(obj, "country", False, 2)
    if c is not None and c not in COUNTRIES:
        raise _Bad("bad_value", "country", "not an ISO 3166-1 alpha-2 code (upper case)")
    asn = obj.get("asn")
    if asn is not None:
        if type(asn) is not int:
            raise _Bad("wrong_type", "asn", f"{type(asn).__name__}, not an integer")
        if not 0 <= asn < 2**32:
            raise _Bad("bad_value", "asn", "out of range")
    if policy.trust_geo:
        ev.country, ev.asn = c, asn
    ev.user_agent = _str(obj, "user_agent", False, MAX_TEXT_CHARS)
    ev.session_id = _str(obj, "session_id", False)


def _decode_obj(obj: dict[str, Any], kind: str | None, policy: Policy, arrival: float | None
                ) -> Event:
    kind = kind or classify(obj)
    if kind is None:
        raise _Bad("unknown_kind", "kind", "neither a login, an access nor an identity change")
    event_id = _str(obj, "event_id", True)
    assert event_id is not None  # required: _str raised otherwise
    if "ts" not in obj:
        raise _Bad("missing_field", "ts", "ts is required")
    ts = parse_ts(obj["ts"], "ts", policy.ts_min, policy.ts_max)
    if arrival is not None and policy.future_skew is not None and (
            ts > arrival + policy.future_skew):
        raise _Bad("future_ts", "ts", f"{ts - arrival:.0f} s ahead of its arrival (more than "
                   f"{policy.future_skew:g} s)")
    ev = Event(kind=kind, event_id=event_id, ts=ts, raw=obj, records=1)
    if kind == LOGIN:
        ev.account_id = _str(obj, "account_id", True)
        ev.account_type = _enum(obj, "account_type", PRINCIPAL_TYPES, "customer")
        ev.outcome = _enum(obj, "outcome", OUTCOMES, None)
        if ev.outcome is None:
            raise _Bad("missing_field", "outcome", "outcome is required")
        _net_fields(ev, obj, policy)
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
        _net_fields(ev, obj, policy)
        tia = obj.get("token_issued_at")
        if tia is not None:
            try:
                ev.token_issued_at = parse_ts(tia, "token_issued_at", policy.ts_min,
                                              policy.ts_max)
            except _Bad:  # the token's own claim (JWT iat): dropped, the request still counts
                ev.invalid_claim = "token_issued_at"
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
    if kind != IDENTITY:
        _escape_claims(ev)
    bad = _control_field(ev)
    if bad is not None:
        raise _Bad("bad_value", bad, "a control character (U+0000-001F, U+007F-009F)")
    return ev


def decode_obj(obj: Any, kind: str | None = None, policy: Policy = DEFAULT_POLICY,
               arrival: float | None = None) -> Event | Rejection:
    """Validate an already-parsed JSON value (the reference path: every reason named).

    ``arrival``: wall-clock epoch seconds when the record was received (None: no
    ``future_ts`` check). Keys and strings must be valid UTF-8 (no lone surrogates)."""
    if not isinstance(obj, dict):
        what = "a JSON array" if isinstance(obj, list) else f"a JSON {type(obj).__name__}"
        return Rejection("not_object", None, f"{what}, not an object")
    try:
        return _decode_obj(obj, kind, policy, arrival)
    except _Bad as bad:
        return bad.rejection


_WIRE = msgspec.json.Decoder(Event)


_fromiso = datetime.fromisoformat
_T = ("T", "t")
_SEPARATORS = frozenset({"--T::", "--t::"})
_ZS = ("Z", "+", "-")
_SIGNS = ("+", "-")
# addresses repeat (one per client): normal_ip of each valid one, memoised; cleared when full
_NORMAL_IPS: dict[str, str] = {}
_NORMAL_IPS_MAX = 65536
# token_issued_at repeats (one value per session): its parsed form, memoised; cleared when full
_ISSUED: dict[str, float] = {}
_ISSUED_MAX = 65536


def _accept(ev: Event, line: bytes | str, kind: str | None, policy: Policy, latest: float,
            ascii: bool) -> Event | None:
    """The rest of the contract on a struct msgspec already type-checked; None = let the
    reference path decide (it either accepts or names the reason).

    Hot path (every valid event): checks in the order of the commonest kind; any failed
    check returns None, so their order does not change the outcome.
    ``latest``: the newest ``ts`` accepted (arrival plus the allowed skew, or infinity);
    ``ascii``: whether ``line`` is (bytes: then valid UTF-8 was checked by the caller).
    """
    k: str | None = kind or ev.kind  # the wire form, as v below
    if k is None:  # kind_by_fields, written out (a call less per event; tested equal)
        k = (LOGIN if ev.outcome is not None else ACCESS if ev.subject_id is not None
             else IDENTITY if ev.change is not None else None)
        if k is None:
            return None
    elif k not in KINDS:
        return None
    if ev.event_id is None:
        return None
    v: Any = ev.ts  # the wire form (_Time | None), as msgspec checked it
    if v is None:
        return None
    ts = v if type(v) is float else _time_of(v)  # a float as is: the bounds reject inf, NaN
    if ts is None or not policy.ts_min <= ts < policy.ts_max or ts > latest:  # NaN fails too
        return None
    if k != IDENTITY:
        ip = ev.src_ip
        if ip is None:
            return None
        n = _NORMAL_IPS.get(ip)
        if n is None:
            n = normal_ip(ip)
            if n is None:
                return None
            if len(_NORMAL_IPS) >= _NORMAL_IPS_MAX:
                _NORMAL_IPS.clear()
            _NORMAL_IPS[ip] = n
        if n is not ip:  # (a field is written only when it changes: a write to a msgspec
            ev.src_ip = n  # struct is not specialised by CPython 3.11, a read is; speed)
        cc = ev.country
        if cc is not None and cc not in COUNTRIES:
            return None  # "" too: the reference path reads it as absent
        if not policy.trust_geo and (cc is not None or ev.asn is not None):
            ev.country = ev.asn = None
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
            tia: Any = ev.token_issued_at  # the wire form, as ts above
            if tia is not None:
                t = _ISSUED.get(tia) if type(tia) is str else None
                if t is None:
                    t = _time_of(tia)
                    if t is None:
                        return None
                    if type(tia) is str:
                        if len(_ISSUED) >= _ISSUED_MAX:
                            _ISSUED.clear()
                        _ISSUED[tia] = t
                if not policy.ts_min <= t < policy.ts_max:
                    return None
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
    # a control character in a string can only come from an escape, a raw DEL, or a raw C1
    # (non-ASCII): two scans of the line spare the field checks of most lines
    if (not ascii or line.find(_BACKSLASH) >= 0 or line.find(_DEL) >= 0  # type: ignore[arg-type]  # ascii: bytes
            ) and _control_field(ev):
        return None
    if k is not ev.kind:
        ev.kind = k
    ev.ts, ev.raw = ts, line
    if ev.net is not None or ev.invalid_claim is not None:  # not from the input
        ev.net = ev.invalid_claim = None
    return ev


def decode(line: bytes | str, kind: str | None = None, policy: Policy = DEFAULT_POLICY,
           arrival: float | None = None) -> Event | Rejection:
    """Parse and validate one JSON line (bytes preferred).

    Fast path: msgspec decodes and type-checks in one C pass, :func:`_accept` applies the
    rest. Anything it does not accept goes through the reference path (orjson and the
    field-by-field checks of :func:`decode_obj`), which gives the precise reason.
    ``policy``: time bounds and trust (:class:`Policy`); ``arrival``: wall-clock epoch
    seconds when the record was received (None: no ``future_ts`` check).

    The whole line must be UTF-8, unknown keys and values included (msgspec skips over
    unknown fields without checking them; orjson checks everything).
    """
    if len(line) > MAX_LINE_BYTES:
        return Rejection("too_large", None, f"line longer than {MAX_LINE_BYTES} bytes")
    ascii = line.isascii() and type(line) is bytes  # a str line: its fields are checked
    if not ascii:
        try:
            line.decode() if type(line) is bytes else line.encode()  # type: ignore[union-attr]  # by its type
        except UnicodeError:
            return Rejection("invalid_json", None, "invalid UTF-8")
    skew = policy.future_skew
    latest = math.inf if arrival is None or skew is None else arrival + skew
    try:
        ev = _accept(_WIRE.decode(line), line, kind, policy, latest, ascii)
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
    return decode_obj(obj, kind, policy, arrival)
