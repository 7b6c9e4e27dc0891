"""Red team B's harness (moved to :mod:`simulation.redteam_b_eval`, so ``accesswatch evaluate
--set redteam_b`` runs it too): ``python bench/redteam_b_eval.py [--seeds 1,2,3]
[--scenarios a,b] [--jobs 2] [--json FILE] [--keep DIR] [--from-json FILE]``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulation.redteam_b_eval import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
