"""How long the episode builders keep their observers' findings (overseas_server's and
spread_access's) over N partitions, in engine time (h-par9).

Usage: ``python bench/bench_fold_wait.py FILE [--partitions 4]``

Runs ``local.split.run_split`` on FILE and notes, for each finding of a detector a builder's
engine runs that it makes an episode of, how far every input partition's time was past the
finding's time when it was taken; and how many waited for another builder's fold time
(``EpisodeBuilder.folded``, counted in ``finding_waited_fold``). Run it on two trees
(``PYTHONPATH``) to compare.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.engine import Engine  # noqa: E402
from detectors.episodes import EpisodeBuilder  # noqa: E402
from local.split import run_split  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--partitions", type=int, default=4)
    args = ap.parse_args()
    engines: list[Engine] = []
    waits: list[float] = []
    init, episodes = EpisodeBuilder.__init__, EpisodeBuilder._episodes

    def wrapped_init(self: EpisodeBuilder, engine: Engine, *a: Any, **k: Any) -> None:
        init(self, engine, *a, **k)
        engines.append(engine)

    def wrapped_episodes(self: EpisodeBuilder, items: list[Any]) -> list[dict[str, Any]]:
        d = self.engine.__dict__
        prog, n = d["_relay_progress"], d["_relay_partitions"]
        low = min(prog.get(p, -math.inf) for p in range(n))
        waits.extend(low - it[0] for it in items if it[-1].detector in self.engine.detectors)
        return episodes(self, items)

    EpisodeBuilder.__init__ = wrapped_init  # type: ignore[method-assign]
    EpisodeBuilder._episodes = wrapped_episodes  # type: ignore[method-assign]
    events = [orjson.loads(ln) for ln in Path(args.file).read_bytes().splitlines() if ln.strip()]
    run_split(events, args.partitions, arrival=time.time())
    waited = sum(e.stats.get("finding_waited_fold", 0) for e in engines)
    w = sorted(x for x in waits if math.isfinite(x))
    if not w:
        print(f"{args.file}: no observer's finding made an episode")
        return 0
    print(f"{args.file}: observers' findings taken {len(w)}, waited for a fold time {waited}; "
          f"input time past them when taken (engine s): median {w[len(w) // 2]:.0f}, "
          f"p99 {w[int(len(w) * 0.99)]:.0f}, max {w[-1]:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
