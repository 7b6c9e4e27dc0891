"""Event contract v1: every rule, and hostile input. Each bad line is a clear rejection."""

from __future__ import annotations

import orjson
import pytest

from detectors.events import ACCESS, IDENTITY, LOGIN, Event, Rejection, classify, decode

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


@pytest.mark.parametrize(
    "ts,reason",
    [
        ("2025-06-24T03:12:45", "bad_value"),  # no zone
        ("2025-06-24", "bad_value"),  # a date, not a time
        ("yesterday", "bad_value"),
        (True, "wrong_type"),
        ([1], "wrong_type"),
        (-5, "bad_value"),
        (1e300, "bad_value"),
        ("2025-06-24T03:12:45Z" + "0" * 100, "bad_value"),
    ],
)
def test_bad_timestamps(ts: object, reason: str) -> None:
    r = dec(with_(LOGIN_OK, ts=ts))
    assert isinstance(r, Rejection) and r.reason == reason and r.field == "ts"


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
        (ACCESS_OK, "token_issued_at", "soon", "bad_value"),
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
    r = dec({"event_id": "x", "ts": 1, "change": "principal_terminated"})
    assert isinstance(r, Rejection) and (r.reason, r.field) == ("missing_field", "principal_id")
    r = dec({"event_id": "x", "ts": 1, "change": "session_revoked"})
    assert isinstance(r, Rejection) and (r.reason, r.field) == ("missing_field", "session_id")
    ok = dec({"event_id": "x", "ts": 1, "change": "session_revoked", "session_id": "s"})
    assert isinstance(ok, Event)


def test_ipv6_and_ipv4_both_accepted() -> None:
    for ip in ("2001:db8::1", "::ffff:1.2.3.4", "10.0.0.1", "fe80::1"):
        assert isinstance(dec(with_(LOGIN_OK, src_ip=ip)), Event), ip


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


def _reference(line: bytes) -> Event | Rejection:
    """The field-by-field path alone (what the fast path must agree with)."""
    from detectors.events import decode_obj

    return decode_obj(orjson.loads(line))


FIELDS = ["event_id", "ts", "account_id", "account_type", "outcome", "src_ip", "country", "asn",
          "user_agent", "device_id", "session_id", "method", "actor_id", "actor_type",
          "subject_id", "resource", "action", "records", "token_issued_at", "key_id", "change",
          "principal_id", "owner_id", "kind"]
VALUES: list[object] = [None, "", 5, 0, -1, 1.5, True, "x" * 300, [1], {"a": 1}, "NaN", "KR", "kr",
                        "1x", "2025-06-24T03:12:45", "2025-06-24T03:12:45+09:00", 1750734765,
                        "not-an-ip", "10.0.0.1", "::1", "success", "failure", "customer",
                        "employee", "read", "export", "login", "access", "identity", "session_revoked",
                        "key_issued", "principal_terminated", 2**40, 1e300, "c-1", "u" * 2000]


def test_fast_path_agrees_with_the_reference_path_on_mutated_events() -> None:
    import random

    rng = random.Random(20251128)
    bases = [LOGIN_OK, ACCESS_OK, IDENTITY_OK, with_(ACCESS_OK, token_issued_at=1750734000,
                                                     records=10, key_id="k", country="kr", asn=4766)]
    for _ in range(20000):
        obj = dict(rng.choice(bases))
        for _ in range(rng.randint(1, 3)):
            f = rng.choice(FIELDS)
            v = rng.choice(VALUES)
            if v is None and rng.random() < 0.5:
                obj.pop(f, None)
            else:
                obj[f] = v
        line = orjson.dumps(obj)
        fast, ref = decode(line), _reference(line)
        assert type(fast) is type(ref), (obj, fast, ref)
        if isinstance(ref, Rejection):
            assert fast == ref, obj
        else:
            assert isinstance(fast, Event)
            for name in Event.__struct_fields__:
                if name != "raw":
                    assert getattr(fast, name) == getattr(ref, name), (name, obj)
