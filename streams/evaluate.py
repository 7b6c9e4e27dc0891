"""`accesswatch evaluate` — detection figures on simulated attacks over several seeds.

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

import argparse
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from detectors.engine import Engine
from detectors.events import Event, decode_obj

from .replay import InputError

# The targets from the detector-catalogue issue, checked and printed by this command.
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
    from detectors.simulate import SimConfig, simulate

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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=int, default=3, help="seeds per attack kind (default 3)")
    p.add_argument("--customers", type=int, default=2000, help="customers simulated per run")
    p.add_argument("--hours", type=float, default=24.0, help="simulated hours per run")
    p.add_argument("--attack", action="append", help="only these attack kinds (repeatable)")
    p.add_argument("--markdown", metavar="FILE", help="also write the tables as Markdown here")


def _fmt_s(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}s" if v < 120 else f"{v / 60:.1f}min"


def run(args: argparse.Namespace) -> int:
    try:
        from detectors.simulate import ATTACKS
    except ImportError:
        raise InputError("the simulator is not available in this build") from None
    kinds = args.attack or list(ATTACKS)
    bad = [k for k in kinds if k not in ATTACKS]
    if bad:
        raise InputError(f"unknown attack(s): {', '.join(bad)}; try: {', '.join(ATTACKS)}")
    if args.seeds < 1 or args.customers < 50 or args.hours <= 0:
        raise InputError("--seeds >= 1, --customers >= 50 and --hours > 0 please")
    out: list[str] = []

    def say(line: str = "") -> None:
        out.append(line)
        print(line, flush=True)

    per_attack: dict[str, list[AttackResult]] = defaultdict(list)
    fp: Counter[str] = Counter()
    fw: Counter[str] = Counter()
    principal_days = 0.0
    events = 0
    seconds = 0.0
    runs: list[tuple[tuple[str, ...], int]] = [((k,), s) for k in kinds for s in range(1, args.seeds + 1)]
    runs += [((), 100 + s) for s in range(1, args.seeds + 1)]  # normal-only days
    for i, (attacks, seed) in enumerate(runs, 1):
        print(
            f"\r  run {i}/{len(runs)}: {attacks[0] if attacks else 'normal'} seed {seed}   ",
            end="",
            file=sys.stderr,
            flush=True,
        )
        rr = run_one(attacks, seed, args.customers, args.hours)
        for r in rr.attacks:
            per_attack[r.attack].append(r)
        fp.update(rr.false_pages)
        fw.update(rr.false_warnings)
        principal_days += rr.principals * rr.days
        events += rr.events
        seconds += rr.seconds
    print("\r" + " " * 60 + "\r", end="", file=sys.stderr)

    say(
        f"accesswatch evaluate: {args.seeds} seed(s) per attack, {args.customers:,} customers, "
        f"{args.hours:g} h per run, every detector on"
    )
    say()
    say(
        "| attack | detected | by detectors | time to detect | exposed before page | pages | "
        "accounts caught | target |"
    )
    say("|---|---|---|---|---|---|---|---|")
    for k in kinds:
        rs = per_attack.get(k, [])
        det = sum(r.detected for r in rs)
        dets: Counter[str] = Counter()
        for r in rs:
            dets.update(r.detectors)
        ttds = [r.ttd for r in rs if r.ttd is not None]
        exp = [r.exposed for r in rs if r.exposed is not None]
        pages = [r.pages for r in rs]
        cov = sum(r.covered for r in rs)
        tot = sum(r.cover_total for r in rs)
        target, verdict = "", ""
        if k in TARGETS:
            _, limit = TARGETS[k]
            ok = len(exp) == len(rs) and all(x <= limit for x in exp)
            target = f"page before {limit} exposed"
            verdict = "met" if ok and rs else "MISSED"
        if k in COVERAGE_TARGETS and tot:
            target = f">= {COVERAGE_TARGETS[k]:.0%} of accounts"
            verdict = "met" if cov / tot >= COVERAGE_TARGETS[k] - 1e-9 else "MISSED"
        say(
            f"| {k} | {det}/{len(rs)} | {', '.join(sorted(dets)) or '-'} | "
            f"{_fmt_s(min(ttds)) if ttds else '-'}..{_fmt_s(max(ttds)) if ttds else '-'} | "
            f"{(str(min(exp)) + '..' + str(max(exp))) if exp else 'no page'} | "
            f"{min(pages) if pages else 0}..{max(pages) if pages else 0} | "
            f"{f'{cov}/{tot}' if tot else '-'} | {target} {verdict} |"
        )
    say()
    say("Per detector (over the seeds: first alert, distinct accounts exposed at its first page, "
        "pages; * = a detector the simulator expects for this attack):")
    say()
    say("| attack | detector | detected | time to first alert | exposed at first page | pages |")
    say("|---|---|---|---|---|---|")
    for k in kinds:
        rs = per_attack.get(k, [])
        names = sorted({d for r in rs for d in r.det_ttd} | {d for r in rs for d in r.expected})
        for d in names:
            star = "*" if any(d in r.expected for r in rs) else ""
            hit = [r for r in rs if d in r.det_ttd]
            tt = [r.det_ttd[d] for r in hit]
            ex = [r.det_exposed[d] for r in rs if d in r.det_exposed]
            pg = [r.det_pages[d] for r in rs]
            say(f"| {k} | {d}{star} | {len(hit)}/{len(rs)} | "
                f"{(_fmt_s(min(tt)) + '..' + _fmt_s(max(tt))) if tt else '-'} | "
                f"{(str(min(ex)) + '..' + str(max(ex))) if ex else 'no page'} | "
                f"{min(pg)}..{max(pg)} |")
    say()
    say(
        f"Normal traffic: {principal_days:,.0f} active principal-days (normal principals of "
        f"every run, attack runs included)."
    )
    say()
    say("| detector | false pages | per 1,000 principals/day | false warnings | per 1,000/day |")
    say("|---|---|---|---|---|")
    total_fp = 0
    for d in sorted(set(Engine().detectors)):
        total_fp += fp[d]
        say(
            f"| {d} | {fp[d]} | {1000 * fp[d] / max(1.0, principal_days):.2f} | {fw[d]} | "
            f"{1000 * fw[d] / max(1.0, principal_days):.2f} |"
        )
    rate = 1000 * total_fp / max(1.0, principal_days)
    say(
        f"| **all** | {total_fp} | {rate:.2f} | {sum(fw.values())} | "
        f"{1000 * sum(fw.values()) / max(1.0, principal_days):.2f} |"
    )
    say()
    say(
        f"False pages: {rate:.2f} per 1,000 active principals per day "
        f"(target <= {FALSE_PAGES_TARGET:g}: {'met' if rate <= FALSE_PAGES_TARGET else 'MISSED'})."
    )
    say(
        f"Engine: {events:,} events in {seconds:.1f}s ({events / max(1e-9, seconds):,.0f} events/s "
        f"including decoding)."
    )
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(out) + "\n")
    return 0
