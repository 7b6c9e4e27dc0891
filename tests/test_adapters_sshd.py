"""The sshd adapter on real lines: events, skips and rejects, each with its reason."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import orjson
import pytest

from detectors import adapters
from detectors.adapters import sshd

# --- samples, each with where it comes from -------------------------------------------------
# Loghub OpenSSH_2k.log (github.com/logpai/loghub, OpenSSH/, a lab server "LabSZ", Dec 10):
LABSZ_FAILED = (b"Dec 10 07:07:45 LabSZ sshd[24206]: Failed password for invalid user test9 "
                b"from 52.80.34.196 port 36060 ssh2")
LABSZ_FAILED_ROOT = (b"Dec 10 10:54:33 LabSZ sshd[24872]: Failed password for root from "
                     b"183.62.140.253 port 34263 ssh2")
LABSZ_REPEATED = (b"Dec 10 07:13:56 LabSZ sshd[24227]: message repeated 5 times: [ Failed "
                  b"password for root from 5.36.59.76 port 42393 ssh2]")
LABSZ_INVALID = b"Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186"
LABSZ_PAM_DUP = (b"Dec 10 06:55:46 LabSZ sshd[24200]: pam_unix(sshd:auth): authentication "
                 b"failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=173.234.31.186 ")
LABSZ_PAM_MORE = (b"Dec 10 08:25:22 LabSZ sshd[24369]: PAM 4 more authentication failures; "
                  b"logname= uid=0 euid=0 tty=ssh ruser= rhost=5.188.10.180 ")
LABSZ_CLOSED = b"Dec 10 07:02:47 LabSZ sshd[24203]: Connection closed by 212.47.254.145 [preauth]"
LABSZ_REVERSE = (b"Dec 10 06:55:46 LabSZ sshd[24200]: reverse mapping checking getaddrinfo for "
                 b"ns.marryaldkfaczcz.com [173.234.31.186] failed - POSSIBLE BREAK-IN ATTEMPT!")
# Loghub Linux_2k.log (github.com/logpai/loghub, Linux/, host "combo", 2005): old PAM lines
COMBO_PAM_HOST = (b"Jun 15 02:04:59 combo sshd(pam_unix)[20882]: authentication failure; "
                  b"logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=220-135-151-1.hinet-ip."
                  b"hinet.net  user=root")
COMBO_PAM_ADDR = (b"Jun 21 08:56:36 combo sshd(pam_unix)[14278]: authentication failure; "
                  b"logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=217.60.212.66  user=guest")
COMBO_PAM_NO_USER = (b"Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; "
                     b"logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4 ")
COMBO_CHECK_PASS = b"Jun 14 15:16:02 combo sshd(pam_unix)[19937]: check pass; user unknown"
# Filebeat's system module test log, a RHEL 7 /var/log/secure (github.com/elastic/beats,
# filebeat/module/system/auth/test/secure-rhel7.log at commit d13173e2df5cf5681216723b4aa70c3fbfc0d403;
# outside x-pack, so Apache-2.0 per the repository's LICENSE.txt), verbatim: a real public-key
# login (the RFC 3339 and sshd-session lines below are written from OpenSSH's format strings:
# no public log with them was found)
RHEL7_ACCEPTED_KEY = (b"Feb 22 16:48:04 slave22 sshd[2805]: Accepted publickey for drewr from "
                      b"69.245.39.97 port 34202 ssh2: RSA 01:67:32:d9:b3:20:5d:2d:5f:b4:35:c5:a5:"
                      b"8b:0a:5e")
RHEL7_SESSION_OPENED = (b"Feb 22 16:48:04 slave22 sshd[2805]: pam_unix(sshd:session): session "
                        b"opened for user drewr by (uid=0)")
RHEL7_MAX_RETRIES = b"Feb 22 16:45:26 slave22 sshd[2738]: PAM service(sshd) ignoring max retries; 5 > 3"
# OpenSSH's own log format for a public-key login (auth2.c, auth_log: "Accepted %s for %s%.100s
# from %.200s port %d ssh2: %s %s"), written as rsyslog's RFC 3339 high-precision timestamp:
ISO_ACCEPTED = (b"2025-06-24T03:12:45.120+02:00 bastion sshd[811]: Accepted publickey for deploy "
                b"from 2001:db8::7 port 50122 ssh2: ED25519 SHA256:Qm9vZm9vYmFyYmF6cXV4")
# OpenSSH 9.8 moved the per-connection process to sshd-session (release notes, 2024-07-01):
SESSION_ACCEPTED = (b"Jul 02 10:00:01 web1 sshd-session[4242]: Accepted password for alice "
                    b"from 198.51.100.23 port 61000 ssh2")


def one(line: bytes, pos: int = 1, year: int | None = 2016) -> dict:
    out = sshd.adapt_at(line, pos, year=year)
    assert len(out) == 1
    return out[0]


def reason(line: bytes, year: int | None = 2016) -> tuple[str, str]:
    with pytest.raises(adapters.Reject) as err:
        sshd.adapt_at(line, 1, year=year)
    return type(err.value).__name__, err.value.reason


def test_failed_password_is_a_failed_login_of_that_user_from_that_address() -> None:
    e = one(LABSZ_FAILED)
    assert (e["ts"], e["account_id"], e["outcome"], e["src_ip"], e["method"]) == (
        "2016-12-10T07:07:45Z", "test9", "failure", "52.80.34.196", "password")
    assert one(LABSZ_FAILED_ROOT)["account_id"] == "root"


def test_accepted_publickey_is_a_success_with_a_session_and_its_zone() -> None:
    e = one(ISO_ACCEPTED)
    assert e["outcome"] == "success" and e["account_id"] == "deploy"
    assert e["src_ip"] == "2001:db8::7" and e["session_id"] == "sshd:bastion:811"
    assert e["ts"] == "2025-06-24T03:12:45.120000+02:00" and "method" not in e
    s = one(SESSION_ACCEPTED)
    assert (s["outcome"], s["method"], s["session_id"]) == ("success", "password",
                                                           "sshd:web1:4242")


def test_a_published_publickey_login_is_a_success_and_its_pam_lines_are_skipped() -> None:
    e = one(RHEL7_ACCEPTED_KEY, year=2018)
    assert (e["ts"], e["account_id"], e["outcome"], e["src_ip"], e["session_id"]) == (
        "2018-02-22T16:48:04Z", "drewr", "success", "69.245.39.97", "sshd:slave22:2805")
    assert "method" not in e  # the contract's methods (password, mfa, sso, ...) have no key
    assert reason(RHEL7_SESSION_OPENED, year=2018) == ("Skip", "sshd_notice")
    assert reason(RHEL7_MAX_RETRIES, year=2018) == ("Skip", "pam_summary")


def test_a_folded_repeat_is_that_many_failures_with_distinct_ids() -> None:
    out = sshd.adapt_at(LABSZ_REPEATED, 9, year=2016)
    assert len(out) == 5 and {e["account_id"] for e in out} == {"root"}
    assert len({e["event_id"] for e in out}) == 5


def test_event_ids_are_reproducible_and_two_identical_lines_stay_two_events() -> None:
    assert one(LABSZ_FAILED, 3)["event_id"] == one(LABSZ_FAILED, 3)["event_id"]
    assert one(LABSZ_FAILED, 3)["event_id"] != one(LABSZ_FAILED, 4)["event_id"]


def test_old_pam_failure_is_an_event_and_a_host_name_gets_a_private_stand_in() -> None:
    e = one(COMBO_PAM_ADDR, year=2005)
    assert (e["account_id"], e["src_ip"], e["outcome"]) == ("guest", "217.60.212.66", "failure")
    h = one(COMBO_PAM_HOST, year=2005)
    assert h["src_host"] == "220-135-151-1.hinet-ip.hinet.net" and h["account_id"] == "root"
    assert h["src_ip"].startswith("fd") and h["src_ip"] == sshd.stand_in("220-135-151-1.hinet-ip.hinet.net")
    from detectors.geo import subnet_of
    assert subnet_of(h["src_ip"])[2] is True  # private: never geolocated


def test_the_user_name_cannot_move_the_source_address() -> None:
    # the client chooses the user name; sshd writes the real address last
    line = (b"Dec 10 07:07:45 LabSZ sshd[1]: Failed password for invalid user x from 6.6.6.6 "
            b"port 22 ssh2 from 52.80.34.196 port 36060 ssh2")
    e = one(line)
    assert e["src_ip"] == "52.80.34.196" and e["account_id"] == "x from 6.6.6.6 port 22 ssh2"


@pytest.mark.parametrize(("line", "why"), [
    (LABSZ_INVALID, ("Skip", "invalid_user_notice")),
    (LABSZ_PAM_DUP, ("Skip", "pam_duplicate")),
    (LABSZ_PAM_MORE, ("Skip", "pam_summary")),
    (LABSZ_CLOSED, ("Skip", "connection")),
    (LABSZ_REVERSE, ("Skip", "sshd_notice")),
    (COMBO_CHECK_PASS, ("Skip", "sshd_notice")),
    (b"Dec 10 06:55:46 LabSZ CRON[1]: pam_unix(cron:session): session opened", ("Skip", "not_sshd")),
    (COMBO_PAM_NO_USER, ("Reject", "pam_no_user")),
    (b"not a syslog line at all", ("Reject", "unparsed_line")),
    (b"Feb 30 06:55:46 LabSZ sshd[1]: Failed password for a from 1.2.3.4 port 1 ssh2",
     ("Reject", "bad_time")),
    (b"Dec 10 06:55:46 LabSZ sshd[1]: Failed password for a from 1.2.3.4:5 port 1 ssh2",
     ("Reject", "bad_address")),
    (b"Dec 10 06:55:46 LabSZ sshd[1]: Failed password for nobody", ("Reject", "unparsed_sshd")),
])
def test_lines_that_are_not_events_are_skipped_or_rejected_with_their_reason(
        line: bytes, why: tuple[str, str]) -> None:
    assert reason(line) == why


def test_without_a_year_a_classic_line_is_rejected_or_takes_the_latest_past_year() -> None:
    assert reason(LABSZ_FAILED, year=None) == ("Reject", "no_year")
    now = 1_767_225_600 + 5 * 86400  # 2026-01-06: a December line is last year's
    ad = sshd.configure(now=now)
    assert ad.events(LABSZ_FAILED, 1)[0]["ts"].startswith("2025-12-10")
    ad = sshd.configure(now=1_781_000_000)  # 2026-06-09: a June 8 line is this year's
    line = LABSZ_FAILED.replace(b"Dec 10", b"Jun  8")
    assert ad.events(line, 1)[0]["ts"].startswith("2026-06-08")
    with pytest.raises(ValueError, match="--year"):
        sshd.configure(year=12)


def test_records_counts_every_line_of_a_mixed_log() -> None:
    log = b"\n".join([LABSZ_REVERSE, LABSZ_INVALID, LABSZ_FAILED, LABSZ_PAM_DUP, LABSZ_REPEATED,
                      LABSZ_CLOSED, b"garbage", COMBO_PAM_NO_USER]) + b"\n"
    outs = list(adapters.records(adapters.load("sshd", year=2016), io.BytesIO(log)))
    assert [o.position for o in outs] == list(range(1, 9))
    assert sum(len(o.events) for o in outs) == 6
    assert sum(1 for o in outs if isinstance(o.reject, adapters.Skip)) == 4
    assert sum(1 for o in outs if o.reject is not None
               and not isinstance(o.reject, adapters.Skip)) == 2


def test_an_adapter_defect_rejects_that_record_and_the_stream_goes_on() -> None:
    def adapt(record: bytes) -> list[dict]:
        if record == b"boom":
            raise KeyError("a bug")
        return [{"n": record.decode()}]

    ad = adapters.Adapter(name="t", adapt=adapt)
    outs = list(adapters.records(ad, io.BytesIO(b"a\nboom\nb\n")))
    assert [(o.position, o.reject.reason if o.reject else o.events) for o in outs] == [
        (1, [{"n": "a"}]), (2, "adapter_error"), (3, [{"n": "b"}])]


def test_the_ipv4_fast_path_gives_what_ipaddress_gives() -> None:
    """A dotted quad is taken as it is only when ``ipaddress`` would write it so: seeded
    random quads (octets past 255, leading zeros) and Unicode digits agree with it."""
    import ipaddress
    import random

    from detectors.adapters.sshd import _address

    rng = random.Random(15)
    texts = [".".join(str(rng.randrange(300)).zfill(rng.choice((1, 1, 1, 3))) for _ in range(4))
             for _ in range(5000)] + ["١.2.3.4", "1.2.3", "0.0.0.0", "1.2.3.4.5"]
    for text in texts:
        try:
            want = str(ipaddress.ip_address(text))
        except ValueError:
            want = None
        try:
            got = _address(text)
        except adapters.Reject:
            got = None
        if want is not None:
            assert got == (want, None), text
        else:
            assert got is None or got[1] is not None, text  # rejected, or read as a host name


# --- the stamp memo changes nothing (issue 15: replay --format sshd's cost) -------------------
# Every sample line above, the bad ones too, twice (the second time through the memo), plus
# stamps the memo must not confuse: one second in two years, a leap day, an impossible date.
SAMPLE_LOG = b"\n".join([
    LABSZ_FAILED, LABSZ_FAILED_ROOT, LABSZ_REPEATED, LABSZ_INVALID, LABSZ_PAM_DUP,
    LABSZ_PAM_MORE, LABSZ_CLOSED, LABSZ_REVERSE, COMBO_PAM_HOST, COMBO_PAM_ADDR,
    COMBO_PAM_NO_USER, COMBO_CHECK_PASS, ISO_ACCEPTED, SESSION_ACCEPTED,
    b"<38>Dec 10 07:07:45 LabSZ sshd[24206]: Failed password for root from 1.2.3.4 port 1 ssh2",
    b"Feb 29 00:00:01 h sshd[1]: Failed password for a from 1.2.3.4 port 1 ssh2",
    b"Feb 30 06:55:46 LabSZ sshd[1]: Failed password for a from 1.2.3.4 port 1 ssh2",
    b"Dec 10 06:55:46 LabSZ CRON[1]: pam_unix(cron:session): session opened", b"garbage",
] * 2) + b"\n"
REAL_LOG = (Path(__file__).resolve().parents[1].parent / "shared" / "data" / "loghub_openssh_2k"
            / "OpenSSH_2k.log")
NOW = 1_767_225_600.0 + 5 * 86400  # 2026-01-06


def adapted_digest(data: bytes, **options: object) -> str:
    """sha256 of every event's bytes (as replay --format writes them) and every reject."""
    h = hashlib.sha256()
    for o in adapters.records(adapters.load("sshd", **options), io.BytesIO(data)):
        if o.reject is not None:
            r = o.reject
            h.update(b"R %d %s %s %s\n" % (o.position, type(r).__name__.encode(),
                                           r.reason.encode(), r.detail.encode()))
        for e in o.events:
            h.update(orjson.dumps(e) + b"\n")
    return h.hexdigest()


@pytest.mark.parametrize(("options", "digest"), [
    ({"year": 2016}, "d602123dafc7ec647deb9c16e844852db6014303384778c6bee319f0a4eb1cd6"),
    ({"year": 2024}, "fa51b6a40acf790967b20e4f70ae2b93a0ca1f04c5f542aa5a9ecce6bc67e606"),
    ({"now": NOW}, "44fe2782762ab3c1b6fc25d0e9354ecfea642b640247a8cf0fe98f2271c4b66c"),
])
def test_adapted_sample_is_byte_identical_to_before_the_stamp_memo(
        options: dict, digest: str) -> None:
    # digests of the adapter's output before the memo (commit cd36bbb), on the same lines
    assert adapted_digest(SAMPLE_LOG, **options) == digest


@pytest.mark.skipif(not REAL_LOG.exists(), reason="../shared/data/loghub_openssh_2k is absent")
@pytest.mark.parametrize(("options", "digest"), [
    ({"year": 2016}, "8f6187c023bf306f7f0679c39a5772a9c3cab408b3b68e5146444d8f4c5e18fa"),
    ({"now": 1_800_000_000.0},
     "6008cb8480c58a0ac6e38c845a6e142ee47b775fa0d2c8dbbab45023731f0c30"),
])
def test_adapted_real_log_is_byte_identical_to_before_the_stamp_memo(
        options: dict, digest: str) -> None:
    assert adapted_digest(REAL_LOG.read_bytes(), **options) == digest


def test_the_stamp_memo_keeps_year_and_clock_apart() -> None:
    line = LABSZ_FAILED.replace(b"Dec 10", b"Feb 29")
    assert one(line, year=2024)["ts"] == "2024-02-29T07:07:45Z"
    assert reason(line, year=2023) == ("Reject", "bad_time")  # the same stamp, another year
    assert one(line, year=2024)["ts"] == "2024-02-29T07:07:45Z"
    assert one(LABSZ_FAILED, year=2015)["ts"] == "2015-12-10T07:07:45Z"
    assert sshd.adapt_at(LABSZ_FAILED, 1, now=NOW)[0]["ts"] == "2025-12-10T07:07:45Z"
    assert sshd.adapt_at(LABSZ_FAILED, 1, now=NOW + 366 * 86400)[0]["ts"] == (
        "2026-12-10T07:07:45Z")


# --- ids of lines that arrive several to a message (the ingest agent) ------------------------
def ingest_ids(messages: list[tuple[int, int, bytes]]) -> list[str]:
    """The event ids the ingest agent's adapting gives messages (partition, offset, value)."""
    ad = adapters.load("sshd", year=2016)
    return [e["event_id"] for p, off, data in messages
            for o in adapters.records(ad, io.BytesIO(data),
                                      place=adapters.message_place(p, off))
            for e in o.events]


def test_identical_lines_in_consecutive_multi_line_messages_keep_their_own_ids() -> None:
    # a shipper batching lines: the 2nd line of the message at offset 10 and the 1st line of
    # the message at offset 11 are the same line (two tries in one connection in one second).
    # With offset + k as the position both were told 12: one id, one event lost as a duplicate.
    other = LABSZ_FAILED_ROOT.replace(b"root", b"admin")
    ids = ingest_ids([(0, 10, other + b"\n" + LABSZ_FAILED_ROOT + b"\n"),
                      (0, 11, LABSZ_FAILED_ROOT + b"\n" + other + b"\n")])
    assert len(ids) == len(set(ids)) == 4


def test_identical_lines_at_one_offset_of_two_partitions_keep_their_own_ids() -> None:
    ids = ingest_ids([(0, 5, LABSZ_FAILED_ROOT), (1, 5, LABSZ_FAILED_ROOT),
                      (1, 5, LABSZ_FAILED_ROOT)])  # the last: the same message read again
    assert ids[0] != ids[1] and ids[1] == ids[2]


def test_one_line_messages_of_partition_0_keep_replays_ids() -> None:
    lines = [LABSZ_FAILED, LABSZ_FAILED_ROOT, LABSZ_FAILED_ROOT]
    replayed = [e["event_id"] for o in adapters.records(adapters.load("sshd", year=2016),
                                                         io.BytesIO(b"\n".join(lines)))
                for e in o.events]
    assert ingest_ids([(0, off, line) for off, line in enumerate(lines)]) == replayed


def test_message_places_are_distinct_and_bounded() -> None:
    seen = {adapters.message_place(p, off)(k) for p in range(3) for off in range(40)
            for k in range(1, 6)}
    assert len(seen) == 3 * 40 * 5
    with pytest.raises(ValueError):
        adapters.message_place(1 << 16, 0)
