"""The detection engine: events in, alerts out, state in plain objects, time from the events.

The same engine serves the Faust agents and the offline ``replay`` command, so a replayed file
and a run through Kafka give the same alerts for the same events.

>>> from detectors.engine import Engine
>>> eng = Engine()
>>> _ = eng.process_line(b'{"event_id":"l0","ts":1750734465,"account_id":"c-0",'
...                      b'"outcome":"failure","src_ip":"121.134.0.1"}')  # the watch begins
>>> line = (b'{"event_id":"a1","ts":1750734765,"actor_id":"c-1","subject_id":"c-1",'
...         b'"resource":"address","src_ip":"52.95.110.1","session_id":"forged",'
...         b'"token_issued_at":1750734700}')
>>> alerts, rejection = eng.process_line(line)
>>> alerts, rejection        # the session is still inside the grace window for late logins
([], None)
>>> [a["detector"] for a in eng.flush()]
['unissued_session']
"""

from __future__ import annotations

import hashlib
import heapq
import importlib
import logging
import math
import os
import pkgutil
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from . import allowlist as AL
from . import events as E
from . import feedback as FB
from ._cap import BYTES_PER_ENTITY, DEFAULT_BYTES, evict, table_cap
from .base import SEVERITY_RANK, Detector, Finding, finding_message, is_observation, iso
from .context import VICTIMS_MAX, Context, Directory, Victims  # noqa: F401 - importable from here too
from .explain import EntityLog
from .geo import UNKNOWN as UNKNOWN_COUNTRY
from .geo import Geo, NetInfo, default_geo
from .incidents import Incidents, incident_link

_ACCESS, _LOGIN, _IDENTITY = E.ACCESS, E.LOGIN, E.IDENTITY
INTERNAL_ERROR = "internal_error"  # the rejection reason of an event a detector failed on

log = logging.getLogger("accesswatch.engine")


@dataclass
class EngineConfig:
    """Engine settings. Times are event-time seconds."""

    allowed_lateness: float = 60.0  # events older than the newest minus this are counted late
    dedupe_window: float = 900.0  # event_id repeats within this are processed once ...
    dedupe_max: int = 500_000  # ... among at most about twice this many recent events
    episode_gap: float = 3600.0  # a quiet gap this long ends an alert episode
    # A finding up to this much older than engine time still joins the episode it belongs
    # to (same alert_id) after that episode was closed; closed episodes are kept this long
    # past their gap, and at most ``episodes_closed_max`` of them.
    episode_lateness: float = 3600.0
    episodes_closed_max: int = 100_000
    expire_every: float = 300.0  # how often idle entity state is swept
    salt: str = "accesswatch"  # salt for hashed identifiers kept in state
    detectors: tuple[str, ...] | None = None  # ids to run; None = every detector
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-detector overrides
    #: entity kinds whose window views (bulk_lookup) are handed out through
    #: ``drain_partials`` to be scored where all workers' views meet, not scored here
    remote_kinds: tuple[str, ...] = ()
    # ---- issue 12, privacy of victims (see docs/contract.md, "Victims") -------------------
    #: Alerts name victims (customers whose data was touched, accounts taken over, their
    #: addresses, devices and sessions) by salted digest labels such as ``customer#3fa9c1d2``.
    #: With this on, an alert also carries a ``victims`` field mapping each label it uses to
    #: the id (for the Kafka alerts topic and a SIEM; never sent to Alertmanager).
    reveal_victims: bool = False
    #: the key of the victim digests; "" = ``salt``. Set a secret in production: digests of
    #: guessable ids (c-000113) under a known key are reversed by trying every id.
    victim_salt: str = field(default="", repr=False)
    victims_max: int = VICTIMS_MAX  # at most this many entries in an alert's ``victims`` field
    # ---- issue 12, input slice: what decoding accepts and which producer claims it believes
    ts_min_year: int = 2000  # every time field from the start of this year ...
    ts_max_year: int = 2100  # ... to the end of this one (else ``ts_out_of_range``)
    #: an event whose ts is more than this ahead of its arrival (the wall clock the runtime
    #: passes with it) is rejected as ``future_ts``; None = no such check
    max_future_skew: float | None = E.FUTURE_SKEW
    #: believe the producer's ``country`` / ``asn`` (else GeoIP decides; they stay in ``raw``)
    trust_producer_geo: bool = False

    def decode_policy(self) -> E.Policy:
        """The decoding :class:`~detectors.events.Policy` these settings ask for."""
        return E.Policy.years(self.ts_min_year, self.ts_max_year, self.max_future_skew,
                              self.trust_producer_geo)
    # issue 12 (bounded state): at most this many entities in each per-entity table of each
    # detector, and open alert episodes (0: no cap). Over it, the least recently seen and
    # unflagged go first (``detectors._cap``); counted in ``evicted``. A flood fills about
    # nine tables, ~1.1 KiB of RSS per entry (docs/benchmarks.md): 200,000 bounds one engine
    # (one input partition) near 2.6 GiB.
    max_entities: int = 200_000
    shed_every: int = 2048  # events between two checks of the caps (one len() per table)
    cap_warn_every: float = 3600.0  # event-time seconds between two warnings per detector
    # ---- issue 12, state slice: a budget on the total state bytes ------------------------
    #: the per-entity tables of all detectors and the open episodes together are held to
    #: about this many bytes (0: no budget). Estimated, not measured: entities (``tracked()``)
    #: times the bytes per entity of their detector (``detectors._cap.BYTES_PER_ENTITY``,
    #: Python heap, calibrated by bench/bench_state_bytes.py). Over it, every table is capped
    #: lower (the same cap for all, the largest tables cut first) through ``shed``: the least
    #: recently seen and unflagged go first. RSS grows ~1.4-2x the estimate (allocator,
    #: bounded caches; docs/benchmarks.md).
    max_state_bytes: int = 1 << 30
    # ---- issue 18 item 4, the entity page (detectors/explain.py) --------------------------
    explain_alerts: int = 20  # recent alerts kept per entity that raised one (0: no page data)
    explain_hours: int = 48  # hours of activity kept per such entity
    # ---- issue 18 items 2-3, allow-lists and suppressions (detectors/allowlist.py) ---------
    #: the allow-list in force: findings it matches (by their event time) are held back,
    #: counted and kept; each change of it is an info alert (detector ``allowlist``)
    allowlist: AL.AllowList | None = None
    #: a benign verdict holds back that detector's findings about that entity this long
    feedback_suppress: float = 86400.0
    #: a malicious verdict raises the entity's findings one severity step this long
    feedback_watch: float = 7 * 86400.0
    # ---- issue 18, incidents: alerts of one attack under one incident_id (detectors.incidents)
    #: the time bucket of an incident id: alerts whose episodes start in one bucket and name
    #: the same linking entity share an incident
    incident_window: float = 86400.0
    incidents_max: int = 10_000  # incident stories kept per engine (least recent go first)
    # ---- issue 17 item 5, scale-out that does not change what pages ---------------------
    #: entity kinds whose findings this engine does not turn into alerts: it hands them out
    #: (``drain_findings``) to meet every other partition's findings of the same entity in
    #: one episode builder (``detectors.episodes``), where episodes and alert ids are made
    relay_kinds: tuple[str, ...] = ()
    # ---- the deployment's local time (detectors.context.LocalTime) ------------------------
    #: the zone whose hours the detectors that know working hours read (unusual_hour,
    #: service_baseline, peer_resource, team_volume, bulk_lookup; a detector's own fixed offset
    #: wins): an IANA name ("Europe/Berlin") or "auto", the home country's zone, decided from the
    #: first successful customer logins (UTC+9 until then)
    timezone: str = "auto"


def discover() -> dict[str, type[Detector]]:
    """Every detector class in the ``detectors`` package, by id (one module per detector)."""
    import detectors

    found: dict[str, type[Detector]] = {}
    for m in pkgutil.iter_modules(detectors.__path__):
        mod = importlib.import_module(f"detectors.{m.name}")
        cls = getattr(mod, "DETECTOR", None)
        if cls is not None and issubclass(cls, Detector) and cls.id == m.name:
            found[cls.id] = cls
    return dict(sorted(found.items()))


@dataclass
class Episode:
    start: float
    last: float
    alert_id: str
    sent_rank: int
    count: int = 0


def _episode_last(ep: Episode) -> float:
    return ep.last


class Engine:
    """Routes each event to the detectors that want it; turns findings into alerts."""

    def __init__(self, config: EngineConfig | None = None, geo: Geo | None = None,
                 detectors: list[Detector] | None = None) -> None:
        """``detectors``: ready-made instances (tests); otherwise built from the config."""
        self.config = cfg = config or EngineConfig()
        self.ctx = Context(geo or default_geo(), cfg.salt)
        self.ctx.configure_victims(cfg)
        self.ctx.configure_local(cfg.timezone)
        if detectors is not None:
            self.detectors: dict[str, Detector] = {d.id: d for d in detectors}
        else:
            classes = discover()
            ids = cfg.detectors if cfg.detectors is not None else tuple(classes)
            unknown = [i for i in ids if i not in classes]
            if unknown:
                raise ValueError(f"unknown detector(s): {', '.join(unknown)}")
            self.detectors = {
                i: classes[i](**cfg.params.get(i, {})) for i in ids
            }
        if cfg.remote_kinds:
            self._partial_origin = os.urandom(6).hex()  # this engine's views (drain_partials)
            for d in self.detectors.values():
                if hasattr(d, "remote_kinds"):
                    d.remote_kinds = frozenset(cfg.remote_kinds)
        by_kind: dict[str, list[Detector]] = {k: [] for k in E.KINDS}
        for d in self.detectors.values():
            for k in d.wants:
                by_kind[k].append(d)
        # Route by kind and principal type: a detector with a ``principal_types`` attribute
        # (e.g. unusual_hour: employees and services) is not even called for the others.
        self._route: dict[tuple[str, str | None], list[Any]] = {}
        for ptype in (*sorted(E.PRINCIPAL_TYPES), None):
            for kind, hook in ((E.LOGIN, "on_login"), (E.ACCESS, "on_access")):
                self._route[(kind, ptype)] = [
                    getattr(d, hook) for d in by_kind[kind]
                    if ptype is None or ptype in getattr(d, "principal_types", (ptype,))
                ]
        self._identity = [d.on_identity for d in by_kind[E.IDENTITY]]
        # the same lists by principal type, one per kind: no tuple key per event
        self._access_route = {p: r for (k, p), r in self._route.items() if k == E.ACCESS}
        self._login_route = {p: r for (k, p), r in self._route.items() if k == E.LOGIN}
        self.episodes: dict[tuple[str, str, str], Episode] = {}
        # episodes ended by a gap, kept for late findings (see ``_episode_for``)
        self._closed: dict[tuple[str, str, str], list[Episode]] = {}
        self._n_closed = 0
        # hash(event_id) -> content_key (a tuple of them after a conflict)
        self._seen_now: dict[int, Any] = {}
        self._seen_prev: dict[int, Any] = {}
        self._seen_rotated = 0.0
        self._next_expire = 0.0
        self._next_idle_sweep = 0.0  # ``advance``'s own sweeps of a quiet engine
        self.stats: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.alerts_by: Counter[tuple[str, str]] = Counter()
        self.suppressed: Counter[str] = Counter()
        self._touched: set[str] = set()
        self.internal_errors: Counter[str] = Counter()  # detector id -> exceptions caught
        self.evicted: Counter[str] = Counter()  # detector id ("engine": episodes) -> entities
        self._evicted_new: Counter[str] = Counter()
        self._cap_warned: dict[str, float] = {}
        self._shed_in = cfg.shed_every
        self._error_kinds: dict[tuple[str, str, str], int] = {}
        self.entity_log = EntityLog(cfg.explain_alerts, cfg.explain_hours)  # the entity page
        self._allow = AL.AllowState()  # issue 18: entries announced, findings held back

    # ---- input -------------------------------------------------------------------------
    @property
    def policy(self) -> E.Policy:
        """What decoding accepts (``EngineConfig.decode_policy``), built once."""
        p = self.__dict__.get("_policy")
        if p is None:
            p = self._policy = self.config.decode_policy()
        return p

    def process_line(self, line: bytes | str, kind: str | None = None,
                     arrival: float | None = None
                     ) -> tuple[list[dict[str, Any]], E.Rejection | None]:
        """Decode and process one line. ``arrival``: wall-clock epoch seconds when it was
        received, passed by the runtime (None: no ``future_ts`` check)."""
        try:  # an attribute read, not the property's call, once it is built (speed)
            policy = self._policy
        except AttributeError:
            policy = self.policy
        ev = E.decode(line, kind, policy, arrival)
        if isinstance(ev, E.Rejection):
            self.rejected[ev.reason] += 1
            return [], ev
        return self.process(ev)

    def process_obj(self, obj: Any, kind: str | None = None, arrival: float | None = None
                    ) -> tuple[list[dict[str, Any]], E.Rejection | None]:
        ev = E.decode_obj(obj, kind, self.policy, arrival)
        if isinstance(ev, E.Rejection):
            self.rejected[ev.reason] += 1
            return [], ev
        return self.process(ev)

    def process(self, e: E.Event) -> tuple[list[dict[str, Any]], E.Rejection | None]:
        """One valid event. Returns (alerts, rejection) where rejection marks a duplicate.

        An event id seen before with the same content (:func:`~detectors.events.content_key`)
        is a duplicate, dropped; with other content, a ``duplicate_conflict``: counted in
        ``stats`` and processed (an id is a producer's claim: reusing one must not hide an
        event)."""
        ctx = self.ctx
        cfg = self.config
        key = hash(e.event_id)
        seen_now = self._seen_now
        content = E.content_key(e)
        seen = seen_now.get(key)
        if seen is None:
            seen = self._seen_prev.get(key)
        if seen is None:
            seen_now[key] = content
        elif seen == content or (type(seen) is tuple and content in seen):
            self.rejected["duplicate"] += 1
            return [], E.Rejection("duplicate", "event_id", "already processed")
        else:
            self.stats["duplicate_conflict"] += 1
            seen_now[key] = ((*seen, content) if type(seen) is tuple else (seen, content))[-8:]
        if len(seen_now) > cfg.dedupe_max:
            self._seen_prev, self._seen_now = seen_now, {}
        if e.invalid_claim is not None:  # a credential claim repaired at decode (events.py)
            self.stats["invalid_claim"] += 1
        ts = e.ts
        if ctx.start is None:
            ctx.start = ts
            self._seen_rotated = ts
            self._next_expire = ts + cfg.expire_every
        kind = e.kind
        self.stats[kind] += 1
        self._shed_in -= 1
        if self._shed_in <= 0:
            self._shed()
        findings: list[Finding] | None = None  # allocated only when there is one
        if kind == _ACCESS and ts > ctx.access_now:
            ctx.access_now = ts  # before the timers: an access past a window's end closes it
        if ts > ctx.now:
            ctx.now = ts
            timers = ctx._timers
            if timers and timers[0][0] <= ts:
                findings = self._fire_timers(ts)
            if ts - self._seen_rotated > cfg.dedupe_window:
                self._seen_prev, self._seen_now = self._seen_now, {}
                self._seen_rotated = ts
            if ts >= self._next_expire:
                self._expire(ts)
            if ts >= self._allow.due:  # issue 18: a new allow-list, or an entry expires
                findings = self._allow_tick(ts, findings)
        elif ts < ctx.now - cfg.allowed_lateness:
            self.stats["late"] += 1
        relayed = cfg.relay_kinds
        if ctx.relayed is not relayed:  # (a runtime replaces the config of a restored engine)
            ctx.relayed = relayed
        if kind != _IDENTITY:  # no producer geo (decoding drops it unless trusted): the
            geo = ctx.geo  # cached look-up itself, one call less (issue 14, speed)
            lookup = geo.lookup  # (read, then called: 3.11 specialises no method call of an
            e.net = (lookup(e.src_ip) if e.country is None and e.asn is None  # instance attribute)
                     else geo.enrich(e.src_ip, e.country, e.asn))  # type: ignore[arg-type]  # decode requires src_ip
            hooks = (self._access_route[e.actor_type] if kind == _ACCESS
                     else self._login_route[e.account_type])
            if ctx.local.pending and kind == _LOGIN:  # "auto": the first customer logins
                self._note_home(e)
        else:
            ctx.directory.apply(e)
            hooks = self._identity
        failed: E.Rejection | None = None
        for f in hooks:
            try:  # free on 3.11+ while nothing raises
                r = f(e, ctx)
            except Exception as exc:  # a detector bug: the others still see the event
                err = self._failed(f.__self__.id, f.__name__, exc)
                failed = failed or err
                continue
            if r:
                if findings is None:
                    findings = list(r)  # a copy: a detector may hand back its own list
                else:
                    findings.extend(r)
        if failed is not None:
            self.rejected[INTERNAL_ERROR] += 1
        if kind != _IDENTITY and self.entity_log.recs:  # activity of entities with alerts
            self.entity_log.note_event(e)
        if not findings:
            return [], failed
        return self._alerts(findings), failed

    def _note_home(self, e: E.Event) -> None:
        """Count a successful customer login's country towards the home country (``auto``
        local time, ``detectors.context.LocalTime``); log the zone once decided."""
        net = e.net
        if (e.account_type != "customer" or e.outcome != "success" or net is None
                or net.country == UNKNOWN_COUNTRY):
            return
        zone = self.ctx.local.note_login(net.country)
        if zone is not None:
            log.info("local time: home country %s from the first customer logins: %s",
                     self.ctx.local.home, zone or "no zone in the tz database, UTC+9 kept")

    def advance(self, now: float) -> list[dict[str, Any]]:
        """Let event time pass without an event (a watermark from the runtime): timers due
        by ``now`` fire, and idle state is swept once no event has come for a whole sweep
        interval past the sweep that is due.

        Sweeps stay on the events' schedule otherwise (``process`` sweeps at the first event
        at or past ``_next_expire``, as a replay of the same events does): the worker's
        watermark runs on the wall clock, and a sweep at a watermark a few seconds into a
        stall (a broker failover) would forget state the replay keeps, and split an alert
        episode (seen: one bulk_lookup alert id of the replay under another id). A partition
        quiet for longer is swept here, without moving the events' schedule."""
        if now <= self.ctx.now:
            return []
        self.ctx.now = now
        if now > self.ctx.access_now:  # a watermark: every stream is quiet up to it
            self.ctx.access_now = now
        alerts = self._alerts(self._fire_timers(now))
        if self.ctx.start is not None and now >= self._allow.due:  # issue 18
            alerts += self._alerts(self._allow_tick(now, None))
        every = self.config.expire_every
        if (self.ctx.start is not None and now >= self._next_expire + every
                and now >= self._next_idle_sweep):
            next_expire = self._next_expire
            self._expire(now)
            self._next_expire, self._next_idle_sweep = next_expire, now + every
        self._shed()  # timers may have opened many episodes at once
        return alerts

    def flush(self) -> list[dict[str, Any]]:
        """End of input: fire every pending timer."""
        alerts = self._alerts(self._fire_timers(float("inf")))
        self._shed()
        return alerts

    # ---- internals ---------------------------------------------------------------------
    def _failed(self, det_id: str, where: str, exc: BaseException) -> E.Rejection:
        """Count and log a detector's exception; the rejection that reports it.

        The first failure of each (detector, hook, exception type) is logged at ERROR with
        its traceback, then every 1000th: an input that trips a bug on every event must not
        flood the log. The line names the detector, the hook and the exception type only
        (no entity ids); the traceback's message may hold one (ERROR level)."""
        self.internal_errors[det_id] += 1
        self._errors_new = self.__dict__.get("_errors_new", 0) + 1
        kind = type(exc).__name__
        n = self._error_kinds[(det_id, where, kind)] = (
            self._error_kinds.get((det_id, where, kind), 0) + 1)
        if n == 1 or n % 1000 == 0:
            log.error("detector %s failed in %s (%s, %d times so far); its work on this "
                      "input was skipped", det_id, where, kind, n, exc_info=exc)
        return E.Rejection(INTERNAL_ERROR, det_id, f"{where}: {kind}")

    def _fire_timers(self, now: float) -> list[Finding]:
        """Run the ``on_time`` of every detector with a timer due by ``now``. The due timers
        are popped before any runs: a detector that raises loses them (its error is counted
        and logged), so a timer that fails cannot fail again on every later watermark."""
        timers = self.ctx._timers
        due: set[str] = set()
        while timers and timers[0][0] <= now:
            due.add(heapq.heappop(timers)[2])
        out: list[Finding] = []
        for det_id in sorted(due):
            try:
                out.extend(self.detectors[det_id].on_time(now, self.ctx))
            except Exception as exc:
                self._failed(det_id, "on_time", exc)
        return out

    def _shed(self) -> None:
        """Hold every detector's tables and the open episodes to ``max_entities`` each, and
        all of them together to ``max_state_bytes`` (estimated: :meth:`state_bytes`)."""
        cfg = self.config
        self._shed_in = cfg.shed_every
        cap = cfg.max_entities
        budget = getattr(cfg, "max_state_bytes", 0)  # a config from before the budget: none
        if cap <= 0 and budget <= 0:
            return
        counts: Counter[str] = Counter()
        if cap > 0:
            self._shed_to(cap, counts)
        bound = 0  # the per-table cap the byte budget imposed (0: it did not bind)
        over = 0  # the estimate that was over the budget
        if budget > 0:
            for _ in range(4):  # a kind may sum several tables: cut again if still over
                sizes = self._sizes()
                estimate = sum(b * n for b, n in sizes)
                if estimate <= budget:
                    break
                over = over or estimate
                c = table_cap(budget, sizes)
                bound = min(bound, c) if bound else c
                if not self._shed_to(c, counts):
                    break
        if not counts:
            return
        now = self.ctx.now
        if bound and now - self._cap_warned.get("bytes", -math.inf) >= cfg.cap_warn_every:
            self._cap_warned["bytes"] = now
            log.warning("state byte budget reached: about %d MiB of state estimated, budget "
                        "%d MiB; every table held to %d entities", over >> 20,
                        budget >> 20, bound)
        for det_id, n in counts.items():
            self.evicted[det_id] += n
            self._evicted_new[det_id] += n
            if now - self._cap_warned.get(det_id, -math.inf) >= cfg.cap_warn_every:
                self._cap_warned[det_id] = now
                log.warning("state cap reached: %s dropped %d entities (cap %d per table, "
                            "%d so far); a flood of new entities, or a cap too small for "
                            "this traffic", det_id, n, min(c for c in (cap, bound) if c > 0),
                            self.evicted[det_id])

    def _shed_to(self, cap: int, counts: Counter[str]) -> int:
        """Every detector's tables and the open episodes to ``cap`` entries each; evictions
        added to ``counts`` by detector id. Returns how many."""
        total = 0
        for d in self.detectors.values():
            try:
                n = d.shed(cap)
            except Exception as exc:
                self._failed(d.id, "shed", exc)
                continue
            if n:
                counts[d.id] += n
                total += n
        n = self.entity_log.shed(cap)
        if n:
            counts["explain"] += n
            total += n
        n = evict(self.episodes, cap, _episode_last, None, self._close)
        if len(self._touched) > cap:  # nobody drains them (replay): they only keep pages alive
            self._touched = set()
        if n:
            counts["engine"] += n
            total += n
        return total

    def _sizes(self) -> list[tuple[int, int]]:
        """(bytes per entity, entities) of every detector's kinds and of the open episodes."""
        out = [(BYTES_PER_ENTITY.get("engine", DEFAULT_BYTES), len(self.episodes)),
               (BYTES_PER_ENTITY.get("explain", DEFAULT_BYTES), self.entity_log.tracked())]
        for d in self.detectors.values():
            try:
                kinds = d.tracked()
            except Exception as exc:
                self._failed(d.id, "tracked", exc)
                continue
            b = BYTES_PER_ENTITY.get(d.id, DEFAULT_BYTES)
            out.extend((b, n) for n in kinds.values())
        return out

    def state_bytes(self) -> int:
        """The estimate ``max_state_bytes`` is held to: entities times bytes per entity."""
        return sum(b * n for b, n in self._sizes())

    def drain_evictions(self) -> Counter[str]:
        """Entities evicted at the cap (``evicted``) since the last call, by detector."""
        out = self.__dict__.get("_evicted_new") or Counter()
        self._evicted_new = Counter()
        return out

    def _expire(self, now: float) -> None:
        self._next_expire = now + self.config.expire_every
        for d in self.detectors.values():
            try:
                d.expire(now)
            except Exception as exc:
                self._failed(d.id, "expire", exc)
        gap = self.config.episode_gap
        stale = [k for k, ep in self.episodes.items() if now - ep.last > gap]
        for k in stale:
            self._close(k, self.episodes.pop(k))
        self._prune_closed(now)

    # ---- episodes ended by a gap, kept for findings that arrive late ----------------------
    def _close(self, key: tuple[str, str, str], ep: Episode) -> None:
        self._closed.setdefault(key, []).append(ep)
        self._n_closed += 1
        if self._n_closed > self.config.episodes_closed_max:
            self._prune_closed(self.ctx.now)

    def _prune_closed(self, now: float) -> None:
        """Forget closed episodes no late finding can join any more (by time), then the
        least recent ones while there are more than ``episodes_closed_max`` (by count)."""
        horizon = now - self.config.episode_gap - self.config.episode_lateness
        kept: dict[tuple[str, str, str], list[Episode]] = {}
        for key, eps in self._closed.items():
            live = [ep for ep in eps if ep.last >= horizon]
            if live:
                kept[key] = live
        n = sum(len(eps) for eps in kept.values())
        cap = self.config.episodes_closed_max
        if n > cap:  # keep the most recent 90% of the cap, so this runs rarely
            lasts = sorted(ep.last for eps in kept.values() for ep in eps)
            cut = lasts[n - int(cap * 0.9) - 1] if cap > 0 else float("inf")
            kept = {k: [ep for ep in eps if ep.last > cut] for k, eps in kept.items()}
            kept = {k: eps for k, eps in kept.items() if eps}
            n = sum(len(eps) for eps in kept.values())
        self._closed, self._n_closed = kept, n

    def _episode_for(self, key: tuple[str, str, str], ts: float) -> Episode | None:
        """The episode a finding at ``ts`` belongs to, or None for a new one.

        In order, that is the current episode unless ``episode_gap`` passed since its last
        finding. Out of order (a topic that ran ahead after an outage), a finding may belong
        to an episode the engine already closed because its time moved on: it joins that
        one, so its alert_id does not depend on the order the findings arrived in."""
        gap = self.config.episode_gap
        ep = self.episodes.get(key)
        if ep is not None and ts - ep.last <= gap and ts >= ep.start - gap:
            return ep
        best = None
        for old in self._closed.get(key, ()):
            if old.start - gap <= ts <= old.last + gap and (
                best is None or abs(ts - old.last) < abs(ts - best.last)
            ):
                best = old
        if best is None and ep is not None and ts - ep.last <= gap:
            return ep  # older than the current episode and of no closed one: as before
        return best

    def _alerts(self, findings: list[Finding]) -> list[dict[str, Any]]:
        out = []
        relay = self.config.__dict__.get("relay_kinds")  # a config from before: none
        if relay:
            findings = self._relay(findings, relay)
        if any(is_observation(f) for f in findings):
            findings = self._observed(findings)
        allow = self.config.allowlist
        st = self._allow
        for f in findings:
            if f.detector == AL.CHANGES_ID:  # a change of the allow-list: never held back
                out.append(f.extra)
                self.alerts_by[(AL.CHANGES_ID, "info")] += 1
                continue
            if (allow is not None or st.benign) and self._held(allow, f):
                continue
            if st.watched:
                st.escalate(f, self._finding_link(f))
            try:
                a = self._episode(f)
            except Exception as exc:  # e.g. a time no calendar can print: drop the finding
                self._failed(f.detector, "alert", exc)
                continue
            if a is not None:
                out.append(a)
                if self.config.explain_alerts > 0:
                    self.entity_log.note_alert(a, f.ts)
        return out

    def _relay(self, findings: list[Finding], kinds: tuple[str, ...]) -> list[Finding]:
        """Keep the findings of ``kinds`` for ``drain_findings`` (stamped with the engine
        time they were made at, which orders them where they meet); return the others."""
        box: list[tuple[float, Finding]] = self.__dict__.setdefault("_relay_box", [])
        now = self.ctx.now
        rest = []
        for f in findings:
            # a change of the allow-list is this engine's own notice: never relayed
            if f.entity_kind in kinds and f.detector != AL.CHANGES_ID:
                box.append((self._relay_at(f, now), f))
            else:
                rest.append(f)
        return rest

    def _relay_at(self, f: Finding, now: float) -> float:
        """The time a relayed finding is stamped with: when it was made, or, for a verdict
        its detector put off (``Detector.decided_for``), the time a single engine decides it
        at (h-par6), never under what this engine told the builders they may pass for its
        episode (the hold last reported on it, else the time last reported:
        :meth:`relay_report`), so nothing of that episode was taken after it."""
        det = self.detectors.get(f.detector)
        late = det.decided_for(f) if det is not None else None
        if late is None:
            return now
        d = self.__dict__
        floor: float = (d.get("_relay_holds") or {}).get((f.detector, f.entity_kind, f.entity_id),
                                                         d.get("_relay_reported", -math.inf))
        return max(floor, min(now, late))

    def relay_report(self) -> tuple[float, dict[tuple[str, str, str], float]]:
        """What this input engine tells the episode builders (issue 17.5): its engine time
        (no finding it relays later is made earlier, but for a verdict put off) and its holds:
        each (detector, entity kind, entity id) episode on which a detector has put off a
        verdict (``Detector.undecided``), with the time the builders must not take that
        episode's findings from until it is decided (h-par6). A hold never goes back while it
        stands; a new one starts no earlier than the time last reported."""
        d = self.__dict__
        floor = d.get("_relay_reported", -math.inf)
        prev: dict[tuple[str, str, str], float] = d.get("_relay_holds") or {}
        holds: dict[tuple[str, str, str], float] = {}
        for det in self.detectors.values():
            try:
                waiting = det.undecided()
            except Exception as exc:
                self._failed(det.id, "undecided", exc)
                continue
            for (kind, ident), at in waiting.items():
                key = (det.id, kind, ident)
                holds[key] = max(at, prev.get(key, floor))
        now = self.ctx.now
        d["_relay_holds"], d["_relay_reported"] = holds, now
        return now, holds

    def _observed(self, findings: list[Finding]) -> list[Finding]:
        """Observations (``detectors.base.observation``) folded by their detector here, in
        place: the findings they make take their place, in order."""
        out: list[Finding] = []
        for f in findings:
            if not is_observation(f):
                out.append(f)
                continue
            det = self.detectors.get(f.detector)
            if det is None:  # a builder without that detector (a worker of another config)
                self.stats["observation_dropped"] += 1
                continue
            try:
                out.extend(det.on_observation(f, self.ctx))
            except Exception as exc:  # a bad observation: counted, the others go on
                self._failed(f.detector, "on_observation", exc)
        return out

    def has_findings(self) -> bool:
        """Whether ``drain_findings`` has findings to hand out (asked after every event)."""
        return bool(self.__dict__.get("_relay_box"))

    def drain_findings(self) -> list[dict[str, Any]]:
        """Findings kept by ``relay_kinds`` since the last call, in the order they were made,
        JSON-safe (``detectors.episodes.finding_message``)."""
        box = self.__dict__.get("_relay_box")
        if not box:
            return []
        origin = self.__dict__.get("_relay_origin")
        if origin is None:  # one per engine life: a fresh engine is a new sender
            origin = self._relay_origin = os.urandom(6).hex()
        seq = self.__dict__.get("_relay_seq", 0)
        out = []
        for at, f in box:
            seq += 1
            out.append(finding_message(f, at, origin, seq))
        self.__dict__["_relay_box"], self._relay_seq = [], seq
        return out

    def _episode(self, f: Finding) -> dict[str, Any] | None:
        key = (f.detector, f.entity_kind, f.entity_id)
        rank = SEVERITY_RANK[f.severity]
        ts_text = iso(f.ts)  # first: a time that cannot be printed leaves no episode behind
        ep = self._episode_for(key, f.ts)
        if ep is None:
            raw = f"{f.detector}|{f.entity_kind}|{f.entity_id}|{f.ts:.3f}".encode()
            alert_id = f"aw-{hashlib.sha256(raw).hexdigest()[:24]}"
            ep = Episode(f.ts, f.ts, alert_id, -1)
            old = self.episodes.get(key)
            if old is None or f.ts > old.last:
                if old is not None:
                    self._close(key, old)
                self.episodes[key] = ep
            else:  # a late finding of an episode of its own, before the current one
                self._close(key, ep)
        ep.last = max(ep.last, f.ts)
        ep.count += 1
        if rank <= ep.sent_rank:
            self.suppressed[f.detector] += 1
            self._touched.add(ep.alert_id)
            return None
        ep.sent_rank = rank
        self.alerts_by[(f.detector, f.severity)] += 1
        alert = {
            "alert_id": ep.alert_id,
            "ts": ts_text,
            "detector": f.detector,
            # issue 18.5: the ATT&CK technique ids the detector declares
            "attack": list(getattr(self.detectors.get(f.detector), "attack", ())),
            "severity": f.severity,
            "score": round(min(1.0, max(0.0, f.score)), 4),
            "entity": {"kind": f.entity_kind, "id": f.entity_id},
            "summary": f.summary,
            "evidence": f.evidence,
            "event_ids": f.event_ids[:20],
            "episode": {"started": iso(ep.start), "findings": ep.count},
        }
        if f.extra:
            alert.update(f.extra)
        self._incident_book().assign(alert, ep.start, f.ts, self._net)
        return alert

    # ---- issue 18: allow-lists and suppressions ----------------------------------------
    def set_allowlist(self, allowlist: AL.AllowList | None) -> None:
        """Put ``allowlist`` in force (a runtime does this on an engine restored from a
        checkpoint); the changes against what this engine announced are alerts at the next
        event time."""
        self.config = replace(self.config, allowlist=allowlist)
        self._allow.due = -math.inf

    def _allow_tick(self, now: float, findings: list[Finding] | None) -> list[Finding]:
        """The allow-list's changes at ``now`` as findings (their alerts ready in ``extra``)
        added to ``findings``."""
        al = self.config.allowlist
        out = findings if findings is not None else []
        for c in self._allow.tick(al, now):
            alert = AL.change_alert(c, al.version if al is not None else self._allow.version,
                                    al.source if al is not None else "")
            out.append(Finding(AL.CHANGES_ID, alert["entity"]["kind"], alert["entity"]["id"],
                               "info", 0.0, alert["summary"], alert["evidence"], [], c.ts,
                               alert))
        return out

    def _held(self, allow: AL.AllowList | None, f: Finding) -> bool:
        """Whether an allow-list entry or a benign verdict holds ``f`` back (counted and
        kept, not alerted)."""
        entry = allow.match(f.detector, f.entity_kind, f.entity_id, f.ts) if allow else None
        benign = entry is None and bool(self._allow.benign)
        if benign:
            entry = self._allow.match_benign(f)
        if entry is None:
            return False
        self._allow.hold(entry, {
            "ts": iso(f.ts), "detector": f.detector, "severity": f.severity,
            "score": round(min(1.0, max(0.0, f.score)), 4),
            "entity": {"kind": f.entity_kind, "id": f.entity_id}, "summary": f.summary,
            "event_ids": f.event_ids[:5]}, benign)
        return True

    def drain_held(self, reason: str = "allowlist") -> Counter[str]:
        """Findings held back since the last call, by detector: by the allow-list, or by
        benign verdicts (``reason="feedback"``)."""
        held = self._allow.held_feedback if reason == "feedback" else self._allow.held
        name = f"_held_drained_{reason}"
        last = self.__dict__.get(name) or Counter()
        out = held - last
        self.__dict__[name] = Counter(held)
        return out

    def feedback(self, obj: Any) -> list[dict[str, Any]]:
        """Apply an analyst's verdict (``detectors.feedback``) on an alert id or an incident
        id (``in-...``): ``ValueError`` with the reason for a message that is not one; []
        when this engine holds no alert of it. Returns the alerts it raises (a benign
        verdict's notices, one per detector/entity pair it silences)."""
        v = FB.parse(obj)
        if isinstance(v, str):
            raise ValueError(v)
        book = self._incident_book()
        if v.alert_id.startswith("in-"):
            iid: str | None = v.alert_id
            keys = self._incident_keys(v.alert_id)
        else:
            key = self._episode_key(v.alert_id)
            keys = [key] if key is not None else []
            iid = book.of_alert.get(v.alert_id)
        if not keys:
            return []
        cfg = self.config
        if v.verdict == "malicious":
            # the alert's own entity, and every entity linked to its incident: the ones of
            # the incident's alerts held here, and its linking entity (so a new finding that
            # would join the incident is raised too, ``_alerts``)
            watch = {(kind, ident) for _, kind, ident in keys}
            if iid is not None:
                watch.update((k, i) for _, k, i in self._incident_keys(iid))
                link = book.links().get(iid)  # ("principal", id) for an account/actor
                if link is not None:
                    watch.add(link)
            for ent in sorted(watch):
                self._allow.watched[ent] = (v.ts + cfg.feedback_watch, v.alert_id)
            return []
        out = []
        for key in sorted(keys):
            det, kind, ident = key
            entry = AL.Entry("suppress", ident, v.reason, v.analyst,
                             v.ts + cfg.feedback_suppress, (det,), kind)
            self._allow.benign[entry.ident()] = entry
            self.episodes.pop(key, None)  # the next finding after the suppression pages anew
            closed = self._closed.pop(key, None)
            if closed:
                self._n_closed -= len(closed)
            self.alerts_by[(AL.CHANGES_ID, "info")] += 1
            out.append(AL.change_alert(AL.Change("added", entry, v.ts), 0,
                                       f"feedback:{v.alert_id}"))
        return out

    def _incident_keys(self, iid: str) -> list[tuple[str, str, str]]:
        """The (detector, kind, id) of the episodes, open or closed, of this incident's
        alerts that this engine holds."""
        of = self._incident_book().of_alert
        keys = {key for key, ep in self.episodes.items() if of.get(ep.alert_id) == iid}
        keys.update(key for key, eps in self._closed.items()
                    if any(of.get(ep.alert_id) == iid for ep in eps))
        return sorted(keys)

    def _episode_key(self, alert_id: str) -> tuple[str, str, str] | None:
        """The (detector, kind, id) of the episode, open or closed, with this alert id."""
        for key, ep in self.episodes.items():
            if ep.alert_id == alert_id:
                return key
        for key, eps in self._closed.items():
            if any(ep.alert_id == alert_id for ep in eps):
                return key
        return None

    def drain_suppressed(self) -> Counter[str]:
        """Repeats inside open episodes (``suppressed``) since the last call, by detector."""
        last = self.__dict__.get("_suppressed_drained") or Counter()
        out = self.suppressed - last
        self._suppressed_drained = Counter(self.suppressed)
        return out

    def _finding_link(self, f: Finding) -> tuple[str, str]:
        """The linking entity of the alert ``f`` would raise (``detectors.incidents``), as
        a watched entity is named: a finding that would join a malicious incident is raised
        whatever its own entity."""
        return incident_link({"entity": {"kind": f.entity_kind, "id": f.entity_id},
                              "evidence": f.evidence}, self._net)

    def _incident_book(self) -> Incidents:
        book = self.__dict__.get("_incidents")
        if book is None:  # also a checkpoint from before incidents
            book = self._incidents = Incidents(self.config.incident_window,
                                               self.config.incidents_max)
        return book

    def _net(self, ip: str) -> NetInfo | None:
        try:
            return self.ctx.geo.lookup(ip)
        except (ValueError, TypeError):
            return None

    # ---- the combiner across workers ------------------------------------------------------
    def has_partials(self) -> bool:
        """Whether ``drain_partials`` has views to hand out (asked after every event: only
        the detectors with an outbox are looked at)."""
        senders = self.__dict__.get("_senders")
        if senders is None:
            senders = self._senders = [d for d in self.detectors.values()
                                       if hasattr(d, "outbox")]
        for d in senders:
            if d.outbox:
                return True
        return False

    def drain_partials(self) -> list[dict[str, Any]]:
        """Window views handed out (``EngineConfig.remote_kinds``) since the last call, oldest
        first, JSON-safe: ``{"detector", "origin", "seq", "partial"}`` (and ``zone``, the local
        time's zone this engine decided under ``timezone = "auto"``). Send each keyed by its
        partial's kind and entity; the receiving engine scores it with ``observe_partial``.
        ``origin`` + ``seq`` (checkpointed with this engine) let the receiver drop the views a
        restored engine sends again."""
        out: list[dict[str, Any]] = []
        for d in self.detectors.values():
            box = getattr(d, "outbox", None)
            if not box:
                continue
            d.outbox = []  # type: ignore[attr-defined]  # it has one: getattr above
            origin = self.__dict__.get("_partial_origin")
            if origin is None:  # one per engine life: a fresh engine is a new sender
                origin = self._partial_origin = os.urandom(6).hex()
            seq = self.__dict__.get("_partial_seq", 0)
            local = self.ctx.local
            zone = local.zone if local.setting == "auto" and local.zone else None
            for p in box:
                seq += 1
                msg = {"detector": d.id, "origin": origin, "seq": seq, "partial": p.to_dict()}
                if zone:
                    msg["zone"] = zone
                out.append(msg)
            self._partial_seq = seq
        return out

    def observe_partial(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        """Score a window view from ``drain_partials`` (of any engine) here: the detector
        folds it into the entity and the usual episodes and alert ids apply. A view this
        engine already took (same origin, seq not newer) is dropped."""
        seen: dict[str, int] = self.__dict__.setdefault("_partials_seen", {})
        origin, seq = msg.get("origin"), msg.get("seq")
        if origin is not None and seq is not None:
            if seq <= seen.get(origin, 0):
                self.rejected["duplicate_partial"] += 1
                return []
            seen[origin] = seq
        det = self.detectors.get(msg["detector"])
        if det is None or not hasattr(det, "observe_remote"):
            raise ValueError(f"no detector here scores views of {msg['detector']!r}")
        ts = float(msg["partial"]["last"])
        ctx = self.ctx
        zone = msg.get("zone")
        if zone and ctx.local.pending:  # "auto" here, no logins here: the input engines' zone
            ctx.local.adopt(str(zone))
        if ctx.start is None:
            ctx.start = ts
            self._next_expire = ts + self.config.expire_every
        if ts > ctx.now:
            ctx.now = ts
            if ts >= self._next_expire:
                self._expire(ts)
        self.stats["partial"] += 1
        return self._alerts(det.observe_remote(msg["partial"], ctx))

    def drain_touched(self) -> set[str]:
        """Alert ids whose episode saw repeats since the last call (still active: keep paging
        state alive in Alertmanager without sending a new page)."""
        out, self._touched = self._touched, set()
        return out

    def drain_errors(self) -> int:
        """Exceptions caught inside the engine (``internal_errors``) since the last call."""
        n: int = self.__dict__.get("_errors_new", 0)
        self._errors_new = 0
        return n

    def __getstate__(self) -> dict[str, Any]:
        # The duplicate memory holds process-local hashes: meaningless in another process
        # (the runtime skips redelivered input by offset instead), so not checkpointed.
        state = dict(self.__dict__)
        state["_seen_now"], state["_seen_prev"] = {}, {}
        state.pop("_policy", None)  # rebuilt from the config
        if self.config.victim_salt:  # a secret: never in a checkpoint (Context.configure_victims)
            state["config"] = replace(self.config, victim_salt="")
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "internal_errors" not in state:  # a checkpoint from before errors were counted
            self.internal_errors, self._error_kinds = Counter(), {}
        if "evicted" not in state:  # a checkpoint from before the state cap
            self.evicted, self._evicted_new, self._cap_warned = Counter(), Counter(), {}
            self._shed_in = self.config.shed_every
        if "_closed" not in state:  # a checkpoint from before closed episodes were kept
            self._closed, self._n_closed = {}, 0
        if not isinstance(state.get("_seen_now"), dict):  # from before duplicate_conflict
            self._seen_now, self._seen_prev = {}, {}
        self.__dict__.setdefault("_next_idle_sweep", 0.0)
        if "entity_log" not in state:  # a checkpoint from before the entity page
            self.entity_log = EntityLog(self.config.explain_alerts, self.config.explain_hours)
        if "_allow" not in state:  # a checkpoint from before the allow-list (issue 18)
            self._allow = AL.AllowState()

    # ---- introspection -----------------------------------------------------------------
    def tracked(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for d in self.detectors.values():
            total.update(d.tracked())
        return dict(total)

    def warmup(self) -> dict[str, float]:
        return {i: d.warmup() for i, d in self.detectors.items()}
