"""brute_force — one source fails many times on ONE account: its password is being guessed.

``credential_stuffing`` and ``password_spray`` count distinct accounts; a source that hammers
one account (``root`` on an SSH server, an admin on a login page) tries one or a few accounts
many times and pages neither. Per (address, account) pair this detector keeps the times of
the failures within a sliding window (``window``, default one hour; at most
``critical_factor * min_failures`` times are kept per pair) and pages the address when

- failures on that one account from that one address reach ``min_failures`` (20) within the
  window. A person who mistypes fails a few times, then succeeds or gives up; an account
  locked out after a handful of failures never gets near 20.

A success from the address on that account before the threshold ends the pair's count (the
owner remembered the password). A success after it is the guessed password working:
critical. Critical also at ``critical_factor`` times the threshold.

Victims: the account being guessed is counted and named by digest (``account#...``); the
address stays in the clear.

>>> from detectors.engine import Engine, EngineConfig
>>> T0 = 1_750_723_200  # 2025-06-24T00:00:00Z
>>> eng = Engine(EngineConfig(detectors=("brute_force",)))
>>> alerts = []
>>> for i in range(25):  # one failed password every 30 s on one account
...     got, _ = eng.process_obj({"event_id": f"f{i}", "ts": T0 + 1000 + i * 30,
...         "account_id": "root", "outcome": "failure", "src_ip": "45.33.2.10"})
...     alerts += got
>>> a = alerts[0]
>>> a["severity"], a["entity"]
('warning', {'kind': 'src_ip', 'id': '45.33.2.10'})
>>> a["summary"][:98]
'Brute force from 45.33.2.10 (US, Akamai Connected Cloud): 20 failed logins on one account (account'
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from . import _cap
from .base import Detector, Finding, ev, iso

if TYPE_CHECKING:
    from .engine import Context
    from .events import Event


class _Pair:
    """The failures of one address on one account within the window."""

    __slots__ = ("fails", "ids", "last", "flagged", "critical")

    def __init__(self, keep: int) -> None:
        self.fails: deque[float] = deque(maxlen=keep)
        self.ids: deque[str] = deque(maxlen=20)
        self.last = 0.0
        self.flagged = False  # paged (warning) in this run of failures
        self.critical = False  # paged critical in this run


def _last(p: _Pair) -> float:
    return p.last


def _flagged(p: _Pair) -> bool:
    return p.flagged


class BruteForce(Detector):
    id = "brute_force"
    title = "Brute force on one account"
    description = ("Many failed logins on one account from one address within an hour: its "
                   "password is being guessed.")
    severity = "warning"
    attack = ("T1110.001",)  # Brute Force: Password Guessing
    status = "experimental"
    entity_kinds = ("src_ip",)
    wants = frozenset({"login"})
    triage = (
        "Check: which account is tried (an administrator or root is the usual target), how "
        "many failures and over how long, the network of the address (hosting providers and "
        "other scanners are typical on SSH), and above all whether a login from that address "
        "on that account succeeded (the guessed password worked: treat the account as "
        "compromised). False positives: a script or service with a stale password retrying "
        "in a loop (same address, steady rhythm, often an internal address; fix its "
        "credential), a person's device retrying an old password after a change. Respond: "
        "block the address at the edge or with fail2ban, make sure the account is locked out "
        "or rate-limited after a few failures, disable password login where keys or SSO "
        "serve (SSH: PasswordAuthentication no, PermitRootLogin no)."
    )

    def __init__(self, window: float = 3600.0, min_failures: int = 20,
                 critical_factor: float = 5.0) -> None:
        self.window = float(window)
        self.min_failures = int(min_failures)
        self.critical_factor = float(critical_factor)
        self._keep = max(self.min_failures, int(self.min_failures * self.critical_factor))
        self.pairs: dict[tuple[str, str], _Pair] = {}

    def on_login(self, e: Event, ctx: Context) -> list[Finding]:
        src, acct = e.src_ip, e.account_id
        if src is None or acct is None:
            return []
        key = (src, acct)
        p = self.pairs.get(key)
        if e.outcome == "success":
            if p is None:
                return []
            self._trim(p, e.ts)
            if len(p.fails) >= self.min_failures:  # the guessed password worked
                p.last = e.ts
                p.ids.append(e.event_id or "")
                finding = self._finding(p, e, ctx, won=True)
                del self.pairs[key]
                return [finding]
            del self.pairs[key]  # the owner, who remembered: the count starts over
            return []
        if p is None:
            p = self.pairs[key] = _Pair(self._keep)
        p.fails.append(e.ts)
        p.ids.append(e.event_id or "")
        p.last = max(p.last, e.ts)
        self._trim(p, e.ts)
        n = len(p.fails)
        if n < self.min_failures:
            p.flagged = p.critical = False
            return []
        critical = n >= self.min_failures * self.critical_factor
        if p.flagged and (p.critical or not critical):
            return []  # paged already: the episode counts the repeats
        p.flagged = True
        p.critical = critical
        return [self._finding(p, e, ctx, won=False)]

    def _trim(self, p: _Pair, now: float) -> None:
        fails = p.fails
        edge = now - self.window
        while fails and fails[0] < edge:
            fails.popleft()

    # --- explanation ---------------------------------------------------------------------
    def _finding(self, p: _Pair, e: Event, ctx: Context, won: bool) -> Finding:
        n = len(p.fails)
        saturated = n >= self._keep
        names = ctx.victims()
        who = names("account", e.account_id or "")
        net = e.net
        where = f"{net.country}, {net.org or net.net_class}" if net is not None else "?"
        span = max(e.ts - p.fails[0], 1.0) if p.fails else 1.0
        span_txt = f"{span:.0f} s" if span < 120 else f"{span / 60:.0f} min"
        count = f"{n}+" if saturated else str(n)
        tail = ("then a login on it SUCCEEDED from the same address (the guessed password "
                "worked)" if won else "no login on it succeeded yet")
        summary = (f"Brute force from {e.src_ip} ({where}): {count} failed logins on one "
                   f"account ({who}) in {span_txt}, {tail}.")
        evidence: list[dict[str, Any]] = [
            ev("failures_on_one_account", n,
               f"< {self.min_failures} per address and account in {self.window / 60:g} min "
               "(a person who mistypes: a few)",
               (f"counted up to {self._keep}; " if saturated else "")
               + f"since {iso(p.fails[0])}" if p.fails else ""),
            ev("attempts_per_minute", round(n / (span / 60.0), 2), "a person: a few, then stops",
               f"over {span_txt}"),
            ev("success_after_failures", 1 if won else 0, 0,
               f"account {who}" if won else "none so far"),
        ]
        critical = won or n >= self.min_failures * self.critical_factor
        score = 1.0 if won else min(1.0, 0.5 + 0.5 * min(
            n / (self.min_failures * self.critical_factor), 1.0))
        eids = [i for i in p.ids if i]
        if won and eids:
            eids = [eids[-1], *eids[:-1]]
        return Finding(self.id, "src_ip", e.src_ip or "", "critical" if critical else "warning",
                       score, summary, evidence, eids, e.ts, names.extra())

    # --- housekeeping --------------------------------------------------------------------
    def expire(self, now: float) -> None:
        edge = now - self.window
        stale = [k for k, p in self.pairs.items() if p.last < edge]
        for k in stale:
            del self.pairs[k]

    def shed(self, cap: int) -> int:
        return _cap.evict(self.pairs, cap, _last, _flagged)

    def tracked(self) -> dict[str, int]:
        return {"src_ip": len(self.pairs)} if self.pairs else {}  # address-account pairs


DETECTOR = BruteForce
