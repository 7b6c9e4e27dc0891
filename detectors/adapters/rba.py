"""rba: the RBA login data set's CSV rows (Wiefling et al.), as ``auth-logins`` events.

The "Risk-Based Authentication (RBA) data set" (Wiefling, Jørgensen, Thunem, Lo Iacono:
"Pump Up Password Security! Evaluating and Enhancing Risk-Based Authentication on a Real-World
Large-Scale Online Service", ACM TOPS 2022; zenodo/Kaggle ``rba-dataset.csv``) holds 33 million
logins synthesised from a large online service's, with the service's attack labels. One record
is one CSV row; the header is::

    index,Login Timestamp,User ID,Round-Trip Time [ms],IP Address,Country,Region,City,ASN,
    User Agent String,Browser Name and Version,OS Name and Version,Device Type,
    Login Successful,Is Attack IP,Is Account Takeover

(``index`` is absent in some copies: a row of 15 fields is read without it.)

Events (``auth-logins``), one per row:

- ``event_id``: ``rba-`` and ``index`` (unique in the file); without an index column, ``rba-``
  and a digest of the row and its position, so a replay of the same file gives the same ids;
- ``ts``: ``Login Timestamp`` read as UTC (the data set gives no zone); epoch milliseconds
  (or seconds) are read too;
- ``account_id``: ``User ID``; ``account_type`` ``customer`` (the service's users);
- ``outcome``: ``Login Successful`` (``True``: success, else failure); a success issues a
  session, ``session_id`` ``rba-`` and the event id's suffix;
- ``src_ip``, ``user_agent``, ``method`` ``password``;
- ``country`` (``Country``, when two letters) and ``asn`` (``ASN``): the data set's own
  geolocation. Decoding drops producer geo unless told to trust it (``--trust-producer-geo``):
  the data set's addresses were synthesised within each login's real AS and country, so for
  this file its columns are the better answer; either way the engine's GeoIP fills what is
  absent. (Its README: addresses in 10.0.0.0/8 and ASNs of 500,000 and above stand for
  values it could not synthesise; the engine reads such an address as a private one.)
- ``rba_attack_ip`` and ``rba_takeover`` (the data set's labels, ``Is Attack IP`` and ``Is
  Account Takeover``) and ``device_type`` ride along as unknown fields: no detector reads them;
  an evaluation compares its alerts against them.

Skipped: ``header`` (the header row). Rejected: ``bad_csv`` (not 15 or 16 fields),
``missing_field`` (no time, user or address), ``bad_time``.

>>> ev, = adapt_at(b'2,2020-02-03 12:43:55.873,-3284137479262433373,,81.167.144.58,NO,'
...                b'Vestland,Urangsvag,29695,"Mozilla/5.0  (iPad; CPU OS 7_1 like Mac OS X)",'
...                b'Android 2.3.3.2672,iOS 7.1,mobile,True,False,False', 3)
>>> ev["ts"], ev["account_id"], ev["outcome"], ev["src_ip"], ev["country"], ev["asn"]
('2020-02-03T12:43:55.873Z', '-3284137479262433373', 'success', '81.167.144.58', 'NO', 29695)
"""

from __future__ import annotations

import csv
import hashlib
from datetime import UTC, datetime
from typing import Any

from . import Reject, Skip

NAME = "rba"

#: the data set's columns, in its order (after ``index``)
COLUMNS = ("Login Timestamp", "User ID", "Round-Trip Time [ms]", "IP Address", "Country",
           "Region", "City", "ASN", "User Agent String", "Browser Name and Version",
           "OS Name and Version", "Device Type", "Login Successful", "Is Attack IP",
           "Is Account Takeover")
_TRUE = {"true", "1", "yes"}


def _ts(text: str) -> str:
    """``2020-02-03 12:43:30.772`` (UTC), or epoch milliseconds (the data set's README calls
    the column a 64-bit timestamp; 13 digits) or seconds, as RFC 3339 with milliseconds
    (raises ``bad_time``)."""
    text = text.strip()
    try:
        if text.isdigit() and len(text) <= 16:
            ms = int(text) if len(text) >= 12 else int(text) * 1000
            when = datetime.fromtimestamp(ms // 1000, UTC).replace(
                tzinfo=None, microsecond=ms % 1000 * 1000)
        else:
            when = datetime.fromisoformat(text.replace(" ", "T", 1))
    except (ValueError, OverflowError, OSError):
        raise Reject("bad_time", text[:40]) from None
    if when.tzinfo is not None:  # an offset given: that instant, in UTC
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when.isoformat(timespec="milliseconds") + "Z"


def adapt_at(record: bytes, position: int) -> list[dict[str, Any]]:
    """One CSV row (``position``: its 1-based place in the stream, for rows without an index)."""
    try:
        text = record.decode("utf-8")
        row = next(csv.reader([text]))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        raise Reject("bad_csv", "not one CSV row") from None
    if len(row) == 16:
        index: str | None = row[0].strip()
        row = row[1:]
    elif len(row) == 15:
        index = None
    else:
        raise Reject("bad_csv", f"{len(row)} fields, not 15 or 16")
    if row[0].strip() == COLUMNS[0]:
        raise Skip("header")
    f = dict(zip(COLUMNS, (c.strip() for c in row), strict=True))
    ts, user, ip = f["Login Timestamp"], f["User ID"], f["IP Address"]
    if not ts or not user or not ip:
        raise Reject("missing_field", "Login Timestamp, User ID and IP Address are required")
    if index:
        suffix = index
    else:
        suffix = hashlib.blake2b(record + b"|" + str(position).encode(), digest_size=10,
                                 person=b"accesswatch-rba").hexdigest()
    ok = f["Login Successful"].lower() in _TRUE
    ev: dict[str, Any] = {
        "event_id": f"rba-{suffix}",
        "ts": _ts(ts),
        "account_id": user,
        "account_type": "customer",
        "outcome": "success" if ok else "failure",
        "src_ip": ip,
        "method": "password",
    }
    if ok:
        ev["session_id"] = f"rba-{suffix}"
    if f["User Agent String"]:
        ev["user_agent"] = f["User Agent String"]
    country = f["Country"]
    if len(country) == 2 and country.isalpha():
        ev["country"] = country.upper()
    if f["ASN"].isdigit():
        ev["asn"] = int(f["ASN"])
    if f["Device Type"] and f["Device Type"] != "-":
        ev["device_type"] = f["Device Type"]
    ev["rba_attack_ip"] = f["Is Attack IP"].lower() in _TRUE
    ev["rba_takeover"] = f["Is Account Takeover"].lower() in _TRUE
    return [ev]


def adapt(record: bytes) -> list[dict[str, Any]]:
    """One row without its position (rows with an ``index`` column need none)."""
    return adapt_at(record, 0)
