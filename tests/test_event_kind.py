"""Event kind and partition key are decided once (``detectors.events``): ``produce`` (and the
ingest agents, through it) sends an event to the topic of the kind the engine decodes it as,
keyed by the field the worker checks, on the edge cases where two copies of the rule used
to disagree (``"outcome": null`` was a login for ``produce``, absent for the engine)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from detectors import events as E
from streams import produce

TS = "2025-06-24T03:12:45Z"
LOGIN = {"event_id": "l-1", "ts": TS, "account_id": "c-1", "outcome": "success",
         "src_ip": "121.131.0.7", "session_id": "s-1"}
ACCESS = {"event_id": "a-1", "ts": TS, "actor_id": "c-1", "subject_id": "c-1",
          "resource": "address", "src_ip": "121.131.0.7", "session_id": "s-1"}
IDENTITY = {"event_id": "i-1", "ts": TS, "change": "key_revoked", "key_id": "k-1"}

CASES: list[tuple[str, dict[str, Any]]] = [
    ("login", LOGIN),
    ("access", ACCESS),
    ("identity", IDENTITY),
    ("null outcome: an access", {**ACCESS, "outcome": None}),
    ("null outcome and subject: an identity change", {**IDENTITY, "outcome": None,
                                                      "subject_id": None}),
    ("null outcome only: no kind", {k: v for k, v in LOGIN.items() if k != "outcome"}
     | {"outcome": None}),
    ("null kind counts as absent", {**LOGIN, "kind": None}),
    ("declared kind wins over the fields", {**ACCESS, "kind": "access", "outcome": "success"}),
    ("unknown declared kind", {**LOGIN, "kind": "logout"}),
    ("no kind field at all", {"event_id": "x", "ts": TS, "account_id": "c-1"}),
    ("login without its key field", {k: v for k, v in LOGIN.items() if k != "account_id"}),
    ("access with a null key field", {**ACCESS, "actor_id": None}),
    ("identity keyed by its second field", {**IDENTITY, "key_id": "", "session_id": "s-9"}),
]


def engine_kind(obj: dict[str, Any]) -> str | None:
    """The kind the engine decodes ``obj`` as (both decoders: the fast one on the bytes and
    the reference one on the object), None when it rejects it for having none."""
    kinds = set()
    for ev in (E.decode(orjson.dumps(obj), None, E.DEFAULT_POLICY, 1.8e9),
               E.decode_obj(obj, None, E.DEFAULT_POLICY, 1.8e9)):
        if isinstance(ev, E.Rejection):
            kinds.add(None if ev.reason == "unknown_kind" else f"rejected:{ev.reason}")
        else:
            kinds.add(ev.kind)
    assert len(kinds) == 1, kinds  # the two decoders agree
    return kinds.pop()


@pytest.mark.parametrize(("name", "obj"), CASES, ids=[c[0] for c in CASES])
def test_produce_sends_each_event_to_the_topic_of_the_kind_the_engine_decodes(
        name: str, obj: dict[str, Any]) -> None:
    kind, key = produce.classify(obj)
    got = engine_kind(obj)
    if got is None or kind is None:
        assert kind is None and got is None, (kind, got)
        assert isinstance(key, str)  # the reason produce reports
        return
    if got.startswith("rejected:"):  # decoded as a kind, then refused for a field of it
        assert E.classify(obj) == kind
        return
    assert kind == got
    # keyed by the field the worker checks the partition against (streams/runtime.py key_field)
    field = E.KEY_FIELDS[kind]
    expected = next((str(obj[f]).encode() for f in field if obj.get(f) not in (None, "")),
                    None)
    assert key == expected


def test_the_null_outcome_access_goes_to_the_access_topic() -> None:
    """The case that disagreed: ``produce`` sent it to auth-logins (where the worker
    dead-lettered it for a missing outcome), the engine read it as an access."""
    assert produce.classify({**ACCESS, "outcome": None}) == ("access", b"c-1")
    assert engine_kind({**ACCESS, "outcome": None}) == "access"


def test_the_runtime_keys_each_input_topic_by_the_shared_key_field(tmp_path: Any) -> None:
    from streams.app import create_app
    from streams.settings import Settings

    rt = create_app(Settings(data_dir=str(tmp_path),
                             state_keys=("test-state-key-0123456789",))).accesswatch
    assert rt.key_field == {rt.names.logins: E.KEY_FIELDS["login"][0],
                            rt.names.access: E.KEY_FIELDS["access"][0]}


@pytest.mark.parametrize("outcome", [None, "absent", "failure"])
@pytest.mark.parametrize("subject", [None, "absent", "c-2"])
@pytest.mark.parametrize("change", [None, "absent", "key_revoked"])
@pytest.mark.parametrize("ts", [TS, 1750734765.0, 1750734765])
def test_the_decoders_fast_path_tells_the_kind_as_kind_by_fields(
        outcome: Any, subject: Any, change: Any, ts: Any) -> None:
    """The fast path's written-out copy of :func:`kind_by_fields` (issue 14, speed) and its
    float-time shortcut decide as the reference path does, for every mix of the three
    fields present, null or absent, on a line that carries every kind's other fields."""
    obj: dict[str, Any] = {**LOGIN, **ACCESS, **IDENTITY, "event_id": "e", "ts": ts}
    for name, v in (("outcome", outcome), ("subject_id", subject), ("change", change)):
        if v == "absent":
            del obj[name]
        else:
            obj[name] = v
    fast, ref = E.decode(orjson.dumps(obj)), E.decode_obj(obj)
    assert type(fast) is type(ref)
    want = E.kind_by_fields(obj.get("outcome"), obj.get("subject_id"), obj.get("change"))
    if isinstance(ref, E.Event):
        assert (fast.kind, fast.ts) == (ref.kind, ref.ts) == (want, float(ts) if not  # type: ignore[union-attr]  # an Event, as ref
                                                              isinstance(ts, str) else ref.ts)
        assert E.content_key(fast) == E.content_key(ref)  # type: ignore[arg-type]  # as above
    else:
        assert fast == ref


_DIGESTED = {  # the fields content_key reads for a request and a login (detectors/events.py)
    "access": {"kind", "ts", "src_ip", "country", "asn", "user_agent", "session_id", "actor_id",
               "actor_type", "subject_id", "resource", "action", "records", "token_issued_at",
               "key_id"},
    "login": {"kind", "ts", "src_ip", "country", "asn", "user_agent", "session_id",
              "account_id", "account_type", "outcome", "device_id", "method", "records"},
}


@pytest.mark.parametrize("kind", ["access", "login"])
def test_a_digest_of_a_request_or_a_login_reads_every_field_decoding_can_set(kind: str) -> None:
    """``content_key`` skips other kinds' fields of requests and logins (speed): both
    decoding paths leave them None even on a line that carries every kind's fields, so two
    events whose decoded content differs always differ in a field the digest reads."""
    obj: dict[str, Any] = {**LOGIN, **ACCESS, **IDENTITY, "event_id": "e", "ts": TS,
                           "country": "KR", "asn": 4766, "token_issued_at": TS,
                           "key_id": "k-1", "records": 3}
    for ev in (E.decode(orjson.dumps(obj), kind), E.decode_obj(obj, kind)):
        assert isinstance(ev, E.Event) and ev.kind == kind
        for f in E.Event.__struct_fields__:
            if f not in _DIGESTED[kind] and f not in ("event_id", "raw", "net", "invalid_claim"):
                assert getattr(ev, f) is None, (kind, f)
