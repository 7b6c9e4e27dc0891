"""password_spray — one password tried once across many accounts, slowly, from many addresses.

A spray stays under per-account lockouts and per-address rate limits: about one failed login per
account, a few attempts a minute, spread over many addresses of one hosting AS or subnet, for an
hour or more. No ten-minute window looks like stuffing; the hour does. This detector keeps its own
long sliding window (``window``, default two hours) per address, subnet and AS — the same
structure as the stuffing tracker in :mod:`detectors._burst`, with the peer typo rate of that
shared tracker as the baseline — and pages when, within the window:

- failed logins reached ``min_accounts`` distinct accounts (address 20, subnet 30, AS 40), spread
  over at least 3 failing addresses (subnet) or 3 failing subnets (AS);
- there were at most ``max_fails_per_account`` failures per account tried (a spray, not a brute
  force on a few accounts);
- the failure rate is significantly above the typo rate (one-sided binomial z-score);
- and the short stuffing window has not already flagged the same source (that page is
  ``credential_stuffing``'s: one page per attacking entity).

Warning at the threshold; critical when a login succeeds from a spraying address (the sprayed
password worked for that account) or the spray reaches ``critical_factor`` times the threshold.

Victims: the accounts the sprayed password worked for are counted and named by digest
(``account#...``); the AS, subnet or address and its spraying addresses stay in the clear.

>>> from detectors.engine import Engine, EngineConfig
>>> T0 = 1_750_723_200  # 2025-06-24T00:00:00Z
>>> eng = Engine(EngineConfig(detectors=("password_spray",), trust_producer_geo=True))
>>> alerts = []
>>> for i in range(45):  # one account every 80 s, from 45 addresses in 3 subnets of one AS
...     got, _ = eng.process_obj({"event_id": f"f{i}", "ts": T0 + 1000 + i * 80, "account_id": f"c-{i}",
...         "outcome": "failure", "src_ip": f"167.71.{i % 3}.{i + 10}", "asn": 14061})
...     alerts += got
>>> a = alerts[0]
>>> a["severity"], a["entity"]
('warning', {'kind': 'asn', 'id': 'AS14061'})
>>> a["summary"]
'Password spray from AS AS14061 (NL, DIGITALOCEAN-ASN): 40 accounts tried about once each (1.0 failures per account) from 40 addresses in 3 subnets over 52 min, failure rate 100% vs 10% typical; no sprayed password has worked yet.'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _burst
from .base import Detector, Finding, ev, iso

if TYPE_CHECKING:
    from .engine import Context
    from .events import Event


class PasswordSpray(Detector):
    id = "password_spray"
    title = "Password spray"
    description = ("Failed logins spread thinly over many accounts (about one each), from many "
                   "addresses of one subnet or AS, over an hour or more.")
    severity = "warning"
    attack = ("T1110.003",)  # Brute Force: Password Spraying
    status = "test"
    entity_kinds = ("src_ip", "subnet", "asn")
    wants = frozenset({"login"})
    triage = (
        "Check: how many accounts were tried and over how long, the spread of addresses, the "
        "network (hosting providers and residential proxies are typical), the user agent, and "
        "above all whether any login from those addresses succeeded (those accounts share the "
        "sprayed, weak password). False positives: an SSO or IdP misconfiguration failing many "
        "users of one office network at once (check for the same error on successes elsewhere), "
        "a password-expiry day in a company on one network. Respond: block or challenge the "
        "AS's ranges at login, reset the passwords of accounts that succeeded and require MFA, "
        "check the sprayed accounts for weak or breached passwords."
    )

    def __init__(self, window: float = 7200.0, min_accounts: tuple[int, int, int] = (20, 30, 40),
                 min_children: tuple[int, int, int] = (1, 3, 3),
                 max_fails_per_account: float = 2.0, critical_factor: float = 5.0,
                 z_min: float = 5.0, rate_min: float = 0.5, refresh: float = 900.0) -> None:
        self.cfg = _burst.BurstConfig(
            window=window, min_accounts=tuple(min_accounts),  # type: ignore[arg-type]  # three ints (a list when read from TOML)
            min_children=tuple(min_children),  # type: ignore[arg-type]  # as above
            critical_factor=critical_factor,
            z_min=z_min, rate_min=rate_min, max_fails_per_account=max_fails_per_account,
            max_accounts=20000, max_successes=20, refresh=refresh)
        self._ctx: Context | None = None
        self._shared: _burst.BurstTracker | None = None
        self._t: _burst.BurstTracker | None = None

    def on_login(self, e: Event, ctx: Context) -> list[Finding]:
        shared = self._shared
        t = self._t
        if self._ctx is not ctx or shared is None or t is None:
            self._ctx = ctx
            shared = self._shared = _burst.tracker(ctx)
            t = self._t = _burst.BurstTracker(self.cfg, baseline=shared)
        shared.observe(e)  # the short window first: a source it flags is stuffing, not spray
        changes = t.observe(e)
        if not changes:
            return []
        out = []
        for c in changes:
            s = c.source
            if s.ceded or shared.is_flagged(s.level, s.raw):
                s.ceded = True
                continue  # credential_stuffing pages this source
            out.append(self._finding(c, t, e, ctx))
        return out

    # --- explanation ---------------------------------------------------------------------
    def _finding(self, c: _burst.Change, t: _burst.BurstTracker, e: Event, ctx: Context
                 ) -> Finding:
        s = c.source
        cfg = t.cfg
        n = len(s.accts)
        need = cfg.min_accounts[s.level]
        f, a = s.failures, s.attempts
        rate = f / a if a else 0.0
        typo = t.typo_rate()
        z = t.zscore(f, a)
        since = min(s.accts.values())
        span = max(e.ts - since, 1.0)
        won = sorted({r[1] for r in t.successes_under(s)})
        critical = c.what in ("grow", "success") or n >= cfg.critical_factor * need or bool(won)
        kind = s.kind
        what = {"src_ip": "", "subnet": "subnet ", "asn": "AS "}[kind]
        if s.level == 0:
            spread = ""
        elif s.level == 1:
            spread = f" from {len(s.kids)} addresses"
        else:
            subnets = s.kids
            addrs = sum(len(t.sources[1][k].kids) for k in subnets if k in t.sources[1])
            spread = f" from {addrs} addresses in {len(subnets)} subnets"
        span_txt = f"{span / 60:.0f} min" if span < 7200 else f"{span / 3600:.1f} h"
        names = ctx.victims()
        won_as = [names("account", a) for a in won[:20]]
        if won:
            tail = (f"the sprayed password worked for {len(won)} account"
                    f"{'s' if len(won) > 1 else ''} ({', '.join(won_as[:3])}"
                    f"{', ...' if len(won) > 3 else ''})")
        else:
            tail = "no sprayed password has worked yet"
        summary = (f"Password spray from {what}{s.key} ({s.label}): {n} accounts tried about once "
                   f"each ({f / max(n, 1):.1f} failures per account){spread} over {span_txt}, "
                   f"failure rate {rate:.0%} vs {typo:.0%} typical; {tail}.")
        evidence: list[dict[str, Any]] = [
            ev("distinct_failed_accounts", n,
               f"< {need} per {kind} in {cfg.window / 3600:g} h",
               f"since {iso(since)}; {t.peer_words(s.level)}"),
            ev("failures_per_account", round(f / max(n, 1), 2),
               f"<= {cfg.max_fails_per_account:g} for a spray (more is brute force)"),
            ev("failure_rate", round(rate, 4), round(typo, 4),
               f"{f} of {a} attempts failed; z = {z:.1f} over the peer typo rate "
               f"(threshold {cfg.z_min:g})"),
            ev("attempts_per_minute", round(a / (span / 60.0), 2),
               "below the stuffing window's threshold", f"over {span_txt}"),
            ev("successes_from_spraying_addresses", len(won), 0,
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
        score = 1.0 if won else min(1.0, 0.5 + 0.5 * min(n / (cfg.critical_factor * need), 1.0))
        return Finding(self.id, kind, s.key, "critical" if critical else "warning", score,
                       summary, evidence, eids, e.ts, names.extra())

    # --- housekeeping --------------------------------------------------------------------
    def expire(self, now: float) -> None:
        if self._t is not None:
            self._t.expire(now)
        if self._shared is not None:
            self._shared.expire(now)

    def shed(self, cap: int) -> int:
        n = self._t.shed(cap) if self._t is not None else 0
        return n + (self._shared.shed(cap) if self._shared is not None else 0)

    def tracked(self) -> dict[str, int]:
        if self._t is None:
            return {}
        return self._t.tracked()

    def warmup(self) -> float:
        if self._shared is None:
            return 0.0
        return self._shared.learned()


DETECTOR = PasswordSpray
