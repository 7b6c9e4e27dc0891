"""Every reach into the private parts of River, in one place, with its reason.

The detectors use River through its public API (``learn_one``, ``score_one``) except here.
The one workaround: ``bulk_lookup`` scores each window view with a ``HalfSpaceTrees`` and
then, when the view flagged nothing, learns it. River walks every tree twice for that (once
in ``score_one``, once in ``learn_one``), down the same path: the features are the same and
nothing changes the trees in between. :func:`hst_score` walks each tree once, keeping the
path, and :func:`hst_learn_walked` adds the learnt mass along it: the same scores and the
same trees as ``score_one`` then ``learn_one`` (issue 14, speed: py-spy put the two walks at
~5% of a replay of many-entity traffic under load; callgrind measured the shared walk at
-0.46% of the instructions per event, docs/benchmarks.md "h-hst").

What is read of River's ``HalfSpaceTrees`` (river/anomaly/hst.py) and why the public API
cannot do it: the trees (``trees``: ``PaddedBranch`` nodes with ``feature``, ``threshold``,
``children``, ``l_mass``, ``r_mass``), the flat node lists the window pivot walks
(``_tree_nodes``), the window counter (``counter``), the warm-up flag (``_first_window``) and
the normaliser (``_max_score``): score_one and learn_one have no form that shares a walk.
``tests/test_river_compat.py`` runs the public API and these functions side by side on the
same seeded stream (through window pivots, with a missing feature) and asserts the same
scores and the same masses in every node, and pins the River version (``PINNED``): an
upgrade that changes any of it fails there, not in a replay.
"""

from __future__ import annotations

from typing import Any

#: the River version these were read in and tested against
PINNED = {"river": "0.26.1"}


def hst_score(model: Any, x: dict[str, float]) -> tuple[float, list[list[Any]] | None]:
    """``model.score_one(x)`` and the path ``x`` takes down each tree (for
    :func:`hst_learn_walked`), or None for the path when the model cannot share its walk
    (no trees yet, or still in its first window: then River's own score)."""
    if model._first_window or not model.trees:  # noqa: SLF001 - see the module docstring
        return model.score_one(x), None
    height = model.height
    size_limit = 0.1 * model.window_size
    total = 0.0
    paths = []
    for node in model.trees:
        # River's _walk_score, the walk continued to the leaf after the score stops (the
        # learn walk's path: _walk_learn chooses each child exactly as the score walk does)
        path = [node]
        score = 0.0
        depth_pow = 1
        scoring = True
        for _ in range(height):
            if scoring:
                r = node.r_mass
                score += r * depth_pow
                if r < size_limit:
                    scoring = False
            c = node.children
            try:
                value = x[node.feature]
            except KeyError:
                node = c[1] if c[0].l_mass < c[1].l_mass else c[0]
            else:
                node = c[0] if value < node.threshold else c[1]
            depth_pow <<= 1
            path.append(node)
        if scoring:
            score += node.r_mass * depth_pow
        total += score
        paths.append(path)
    return 1 - total / model._max_score, paths  # noqa: SLF001 - see the module docstring


def hst_learn_walked(model: Any, paths: list[list[Any]]) -> None:
    """``model.learn_one(x)`` for the ``x`` whose ``paths`` :func:`hst_score` returned, the
    model unchanged since: each node on the paths gains one unit of mass (River's
    ``_walk_learn``), then the window counter and, at the window's end, the pivot of every
    node's mass (River's ``learn_one``)."""
    for path in paths:
        for node in path:
            node.l_mass += 1
    model.counter += 1
    if model.counter == model.window_size:
        for nodes in model._tree_nodes:  # noqa: SLF001 - see the module docstring
            for node in nodes:
                node.r_mass = node.l_mass
                node.l_mass = 0
        model._first_window = False  # noqa: SLF001 - see the module docstring
        model.counter = 0
