"""What every detector is: metadata, the events it wants, findings it returns.

A detector is a small class with hyper-parameters in ``__init__`` and plain-object state. The
engine calls ``on_login`` / ``on_access`` / ``on_identity`` for the kinds listed in ``wants``
and ``on_time`` when event time passes a deadline the detector asked for. Each returns a list
of :class:`Finding` (usually empty). The engine turns findings into alerts with episode ids.

Speed (CPython 3.11, measured in docs/benchmarks.md "h-rep2"): a detector, the context and
the engine never read their own ``__dict__`` on the event path (``getattr(self, name,
default)`` for an attribute a checkpoint from before may lack). Reading an instance's
``__dict__`` turns its inline attribute values into a dict that shares its class's keys;
3.11's specialised attribute read of such a dict (``LOAD_ATTR_WITH_HINT``) then misses on
every execution, so every ``self.x`` of that object takes the generic path from then on (the
same holds for a class attribute read through an instance: set it in ``__init__`` when it is
read per event). And 3.11's ``max`` and ``min`` parse their arguments with keywords on each
call (~450 instructions): the per-event and per-view paths compare two values with ``if``
instead (``max(a, b)`` is ``b if b > a else a``, the first of equals kept, as the builtin).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .context import Context
    from .events import Event

SEVERITIES = ("info", "warning", "critical")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
ENTITY_KINDS = ("account", "actor", "src_ip", "subnet", "asn", "key", "session")
STATUSES = ("experimental", "test", "stable")


@lru_cache(maxsize=8192)
def iso(ts: float) -> str:
    """Epoch seconds to RFC 3339 UTC with milliseconds (memoised: findings repeat times such
    as when watching began or when a token was issued)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def ev(feature: str, observed: Any, baseline: Any, detail: str = "") -> dict[str, Any]:
    """One line of evidence: what was observed against what it was compared with."""
    d: dict[str, Any] = {"feature": feature, "observed": observed, "baseline": baseline}
    if detail:
        d["detail"] = detail
    return d


@dataclass(slots=True)
class Finding:
    detector: str
    entity_kind: str
    entity_id: str
    severity: str
    score: float
    summary: str
    evidence: list[dict[str, Any]]
    event_ids: list[str]
    ts: float
    extra: dict[str, Any] = field(default_factory=dict)


_FINDING_FIELDS = ("detector", "entity_kind", "entity_id", "severity", "score", "summary",
                   "evidence", "event_ids", "ts", "extra")


def finding_message(f: Finding, at: float, origin: str, seq: int) -> dict[str, Any]:
    """A finding as sent between engines (issue 17.5, ``detectors.episodes``): ``at`` (the
    engine time it was made at), ``origin`` + ``seq`` (the sending engine's life and its
    count, to drop a repeat). Here, not in ``detectors.episodes``: the engine sends, the
    builders (which import the engine) take."""
    return {"at": at, "origin": origin, "seq": seq, "finding": finding_fields(f)}


#: the summary that marks a finding as an observation (``Detector.on_observation``)
OBSERVATION = "observation"


def observation(detector: str, kind: str, entity: str, ts: float, event_id: str,
                data: dict[str, Any]) -> Finding:
    """An observation about entity (``kind``, ``entity``), JSON-safe ``data``, to be folded by
    ``detector``'s ``on_observation`` where every partition's observations of that entity
    meet. It travels as a finding (the episode builders' relay and order) but never becomes
    an alert itself."""
    return Finding(detector, kind, entity, "info", 0.0, OBSERVATION, [], [event_id], ts,
                   {OBSERVATION: data})


def is_observation(f: Finding) -> bool:
    return f.summary == OBSERVATION and OBSERVATION in f.extra


def finding_fields(f: Finding) -> dict[str, Any]:
    """A finding's fields as a JSON-safe dict (:func:`finding_from_fields` reads it back)."""
    return {k: getattr(f, k) for k in _FINDING_FIELDS}


def finding_from_fields(d: dict[str, Any]) -> Finding:
    """A finding from :func:`finding_fields`' dict, checked: between engines it is input like
    any other (ValueError when a field is missing or of the wrong type)."""
    kind, sev = d.get("entity_kind"), d.get("severity")
    if kind not in ENTITY_KINDS or sev not in SEVERITY_RANK:
        raise ValueError("finding: unknown entity kind or severity")
    ts, score = d.get("ts"), d.get("score")
    if not isinstance(ts, int | float) or not math.isfinite(ts):
        raise ValueError("finding: ts is not a finite number")
    if not isinstance(score, int | float) or not math.isfinite(score):
        raise ValueError("finding: score is not a finite number")
    for k in ("detector", "entity_id", "summary"):
        if not isinstance(d.get(k), str):
            raise ValueError(f"finding: {k} is not a string")
    ev, ids, extra = d.get("evidence"), d.get("event_ids"), d.get("extra") or {}
    if not isinstance(ev, list) or not isinstance(ids, list) or not isinstance(extra, dict):
        raise ValueError("finding: evidence, event_ids or extra of the wrong type")
    return Finding(d["detector"], kind, d["entity_id"], sev, float(score), d["summary"], ev,
                   [str(i) for i in ids], float(ts), extra)


class Detector:
    """Base class; subclasses set the class attributes and override the hooks they need."""

    id: ClassVar[str] = ""
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    severity: ClassVar[str] = "warning"  # the usual severity; findings may raise or lower it
    attack: ClassVar[tuple[str, ...]] = ()  # MITRE ATT&CK technique ids
    status: ClassVar[str] = "experimental"
    entity_kinds: ClassVar[tuple[str, ...]] = ()
    wants: ClassVar[frozenset[str]] = frozenset()
    triage: ClassVar[str] = ""  # what to check, known false positives, how to respond

    def on_login(self, e: Event, ctx: Context) -> list[Finding]:
        return []

    def on_access(self, e: Event, ctx: Context) -> list[Finding]:
        return []

    def on_identity(self, e: Event, ctx: Context) -> list[Finding]:
        return []

    def on_time(self, now: float, ctx: Context) -> list[Finding]:
        """Called when event time passes a deadline set with ``ctx.wake_at``."""
        return []

    def on_observation(self, obs: Finding, ctx: Context) -> list[Finding]:
        """An observation this detector made about an entity that is not its event's
        partition key (an ``observation`` finding, :func:`observation`), folded where that
        entity's observations meet: in the same engine when nothing is relayed (``replay``),
        else in the episode builder that owns the entity (``detectors.episodes``). Returns
        the findings it makes there."""
        return []

    def undecided(self) -> dict[tuple[str, str], float]:
        """With relayed findings (issue 17.5, h-par6): each entity (kind, id) on which this
        detector has put off a verdict (a read waiting for the login stream), with the
        earliest engine time a single engine of every event decides such a verdict at
        (:meth:`decided_for`); empty when none waits. The episode builders hold this
        detector's episode of each such entity at that time (``Engine.relay_report``), and
        only it: every other finding goes on at once."""
        return {}

    def decided_for(self, f: Finding) -> float | None:
        """The engine time a single engine of every event decides ``f`` at, when this
        detector put it off (an entity of :meth:`undecided`); None: decided when made."""
        return None

    def tracked(self) -> dict[str, int]:
        """Entities held, by kind, for the tracked-entities gauge."""
        return {}

    def warmup(self) -> float:
        """0..1: how far the detector's models have learned (1 = exact checks, no warm-up)."""
        return 1.0

    def expire(self, now: float) -> None:
        """Drop state of entities idle long enough; called every few minutes of event time."""

    def shed(self, cap: int) -> int:
        """Keep each per-entity table at most ``cap`` entries (``detectors._cap.evict``: the
        least recently seen and unflagged first); called every few thousand events. Returns
        the entities dropped."""
        return 0


def wall_clock() -> float:  # only for statistics (events/s), never for detection
    return time.perf_counter()
