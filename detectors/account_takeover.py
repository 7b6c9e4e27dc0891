"""account_takeover — a login that an attacker won: inside a stuffing burst or after failures,
from a device and a place new to the account, then a look at the address or the payment page.

Two ways in, both judged against the account's own history (a per-account profile of recent
devices and places, kept under a salted hash of the account id):

- **inside a burst**: the login succeeded from an address that was failing logins on other
  accounts in the same window, and that address, its subnet or its AS is in a credential-stuffing
  burst (the shared :mod:`detectors._burst` tracker). Successes seen shortly before the burst was
  recognised are judged when it is. Pages even for an account we have no history of yet (cold
  start), unless the login came from a device *and* place the account already uses.
- **after failures**: at least ``min_failures`` failed logins on the account within
  ``fail_window``, then a success from a device *and* a place it has never used. Needs history:
  a customer's typo-then-success from their usual device and network never pages.

Warning when the login is judged; critical when the account then reads a sensitive resource
(``sensitive``: address, payment, ...) within ``watch`` seconds of the login, the way the stolen
account is cashed in. One page per account. Successes judged as takeovers never teach the
profile their device or place.

Victims: the page is about the account taken over (its entity, in the clear: the one to lock and
reset); what it reads is its own data. The login's source (the burst's address, or a new place
after failures) and a device new to the account are the attacker's and stay in the clear; a
device the account already used is its owner's and is named by digest (``device#...``).

>>> from detectors.engine import Engine, EngineConfig
>>> T0 = 1_750_723_200  # 2025-06-24T00:00:00Z
>>> eng = Engine(EngineConfig(detectors=("account_takeover",)))
>>> for i in range(12):
...     _ = eng.process_obj({"event_id": f"f{i}", "ts": T0 + 1000 + i, "account_id": f"c-{i}",
...                          "outcome": "failure", "src_ip": "45.33.2.10"})
>>> got, _ = eng.process_obj({"event_id": "win", "ts": T0 + 1013, "account_id": "c-77",
...     "outcome": "success", "src_ip": "45.33.2.10", "session_id": "s-1", "device_id": "d-x"})
>>> [(a["severity"], a["entity"]["id"]) for a in got]
[('warning', 'c-77')]
>>> got, _ = eng.process_obj({"event_id": "rd", "ts": T0 + 1100, "actor_id": "c-77",
...     "subject_id": "c-77", "resource": "payment", "src_ip": "45.33.2.10", "session_id": "s-1"})
>>> got[0]["severity"], got[0]["summary"]
('critical', 'Account c-77 was likely taken over: a login succeeded from 45.33.2.10 (US, Akamai Connected Cloud) inside a credential-stuffing burst from 45.33.2.10 (12 accounts failed) on a device and network this account had not used before (no history yet), then it read payment 87 s later.')
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import _burst
from ._cap import evict
from .base import Detector, Finding, ev, iso

if TYPE_CHECKING:
    from .engine import Context
    from .events import Event

SENSITIVE = frozenset({"address", "payment", "phone", "email"})


def _crc(text: str | None) -> int:
    return zlib.crc32(text.encode()) if text else 0


class _Profile:
    """What an account usually logs in from (devices and places as 32-bit checksums)."""

    __slots__ = ("devices", "places", "logins", "last_ts")

    def __init__(self) -> None:
        self.devices: list[int] = []
        self.places: list[int] = []
        self.logins = 0
        self.last_ts = 0.0


def _push(items: list[int], item: int, cap: int) -> None:
    if item in items:
        items.remove(item)
    items.append(item)
    if len(items) > cap:
        del items[0]


def _profile_last(p: _Profile) -> float:
    return p.last_ts


def _login_ts(c: _Candidate | _Suspect) -> float:
    return c.login_ts


@dataclass(slots=True)
class _Candidate:
    account: str
    login_ts: float
    src_ip: str
    session: str | None
    where: str
    how: str  # the words for why the login is suspect
    facts: list[dict[str, Any]]
    event_ids: list[str]
    critical: bool = False
    reads: list[tuple[float, str, str]] = field(default_factory=list)


@dataclass(slots=True)
class _Suspect:
    """A success from an address failing on other accounts: watched for sensitive reads."""

    login_ts: float
    src_ip: str
    session: str | None
    reads: list[tuple[float, str, str]] = field(default_factory=list)


class AccountTakeover(Detector):
    id = "account_takeover"
    title = "Account takeover"
    description = ("A login succeeds inside a credential-stuffing burst or after failures, from a "
                   "device and place new to the account, and sensitive data is read next.")
    severity = "critical"
    attack = ("T1078.004", "T1110.004")  # Valid Accounts: Cloud; Credential Stuffing
    status = "test"
    entity_kinds = ("account",)
    wants = frozenset({"login", "access"})
    triage = (
        "Check: the login's source (the stuffing alert on it), device and network against the "
        "account's history, what was read or changed after the login (address, payment, a "
        "changed email or phone means the attacker is locking the owner out). False positives: "
        "a customer on a new phone while travelling who mistyped the password several times; "
        "a customer behind the same carrier NAT as a stuffing run. Respond: revoke the account's "
        "sessions, force a password reset with step-up verification, undo changes to contact "
        "or payment data, tell the customer."
    )

    def __init__(self, min_failures: int = 3, fail_window: float = 1800.0, watch: float = 3600.0,
                 sensitive: tuple[str, ...] = tuple(sorted(SENSITIVE)), max_devices: int = 4,
                 max_places: int = 4, profile_ttl: float = 90 * 86400.0) -> None:
        self.min_failures = min_failures
        self.fail_window = fail_window
        self.watch = watch
        self.sensitive = frozenset(sensitive)
        self.max_devices = max_devices
        self.max_places = max_places
        self.profile_ttl = profile_ttl
        self._profiles: dict[int, _Profile] = {}  # salted hash of the account id -> profile
        self._suspects: dict[str, _Suspect] = {}  # transient (watch): account -> reads
        self._cands: dict[str, _Candidate] = {}  # transient (watch): account -> candidate
        self._next_sweep = 0.0
        self._judged = 0.0  # EWMA of "this success had a profile to judge against"
        self._ctx: Context | None = None
        self._t: _burst.BurstTracker | None = None

    # --- hooks ---------------------------------------------------------------------------
    def on_login(self, e: Event, ctx: Context) -> list[Finding]:
        t = self._t
        if self._ctx is not ctx or t is None:
            self._ctx = ctx
            t = self._t = _burst.tracker(ctx)
        changes = t.observe(e)
        acct: str = e.account_id  # type: ignore[assignment]  # a login has an account_id (decode requires it)
        if e.outcome == "failure":
            out: list[Finding] = []
            for c in changes:  # a burst recognised now: judge the successes seen before
                if c.what == "flag":
                    for seen in t.successes_under(c.source):
                        if seen[1] not in self._cands:
                            out.extend(self._judge_burst(seen, c.source, t, ctx))
            return out
        out = []
        suspect = False
        burst_change = next((c for c in changes if c.what == "success"), None)
        if burst_change is not None:
            rec: _burst.Success = burst_change.success  # type: ignore[assignment]  # a success change carries its Success
            out.extend(self._judge_burst(rec, burst_change.source, t, ctx, e))
        else:
            ip = t.sources[0].get(e.src_ip)
            if ip is not None and ip.accts:
                # the address is failing on other accounts: watch this login, do not learn it
                suspect = True
                if acct not in self._suspects:
                    self._suspects[acct] = _Suspect(e.ts, ip.key, e.session_id)
            f = t.last_fails
            if f is not None and f[0] >= self.min_failures and e.ts - f[2] <= self.fail_window:
                out.extend(self._judge_failures(e, f, ctx))
        if not suspect and acct not in self._cands:
            self._learn(e, ctx)
        return out

    def on_access(self, e: Event, ctx: Context) -> list[Finding]:
        if not (self._suspects or self._cands):
            return []
        actor: str = e.actor_id  # type: ignore[assignment]  # a request has an actor_id (decode requires it)
        if e.resource not in self.sensitive or e.subject_id != actor:
            return []
        c = self._cands.get(actor)
        if c is not None:
            if c.critical or e.ts - c.login_ts > self.watch:
                return []
            if e.session_id != c.session and e.src_ip != c.src_ip:
                return []  # the owner's own session elsewhere, not the suspect login
            c.reads.append((e.ts, e.resource, e.event_id))
            return [self._finding(c, e.ts, ctx)]
        s = self._suspects.get(actor)
        if (s is not None and len(s.reads) < 10 and e.ts - s.login_ts <= self.watch
                and (e.session_id == s.session or e.src_ip == s.src_ip)):
            s.reads.append((e.ts, e.resource, e.event_id))
        return []

    # --- judging -------------------------------------------------------------------------
    def _novelty(self, acct: str, device: str | None, ip: str, ctx: Context
                 ) -> tuple[_Profile | None, bool, bool, str]:
        p = self._profiles.get(ctx.hash_id(acct))
        net = ctx.geo.lookup(ip)
        place = f"{net.country}/{net.asn_key}"
        if p is None or p.logins == 0:
            return None, True, True, place
        return p, _crc(device) not in p.devices, _crc(place) not in p.places, place

    def _judge_burst(self, rec: _burst.Success, src: _burst.Source,
                     t: _burst.BurstTracker, ctx: Context, e: Event | None = None
                     ) -> list[Finding]:
        ts, acct, eid, device, ip, sid = rec
        prof, new_dev, new_place, place = self._novelty(acct, device, ip, ctx)
        if not (new_dev or new_place):
            return []  # the owner on a device and network they use: a bystander, not a takeover
        net = ctx.geo.lookup(ip)
        where = f"{net.country}, {net.org or net.net_class}"
        what = {"src_ip": "", "subnet": "subnet ", "asn": "AS "}[src.kind]
        how = (f"inside a credential-stuffing burst from {what}{src.key} "
               f"({len(src.accts)} accounts failed)")
        facts = [
            ev("login_source_in_burst", f"{src.kind} {src.key}", "not in a stuffing burst",
               f"{len(src.accts)} accounts failed, {src.failures} of {src.attempts} attempts "
               f"failed (typo rate {t.typo_rate():.0%}); burst recognised "
               f"{iso(src.flagged_at or ts)}"),
        ]
        facts += self._novelty_facts(prof, new_dev, new_place, device, place)
        return self._open(acct, ts, ip, sid, where, how, facts, [eid], ctx)

    def _judge_failures(self, e: Event, f: list[float], ctx: Context) -> list[Finding]:
        acct: str = e.account_id  # type: ignore[assignment]  # a login has an account_id (decode requires it)
        device = e.device_id or e.user_agent
        ip: str = e.src_ip  # type: ignore[assignment]  # logins and requests have a src_ip (decode requires it)
        prof, new_dev, new_place, place = self._novelty(acct, device, ip, ctx)
        if prof is None or not (new_dev and new_place):
            return []  # no history to judge, or a usual device or network: the owner's typos
        net = e.net
        where = f"{net.country}, {net.org or net.net_class}" if net else "?"
        how = f"after {f[0]:.0f} failed logins in {(e.ts - f[1]) / 60:.0f} min"
        facts = [ev("failed_logins_before", int(f[0]), f"< {self.min_failures} in "
                    f"{self.fail_window / 60:g} min", f"first failure {iso(f[1])}")]
        facts += self._novelty_facts(prof, new_dev, new_place, device, place)
        return self._open(acct, e.ts, ip, e.session_id, where, how, facts, [e.event_id], ctx)

    def _novelty_facts(self, prof: _Profile | None, new_dev: bool, new_place: bool,
                       device: str | None, place: str) -> list[dict[str, Any]]:
        if prof is None:
            base = "no login history for this account yet"
            return [ev("device", device, base, "new"), ev("place", place, base, "new")]
        return [
            ev("device", device, f"one of {len(prof.devices)} devices used in "
               f"{prof.logins} logins", "new" if new_dev else "known"),
            ev("place", place, f"one of {len(prof.places)} usual country/network pairs",
               "new" if new_place else "known"),
        ]

    def _open(self, acct: str, ts: float, ip: str, sid: str | None, where: str, how: str,
              facts: list[dict[str, Any]], eids: list[str], ctx: Context) -> list[Finding]:
        if acct in self._cands:
            return []
        c = self._cands[acct] = _Candidate(acct, ts, ip, sid, where, how, facts, eids)
        s = self._suspects.pop(acct, None)
        if s is not None:
            c.reads = [r for r in s.reads if r[0] >= ts]
        self._forget(acct, facts, ctx)
        return [self._finding(c, max([ts] + [r[0] for r in c.reads]), ctx)]

    def _forget(self, acct: str, facts: list[dict[str, Any]], ctx: Context) -> None:
        """Keep a judged login's device and place out of the account's profile."""
        p = self._profiles.get(ctx.hash_id(acct))
        if p is None:
            return
        for fact in facts:
            if fact.get("detail") == "new":
                v = _crc(fact["observed"])
                items = p.devices if fact["feature"] == "device" else p.places
                if fact["feature"] in ("device", "place") and v in items:
                    items.remove(v)

    def _learn(self, e: Event, ctx: Context) -> None:
        k = ctx.hash_one(e.account_id)  # type: ignore[arg-type]  # a login has an account_id (decode requires it)
        p = self._profiles.get(k)
        if p is None:
            self._judged -= 0.001 * self._judged
            p = self._profiles[k] = _Profile()
        else:
            self._judged += 0.001 * (1.0 - self._judged)
        dev = _crc(e.device_id or e.user_agent)
        if not p.devices or p.devices[-1] != dev:  # usually the same device as last time
            _push(p.devices, dev, self.max_devices)
        net = e.net
        if net is not None:
            place = _crc(f"{net.country}/{net.asn_key}")
            if not p.places or p.places[-1] != place:
                _push(p.places, place, self.max_places)
        p.logins += 1
        p.last_ts = e.ts

    def _finding(self, c: _Candidate, ts: float, ctx: Context) -> Finding:
        lead = (f"Account {c.account} was likely taken over: a login succeeded from {c.src_ip} "
                f"({c.where}) {c.how}")
        new = [f["feature"] for f in c.facts if f.get("detail") == "new"]
        if new:
            nothing = "no history yet" if any("no login history" in str(f["baseline"])
                                             for f in c.facts) else "history checked"
            words = " and ".join("network" if n == "place" else n for n in new)
            lead += f" on a {words} this account had not used before ({nothing})"
        names = ctx.victims()
        evidence = [  # a device the account already used is its owner's: by digest
            {**f, "observed": names("device", f["observed"])}
            if f["feature"] == "device" and f.get("detail") == "known" and f["observed"] else f
            for f in c.facts
        ]
        eids = list(c.event_ids)
        if c.reads:
            c.critical = True
            res = ", ".join(dict.fromkeys(r[1] for r in c.reads))
            lag = c.reads[0][0] - c.login_ts
            summary = f"{lead}, then it read {res} {lag:.0f} s later."
            evidence.append(ev("sensitive_reads_after_login", len(c.reads),
                               f"0 within {self.watch / 60:g} min of a suspect login",
                               f"{res}; first at {iso(c.reads[0][0])}"))
            eids += [r[2] for r in c.reads]
            return Finding(self.id, "account", c.account, "critical", 0.95, summary, evidence,
                           eids, ts, names.extra())
        summary = f"{lead}; no sensitive data read yet."
        evidence.append(ev("sensitive_reads_after_login", 0,
                           f"0 within {self.watch / 60:g} min of a suspect login",
                           "watching: critical if " + ", ".join(sorted(self.sensitive))
                           + " is read"))
        return Finding(self.id, "account", c.account, "warning", 0.7, summary, evidence, eids,
                       ts, names.extra())

    # --- housekeeping --------------------------------------------------------------------
    def expire(self, now: float) -> None:
        if self._t is not None:
            self._t.expire(now)
        w = self.watch
        for a in [a for a, c in self._cands.items() if now - c.login_ts > w]:
            del self._cands[a]
        for a in [a for a, s in self._suspects.items() if now - s.login_ts > w]:
            del self._suspects[a]
        if now >= self._next_sweep:  # profiles live for months: sweep them once a day
            self._next_sweep = now + 86400.0
            ttl = self.profile_ttl
            for k in [k for k, p in self._profiles.items() if now - p.last_ts > ttl]:
                del self._profiles[k]

    def shed(self, cap: int) -> int:
        n = evict(self._profiles, cap, _profile_last)
        n += evict(self._cands, cap, _login_ts)  # transient: an hour of suspect logins
        n += evict(self._suspects, cap, _login_ts)
        return n + (self._t.shed(cap) if self._t is not None else 0)

    def tracked(self) -> dict[str, int]:
        return {"account": len(self._profiles)}

    def warmup(self) -> float:
        """The share of recent successful logins that had a history to be judged against."""
        return round(min(1.0, self._judged), 3)


DETECTOR = AccountTakeover
