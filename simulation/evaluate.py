"""Scoring for `accesswatch evaluate`: detection figures on simulated attacks over several seeds.

For each attack kind and seed: simulate a day of normal traffic with the attack injected, replay
it through the engine (every detector on) in stream order, and attribute each alert to the attack
when its event ids or its entity belong to the attack's ground truth. Reported per attack:

- detected — whether any alert was attributed, and by which detectors;
- time to detect — first attributed alert's emission (event time of the event being processed
  when the engine emitted it) minus the attack's first event;
- exposed — distinct customer accounts the attack had touched when the first *critical* alert
  was emitted (a page);
- pages — critical alerts attributed to the attack;
- for takeovers / impossible journeys: how many of the ground-truth accounts got their own alert.

Normal-only days give false pages (critical alerts not attributed to any attack) per 1,000
active principals per simulated day, per detector, and false warnings likewise.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from detectors.engine import Engine
from detectors.events import Event, decode_obj

# The targets from the detector-catalogue issue, checked and printed by `accesswatch evaluate`.
TARGETS = {
    "coupang": ("exposed", 50),
    "coupang_predating": ("exposed", 50),
    "coupang_active_key": ("exposed", 50),
    "insider": ("exposed", 400),
    "departed_key": ("exposed", 1),
    "terminated_session": ("exposed", 1),
}
COVERAGE_TARGETS = {"stuffing": 0.8, "impossible_travel": 10 / 12}
# Which ground-truth accounts must each get their own alert: the simulator's params name them.
COVER_PARAM = {"stuffing": "takeovers", "impossible_travel": "accounts", "spray": "successes"}
FALSE_PAGES_TARGET = 1.0  # per 1,000 active principals per day


@dataclass
class AttackResult:
    attack: str
    seed: int
    detected: bool = False
    detectors: Counter[str] = field(default_factory=Counter)
    ttd: float | None = None
    exposed: int | None = None
    pages: int = 0
    covered: int = 0
    cover_total: int = 0
    expected: tuple[str, ...] = ()
    det_ttd: dict[str, float] = field(default_factory=dict)
    det_exposed: dict[str, int] = field(default_factory=dict)
    det_pages: Counter[str] = field(default_factory=Counter)


@dataclass
class RunResult:
    attacks: list[AttackResult]
    false_pages: Counter[str]
    false_warnings: Counter[str]
    principals: int
    days: float
    events: int
    seconds: float


def _truth_index(truth: list[dict[str, Any]]) -> tuple[dict[str, int], list[set[str]]]:
    by_event: dict[str, int] = {}
    entities: list[set[str]] = []
    for i, t in enumerate(truth):
        for eid in t.get("event_ids", []):
            by_event[eid] = i
        ents: set[str] = set()
        for ids in (t.get("entities") or {}).values():
            ents.update(ids)
        entities.append(ents)
    return by_event, entities


def run_one(attacks: tuple[str, ...], seed: int, customers: int, hours: float) -> RunResult:
    from simulation import SimConfig, simulate

    sim = simulate(SimConfig(seed=seed, customers=customers, hours=hours, attacks=attacks))
    truth = sim.truth
    by_event, entities = _truth_index(truth)
    results = [
        AttackResult(t["attack"], seed, expected=tuple(t.get("expected_detectors", ())))
        for t in truth
    ]
    starts = [_ts(t["start_ts"]) for t in truth]
    victims: list[set[str]] = [set() for _ in truth]
    cover_sets = [set((t.get("params") or {}).get(COVER_PARAM.get(t["attack"], ""), []))
                  for t in truth]
    covered: list[set[str]] = [set() for _ in truth]
    for r, cs in zip(results, cover_sets, strict=True):
        r.cover_total = len(cs)
    eng = Engine()
    false_pages: Counter[str] = Counter()
    false_warn: Counter[str] = Counter()
    principals: set[str] = set()

    def attribute(alerts: list[dict[str, Any]], now: float) -> None:
        _attribute(alerts, now, by_event, entities, results, starts, victims, cover_sets,
                   covered, false_pages, false_warn)

    t0 = time.process_time()
    now = 0.0
    for obj in sim.events:
        e = decode_obj(obj)
        if not isinstance(e, Event):
            continue
        now = max(now, e.ts)
        i = by_event.get(e.event_id)
        if i is not None and e.subject_id is not None:
            victims[i].add(e.subject_id)
        elif i is None and e.principal is not None:
            principals.add(e.principal)
        alerts, _ = eng.process(e)
        attribute(alerts, now)
    attribute(eng.flush(), now)
    for r, c in zip(results, covered, strict=True):
        r.covered = len(c)
    return RunResult(
        results,
        false_pages,
        false_warn,
        len(principals),
        hours / 24.0,
        len(sim.events),
        time.process_time() - t0,
    )


def _ts(v: Any) -> float:
    if isinstance(v, (int, float)):
        return float(v)
    from detectors.events import parse_ts

    return parse_ts(v)


def _attribute(
    alerts: list[dict[str, Any]],
    now: float,
    by_event: dict[str, int],
    entities: list[set[str]],
    results: list[AttackResult],
    starts: list[float],
    victims: list[set[str]],
    cover_sets: list[set[str]],
    covered: list[set[str]],
    false_pages: Counter[str],
    false_warn: Counter[str],
) -> None:
    for a in alerts:
        idx = {by_event[x] for x in a["event_ids"] if x in by_event}
        if not idx:
            idx = {i for i, ents in enumerate(entities) if a["entity"]["id"] in ents}
        if not idx:
            if a["severity"] == "critical":
                false_pages[a["detector"]] += 1
            elif a["severity"] == "warning":
                false_warn[a["detector"]] += 1
            continue
        for i in idx:
            r = results[i]
            r.detected = True
            r.detectors[a["detector"]] += 1
            d = a["detector"]
            if r.ttd is None:
                r.ttd = max(0.0, now - starts[i])
            r.det_ttd.setdefault(d, max(0.0, now - starts[i]))
            if a["severity"] == "critical":
                r.pages += 1
                r.det_pages[d] += 1
                r.det_exposed.setdefault(d, len(victims[i]))
                if r.exposed is None:
                    r.exposed = len(victims[i])
            if a["entity"]["id"] in cover_sets[i]:
                covered[i].add(a["entity"]["id"])
