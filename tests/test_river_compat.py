"""detectors/river_compat.py: the shared walk of River's HalfSpaceTrees gives what River's own
``score_one`` then ``learn_one`` give, and River is the version it was read in.

Two models of the same seed see the same seeded stream of views; one is scored and learnt
through River's public API, the other through ``hst_score`` / ``hst_learn_walked``, with
the same rule as ``bulk_lookup`` (learn only what scored under a bound). Every score and
every node's masses must be equal at every step, through several window pivots and with
views missing a feature (River's other branch of the walk). An upgrade of River that
changes the trees, the walk, the pivot or the score fails here.
"""

from __future__ import annotations

import importlib.metadata as md
import random
from typing import Any

from river import anomaly

from detectors import river_compat as rc


def _masses(model: Any) -> list[list[tuple[int, int]]]:
    return [[(n.l_mass, n.r_mass) for n in t.iter_dfs()] for t in model.trees]


def _view(rng: random.Random) -> dict[str, float]:
    x = {"h": rng.random(), "w": rng.random() ** 3, "s": rng.choice((0.0, 0.0, rng.random())),
         "r": rng.random() * 0.2}
    if rng.random() < 0.05:
        del x[rng.choice(("h", "w", "s", "r"))]  # a missing feature: the mass-led branch
    return x


def test_one_walk_scores_and_learns_as_river_does() -> None:
    rng = random.Random(7)
    kw = {"n_trees": 10, "height": 6, "window_size": 64, "seed": 42}
    ref, ours = anomaly.HalfSpaceTrees(**kw), anomaly.HalfSpaceTrees(**kw)
    scored = learnt = 0
    for i in range(1500):
        x = _view(rng)
        if i == 0:  # River builds the trees from the first view learnt
            ref.learn_one(dict(x))
            ours.learn_one(dict(x))
            continue
        want = ref.score_one(x)
        got, paths = rc.hst_score(ours, x)
        assert got == want, i
        scored += paths is not None
        if want < 0.9:  # bulk_lookup's rule: what scores high is not learnt
            ref.learn_one(x)
            if paths is None:
                ours.learn_one(x)
            else:
                rc.hst_learn_walked(ours, paths)
                learnt += 1
        if i % 97 == 0:
            assert _masses(ours) == _masses(ref), i
            assert (ours.counter, ours._first_window) == (ref.counter, ref._first_window)
    assert _masses(ours) == _masses(ref)
    assert scored > 1000 and learnt > 1000  # the shared walk ran, through many pivots
    assert not ours._first_window


def test_a_model_still_in_its_first_window_is_scored_by_river() -> None:
    model = anomaly.HalfSpaceTrees(n_trees=2, height=3, window_size=8, seed=1)
    assert rc.hst_score(model, {"h": 0.5}) == (0, None)  # no trees yet: River's warm-up score


def test_the_installed_river_is_the_one_the_walk_was_written_for() -> None:
    """An upgrade re-reads river_compat: the walk may no longer be River's."""
    assert {name: md.version(name) for name in rc.PINNED} == rc.PINNED
