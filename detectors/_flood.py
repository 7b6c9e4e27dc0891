"""A flood of new entities: what a producer that wants to exhaust the engine's memory sends.

Each step is a new customer account, session and address (a successful login that issues the
session, then a read through it), plus, every ``staff_every`` steps, a new employee (terminated,
then searching with a revoked key, a few rows), a new internal service reading the account, a
failed login from a new address and a customer token without a session id read from another
new address (``spread_access``): every detector's
per-entity tables see new entities. Seeded; event times advance by ``1 / rate`` per step. Used
by the state-cap tests and ``bench/bench_flood.py``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

REVOKED_KEY = "kid-flood-revoked"


def flood(steps: int, seed: int = 1, start: float = 1750734765.0, rate: float = 50.0,
          staff_every: int = 4) -> Iterator[dict[str, Any]]:
    """JSON-ready events (dicts) of ``steps`` new entity triples, in event-time order."""
    r = random.Random(seed)
    bits = r.getrandbits
    yield {"event_id": "flood-key", "ts": start, "change": "key_revoked", "key_id": REVOKED_KEY}
    for i in range(steps):
        ts = start + i / rate
        acct, sess = f"c-f{bits(40):x}", f"s-f{bits(48):x}"
        ip = f"{r.randint(1, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"
        yield {"event_id": f"fl-{seed}-{i}", "ts": ts, "account_id": acct,
               "outcome": "success", "src_ip": ip, "session_id": sess,
               "device_id": f"d-{bits(32):x}"}
        yield {"event_id": f"fa-{seed}-{i}", "ts": ts, "actor_id": acct, "subject_id": acct,
               "resource": "address", "src_ip": ip, "session_id": sess,
               "token_issued_at": ts - 5}
        if i % staff_every == 0:
            emp = f"e-f{bits(32):x}"
            yield {"event_id": f"ft-{seed}-{i}", "ts": ts, "change": "principal_terminated",
                   "principal_id": emp}
            yield {"event_id": f"fe-{seed}-{i}", "ts": ts, "actor_id": emp,
                   "actor_type": "employee", "subject_id": acct, "resource": "profile",
                   "action": "search", "records": 3, "src_ip": ip, "key_id": REVOKED_KEY}
            yield {"event_id": f"fs-{seed}-{i}", "ts": ts, "actor_id": f"svc-f{bits(32):x}",
                   "actor_type": "service", "subject_id": acct, "resource": "profile",
                   "src_ip": f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"}
            bad = f"{r.randint(1, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"
            yield {"event_id": f"ff-{seed}-{i}", "ts": ts, "account_id": f"c-f{bits(40):x}",
                   "outcome": "failure", "src_ip": bad}
            acct = f"c-f{bits(40):x}"
            yield {"event_id": f"fn-{seed}-{i}", "ts": ts, "actor_id": acct, "subject_id": acct,
                   "resource": "address", "src_ip": f"{r.randint(1, 223)}.{r.randint(0, 255)}."
                   f"{r.randint(0, 255)}.{r.randint(1, 254)}", "token_issued_at": ts - 5}
