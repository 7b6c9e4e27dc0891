"""Score the product, as a black box, on red team C's scenarios (simulation/redteam_c.py).

For each scenario and seed: generate the events, run ``accesswatch replay`` on them as a
subprocess, and match its alerts to the truth file. Only the alert contract is used (the same
rules as red team B's harness, re-implemented here):

- an alert belongs to the attack if one of its ``event_ids`` is a malicious event, or if its
  ``entity`` is one of the attack's principals (account / actor), keys, sessions or sources
  (``src_ip``; ``subnet`` of /20 or narrower containing a source) and its ``ts`` is not earlier
  than the first malicious event; an alert id that ever matched belongs to the attack;
- a page is an alert of severity warning or critical; distinct ``alert_id`` s count once;
- when a page was raised: the latest ``ts`` written up to it (``replay`` writes alerts as they
  are raised, so an alert written after a later one was raised no earlier), bounded by the
  file's end;
- customers exposed before a page: the truth's exposures (a read exposes its subject once, an
  export or search exposes its ``records``) strictly before the page was raised;
- "named": some page of the attack has as entity one of the attack's principals, keys,
  sessions or sources;
- false pages: pages not belonging to the attack (all pages on ``normal``), per 1,000 active
  principals per day (a principal, ``account_id`` or ``actor_id``, is active on a day if it
  has an event that day, days counted from the file's start).

Usage: ``python bench/redteam_c_eval.py [--seeds 1,2,3] [--scenarios a,b] [--jobs 1]
[--json FILE] [--keep DIR] [--from-json FILE]``. No broker is needed.
"""

from __future__ import annotations

import argparse
import calendar
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from simulation import redteam_c

PAGE = ("warning", "critical")


def _accesswatch() -> list[str]:
    """The console script beside this interpreter, else the one on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "accesswatch")
    if os.path.exists(here):
        return [here]
    found = shutil.which("accesswatch")
    if not found:
        raise RuntimeError("accesswatch not found (install the project in this interpreter's environment)")
    return [found]


def _ts(v) -> float:
    if isinstance(v, int | float):
        return float(v)
    s = str(v)
    base = calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S"))
    m = re.match(r"\.(\d+)", s[19:])
    off = 0.0
    z = re.search(r"([+-])(\d\d):(\d\d)$", s[19:])
    if z:
        off = (1 if z.group(1) == "+" else -1) * (int(z.group(2)) * 3600 + int(z.group(3)) * 60)
    return base + (float("0." + m.group(1)) if m else 0.0) - off


def raised_at(alerts: list[dict], end: float) -> list[float]:
    out, hi = [], float("-inf")
    for a in alerts:
        hi = max(hi, _ts(a["ts"]))
        out.append(min(hi, end))
    return out


def replay(path: str, rejects: str) -> tuple[list[dict], dict]:
    t = time.perf_counter()
    proc = subprocess.run(_accesswatch() + ["replay", path, "--rejects", rejects],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"accesswatch replay failed ({proc.returncode}): {proc.stderr[-2000:]}")
    alerts = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return alerts, {"seconds": round(time.perf_counter() - t, 1)}


class Matcher:
    def __init__(self, atk: dict):
        self.ids = set(atk["event_ids"])
        self.start = _ts(atk["first_malicious"])
        self.names = set(atk["principals"]) | set(atk["keys"]) | set(atk["sessions"])
        self.sources = set(atk["sources"])
        self.src_addrs = [ipaddress.ip_address(s) for s in atk["sources"]]

    def names_attacker(self, a: dict) -> bool:
        e = a.get("entity") or {}
        kind, eid = e.get("kind"), str(e.get("id", ""))
        if kind in ("account", "actor", "key", "session"):
            return eid in self.names
        if kind == "src_ip":
            return eid in self.sources
        if kind == "subnet":
            try:
                net = ipaddress.ip_network(eid, strict=False)
            except ValueError:
                return False
            return net.prefixlen >= (20 if net.version == 4 else 32) and any(
                x.version == net.version and x in net for x in self.src_addrs)
        return False

    def __call__(self, a: dict) -> bool:
        if self.ids.intersection(a.get("event_ids") or ()):
            return True
        return _ts(a["ts"]) >= self.start and self.names_attacker(a)


def active_principal_days(lines: list[str], start: float) -> int:
    days: dict[int, set] = {}
    for line in lines:
        ev = json.loads(line)
        who = ev.get("account_id") or ev.get("actor_id")
        if who is None:
            continue
        t = _ts(ev["ts"])
        if t > start + 1000 * redteam_c.DAY:  # the clock-poisoning event (rejected)
            continue
        days.setdefault(int((t - start) // redteam_c.DAY), set()).add(who)
    return sum(len(v) for v in days.values())


def score(gen: redteam_c.Generated, alerts: list[dict]) -> dict:
    atk = gen.truth["attack"]
    when = raised_at(alerts, gen.end)
    match = Matcher(atk) if atk else None
    pages: dict[str, tuple[float, dict]] = {}
    for a, t in zip(alerts, when, strict=True):
        if a["severity"] in PAGE:
            aid = a["alert_id"]
            if aid not in pages or (a["severity"] == "critical" and pages[aid][1]["severity"] != "critical"):
                pages[aid] = (min(t, pages[aid][0]) if aid in pages else t, a)
    out: dict = {}
    false: dict[str, int] = {}
    mine: list[tuple[float, dict]] = []
    attack_ids = {a["alert_id"] for a in alerts if match and match(a)}
    for aid, (t, a) in pages.items():
        if aid in attack_ids:
            mine.append((t, a))
        else:
            false[a["detector"]] = false.get(a["detector"], 0) + 1
    pdays = active_principal_days(gen.lines, gen.start)
    out["principal_days"] = pdays
    out["alerts"] = len(alerts)
    out["false_pages"] = sum(false.values())
    out["false_per_1000_pd"] = round(1000 * out["false_pages"] / max(1, pdays), 3)
    out["false_by_detector"] = dict(sorted(false.items()))
    if atk:
        exp = [(_ts(t), n) for t, _, n in atk["exposures"]]
        total = sum(n for _, n in exp)

        def exposed_before(t):
            return sum(n for x, n in exp if x < t)

        first_warn = first_crit = None
        for a, t in zip(alerts, when, strict=True):
            if a["alert_id"] not in attack_ids or a["severity"] not in PAGE:
                continue
            first_warn = t if first_warn is None else min(first_warn, t)
            if a["severity"] == "critical":
                first_crit = t if first_crit is None else min(first_crit, t)
        info = [a for a in alerts if a["alert_id"] in attack_ids and a["severity"] == "info"]
        start = match.start
        out.update({
            "expected": atk["expected_severity"],
            "exposed_total": total,
            "first_info_s": round(_ts(info[0]["ts"]) - start) if info else None,
            "first_warning_s": round(first_warn - start) if first_warn is not None else None,
            "first_critical_s": round(first_crit - start) if first_crit is not None else None,
            "exposed_before_warning": exposed_before(first_warn) if first_warn is not None else total,
            "exposed_before_critical": exposed_before(first_crit) if first_crit is not None else total,
            "caught_warning": first_warn is not None,
            "caught_critical": first_crit is not None,
            "named": any(match.names_attacker(a) for _, a in mine),
            "attack_pages": len(mine),
            "attack_detectors": sorted({a["detector"] for _, a in mine}),
            "attack_info_detectors": sorted({a["detector"] for a in info}),
        })
    return out


def run_one(scenario: str, seed: int, workdir: str) -> dict:
    t0 = time.perf_counter()
    gen = redteam_c.generate(scenario, seed)
    path = os.path.join(workdir, f"{scenario}-{seed}.jsonl")
    redteam_c.write(gen, path, os.path.join(workdir, f"{scenario}-{seed}.truth.json"))
    gen_s = round(time.perf_counter() - t0, 1)
    rejects = os.path.join(workdir, f"{scenario}-{seed}.rejects.jsonl")
    alerts, summary = replay(path, rejects)
    with open(os.path.join(workdir, f"{scenario}-{seed}.alerts.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(a) + "\n" for a in alerts)
    reasons: dict[str, int] = {}
    with open(rejects, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)["reason"]
            reasons[r] = reasons.get(r, 0) + 1
    res = {"scenario": scenario, "seed": seed, "events": len(gen.lines), "gen_s": gen_s,
           "replay_s": summary["seconds"], "rejects": reasons}
    res.update(score(gen, alerts))
    return res


def _fmt_s(v):
    if v is None:
        return "—"
    if abs(v) < 120:
        return f"{v}s"
    if abs(v) < 7200:
        return f"{v / 60:.0f}m"
    return f"{v / 3600:.1f}h"


def table(results: list[dict]) -> str:
    by: dict[str, list[dict]] = {}
    for r in results:
        by.setdefault(r["scenario"], []).append(r)
    rows = ["| scenario | expected | exposed (total) | first warning after | exposed before warning "
            "| first critical after | exposed before critical | names attacker | attack's detectors "
            "| false pages /1000 pd (detectors) | rejected |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for sc, rs in by.items():
        rs = sorted(rs, key=lambda r: r["seed"])

        def col(k, f=str, rs=rs):
            return " / ".join(f(r.get(k)) for r in rs)

        fdet: dict[str, int] = {}
        for r in rs:
            for d, n in r["false_by_detector"].items():
                fdet[d] = fdet.get(d, 0) + n
        fp = col("false_per_1000_pd") + (" (" + ", ".join(f"{d} {n}" for d, n in fdet.items()) + ")"
                                         if fdet else "")
        rej = " / ".join(",".join(f"{k} {v}" for k, v in r["rejects"].items()) or "0" for r in rs)
        if "expected" not in rs[0]:
            rows.append(f"| {sc} | — | — | — | — | — | — | — | — | {fp} | {rej} |")
            continue
        dets = sorted({d for r in rs for d in r["attack_detectors"]})
        rows.append("| " + " | ".join([
            sc, rs[0]["expected"], col("exposed_total"), col("first_warning_s", _fmt_s),
            col("exposed_before_warning"), col("first_critical_s", _fmt_s),
            col("exposed_before_critical"), col("named", lambda v: "yes" if v else "no"),
            ", ".join(dets) or "none", fp, rej]) + " |")
    pd = sum(r["principal_days"] for r in results)
    fp = sum(r["false_pages"] for r in results)
    npd = sum(r["principal_days"] for r in results if r["scenario"] == "normal")
    nfp = sum(r["false_pages"] for r in results if r["scenario"] == "normal")
    rows.append("")
    rows.append(f"False pages: {fp} in {pd:,} principal-days over all runs "
                f"({1000 * fp / max(1, pd):.3f} per 1,000); on `normal` {nfp} in {npd:,} "
                f"({1000 * nfp / max(1, npd):.3f} per 1,000).")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--scenarios", default=",".join(redteam_c.SCENARIOS))
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--keep", help="keep the files in this directory")
    ap.add_argument("--from-json", help="print the table of an earlier --json run")
    a = ap.parse_args(argv)
    if a.from_json:
        with open(a.from_json, encoding="utf-8") as f:
            print(table(json.load(f)))
        return 0
    seeds = [int(x) for x in a.seeds.split(",")]
    work = a.keep or tempfile.mkdtemp(prefix="rtc-eval-")
    os.makedirs(work, exist_ok=True)
    jobs = [(sc, s) for s in seeds for sc in a.scenarios.split(",")]
    t0 = time.perf_counter()

    def one(j):
        r = run_one(j[0], j[1], work)
        print(f"{r['scenario']} seed {r['seed']}: {r['events']} events, gen {r['gen_s']}s, "
              f"replay {r['replay_s']}s", file=sys.stderr, flush=True)
        if not a.keep:
            for suffix in (".jsonl", ".truth.json", ".rejects.jsonl", ".alerts.jsonl"):
                try:
                    os.remove(os.path.join(work, f"{j[0]}-{j[1]}{suffix}"))
                except OSError:
                    pass
        return r

    with ThreadPoolExecutor(max_workers=a.jobs) as ex:
        results = list(ex.map(one, jobs))
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    print(table(results))
    print(f"\n{len(jobs)} runs in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
