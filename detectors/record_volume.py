"""record_volume — one export or search, or a principal's day of them, returns far more rows than usual.

The Lotte Card pattern (2025): a principal that normally exports tens of rows per call exports
tens of thousands in one. Distinct-account counts (``bulk_lookup``) see one request; the
``records`` field of the request says how many rows left. So every response with ``records``
above 1, or with ``action`` ``export`` or ``search``, is scored *at that event* against the
usual rows per response of three entities: the principal (``actor_id``), the signing or API key
(``key_id``) and the source address; a key and an address are shared by principals and actions
(an office's agents' 1-4-row searches and its analysts' monthly exports), so theirs are kept
per action. Each keeps a robust baseline in log space (EWMA of ``ln(records)`` and of its
absolute deviation: rows per response are heavy-tailed, a nightly batch's exports spread over
two orders of magnitude), learnt only from responses it did not flag, and two slow references
(from its fourth day with responses): its earlier days' mean ``ln(records)`` and its ``high``
at their ends, each moving at most ``ln 2 / ref_days_to_double`` (30) a day either way. A baseline
that learns every export follows exports that grow 25% a day (the Lotte Card pattern: tens of
rows to ~16,000 in four weeks); the references cannot: to stay under them an exporter must
grow no faster than doubling a month, so reaching 100 times its usual takes about seven months.

- ``usual`` = exp(mean), ``high`` = exp(mean + ``k`` x deviation) (about the 99.9th
  percentile of a log-normal spread), each the lower of the fast baseline and its reference;
- warning when the rows exceed ``warn_x`` x ``high`` (and ``min_rows``); critical when they
  also exceed ``crit_x`` x ``usual`` (a first export of more than 100 times the usual rows
  pages critical at that export);
- the principal's typical response (the EWMA with this response) ``warn_x`` times its
  reference level, and four standard errors over it, warns (critical at ``crit_x``): all of its
  responses moved up, not one in its tail;
- an entity with fewer than ``min_history`` responses has no baseline yet: a response over
  ``cold_warn`` rows warns (a new job's first exports teach it);
- a rare exporter (issue 14 item 3: a partner that exports tens of rows once a week, so the
  watch has seen one to four of its exports) is not without history: an export of ``crit_x``
  (100) times the *largest* response its principal, key or source returned before, and of at
  least ``cold_crit`` rows, is critical at that export. Exports only, and only once the
  principal itself has exported before (its first export ever warns as above: a shared key's
  or address's earlier exports were someone else's jobs); a key or source is judged so only
  when the rows are also 100 times the most its principal returned (a rotated key's or a
  moved host's first small export is not the scale of a principal used to thousands); a
  search's result count is set by its query, so a few searches carry no scale. ``cold_crit`` (2,000) keeps 100x of a tiny
  export from paging (1 row, then 150): it is about a thousand customers at one or two rows
  each, the size at which a leak must be reported to the regulator (Korea's PIPA: 1,000 data
  subjects), while the Lotte Card class is tens of thousands per call. The largest seen
  counts every response that did not page critical (a warned month-end run was seen); a
  response that paged critical joins it only after a week without another (a repeat in the
  episode stays critical; a month-end run that returns a month later was seen before).

Rows per day (issue 14 item 3, the boiling frog): a creep of tens of percent a day that starts
inside the usual range is a single-response outlier only after weeks, but a day's total of
many responses is far steadier than one response. So each principal and action also keeps its
day's total rows and a slow reference of its earlier days' ln(total) (mean and mean absolute
deviation; free over its first three days with responses, then moving at most ``ln 2 / 30`` a
day, the deviation by at most the same factor, each day's deviation clipped at three sd: a
creep can move neither). The day-to-day standard deviation ``sd`` is the larger of what the
days showed and what a day of ``lam`` responses (its usual count) must show: a compound Poisson total of
responses whose ln(rows) spread by ``s`` (the slow spread of its responses) has
``CV^2 = (1 + e^(s^2) - 1) / lam``; one or two exports a day make a day as wide as one export.
Judged from its ``min_days``-th (5) day that taught the reference and from ``min_rows`` rows
over the usual day, at every response (the day so far):

- ``day``: today's total over the usual day by ``day_sd`` (4) sd and by ``day_x`` (x2) warns
  (4 sd: one day in ~30,000 of a steady principal; x2: a busy day, a campaign, a Monday
  reach +50% without a leak); ``crit_x`` (100) times the usual day is critical;
- ``trend``: ``trend_days`` (3) closed days in a row two sd over the usual day (none a sd
  below the day before), and today over it too, warns: about 0.023^4 a day for a steady
  principal, while a creep of 10-25% a day gets there in a few days, long before x2;
- a day over the usual day by two sd, or one that paged, does not teach the references (the
  day's and the responses' ``ref``/``high``: they stay at the level learnt before the drift,
  unless most of the last 32 days were held: a new level, then x2 a month again); while the
  principal's day pages (or its last two days were two sd over), a response of ``crit_x`` times
  its usual is critical even when its tail is wide (the first export of more than 100 times
  the usual, learnt before the drift, pages critical);
- confounders: a day three sd under the usual (a weekend, a holiday) teaches nothing; the
  last three and first two days of a month (month-end and quarter-end runs that return every
  month) neither teach nor count in a run, and warn only at
  ``warn_x`` (10) times the usual day; a nightly batch's day is its steady batch; business
  growth of a few percent a month is what the reference follows.

A key or a source (shared by principals) is judged per response only: its day is the sum of
its principals' days, where one principal's creep is a smaller share.

The principal is judged first, then the key, then the source; one finding per response, on the
most specific entity over its threshold, with the other two baselines in the evidence (and the
day's total against the usual day, ``rows_today_vs_usual_day``). State: under 0.5 KiB per
entity (a few floats and counters); only principals (and their day per action), keys and
sources (per action) that export or search are tracked. Entities of a checkpoint from before the
per-action keys are not read again (relearnt; forgotten after ``idle_days``).

>>> from detectors.engine import Engine, EngineConfig
>>> eng, out = Engine(EngineConfig(detectors=("record_volume",))), []
>>> for i in range(12):                           # exports of 10-80 rows, twice an hour
...     out += eng.process_obj({"event_id": f"n{i}", "ts": 1772413200 + 1800 * i,
...         "actor_id": "svc-cards", "actor_type": "service", "subject_id": "c-1",
...         "resource": "payment", "action": "export", "records": 10 + 7 * i % 70,
...         "src_ip": "10.20.5.4", "key_id": "k-cards"})[0]
>>> out += eng.process_obj({"event_id": "x1", "ts": 1772413200 + 86400, "actor_id": "svc-cards",
...     "actor_type": "service", "subject_id": "c-1", "resource": "payment", "action": "export",
...     "records": 40000, "src_ip": "10.20.5.4", "key_id": "k-cards"})[0]
>>> [(a["entity"]["id"], a["severity"]) for a in out]
[('svc-cards', 'critical')]
"""

from __future__ import annotations

import functools
import math
import time
from typing import TYPE_CHECKING

from ._cap import evict
from .base import SEVERITIES, Detector, Finding, ev

if TYPE_CHECKING:
    from .engine import Context
    from .events import Event

HOUR = 3600.0
_EPISODE = 7 * 86400.0  # a critical export's size is "seen" after a week without another
_REFRESH = 1800.0
_KINDS = ("actor", "key", "src_ip")


class _Rows:
    """Rows per response of one entity: EWMA of ln(rows) and its mean absolute deviation, and
    two slow references (its earlier days' mean ln(rows) and its high at their ends) that
    move at most ``cap`` per day."""

    __slots__ = ("n", "mu", "dev", "last", "sent", "sent_ts", "eids", "thr",
                 "ref", "href", "day", "dsum", "dn", "nd", "top", "ctop", "cts")

    def __init__(self, ts: float) -> None:
        self.n = 0
        self.mu = 0.0
        self.dev = 0.0
        self.last = ts
        self.sent = 0
        self.sent_ts = -math.inf
        self.eids: list[str] | None = None
        self.thr: tuple[float, float] | None = None  # (warning, critical) until next learn
        self.ref = 0.0  # slow reference of ln(usual rows) ...
        self.href = 0.0  # ... and of ln(high rows): mu + k x dev
        self.day = -1  # the day (UTC, since the epoch) whose learnt responses dsum/dn hold
        self.dsum = 0.0
        self.dn = 0
        self.nd = 0  # days that moved the reference
        self.top = -math.inf  # the largest ln(rows) of a response that did not page critical
        self.ctop = -math.inf  # ... and of those that did (they join ``top`` after a week)
        self.cts = -math.inf  # when the last response that paged critical came

    def _top(self) -> float:
        """``top``; on an entity from a checkpoint from before it, its high (mu + 3.75 dev)
        as the largest seen, and no critical yet."""
        top: float | None = getattr(self, "top", None)
        if top is None:
            top = self.top = self.mu + 3.75 * max(self.dev, 0.25) if self.n else -math.inf
            self.ctop = self.cts = -math.inf
        return top

    def seen(self, x: float, ts: float, crit: bool) -> None:
        """Remember ``x`` (ln rows) as returned by this entity: a response that paged critical
        joins ``top`` only once a week has passed without another (the episode is over: a
        repeat of the same size in the episode still pages; a month-end run that returns a
        month later was seen before)."""
        top = self._top()
        if self.ctop > top and ts - self.cts > _EPISODE:
            top = self.top = self.ctop
        if crit:
            self.ctop = max(self.ctop, x)
            self.cts = ts
        elif x > top:
            self.top = x

    def largest(self, ts: float) -> float:
        """The largest ln(rows) this entity returned before, as ``seen`` keeps it."""
        top = self._top()
        return max(top, self.ctop) if ts - self.cts > _EPISODE else top

    def learn(self, x: float, ts: float, cap: float, k: float, dy: _Day | None = None) -> None:
        try:  # (``seen`` for a response that did not page, inline: this is the hot path)
            if x > self.top:
                self.top = x
        except AttributeError:  # a checkpoint from before ``top``
            if x > self._top():
                self.top = x
        if self.n == 0:
            self.mu, self.dev = x, 0.5
        else:
            a = 1.0 / (self.n + 1) if self.n < 10 else 0.1
            self.dev += a * (abs(x - self.mu) - self.dev)
            self.mu += a * (x - self.mu)
        self.n += 1
        self.thr = None
        day = int(ts // 86400.0)
        if day != self.day:
            if self.dn and (dy is None or not dy.held(self.day)):
                self._close_day(day, cap, k)
            self.day = day
            self.dsum = 0.0
            self.dn = 0
        self.dsum += x
        self.dn += 1

    def _close_day(self, day: int, cap: float, k: float) -> None:
        """Move the references toward the closed day's mean ln(rows) and the current high:
        freely in the first three days, then by at most ``cap`` per elapsed day either way."""
        m = self.dsum / self.dn
        h = self.mu + k * max(self.dev, 0.25)
        if self.nd < 3:
            self.ref += (m - self.ref) / (self.nd + 1)
            self.href = h if self.nd == 0 else max(h, self.href)
        else:
            lim = cap * max(1, min(day - self.day, 30))
            self.ref += max(-lim, min(0.3 * (m - self.ref), lim))
            self.href += max(-lim, min(0.3 * (h - self.href), lim))
        self.nd += 1


class _Day:
    """Rows per day of one principal and action: today's total, and a slow reference of its
    earlier days' ln(total) and of their mean absolute deviation (the day-to-day spread the
    reference has seen). ``up``: closed days in a row over the reference by two deviations,
    none a deviation below the day before; ``hold``: bit ``i`` set when the day ``i`` days before
    ``day`` was over the reference by two deviations or paged (its rows did not move the
    references)."""

    __slots__ = ("day", "tot", "cnt", "lam", "ref", "dev", "nd", "prev", "up", "hold", "last",
                 "sent")

    def __init__(self, ts: float) -> None:
        self.day = int(ts // 86400.0)
        self.tot = 0.0  # rows so far on ``day``
        self.cnt = 0  # responses so far on ``day``
        self.lam = 0.0  # responses per day of the days that taught the reference
        self.ref = 0.0
        self.dev = 0.0
        self.nd = 0  # closed days that taught the reference
        self.prev = 0.0  # ln(total) of the last closed day
        self.up = 0
        self.hold = 0
        self.last = ts
        self.sent = 0  # 1 once ``day`` paged (its total does not teach the reference)

    def sd(self, s: float) -> float:
        """The day-to-day standard deviation of ln(total): the larger of what the days showed
        (1.25 x their mean absolute deviation, at least 0.1: no day total is steadier than
        +-10%) and what a day of ``lam`` responses whose ln(rows) spread by ``s`` must show
        (a compound Poisson total: CV^2 = (1 + cv^2) / lam, cv^2 = e^(s^2) - 1, as a
        log-normal): a principal with one or two exports a day has a day total as wide as
        one export, whatever its few days happened to show."""
        cv2 = math.expm1(min(s, 2.5) ** 2)
        return max(1.25 * max(self.dev, 0.08),
                   math.sqrt(math.log1p((1.0 + cv2) / max(self.lam, 1.0))))

    def roll(self, day: int, cap: float, month_end: bool, s: float) -> None:
        """Close ``self.day`` (its total is known) and open ``day``; ``s``: the spread of the
        principal's ln(rows) per response."""
        gap = day - self.day
        if self.tot > 0:
            x = math.log(self.tot)
            sd = self.sd(s)
            over = self.nd >= 3 and x > self.ref + 2.0 * sd
            # a run: days over the reference that hold or raise the level (none more than a
            # deviation below the day before; a month-end run is not one)
            self.up = self.up + 1 if over and x > self.prev - sd and not month_end else 0
            self.prev = x
            held = self.sent > 0 or over
            if self.nd < 3:  # the first days: the mean and spread of what is seen
                d0 = abs(x - self.ref) if self.nd else 0.3
                self.ref += (x - self.ref) / (self.nd + 1)
                self.dev += (d0 - self.dev) / (self.nd + 1)
                self.lam += (self.cnt - self.lam) / (self.nd + 1)
                self.nd += 1
            elif not held and not month_end and x > self.ref - 3.0 * sd:
                # a quiet day (a weekend, a holiday) or a month-end run teaches nothing; the
                # others move the reference at most ``cap`` per elapsed day and the spread
                # at most by the same factor (a creep cannot widen its own threshold)
                lim = cap * max(1, min(gap, 30))
                self.ref += max(-lim, min(0.3 * (x - self.ref), lim))
                d = min(abs(x - self.ref), 3.0 * sd / 1.25)
                self.dev = min(self.dev + 0.1 * (d - self.dev), self.dev * math.exp(lim))
                self.lam += 0.1 * (self.cnt - self.lam)
                self.nd += 1
        else:
            held = False
        if gap > 1:
            self.up = 0  # a day with no responses breaks a run
        self.hold = ((self.hold << 1) | int(held)) << max(0, min(gap, 32) - 1) & 0xFFFFFFFF
        self.day = day
        self.tot = 0.0
        self.cnt = 0
        self.sent = 0

    def held(self, day: int) -> bool:
        """Whether ``day`` (closed) was held: its responses must not move the references."""
        i = self.day - day - 1
        if not 0 <= i < 32:
            return False
        # a level held on most of the last 32 days is a new level, not a burst: released
        # (the references then move at most x2 a month again)
        return bool(self.hold >> i & 1) and bin(self.hold).count("1") < 20


@functools.lru_cache(maxsize=64)
def _month_end(day: int) -> bool:
    """The last three days of a month or its first two (UTC days; the window covers the time
    zones and a last or first business day moved by a weekend): month-end and quarter-end
    runs, closing reports and reconciliations (a spike that returns every month)."""
    t = time.gmtime(day * 86400.0)
    return t.tm_mday <= 2 or time.gmtime((day + 3) * 86400.0).tm_mon != t.tm_mon


def _last(r: _Rows | _Day) -> float:
    return r.last


def _reported(r: _Rows | _Day) -> bool:
    return r.sent > 0


class RecordVolume(Detector):
    id = "record_volume"
    title = "Rows per export or search far above the usual"
    description = ("One export or search returns far more rows than the principal, key or "
                   "source usually gets per response, or a principal's day of them far more "
                   "than its usual day (or days in a row over it: a creep).")
    severity = "critical"
    attack = ("T1530", "T1213", "T1567")  # Data from Cloud Storage; Info Repos; Exfiltration
    status = "experimental"
    entity_kinds = ("actor", "key", "src_ip")
    wants = frozenset({"access"})
    triage = (
        "Check: the rows returned against the entity's usual and high rows per response "
        "(evidence), the resource and the query behind the export, who owns the principal or "
        "key and whether a change (new report, backfill, migration) was planned; how many "
        "customers the rows cover. False positives: a one-off reconciliation or migration "
        "export, a report whose filter was widened on purpose, a new job's first exports "
        "(warning only until it has a history), exports that grew faster than doubling a "
        "month for a reason (a large new customer: the evidence shows the reference and the "
        "recent level; the reference catches up at most x2 a month). A day or trend page "
        "(\"usual day\" in the summary): no single export is large; compare the day's "
        "exports with the same weekday's, look for new exports beside the usual ones (a new "
        "caller, host, hour or query) and whether the days keep rising; a planned step in "
        "volume pages daily until most of a month has passed (then the reference moves "
        "again). Respond: stop the job or suspend the "
        "credential, find where the file went, preserve the request and the export, count the "
        "customers in it for notification.")

    def __init__(self, k: float = 3.75, warn_x: float = 10.0, crit_x: float = 100.0,
                 min_rows: int = 500, min_history: int = 5, cold_warn: int = 10_000,
                 idle_days: float = 45.0, ref_days_to_double: float = 30.0,
                 day_sd: float = 4.0, day_x: float = 2.0, trend_days: int = 3,
                 min_days: int = 5, cold_crit: int = 2_000) -> None:
        self.k = k
        self.warn_x = warn_x
        self.crit_x = crit_x
        self.min_rows = min_rows
        self.min_history = min_history
        self.cold_warn = cold_warn
        self.idle = idle_days * 86400.0
        self.cap = math.log(2.0) / ref_days_to_double  # the reference's largest step per day
        self._lw = math.log(warn_x)
        self._lc = math.log(crit_x)
        self.day_sd = day_sd
        self._ldx = math.log(day_x)
        self.trend_days = trend_days
        self.min_days = min_days
        self.cold_crit = cold_crit
        self._ents: dict[tuple[str, str, str], _Rows | _Day] = {}

    def _verdict(self, r: _Rows, rows: int, drift: bool = False, ts: float = 0.0,
                 cold: bool = False) -> tuple[int, float, float]:
        """(rank, warning threshold, critical threshold) of ``rows`` against ``r``; ``cold``:
        an export whose entity has returned at least one earlier export (the principal: of
        this action), judged by ``largest`` while it has too few to have a baseline."""
        if r.n < self.min_history:
            crit = math.inf
            if cold and r.n:
                crit = max(float(self.cold_crit), self.crit_x * math.exp(r.largest(ts)))
            warn = min(float(self.cold_warn), crit)
            return (2 if rows >= crit else 1 if rows >= warn else 0), warn, crit
        thr = r.thr
        if thr is None:  # computed once per learnt response, not per response judged
            lvl = r.mu
            hi = r.mu + self.k * max(r.dev, 0.25)
            if r.nd >= 3:  # the slow references: the fast ones follow a creep
                lvl, hi = min(lvl, r.ref), min(hi, r.href)
            usual = math.exp(lvl)
            high = math.exp(hi)
            warn = max(self.warn_x * high, float(self.min_rows))
            thr = r.thr = (warn, max(self.crit_x * usual, warn))
        warn, crit = thr
        if drift and r.nd >= 3:
            crit = min(crit, self.crit_x * math.exp(min(r.mu, r.ref)))
            warn = min(warn, crit)
        return (2 if rows >= crit else 1 if rows >= warn else 0), warn, crit

    def _level(self, r: _Rows, x: float, rows: int) -> tuple[int, float, float]:
        """(rank, shift, warning shift) of the principal's recent level of ln(rows), with this
        response, over its slow reference: a whole distribution moved up, not one response
        in its tail. Judged after three days of reference and from ``min_rows`` rows."""
        if r.nd < 3 or r.n < self.min_history or rows < self.min_rows:
            return 0, 0.0, math.inf
        a = 1.0 / (r.n + 1) if r.n < 10 else 0.1
        shift = r.mu + a * (x - r.mu) - r.ref
        noise = 4.0 * 1.25 * max(r.dev, 0.25) * math.sqrt(a / (2.0 - a))  # 4 sd of the EWMA
        warn = max(self._lw, noise)
        return (2 if shift >= max(self._lc, noise) else 1 if shift >= warn else 0), shift, warn

    def _day(self, dy: _Day, rows: int, ts: float, s: float) -> tuple[int, str, float]:
        """Add ``rows`` to the principal's day for this action and judge the day so far:
        (rank, rule, warning threshold in rows). ``day``: the total over the reference by
        ``day_sd`` of its day-to-day deviations and by ``day_x`` (critical at ``crit_x``);
        ``trend``: ``trend_days`` closed days in a row two deviations over the reference (none
        a deviation below the day before), and today too. Judged after ``min_days`` days that
        taught the reference, and from ``min_rows`` rows over the usual day."""
        day = int(ts // 86400.0)
        if day != dy.day:
            dy.roll(day, self.cap, _month_end(dy.day), s)
        dy.tot += rows
        dy.cnt += 1
        if dy.nd < self.min_days or dy.tot - math.exp(dy.ref) < self.min_rows:
            return 0, "", math.inf
        x = math.log(dy.tot) - dy.ref
        sd = dy.sd(s)
        m = max(self._ldx, self.day_sd * sd)
        if _month_end(day):
            m = max(m, self._lw)  # a month-end run: only what one response would need
        if x >= m:
            return (2 if x >= max(self._lc, m) else 1), "day", math.exp(dy.ref + m)
        if dy.up >= self.trend_days and x > 2.0 * sd:
            return 1, "trend", math.exp(dy.ref + 2.0 * sd)
        return 0, "", math.exp(dy.ref + m)

    def on_access(self, e: Event, ctx: Context) -> list[Finding]:
        rows = e.records
        if rows <= 1 and e.action != "export" and e.action != "search":
            return []
        ts = e.ts
        ids = (e.actor_id, e.key_id, e.src_ip)
        ents = self._ents
        x = math.log(max(rows, 1))
        judged: list[tuple[str, str, _Rows, int, float, float]] = []
        top = 0
        act = e.action or ""
        lvl = (0, 0.0, math.inf)
        dy: _Day | None = None
        dv = (0, "", math.inf)
        sdr = 1.0
        # an export of an entity with too few responses for a baseline is judged against the
        # largest it returned before (needs one earlier export; the principal's day per
        # action says whether it has exported before: a principal's first export has no
        # reference of its own, and a shared key's or address's few earlier exports were
        # someone else's jobs, so then none is). Not a search: one principal's result counts
        # are set by each query (one-row lookups and broad filters), a few carry no scale
        cold = cold_shared = act == "export"
        if e.actor_id is not None:  # the principal's rows per day for this action
            dk = ("day", e.actor_id, act)
            d0 = ents.get(dk)
            if not isinstance(d0, _Day):
                cold = cold_shared = False  # its first response of this action
                d0 = ents[dk] = _Day(ts)
                if ts < getattr(self, "_oldest", -math.inf):
                    self._oldest = ts
            dy = d0
            if ts > dy.last:
                dy.last = ts
            ra = ents.get(("actor", e.actor_id, ""))
            if isinstance(ra, _Rows) and ra.n:  # its responses' spread (the slow one: a
                # creep widens the fast one)
                sdr = 1.25 * max(min(ra.dev, (ra.href - ra.ref) / self.k)
                                 if ra.nd >= 3 else ra.dev, 0.25)
                # a key or source with few exports (rotated, moved) is not cold for a
                # principal that returned a hundredth of this before: "far above everything"
                # is also the principal's (whose own baseline judges the export)
                cold_shared = cold and x >= self._lc + ra.largest(ts)
            dv = self._day(dy, rows, ts, sdr)
        for kind, ident in zip(_KINDS, ids, strict=True):
            if ident is None:
                continue
            # a key or an address is shared by principals and actions (an office's agents'
            # searches, its analysts' monthly exports): judged per action
            key = (kind, ident, "" if kind == "actor" else act)
            r0 = ents.get(key)
            if isinstance(r0, _Rows):
                r = r0
            else:
                r = ents[key] = _Rows(ts)
                if ts < getattr(self, "_oldest", -math.inf):
                    self._oldest = ts  # (``expire``: a lower bound of every entry's time)
            if ts > r.last:  # max(r.last, ts) (base.py, "Speed")
                r.last = ts
            # a principal whose day pages, or whose last two days were two sd over its usual
            # day: critical at ``crit_x`` times its usual even when its tail is wide (the
            # usual is the held reference; one day made by one huge response is not a drift)
            rank, warn, crit = self._verdict(r, rows, kind == "actor" and dy is not None
                                             and (dv[0] > 0 or dy.up >= 2), ts,
                                             cold if kind == "actor" else cold_shared)
            if kind == "actor":
                lvl = self._level(r, x, rows)
                rank = max(rank, lvl[0], dv[0])
            judged.append((kind, ident, r, rank, warn, crit))
            if rank > top:
                top = rank
        if top == 0:
            for j in judged:
                j[2].learn(x, ts, self.cap, self.k, dy if j[0] == "actor" else None)
            return []
        if dy is not None and judged and judged[0][0] == "actor" and judged[0][3] > 0:
            dy.sent = 1  # a day that paged does not teach the references
        kind, ident, r, rank, warn, crit = next(j for j in judged if j[3] == top)
        big = math.exp(r.largest(ts)) if r.n else 0.0  # the most it returned before this
        for j in judged:
            j[2].seen(x, ts, top == 2)
        if r.eids is None:
            r.eids = []
        if len(r.eids) < 5:
            r.eids.append(e.event_id)
        else:  # the first four and the latest
            r.eids[-1] = e.event_id
        if ts - r.sent_ts > 3 * HOUR:
            r.sent = -1
        if rank <= r.sent and ts - r.sent_ts < _REFRESH:
            return []
        r.sent = max(r.sent, rank)
        r.sent_ts = ts
        sev = SEVERITIES[rank]
        who = {"actor": f"{(e.actor_type or 'customer').capitalize()} {ident}",
               "key": f"Key {ident}", "src_ip": f"Source {ident}"}[kind]
        usual = (f"{math.exp(min(r.mu, r.ref) if r.nd >= 3 else r.mu):.0f}" if r.n
                 else "none yet")
        summary = (f"{who} got {rows} rows in one {e.action or 'read'} of {e.resource}: usual "
                   f"is {usual} rows per response (n={r.n}; warning >= {warn:.0f}).")
        if r.n < self.min_history and crit < math.inf:
            summary = (f"{who} got {rows} rows in one {e.action or 'read'} of {e.resource}: "
                       f"{rows / max(big, 1.0):.0f} times the most it returned before "
                       f"({big:.0f} rows; n={r.n}, too few for a baseline; critical >= "
                       f"{crit:.0f}).")
        elif kind == "actor" and dy is not None and dv[0] == rank:
            sd = dy.sd(sdr)
            summary = (f"{who} got {dy.tot:.0f} rows in {e.action or 'read'}s today, "
                       f"{dy.tot / math.exp(dy.ref):.1f} times its usual day of "
                       f"{math.exp(dy.ref):.0f} rows (day-to-day spread x{math.exp(sd):.2f}"
                       + (f"; {dy.up} days in a row over it" if
                          dv[1] == "trend" else "") + f"; warning at {dv[2]:.0f}).")
        elif kind == "actor" and lvl[0] == rank:
            summary = (f"{who} got {rows} rows in one {e.action or 'read'} of {e.resource}: its "
                       f"typical response is now {math.exp(lvl[1]):.0f} times the "
                       f"{math.exp(r.ref):.0f} rows of its earlier days (n={r.n}; warning at "
                       f"{math.exp(lvl[2]):.0f} times).")
        evidence = []
        if dy is not None and dy.nd >= self.min_days:
            evidence.append(ev("rows_today_vs_usual_day", round(dy.tot / math.exp(dy.ref), 2),
                               f"warning >= {dv[2] / math.exp(dy.ref):.2f}x" if dv[2] <
                               math.inf else f"judged from {self.min_rows} rows over the usual",
                               f"usual day {math.exp(dy.ref):.0f} rows ({e.action or 'read'}), "
                               f"day-to-day sd x{math.exp(dy.sd(sdr)):.2f}, {dy.up} closed days "
                               f"in a row over it"))
        if judged[0][0] == "actor" and judged[0][2].nd >= 3:
            ra = judged[0][2]
            evidence.append(ev("typical_rows_vs_reference", round(math.exp(lvl[1]), 1)
                               if lvl[1] else None,
                               f"warning >= {math.exp(lvl[2]):.0f}x, critical >= "
                               f"{max(self.crit_x, math.exp(lvl[2])):.0f}x" if lvl[2] < math.inf
                               else f"judged from {self.min_rows} rows",
                               f"reference {math.exp(ra.ref):.0f} rows (moves at most "
                               f"x{math.exp(self.cap):.3f} a day), recent "
                               f"{math.exp(ra.mu):.0f}"))
        for k2, i2, r2, _rank2, w2, c2 in judged:
            evidence.append(ev(f"rows_per_response_{k2}", rows,
                               f"warning >= {w2:.0f}, critical >= {c2:.0f}" if r2.n >=
                               self.min_history or c2 < math.inf
                               else f"no history: warning >= {w2:.0f}",
                               f"{i2}: usual {math.exp(r2.mu):.0f}, n={r2.n}" if r2.n else
                               f"{i2}: first response"))
        ratio = rows / max(math.exp(r.mu), 1.0) if r.n else rows / self.cold_warn
        score = min(1.0, max(0.5, 1.0 - 0.5 ** math.log10(max(ratio, 1.0) + 1)))
        return [Finding(self.id, kind, ident, sev, round(score, 3), summary, evidence,
                        list(r.eids), ts)]

    def expire(self, now: float) -> None:
        """Forget the entities idle for ``idle``. The whole table is read only when one may
        be (issue 14, speed): ``_oldest`` is a lower bound of every entry's time (an entry's
        time only grows; a new one lowers the bound; a checkpoint from before it reads the
        table), and no entry is idle while ``now - _oldest`` is not over ``idle``."""
        if now - getattr(self, "_oldest", -math.inf) <= self.idle:
            return
        oldest = now
        dead = []
        for k, r in self._ents.items():
            last = r.last
            if now - last > self.idle:
                dead.append(k)
            elif last < oldest:
                oldest = last
        for k in dead:
            del self._ents[k]
        self._oldest = oldest

    def shed(self, cap: int) -> int:
        return evict(self._ents, cap, _last, _reported)

    def tracked(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for k in self._ents:  # (kind, id, action); (kind, id) from an older checkpoint
            out[k[0]] = out.get(k[0], 0) + 1
        return out


DETECTOR = RecordVolume
