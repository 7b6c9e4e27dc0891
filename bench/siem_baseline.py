"""accesswatch against SIEM-style rules on the same simulated events.

Run on purpose:  .venv/bin/python bench/siem_baseline.py [--seeds 3] [--customers 2000]

The baseline is what a SIEM or the commercial anchors commonly run on this telemetry, stated
generously (no learning period, no ingestion delay; only the schedule's granularity):

- ``brute_force``: >= 10 failed logins from one source address in a 5-minute scheduled run
  (the classic Sigma / Elastic rule);
- ``new_country_login``: a successful login of an account from a country it never logged in
  from before in the stream (Defender's "activity from infrequent country", minus its 7-day
  learning period);
- ``impossible_travel_login``: two successful logins of one account from different countries
  less than 1 hour apart (the usual login-based rule);
- ``access_volume``: an actor's data-access requests in a 15-minute bucket exceed 3 standard
  deviations above its own mean of earlier buckets and 50 requests (an Elastic ML ``high_count``
  job by user with a 15-minute bucket span, minus its learning period).

Scheduled rules alert at the end of the run (5 min) or bucket (15 min) that holds the evidence.
For each attack, printed side by side: detected or not, time to first alert, and distinct customer
accounts the attack had touched by then, for accesswatch (every detector) and for the baseline.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections import defaultdict
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from detectors.engine import Engine  # noqa: E402
from detectors.events import Event, decode_obj  # noqa: E402
from detectors.geo import default_geo  # noqa: E402
from simulation import ATTACKS, SimConfig, simulate  # noqa: E402


class Baseline:
    """The SIEM-style rules; ``feed`` returns (rule, due_ts, event_ids) for alerts raised."""

    def __init__(self) -> None:
        self.geo = default_geo()
        self.fail_bucket: dict[tuple[str, int], list[str]] = defaultdict(list)
        self.fired_bf: set[tuple[str, int]] = set()
        self.countries: dict[str, set[str]] = defaultdict(set)
        self.last_login: dict[str, tuple[str, float]] = {}
        self.vol: dict[tuple[str, int], list[str]] = defaultdict(list)
        self.hist: dict[str, list[int]] = defaultdict(list)
        self.cur_bucket: dict[str, int] = {}

    def feed(self, e: Event) -> list[tuple[str, float, list[str]]]:
        out: list[tuple[str, float, list[str]]] = []
        if e.kind == "login":
            country = e.country or self.geo.lookup(e.src_ip).country
            if e.outcome == "failure":
                b = int(e.ts // 300)
                ids = self.fail_bucket[(e.src_ip, b)]
                ids.append(e.event_id)
                if len(ids) >= 10 and (e.src_ip, b) not in self.fired_bf:
                    self.fired_bf.add((e.src_ip, b))
                    out.append(("brute_force", (b + 1) * 300.0, ids[-10:]))
            else:
                seen = self.countries[e.account_id]
                if seen and country not in seen and country != "??":
                    out.append(("new_country_login", e.ts, [e.event_id]))
                prev = self.last_login.get(e.account_id)
                if prev and prev[0] != country and e.ts - prev[1] < 3600 and country != "??":
                    out.append(("impossible_travel_login", e.ts, [e.event_id]))
                seen.add(country)
                self.last_login[e.account_id] = (country, e.ts)
        elif e.kind == "access":
            actor = e.actor_id
            b = int(e.ts // 900)
            cur = self.cur_bucket.get(actor)
            if cur is not None and cur != b:
                self.hist[actor].append(len(self.vol.pop((actor, cur), [])))
            self.cur_bucket[actor] = b
            ids = self.vol[(actor, b)]
            ids.append(e.event_id)
            h = self.hist[actor]
            if len(ids) > 50 and h:
                mean = sum(h) / len(h)
                sd = math.sqrt(sum((x - mean) ** 2 for x in h) / len(h))
                if len(ids) > mean + 3 * sd and len(ids) == max(51, int(mean + 3 * sd) + 1):
                    out.append(("access_volume", (b + 1) * 900.0, ids[-5:]))
        return out


def run(attack: str, seed: int, customers: int) -> dict[str, Any]:
    sim = simulate(SimConfig(seed=seed, customers=customers, attacks=(attack,)))
    t = sim.truth[0]
    ids = set(t["event_ids"])
    ents = {x for v in t["entities"].values() for x in v}
    start = decode_obj({"event_id": "x", "ts": t["start_ts"], "change": "key_revoked",
                        "key_id": "x"}).ts  # type: ignore[union-attr]
    eng, base = Engine(), Baseline()
    victims: set[str] = set()
    res: dict[str, Any] = {"aw": None, "siem": None}
    pending: list[tuple[float, str, list[str]]] = []  # scheduled baseline alerts not yet due
    for obj in sim.events:
        e = decode_obj(obj)
        if not isinstance(e, Event):
            continue
        if e.event_id in ids and e.subject_id:
            victims.add(e.subject_id)
        while pending and pending[0][0] <= e.ts and res["siem"] is None:
            due, rule, _ = pending.pop(0)
            res["siem"] = (rule, due - start, len(victims))
        for rule, due, evids in base.feed(e):
            if any(x in ids for x in evids):
                pending.append((due, rule, evids))
                pending.sort()
        alerts, _ = eng.process(e)
        for a in alerts:
            hit = set(a["event_ids"]) & ids or a["entity"]["id"] in ents
            if hit and res["aw"] is None:
                res["aw"] = (a["detector"], max(0.0, e.ts - start), len(victims))
    if res["siem"] is None and pending:
        due, rule, _ = pending[0]
        res["siem"] = (rule, due - start, len(victims))
    return res


def fmt(r: tuple[str, float, int] | None) -> str:
    if r is None:
        return "not detected"
    rule, secs, exposed = r
    when = f"{secs:.0f}s" if secs < 120 else f"{secs / 60:.1f} min"
    return f"{when}, {exposed} accounts exposed ({rule})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--customers", type=int, default=2000)
    args = ap.parse_args()
    print("| attack | seed | accesswatch: first alert | SIEM-style rules: first alert |")
    print("|---|---|---|---|")
    for attack in ATTACKS:
        for seed in range(1, args.seeds + 1):
            r = run(attack, seed, args.customers)
            print(f"| {attack} | {seed} | {fmt(r['aw'])} | {fmt(r['siem'])} |", flush=True)


if __name__ == "__main__":
    main()
