"""credential_stuffing — one source fails logins on many different accounts in a short window.

A stuffing run replays leaked username/password pairs: most attempts fail, each on a different
account, from one address, one /24 (or /48) subnet, or addresses spread over one AS. Per source
and level the shared :mod:`detectors._burst` tracker keeps a sliding window (``window`` seconds)
of failures, successes, the distinct accounts that failed and the children it spans. A source
pages when

- the distinct failed accounts reach ``min_accounts`` for its level (address 10, subnet 20,
  AS 40), and a subnet spans at least 3 failing addresses, an AS at least 3 failing subnets (so
  one address does not page three times: its subnet and AS need a spread of their own);
- its failure rate is significantly above the peer typo rate: a one-sided binomial z-score
  (``z_min``) against the failure rate of all sources not in a burst, learned as logins arrive
  (prior 10% until enough are seen, so the first hour works). A carrier NAT or an office with many
  honest users has many failing accounts too, but their successes keep its rate near the typo
  rate.

Warning at the threshold; critical once the run reaches ``critical_factor`` times it, or as soon as
a login succeeds from a failing address inside the burst (a leaked password worked: see
``account_takeover`` for the account). Evidence: accounts, failures, the failure rate against the
typo rate, attempts per minute, the accounts that succeeded.

Victims: the accounts whose login succeeded inside the burst (their passwords worked for the
attacker) are counted and named by digest (``account#...``); the source (address, subnet, AS)
and its failing addresses and subnets stay in the clear.

>>> from detectors.engine import Engine, EngineConfig
>>> T0 = 1_750_723_200  # 2025-06-24T00:00:00Z
>>> eng = Engine(EngineConfig(detectors=("credential_stuffing",)))
>>> alerts = []
>>> for i in range(12):
...     got, _ = eng.process_obj({"event_id": f"f{i}", "ts": T0 + 1000 + i * 5, "account_id": f"c-{i}",
...                               "outcome": "failure", "src_ip": "45.33.2.10"})
...     alerts += got
>>> a = alerts[0]
>>> a["severity"], a["entity"]
('warning', {'kind': 'src_ip', 'id': '45.33.2.10'})
>>> a["summary"]
'Credential stuffing from 45.33.2.10 (US, Akamai Connected Cloud): failed logins on 10 accounts in 45 s (10 failures, failure rate 100% vs 10% typical), no login succeeded yet.'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _burst
from .base import Detector, Finding, ev, iso

if TYPE_CHECKING:
    from .engine import Context
    from .events import Event


class CredentialStuffing(Detector):
    id = "credential_stuffing"
    title = "Credential stuffing"
    description = ("Many failed logins across many distinct accounts from one address, subnet or "
                   "AS, far above the usual typo rate.")
    severity = "warning"
    attack = ("T1110.004",)  # Brute Force: Credential Stuffing
    status = "test"
    entity_kinds = ("src_ip", "subnet", "asn")
    wants = frozenset({"login"})
    triage = (
        "Check: the failure rate against the typo rate, how many accounts were tried, whether any "
        "login succeeded (those accounts are likely compromised: see account_takeover), the "
        "network (hosting / VPN / residential proxy), user agents. False positives: a carrier NAT "
        "or corporate proxy during an IdP outage (failures for everyone: check the IdP), a load "
        "test against production, a password-policy change forcing many failures. Respond: "
        "rate-limit or challenge (CAPTCHA, step-up MFA) the source, block it at the edge, reset "
        "passwords and revoke sessions of accounts that succeeded, check the passwords against "
        "breach corpora."
    )

    def __init__(self, window: float = 600.0, min_accounts: tuple[int, int, int] = (10, 20, 40),
                 min_children: tuple[int, int, int] = (1, 3, 3), critical_factor: float = 5.0,
                 z_min: float = 5.0, rate_min: float = 0.5, prior_rate: float = 0.10,
                 refresh: float = 600.0) -> None:
        self.cfg = _burst.BurstConfig(
            window=window, min_accounts=tuple(min_accounts),  # type: ignore[arg-type]  # three ints (a list when read from TOML)
            min_children=tuple(min_children),  # type: ignore[arg-type]  # as above
            critical_factor=critical_factor, z_min=z_min, rate_min=rate_min,
            prior_rate=prior_rate, refresh=refresh)
        self._ctx: Context | None = None
        self._t: _burst.BurstTracker | None = None

    def _tracker(self, ctx: Context) -> _burst.BurstTracker:
        if self._ctx is not ctx or self._t is None:
            self._ctx = ctx
            self._t = _burst.tracker(ctx, self.cfg)
        return self._t

    def on_login(self, e: Event, ctx: Context) -> list[Finding]:
        t = self._t if self._ctx is ctx and self._t is not None else self._tracker(ctx)
        changes = t.observe(e)
        if not changes:
            return []
        return [self._finding(c, t, e, ctx) for c in changes]

    # --- explanation ---------------------------------------------------------------------
    def _finding(self, c: _burst.Change, t: _burst.BurstTracker, e: Event, ctx: Context
                 ) -> Finding:
        s = c.source
        cfg = t.cfg
        n = len(s.accts)
        saturated = n >= cfg.max_accounts
        need = cfg.min_accounts[s.level]
        f, a = s.failures, s.attempts
        rate = f / a if a else 0.0
        typo = t.typo_rate()
        z = t.zscore(f, a)
        wins = t.successes_under(s)
        won = sorted({r[1] for r in wins if r[0] >= (s.flagged_at or 0) - cfg.window})
        span = max(e.ts - min(s.accts.values()), 1.0)
        critical = c.what in ("grow", "success") or n >= cfg.critical_factor * need or bool(won)
        kind = s.kind
        accounts = f"{n}+" if saturated else str(n)
        span_txt = f"{span:.0f} s" if span < 120 else f"{span / 60:.0f} min"
        what = {"src_ip": "", "subnet": "subnet ", "asn": "AS "}[kind]
        lead = f"Credential stuffing from {what}{s.key} ({s.label})"
        names = ctx.victims()
        won_as = [names("account", a) for a in won[:20]]
        if won:
            tail = (f"{len(won)} login{'s' if len(won) > 1 else ''} succeeded inside the burst "
                    f"({', '.join(won_as[:3])}{', ...' if len(won) > 3 else ''})")
        else:
            tail = "no login succeeded yet"
        summary = (f"{lead}: failed logins on {accounts} accounts in {span_txt} ({f} failures, "
                   f"failure rate {rate:.0%} vs {typo:.0%} typical), {tail}.")
        evidence: list[dict[str, Any]] = [
            ev("distinct_failed_accounts", n, f"< {need} per {kind} in {cfg.window / 60:g} min",
               ("counted exactly; " if not saturated else f"counted up to {cfg.max_accounts}; ")
               + t.peer_words(s.level)),
            ev("failure_rate", round(rate, 4), round(typo, 4),
               f"{f} of {a} attempts failed; z = {z:.1f} over the peer typo rate "
               f"(threshold {cfg.z_min:g})"),
            ev("attempts_per_minute", round(a / (span / 60.0), 1), "a person: a few",
               f"over {span_txt} since {iso(e.ts - span)}"),
            ev("successes_in_burst", len(won), 0,
               ("accounts: " + ", ".join(won_as)) if won else "none so far"),
        ]
        if s.level:
            child = "addresses" if s.level == 1 else "subnets"
            evidence.append(ev(f"failing_{child}", len(s.kids),
                               f">= {cfg.min_children[s.level]} to page the {kind}",
                               ", ".join(sorted(s.kids)[:10])))
        eids = list(s.event_ids)
        if c.success is not None:
            eids = [c.success[2], *eids]
        score = min(1.0, 0.5 + 0.5 * min(n / (cfg.critical_factor * need), 1.0))
        if won:
            score = 1.0
        return Finding(self.id, kind, s.key, "critical" if critical else "warning", score,
                       summary, evidence, eids, e.ts, names.extra())

    # --- housekeeping --------------------------------------------------------------------
    def expire(self, now: float) -> None:
        if self._t is not None:
            self._t.expire(now)

    def shed(self, cap: int) -> int:
        return self._t.shed(cap) if self._t is not None else 0

    def tracked(self) -> dict[str, int]:
        return self._t.tracked() if self._t is not None else {}

    def warmup(self) -> float:
        if self._t is None:
            return 0.0
        return self._t.learned()


DETECTOR = CredentialStuffing
