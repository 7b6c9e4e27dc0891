"""lanl: LANL's enterprise authentication events (Kent 2015), as ``auth-logins`` events.

"Comprehensive, Multi-Source Cyber-Security Events" (A. D. Kent, Los Alamos National
Laboratory, 2015: 58 days of a corporate network) publishes, among others:

- ``auth.txt``: ``time,source user@domain,destination user@domain,source computer,destination
  computer,authentication type,logon type,authentication orientation,success/failure``, e.g.
  ``1,C1020$@DOM1,SYSTEM@C1020,C1020,C1020,Negotiate,Service,LogOn,Success``;
- ``redteam.txt``: the red team's compromise events, ``time,user@domain,source computer,
  destination computer`` (749 rows; each is a successful authentication that also appears in
  ``auth.txt``).

Both are read, one record per line, told apart by their field count (9 or 4). Times are
seconds from the start of the collection, which the data set does not date: second 0 is
``year``-01-01T00:00:00Z (``--year``; default 2015, the year of the release).

Events (``auth-logins``), for each ``LogOn`` of ``auth.txt`` and each ``redteam.txt`` row:

- ``account_id``: the source user (``U620@DOM1``; a computer account ``C586$@DOM1`` too);
  ``account_type`` ``service`` for a computer account (the name ends in ``$``), else
  ``employee``;
- ``src_ip``: the source computer has a name, not an address: it takes the same stand-in
  address as sshd gives a host name (``fd`` and 120 bits of a digest of the name: private to
  the engine, one /48 per name, :func:`detectors.adapters.sshd.stand_in`), and the name rides
  along as ``src_host``; ``dst_host`` the destination computer;
- ``outcome``: ``Success`` or ``Fail``; a success issues a session (``session_id`` the event
  id);
- ``auth_type`` and ``logon_type`` ride along (``?`` left out), and ``lanl_redteam: true`` on
  ``redteam.txt`` rows: no detector reads them.
- ``event_id``: ``lanl-`` and a digest of the line and its position (the data set repeats
  identical lines within one second: they stay distinct events).

Skipped (read, not a login): ``not_a_logon`` (``LogOff``, ``TGS``, ``TGT``, ``AuthMap``, ...),
``system_account`` (``ANONYMOUS LOGON``, ``SYSTEM``, ``LOCAL SERVICE``, ``NETWORK SERVICE``,
``DWM-*``, ``UMFD-*``: the machine's own logons, no person's credential). Rejected:
``bad_record`` (neither 4 nor 9 fields, or an empty user or computer), ``bad_time``.

>>> ev, = adapt_at(b"150885,U620@DOM1,C17693,C1003", 1)
>>> ev["ts"], ev["account_id"], ev["account_type"], ev["outcome"], ev["src_host"], ev["lanl_redteam"]
('2015-01-02T17:54:45Z', 'U620@DOM1', 'employee', 'success', 'C17693', True)
"""

from __future__ import annotations

import calendar
import hashlib
import time
from functools import partial
from typing import Any

from . import Adapter, Reject, Skip
from .sshd import stand_in

NAME = "lanl"
DEFAULT_YEAR = 2015

_SYSTEM = ("ANONYMOUS LOGON", "SYSTEM", "LOCAL SERVICE", "NETWORK SERVICE")
_SYSTEM_PREFIX = ("DWM-", "UMFD-")
#: the largest time accepted (the data set covers 58 days; a year is generous)
MAX_SECONDS = 366 * 86400


def _start(year: int) -> int:
    return calendar.timegm((year, 1, 1, 0, 0, 0, 0, 1, 0))


def _event_id(record: bytes, position: int) -> str:
    h = hashlib.blake2b(record, digest_size=10, person=b"accesswatch-lanl")
    h.update(b"\0%d" % position)
    return "lanl-" + h.hexdigest()


def adapt_at(record: bytes, position: int, year: int | None = None) -> list[dict[str, Any]]:
    """One line of ``auth.txt`` or ``redteam.txt`` (``position``: its 1-based place)."""
    try:
        fields = record.decode("ascii").strip().split(",")
    except UnicodeDecodeError:
        raise Reject("bad_record", "not ASCII") from None
    if len(fields) == 9:
        t, user, _dst_user, src, dst, auth_type, logon_type, orientation, result = fields
        redteam = False
        if orientation != "LogOn":
            raise Skip("not_a_logon")
        ok = result == "Success"
        if not ok and result != "Fail":
            raise Reject("bad_record", f"success/failure is {result[:16]!r}")
    elif len(fields) == 4:
        t, user, src, dst = fields
        auth_type = logon_type = "?"
        redteam, ok = True, True
    else:
        raise Reject("bad_record", f"{len(fields)} fields, not 9 (auth.txt) or 4 (redteam.txt)")
    if not t.isdigit() or int(t) > MAX_SECONDS:
        raise Reject("bad_time", t[:20])
    name = user.split("@", 1)[0]
    if not name or not src or not dst or src == "?":
        raise Reject("bad_record", "an empty user or computer")
    if name in _SYSTEM or name.startswith(_SYSTEM_PREFIX):
        raise Skip("system_account")
    when = _start(DEFAULT_YEAR if year is None else year) + int(t)
    eid = _event_id(record, position)
    ev: dict[str, Any] = {
        "event_id": eid,
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)),
        "account_id": user,
        "account_type": "service" if name.endswith("$") else "employee",
        "outcome": "success" if ok else "failure",
        "src_ip": stand_in(src),
        "src_host": src,
        "dst_host": dst,
    }
    if ok:
        ev["session_id"] = eid
    if auth_type != "?":
        ev["auth_type"] = auth_type
    if logon_type != "?":
        ev["logon_type"] = logon_type
    if redteam:
        ev["lanl_redteam"] = True
    return [ev]


def adapt(record: bytes) -> list[dict[str, Any]]:
    """One line without its position or a year (``configure`` gives both)."""
    return adapt_at(record, 0)


def configure(year: int | None = None, **_: Any) -> Adapter:
    """The adapter with second 0 at the start of ``year`` (default 2015)."""
    if year is not None and not 1970 <= int(year) <= 9998:
        raise ValueError(f"--year must be between 1970 and 9998, not {year}")
    return Adapter(name=NAME, adapt=partial(adapt_at, position=0, year=year),
                   adapt_at=partial(adapt_at, year=year))
