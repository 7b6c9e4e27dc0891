"""The ECS adapter on Filebeat's own ECS documents (tests/data/adapters/ecs/, PROVENANCE.md
there): nested and dotted field names, authentication and web access, rejections, and a stuffing
run in ECS terms raising credential_stuffing through the replay path."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from detectors.adapters import ecs
from tests.adapters_support import (
    adapt_ok,
    assert_contract,
    fuzz_fields,
    hostile_params,
    records,
    reject_of,
    run_engine,
    sample,
)

FMT = "ecs"


# Filebeat leaves @timestamp out of its syslog expectations (an auth.log line has no year); each
# is the time Filebeat's own earlier expectation gave the same line (PROVENANCE.md).
_LINE_TIME = ["2018-02-21T21:54:44.000Z", "2018-02-21T21:56:12.000Z",
              "2018-02-20T08:35:22.000Z", "2018-02-19T15:30:04.000Z",
              "2018-02-22T11:47:05.000Z"]


def _auth(i: int, *, as_published: bool = False) -> dict[str, Any]:
    r = orjson.loads(records(ecs, sample(FMT, "system_auth.jsonl"))[i])
    if not as_published:
        r["@timestamp"] = _LINE_TIME[i]
    return r


def _nginx(i: int, **changes: Any) -> dict[str, Any]:
    r = orjson.loads(records(ecs, sample(FMT, "nginx_access.jsonl"))[i])
    r.update(changes)
    return r


# ---- positives -----------------------------------------------------------------------------
def test_sshd_accepted_publickey_is_a_successful_login() -> None:
    [ev] = adapt_ok(ecs, _auth(0))
    assert ev["account_id"] == "vagrant" and ev["outcome"] == "success"
    assert ev["src_ip"] == "10.0.2.2" and ev["ts"] == "2018-02-21T21:54:44.000Z"
    assert ev["event_id"].startswith("ecs:sha256:") and len(ev["event_id"]) == 43
    assert ev["session_id"] == ev["event_id"] + "#login"
    assert "account_type" not in ev  # the contract's default: customer


def test_sshd_failures_are_failed_logins() -> None:
    evs = adapt_ok(ecs, _auth(1)) + adapt_ok(ecs, _auth(2))
    assert [(e["account_id"], e["outcome"], e["src_ip"]) for e in evs] == [
        ("test", "failure", "10.0.2.2"), ("root", "failure", "216.160.83.57")]
    assert all("session_id" not in e for e in evs)


def test_the_same_document_gets_the_same_id_and_another_one_another() -> None:
    assert adapt_ok(ecs, _auth(1))[0]["event_id"] == adapt_ok(ecs, _auth(1))[0]["event_id"]
    assert adapt_ok(ecs, _auth(1))[0]["event_id"] != adapt_ok(ecs, _auth(2))[0]["event_id"]
    r = _auth(1)
    r["event.id"] = "evt-123"
    assert adapt_ok(ecs, r)[0]["event_id"] == "ecs:evt-123"


def _nested(doc: dict[str, Any]) -> dict[str, Any]:
    """The document as Elasticsearch returns it in ``_source``: dotted keys as nested objects."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


@pytest.mark.parametrize("i", [0, 1, 2])
def test_the_same_login_nested_gives_the_same_login(i) -> None:
    nested = _nested(_auth(i))
    assert nested["user"]["name"] and "user.name" not in nested
    [a], [b] = adapt_ok(ecs, nested), adapt_ok(ecs, _auth(i))
    a.pop("session_id", None), b.pop("session_id", None)
    # the id is a digest of the document as written: another layout is another record
    assert {**a, "event_id": None} == {**b, "event_id": None}


def test_authenticated_web_request_with_dotted_keys_is_data_access() -> None:
    [ev] = adapt_ok(ecs, _nginx(0, **{"user.name": "alice"}))
    assert ev == {
        "event_id": ev["event_id"],
        "ts": "2016-12-07T10:05:07.000Z",
        "actor_id": "alice",
        "subject_id": "/ocelot",
        "resource": "ocelot",
        "action": "read",
        "src_ip": "10.0.0.2",
        "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.12; rv:49.0) Gecko/20100101 "
                      "Firefox/49.0",
    }


def test_nested_and_mixed_keys_and_client_ip() -> None:
    doc = {"@timestamp": "2024-05-01T08:00:00Z", "event": {"category": "web", "id": "r-1"},
           "user": {"id": 42}, "client": {"ip": "2001:db8::1"},
           "url": {"original": "/customers/c-000113/address?fields=all"},
           "http": {"request.method": "delete"}}
    [ev] = adapt_ok(ecs, doc)
    assert (ev["event_id"], ev["actor_id"], ev["src_ip"]) == ("ecs:r-1", "42", "2001:db8::1")
    assert ev["subject_id"] == "/customers/c-000113/address"
    assert ev["resource"] == "customers" and ev["action"] == "delete"


def test_a_long_or_odd_path_is_digested_not_rejected() -> None:
    long_path = "/customers/" + "9" * 400
    [ev] = adapt_ok(ecs, _nginx(0, **{"user.name": "alice", "url.path": long_path}))
    assert ev["subject_id"].startswith("sha256:") and len(ev["subject_id"]) == 71
    [ev] = adapt_ok(ecs, _nginx(0, **{"user.name": "alice", "url.path": "/a\u0085b"}))
    assert ev["subject_id"].startswith("sha256:")


# ---- rejections ----------------------------------------------------------------------------
@pytest.mark.parametrize("i,reason", [(0, "missing_field"), (1, "request_failed"),
                                      (2, "missing_field"), (3, "request_failed")])
def test_documented_nginx_requests_are_anonymous_or_failed(i, reason) -> None:
    assert reject_of(ecs, _nginx(i)).reason == reason


@pytest.mark.parametrize("i", [3, 4])
def test_documented_non_authentication_events_are_unsupported(i) -> None:
    assert reject_of(ecs, _auth(i)).reason == "unsupported_event"


def test_a_documented_login_without_its_timestamp_is_missing_field() -> None:
    r = reject_of(ecs, _auth(0, as_published=True))
    assert r.reason == "missing_field" and "@timestamp" in r.detail


@pytest.mark.parametrize("changes,reason", [
    ({"event.outcome": "unknown"}, "unknown_outcome"),
    ({"event.outcome": None}, "unknown_outcome"),
    ({"@timestamp": "2018-02-20 08:35:22"}, "bad_value"),
    ({"@timestamp": None}, "missing_field"),
    ({"@timestamp": 1519115722}, None),  # epoch seconds are a time too
    ({"user.name": "-"}, "missing_field"),
    ({"user.name": ["root"]}, "wrong_type"),
    ({"user.name": "r" * 257}, "too_large"),
    ({"source.ip": "not-an-ip"}, "bad_value"),
    ({"source.ip": None}, "missing_field"),
    ({"event.category": 7}, "wrong_type"),
    ({"event.category": ["process"]}, "unsupported_event"),
    ({"event.id": ""}, None),  # blank: the digest stands in
])
def test_unusable_authentication_documents(changes, reason) -> None:
    r = {"@timestamp": "2018-02-20T08:35:22.000Z", "event.category": ["authentication"],
         "event.outcome": "failure", "user.name": "root", "source.ip": "216.160.83.57"}
    r.update(changes)
    r = {k: v for k, v in r.items() if not (v is None and k in ("event.outcome", "source.ip",
                                                                  "@timestamp"))}
    if reason is None:
        adapt_ok(ecs, r)
    else:
        assert reject_of(ecs, r).reason == reason


def test_a_web_request_without_a_path_has_no_subject() -> None:
    r = _nginx(0, **{"user.name": "alice"})
    del r["url.path"], r["url.original"]
    assert reject_of(ecs, r).reason == "missing_field"


@hostile_params()
def test_hostile_input_is_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    r = reject_of(ecs, raw)
    assert not reason or r.reason == reason


@pytest.mark.parametrize("build", [lambda: _auth(0), lambda: _nginx(0, **{"user.name": "a"})],
                         ids=["auth", "web"])
def test_any_field_of_any_type_is_events_or_a_reject(build) -> None:
    assert fuzz_fields(ecs, build()) > 100


def test_every_usable_sample_decodes_as_contract_v1() -> None:
    assert_contract([ev for r in (_auth(0), _auth(1), _auth(2),
                                  _nginx(0, **{"user.name": "alice"}),
                                  _nginx(2, **{"user.name": "bob"}))
                     for ev in adapt_ok(ecs, r)])


# ---- through the engine --------------------------------------------------------------------
def test_sshd_failures_on_many_accounts_from_one_address_raise_credential_stuffing() -> None:
    evs = []
    for i in range(12):
        r = _auth(2)
        r["@timestamp"] = f"2018-02-20T08:35:{10 + i * 4:02d}.000Z"
        r["user.name"] = f"user{i}"
        r["source.port"] = 29160 + i
        evs += adapt_ok(ecs, r)
    alerts = run_engine(evs, ("credential_stuffing",))
    assert {(a["detector"], a["entity"]["kind"], a["entity"]["id"]) for a in alerts} == {
        ("credential_stuffing", "src_ip", "216.160.83.57")}


def test_a_status_code_of_thousands_of_digits_is_not_a_traceback() -> None:
    r = _nginx(0, **{"user.name": "alice", "http.response.status_code": "4" * 5000})
    assert adapt_ok(ecs, r)[0]["actor_id"] == "alice"


def test_frame_splits_an_array_export_like_beats_test_expectations() -> None:
    docs = [_nginx(0, **{"user.name": "alice"}), _auth(1)]
    recs = records(ecs, orjson.dumps(docs, option=orjson.OPT_INDENT_2))
    evs = [ev for r in recs for ev in adapt_ok(ecs, r)]
    assert [ev.get("actor_id") or ev.get("account_id") for ev in evs] == ["alice", "test"]


def test_frame_reads_an_array_of_one_document_per_line() -> None:
    a, b = (orjson.dumps(_auth(1)), orjson.dumps(_auth(2)))
    recs = records(ecs, b"[\n" + a + b",\n" + b + b"\n]\n")
    assert [orjson.loads(r) for r in recs] == [_auth(1), _auth(2)]
