"""unissued_session — a request presents a session that no login issued to that actor.

Token provenance: every successful login names the session it issued; every data-access event
names the session it presents. Producers key logins by ``account_id`` and access by
``actor_id`` on co-partitioned topics, so the two meet in one worker. A session that no login
of that actor issued is either older than our watch (``token_issued_at`` tells) or forged.

- Late logins (issue 14 item 5): a login may reach us after the requests that use its session
  (a login pipeline behind the access pipeline, a file written in arrival order). A read whose
  session no login issued is judged on the LOGIN stream's event time, not the access's: only
  once a login dated ``login_lateness`` (60 s) or more after the read's ts has been seen (the
  newest login ts this detector has seen, any outcome), so the issuing login, if it comes that
  late at most, always arrives first. When no such login comes (a quiet or stalled login
  stream), a timer judges it on the engine clock at ts + ``login_lateness`` + ``login_quiet``
  (300 s); at the end of input (``flush``) every pending read is judged. Pending reads are
  judged in (deadline, session digest) order, so ``replay`` and the worker (whose merge of the
  two topics differs) reach the same verdicts and alert ids. A login for the session that
  arrives before then clears its pending reads. Checks that need no login (token lifetime,
  unannounced keys, revoked sessions) stay immediate.
- A login pipeline minutes behind (issue 14 item 6, h-lag): part of the logins (a shard, a
  producer catching up) may reach us minutes after on-time logins dated later, so "logins
  60 s past it were seen" no longer means the issuing login had its chance. Two rules, both on
  the login stream's own event time (the same in ``replay`` and the worker's merge): (1) the
  wait learns: a login that comes ``d`` seconds after the stream passed its ts makes the wait
  ``1.5 d`` (never under ``login_lateness``, at most ``login_late_max``, 15 min), remembered
  for one to two ``late_memory`` (1 h) of login time; (2) a read the login stream jumped over
  (no login dated between the read and its deadline was seen: that stretch of logins may
  still come) is not judged on that jump: it waits for such a login, or ``login_quiet``
  more. A forged token is still judged within the learned wait (plus ``login_quiet`` where
  the stream has a gap), bounded; the attacker cannot stretch it (logins are dated by the
  IdP, not by the client). Not covered: the very first reads when a pipeline starts lagging
  while the other keeps logins flowing near them (no late login has been seen yet).
- Tokens that say they were issued before watching began cannot be checked against a login:
  they are adopted (remembered as known), never paged on. "Before" allows the clocks' ``skew``
  (120 s) in the token's favour: a token issued a minute before or after the first event watched
  may come from a login dated just before it, which the stream never held (red-team normal
  traffic: 8 of 8 remaining false pages were tokens issued 1-2 min before the watch began).
  The lifetime check below bounds what a forger gains by it. If ``token_issued_at`` is absent,
  sessions are adopted during the first ``session_ttl`` of the stream. Other detectors (bulk
  lookups by key and source, overseas servers) cover forged tokens that claim to be old.
- Token lifetime (contract 1.1): a token older than its signing key's maximum lifetime is
  invalid and judged at once, whatever login issued it or whenever it claims to be from: the
  key's ``max_token_lifetime_s`` on ``key_issued``, else ``lifetimes[key]`` from the
  configuration, else ``max_token_lifetime`` (48 h: twice the longest customer or staff token
  either generator or a usual IdP issues, so a key left unconfigured does not page on normal
  traffic). So tokens that claim to predate the watch can be adopted only while the lifetime has
  not passed since watching began (a forger who backdates ``token_issued_at`` by 30 days pages at
  the first request); adopted sessions are then a population that can only shrink, and
  :mod:`detectors.spread_access` pages on one that keeps growing (and on customer tokens without a
  session id, which cannot be checked against a login either).
- Unannounced keys: once the key store is known (its first ``key_issued`` seen) and
  ``key_grace`` seconds have passed since then (keys in use meanwhile are learned, for a store
  fed late or incompletely at first), a request through a key id the store never announced is
  judged at its first use, whatever the session. One finding per account and key; critical
  at ``critical_accounts`` accounts under that key, or under all unannounced key ids together
  (a made-up id costs the forger nothing, so spreading the accounts over many buys nothing).
- A session used after a ``session_revoked`` change pages at once.
- One session used from several countries at once: a known session seen on home or mobile
  networks (not VPNs, relays or clouds, whose exits move) of a different country within
  ``hop_window`` of its last use is a hop; one hop is a warning, ``critical_hops`` hops page.
- The alert's entity is the signing key that vouched for the session (``key_id``) when the event
  names one, else the source address: one page per forging key or server, not per victim.

Victims: the account a session speaks for (the forger or thief holds it, the account's owner
did not issue it or is elsewhere) and the customer whose data a revoked session read are named
by digest (``account#...``, ``customer#...``); so is an unissued session's id (``session#...``:
bound to the victim's account). In the clear: the key, the source, and a session that is the
alert's entity (a hop or a use after revocation: the token to revoke).

>>> from detectors.engine import Engine, EngineConfig
>>> T0 = 1_750_723_200  # 2025-06-24T00:00:00Z
>>> eng = Engine(EngineConfig(detectors=("unissued_session",)))
>>> _ = eng.process_obj({"event_id": "l1", "ts": T0 + 1000, "account_id": "c-1", "outcome": "success",
...                      "src_ip": "121.131.0.7", "session_id": "s-ok"})
>>> eng.process_obj({"event_id": "a1", "ts": T0 + 1001, "actor_id": "c-1", "subject_id": "c-1",
...                  "resource": "address", "src_ip": "121.131.0.7", "session_id": "s-ok",
...                  "token_issued_at": T0 + 1000})
([], None)
>>> _ = eng.process_obj({"event_id": "a2", "ts": T0 + 1400, "actor_id": "c-2", "subject_id": "c-2",
...                      "resource": "address", "src_ip": "52.95.110.1", "session_id": "s-forged",
...                      "token_issued_at": T0 + 1300, "key_id": "kid-legacy"})
>>> a = eng.flush()[0]
>>> a["detector"], a["severity"], a["entity"]
('unissued_session', 'warning', {'kind': 'key', 'id': 'kid-legacy'})
>>> a["summary"]
'A session that no login issued (1 account, 1 request) read customer data through key kid-legacy from 52.95.110.1 (US, AMAZON-02).'
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from ._cap import evict, evict_pair
from .base import Detector, Finding, ev, iso

if TYPE_CHECKING:
    from .engine import Context
    from .events import Event


_LEARN_MAX = 10_000  # most keys learned from use during the key store's grace
_BUCKET = 10.0  # seconds of login time per bucket of ``_seen`` (h-lag)
_ACTOR = itemgetter(1)  # (first_ts, actor digest) -> actor digest


@dataclass(slots=True)
class _Pending:
    deadline: float
    actor: str
    session: str
    entity: tuple[str, str]
    src: str
    where: str
    tia: float | None
    first_ts: float
    event_ids: list[str]
    requests: int = 1
    why: str = "unissued"  # unissued / expired / unannounced_key
    lifetime: float = 0.0


@dataclass(slots=True)
class _EntityWindow:
    """Distinct actors seen with unissued sessions under one key / source, recent first."""

    seen: deque[tuple[float, int]] = field(default_factory=deque)
    requests: int = 0

    def add(self, ts: float, actor: int, requests: int, window: float) -> int:
        """One more actor (digest) at ``ts``; the distinct actors within ``window`` of it."""
        seen = self.seen
        seen.append((ts, actor))
        self.requests += requests
        while seen and seen[0][0] < ts - window:
            seen.popleft()
        return len(set(map(_ACTOR, seen)))


class UnissuedSession(Detector):
    id = "unissued_session"
    title = "Session that no login issued"
    description = "A data-access request presents a session or token that no login issued to its actor."
    severity = "critical"
    attack = ("T1606.001", "T1550.001")  # Forge Web Credentials: Web Cookies/Tokens; App Access Token
    status = "stable"
    entity_kinds = ("key", "src_ip", "session")
    wants = frozenset({"login", "access", "identity"})
    triage = (
        "Check: which key signed the token (kid) and who owns it; whether the key is still meant "
        "to be valid; the source network (hosting abroad is a strong sign); how many distinct "
        "accounts the key and source read. False positives: login events lost upstream (check "
        "the IdP's own log for the session id), a new login path not yet feeding auth-logins, "
        "clock skew larger than login_lateness (60 s), a login pipeline that starts lagging while another keeps logins flowing (the first reads, before any late login taught the wait: the evidence names the wait), or one more than login_late_max (15 min) behind. Respond: revoke the signing key and rotate, "
        "block the sources, invalidate sessions issued under the key, preserve the request log."
    )

    # class defaults: a checkpoint taken before issue 14 item 5 (or h-lag) resumes with them
    login_lateness = 60.0
    login_quiet = 300.0
    _login_max = float("-inf")
    login_late_max = 900.0
    late_memory = 3600.0
    _late_cur = 0.0  # the largest lateness of a login seen in the current period
    _late_prev = 0.0  # ... in the previous one
    _late_since = float("-inf")  # login time the current period began at
    _unann_all: _EntityWindow | None = None  # before session 20

    def __init__(self, login_lateness: float = 60.0, login_quiet: float = 300.0,
                 session_ttl: float = 43200.0, skew: float = 120.0,
                 critical_accounts: int = 3, window: float = 600.0, hop_window: float = 1800.0,
                 critical_hops: int = 2, max_token_lifetime: float = 172800.0,
                 lifetimes: dict[str, float] | None = None, key_grace: float = 3600.0,
                 login_late_max: float = 900.0, late_memory: float = 3600.0) -> None:
        self.login_lateness = login_lateness  # issue 14 item 5: wait for the login stream
        self.login_quiet = login_quiet  # ... or this much more of engine time without it
        self._login_max = float("-inf")  # newest login ts seen
        self._due: list[tuple[float, int]] = []  # heap of (deadline, key) of pending reads
        # h-lag (issue 14 item 6, a login pipeline minutes behind): the wait learns how late
        # logins come (up to ``login_late_max``), remembered for ``late_memory`` of login
        # time; a read is judged on the login stream only where it holds a login dated
        # between the read and its deadline (``_seen``: 10 s buckets of login time), else
        # it waits in ``_held`` for ``login_quiet`` more
        self.login_late_max = login_late_max
        self.late_memory = late_memory
        self._late_cur = 0.0
        self._late_prev = 0.0
        self._late_since = float("-inf")
        self._seen: set[int] = set()
        self._held: list[tuple[float, int]] = []  # heap of (deadline, key): no login near it
        self.session_ttl = session_ttl
        self.skew = skew
        self.critical_accounts = critical_accounts
        self.window = window
        self.hop_window = hop_window
        self.critical_hops = critical_hops
        self._where: dict[int, tuple[str, float, int, str]] = {}  # session -> country, ts, hops, seen
        self._where_prev: dict[int, tuple[str, float, int, str]] = {}
        self._known: dict[int, float] = {}  # hash(actor, session) -> issued/adopted at
        self._known_prev: dict[int, float] = {}
        self._rotated: float | None = None
        self._pending: dict[int, _Pending] = {}
        self._entities: dict[tuple[str, str], _EntityWindow] = {}
        # issue 14 item 1: token lifetime per key and the keys the key store announced
        self.max_token_lifetime = max_token_lifetime
        self.key_grace = key_grace
        self._lifetime: dict[str, float] = dict(lifetimes or {})  # key -> seconds (config)
        self._announced: dict[str, float] = {}  # key -> first seen (announced or learned)
        self._store_since: float | None = None  # first key_issued seen: the store is known
        self._unannounced: dict[int, float] = {}  # hash(actor, key) judged -> ts
        #: accounts read through any unannounced key id, recent first (made on first use)
        self._unann_all: _EntityWindow | None = None

    # --- state ---------------------------------------------------------------------------
    def _remember(self, k: int, ts: float) -> None:
        if self._rotated is None:
            self._rotated = ts
        elif ts - self._rotated > self.session_ttl:
            self._known_prev, self._known = self._known, {}
            self._where_prev, self._where = self._where, {}
            self._rotated = ts
        self._known[k] = ts

    def _is_known(self, k: int) -> bool:
        return k in self._known or k in self._known_prev

    # --- hooks ---------------------------------------------------------------------------
    def on_login(self, e: Event, ctx: Context) -> list[Finding]:
        if e.outcome == "success":
            k = ctx.hash_id(e.account_id, e.session_id)  # type: ignore[arg-type]  # decode requires both of a successful login
            self._remember(k, e.ts)
            self._pending.pop(k, None)  # a late login inside the wait clears it
        ts = e.ts
        self._see(ts)
        if ts > self._login_max:
            self._login_max = ts
            due = getattr(self, "_due", None)
            held = self._held_heap()
            if (due and due[0][0] <= ts) or (held and held[0][0] <= ts - self.login_quiet):
                return self._judge_due(ts, -math.inf, ctx)
        elif ts < self._login_max:  # a login behind the stream: how late logins come
            self._learn_late(self._login_max - ts)
            if self._held_heap():
                return self._recheck_held(ctx)  # it may be the login near a held read
        return []

    # --- the login stream's lateness (h-lag) ------------------------------------------------
    def _learn_late(self, late: float) -> None:
        """Remember a login that came ``late`` seconds of login time after the stream had
        passed it, for between one and two ``late_memory`` periods."""
        now = self._login_max
        age = now - self._late_since
        if age >= self.late_memory:
            self._late_prev = self._late_cur if age < 2 * self.late_memory else 0.0
            self._late_cur = 0.0
            self._late_since = now
        if late > self._late_cur:
            self._late_cur = late

    def wait(self) -> float:
        """How far the login stream must pass a read before it is judged: ``login_lateness``,
        or half as much again as the latest login remembered came late (a pipeline behind),
        at most ``login_late_max``."""
        age = self._login_max - self._late_since
        if age < self.late_memory:
            late = self._late_cur if self._late_cur > self._late_prev else self._late_prev
        elif age < 2 * self.late_memory:
            late = self._late_cur
        else:
            return self.login_lateness
        w = 1.5 * late
        if w > self.login_late_max:
            w = self.login_late_max
        return w if w > self.login_lateness else self.login_lateness

    def _see(self, ts: float) -> None:
        """Note a login dated ``ts`` (its 10 s bucket), forgetting buckets far behind."""
        try:
            seen = self._seen
        except AttributeError:  # a checkpoint from before h-lag
            seen = self._seen = set()
        b = int(ts // _BUCKET) if math.isfinite(ts) else 0
        seen.add(b)
        horizon = (self.login_late_max + self.login_quiet + 2 * self.login_lateness) / _BUCKET
        if len(seen) > 2 * horizon + 16:
            floor = self._login_max // _BUCKET - horizon
            self._seen = {x for x in seen if x >= floor}

    def _covered(self, start: float, end: float) -> bool:
        """Whether a login dated in [start, end) was seen (buckets wholly inside it)."""
        seen = getattr(self, "_seen", None)
        if not seen:
            return False
        lo, hi = math.ceil(start / _BUCKET), int(end // _BUCKET)
        if hi - lo > len(seen):
            return any(lo <= b < hi for b in seen)
        return any(b in seen for b in range(lo, hi))

    def _held_heap(self) -> list[tuple[float, int]]:
        try:
            return self._held
        except AttributeError:  # a checkpoint from before h-lag
            self._held = []
            return self._held

    def on_identity(self, e: Event, ctx: Context) -> list[Finding]:
        if e.change == "key_issued" and e.key_id:
            if self._store_since is None:
                self._store_since = e.ts
            self._announced[e.key_id] = e.ts
            life = _lifetime_claim(e)
            if life is not None:
                self._lifetime[e.key_id] = life
        return []

    def _key_unannounced(self, key: str, ts: float) -> bool:
        """True when the key store is known, its grace is over and it never announced ``key``
        (a key first used during the grace is learned as announced)."""
        since = self._store_since
        if since is None:
            return False
        if ts - since < self.key_grace:
            if len(self._announced) < _LEARN_MAX:  # a flood of key ids is not learned
                self._announced[key] = ts
            return False
        return True

    def on_access(self, e: Event, ctx: Context) -> list[Finding]:
        sid = e.session_id
        if sid is not None:
            revoked = ctx.directory.session_revoked.get(sid)
            if revoked is not None and e.ts >= revoked:
                return [self._revoked_use(e, revoked, ctx)]
        key = e.key_id
        if key is not None and key not in self._announced and self._key_unannounced(key, e.ts):
            return self._judge(e, key, "unannounced_key", 0.0, ctx)
        tia = e.token_issued_at
        if tia is not None and key is not None:
            life = self._lifetime.get(key, self.max_token_lifetime)
            if e.ts - tia > life + self.skew:
                return self._judge(e, key, "expired", life, ctx)
        if sid is None:
            return []
        k = ctx.hash_id(e.actor_id, sid)  # type: ignore[arg-type]  # a request has an actor_id (decode requires it)
        if k in self._known or k in self._known_prev:  # ``_is_known``, inline (every request)
            net = e.net  # ``_places`` judges home-ISP addresses only (most requests: none)
            if net is None or net.net_class != "isp":
                return []
            return self._places(k, e, ctx)
        p = self._pending.get(k)
        if p is not None:
            p.requests += 1
            if e.ts < p.first_ts:  # out of order: the verdict names the earliest read
                p.first_ts = e.ts
            if len(p.event_ids) < 5:
                p.event_ids.append(e.event_id)
            return []
        start = ctx.start if ctx.start is not None else e.ts
        if tia is not None and tia < start + self.skew:
            # issued before we watched, or within the clocks' skew of it (its login may be
            # dated just before the first event we saw): cannot be checked, adopt it
            self._remember(k, e.ts)
            return []
        if tia is None and e.ts - start < self.session_ttl:
            self._remember(k, e.ts)  # may be a session opened before we watched
            return []
        net = e.net
        entity = ("key", e.key_id) if e.key_id else ("src_ip", e.src_ip)
        where = f"{net.country}, {net.org or net.net_class}" if net else "?"
        deadline = e.ts + self.wait()
        self._pending[k] = _Pending(deadline, e.actor_id, sid, entity,  # type: ignore[arg-type]  # actor_id: as above; a src_ip when no key_id (decode requires it)
                                    e.src_ip, where, tia, e.ts, [e.event_id])  # type: ignore[arg-type]  # logins and requests have a src_ip (decode requires it)
        heapq.heappush(self._heap(), (deadline, k))
        if self._login_max >= deadline:  # the login stream is already past it
            return self._judge_due(self._login_max, -math.inf, ctx)
        ctx.wake_at(deadline + self.login_quiet, self.id)
        return []

    def on_time(self, now: float, ctx: Context) -> list[Finding]:
        return self._judge_due(self._login_max, now - self.login_quiet, ctx)

    def undecided(self) -> dict[tuple[str, str], float]:
        """Each key or source with a read still waiting for the login stream, at its
        earliest read's time + ``login_lateness`` (when ``replay``'s login stream passes it):
        with several partitions, a partition whose logins are quiet judges such a read up to
        ``login_quiet`` later than ``replay`` would (h-par6)."""
        out: dict[tuple[str, str], float] = {}
        late = self.wait()
        for p in self._pending.values():
            at = p.first_ts + late
            if at < out.get(p.entity, math.inf):
                out[p.entity] = at
        return out

    def decided_for(self, f: Finding) -> float | None:
        """A read judged on the login stream (no issuing login): its first read's time +
        ``login_lateness``, whenever this partition's own login stream (or its timer) got
        there."""
        if f.detector == self.id and f.evidence and f.evidence[0].get("feature") == "issuing_login":
            return f.ts + self.wait()
        return None

    def _heap(self) -> list[tuple[float, int]]:
        """The heap of pending deadlines (``_due``), made for a checkpoint from before it.

        An attribute read, not ``self.__dict__.setdefault``: reading an instance's
        ``__dict__`` on CPython 3.11 leaves every later attribute read of it unspecialised
        (see ``detectors/base.py``, "Speed")."""
        try:
            return self._due
        except AttributeError:
            self._due = []
            return self._due

    def _judge_due(self, login_upto: float, clock_upto: float, ctx: Context) -> list[Finding]:
        """Judge the pending reads whose deadline (first read + :meth:`wait`) the login
        stream has passed (``login_upto``) where it holds a login near them, or that the
        engine clock less ``login_quiet`` (``clock_upto``) or the login stream less it has
        passed, in (deadline, key) order. A read the login stream passed without a login
        dated between it and its deadline (the stream jumped over it: logins of that stretch
        may still come) waits in ``_held``. Heap entries of reads a login cleared (or the
        cap shed) are dropped here."""
        due = self._heap()
        if not due and self._pending:  # a checkpoint from before the heap: rebuild it
            due.extend((p.deadline, k) for k, p in self._pending.items())
            heapq.heapify(due)
        held = self._held_heap()
        wait = self.wait()
        quiet = self.login_quiet
        upto = login_upto if login_upto > clock_upto else clock_upto
        out = []
        while due and due[0][0] <= upto:
            deadline, k = heapq.heappop(due)
            p = self._pending.get(k)
            if p is None or p.deadline != deadline:
                continue
            if self._later(p, k, wait, ctx):
                continue
            if (clock_upto >= deadline or login_upto >= deadline + quiet
                    or self._covered(p.first_ts, deadline)):
                out.append(self._verdict(k, p, ctx))
            else:
                heapq.heappush(held, (deadline, k))  # released by the clocks, or a login
        bound = clock_upto if clock_upto > login_upto - quiet else login_upto - quiet
        while held and held[0][0] <= bound:
            deadline, k = heapq.heappop(held)
            p = self._pending.get(k)
            if p is None or p.deadline != deadline or self._later(p, k, wait, ctx):
                continue
            out.append(self._verdict(k, p, ctx))
        return out

    def _recheck_held(self, ctx: Context) -> list[Finding]:
        """After a login behind the stream: a held read its login stretch now holds a login
        of is judged (in (deadline, key) order); one whose wait grew goes back to wait."""
        held = self._held_heap()
        wait = self.wait()
        keep: list[tuple[float, int]] = []
        ready: list[tuple[float, int]] = []
        for deadline, k in held:
            p = self._pending.get(k)
            if p is None or p.deadline != deadline or self._later(p, k, wait, ctx):
                continue
            (ready if self._covered(p.first_ts, deadline) else keep).append((deadline, k))
        heapq.heapify(keep)
        self._held = keep
        return [self._verdict(k, self._pending[k], ctx) for _, k in sorted(ready)]

    def _later(self, p: _Pending, k: int, wait: float, ctx: Context) -> bool:
        """The wait grew since ``p`` was queued: queue it at its new deadline (True)."""
        dl = p.first_ts + wait
        if dl <= p.deadline:
            return False
        p.deadline = dl
        heapq.heappush(self._heap(), (dl, k))
        ctx.wake_at(dl + self.login_quiet, self.id)
        return True

    def _verdict(self, k: int, p: _Pending, ctx: Context) -> Finding:
        del self._pending[k]
        self._remember(k, p.first_ts)  # judged once; later uses join the same episode
        return self._finding(p, ctx)

    # --- findings ------------------------------------------------------------------------
    def _judge(self, e: Event, key: str, why: str, life: float, ctx: Context) -> list[Finding]:
        """An invalid token (expired, or signed by a key never announced): judged at once,
        once per account and key (its later requests add nothing the first did not say)."""
        k = ctx.hash_id(e.actor_id, key, why)  # type: ignore[arg-type]  # a request has an actor_id (decode requires it)
        if k in self._unannounced:
            return []
        self._unannounced[k] = e.ts
        net = e.net
        where = f"{net.country}, {net.org or net.net_class}" if net else "?"
        p = _Pending(e.ts, e.actor_id, e.session_id or "", ("key", key),  # type: ignore[arg-type]  # a request has an actor_id (decode requires it)
                     e.src_ip, where, e.token_issued_at, e.ts, [e.event_id],  # type: ignore[arg-type]  # logins and requests have a src_ip (decode requires it)
                     why=why, lifetime=life)
        return [self._finding(p, ctx)]

    def _finding(self, p: _Pending, ctx: Context) -> Finding:
        w = self._entities.get(p.entity)
        if w is None:
            w = self._entities[p.entity] = _EntityWindow()
        accounts = w.add(p.first_ts, ctx.hash_id(p.actor), p.requests, self.window)
        critical = accounts >= self.critical_accounts
        kind, ident = p.entity
        names = ctx.victims()
        actor = names("account", p.actor)
        via = f"through key {ident} from {p.src}" if kind == "key" else f"from {p.src}"
        acc = "account" if accounts == 1 else "accounts"
        req = "request" if w.requests == 1 else "requests"
        watched = iso(ctx.start) if ctx.start is not None else "?"
        if p.why != "unissued":
            every = 0
            if p.why == "unannounced_key":  # every made-up key id together (see below)
                every = self._every_unannounced(p, ctx)
                critical = critical or every >= self.critical_accounts
            return self._invalid_finding(p, w, accounts, critical, names, actor, watched, ctx,
                                         every)
        wait = round(p.deadline - p.first_ts)
        summary = (f"A session that no login issued ({accounts} {acc}, {w.requests} {req}) "
                   f"read customer data {via} ({p.where}).")
        evidence = [
            ev("issuing_login", "none", f"a successful login of {actor} naming this session",
               f"{names('session', p.session)} presented for {actor}; logins watched since "
               f"{watched}; judged once logins {wait:g}s past it were seen "
               f"(or {self.login_quiet:g}s more without any)"
               + ("; the wait follows how late logins came lately"
                  if wait > self.login_lateness else "")),
            ev("token_issued_at", iso(p.tia) if p.tia is not None else None,
               f"after watching began ({watched}): a login should exist"),
            ev("accounts_with_unissued_sessions", accounts,
               f"< {self.critical_accounts} in {self.window / 60:g} min for critical",
               f"under {kind} {ident}"),
        ]
        score = 1.0 - 0.5 ** accounts
        return Finding(self.id, kind, ident, "critical" if critical else "warning", score,
                       summary, evidence, p.event_ids, p.first_ts, names.extra())

    def _every_unannounced(self, p: _Pending, ctx: Context) -> int:
        """Accounts read through any key id the key store never announced, within ``window``.
        Key ids are the forger's to choose and cost nothing to multiply: counted per key, a
        forger who spreads the accounts over a new made-up id every two accounts never
        reaches ``critical_accounts`` under one (red team C's forged_unannounced_nosession:
        eight ids, critical only after 30-112 accounts). Every unannounced id is already
        invalid, so together they are one population."""
        every = self._unann_all
        if every is None:
            every = self._unann_all = _EntityWindow()
        return every.add(p.first_ts, ctx.hash_id(p.actor), p.requests, self.window)

    def _invalid_finding(self, p: _Pending, w: _EntityWindow, accounts: int, critical: bool,
                         names: Any, actor: str, watched: str, ctx: Context,
                         every: int = 0) -> Finding:
        key = p.entity[1]
        acc = "account" if accounts == 1 else "accounts"
        if p.why == "expired":
            age = p.first_ts - (p.tia or 0.0)
            lead = (f"A token {age / 86400:.1f} days old (key {key} allows "
                    f"{p.lifetime / 3600:g} h)")
            evidence = [
                ev("token_age_s", round(age), f"<= {p.lifetime:g} s (+{self.skew:g} s skew)",
                   f"token_issued_at {iso(p.tia or 0.0)} presented for {actor}; lifetime of "
                   f"key {key} from key_issued, configuration or the default"),
            ]
        else:
            since = iso(self._store_since) if self._store_since is not None else "?"
            lead = f"A token signed by key {key}, which the key store never announced,"
            evidence = [
                ev("key_announced", "never", "key_issued before use",
                   f"key store known since {since}, grace {self.key_grace:g} s for keys in "
                   f"use; presented for {actor}"),
            ]
        summary = (f"{lead} read customer data for {accounts} {acc} from {p.src} "
                   f"({p.where}).")
        evidence.append(ev("accounts_with_invalid_tokens", accounts,
                           f"< {self.critical_accounts} in {self.window / 60:g} min for critical",
                           f"under key {key}; watching since {watched}"))
        if p.why == "unannounced_key":
            evidence.append(ev("accounts_under_unannounced_keys", every,
                               f"< {self.critical_accounts} in {self.window / 60:g} min for "
                               "critical", "under any key id the key store never announced"))
        score = 1.0 - 0.5 ** (accounts + 1)
        return Finding(self.id, "key", key, "critical" if critical else "warning", score,
                       summary, evidence, p.event_ids, p.first_ts, names.extra())

    def _places(self, k: int, e: Event, ctx: Context) -> list[Finding]:
        net = e.net
        if net is None or net.net_class != "isp" or len(net.country) != 2 or net.country == "??":
            return []
        prev = self._where.get(k) or self._where_prev.get(k)
        if prev is None:
            self._where[k] = (net.country, e.ts, 0, net.country)
            return []
        country, last, hops, seen = prev
        if country == net.country:
            self._where[k] = (country, e.ts, hops, seen)
            return []
        gap = e.ts - last
        if gap > self.hop_window:
            self._where[k] = (net.country, e.ts, 0, net.country)  # a journey, not a hop
            return []
        hops += 1
        seen = seen if net.country in seen.split(",") else f"{seen},{net.country}"
        self._where[k] = (net.country, e.ts, hops, seen)
        sev = "critical" if hops >= self.critical_hops else "warning"
        names = ctx.victims()
        summary = (f"Session {e.session_id} of {names('account', e.actor_id)} was used from "  # type: ignore[arg-type]  # a request has an actor_id (decode requires it)
                   f"{country} and then "
                   f"{net.country} ({net.org or 'ISP'}) {gap:.0f}s apart: {hops} country "
                   f"{'hop' if hops == 1 else 'hops'} inside {self.hop_window / 60:g} min.")
        evidence = [
            ev("session_countries", seen, "one country per session between journeys",
               "home and mobile networks only; VPN, relay and cloud exits are not counted"),
            ev("seconds_between_countries", round(gap), f"> {self.hop_window:g}s for a journey"),
        ]
        return [Finding(self.id, "session", e.session_id, sev,  # type: ignore[arg-type]  # session_id: this access has one (checked by the caller)
                        min(1.0, 0.5 + 0.25 * hops), summary, evidence, [e.event_id], e.ts,
                        names.extra())]

    def _revoked_use(self, e: Event, revoked: float, ctx: Context) -> Finding:
        sid = e.session_id
        names = ctx.victims()
        summary = (f"Session {sid} was used by {names('account', e.actor_id)} from {e.src_ip} "  # type: ignore[arg-type]  # a request has an actor_id (decode requires it)
                   f"{e.ts - revoked:.0f}s after it was revoked.")
        evidence = [ev("session_state", "used", f"revoked at {iso(revoked)}",
                       f"{e.action} of {e.resource} of {names('customer', e.subject_id)}")]  # type: ignore[arg-type]  # a request has a subject_id (decode requires it)
        return Finding(self.id, "session", sid, "critical", 1.0, summary, evidence,  # type: ignore[arg-type]  # sid: the caller found the session revoked
                       [e.event_id], e.ts, names.extra())

    def expire(self, now: float) -> None:
        for k in [k for k, w in self._entities.items() if not w.seen or w.seen[-1][0] < now - self.window]:
            del self._entities[k]
        old = now - self.session_ttl
        for u in [u for u, t in self._unannounced.items() if t < old]:
            del self._unannounced[u]

    def shed(self, cap: int) -> int:
        """Issued sessions least recently issued first (an evicted one that comes again is
        judged unissued: the cap is a trade of memory against that), then the rest."""
        n = evict_pair(self._known, self._known_prev, cap, float)
        n += evict_pair(self._where, self._where_prev, cap, _where_ts)
        n += evict(self._pending, cap, _first_ts)  # its heap entry is then dropped
        due = getattr(self, "_due", None)
        if due is not None and len(due) > 2 * cap > 0:  # entries of cleared reads: rebuild
            due[:] = [(p.deadline, k) for k, p in self._pending.items()]
            heapq.heapify(due)
            held = getattr(self, "_held", None)
            if held:  # every pending read is in ``due`` now
                held.clear()
        n += evict(self._unannounced, cap, float)  # an evicted one may be judged again
        every = self._unann_all
        while every is not None and len(every.seen) > cap > 0:
            every.seen.popleft()
            n += 1
        return n + evict(self._entities, cap, _seen_last)

    def tracked(self) -> dict[str, int]:
        return {"session": len(self._known) + len(self._known_prev) + len(self._pending)}


def _lifetime_claim(e: Event) -> float | None:
    """``max_token_lifetime_s`` of a ``key_issued`` event (contract 1.1), if a positive number."""
    v = e.fields().get("max_token_lifetime_s")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
        return None
    return float(min(v, 1e10))


def _where_ts(w: tuple[str, float, int, str]) -> float:
    return w[1]


def _first_ts(p: _Pending) -> float:
    return p.first_ts


def _seen_last(w: _EntityWindow) -> float:
    return w.seen[-1][0] if w.seen else 0.0


DETECTOR = UnissuedSession
