"""Combiner vs repartition: messages on the partials topic per input event, and engine cost.

Runs the simulator's traffic through N engines routed as the producer keys it (murmur2 of
actor / account id), exchanging bulk_lookup's window views in memory as the worker does
through ``<app_id>-partials`` (JSON via orjson, key ``kind|digest``). Prints, per N: input
events, views sent, views per input event and bytes per view, the CPU time per input event of
the engines plus the view encoding and scoring, and the alerts. A repartition by entity would
send every access event once more (1 message per event, more when one event feeds a source,
subnet, ASN and key view).

    /work/venv/bin/python bench/bench_combiner.py --customers 20000 --hours 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import orjson  # noqa: E402
from kafka.partitioner.default import murmur2  # noqa: E402

from detectors.engine import Engine, EngineConfig  # noqa: E402
from simulation import SimConfig, simulate  # noqa: E402
from streams.combine import REMOTE_KINDS, partial_key  # noqa: E402
from streams.produce import classify  # noqa: E402


def _part(key: bytes, n: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % n


def run(events: list[dict[str, Any]], n: int, combiner: bool) -> dict[str, Any]:
    cfg = EngineConfig(remote_kinds=REMOTE_KINDS if combiner else ())
    senders = [Engine(cfg) for _ in range(n)]
    scorers = [Engine(EngineConfig(detectors=("bulk_lookup",))) for _ in range(n)]
    routes = []
    for e in events:
        kind, key = classify(e)
        routes.append(tuple(range(n)) if kind == "identity" else (_part(key, n),))  # type: ignore[arg-type]
    lines = [orjson.dumps(e) for e in events]
    views = nbytes = 0
    alerts: list[dict[str, Any]] = []
    t0 = time.process_time()
    for line, targets in zip(lines, routes, strict=True):
        for i in targets:
            alerts.extend(senders[i].process_line(line)[0])
            if combiner:
                for m in senders[i].drain_partials():
                    raw = orjson.dumps(m)
                    views += 1
                    nbytes += len(raw)
                    q = _part(partial_key(m), n)
                    alerts.extend(scorers[q].observe_partial(orjson.loads(raw)))
    for s in senders:
        alerts.extend(s.flush())
        for m in s.drain_partials():
            views += 1
            alerts.extend(scorers[_part(partial_key(m), n)].observe_partial(m))
    cpu = time.process_time() - t0
    access = sum(s.stats["access"] for s in senders)
    bulk = {(a["entity"]["kind"], a["entity"]["id"]) for a in alerts
            if a["detector"] == "bulk_lookup" and a["entity"]["kind"] in REMOTE_KINDS}
    return {"n": n, "combiner": combiner, "events": len(events), "access": access,
            "views": views, "views_per_event": views / len(events),
            "bytes_per_view": nbytes / max(views, 1), "us_per_event": cpu / len(events) * 1e6,
            "source_entities_alerted": len(bulk),
            "bulk_source_alert_ids": len({a["alert_id"] for a in alerts
                                          if a["detector"] == "bulk_lookup"
                                          and a["entity"]["kind"] in REMOTE_KINDS})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=20000)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--partitions", default="1,2,4")
    args = ap.parse_args()
    sim = simulate(SimConfig(seed=args.seed, customers=args.customers, hours=args.hours,
                             attacks=("coupang",), attack_start_hour=args.hours / 4))
    events = sim.events
    print(f"{len(events)} events ({args.customers} customers, {args.hours:g} h, coupang)")
    for n in (int(x) for x in args.partitions.split(",")):
        for comb in (False, True):
            r = run(events, n, comb)
            print(f"N={n} {'combiner' if comb else 'per-partition'}: "
                  f"{r['views']} views = {r['views_per_event']:.4f}/event "
                  f"({r['bytes_per_view']:.0f} B each), {r['us_per_event']:.1f} us/event CPU, "
                  f"bulk_lookup source alerts: {r['source_entities_alerted']} entities, "
                  f"{r['bulk_source_alert_ids']} alert ids")


if __name__ == "__main__":
    main()
