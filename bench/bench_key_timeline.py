"""What keys' timelines cost on the partials topic (h-par8): the bytes of the window views the
input engines of a file split over 4 partitions hand out, with and without the reads each key
view carries (``Partial.timeline``). Input engines only (bulk_lookup), no scorer.

    .venv/bin/python bench/bench_key_timeline.py FILE.jsonl
"""

from __future__ import annotations

import sys
from typing import Any

import orjson

from detectors.engine import Engine, EngineConfig
from local.split import split
from streams.combine import REMOTE_KINDS

PARTS = 4


def main() -> None:
    path = sys.argv[1]
    with open(path, "rb") as fh:
        events = [orjson.loads(line) for line in fh]
    engs = [Engine(EngineConfig(detectors=("bulk_lookup",), remote_kinds=REMOTE_KINDS))
            for _ in range(PARTS)]
    n: dict[str, int] = dict.fromkeys(("views", "keys", "reads", "with", "without", "all"), 0)

    def drain(e: Engine) -> None:
        for m in e.drain_partials():
            b = len(orjson.dumps(m))
            n["views"] += 1
            n["all"] += b
            p: dict[str, Any] = m["partial"]
            if p["kind"] == "key":
                n["keys"] += 1
                n["reads"] += len(p["timeline"] or ())
                n["with"] += b
                p["timeline"] = None
                n["without"] += len(orjson.dumps(m))

    for part, obj in split(events, PARTS):
        engs[part].process_obj(obj)
        if engs[part].has_partials():
            drain(engs[part])
    for e in engs:
        e.flush()
        drain(e)
    dropped = sum(e.detectors["bulk_lookup"].combiner.timeline_dropped for e in engs)
    print(f"{path}: {len(events)} events, views {n['views']}, key views {n['keys']}, "
          f"timeline reads {n['reads']}, key views {n['without']} -> {n['with']} B, "
          f"all views {n['all'] - n['with'] + n['without']} -> {n['all']} B, "
          f"timelines dropped {dropped}")


if __name__ == "__main__":
    main()
