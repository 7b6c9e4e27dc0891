"""Red team C's harness (:mod:`simulation.redteam_c_eval`): ``python bench/redteam_c_eval.py
[--seeds 1,2,3] [--scenarios a,b] [--jobs 1] [--json FILE] [--keep DIR] [--from-json FILE]``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulation.redteam_c_eval import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
