"""Event builders: the time units, RFC 3339 times with milliseconds and ``Z``, the login,
access and identity-change records of the event contract v1, and the merge of bursts of
events into one time-ordered stream.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from .config import SimulationError

SEC, MIN, HOUR, DAY = 1000, 60_000, 3_600_000, 86_400_000

_MINUTE_CACHE: dict[int, str] = {}


def fmt_ts(ms: int) -> str:
    """Epoch milliseconds as RFC 3339 with milliseconds and ``Z``.

    >>> fmt_ts(1750734765120)
    '2025-06-24T03:12:45.120Z'
    """
    minute, r = divmod(ms, 60_000)
    head = _MINUTE_CACHE.get(minute)
    if head is None:
        if len(_MINUTE_CACHE) > 500_000:
            _MINUTE_CACHE.clear()
        head = datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%dT%H:%M:")
        _MINUTE_CACHE[minute] = head
    sec, milli = divmod(r, 1000)
    return f"{head}{sec:02d}.{milli:03d}Z"


def parse_ts(text: str) -> int:
    """RFC 3339 (with a zone) to epoch milliseconds; SimulationError when it is not one."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise SimulationError(f"start: {text!r} is not an RFC 3339 time") from None
    if dt.tzinfo is None:
        raise SimulationError(f"start: {text!r} has no time zone (add Z or +09:00)")
    return round(dt.timestamp() * 1000)


def _hex(rng: random.Random, bits: int = 64) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _ordered(sessions: Iterable[tuple[int, list[tuple[int, dict]]]]) -> Iterator[tuple[int, dict]]:
    """Merge bursts of events into one time-ordered stream.

    ``sessions`` gives (start, events) with non-decreasing starts, every event at or after its
    own start: an event is released once no later burst can precede it.
    """
    heap: list[tuple[int, int, dict]] = []
    seq = 0
    for start, evs in sessions:
        while heap and heap[0][0] <= start:
            ms, _, ev = heapq.heappop(heap)
            yield ms, ev
        for ms, ev in evs:
            heapq.heappush(heap, (ms, seq, ev))
            seq += 1
    while heap:
        ms, _, ev = heapq.heappop(heap)
        yield ms, ev


def _login(
    ts: int,
    account: str,
    account_type: str,
    outcome: str,
    ip: str,
    method: str,
    label: str,
    session: str | None = None,
    ua: str | None = None,
    device: str | None = None,
) -> dict:
    ev: dict[str, Any] = {
        "event_id": "",
        "ts": fmt_ts(ts),
        "account_id": account,
        "account_type": account_type,
        "outcome": outcome,
        "src_ip": ip,
        "method": method,
    }
    if session is not None:
        ev["session_id"] = session
    if ua is not None:
        ev["user_agent"] = ua
    if device is not None:
        ev["device_id"] = device
    ev["label"] = label
    return ev


def _access(
    ts: int,
    actor: str,
    actor_type: str,
    subject: str,
    resource: str,
    action: str,
    ip: str,
    label: str,
    session: str | None = None,
    issued: str | None = None,
    key: str | None = None,
    ua: str | None = None,
    records: int | None = None,
) -> dict:
    ev: dict[str, Any] = {
        "event_id": "",
        "ts": fmt_ts(ts),
        "actor_id": actor,
        "actor_type": actor_type,
        "subject_id": subject,
        "resource": resource,
        "action": action,
        "src_ip": ip,
    }
    if records is not None:
        ev["records"] = records
    if session is not None:
        ev["session_id"] = session
    if issued is not None:
        ev["token_issued_at"] = issued
    if key is not None:
        ev["key_id"] = key
    if ua is not None:
        ev["user_agent"] = ua
    ev["label"] = label
    return ev


def _identity(ts: int, change: str, label: str = "normal", **fields: str) -> dict:
    ev: dict[str, Any] = {"event_id": "", "ts": fmt_ts(ts), "change": change}
    ev.update(fields)
    ev["label"] = label
    return ev


def _key_snapshot(ts: int, key: str, owner: str, issued: str) -> dict:
    """``key_issued`` replayed from the key store at ``ts``; ``issued_at`` is the key's age."""
    issued = fmt_ts(parse_ts(issued))
    return _identity(ts, "key_issued", key_id=key, owner_id=owner, issued_at=issued)


def _sorted(evs: list[tuple[int, dict]]) -> Iterator[tuple[int, dict]]:
    evs.sort(key=itemgetter(0))
    return iter(evs)
