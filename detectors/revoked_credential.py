"""revoked_credential — a key or principal that should be dead is still being used.

Three exact checks against the identity directory (``identity-changes``; the engine applies each
change to ``ctx.directory`` before detectors see it):

- a request signed or authenticated by a key after its ``key_revoked`` time;
- a request through a key whose owner (``owner_id`` of ``key_issued``) has been terminated or
  suspended: the Coupang case, a departed engineer's signing key minting valid tokens;
- a principal (``actor_id`` of a request, ``account_id`` of a login) acting after its own
  termination or suspension.

No warm-up: the checks are exact, so the first use pages critical (a failed login of a departed
employee, partner or service is a warning: the door held, but someone has the name and is
trying; of a suspended or closed customer account an info: locked customers retry, often for
days, without knowing why the door does not open). The entity is the
key for key checks (every forged request carries it: one page for the key, the episode holds the
rest) and the principal for principal checks. While a key or principal stays in use the detector
sends a quiet refresh (suppressed by the engine, same severity) every ``refresh`` seconds with
updated counts, so the episode stays open instead of re-paging after each quiet hour.

Victims: the customer whose data the request read (``subject_id``, unless it is the alert's
principal itself) and the account a key logged in as are named by digest (``customer#...``,
``account#...``: :meth:`detectors.engine.Context.victim`) and counted; the key, the departed principal, the key's
owner and the request's source stay in the clear (they are the credential and the one using it).

>>> from detectors.engine import Engine, EngineConfig
>>> T0 = 1_750_723_200  # 2025-06-24T00:00:00Z
>>> eng = Engine(EngineConfig(detectors=("revoked_credential",)))
>>> for obj in [
...     {"event_id": "i1", "ts": T0 + 1000, "change": "key_issued", "key_id": "kid-legacy-2019",
...      "owner_id": "emp-7"},
...     {"event_id": "i2", "ts": T0 + 2000, "change": "principal_terminated", "principal_id": "emp-7"}]:
...     _ = eng.process_obj(obj)
>>> alerts, _ = eng.process_obj({"event_id": "a1", "ts": T0 + 88400, "actor_id": "c-1",
...     "subject_id": "c-1", "resource": "address", "src_ip": "52.95.110.1",
...     "key_id": "kid-legacy-2019"})
>>> a = alerts[0]
>>> a["severity"], a["entity"]
('critical', {'kind': 'key', 'id': 'kid-legacy-2019'})
>>> a["summary"]
'Key kid-legacy-2019 belongs to emp-7, terminated 1.0 days ago (2025-06-24T00:33:20.000Z), was just used to read address of 1 customer (customer#f3edcdd2) from 52.95.110.1 (US, AMAZON-02).'
>>> eng.process_obj({"event_id": "a2", "ts": T0 + 88401, "actor_id": "c-2", "subject_id": "c-2",
...     "resource": "address", "src_ip": "52.95.110.1", "key_id": "kid-legacy-2019"})
([], None)
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._cap import evict
from .base import Detector, Finding, ev, iso

if TYPE_CHECKING:
    from .engine import Context, Directory
    from .events import Event


_NONE: list[Finding] = []  # shared empty result of the hot path (never mutated)


def ago(seconds: float) -> str:
    """A duration the way people say it: 45 s, 12 min, 5.0 h, 171.2 days."""
    s = max(0.0, seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h" if s < 86400 else f"{s / 86400:.1f} days"
    return f"{s / 86400:.1f} days"


@dataclass(slots=True)
class _Use:
    """Uses of one dead credential: counts and a sample, for the refresh findings."""

    first_ts: float
    last_ts: float
    next_refresh: float
    reason: str
    requests: int = 0
    critical: bool = False  # a critical finding was already sent
    accounts: set[int] = field(default_factory=set)  # salted hashes of subjects, capped
    sources: set[str] = field(default_factory=set)  # capped
    event_ids: list[str] = field(default_factory=list)


class RevokedCredential(Detector):
    id = "revoked_credential"
    title = "Revoked key or departed principal in use"
    description = ("A revoked key, a key whose owner has left, or a terminated/suspended "
                   "principal authenticates a login or a data-access request.")
    severity = "critical"
    attack = ("T1078", "T1606.001", "T1552.004")  # Valid Accounts; Forge Web Creds; Private Keys
    status = "stable"
    entity_kinds = ("key", "actor")
    wants = frozenset({"login", "access", "identity"})
    triage = (
        "Check: the key store (is the key really revoked / whose is it), HR status and leave date "
        "of the owner, the source network of the requests, how many distinct accounts the key "
        "read since first use. False positives: an identity-change feed ahead of reality (a "
        "termination entered early, a reinstatement not yet sent), a key handed over to a "
        "colleague without re-issuing it to them, a service account wrongly owned by a person. "
        "Respond: revoke the key at the verifier now (not just in the store), invalidate every "
        "token it signed, block the sources, preserve request logs, notify the incident lead."
    )

    def __init__(self, refresh: float = 300.0, idle: float = 7200.0, cap: int = 1000) -> None:
        self.refresh = refresh  # seconds between quiet refresh findings of an ongoing use
        self.idle = idle  # a use record idle this long is dropped (the episode has ended)
        self.cap = cap  # most distinct accounts / sources counted per record
        self._keys: dict[str, _Use] = {}
        self._principals: dict[str, _Use] = {}
        self._hot_keys: frozenset[str] = frozenset()  # revoked, or owned by a departed principal
        self._dirty = True  # an identity change arrived: rebuild the hot set

    # --- checks (hot path: two set lookups; words are built when a finding is made) ------
    def on_identity(self, e: Event, ctx: Context) -> list[Finding]:
        self._dirty = True
        return _NONE

    def __getstate__(self) -> dict[str, Any]:
        # a checkpoint may be restored beside a newer directory: rebuild the hot set then
        state = self.__dict__.copy()
        state["_hot_keys"], state["_dirty"] = frozenset(), True
        return state

    def _rebuild(self, ctx: Context) -> None:
        d = ctx.directory
        gone = d.principal_status
        self._hot_keys = frozenset(d.key_revoked).union(
            k for k, owner in d.key_owner.items() if owner in gone)
        self._dirty = False

    def on_access(self, e: Event, ctx: Context) -> list[Finding]:
        if self._dirty:
            self._rebuild(ctx)
        d = ctx.directory
        if e.key_id not in self._hot_keys and e.actor_id not in d.principal_status:
            return _NONE
        return self._check_access(e, d, ctx)

    def _check_access(self, e: Event, d: Directory, ctx: Context) -> list[Finding]:
        out: list[Finding] = []
        key = e.key_id
        if key is not None:
            revoked = d.key_revoked.get(key)
            if revoked is not None and e.ts >= revoked:
                out = self._use(self._keys, "key", key, ("revoked", None, revoked), e, ctx)
            else:
                owner = d.key_owner.get(key)
                if owner is not None and owner in d.principal_status:
                    status, since = d.principal_status[owner]
                    if e.ts >= since:
                        out = self._use(self._keys, "key", key, (status, owner, since), e,
                                        ctx)
                        if owner == e.actor_id:
                            return out  # the owner with his own key: the key page says it all
        actor = e.actor_id
        if actor in d.principal_status:
            status, since = d.principal_status[actor]
            if e.ts >= since:
                out = out + self._use(self._principals, "actor", actor,
                                      (status, None, since), e, ctx)
        return out

    def on_login(self, e: Event, ctx: Context) -> list[Finding]:
        acct = e.account_id
        d = ctx.directory
        if acct not in d.principal_status:
            return []
        status, since = d.principal_status[acct]
        if e.ts < since:
            return []
        why = (status, None, since)
        return self._use(self._principals, "actor", acct, why, e, ctx)

    # --- findings ------------------------------------------------------------------------
    def _use(self, table: dict[str, _Use], kind: str, ident: str,
             why: tuple[str, str | None, float], e: Event, ctx: Context) -> list[Finding]:
        u = table.get(ident)
        first = u is None
        if u is None:
            reason = why[0] if why[1] is None else f"owner_{why[0]}"
            if kind == "actor":
                reason = f"principal_{why[0]}"
            u = table[ident] = _Use(e.ts, e.ts, e.ts + self.refresh, reason)
        u.requests += 1
        u.last_ts = max(u.last_ts, e.ts)
        subj: str = e.subject_id or e.account_id or ""
        if len(u.accounts) < self.cap:
            u.accounts.add(zlib.crc32(subj.encode()))  # a count only
        if len(u.sources) < self.cap:
            u.sources.add(e.src_ip)  # type: ignore[arg-type]  # logins and requests have a src_ip (decode requires it)
        if len(u.event_ids) < 10:
            u.event_ids.append(e.event_id)
        escalate = not u.critical and not (e.kind == "login" and e.outcome == "failure")
        if not first and not escalate and e.ts < u.next_refresh:
            return []
        u.critical = u.critical or escalate
        u.next_refresh = e.ts + self.refresh
        return [self._finding(kind, ident, why, u, e, first or escalate, ctx)]

    def _finding(self, kind: str, ident: str, why: tuple[str, str | None, float], u: _Use,
                 e: Event, fresh: bool, ctx: Context) -> Finding:
        status, owner, since = why
        gone = f"{status} {ago(e.ts - since)} ago ({iso(since)})"
        told = f"belongs to {owner}, {gone}" if owner is not None else gone
        net = e.net
        where = f"{net.country}, {net.org or net.net_class}" if net else "?"
        failed_login = e.kind == "login" and e.outcome == "failure"
        # a customer the business locked (fraud, debt, a closed account) keeps trying: the door
        # held and they do not know why (info); staff, partners and services do not retry a
        # dead account by accident (warning: someone has the name and is trying)
        if not failed_login:
            severity = "critical"
        elif kind == "actor" and e.account_type == "customer":
            severity = "info"
        else:
            severity = "warning"
        names = ctx.victims()  # customers named by digest; the key, principal, owner in clear
        if e.kind == "login":
            did = "tried to log in (it failed)" if failed_login else "logged in"
            if kind == "key" and e.account_id is not None:
                did += f" as {names('account', e.account_id)}"
        elif e.subject_id == ident:
            did = f"{e.action} {e.resource} of {e.subject_id}"
        else:
            did = f"{e.action} {e.resource} of 1 customer ({names('customer', e.subject_id)})"  # type: ignore[arg-type]  # a request has a subject_id (decode requires it)
        if kind == "key":
            lead = f"Key {ident} {told}"
            how = f"was just used to {did}" if e.kind == "access" else f"was just {did}"
        else:
            lead = f"Principal {ident} was {told}"
            how = f"and just {did}"
        if fresh:
            summary = f"{lead}, {how} from {e.src_ip} ({where})."
        else:
            summary = (f"{lead}; still in use: {u.requests} requests on {len(u.accounts)} "
                       f"accounts from {len(u.sources)} sources since {iso(u.first_ts)}.")
        evidence = [
            ev("credential_state", u.reason.replace("_", " "), "active and owned by a current "
               "principal", told),
            ev("first_use", iso(u.first_ts), "no use after revocation or departure",
               f"latest {iso(e.ts)}: {did} from {e.src_ip} ({where})"),
            ev("requests", u.requests, 0, f"over {len(u.accounts)} distinct accounts, "
               f"{len(u.sources)} distinct sources"),
        ]
        if e.token_issued_at is not None:
            evidence.append(ev("token_issued_at", iso(e.token_issued_at),
                               "before the revocation or departure", "JWT iat of the token"))
        score = {"critical": 1.0, "warning": 0.7}.get(severity, 0.3)
        return Finding(self.id, kind, ident, severity, score, summary, evidence,
                       list(u.event_ids), e.ts, names.extra())

    # --- housekeeping --------------------------------------------------------------------
    def expire(self, now: float) -> None:
        for table in (self._keys, self._principals):
            for k in [k for k, u in table.items() if now - u.last_ts > self.idle]:
                del table[k]

    def shed(self, cap: int) -> int:
        return sum(evict(t, cap, _last_ts) for t in (self._keys, self._principals))

    def tracked(self) -> dict[str, int]:
        return {"key": len(self._keys), "actor": len(self._principals)}


def _last_ts(u: _Use) -> float:
    return u.last_ts


DETECTOR = RevokedCredential
