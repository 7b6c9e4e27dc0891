"""`accesswatch replay --format`: real logs in, the same engine, every record accounted for."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.test_adapters_okta import _variant

ROOT = Path(__file__).resolve().parents[1]
LOGHUB = ROOT.parent / "shared" / "data" / "loghub_openssh_2k" / "OpenSSH_2k.log"


def aw(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], capture_output=True,
                          timeout=120, cwd=ROOT)


@pytest.mark.skipif(not LOGHUB.exists(), reason="../shared (the loghub OpenSSH sample) is absent")
def test_loghub_openssh_pages_its_worst_sources_and_loses_no_line(tmp_path: Path) -> None:
    rej = tmp_path / "rejects.jsonl"
    r = aw("replay", "--format", "sshd", "--year", "2016", str(LOGHUB), "--rejects", str(rej))
    assert r.returncode == 0, r.stderr
    alerts = [orjson.loads(x) for x in r.stdout.splitlines()]
    # the sources with the most failed logins in the file, counted from the raw lines
    fails: Counter[str] = Counter()
    for line in LOGHUB.read_bytes().splitlines():
        if b"Failed " in line:
            n = 1
            if b"message repeated" in line:
                n = int(line.split(b"message repeated ")[1].split(b" ")[0])
            fails[line.rsplit(b" from ", 1)[1].split(b" ")[0].decode()] += n
    top = [ip for ip, _ in fails.most_common(3)]
    paged = {a["entity"]["id"] for a in alerts if a["entity"]["kind"] == "src_ip"}
    assert set(top) <= paged, (top, paged)
    brute = {a["entity"]["id"] for a in alerts if a["detector"] == "brute_force"}
    assert fails.most_common(1)[0][0] in brute  # 183.62.140.253: root, 276 times
    assert any(a["detector"] == "brute_force" and a["severity"] == "critical" for a in alerts)
    # zero lines lost: every line is a record with events or a counted skip / reject
    lines = len([x for x in LOGHUB.read_bytes().splitlines() if x.strip()])
    recs = [orjson.loads(x) for x in rej.read_bytes().splitlines()]
    err = r.stderr.decode()
    with_events = int(err.split(f"records (sshd): {lines:,}: ")[1].split(" gave")[0])
    assert with_events + len(recs) == lines
    assert all(x["stage"] == "adapter" and x["reason"] for x in recs)
    assert "rejected: 0" in err  # the engine took every event the adapter made


def test_bad_format_and_bad_mapping_are_one_line_and_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "x.log"
    f.write_text("x\n")
    for args in (("--format", "syslogz"), ("--format", f"mapping:{tmp_path / 'none.toml'}"),
                 ("--year", "2016"), ("--format", "sshd", "--year", "3")):
        r = aw("replay", *args, str(f))
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.decode().strip().splitlines()) == 1, r.stderr
    r = aw("replay", "--format", "sshd", str(tmp_path / "missing.log"))
    assert r.returncode == 2 and b"no such file" in r.stderr


def test_adapter_rejects_are_counted_beside_the_engines(tmp_path: Path) -> None:
    f = tmp_path / "auth.log"
    f.write_bytes(b"Dec 10 07:07:45 LabSZ sshd[1]: Failed password for a from 1.2.3.4 port 1 ssh2\n"
                  b"garbage\n"
                  b"Dec 10 07:07:46 LabSZ sshd[1]: Connection closed by 1.2.3.4 [preauth]\n")
    rej = tmp_path / "rej.jsonl"
    r = aw("replay", "--format", "sshd", "--year", "2016", str(f), "--rejects", str(rej))
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    assert "rejected: 1 (sshd:unparsed_line 1)" in err
    assert "skipped 1 (connection 1)" in err
    recs = [orjson.loads(x) for x in rej.read_bytes().splitlines()]
    assert [(x["record"], x["reason"], x["skipped"]) for x in recs] == [
        (2, "unparsed_line", False), (3, "connection", True)]


# --- the mixed test: Okta logins and gateway reads meet in one engine -------------------------

GATEWAY_TOML = """
name = "gateway"
[fields]
ts = "time"
actor_id = "jwt_sub"
src_ip = "remote_addr"
path = "request_uri"
method = "request_method"
status = "status"
session_id = "jwt_sid"
token_issued_at = "jwt_iat"
event_id = "request_id"
[[routes]]
template = "/customers/{subject_id}/address"
resource = "address"
"""
T0 = 1_750_734_000  # 2025-06-24T03:00:00Z


def _iso(t: float) -> str:
    from detectors.base import iso
    return iso(t)


def test_okta_logins_and_gateway_reads_raise_unissued_session_only_for_unissued_sessions(
        tmp_path: Path) -> None:
    users = [f"user{i}@example.com" for i in range(4)]
    okta_lines, gw_lines, forged = [], [], set()
    for i, u in enumerate(users):
        t = T0 + 60 * i
        okta_lines.append(orjson.dumps(_variant(
            eventType="user.session.start", uuid=f"00000000-0000-4000-8000-00000000000{i}",
            published=_iso(t), actor__alternateId=u, client__ipAddress=f"121.134.0.{10 + i}",
            authenticationContext__externalSessionId=f"102session{i}",
            authenticationContext__credentialType="PASSWORD", target=[])))
        for k in range(3):  # reads with the session the login issued
            gw_lines.append(orjson.dumps({
                "time": _iso(t + 30 + k), "remote_addr": f"121.134.0.{10 + i}",
                "request_uri": f"/customers/{u}/address", "request_method": "GET",
                "status": 200, "jwt_sub": u, "jwt_sid": f"102session{i}", "jwt_iat": t,
                "request_id": f"ok-{i}-{k}"}))
    for i in (1, 3):  # reads with a session no Okta login issued, for the same accounts
        u = users[i]
        for k in range(2):
            rid = f"forged-{i}-{k}"
            forged.add(f"gateway-{rid}")
            gw_lines.append(orjson.dumps({
                "time": _iso(T0 + 600 + 10 * i + k), "remote_addr": "52.95.110.1",
                "request_uri": f"/customers/{u}/address", "request_method": "GET",
                "status": 200, "jwt_sub": u, "jwt_sid": f"102forged{i}", "jwt_iat": T0 + 590,
                "request_id": rid}))
    okta_file, gw_file, toml = tmp_path / "okta.jsonl", tmp_path / "gw.jsonl", tmp_path / "gw.toml"
    okta_file.write_bytes(b"\n".join(okta_lines) + b"\n")
    gw_file.write_bytes(b"\n".join(gw_lines) + b"\n")
    toml.write_text(GATEWAY_TOML)
    r = aw("replay", "--format", "okta", "--format", f"mapping:{toml}",
           str(okta_file), str(gw_file))
    assert r.returncode == 0, r.stderr
    alerts: list[dict[str, Any]] = [orjson.loads(x) for x in r.stdout.splitlines()]
    assert "events: 20 (logins 4, access 16" in r.stderr.decode()
    unissued = [a for a in alerts if a["detector"] == "unissued_session"]
    assert unissued, r.stderr
    named = {i for a in unissued for i in a["event_ids"]}
    assert named <= forged and named  # only the reads whose session no login issued
    # nothing for the others: no alert of any detector names a read with an issued session
    # (the forged reads also come from a cloud host abroad: overseas_server may page those)
    assert all(set(a["event_ids"]) <= forged for a in alerts), [
        (a["detector"], a["event_ids"]) for a in alerts]
    # the same reads with the sessions Okta issued, alone: nothing at all
    ok_file = tmp_path / "ok.jsonl"
    ok_file.write_bytes(b"\n".join(x for x in gw_lines if b"forged" not in x) + b"\n")
    r = aw("replay", "--format", "okta", "--format", f"mapping:{toml}", str(okta_file),
           str(ok_file))
    assert r.returncode == 0 and r.stdout == b"", r.stdout
