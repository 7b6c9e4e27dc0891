"""sshd: OpenSSH and PAM lines from syslog or journald text, as ``auth-logins`` events.

One record is one line: classic syslog (``Dec 10 06:55:46 host sshd[24200]: ...``, also
``journalctl``'s default output) or RFC 3339 (``2025-06-24T03:12:45.120+00:00 host sshd[1]:
...``, rsyslog's high-precision format and ``journalctl -o short-iso``). The program is
``sshd``, ``sshd-session`` (OpenSSH 9.8 and later) or ``sshd(pam_unix)`` (older PAM).

Events (``auth-logins``):

========================================================  =========================================
line                                                      event
========================================================  =========================================
``Accepted <method> for USER from ADDR port N``           success; ``session_id`` ``sshd:HOST:PID``
``Failed <method> for [invalid user ]USER from ADDR ...``  failure
``message repeated N times: [ Failed ... ]``              N failures (syslog's repeat folding)
``sshd(pam_unix)[PID]: authentication failure; ...        failure (old PAM: no Failed line exists)
rhost=ADDR user=USER``
========================================================  =========================================

``account_id`` is USER (the greedy match takes the LAST ``from ADDR port N``: a user name is
chosen by the client and may itself contain "from 1.2.3.4 port 22"); ``account_type``
``employee`` (a server login); ``method`` ``password`` for password and keyboard-interactive,
absent for others; ``host`` (the syslog host) and ``source: "sshd"`` ride along as unknown
fields.

Time: a classic line has no year and no zone: the year is the ``year`` option (``--year``),
the zone UTC. Without ``year``, ``now`` (epoch seconds, which the command line sets to its
clock) stands for it: each line takes the latest year that does not put it more than a day
after ``now`` (a December log read in January is last year's, as syslog readers guess it).
A line without a year, and neither option given, is rejected (``no_year``).

Event ids: ``sshd-`` and a digest of the line and its position in the stream (and the index
of a repeat): the same file replays to the same ids, and two identical lines (two password
tries in one connection within one second) stay two events.

Skipped lines (read, not events; counted by reason): ``pam_duplicate`` (sshd's own
``pam_unix(sshd:auth): authentication failure``: the same attempt is also its Failed line),
``pam_summary`` (``PAM N more authentication failures``, ``ignoring max retries``),
``invalid_user_notice`` (``Invalid user X from ADDR`` and ``input_userauth_request``: the
tries it announces arrive as Failed lines; counting both would double them),
``connection`` (connects, disconnects, closes, timeouts, resets, identification strings),
``sshd_notice`` (any other sshd or PAM line), ``not_sshd`` (another program).

A source given as a host name (``rhost=host.example.net``, sshd with ``UseDNS yes``) is never
resolved (a network call in a pure adapter, and a reverse-DNS name is chosen by whoever
controls that zone) and never geolocated: the event keeps the name in ``src_host`` and takes
as ``src_ip`` a stand-in address, ``fd`` followed by 120 bits of a BLAKE2b digest of the
lower-cased name: an IPv6 unique-local address, private to the engine (GeoIP knows nothing of
it), the same for every line of that name, a /48 of its own per name (so names never pool
into one subnet). Detection counts it as one source; callers count these events
(``src_host`` present) apart.

Rejected lines: ``unparsed_line`` (no syslog header), ``no_year``, ``bad_time``,
``bad_address`` (neither an address nor a host name), ``pam_no_user`` (an old PAM failure
without ``user=``).

>>> ev, = adapt_at(b"Dec 10 07:07:45 LabSZ sshd[24206]: Failed password for invalid user test9 "
...                b"from 52.80.34.196 port 36060 ssh2", 7, year=2016)
>>> ev["ts"], ev["account_id"], ev["outcome"], ev["src_ip"], ev["method"]
('2016-12-10T07:07:45Z', 'test9', 'failure', '52.80.34.196', 'password')
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import time
from calendar import timegm
from datetime import datetime
from functools import partial
from typing import Any

from . import Adapter, Reject, Skip

NAME = "sshd"

_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}

_CLASSIC = re.compile(
    rb"^(?:<\d{1,3}>)?([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\S+) ([^\s\[:]+)"
    rb"(?:\[(\d+)\])?: ?(.*)$", re.S)
_ISO = re.compile(
    rb"^(?:<\d{1,3}>)?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?"
    rb"(?:Z|[+-]\d{2}:?\d{2})) (\S+) ([^\s\[:]+)(?:\[(\d+)\])?: ?(.*)$", re.S)

_SSHD = {"sshd", "sshd-session"}
_PAM_PROG = "sshd(pam_unix)"

_ACCEPTED = re.compile(r"^Accepted (\S+) for (.+) from (\S+) port (\d+)(?: ssh2)?(?:: .*)?$", re.S)
_FAILED = re.compile(
    r"^Failed (\S+) for (invalid user )?(.*) from (\S+) port (\d+)(?: ssh2)?(?:: .*)?$", re.S)
_REPEATED = re.compile(r"^message repeated (\d+) times: \[ ?(.*?) ?\]$", re.S)
_PAM_FAIL = re.compile(r"authentication failure;.*?\brhost=(\S*)(?:\s+user=(\S+))?\s*$", re.S)

_CONNECTION = ("Connection closed", "Connection from", "Connection reset", "Received disconnect",
               "Disconnected from", "Disconnecting", "Did not receive identification",
               "Timeout", "fatal:", "error: Received disconnect", "Bad protocol",
               "Unable to negotiate", "banner exchange", "Close session", "Read error",
               "error: kex_exchange_identification", "kex_exchange_identification")
_METHODS = {"password": "password", "keyboard-interactive/pam": "password",
            "keyboard-interactive": "password"}

#: most repeats one folded line may stand for (syslog folds consecutive identical messages;
#: a line claiming more is read as this many, so one line cannot flood the engine)
MAX_REPEAT = 1000


def _iso_ts(raw: bytes) -> str:
    """The RFC 3339 time of an ISO header's stamp (raises Reject ``bad_time``)."""
    text = raw.decode().replace(" ", "T", 1)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Reject("bad_time", text) from None
    if when.tzinfo is None:  # the pattern requires a zone; kept for safety
        raise Reject("bad_time", text)
    return when.isoformat().replace("+00:00", "Z")


def _classic_ts(mon: bytes, day: bytes, hh: bytes, mm: bytes, ss: bytes, year: int | None,
                now: float | None, stamp: bytes) -> str:
    """The RFC 3339 time of a classic header's stamp (raises Reject ``no_year``/``bad_time``)."""
    month = _MONTHS.get(mon.decode())
    if year is None and now is None:
        raise Reject("no_year", "the line has no year: give --year")
    try:
        if month is None:
            raise ValueError(mon)
        if year is None:
            year = _guess_year(month, int(day), int(hh), int(mm), int(ss), float(now or 0))
        datetime(year, month, int(day), int(hh), int(mm), int(ss))  # validates the date
    except ValueError:
        raise Reject("bad_time", stamp[:15].decode("utf-8", "replace")) from None
    return f"{year:04d}-{month:02d}-{int(day):02d}T{hh.decode()}:{mm.decode()}:{ss.decode()}Z"


#: classic stamps already turned into RFC 3339, by (the line up to the stamp's end, year, now):
#: a log's lines share seconds (a connection writes several lines in one), and checking and
#: formatting each stamp with ``datetime`` was a third of the adapter's cost per line. A memo
#: of a pure function (no clock); cleared when full, so it stays small.
_STAMPS: dict[tuple[bytes, int | None, float | None], str] = {}
_STAMPS_MAX = 4096


def _guess_year(month: int, day: int, hh: int, mm: int, ss: int, now: float) -> int:
    """The latest year in which this date is at most a day after ``now``."""
    year = time.gmtime(now).tm_year
    for y in (year + 1, year, year - 1):
        try:
            t = timegm((y, month, day, hh, mm, ss))
        except (ValueError, OverflowError):
            continue
        if t <= now + 86400 and datetime(y, month, day).day == day:  # Feb 29 of a leap year
            return y
    return year - 1


_HOSTNAME = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62})"
                       r"(?:\.[A-Za-z0-9_-]{1,63})*\.?")


def stand_in(name: str) -> str:
    """The stand-in address of a host name (see the module docstring).

    >>> stand_in("ec2-52-80-34-196.cn-north-1.compute.amazonaws.com.cn")[:2]
    'fd'
    >>> stand_in("Host.Example.NET") == stand_in("host.example.net")
    True
    """
    h = hashlib.blake2b(name.lower().rstrip(".").encode(), digest_size=15,
                        person=b"accesswatch-host")
    return str(ipaddress.IPv6Address(b"\xfd" + h.digest()))


#: an IPv4 address as ``ipaddress`` writes it (no leading zeros): taken as it is, which spares
#: the usual line ``ipaddress.ip_address`` and ``str`` (a third of the adapter's cost per line)
_CANONICAL_V4 = re.compile(r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}"
                           r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)", re.ASCII)  # \d: 0-9 only


def _address(text: str) -> tuple[str, str | None]:
    """(src_ip, the host name it stands for or None)."""
    if _CANONICAL_V4.fullmatch(text):
        return text, None
    try:
        return str(ipaddress.ip_address(text)), None
    except ValueError:
        pass
    if len(text) <= 253 and _HOSTNAME.fullmatch(text):
        return stand_in(text), text.lower().rstrip(".")
    raise Reject("bad_address", text[:64])


def _event_id(record: bytes, position: int, i: int) -> str:
    h = hashlib.blake2b(record, digest_size=10, person=b"accesswatch-ssh")
    h.update(b"\0%d\0%d" % (position, i))
    return "sshd-" + h.hexdigest()


def _login(ts: str, host: str, user: str, ok: bool, src: str, method: str
           ) -> dict[str, Any]:
    addr, name = _address(src)
    e: dict[str, Any] = {"ts": ts, "account_id": user, "account_type": "employee",
                         "outcome": "success" if ok else "failure", "src_ip": addr,
                         "source": NAME, "host": host}
    if name is not None:
        e["src_host"] = name
    m = _METHODS.get(method)
    if m is not None:
        e["method"] = m
    return e


def _sshd_message(msg: str, ts: str, host: str, pid: str) -> list[dict[str, Any]]:
    """The events of one sshd message (without its ids), or raises Skip / Reject."""
    if msg.startswith("Failed "):
        m = _FAILED.match(msg)
        if m is None:
            raise Reject("unparsed_sshd", "a Failed line without 'for USER from ADDR port N'")
        method, _invalid, user, src, _port = m.groups()
        return [_login(ts, host, user, False, src, method)]
    if msg.startswith("Accepted "):
        m = _ACCEPTED.match(msg)
        if m is None:
            raise Reject("unparsed_sshd", "an Accepted line without 'for USER from ADDR port N'")
        method, user, src, _port = m.groups()
        e = _login(ts, host, user, True, src, method)
        e["session_id"] = f"sshd:{host}:{pid or '?'}"
        return [e]
    if msg.startswith("message repeated "):
        m = _REPEATED.match(msg)
        if m is None:
            raise Skip("sshd_notice", "message repeated")
        inner = _sshd_message(m.group(2), ts, host, pid)
        return inner * min(int(m.group(1)), MAX_REPEAT)
    if msg.startswith(("Invalid user ", "input_userauth_request: invalid user",
                       "error: maximum authentication attempts exceeded for invalid user")):
        raise Skip("invalid_user_notice")
    if msg.startswith("pam_unix(sshd:auth): authentication failure"):
        raise Skip("pam_duplicate")
    if msg.startswith(("PAM ", "error: PAM:")) and ("more authentication failure" in msg
                                                   or "ignoring max retries" in msg):
        raise Skip("pam_summary")
    if msg.startswith(_CONNECTION):
        raise Skip("connection")
    raise Skip("sshd_notice")


def adapt_at(record: bytes, position: int, year: int | None = None, now: float | None = None
             ) -> list[dict[str, Any]]:
    """The events of one line at ``position`` in its stream (see the module docstring)."""
    m = _CLASSIC.match(record)
    if m is not None:
        mon, day, hh, mm, ss, host_b, prog_b, pid_b, msg_b = m.groups()
        prog = prog_b.decode("utf-8", "replace")
        if prog not in _SSHD and prog != _PAM_PROG:
            raise Skip("not_sshd", prog[:64])
        key = (record[:m.end(5)], year, now)
        ts = _STAMPS.get(key)
        if ts is None:
            ts = _classic_ts(mon, day, hh, mm, ss, year, now, m.group(0))
            if len(_STAMPS) >= _STAMPS_MAX:
                _STAMPS.clear()
            _STAMPS[key] = ts
    else:
        m = _ISO.match(record)
        if m is None:
            raise Reject("unparsed_line", "not a syslog or journald line")
        raw, host_b, prog_b, pid_b, msg_b = m.groups()
        prog = prog_b.decode("utf-8", "replace")
        if prog not in _SSHD and prog != _PAM_PROG:
            raise Skip("not_sshd", prog[:64])
        ts = _iso_ts(raw)
    host = host_b.decode("utf-8", "replace")
    pid = (pid_b or b"").decode()
    msg = msg_b.decode("utf-8", "replace").rstrip("\r\n")
    if prog == _PAM_PROG:
        pm = _PAM_FAIL.search(msg)
        if pm is None:
            raise Skip("sshd_notice")
        rhost, user = pm.groups()
        if not rhost:
            raise Reject("bad_address", "empty rhost")
        if not user:
            raise Reject("pam_no_user", "an authentication failure without user=")
        out = [_login(ts, host, user, False, rhost, "password")]
    else:
        out = _sshd_message(msg, ts, host, pid)
    return [{**e, "event_id": _event_id(record, position, i)} for i, e in enumerate(out)]


def adapt(record: bytes) -> list[dict[str, Any]]:
    """One line without its position or a year (``configure`` gives both)."""
    return adapt_at(record, 0)


def configure(year: int | None = None, now: float | None = None, **_: Any) -> Adapter:
    """The sshd adapter for lines of ``year`` (classic syslog lines carry none), or, without
    it, of the latest year not after ``now`` (see the module docstring)."""
    if year is not None and not 1970 <= int(year) <= 9999:
        raise ValueError(f"--year must be between 1970 and 9999, not {year}")
    return Adapter(name=NAME, adapt=partial(adapt_at, position=0, year=year, now=now),
                   adapt_at=partial(adapt_at, year=year, now=now))
