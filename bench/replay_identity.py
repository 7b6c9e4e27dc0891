"""Behaviour check for performance work: ``replay``'s alert output byte-identical to a base commit.

Run on purpose (not a test):  .venv/bin/python bench/replay_identity.py [--base REV] [--dir DIR]

It writes (seeded) the files a speed change must not alter the alerts of:
  - two ``accesswatch simulate`` days with a few attacks each (seeds 3 and 5),
  - the red-team generator's normal 3-day file and two of its attack files
    (``forged_old_iat``, ``idor_ring``; ``detectors.redteam``, run, not read),
then runs ``accesswatch replay FILE --quiet`` with this tree and with ``--base`` (default
``HEAD``; the tree is exported with ``git archive`` into a temporary directory and run with
the same interpreter) and compares the two outputs byte for byte (the alerts, every field).
It prints one line per file and exits 1 if any differ. The comparison is against the code
before the change, not a stored digest: the check holds for any base, and a file's alerts
may change with the detection rules without it going stale.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIM = (("3", ("coupang", "insider", "stuffing")), ("5", ("coupang_predating", "spray",
                                                        "impossible_travel", "session_hijack")))
REDTEAM = ("normal", "forged_old_iat", "idor_ring")


def make_files(d: str) -> list[str]:
    out = []
    for seed, attacks in SIM:
        p = os.path.join(d, f"sim-{seed}.jsonl")
        if not os.path.exists(p):
            cmd = [sys.executable, "-m", "streams.cli", "simulate", "--seed", seed,
                   "--hours", "24", "--customers", "3000", "--out", p]
            for a in attacks:
                cmd += ["--attack", a]
            subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        out.append(p)
    sys.path.insert(0, str(ROOT))
    from simulation import redteam

    for name in REDTEAM:
        p = os.path.join(d, f"rt-{name}-1.jsonl")
        if not os.path.exists(p):
            redteam.write(redteam.generate(name, 1), p, p + ".truth.json")
        out.append(p)
    return out


def run_replay(tree: str, path: str) -> tuple[bytes, float]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "streams.cli", "replay", path, "--quiet"],
                          cwd=tree, capture_output=True, env={**os.environ, "PYTHONPATH": tree})
    if proc.returncode != 0:
        raise SystemExit(f"replay failed in {tree} on {path}: {proc.stderr.decode()[-500:]}")
    return proc.stdout, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="HEAD", help="git revision to compare with (default HEAD)")
    ap.add_argument("--dir", help="keep the generated files here (reused when present)")
    args = ap.parse_args()
    work = args.dir or tempfile.mkdtemp(prefix="aw-ident-")
    os.makedirs(work, exist_ok=True)
    files = make_files(work)
    with tempfile.TemporaryDirectory(prefix="aw-base-") as base:
        arch = subprocess.run(["git", "archive", args.base], cwd=ROOT, check=True,
                              capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", base], input=arch, check=True)
        bad = 0
        for p in files:
            new, t_new = run_replay(str(ROOT), p)
            old, t_old = run_replay(base, p)
            same = new == old
            bad += not same
            n_alerts = new.count(b"\n")
            print(f"{'same' if same else 'DIFFERENT':<9} {os.path.basename(p):<28} "
                  f"{n_alerts:>5} alerts  sha256 {hashlib.sha256(new).hexdigest()[:16]}"
                  f"  (base {hashlib.sha256(old).hexdigest()[:16]}; {t_new:.1f}s vs "
                  f"{t_old:.1f}s wall)")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
