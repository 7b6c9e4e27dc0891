"""Score the product, as a black box, on the red-team generator's scenarios.

For each scenario and seed: generate the events (``simulation.redteam``), run
``accesswatch replay`` on them as a subprocess, and match its alerts to the ground truth.

Matching uses only the alert contract:

- an alert belongs to an attack if one of its ``event_ids`` is one of the attack's events, or
  if its ``entity`` is one of the attack's entities and its ``ts`` is not earlier than the
  attack's start. Entities: ``account`` / ``actor`` / ``key`` / ``session`` by id; ``src_ip``
  by address (IPv6 forms that carry an IPv4 address count as it); ``subnet`` when the network
  (/16 or narrower for IPv4, /32 or narrower for IPv6) contains one of the attack's addresses.
  ``asn`` alerts count through their ``event_ids`` only.
- a page is an alert of severity warning or critical; distinct ``alert_id`` s are counted once.
- when a page was raised: its ``ts``, or later if ``replay`` wrote it after an alert whose
  ``ts`` is later (``replay`` writes alerts as they are raised, so a page written after an
  alert of 14:00 was not raised before 14:00; alert times beyond the file's last day are left
  out of that bound).
- victims exposed before a page: customers whose first exposure by the attack is strictly
  earlier than the time the page was raised (an export exposes as many customers as its
  ``records``).
- false pages: on attack-free traffic, distinct alert ids that reached warning or critical,
  per 1,000 active principals per day (a principal is active on a day if it logs in or
  makes a request that day, days counted from the start of the file).

Usage: ``accesswatch evaluate --set redteam [--seeds N]``, or ``python bench/redteam_eval.py
[--seeds 3] [--scenarios a,b] [--json] [--keep DIR]``
(``--from-json FILE`` prints the table of an earlier ``--json`` run).
No broker is needed.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from simulation import redteam

PAGE = ("warning", "critical")


def _accesswatch() -> str:
    here = Path(sys.executable).with_name("accesswatch")
    return str(here) if here.exists() else (shutil.which("accesswatch") or "accesswatch")


def _ts(v) -> float:
    if isinstance(v, int | float):
        return float(v)
    return datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp()


def _ip(s: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address an IP string stands for, IPv4 inside IPv6 forms unwrapped."""
    try:
        a = ipaddress.ip_address(s)
    except ValueError:
        return None
    if isinstance(a, ipaddress.IPv6Address):
        if a.ipv4_mapped is not None:
            return a.ipv4_mapped
        if a.sixtofour is not None:
            return a.sixtofour
        if a in ipaddress.ip_network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(a) & 0xFFFFFFFF)
        if int(a) >> 32 == 0 and int(a) > 1:  # IPv4-compatible ::a.b.c.d
            return ipaddress.IPv4Address(int(a))
    return a


def replay(path: str, rejects: str) -> tuple[list[dict], dict]:
    t = time.perf_counter()
    proc = subprocess.run(
        [_accesswatch(), "replay", path, "--rejects", rejects],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"accesswatch replay failed ({proc.returncode}): {proc.stderr[-2000:]}")
    alerts = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    m = re.search(r"rejected:\s*([\d,]+)", proc.stderr)
    summary = {
        "rejected": int(m.group(1).replace(",", "")) if m else None,
        "seconds": round(time.perf_counter() - t, 2),
        "stderr": proc.stderr.strip(),
    }
    return alerts, summary


class Matcher:
    """Does an alert belong to an attack (see the module docstring)?"""

    def __init__(self, attack: dict):
        self.start = attack["start"]
        self.event_ids = set(attack["event_ids"])
        self.ids: dict[str, set[str]] = {}
        self.ips: set = set()
        for kind, ident in attack["entities"]:
            if kind == "src_ip":
                a = _ip(ident)
                if a is not None:
                    self.ips.add(a)
            else:
                self.ids.setdefault(kind, set()).add(ident)

    def __call__(self, alert: dict) -> bool:
        if self.event_ids.intersection(alert.get("event_ids") or ()):
            return True
        if _ts(alert["ts"]) < self.start:
            return False
        ent = alert.get("entity") or {}
        kind, ident = ent.get("kind"), str(ent.get("id"))
        if kind == "src_ip":
            return _ip(ident) in self.ips
        if kind == "subnet":
            try:
                net = ipaddress.ip_network(ident, strict=False)
            except ValueError:
                return False
            if net.prefixlen < (16 if net.version == 4 else 32):
                return False
            return any(a.version == net.version and a in net for a in self.ips)
        return ident in self.ids.get(kind, ())


def raised_at(alerts: list[dict], horizon: float) -> list[float]:
    """Each alert's time of raising: its ts, or the latest earlier-written ts up to horizon."""
    out, seen = [], float("-inf")
    for a in alerts:
        t = _ts(a["ts"])
        out.append(max(t, seen))
        if t <= horizon:
            seen = max(seen, t)
    return out


def score_attack(attack: redteam.Attack, truth: dict, alerts: list[dict], horizon: float) -> dict:
    match = Matcher(truth)
    when = raised_at(alerts, horizon)
    matched = [(a, t) for a, t in zip(alerts, when, strict=True) if match(a)]
    pages = [(a, t) for a, t in matched if a["severity"] in PAGE]
    crit = [(a, t) for a, t in matched if a["severity"] == "critical"]
    first_w = min((t for _, t in pages), default=None)
    first_c = min((t for _, t in crit), default=None)
    # how long after its own ts the first page was written (0 when written in time)
    late = min(pages, key=lambda p: p[1], default=None)
    total = attack.exposed_before(None)
    return {
        "victims": total,
        "events": len(attack.event_ids),
        "warned": first_w is not None,
        "critical": first_c is not None,
        "first_warning_ts": first_w,
        "first_critical_ts": first_c,
        "before_warning": attack.exposed_before(first_w) if first_w is not None else total,
        "before_critical": attack.exposed_before(first_c) if first_c is not None else total,
        "first_page_written_late_s": round(late[1] - _ts(late[0]["ts"]), 1) if late else None,
        "alerts_matched": len({a["alert_id"] for a, _ in matched}),
        "detectors": sorted({f"{a['detector']}:{a['severity']}" for a, _ in pages}),
    }


def score_normal(gen: redteam.Generated, alerts: list[dict]) -> dict:
    days: dict[int, set[str]] = {}
    for ev in gen.events:
        who = ev.get("account_id") or ev.get("actor_id")
        if who is None:
            continue
        d = int((_ts(ev["ts"]) - gen.start) // redteam.DAY)
        days.setdefault(d, set()).add(who)
    principal_days = sum(len(v) for v in days.values())
    paged: dict[str, dict] = {}
    for a in alerts:
        if a["severity"] in PAGE:
            paged.setdefault(a["alert_id"], a)
    by_det: dict[str, int] = {}
    for a in paged.values():
        by_det[a["detector"]] = by_det.get(a["detector"], 0) + 1
    return {
        "principal_days": principal_days,
        "days": len(days),
        "false_pages": len(paged),
        "per_1000_principal_days": round(1000 * len(paged) / max(1, principal_days), 3),
        "by_detector": dict(sorted(by_det.items())),
    }


def run_one(scenario: str, seed: int, workdir: str) -> dict:
    gen = redteam.generate(scenario, seed)
    path = os.path.join(workdir, f"{scenario}-{seed}.jsonl")
    redteam.write(gen, path, os.path.join(workdir, f"{scenario}-{seed}.truth.json"))
    rejects = os.path.join(workdir, f"{scenario}-{seed}.rejects.jsonl")
    alerts, summary = replay(path, rejects)
    with open(os.path.join(workdir, f"{scenario}-{seed}.alerts.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(a) + "\n" for a in alerts)
    out = {
        "scenario": scenario,
        "seed": seed,
        "events": len(gen.events),
        "rejected": summary["rejected"],
        "replay_seconds": summary["seconds"],
    }
    if gen.attacks:
        out["attack"] = score_attack(gen.attacks[0], gen.attacks[0].to_json(), alerts, gen.end)
        decoys = gen.attacks[0].decoys
        if decoys:
            rejected_ids = set()
            with open(rejects, encoding="utf-8") as f:
                for line in f:
                    raw = json.loads(line).get("raw", "")
                    try:
                        rejected_ids.add(json.loads(raw).get("event_id"))
                    except (ValueError, AttributeError):
                        pass
            out["attack"]["decoys_rejected"] = f"{len(decoys & rejected_ids)}/{len(decoys)}"
    else:
        out["normal"] = score_normal(gen, alerts)
    return out


def _cell(vals: list) -> str:
    return " / ".join(str(v) for v in vals)


def table(results: list[dict]) -> str:
    by: dict[str, list[dict]] = {}
    for r in results:
        by.setdefault(r["scenario"], []).append(r)
    lines = [
        "| attack | victims (per seed) | warned | exposed before 1st warning | critical "
        "| exposed before 1st critical | pages by | rejected lines |",
        "|---|---|---|---|---|---|---|---|",
    ]
    normal = []
    for name, rs in by.items():
        if "normal" in rs[0]:
            normal = rs
            continue
        at = [r["attack"] for r in rs]
        dets = sorted({d for a in at for d in a["detectors"]})
        rej = _cell([r["rejected"] for r in rs])
        if at[0].get("decoys_rejected"):
            rej += " (decoy rejected: " + _cell([a["decoys_rejected"] for a in at]) + ")"
        lines.append(
            f"| {name} | {_cell([a['victims'] for a in at])} "
            f"| {sum(a['warned'] for a in at)}/{len(at)} "
            f"| {_cell([a['before_warning'] if a['warned'] else 'never' for a in at])} "
            f"| {sum(a['critical'] for a in at)}/{len(at)} "
            f"| {_cell([a['before_critical'] if a['critical'] else 'never' for a in at])} "
            f"| {', '.join(dets) or '-'} | {rej} |"
        )
    if normal:
        nm = [r["normal"] for r in normal]
        pd = sum(n["principal_days"] for n in nm)
        fp = sum(n["false_pages"] for n in nm)
        det: dict[str, int] = {}
        for n in nm:
            for k, v in n["by_detector"].items():
                det[k] = det.get(k, 0) + v
        lines += [
            "",
            "| attack-free traffic | seeds | principal-days | false pages (per seed) "
            "| false pages per 1,000 principals per day | pages by detector |",
            "|---|---|---|---|---|---|",
            f"| normal | {len(nm)} | {pd:,} | {_cell([n['false_pages'] for n in nm])} "
            f"| {1000 * fp / max(1, pd):.2f} | "
            + ", ".join(f"{k} {v}" for k, v in sorted(det.items()))
            + " |",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3, help="seeds 1..N (default 3)")
    ap.add_argument("--scenarios", help="comma-separated (default: normal and every attack)")
    ap.add_argument("--json", action="store_true", help="JSON lines, one per scenario and seed")
    ap.add_argument("--keep", help="keep the generated files and rejects in this directory")
    ap.add_argument("--from-json", metavar="FILE", help="print the table of an earlier --json run")
    args = ap.parse_args(argv)
    if args.from_json:
        with open(args.from_json, encoding="utf-8") as f:
            print(table([json.loads(line) for line in f if line.strip()]))
        return 0
    names = args.scenarios.split(",") if args.scenarios else ["normal", *redteam.ATTACKS]
    for n in names:
        if n not in redteam.SCENARIOS:
            ap.error(f"unknown scenario {n!r}; known: {', '.join(redteam.SCENARIOS)}")
    results = []
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="redteam-")
    workdir = args.keep or tmp.name
    os.makedirs(workdir, exist_ok=True)
    try:
        for name in names:
            for seed in range(1, args.seeds + 1):
                r = run_one(name, seed, workdir)
                results.append(r)
                if args.json:
                    print(json.dumps(r), flush=True)
                else:
                    print(f"  {name} seed {seed}: {r['events']:,} events, "
                          f"replay {r['replay_seconds']}s", file=sys.stderr, flush=True)  # fmt: skip
    finally:
        if tmp is not None:
            tmp.cleanup()
    if not args.json:
        print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
