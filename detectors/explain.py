"""The entity page (issue 18 item 4): one entity's story from the engine's state, as a plain dict.

:class:`EntityLog` is what the engine keeps for it: for each entity that raised an alert, its
recent alerts (a ring of ``alerts_max``, an escalation replaces the alert it escalates) and its
activity from then on, counted per hour of event time (``hours_max`` hours kept). Only
entities with an alert are kept, so a flood of new idle entities adds nothing here; the table
is held to the engine's caps like every detector's (``shed``, counted in the byte budget as
``"explain"`` in :data:`detectors._cap.BYTES_PER_ENTITY`), least recently seen first.

:func:`explain` is the view: it reads the logs of one or more engines (a worker holds one
per input partition), the detectors' own baselines for the entity (a detector with a
``describe(kind, id)`` method answers with its baselines against the entity's peers) and the
identity directory, and returns JSON-safe data. Rendering (terminal, HTML, JSON) is in
``streams/explain_render.py``; nothing here knows about HTTP.

>>> log = EntityLog()
>>> log.note_alert({"alert_id": "aw-1", "ts": "2026-01-01T00:00:00.000Z", "detector": "d",
...                 "severity": "warning", "score": 0.5, "summary": "s", "evidence": [],
...                 "event_ids": ["e1"], "entity": {"kind": "src_ip", "id": "1.2.3.4"}}, 0.0)
>>> [a["alert_id"] for a in log.record("src_ip", "1.2.3.4").alerts]
['aw-1']
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._cap import evict
from .base import ENTITY_KINDS, SEVERITY_RANK, iso

HOUR = 3600.0
#: at most this many evidence lines and event ids of an alert are kept
EVIDENCE_MAX = 12
EVENT_IDS_MAX = 5
#: the alert fields a record keeps (the page shows them; nothing else of the alert)
ALERT_FIELDS = ("alert_id", "ts", "detector", "severity", "score", "summary", "incident_id",
                "attack", "episode")


class _Rec:
    """One entity's recent alerts and hourly activity."""

    __slots__ = ("first", "last", "alerts", "hours")

    def __init__(self, ts: float) -> None:
        self.first = self.last = ts
        self.alerts: list[dict[str, Any]] = []  # oldest first
        self.hours: dict[int, list[int]] = {}  # hour number -> [events, alerts]


def _rec_last(r: _Rec) -> float:
    return r.last


def compact_alert(alert: dict[str, Any], t: float) -> dict[str, Any]:
    """What a record keeps of an alert: its identity, summary and evidence, bounded."""
    out = {k: alert[k] for k in ALERT_FIELDS if k in alert}
    out["t"] = t
    out["evidence"] = list(alert.get("evidence") or ())[:EVIDENCE_MAX]
    out["event_ids"] = list(alert.get("event_ids") or ())[:EVENT_IDS_MAX]
    return out


class EntityLog:
    """Recent alerts and activity of the entities that raised alerts (see the module doc)."""

    def __init__(self, alerts_max: int = 20, hours_max: int = 48) -> None:
        self.alerts_max = alerts_max
        self.hours_max = hours_max
        self.recs: dict[tuple[str, str], _Rec] = {}
        self.n_alerts = 0  # alerts kept over all records (what the byte budget counts)
        #: the ids of ``recs``' keys (those of kind ``asn`` in ``_asns``), and maybe of some
        #: evicted since (supersets, rebuilt when they hold twice as many): lets
        #: ``note_event`` pass over an event that names no kept entity with set look-ups of
        #: its ids, not a (kind, id) tuple per field. Transient: rebuilt from ``recs`` on
        #: restore (issue 14, speed).
        self._ids: set[str] = set()
        self._asns: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_ids", None)
        state.pop("_asns", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._index()

    def _index(self) -> None:
        self._ids = {i for k, i in self.recs if k != "asn"}
        self._asns = {i for k, i in self.recs if k == "asn"}

    def _add(self, key: tuple[str, str], t: float) -> _Rec:
        """A new record under ``key`` (its id noted in ``_ids`` or ``_asns``)."""
        rec = self.recs[key] = _Rec(t)
        if len(self._ids) + len(self._asns) >= 2 * len(self.recs) + 1024:  # evicted ids
            self._index()  # pile up: start again
        (self._asns if key[0] == "asn" else self._ids).add(key[1])
        return rec

    def record(self, kind: str, ident: str) -> _Rec | None:
        return self.recs.get((kind, ident))

    def note_alert(self, alert: dict[str, Any], t: float) -> None:
        """Keep ``alert`` (raised at event time ``t``) under its entity."""
        ent = alert.get("entity") or {}
        key = (ent.get("kind"), ent.get("id"))
        if not isinstance(key[0], str) or not isinstance(key[1], str):
            return
        rec = self.recs.get(key)  # type: ignore[arg-type]  # both parts are str (checked above)
        if rec is None:
            rec = self._add(key, t)  # type: ignore[arg-type]  # as above
        rec.first = min(rec.first, t)
        rec.last = max(rec.last, t)
        kept = compact_alert(alert, t)
        same = [i for i, a in enumerate(rec.alerts) if a.get("alert_id") == kept.get("alert_id")]
        if same:  # an escalation of an alert already kept: it replaces it
            del rec.alerts[same[0]]
            self.n_alerts -= 1
        else:
            self._hour(rec, t)[1] += 1
        rec.alerts.append(kept)
        self.n_alerts += 1
        if len(rec.alerts) > self.alerts_max:
            self.n_alerts -= len(rec.alerts) - self.alerts_max
            del rec.alerts[: len(rec.alerts) - self.alerts_max]

    def watch(self, kind: str, ident: str, t: float) -> None:
        """Count the activity of ``(kind, ident)`` from now on without an alert of its own
        here (a worker: another engine of the same worker raised the alert)."""
        if (kind, ident) not in self.recs:
            self._add((kind, ident), t)

    def _hour(self, rec: _Rec, t: float) -> list[int]:
        h = int(t // HOUR)
        slot = rec.hours.get(h)
        if slot is None:
            slot = rec.hours[h] = [0, 0]
            if len(rec.hours) > self.hours_max:
                for old in sorted(rec.hours)[: len(rec.hours) - self.hours_max]:
                    del rec.hours[old]
        return slot

    def note_event(self, e: Any) -> None:
        """Count event ``e`` (a decoded login or access) for each kept entity it names."""
        ids = self._ids
        net = e.net
        if (e.actor_id not in ids and e.account_id not in ids and e.src_ip not in ids
                and e.key_id not in ids and e.session_id not in ids and (
                    net is None or net.subnet not in ids and (
                        not self._asns or net.asn_key not in self._asns))):
            return  # None is never in ``ids``
        recs = self.recs
        for key in (("actor", e.actor_id), ("account", e.account_id), ("src_ip", e.src_ip),
                    ("key", e.key_id), ("session", e.session_id),
                    ("subnet", net.subnet if net is not None else None),
                    ("asn", net.asn_key if net is not None else None)):
            if key[1] is None:
                continue
            rec = recs.get(key)  # type: ignore[arg-type]  # key[1] is not None (skipped above)
            if rec is not None:
                ts = e.ts
                if ts > rec.last:
                    rec.last = ts
                self._hour(rec, ts)[0] += 1

    def shed(self, cap: int) -> int:
        return evict(self.recs, cap, _rec_last, None, self._gone)

    def _gone(self, key: tuple[str, str], rec: _Rec) -> None:
        self.n_alerts -= len(rec.alerts)

    def tracked(self) -> int:
        """What the engine's byte budget counts: the alerts kept (~4 KiB each with their
        evidence, :data:`detectors._cap.BYTES_PER_ENTITY` ``"explain"``) and the records."""
        return self.n_alerts + len(self.recs)


# --------------------------------------------------------------------------- the view


class ExplainError(ValueError):
    """A request the view cannot answer (an unknown kind, an empty id): one readable line."""


#: kinds a user may type for the contract's entity kinds
KIND_ALIASES = {"principal": "actor", "ip": "src_ip", "source": "src_ip", "as": "asn"}
ID_MAX = 512


def parse_entity(kind: str, ident: str) -> tuple[str, str]:
    """The contract's (kind, id) for what a user typed; :class:`ExplainError` otherwise."""
    k = KIND_ALIASES.get(kind, kind)
    if k not in ENTITY_KINDS:
        raise ExplainError(f"unknown entity kind {kind[:40]!r}: one of "
                           f"{', '.join(ENTITY_KINDS)} (or {', '.join(KIND_ALIASES)})")
    if not ident or len(ident) > ID_MAX:
        raise ExplainError(f"an entity id is 1 to {ID_MAX} characters")
    return k, ident


def explain(engines: Iterable[Any], kind: str, ident: str, directory: Any = None
            ) -> dict[str, Any]:
    """The entity page's data for ``(kind, ident)`` over ``engines`` (their ``entity_log``,
    their detectors' ``describe`` and their clock), JSON-safe. ``directory``: the identity
    directory to read (default: the first engine's)."""
    kind, ident = parse_entity(kind, ident)
    engines = list(engines)
    alerts: dict[str, dict[str, Any]] = {}
    hours: dict[int, list[int]] = {}
    last = None
    now = 0.0
    baselines: list[dict[str, Any]] = []
    for eng in engines:
        now = max(now, eng.ctx.now)
        log: EntityLog | None = getattr(eng, "entity_log", None)
        rec = log.record(kind, ident) if log is not None else None
        if rec is not None:
            last = rec.last if last is None else max(last, rec.last)
            for a in rec.alerts:
                old = alerts.get(a["alert_id"])
                if old is None or (SEVERITY_RANK.get(a.get("severity", ""), -1), a["t"]) > (
                        SEVERITY_RANK.get(old.get("severity", ""), -1), old["t"]):
                    alerts[a["alert_id"]] = a
            for h, (n_ev, n_al) in rec.hours.items():
                slot = hours.setdefault(h, [0, 0])
                slot[0] += n_ev
                slot[1] += n_al
        for det in eng.detectors.values():
            describe = getattr(det, "describe", None)
            if describe is None:
                continue
            try:
                lines = describe(kind, ident)
            except Exception:  # a detector's bug must not take the page down
                lines = [{"detector": det.id, "error": "this detector's baseline failed"}]
            baselines.extend(lines)
    if directory is None and engines:
        directory = engines[0].ctx.directory
    ordered = sorted(alerts.values(), key=lambda a: a["t"], reverse=True)
    incidents = sorted({a["incident_id"] for a in ordered
                        if isinstance(a.get("incident_id"), str)})
    latest_by_detector: dict[str, dict[str, Any]] = {}
    for a in ordered:
        latest_by_detector.setdefault(a["detector"], a)
    return {
        "entity": {"kind": kind, "id": ident},
        "known": bool(alerts or baselines),
        "as_of": iso(now) if now else None,
        "first_alert": ordered[-1]["ts"] if ordered else None,
        "last_seen": iso(last) if last is not None else None,
        "alerts": ordered,
        "incidents": incidents,
        "detectors": sorted(latest_by_detector),
        "evidence": [{"detector": d, "alert_id": a["alert_id"], "lines": a["evidence"]}
                     for d, a in sorted(latest_by_detector.items())],
        "baselines": baselines,
        "identity": _identity(directory, kind, ident),
        "activity": [{"hour": iso(h * HOUR), "t": h * HOUR, "events": v[0], "alerts": v[1]}
                     for h, v in sorted(hours.items())],
    }


def _identity(directory: Any, kind: str, ident: str) -> dict[str, Any]:
    """What HR and the key store said about the entity (identity-changes)."""
    if directory is None:
        return {}
    out: dict[str, Any] = {}
    if kind in ("actor", "account"):
        status = directory.principal_status.get(ident)
        if status is not None:
            out["status"] = status[0]
            out["status_since"] = iso(status[1])
        keys = sorted(k for k, o in directory.key_owner.items() if o == ident)[:20]
        if keys:
            out["keys"] = keys
    elif kind == "key":
        if ident in directory.key_owner:
            out["owner"] = directory.key_owner[ident]
        if ident in directory.key_issued:
            out["issued"] = iso(directory.key_issued[ident])
        if ident in directory.key_revoked:
            out["revoked"] = iso(directory.key_revoked[ident])
    elif kind == "session" and ident in directory.session_revoked:
        out["revoked"] = iso(directory.session_revoked[ident])
    return out
