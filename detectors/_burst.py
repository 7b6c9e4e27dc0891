"""Shared login-burst state of ``credential_stuffing``, ``account_takeover``, ``password_spray``.

One :class:`BurstTracker` per engine context (kept in a weak map keyed by the context) counts
login attempts per source at three levels: address, /24 or /48 subnet, AS. Each source holds a
sliding window made of two half-window generations (so it spans between half and all of
``window``): failures and successes, the distinct accounts that failed and did not get in after
all (a salted CRC-32 of the id: transient state, never kept past the window; a typo followed by
a success from the same source takes the account off the count), the children it spans (addresses of a subnet,
subnets of an AS) and a few successes seen from it.

A source is *in a burst* when, within ``window`` seconds, it has failed logins on at least
``min_accounts`` distinct accounts (per level), spans at least ``min_children`` children, and its
failure rate is significantly above the peer typo rate: a one-sided binomial z-score against the
share of failed tries among the attempts of accounts that did get in, outside bursts, with a 10%
prior while it warms up (failures on accounts that never get in, the attacker's, teach nothing).
Per level, a River ``stats.Quantile(0.99)`` learns how many accounts ordinary sources (never in
a burst) fail on per window, fed once per closed window, never per event: the explanation quotes
it as the peer baseline. Failures from a source already in a burst are not charged to its subnet and AS: one attacking
address does not make its whole provider look like a second attack. The tracker is fed once per
login, whichever detector sees the event first; the others read the same result.

>>> from detectors.engine import Context
>>> from detectors.geo import default_geo
>>> ctx = Context(default_geo(), "salt")
>>> t = tracker(ctx)
>>> t is tracker(ctx)
True
>>> round(t.typo_rate(), 3)
0.1
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary
from zlib import crc32

from river import stats

from ._cap import evict

if TYPE_CHECKING:
    from .engine import Context
    from .events import Event

LEVELS = ("src_ip", "subnet", "asn")
# a login that succeeded from a failing address: ts, account, event id, device, address, session
Success = tuple[float, str, str, str | None, str, str | None]


@dataclass
class BurstConfig:
    window: float = 600.0  # seconds of the sliding window (two generations of half of it)
    min_accounts: tuple[int, int, int] = (10, 20, 40)  # distinct failed accounts per level
    min_children: tuple[int, int, int] = (1, 3, 3)  # addresses per subnet, subnets per AS
    critical_factor: float = 5.0  # accounts >= factor x min_accounts: critical
    z_min: float = 5.0  # failure rate z-score over the typo rate
    rate_min: float = 0.5  # and at least this failure rate
    prior_rate: float = 0.10  # typo rate assumed before it is learned
    prior_weight: float = 200.0  # attempts the prior is worth
    learn_half_life: float = 3600.0  # the learned typo rate forgets with this half-life
    max_accounts: int = 5000  # distinct accounts counted exactly per source, then saturated
    max_successes: int = 50  # successes kept per address per window
    account_window: float = 1800.0  # failures of one account are remembered this long
    refresh: float = 600.0  # a source in a burst sends a (suppressed) refresh this often
    max_fails_per_account: float = 0.0  # if set: at most this many failures per account tried


class Source:
    """One source at one level in the sliding window."""

    __slots__ = ("level", "key", "gen", "fails", "prev_fails", "succ", "prev_succ", "accts",
                 "kids", "successes", "flagged_at", "last_ts", "peak_accounts", "label",
                 "sent_critical", "event_ids", "ceded", "raw", "refresh_at", "tainted")

    def __init__(self, level: int, key: str, gen: int, label: str) -> None:
        self.level = level
        self.key = key
        self.label = label  # where, in words: "US, LINODE"
        self.gen = gen
        self.fails = self.prev_fails = self.succ = self.prev_succ = 0
        self.accts: dict[int, float] = {}  # salted CRC-32 of the account -> last failure ts
        self.kids: dict[str, float] = {}  # child source -> last failure ts
        self.successes: list[Success] = []
        self.flagged_at: float | None = None
        self.last_ts = 0.0
        self.peak_accounts = 0
        self.sent_critical = False
        self.event_ids: list[str] = []
        self.ceded = False  # the baseline tracker flagged it first: its page, its successes
        self.raw: Any = key  # the key in the tracker's table (an AS number for ASes)
        self.refresh_at = 0.0  # a flagged source sends a refresh finding when this passes
        self.tainted = False  # a child was in a burst: its windows do not teach the peers

    @property
    def failures(self) -> int:
        return self.fails + self.prev_fails

    @property
    def attempts(self) -> int:
        return self.fails + self.prev_fails + self.succ + self.prev_succ

    @property
    def kind(self) -> str:
        return LEVELS[self.level]


@dataclass(slots=True)
class Change:
    """What a login changed: ``flag`` (source entered a burst), ``grow`` (crossed the critical
    size), ``success`` (a login succeeded from inside a burst)."""

    what: str
    source: Source
    success: Success | None = None


class BurstTracker:
    def __init__(self, cfg: BurstConfig | None = None,
                 baseline: BurstTracker | None = None, salt: int = 0) -> None:
        self.cfg = cfg or BurstConfig()
        # account ids in the windows are kept as a salted CRC-32: cheap, and stable across the
        # processes a pickled checkpoint moves between (Python's own hash() is not)
        self.salt: int = baseline.salt if baseline is not None else salt & 0xFFFFFFFF
        self._half = self.cfg.window * 0.5
        # peer baseline, learned only when a window closes (River's P-square quantile)
        self.peers = tuple(stats.Quantile(0.99) for _ in LEVELS)
        self.peer_windows = [0, 0, 0]
        self.baseline = baseline  # another tracker that owns the typo rate and account failures
        self.sources: tuple[dict[Any, Source], ...] = ({}, {}, {})
        self._last: Event | None = None
        self._last_changes: list[Change] = []
        # transient: account -> [failures, first, last] until it logs in or the window passes
        self.account_fails: dict[str, list[float]] = {}
        self.last_fails: list[float] | None = None  # of the account whose success was observed
        self._g_fail = 0.0
        self._g_all = 0.0
        self._g_decay_at: float | None = None
        self.seen = 0  # logins observed
        self.flagged_count = 0  # sources flagged and not yet expired
        self._expired_at: float | None = None

    # --- the peer baseline ---------------------------------------------------------------
    def typo_rate(self) -> float:
        if self.baseline is not None:
            return self.baseline.typo_rate()
        c = self.cfg
        return (self._g_fail + c.prior_rate * c.prior_weight) / (self._g_all + c.prior_weight)

    def _learn(self, failures: float, ts: float) -> None:
        """One account got in after ``failures`` failed tries: that is what typos look like."""
        if self._g_decay_at is None:
            self._g_decay_at = ts + self.cfg.learn_half_life
        elif ts >= self._g_decay_at:
            self._g_fail *= 0.5
            self._g_all *= 0.5
            self._g_decay_at = ts + self.cfg.learn_half_life
        self._g_all += 1.0 + failures
        self._g_fail += failures

    def learned(self) -> float:
        """0..1: the share of the typo-rate baseline that comes from observed logins (the rest
        is the prior); with the half-life, a quiet site stays partly on the prior."""
        return round(self._g_all / (self._g_all + self.cfg.prior_weight), 3)

    def zscore(self, failures: int, attempts: int) -> float:
        p = self.typo_rate()
        return (failures - attempts * p) / math.sqrt(max(attempts * p * (1.0 - p), 1e-9))

    # --- per login -----------------------------------------------------------------------
    def observe(self, e: Event) -> list[Change]:
        """Count one login (once, however many detectors ask) and say what it changed."""
        if e is self._last:
            return self._last_changes
        self._last = e
        self.seen += 1
        ts = e.ts
        gen = int(ts // self._half)
        net = e.net
        if net is not None:
            keys = (e.src_ip, net.subnet, net.asn if net.asn is not None else net.org or net.country)
        else:
            keys = (e.src_ip, e.src_ip, "?")
        if e.outcome == "failure":
            changes = self._failure(e, ts, gen, keys)
        else:
            changes = self._success(e, ts, gen, keys)
        self._last_changes = changes
        return changes

    def _failure(self, e: Event, ts: float, gen: int, keys: tuple[Any, ...]) -> list[Change]:
        cfg = self.cfg
        acct: str = e.account_id  # type: ignore[assignment]  # a login has an account_id (decode requires it)
        h = crc32(acct.encode(), self.salt)
        changes: list[Change] = []
        in_burst = False
        base = self.baseline
        srcs = self.sources
        for lvl in (0, 1, 2):
            key = keys[lvl]
            s = srcs[lvl].get(key)
            if s is None:
                s = srcs[lvl][key] = self._new_source(lvl, key, gen, e)
            elif gen > s.gen:
                self._rotate(s, gen, ts)
            s.fails += 1
            s.last_ts = ts
            if lvl:
                s.kids[keys[lvl - 1]] = ts
            accts = s.accts
            n = len(accts)
            if s.flagged_at is not None:  # in a burst already
                in_burst = True
                if len(s.event_ids) < 20:
                    s.event_ids.append(e.event_id)
                if n < cfg.max_accounts:
                    accts[h] = ts
                    if not s.sent_critical and len(accts) > n:
                        self._check(s, ts, changes, e.event_id)
                if ts >= s.refresh_at and not changes:
                    s.refresh_at = ts + cfg.refresh
                    changes.append(Change("refresh", s))
                for up in range(lvl + 1, 3):
                    parent = srcs[up].get(keys[up])
                    if parent is not None:
                        parent.tainted = True
                break  # already paged at this level: its subnet and AS are not charged
            if len(s.event_ids) < 5:  # a sample of what led up to a page
                s.event_ids.append(e.event_id)
            if n < cfg.max_accounts:
                accts[h] = ts
                if len(accts) > n:
                    self._check(s, ts, changes, e.event_id)
            if base is not None and (s.ceded or base.is_flagged(lvl, key)):
                s.ceded = True
                break
        if base is None and not in_burst:  # an attacker's try is not the owner's typo
            f = self.account_fails.get(acct)
            if f is None or ts - f[2] > cfg.account_window:
                self.account_fails[acct] = [1.0, ts, ts]
            else:
                f[0] += 1.0
                f[2] = ts
        return changes

    def _success(self, e: Event, ts: float, gen: int, keys: tuple[Any, ...]) -> list[Change]:
        srcs = self.sources
        in_burst = False
        ip = None
        acct: str = e.account_id  # type: ignore[assignment]  # a login has an account_id (decode requires it)
        h = crc32(acct.encode(), self.salt)
        for lvl in (0, 1, 2):
            s = srcs[lvl].get(keys[lvl])
            if s is None:
                continue
            if gen > s.gen:
                self._rotate(s, gen, ts)
            s.succ += 1
            s.last_ts = ts
            if s.flagged_at is not None:
                in_burst = True
            if lvl == 0:
                ip = s
            if s.flagged_at is None:
                s.accts.pop(h, None)  # it got in after all: a typo, not a stuffed account
        changes: list[Change] = []
        if ip is not None and ip.accts:  # the address is failing on other accounts
            rec = (ts, acct, e.event_id, e.device_id or e.user_agent, ip.key, e.session_id)
            if len(ip.successes) < self.cfg.max_successes:
                ip.successes.append(rec)
            if in_burst:
                burst = self.burst_of(e)
                if burst is not None:
                    burst.refresh_at = ts + self.cfg.refresh
                    changes.append(Change("success", burst, rec))
        if self.baseline is None:
            f = self.last_fails = self.account_fails.pop(acct, None) if self.account_fails else None
            if not in_burst:
                w = self.cfg.account_window
                self._learn(f[0] if f is not None and ts - f[2] <= w else 0.0, ts)
        return changes

    def _new_source(self, lvl: int, key: Any, gen: int, e: Event) -> Source:
        net = e.net
        where = f"{net.country}, {net.org or net.net_class}" if net else "?"
        label = key if lvl < 2 or net is None else net.asn_key
        s = Source(lvl, label, gen, where)
        s.raw = key
        return s

    def _feed_peers(self, s: Source) -> None:
        """A window of a source not in a burst closes: how many accounts it failed on."""
        if s.flagged_at is None and not s.ceded and not s.tainted:
            self.peers[s.level].update(len(s.accts))
            self.peer_windows[s.level] += 1

    def peer_quantile(self, level: int) -> float | None:
        """99th percentile of distinct failed accounts per window of ordinary sources."""
        if self.peer_windows[level] < 30:
            return None
        return self.peers[level].get()

    def peer_words(self, level: int) -> str:
        """The peer baseline in words, for evidence."""
        q = self.peer_quantile(level)
        n = self.peer_windows[level]
        kind = LEVELS[level]
        if q is None:
            return f"peer baseline still learning ({n} windows of ordinary {kind}s so far)"
        return (f"ordinary {kind}s: 99% fail on <= {q:.0f} accounts per window "
                f"({n} windows seen)")

    def _rotate(self, s: Source, gen: int, ts: float) -> None:
        self._feed_peers(s)
        if gen == s.gen + 1:
            s.prev_fails, s.prev_succ = s.fails, s.succ
        else:
            s.prev_fails = s.prev_succ = 0
        s.fails = s.succ = 0
        s.gen = gen
        cut = (gen - 1) * self.cfg.window * 0.5  # the start of the older generation kept
        if s.accts:
            s.accts = {k: v for k, v in s.accts.items() if v >= cut}
        if s.kids:
            s.kids = {k: v for k, v in s.kids.items() if v >= cut}
        if s.successes:
            s.successes = [r for r in s.successes if r[0] >= cut]

    def _check(self, s: Source, ts: float, changes: list[Change], eid: str) -> None:
        cfg = self.cfg
        n = len(s.accts)
        need = cfg.min_accounts[s.level]
        if n < need:
            return
        if n > s.peak_accounts:
            s.peak_accounts = n
        if s.flagged_at is None:
            if len(s.kids) < cfg.min_children[s.level] and s.level:
                return
            f, a = s.failures, s.attempts
            if cfg.max_fails_per_account and f > cfg.max_fails_per_account * n:
                return  # hammering a few accounts: brute force, not this pattern
            if f < cfg.rate_min * a or self.zscore(f, a) < cfg.z_min:
                return
            s.flagged_at = ts
            s.refresh_at = ts + cfg.refresh
            self.flagged_count += 1
            if s.event_ids[-1:] != [eid]:
                s.event_ids.append(eid)
            changes.append(Change("flag", s))
        elif not s.sent_critical and n >= cfg.critical_factor * need:
            s.sent_critical = True
            s.refresh_at = ts + cfg.refresh
            changes.append(Change("grow", s))

    # --- queries -------------------------------------------------------------------------
    def burst_of(self, e: Event) -> Source | None:
        """The narrowest flagged source this login's address belongs to, if its address
        itself failed in the window (a bystander on the same ISP is not in the burst)."""
        srcs = self.sources
        ip = srcs[0].get(e.src_ip)
        if ip is None or not ip.accts:
            return None
        if ip.flagged_at is not None:
            return ip
        net = e.net
        if net is None:
            return None
        asn = net.asn if net.asn is not None else net.org or net.country
        for lvl, key in ((1, net.subnet), (2, asn)):
            s = srcs[lvl].get(key)
            if s is not None and s.flagged_at is not None:
                return s
        return None

    def is_flagged(self, level: int, key: Any) -> bool:
        s = self.sources[level].get(key)
        return s is not None and s.flagged_at is not None

    def successes_under(self, s: Source) -> list[Success]:
        """Successes seen in the window from the failing addresses of a source."""
        if s.level == 0:
            return list(s.successes)
        ips = self.sources[0]
        subnets = [s.key] if s.level == 1 else list(s.kids)
        out = []
        for sn in subnets:
            sub = self.sources[1].get(sn)
            if sub is None:
                continue
            for ip in sub.kids:
                src = ips.get(ip)
                if src is not None and not src.ceded:
                    out.extend(src.successes)
        return out

    # --- housekeeping --------------------------------------------------------------------
    def expire(self, now: float) -> None:
        """Forget sources idle for a whole window (flagged ones after two windows)."""
        if now == self._expired_at:
            return
        self._expired_at = now
        w = self.cfg.window
        for table in self.sources:
            stale = [k for k, s in table.items()
                     if now - s.last_ts > (2 * w if s.flagged_at is not None else w)]
            for k in stale:
                s = table.pop(k)
                if s.flagged_at is not None:
                    self.flagged_count -= 1
                else:
                    self._feed_peers(s)
        aw = self.cfg.account_window
        for k in [k for k, f in self.account_fails.items() if now - f[2] > aw]:
            del self.account_fails[k]

    def shed(self, cap: int) -> int:
        """At most ``cap`` sources per level (flagged ones last) and accounts with failures."""
        n = 0
        for table in self.sources:
            n += evict(table, cap, _source_last, _source_flagged, self._evicted)
        return n + evict(self.account_fails, cap, _fails_last)

    def _evicted(self, key: Any, s: Source) -> None:
        if s.flagged_at is not None:
            self.flagged_count -= 1

    def tracked(self) -> dict[str, int]:
        return {LEVELS[i]: len(t) for i, t in enumerate(self.sources)}


def _source_last(s: Source) -> float:
    return s.last_ts


def _source_flagged(s: Source) -> bool:
    return s.flagged_at is not None


def _fails_last(f: list[float]) -> float:
    return f[2]


_TRACKERS: WeakKeyDictionary[Context, BurstTracker] = WeakKeyDictionary()


def tracker(ctx: Context, cfg: BurstConfig | None = None) -> BurstTracker:
    """The context's tracker; a detector that owns the settings passes its ``cfg``."""
    t = _TRACKERS.get(ctx)
    if t is None:
        t = _TRACKERS[ctx] = BurstTracker(cfg, salt=ctx.hash_id("burst-tracker"))
    elif cfg is not None and t.cfg is not cfg:
        t.cfg = cfg
        t._half = cfg.window * 0.5
    return t
