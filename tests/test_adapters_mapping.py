"""The declarative mapping adapter: a team's own access log, described in TOML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors import adapters
from detectors.adapters import mapping

# A gateway in front of the customer API writing nginx's JSON access log (the
# ``log_format ... escape=json`` form of nginx's log module documentation,
# nginx.org/en/docs/http/ngx_http_log_module.html) with the token's claims as variables.
NGINX_TOML = """
name = "gateway"
[fields]
ts = "time"
actor_id = "jwt_sub"
src_ip = "remote_addr"
path = "request_uri"
method = "request_method"
status = "status"
session_id = "jwt_sid"
key_id = "jwt_kid"
token_issued_at = "jwt_iat"
user_agent = "http_user_agent"
event_id = "request_id"

[[routes]]
template = "/customers/{subject_id}/address"
resource = "address"
[[routes]]
template = "/customers/{subject_id}/orders"
resource = "order_history"
[[routes]]
template = "/orders/{order_id}"
resource = "order_history"
subject_header = "http_x_customer_id"
"""

# Kong Gateway's File Log plugin record (developer.konghq.com/plugins/file-log/, "Log format":
# request.uri, request.method, request.headers, client_ip, started_at in epoch milliseconds,
# response.status, authenticated_entity); values ours.
KONG_TOML = """
[fields]
ts = "started_at"
actor_id = "authenticated_entity.id"
src_ip = "client_ip"
path = "request.uri"
method = "request.method"
status = "response.status"
subject_id = ["request", "headers", "x-customer.id"]
[options]
time_unit = "ms"
actor_type = "service"
[[routes]]
template = "/v1/profile"
resource = "profile"
"""


def nginx(**kw: Any) -> bytes:
    rec = {"time": "2025-06-24T03:12:45+00:00", "remote_addr": "121.134.0.7",
           "request_uri": "/customers/c-000113/address?fields=all", "request_method": "GET",
           "status": "200", "jwt_sub": "c-000113", "jwt_sid": "s-1", "jwt_kid": "kid-2025",
           "jwt_iat": "1750734700", "http_user_agent": "Mozilla/5.0", "request_id": "r-1",
           "http_x_customer_id": "-"}
    rec.update(kw)
    return orjson.dumps(rec)


@pytest.fixture
def gw(tmp_path: Path) -> adapters.Adapter:
    p = tmp_path / "gateway.toml"
    p.write_text(NGINX_TOML)
    return adapters.load(f"mapping:{p}")


def test_a_route_template_gives_subject_and_resource_and_the_fields_map(
        gw: adapters.Adapter) -> None:
    e, = gw.events(nginx(), 1)
    assert e == {**e, "event_id": "gateway-r-1", "ts": "2025-06-24T03:12:45+00:00",
                 "actor_id": "c-000113", "subject_id": "c-000113", "resource": "address",
                 "action": "read", "src_ip": "121.134.0.7", "session_id": "s-1",
                 "key_id": "kid-2025", "token_issued_at": 1750734700.0,
                 "user_agent": "Mozilla/5.0"}
    e, = gw.events(nginx(request_uri="/orders/o-9", http_x_customer_id="c-7",
                         request_method="DELETE"), 1)
    assert (e["subject_id"], e["resource"], e["action"]) == ("c-7", "order_history", "delete")


def test_percent_encoded_subjects_are_decoded(gw: adapters.Adapter) -> None:
    e, = gw.events(nginx(request_uri="/customers/c%2D42/orders"), 1)
    assert e["subject_id"] == "c-42"


@pytest.mark.parametrize(("kw", "why"), [
    ({"request_uri": "/healthz"}, ("Skip", "no_route")),
    ({"request_uri": "/customers/c-1/address/extra"}, ("Skip", "no_route")),
    ({"status": "403"}, ("Skip", "not_served")),
    ({"jwt_sub": None}, ("Reject", "missing_field")),
    ({"remote_addr": ""}, ("Reject", "missing_field")),
    ({"request_uri": "/orders/o-9", "http_x_customer_id": None}, ("Reject", "missing_field")),
    ({"status": "abc"}, ("Reject", "bad_field")),
    ({"jwt_sub": ["a"]}, ("Reject", "bad_field")),
])
def test_records_that_touch_no_data_or_lack_a_field_say_why(
        gw: adapters.Adapter, kw: dict[str, Any], why: tuple[str, str]) -> None:
    with pytest.raises(adapters.Reject) as err:
        gw.events(nginx(**kw), 1)
    assert (type(err.value).__name__, err.value.reason) == why


def test_kong_records_with_millisecond_times_and_a_dotted_header(tmp_path: Path) -> None:
    p = tmp_path / "kong.toml"
    p.write_text(KONG_TOML)
    ad = mapping.from_file(str(p))
    rec = {"started_at": 1750734765120, "client_ip": "52.95.110.1",
           "request": {"uri": "/v1/profile", "method": "GET",
                       "headers": {"x-customer.id": "c-5"}},
           "response": {"status": 200}, "authenticated_entity": {"id": "svc-crm"}}
    e, = ad.events(orjson.dumps(rec), 3)
    assert (e["ts"], e["actor_id"], e["subject_id"], e["actor_type"]) == (
        pytest.approx(1750734765.12), "svc-crm", "c-5", "service")
    assert e["event_id"] == ad.events(orjson.dumps(rec), 3)[0]["event_id"]  # reproducible
    assert e["event_id"] != ad.events(orjson.dumps(rec), 4)[0]["event_id"]
    assert ad.name == "mapping:kong"


@pytest.mark.parametrize(("text", "says"), [
    ("[fields\n", "not valid TOML"),
    ("[fields]\nts = 'time'\n", "[fields] needs 'actor_id'"),
    ("[fields]\nts='t'\nactor_id='a'\nsrc_ip='s'\npath='p'\nwho='x'\n", "unknown field 'who'"),
    ("[fields]\nts='t'\nactor_id='a'\nsrc_ip='s'\npath='p'\n", "at least one [[routes]]"),
    ("[fields]\nts='t'\nactor_id='a'\nsrc_ip='s'\npath='p'\n[[routes]]\ntemplate='/x/{id}'\n"
     "resource='r'\n", "no subject"),
    ("[fields]\nts='t'\nactor_id='a'\nsrc_ip='s'\npath='p'\n[[routes]]\n"
     "template='/x/{subject_id'\nresource='r'\n", "brace"),
    ("[fields]\nts='t'\nactor_id='a'\nsrc_ip='s'\npath='p'\n[[routes]]\n"
     "template='/x/{subject_id}'\nresource='r'\naction='steal'\n", "action must be one of"),
    ("[fields]\nts='t..x'\nactor_id='a'\nsrc_ip='s'\npath='p'\n", "dotted path"),
])
def test_a_bad_mapping_file_is_one_readable_line(tmp_path: Path, text: str, says: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ValueError) as err:
        adapters.load(f"mapping:{p}")
    msg = str(err.value)
    assert says in msg and "\n" not in msg and str(p) in msg


def test_a_missing_mapping_file_is_one_readable_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mapping file not found"):
        adapters.load(f"mapping:{tmp_path / 'none.toml'}")


@pytest.mark.parametrize(("raw", "reason"), [
    (b"", "invalid_json"),
    (b"not json", "invalid_json"),
    (b'{"time": "2025-06-24T03:12:45+00:00"', "invalid_json"),
    (b'{"a": 1} trailing', "invalid_json"),
    (b'{"jwt_sub": "c-\xff"}', "invalid_json"),  # not UTF-8 in a member the mapping reads
    (b"[1, 2]", "not_an_object"),
    (b'"a string"', "not_an_object"),
    (b"null", "not_an_object"),
    (b"{}", "missing_field"),
    (b'{"jwt_sub": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "invalid_json"),
    (b'{"other": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "invalid_json"),
])
def test_records_that_are_no_json_object_are_rejected_with_a_reason(
        gw: adapters.Adapter, raw: bytes, reason: str) -> None:
    r = _reject(gw, raw)
    assert type(r) is adapters.Reject and r.reason == reason, r


def _reject(ad: adapters.Adapter, raw: bytes) -> adapters.Reject:
    with pytest.raises(adapters.Reject) as err:
        ad.events(raw, 1)
    return err.value


def test_members_the_mapping_does_not_name_are_not_read(gw: adapters.Adapter) -> None:
    """Only the named members are decoded: bytes that are not UTF-8 or nested values in another
    member neither reject the record nor reach its event."""
    rec = nginx()[:-1] + b', "other": "\xff", "deep": ' + b"[" * 50 + b"]" * 50 + b"}"
    e, = gw.events(rec, 1)
    assert e == gw.events(nginx(), 1)[0]


def test_a_nested_path_through_a_value_that_is_no_object_is_a_missing_field(
        tmp_path: Path) -> None:
    p = tmp_path / "kong.toml"
    p.write_text(KONG_TOML)
    ad = mapping.from_file(str(p))
    rec = {"started_at": 1750734765120, "client_ip": "52.95.110.1",
           "request": {"uri": "/v1/profile", "method": "GET", "headers": {"x-customer.id": "c-5"}},
           "response": {"status": 200}, "authenticated_entity": "svc-crm"}
    assert _reject(ad, orjson.dumps(rec)).detail == "actor_id"
    rec["authenticated_entity"] = {"id": "svc-crm"}
    rec["request"]["headers"] = ["x-customer.id", "c-5"]
    assert _reject(ad, orjson.dumps(rec)).detail == "subject_id"


def test_the_id_digest_tells_records_and_positions_apart(tmp_path: Path) -> None:
    p = tmp_path / "noid.toml"
    p.write_text(NGINX_TOML.replace('event_id = "request_id"\n', ""))
    ad = adapters.load(f"mapping:{p}")
    ids = {ad.events(nginx(request_id=f"r-{i}"), pos)[0]["event_id"]
           for i in range(3) for pos in (1, 2)}
    assert len(ids) == 6 and all(i.startswith("gateway-") and len(i) == 28 for i in ids)
    assert ad.events(nginx(), 7)[0]["event_id"] == ad.events(nginx(), 7)[0]["event_id"]
