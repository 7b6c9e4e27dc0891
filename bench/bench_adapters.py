"""Cost of the JSON source adapters (ocsf, ecs, cloudtrail, entra, gws) per record.

For each format, one usable public sample (tests/data/adapters/) is written N times with a
fresh id into an in-memory file, which is then framed and adapted as ``replay --format`` does
(``frame`` then ``adapt`` per record). Prints µs per record for framing and adapting, and the
contract's own ``decode`` of the events produced, for scale.

    .venv/bin/python bench/bench_adapters.py --records 20000
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import orjson  # noqa: E402

from detectors import events as E  # noqa: E402
from detectors.adapters import load  # noqa: E402

DATA = Path(__file__).parent.parent / "tests" / "data" / "adapters"


def _samples() -> dict[str, tuple[Any, Any]]:
    """Per format: a sample record and how to give it the i-th id."""
    ct = json.loads((DATA / "cloudtrail" / "s3_outposts_put_object.json").read_text())
    ocsf = json.loads((DATA / "ocsf" / "authentication_cloudtrail.json").read_text())
    ecs = json.loads((DATA / "ecs" / "system_auth.jsonl").read_text().splitlines()[2])
    ecs["@timestamp"] = "2018-02-20T08:35:22.000Z"  # Filebeat's sample leaves it out (no year)
    entra = json.loads((DATA / "entra" / "graph_signin_get_response.repaired.json")
                       .read_text())["value"][0]
    gws = json.loads((DATA / "gws" / "login_activities.jsonl").read_text().splitlines()[1])

    def ct_id(r: dict[str, Any], i: int) -> None:
        r["eventID"] = f"ev-{i}"

    def ocsf_id(r: dict[str, Any], i: int) -> None:
        r["metadata"]["uid"] = f"ev-{i}"

    def ecs_id(r: dict[str, Any], i: int) -> None:
        r["event.id"] = f"ev-{i}"

    def entra_id(r: dict[str, Any], i: int) -> None:
        r["id"] = f"ev-{i}"

    def gws_id(r: dict[str, Any], i: int) -> None:
        r["id"]["uniqueQualifier"] = str(i)

    return {"cloudtrail": (ct, ct_id), "ocsf": (ocsf, ocsf_id), "ecs": (ecs, ecs_id),
            "entra": (entra, entra_id), "gws": (gws, gws_id)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=20000)
    args = ap.parse_args()
    n = args.records
    print(f"{'format':<11} {'bytes/rec':>9} {'frame µs':>9} {'adapt µs':>9} {'decode µs':>9}")
    for name, (rec, set_id) in _samples().items():
        buf = io.BytesIO()
        for i in range(n):
            set_id(rec, i)
            buf.write(orjson.dumps(rec) + b"\n")
        raw = buf.getvalue()
        adapter = load(name)
        t0 = time.perf_counter()
        recs = list(adapter.frame(io.BytesIO(raw)))
        t1 = time.perf_counter()
        evs = [ev for r in recs for ev in adapter.adapt(r)]
        t2 = time.perf_counter()
        lines_ = [orjson.dumps(ev) for ev in evs]
        t3 = time.perf_counter()
        bad = sum(1 for x in lines_ if isinstance(E.decode(x), E.Rejection))
        t4 = time.perf_counter()
        assert len(recs) == n and len(evs) == n and bad == 0, (name, len(recs), len(evs), bad)
        print(f"{name:<11} {len(raw) // n:>9} {(t1 - t0) / n * 1e6:>9.1f} "
              f"{(t2 - t1) / n * 1e6:>9.1f} {(t4 - t3) / n * 1e6:>9.1f}")


if __name__ == "__main__":
    main()
