"""Event contract v1: every rule, and hostile input. Each bad line is a clear rejection."""

from __future__ import annotations

import ipaddress
import random

import orjson
import pytest

from detectors.events import (
    ACCESS,
    COUNTRIES,
    DEFAULT_POLICY,
    IDENTITY,
    LOGIN,
    Event,
    Policy,
    Rejection,
    classify,
    decode,
    decode_obj,
)

LOGIN_OK = {
    "event_id": "e1",
    "ts": "2025-06-24T03:12:45.120Z",
    "account_id": "c-1",
    "outcome": "success",
    "src_ip": "121.131.0.7",
    "session_id": "s-1",
}
ACCESS_OK = {
    "event_id": "e2",
    "ts": 1750734765.5,
    "actor_id": "c-1",
    "subject_id": "c-1",
    "resource": "address",
    "src_ip": "2001:db8::1",
}
IDENTITY_OK = {"event_id": "e3", "ts": 1750734765, "change": "key_issued", "key_id": "k1"}


def dec(obj: object) -> Event | Rejection:
    return decode(orjson.dumps(obj))


def with_(base: dict, **kw: object) -> dict:
    d = dict(base)
    for k, v in kw.items():
        if v is ...:
            d.pop(k, None)
        else:
            d[k] = v
    return d


def test_valid_events_of_each_kind() -> None:
    lo, ac, idn = dec(LOGIN_OK), dec(ACCESS_OK), dec(IDENTITY_OK)
    assert isinstance(lo, Event) and lo.kind == LOGIN and lo.account_type == "customer"
    assert lo.ts == pytest.approx(1750734765.12)
    assert isinstance(ac, Event) and ac.kind == ACCESS
    assert (ac.action, ac.records, ac.actor_type) == ("read", 1, "customer")
    assert isinstance(idn, Event) and idn.kind == IDENTITY and idn.change == "key_issued"


def test_both_timestamp_forms_and_zones_agree() -> None:
    a = dec(with_(LOGIN_OK, ts="2025-06-24T12:12:45.120+09:00"))
    b = dec(with_(LOGIN_OK, ts=1750734765.12))
    assert isinstance(a, Event) and isinstance(b, Event)
    assert a.ts == pytest.approx(b.ts)


def test_the_fast_time_path_gives_the_reference_paths_time_or_none() -> None:
    """``_time_of``'s fast path (``YYYY-MM-DDTHH:MM:SS.fffZ``, minute remembered) returns the
    float the reference path (``datetime.fromisoformat(...).timestamp()``) does, or None where
    it does, on seeded times in and out of the calendar and with one character changed
    (a wrong separator, a lower-case zone, a non-ASCII digit)."""
    from detectors.events import _time_of, _time_of_reference

    rng = random.Random(14)
    fast = 0
    for _ in range(40_000):
        y = rng.choice((1, 1969, 1970, 2024, 2026, 9999)) if rng.random() < 0.3 else \
            rng.randint(1900, 2100)
        v = (f"{y:04d}-{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d}T"
             f"{rng.randint(0, 25):02d}:{rng.randint(0, 61):02d}:{rng.randint(0, 61):02d}."
             f"{rng.randint(0, 999):03d}Z")
        if rng.random() < 0.15:
            i = rng.randrange(len(v))
            v = v[:i] + rng.choice("Zz.:-T t+0\u0663\u00b2") + v[i + 1:]
        want = _time_of_reference(v)
        assert _time_of(v) == want, v
        assert _time_of(v) == want, v  # the minute remembered: the same again
        fast += want is not None
    assert fast > 15_000  # most of them valid times: the fast path's answer was compared


@pytest.mark.parametrize(
    "ts,reason",
    [
        ("2025-06-24T03:12:45", "bad_value"),  # no zone
        ("2025-06-24", "bad_value"),  # a date, not a time
        ("yesterday", "bad_value"),
        (True, "wrong_type"),
        ([1], "wrong_type"),
        (-5, "ts_out_of_range"),
        (1e300, "ts_out_of_range"),
        ("2025-06-24T03:12:45Z" + "0" * 100, "bad_value"),
        # years 2000-2100 by default, in both forms
        ("9999-12-31T23:59:59-23:59", "ts_out_of_range"),  # not even representable in UTC
        ("9999-12-31T23:59:59Z", "ts_out_of_range"),
        ("0001-01-01T00:00:00+00:01", "ts_out_of_range"),
        ("1999-12-31T23:59:59Z", "ts_out_of_range"),
        ("2101-01-01T00:00:00Z", "ts_out_of_range"),
        (946684799, "ts_out_of_range"),  # 1999-12-31T23:59:59Z
        (4133980800, "ts_out_of_range"),  # 2101-01-01T00:00:00Z
        (253402300799, "ts_out_of_range"),  # 9999-12-31T23:59:59Z
        (1, "ts_out_of_range"),
        # RFC 3339 = ISO 8601 extended format with seconds and a zone, nothing else
        ("20250624T031245Z", "bad_value"),  # basic format
        ("2025-06-24T031245Z", "bad_value"),
        ("20250624T03:12:45Z", "bad_value"),
        ("2025-06-24T03:12:45+0900", "bad_value"),  # basic zone
        ("2025-06-24T03:12Z", "bad_value"),  # no seconds
        ("2025-W26-2T03:12:45Z", "bad_value"),  # week date
        ("2025-175T03:12:45Z", "bad_value"),  # ordinal date
        ("2025-06-24T03:12:45,5Z", "bad_value"),  # comma fraction
        ("2025-06-24T03:12:45.Z", "bad_value"),  # a point without digits
        ("2025-06-24T03:12:45+09:00:30", "bad_value"),  # zone with seconds
        ("2025-06-24T03:12:45+09:00.5", "bad_value"),
        ("2025-06-24 03:12:45Z", "bad_value"),
        ("2025-06-24T03:12:45 Z", "bad_value"),
        ("2025-06-24T03:12:45z", "bad_value"),
        ("２０２５-06-24T03:12:45Z", "bad_value"),  # non-ASCII digits
        ("2025-02-30T03:12:45Z", "bad_value"),  # no such day
        ("2025-06-24T24:00:00Z", "bad_value"),
    ],
)
def test_bad_timestamps(ts: object, reason: str) -> None:
    r = dec(with_(LOGIN_OK, ts=ts))
    assert isinstance(r, Rejection) and r.reason == reason and r.field == "ts"


@pytest.mark.parametrize("tia", [
    "9999-12-31T23:59:59-23:59", "1999-12-31T23:59:59Z", 1, 253402300799, 0,
    "20250624T031245Z", "2025-06-24T03:12:45", "2025-02-30T03:12:45Z", "soon", [1], 2e30])
def test_a_bad_token_issued_at_is_dropped_and_the_request_kept(tia: object) -> None:
    """The token's own claim (JWT iat) is the attacker's to choose: an impossible one must not
    send every request of theirs to the dead-letter topic, away from the detectors."""
    e = dec(with_(ACCESS_OK, token_issued_at=tia))
    assert isinstance(e, Event), e
    assert e.token_issued_at is None and e.invalid_claim == "token_issued_at"
    assert decode(orjson.dumps(with_(ACCESS_OK, token_issued_at=tia))) == e  # fast path too
    ok = dec(with_(ACCESS_OK, token_issued_at="2025-06-24T03:00:00Z"))
    assert isinstance(ok, Event) and ok.invalid_claim is None and ok.token_issued_at


@pytest.mark.parametrize("ts", ["2025-06-24T03:12:45Z", "2025-06-24t03:12:45.123456789Z",
                                "2025-06-24T12:12:45+09:00", "2025-06-23T23:12:45.5-04:00",
                                "2000-01-01T00:00:00Z", "2100-12-31T23:59:59.999Z",
                                946684800, 4133980799.5])
def test_rfc3339_and_epoch_times_in_range_are_accepted(ts: object) -> None:
    assert isinstance(dec(with_(LOGIN_OK, ts=ts)), Event)
    assert isinstance(dec(with_(ACCESS_OK, token_issued_at=ts)), Event)


def test_accepted_years_are_configurable() -> None:
    old = with_(LOGIN_OK, ts="1995-01-01T00:00:00Z")
    assert dec(old).reason == "ts_out_of_range"  # type: ignore[union-attr]
    wide = Policy.years(1990, 2030)
    assert isinstance(decode(orjson.dumps(old), policy=wide), Event)
    late = orjson.dumps(with_(LOGIN_OK, ts="2031-01-01T00:00:00Z"))
    r = decode(late, policy=wide)
    assert isinstance(r, Rejection) and r.reason == "ts_out_of_range"
    assert decode_obj(orjson.loads(late), policy=wide) == r
    with pytest.raises(ValueError):
        Policy.years(2100, 2000)


def test_an_event_far_ahead_of_its_arrival_is_rejected() -> None:
    line = orjson.dumps(LOGIN_OK)  # 2025-06-24T03:12:45.120Z = 1750734765.12
    ts = 1750734765.12
    for arrival, ok in ((ts, True), (ts - 300, True), (ts - 301, False), (ts - 86400, False),
                        (ts + 86400 * 365, True), (None, True)):
        r = decode(line, arrival=arrival)
        assert isinstance(r, Event) is ok, arrival
        assert (decode_obj(orjson.loads(line), arrival=arrival) == r) if not ok else True
        if not ok:
            assert isinstance(r, Rejection) and (r.reason, r.field) == ("future_ts", "ts")
    assert isinstance(decode(line, policy=Policy(future_skew=None), arrival=ts - 86400), Event)
    assert isinstance(decode(line, policy=Policy(future_skew=3600), arrival=ts - 3000), Event)
    # the token's own issue time is a claim about the past: range-checked, not skew-checked
    tok = orjson.dumps(with_(ACCESS_OK, ts=ts, token_issued_at=ts + 86400))
    assert isinstance(decode(tok, arrival=ts), Event)


def test_unknown_fields_are_kept() -> None:
    e = dec(with_(LOGIN_OK, tenant="kr-1", nested={"a": [1, 2]}))
    assert isinstance(e, Event)
    assert e.fields()["tenant"] == "kr-1" and e.fields()["nested"] == {"a": [1, 2]}


@pytest.mark.parametrize(
    "base,field",
    [
        (LOGIN_OK, "event_id"),
        (LOGIN_OK, "ts"),
        (LOGIN_OK, "account_id"),
        (with_(LOGIN_OK, kind="login"), "outcome"),
        (LOGIN_OK, "src_ip"),
        (LOGIN_OK, "session_id"),  # required on success
        (ACCESS_OK, "actor_id"),
        (ACCESS_OK, "resource"),
        (ACCESS_OK, "src_ip"),
    ],
)
def test_missing_required_fields(base: dict, field: str) -> None:
    r = dec(with_(base, **{field: ...}))
    assert isinstance(r, Rejection)
    assert (r.reason, r.field) == ("missing_field", field)


def test_subject_missing_makes_kind_unknown_unless_kind_says() -> None:
    r = dec(with_(ACCESS_OK, subject_id=...))
    assert isinstance(r, Rejection) and r.reason == "unknown_kind"
    r = dec(with_(ACCESS_OK, subject_id=..., kind="access"))
    assert isinstance(r, Rejection) and (r.reason, r.field) == ("missing_field", "subject_id")


def test_failed_login_needs_no_session() -> None:
    assert isinstance(dec(with_(LOGIN_OK, outcome="failure", session_id=...)), Event)


@pytest.mark.parametrize(
    "base,field,value,reason",
    [
        (LOGIN_OK, "account_type", "robot", "bad_value"),
        (LOGIN_OK, "outcome", "maybe", "bad_value"),
        (LOGIN_OK, "method", "telepathy", "bad_value"),
        (LOGIN_OK, "src_ip", "999.1.1.1", "bad_value"),
        (LOGIN_OK, "src_ip", "not-an-ip", "bad_value"),
        (LOGIN_OK, "src_ip", 12345, "wrong_type"),
        (LOGIN_OK, "country", "KOR", "too_large"),
        (LOGIN_OK, "country", "1x", "bad_value"),
        (LOGIN_OK, "country", "kr", "bad_value"),  # upper case only
        (LOGIN_OK, "country", "ZZ", "bad_value"),  # not an assigned code
        (LOGIN_OK, "country", "EU", "bad_value"),
        (LOGIN_OK, "country", "KÖ", "bad_value"),
        (LOGIN_OK, "country", "ＫＲ", "bad_value"),  # full-width letters
        (LOGIN_OK, "country", "K\u0000", "bad_value"),
        (LOGIN_OK, "asn", "4766", "wrong_type"),
        (LOGIN_OK, "asn", 1.5, "wrong_type"),
        (LOGIN_OK, "asn", -1, "bad_value"),
        (LOGIN_OK, "account_id", 17, "wrong_type"),
        (LOGIN_OK, "account_id", "", "bad_value"),
        (LOGIN_OK, "account_id", "x" * 300, "too_large"),
        (LOGIN_OK, "event_id", None, "missing_field"),
        (ACCESS_OK, "action", "steal", "bad_value"),
        (ACCESS_OK, "records", 0, "bad_value"),
        (ACCESS_OK, "records", "10", "wrong_type"),
        (ACCESS_OK, "records", True, "wrong_type"),
        (ACCESS_OK, "actor_type", 3, "wrong_type"),
        (ACCESS_OK, "user_agent", "u" * 5000, "too_large"),
        (IDENTITY_OK, "change", "key_stolen", "bad_value"),
        (IDENTITY_OK, "key_id", ..., "missing_field"),
    ],
)
def test_wrong_types_and_values(base: dict, field: str, value: object, reason: str) -> None:
    r = dec(with_(base, **{field: value}))
    assert isinstance(r, Rejection), r
    assert (r.reason, r.field) == (reason, field)


def test_identity_required_fields_depend_on_change() -> None:
    r = dec({"event_id": "x", "ts": 1750734765, "change": "principal_terminated"})
    assert isinstance(r, Rejection) and (r.reason, r.field) == ("missing_field", "principal_id")
    r = dec({"event_id": "x", "ts": 1750734765, "change": "session_revoked"})
    assert isinstance(r, Rejection) and (r.reason, r.field) == ("missing_field", "session_id")
    ok = dec({"event_id": "x", "ts": 1750734765, "change": "session_revoked", "session_id": "s"})
    assert isinstance(ok, Event)


@pytest.mark.parametrize("field", ["event_id", "account_id"])
@pytest.mark.parametrize("text", ["c-1\n2025-06-24 RESOLVED all clear", "c-1\u001b[2J", "c\u0000",
                                  "c\u007f", "c\u009b31m", "c\r", "c\t"])
def test_control_characters_in_text_fields_are_rejected(field: str, text: str) -> None:
    r = dec(with_(LOGIN_OK, **{field: text}))
    assert isinstance(r, Rejection) and (r.reason, r.field) == ("bad_value", field), r
    assert decode(orjson.dumps(with_(LOGIN_OK, **{field: text})).decode()) == r  # str input


@pytest.mark.parametrize("field", ["session_id", "device_id", "user_agent"])
@pytest.mark.parametrize("text", ["c-1\n2025-06-24 RESOLVED all clear", "c-1\u001b[2J",
                                  "c\u0000", "c\u007f", "c\u009b31m", "c\r", "c\t"])
def test_control_characters_in_client_chosen_fields_are_escaped_and_counted(
        field: str, text: str) -> None:
    """The client chooses its User-Agent and its token's ids: control characters there are
    written as visible escapes and the event kept (``invalid_claim``), not rejected."""
    e = dec(with_(LOGIN_OK, **{field: text}))
    assert isinstance(e, Event) and e.invalid_claim == field, e
    v = getattr(e, field)
    assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in v)
    assert v.startswith("c") and "\\x" in v
    assert decode(orjson.dumps(with_(LOGIN_OK, **{field: text})).decode()) == e  # str input
    a = dec(with_(ACCESS_OK, key_id=text))
    assert isinstance(a, Event) and a.invalid_claim == "key_id" and "\\x" in a.key_id
    r = dec({"event_id": "x", "ts": 1750734765, "change": "session_revoked",
             "session_id": text})  # from the key store / IdP: no excuse, rejected
    assert isinstance(r, Rejection) and (r.reason, r.field) == ("bad_value", "session_id")


def test_an_input_field_cannot_claim_an_invalid_claim() -> None:
    e = dec(with_(ACCESS_OK, invalid_claim="key_id", net="x"))
    assert isinstance(e, Event) and e.invalid_claim is None and e.net is None
    assert decode(orjson.dumps(with_(ACCESS_OK, invalid_claim="key_id"))).invalid_claim is None


def test_other_non_ascii_text_is_kept() -> None:
    e = dec(with_(LOGIN_OK, account_id="고객-1", user_agent="Mozilla/5.0 (Linux; Android 14) ©"))
    assert isinstance(e, Event) and e.account_id == "고객-1"


def test_ipv6_and_ipv4_both_accepted() -> None:
    for ip in ("2001:db8::1", "::ffff:1.2.3.4", "10.0.0.1", "fe80::1"):
        assert isinstance(dec(with_(LOGIN_OK, src_ip=ip)), Event), ip


@pytest.mark.parametrize("ip,seen", [
    ("::ffff:52.95.110.1", "52.95.110.1"), ("::FFFF:345F:6E01", "52.95.110.1"),
    ("::ffff:10.0.0.1", "10.0.0.1"),  # a dual-stack socket's view of an internal client
    ("::52.95.110.1", "52.95.110.1"), ("64:ff9b::52.95.110.1", "52.95.110.1"),
    ("64:ff9b:1::52.95.110.1", "52.95.110.1"), ("64:ff9b:1:abcd::10.1.2.3", "10.1.2.3"),
    ("2002:345f:6e01::1", "52.95.110.1"), ("2001:0:4136:e378:8000:63bf:cba0:91fe", "52.95.110.1"),
    ("2001:DB8:0:0::1", "2001:db8::1"), ("::1", "::1"), ("::", "::"),
])
def test_ipv6_forms_are_read_as_the_address_they_carry(ip: str, seen: str) -> None:
    for base in (LOGIN_OK, ACCESS_OK):
        line = orjson.dumps(with_(base, src_ip=ip))
        e, ref = decode(line), decode_obj(orjson.loads(line))
        assert isinstance(e, Event) and isinstance(ref, Event)
        assert e.src_ip == ref.src_ip == seen
        assert e.fields()["src_ip"] == ip  # the original form stays in the raw event


@pytest.mark.parametrize("ip", ["2002:a00:1::1", "64:ff9b::10.0.0.1", "::10.0.0.1",
                                "::127.0.0.1", "2001:0:4136:e378:8000:63bf:3fff:fdd2"])
def test_forms_that_carry_only_public_ipv4_addresses_cannot_carry_a_private_one(ip: str) -> None:
    """Such an address reaches no edge: forged, it would otherwise be classed private."""
    r = dec(with_(ACCESS_OK, src_ip=ip))
    assert isinstance(r, Rejection) and (r.reason, r.field) == ("bad_value", "src_ip")
    assert "public" in r.detail


def test_classify_by_fields_or_kind() -> None:
    assert classify(LOGIN_OK) == LOGIN
    assert classify(ACCESS_OK) == ACCESS
    assert classify(IDENTITY_OK) == IDENTITY
    assert classify({"kind": "identity", "outcome": "x"}) == IDENTITY
    assert classify({"kind": "weird"}) is None
    assert classify({"event_id": "x"}) is None


@pytest.mark.parametrize(
    "line,reason",
    [
        (b"", "invalid_json"),
        (b"   \n", "invalid_json"),
        (b"{", "invalid_json"),
        (b'{"ts": NaN}', "invalid_json"),
        (b'{"ts": Infinity}', "invalid_json"),
        (b'{"event_id": "e", "ts": -Infinity}', "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        (b'{"event_id": "\xc3\x28"}', "invalid_json"),
        (b"[" * 5000 + b"]" * 5000, "invalid_json"),
        (b"[1, 2]", "not_object"),
        (b'"a string"', "not_object"),
        (b"42", "not_object"),
        (b"null", "not_object"),
        (b'{"a": 1}', "unknown_kind"),
    ],
)
def test_hostile_lines(line: bytes, reason: str) -> None:
    r = decode(line)
    assert isinstance(r, Rejection) and r.reason == reason


@pytest.mark.parametrize("where", ["known key", "unknown key", "known value", "unknown value",
                                   "escaped surrogate"])
def test_invalid_utf8_anywhere_in_the_line_is_rejected(where: str) -> None:
    """Fails on ef303a3 for unknown keys and values: msgspec skips them unread."""
    ok = orjson.dumps(LOGIN_OK)
    line = {
        "known key": ok.replace(b'"account_id"', b'"account\xff_id"'),
        "unknown key": ok[:-1] + b', "n\xc3\x28ote": 1}',
        "known value": ok.replace(b'"c-1"', b'"c-\xed\xa0\x80"'),
        "unknown value": ok[:-1] + b', "note": "\xc0\xaf"}',
        "escaped surrogate": ok[:-1] + b', "note": "\\ud83d"}',
    }[where]
    r = decode(line)
    assert isinstance(r, Rejection) and r.reason == "invalid_json", r
    assert decode(line.decode("utf-8", "surrogateescape")) == r  # the same line as str


def test_huge_line_is_rejected_without_parsing() -> None:
    big = b'{"event_id": "' + b"x" * (1024 * 1024) + b'"}'
    r = decode(big)
    assert isinstance(r, Rejection) and r.reason == "too_large"


def test_deeply_nested_junk_inside_an_object_is_kept_or_rejected_cleanly() -> None:
    nested = b'{"junk": ' + b'{"a": ' * 200 + b"1" + b"}" * 200 + b"}"
    r = decode(nested)
    assert isinstance(r, Rejection) and r.reason == "unknown_kind"
    ok = orjson.loads(orjson.dumps(LOGIN_OK))
    line = orjson.dumps(ok)[:-1] + b', "junk": ' + b"[" * 300 + b"]" * 300 + b"}"
    e = decode(line)
    assert isinstance(e, Event) and e.fields()["junk"]


def test_str_input_accepted() -> None:
    assert isinstance(decode(orjson.dumps(LOGIN_OK).decode()), Event)


def _reference(line: bytes, policy: Policy = DEFAULT_POLICY, arrival: float | None = None
               ) -> Event | Rejection:
    """The field-by-field path alone (what the fast path must agree with): orjson, which
    checks the whole line is UTF-8, then :func:`decode_obj`."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return Rejection("invalid_json", None, "")
    return decode_obj(obj, None, policy, arrival)


FIELDS = ["event_id", "ts", "account_id", "account_type", "outcome", "src_ip", "country", "asn",
          "user_agent", "device_id", "session_id", "method", "actor_id", "actor_type",
          "subject_id", "resource", "action", "records", "token_issued_at", "key_id", "change",
          "principal_id", "owner_id", "kind"]
VALUES: list[object] = [None, "", 5, 0, -1, 1.5, True, "x" * 300, [1], {"a": 1}, "NaN", "KR", "kr",
                        "1x", "2025-06-24T03:12:45", "2025-06-24T03:12:45+09:00", 1750734765,
                        "not-an-ip", "10.0.0.1", "::1", "success", "failure", "customer",
                        "employee", "read", "export", "login", "access", "identity", "session_revoked",
                        "key_issued", "principal_terminated", 2**40, 1e300, "c-1", "u" * 2000,
                        # times: bad forms, edges of the accepted years, far future
                        "9999-12-31T23:59:59-23:59", "20250624T031245Z", "2025-06-24T03:12Z",
                        "2025-06-24T03:12:45+0900", "2025-W26-2T03:12:45Z", "1999-12-31T23:59:59Z",
                        "2100-12-31T23:59:59Z", "2101-01-01T00:00:00Z", "2025-06-24T03:12:45.Z",
                        "2025-06-24T03:12:45,5Z", "2025-06-24T03:12:45z", 946684799, 946684800,
                        4133980800, 253402300799, -1e-9, 1750734765 + 86400 * 30,
                        "2025-07-24T03:12:45Z",
                        # countries: unassigned, lower case, non-ASCII
                        "ZZ", "EU", "XK", "US", "KÖ", "ＫＲ", "k\u0130",
                        # addresses that carry an IPv4 address, and other spellings
                        "::ffff:52.95.110.1", "::52.95.110.1", "64:ff9b::345f:6e01",
                        "64:ff9b:1::52.95.110.1", "2002:345f:6e01::1", "2001:DB8::1", "::",
                        "::ffff:10.0.0.1", "fe80::1%eth0", "2002:a00:1::1", "64:ff9b::10.0.0.1",
                        "2001:0:4136:e378:8000:63bf:cba0:91fe", "64:ff9b:1::10.0.0.1",
                        # control characters (escaped in JSON, or raw DEL and C1)
                        "c-1\u001b[2J", "c\u0000", "c\n", "a\u007f", "b\u0085", "é-ok", "\u00a0"]


BAD_BYTES = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xc0\xaf",
             b"\xe2\x82", b"\x80"]


def _byte_mutation(line: bytes, rng: random.Random) -> bytes:
    """Invalid UTF-8 (in a key or a value, known or unknown field), an escaped lone
    surrogate, or an extra key that is not valid UTF-8."""
    bad = rng.choice(BAD_BYTES)
    quotes = [i for i, c in enumerate(line) if c == ord('"')]
    r = rng.random()
    if r < 0.4 and quotes:  # inside a key or a string value, next to a quote
        i = rng.choice(quotes)
        return line[:i] + bad + line[i:]
    if r < 0.6:
        return line[:-1] + b', "' + bad + b'x": 1}'  # an unknown key
    if r < 0.8:
        return line[:-1] + b', "note": "a' + bad + b'"}'  # an unknown field's value
    return line[:-1] + b', "' + rng.choice([b"note", b"country", b"event_id"]) + b'": "\\ud83d"}'


def test_fast_path_agrees_with_the_reference_path_on_mutated_events() -> None:
    rng = random.Random(20251128)
    bases = [LOGIN_OK, ACCESS_OK, IDENTITY_OK, with_(ACCESS_OK, token_issued_at=1750734000,
                                                     records=10, key_id="k", country="KR", asn=4766)]
    policies = [Policy(), Policy(trust_geo=True), Policy.years(2020, 2030, future_skew=None),
                Policy(future_skew=0.0, trust_geo=True)]
    kinds = {Event: 0, Rejection: 0}
    for i in range(20000):
        obj = dict(rng.choice(bases))
        for _ in range(rng.randint(1, 3)):
            f = rng.choice(FIELDS)
            v = rng.choice(VALUES)
            if v is None and rng.random() < 0.5:
                obj.pop(f, None)
            else:
                obj[f] = v
        line = orjson.dumps(obj)
        if i % 5 == 0:
            line = _byte_mutation(line, rng)
        policy = policies[i % len(policies)]
        arrival = rng.choice([None, 1750734765.0, 1750734765.0 - 400, 1750734765.0 + 86400])
        fast, ref = decode(line, None, policy, arrival), _reference(line, policy, arrival)
        assert type(fast) is type(ref), (line, fast, ref)
        kinds[type(fast)] += 1
        if isinstance(ref, Rejection):
            assert isinstance(fast, Rejection)
            assert (fast.reason, fast.field) == (ref.reason, ref.field), line
            if ref.reason != "invalid_json":
                assert fast == ref, line
        else:
            assert isinstance(fast, Event)
            for name in Event.__struct_fields__:
                if name != "raw":
                    assert getattr(fast, name) == getattr(ref, name), (name, line)
            assert fast.country is None or fast.country in COUNTRIES
            assert fast.country is None or policy.trust_geo
            assert str(ipaddress.ip_address(fast.src_ip or "::")) == (fast.src_ip or "::")
    assert kinds[Event] > 2000 and kinds[Rejection] > 2000, kinds
