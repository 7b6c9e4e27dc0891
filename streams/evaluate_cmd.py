"""`accesswatch evaluate` — detection results over several seeds, with the targets met or
missed, on one or every set of labelled traffic (``--set``):

- ``simulate`` (default): the tables of :mod:`simulation.evaluate` (the engine over the project's
  own simulated days with attacks, every alert attributed against the ground truth);
- ``redteam``: red team A (:mod:`simulation.redteam_eval`; docs/redteam.md), scored as a black box
  through ``accesswatch replay``;
- ``redteam_b``: red team B (:mod:`simulation.redteam_b_eval`; docs/redteam_b.md), likewise;
- ``redteam_c``: red team C (:mod:`simulation.redteam_c_eval`; docs/redteam_c.md), likewise;
- ``all``: the four, one after the other (the red-team sets take minutes each per seed).

The red-team generators were written without reading the detectors; their harnesses are
also runnable as ``python bench/redteam_eval.py`` / ``python bench/redteam_b_eval.py`` /
``python bench/redteam_c_eval.py`` with more options (``--keep``, ``--json``, ``--from-json``)."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import sys
from collections import Counter, defaultdict

from detectors.engine import Engine
from simulation.evaluate import (
    COVERAGE_TARGETS,
    FALSE_PAGES_TARGET,
    TARGETS,
    AttackResult,
    run_one,
)

from .replay import InputError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=int, default=3, help="seeds per attack kind (default 3)")
    p.add_argument("--customers", type=int, default=2000, help="customers simulated per run")
    p.add_argument("--hours", type=float, default=24.0, help="simulated hours per run")
    p.add_argument("--attack", action="append", help="only these attack kinds (repeatable)")
    p.add_argument("--markdown", metavar="FILE", help="also write the tables as Markdown here")
    p.add_argument("--set", dest="sets", choices=SETS, default="simulate",
                   help="which labelled traffic: the project's simulator (default), red team A, "
                        "B or C, or all four")


SETS = ("simulate", "redteam", "redteam_b", "redteam_c", "all")
_TITLES = {"redteam_b": "Red team B (docs/redteam_b.md)", "redteam_c": "Red team C (docs/redteam_c.md)"}


def _fmt_s(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}s" if v < 120 else f"{v / 60:.1f}min"


def run(args: argparse.Namespace) -> int:
    sets = SETS[:-1] if args.sets == "all" else (args.sets,)
    if args.attack and sets != ("simulate",):
        raise InputError("--attack names the simulator's attack kinds: use it with --set simulate")
    if args.seeds < 1:
        raise InputError("--seeds >= 1 please")
    out: list[str] = []
    for name in sets:
        if name == "simulate":
            _simulate(args, out)
        else:
            _redteam(name, args.seeds, out)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(out) + "\n")
    return 0


def _redteam(name: str, seeds: int, out: list[str]) -> None:
    """A red team's harness (generate, ``accesswatch replay``, score); its table is printed and
    kept for ``--markdown``."""
    harness = importlib.import_module(f"simulation.{name}_eval")
    if name == "redteam":
        argv = ["--seeds", str(seeds)]
        title = "Red team A (docs/redteam.md)"
    else:
        argv = ["--seeds", ",".join(str(s) for s in range(1, seeds + 1))]
        title = _TITLES[name]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        harness.main(argv)
    lines = [f"{title}, seeds 1..{seeds}:", "", *buf.getvalue().rstrip().splitlines()]
    if out:
        lines.insert(0, "")
    out.extend(lines)
    print("\n".join(lines), flush=True)


def _simulate(args: argparse.Namespace, out: list[str]) -> None:
    """The simulator's tables (printed, and kept in ``out`` for ``--markdown``)."""
    try:
        from simulation import ATTACKS
    except ImportError:
        raise InputError("the simulator is not available in this build") from None
    kinds = args.attack or list(ATTACKS)
    bad = [k for k in kinds if k not in ATTACKS]
    if bad:
        raise InputError(f"unknown attack(s): {', '.join(bad)}; try: {', '.join(ATTACKS)}")
    if args.customers < 50 or args.hours <= 0:
        raise InputError("--customers >= 50 and --hours > 0 please")

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
