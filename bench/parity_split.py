"""Alert ids of one engine (``replay``) against N engines split as the worker splits them.

Usage: ``python bench/parity_split.py FILE [FILE ...] [--partitions 4] [--demo-json OUT]
[--detectors a,b] [--show]``

For each JSON-lines file: the distinct alert ids of a single engine of every event (what
``accesswatch replay`` raises) and of ``local.split.run_split`` (input engines, burst engines,
bulk_lookup scorers and episode builders in one process, no broker), per detector: only in
replay, only in the split, in common. ``--demo-json OUT``: compare with the alerts of a real
``accesswatch demo --events FILE --partitions N --json`` run written to OUT instead of (as
well as) the in-process split (one FILE). ``--show`` prints the differing alerts.
``--held``: how long the episode builders' holds (a verdict put off on a partition, h-par6)
kept findings back, in engine time: per finding a hold kept, from the first release it
would have gone at without the hold to the release it went at.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.episodes import EpisodeBuilder  # noqa: E402
from local.split import replay, run_split  # noqa: E402


def _watch_holds() -> dict[int, list[Any]]:
    """Wrap ``EpisodeBuilder._take`` to note, per finding a hold kept, the builder's time
    (``low``: every partition passed it) when first kept and when taken."""
    kept: dict[int, list[Any]] = {}
    orig = EpisodeBuilder._take

    def take(self: EpisodeBuilder, low: float, most: float = float("inf"),
             holds: dict[tuple[str, str, str], float] | None = None,
             fold: float | None = None, slow: float | None = None) -> list[dict[str, Any]]:
        d = self.engine.__dict__
        low_in = low if fold is None else fold  # holds keep findings in the first step

        def queued() -> list[Any]:
            return d["_relay_pending"] + [x for v in d.get("_relay_parked", {}).values()
                                          for x in v]

        before = {id(x[5]): x for x in queued() if x[0] < low_in}
        out = orig(self, low, most, holds, fold, slow)
        still = {id(x[5]) for x in queued()}
        for i, x in before.items():
            if i in still:
                kept.setdefault(i, [x[5], low_in, None])
            elif i in kept and kept[i][2] is None:
                kept[i][2] = low_in
        return out

    EpisodeBuilder._take = take  # type: ignore[method-assign]
    return kept


def _ids(alerts: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for a in alerts:
        if a.get("severity") in ("warning", "critical", "info") and "alert_id" in a:
            out[a["detector"]].setdefault(a["alert_id"], a)
    return out


def compare(name: str, one: list[dict[str, Any]], other: list[dict[str, Any]],
            show: bool) -> tuple[int, int, int]:
    a, b = _ids(one), _ids(other)
    tot = [0, 0, 0]
    print(f"{name}: replay {sum(len(v) for v in a.values())} ids, "
          f"split {sum(len(v) for v in b.values())}")
    for det in sorted(set(a) | set(b)):
        x, y = a.get(det, {}), b.get(det, {})
        common = len(x.keys() & y.keys())
        only_r, only_s = x.keys() - y.keys(), y.keys() - x.keys()
        tot[0] += common
        tot[1] += len(only_r)
        tot[2] += len(only_s)
        flag = "" if not (only_r or only_s) else "  <-- differs"
        print(f"  {det:22} common {common:4}  only replay {len(only_r):3}  "
              f"only split {len(only_s):3}{flag}")
        if show:
            for tag, ids, src in (("R", only_r, x), ("S", only_s, y)):
                for i in sorted(ids, key=lambda i: src[i]["episode"]["started"]):
                    al = src[i]
                    print(f"     {tag} {i} {al['severity']:8} {al['entity']['kind']}:"
                          f"{al['entity']['id']} started {al['episode']['started']} "
                          f"ts {al['ts']}")
    print(f"  total: common {tot[0]}, only replay {tot[1]}, only split {tot[2]}")
    return tot[0], tot[1], tot[2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--detectors", help="comma-separated (default every detector)")
    ap.add_argument("--demo-json", metavar="OUT", help="alerts of a demo run of the FILE")
    ap.add_argument("--no-split", action="store_true", help="only the --demo-json comparison")
    ap.add_argument("--show", action="store_true", help="print the differing alerts")
    ap.add_argument("--held", action="store_true",
                    help="report how long holds kept findings back (engine time)")
    args = ap.parse_args()
    dets = tuple(args.detectors.split(",")) if args.detectors else None
    for f in args.files:
        events = [orjson.loads(ln) for ln in Path(f).read_bytes().splitlines() if ln.strip()]
        # judged against the wall clock as ``replay`` and the worker judge what they read
        # (an event dated far ahead is rejected as future_ts, not taken as the time)
        now = time.time()
        one = replay(events, dets, now)
        if not args.no_split:
            kept = _watch_holds() if args.held else {}
            compare(f"{f} (in-process split over {args.partitions})", one,
                    run_split(events, args.partitions, dets, arrival=now), args.show)
            if args.held:
                waits = sorted((v[2] if v[2] is not None else float("inf")) - v[1]
                               for v in kept.values())
                by = sorted({f"{v[0].detector}/{v[0].entity_kind}" for v in kept.values()})
                print(f"  held by a hold: {len(waits)} findings ({', '.join(by) or '-'}); "
                      f"engine seconds kept: max {max(waits, default=0):.0f}, "
                      f"median {waits[len(waits) // 2] if waits else 0:.0f}")
        if args.demo_json:
            demo = [orjson.loads(ln) for ln in Path(args.demo_json).read_bytes().splitlines()
                    if ln.strip()]
            compare(f"{f} (demo --partitions {args.partitions})", one, demo, args.show)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
