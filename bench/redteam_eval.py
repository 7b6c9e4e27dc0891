"""Red team A's harness (moved to :mod:`simulation.redteam_eval`, so ``accesswatch evaluate
--set redteam`` runs it too): ``python bench/redteam_eval.py [--seeds 3] [--scenarios a,b]
[--json] [--keep DIR] [--from-json FILE]``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulation.redteam_eval import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
