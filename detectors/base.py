"""What every detector is: metadata, the events it wants, findings it returns.

A detector is a small class with hyper-parameters in ``__init__`` and plain-object state. The
engine calls ``on_login`` / ``on_access`` / ``on_identity`` for the kinds listed in ``wants``
and ``on_time`` when event time passes a deadline the detector asked for. Each returns a list
of :class:`Finding` (usually empty). The engine turns findings into alerts with episode ids.
"""

from __future__ import annotations

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
    return {"at": at, "origin": origin, "seq": seq,
            "finding": {k: getattr(f, k) for k in _FINDING_FIELDS}}


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
