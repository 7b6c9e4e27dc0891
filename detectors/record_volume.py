"""record_volume — one export or search returns far more rows than its principal, key or source ever does.

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
  ``cold_warn`` rows warns (never critical: a new job's first exports teach it).

The principal is judged first, then the key, then the source; one finding per response, on the
most specific entity over its threshold, with the other two baselines in the evidence. State:
under 0.5 KiB per entity (a few floats and counters); only principals, keys and sources
(per action) that export or search are tracked. Entities of a checkpoint from before the
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

import math
from typing import TYPE_CHECKING

from ._cap import evict
from .base import SEVERITIES, Detector, Finding, ev

if TYPE_CHECKING:
    from .engine import Context
    from .events import Event

HOUR = 3600.0
_REFRESH = 1800.0
_KINDS = ("actor", "key", "src_ip")


class _Rows:
    """Rows per response of one entity: EWMA of ln(rows) and its mean absolute deviation, and
    two slow references (its earlier days' mean ln(rows) and its high at their ends) that
    move at most ``cap`` per day."""

    __slots__ = ("n", "mu", "dev", "last", "sent", "sent_ts", "eids", "thr",
                 "ref", "href", "day", "dsum", "dn", "nd")

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

    def learn(self, x: float, ts: float, cap: float, k: float) -> None:
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
            if self.dn:
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


def _last(r: _Rows) -> float:
    return r.last


def _reported(r: _Rows) -> bool:
    return r.sent > 0


class RecordVolume(Detector):
    id = "record_volume"
    title = "Rows per export or search far above the usual"
    description = ("One export or search returns far more rows than the principal, key or "
                   "source usually gets per response.")
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
        "recent level; the reference catches up at most x2 a month). Respond: stop the job or suspend the "
        "credential, find where the file went, preserve the request and the export, count the "
        "customers in it for notification.")

    def __init__(self, k: float = 3.75, warn_x: float = 10.0, crit_x: float = 100.0,
                 min_rows: int = 500, min_history: int = 5, cold_warn: int = 10_000,
                 idle_days: float = 45.0, ref_days_to_double: float = 30.0) -> None:
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
        self._ents: dict[tuple[str, str, str], _Rows] = {}

    def _verdict(self, r: _Rows, rows: int) -> tuple[int, float, float]:
        """(rank, warning threshold, critical threshold) of ``rows`` against ``r``."""
        if r.n < self.min_history:
            return (1 if rows >= self.cold_warn else 0), float(self.cold_warn), math.inf
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
        for kind, ident in zip(_KINDS, ids, strict=True):
            if ident is None:
                continue
            # a key or an address is shared by principals and actions (an office's agents'
            # searches, its analysts' monthly exports): judged per action
            key = (kind, ident, "" if kind == "actor" else act)
            r = ents.get(key)
            if r is None:
                r = ents[key] = _Rows(ts)
                if ts < getattr(self, "_oldest", -math.inf):
                    self._oldest = ts  # (``expire``: a lower bound of every entry's time)
            if ts > r.last:  # max(r.last, ts) (base.py, "Speed")
                r.last = ts
            rank, warn, crit = self._verdict(r, rows)
            if kind == "actor":
                lvl = self._level(r, x, rows)
                rank = max(rank, lvl[0])
            judged.append((kind, ident, r, rank, warn, crit))
            if rank > top:
                top = rank
        if top == 0:
            for j in judged:
                j[2].learn(x, ts, self.cap, self.k)
            return []
        kind, ident, r, rank, warn, crit = next(j for j in judged if j[3] == top)
        if r.eids is None:
            r.eids = []
        if len(r.eids) < 5:
            r.eids.append(e.event_id)
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
        if kind == "actor" and lvl[0] == rank:
            summary = (f"{who} got {rows} rows in one {e.action or 'read'} of {e.resource}: its "
                       f"typical response is now {math.exp(lvl[1]):.0f} times the "
                       f"{math.exp(r.ref):.0f} rows of its earlier days (n={r.n}; warning at "
                       f"{math.exp(lvl[2]):.0f} times).")
        evidence = []
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
                               self.min_history else f"no history: warning >= {w2:.0f}",
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
