"""Alert storms before and after incidents: pages per attack on simulated files.

    accesswatch simulate --seed 1 --hours 48 --attack coupang ... --out sim1.jsonl --truth t1.json
    accesswatch replay sim1.jsonl > alerts1.jsonl
    python bench/incident_figures.py alerts1.jsonl:t1.json [alerts2.jsonl:t2.json ...]

Alertmanager (deploy/alertmanager/alertmanager.yml) sends one notification per group on the
critical route when the group first has a critical alert, then an update each group_interval
while alerts join it. Before issue 18 the groups were entities (``entity_kind, entity_id``);
now they are incidents (``incident_id``). From one replay's alerts this prints, per file and
per attack: alerts, critical alerts, groups paged by entity (before) and by incident (after),
and the incidents each attack's alerts fall into. An alert belongs to an attack when one of its
event ids or its entity is in the attack's ground truth (as ``accesswatch evaluate`` does).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import orjson


def attribute(alert: dict[str, Any], truth: list[dict[str, Any]]) -> set[int]:
    ids = set(alert.get("event_ids") or ())
    hit = {i for i, t in enumerate(truth) if ids & set(t.get("event_ids") or ())}
    if hit:
        return hit
    ent = (alert.get("entity") or {}).get("id")
    return {i for i, t in enumerate(truth)
            if any(ent in v for v in (t.get("entities") or {}).values())}


def figures(alerts: list[dict[str, Any]], truth: list[dict[str, Any]]) -> dict[str, Any]:
    """Pages by entity group and by incident, overall and per attack."""
    paged_entities: set[tuple[str, str]] = set()
    paged_incidents: set[str] = set()
    per: dict[int, dict[str, set[Any]]] = defaultdict(lambda: defaultdict(set))
    members: dict[str, set[int]] = defaultdict(set)
    benign_in: dict[str, int] = defaultdict(int)
    critical = 0
    for a in alerts:
        ent = (a["entity"]["kind"], a["entity"]["id"])
        iid = a["incident_id"]
        crit = a["severity"] == "critical"
        critical += crit
        if crit:
            paged_entities.add(ent)
            paged_incidents.add(iid)
        owners = attribute(a, truth)
        if not owners:
            benign_in[iid] += 1
        for i in owners:
            members[iid].add(i)
            p = per[i]
            p["alerts"].add(a["alert_id"])
            p["incidents"].add(iid)
            if crit:
                p["paged_entities"].add(ent)
                p["paged_incidents"].add(iid)
    attacks = []
    for i, t in enumerate(truth):
        p = per[i]
        attacks.append({
            "attack": t["attack"], "alert_ids": len(p["alerts"]),
            "incidents": len(p["incidents"]),
            "pages_before": len(p["paged_entities"]), "pages_after": len(p["paged_incidents"]),
            "shared": sorted({truth[j]["attack"] for iid in p["incidents"]
                              for j in members[iid] if j != i}),
        })
    return {
        "alerts": len(alerts), "alert_ids": len({a["alert_id"] for a in alerts}),
        "critical": critical, "incidents": len({a["incident_id"] for a in alerts}),
        "pages_before": len(paged_entities), "pages_after": len(paged_incidents),
        "attack_incidents_with_benign": sum(1 for iid in members if benign_in.get(iid)),
        "attacks": attacks,
    }


def replay_simulated(attacks: tuple[str, ...], seed: int, customers: int = 2000,
                     hours: float = 12.0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The alerts of a simulated run through the engine (every detector on), and its truth."""
    from detectors.engine import Engine
    from detectors.events import Event, decode_obj
    from simulation import SimConfig, simulate

    sim = simulate(SimConfig(seed=seed, customers=customers, hours=hours, attacks=attacks))
    eng = Engine()
    out: list[dict[str, Any]] = []
    for obj in sim.events:
        e = decode_obj(obj)
        if isinstance(e, Event):
            out += eng.process(e)[0]
    return out + eng.flush(), sim.truth


def main(argv: list[str]) -> int:
    """``FILE:TRUTH...`` (replayed files) or ``--alone SEEDS`` (each attack alone, 12 h,
    2,000 customers, seeds 1..SEEDS)."""
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    def runs() -> Iterator[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]]:
        if argv[0] == "--alone":
            from simulation import ATTACKS

            for name in ATTACKS:
                for seed in range(1, int(argv[1]) + 1):
                    yield (f"{name}/{seed}", *replay_simulated((name,), seed))
            return
        for arg in argv:
            path, _, tpath = arg.partition(":")
            with open(path, "rb") as f:
                alerts = [orjson.loads(ln) for ln in f if ln.strip()]
            with open(tpath, "rb") as f:
                yield path, alerts, orjson.loads(f.read())

    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path, alerts, truth in runs():
        fig = figures(alerts, truth)
        print(f"{path}: {fig['alerts']} alerts ({fig['alert_ids']} alert ids, "
              f"{fig['critical']} critical), {fig['incidents']} incidents; pages by entity "
              f"{fig['pages_before']}, by incident {fig['pages_after']}; attack incidents "
              f"holding an unattributed alert: {fig['attack_incidents_with_benign']}",
              flush=True)
        for r in fig["attacks"]:
            rows[r["attack"]].append(r)
    print()
    print("| attack | alert ids | incidents | pages by entity (before) | "
          "pages by incident (after) | incidents shared with |")
    print("|---|---|---|---|---|---|")

    def rng(vals: list[int]) -> str:
        return f"{min(vals)}..{max(vals)}" if min(vals) != max(vals) else str(vals[0])

    for name, rs in rows.items():
        shared = sorted({s for r in rs for s in r["shared"]})
        print(f"| {name} | {rng([r['alert_ids'] for r in rs])} | "
              f"{rng([r['incidents'] for r in rs])} | {rng([r['pages_before'] for r in rs])} | "
              f"{rng([r['pages_after'] for r in rs])} | {', '.join(shared) or '-'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
