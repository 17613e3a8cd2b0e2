"""The isolation forest (Liu, Ting and Zhou, ICDM'08) of the content detector's first stage.

scikit-learn fits it; its trees are then kept as plain arrays, so a model is stored as tensors
like every other (nothing unpickled from the cluster) and scoring walks all trees over all rows
at once in numpy. `forest_scores` equals scikit-learn's `-score_samples` (a unit test holds
them together): 2^(−mean path length / c(max_samples)), near 1 for a point isolated at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ForestArrays", "fit_forest", "forest_scores", "average_path_length"]

_EULER = 0.5772156649015329


def average_path_length(n: np.ndarray | float) -> np.ndarray:
    """c(n): the mean path length of an unsuccessful search in a binary search tree of n."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out = np.where(n == 2, 1.0, out)
    big = n > 2
    safe = np.where(big, n, 3.0)
    out = np.where(big, 2.0 * (np.log(safe - 1.0) + _EULER) - 2.0 * (safe - 1.0) / safe, out)
    return out


@dataclass(frozen=True, slots=True)
class ForestArrays:
    """Trees side by side, padded to the largest: node arrays [trees, nodes]."""

    feature: np.ndarray  # int32, the input column split on; -1 at a leaf
    threshold: np.ndarray  # float64: x <= threshold goes left
    left: np.ndarray  # int32
    right: np.ndarray  # int32
    leaf_bonus: np.ndarray  # float64: c(training points in the leaf), 0 inside
    max_samples: int
    depth: int

    @property
    def trees(self) -> int:
        return int(self.feature.shape[0])


def fit_forest(x: np.ndarray, trees: int, max_samples: int, seed: int) -> ForestArrays:
    """Fit scikit-learn's IsolationForest on rows `x` (occurrences, not distinct rows: draw
    them by weight first) and keep its trees as arrays."""
    from sklearn.ensemble import IsolationForest  # noqa: PLC0415 (training only)

    forest = IsolationForest(
        n_estimators=trees, max_samples=min(max_samples, len(x)), random_state=seed
    ).fit(x)
    width = max(e.tree_.node_count for e in forest.estimators_)
    shape = (trees, width)
    feature = np.full(shape, -1, dtype=np.int32)
    threshold = np.zeros(shape)
    left = np.zeros(shape, dtype=np.int32)
    right = np.zeros(shape, dtype=np.int32)
    bonus = np.zeros(shape)
    depth = 0
    for t, (estimator, columns) in enumerate(
        zip(forest.estimators_, forest.estimators_features_, strict=True)
    ):
        tree = estimator.tree_
        m = tree.node_count
        leaf = tree.children_left[:m] < 0
        feature[t, :m] = np.where(leaf, -1, np.asarray(columns)[np.maximum(tree.feature[:m], 0)])
        threshold[t, :m] = tree.threshold[:m]
        left[t, :m] = np.where(leaf, 0, tree.children_left[:m])
        right[t, :m] = np.where(leaf, 0, tree.children_right[:m])
        bonus[t, :m] = np.where(leaf, average_path_length(tree.n_node_samples[:m]), 0.0)
        depth = max(depth, int(tree.max_depth))
    return ForestArrays(feature, threshold, left, right, bonus, int(forest.max_samples_), depth)


def forest_scores(forest: ForestArrays, x: np.ndarray, chunk: int = 4_096) -> np.ndarray:
    """The anomaly score of each row of `x`, in (0, 1]."""
    # Trees compare in float32, as scikit-learn does.
    x = np.asarray(x, dtype=np.float32).astype(np.float64)
    out = np.empty(len(x))
    norm = float(average_path_length(forest.max_samples)) * forest.trees
    tree_index = np.arange(forest.trees)[:, None]
    for start in range(0, len(x), chunk):
        part = x[start : start + chunk]
        n = len(part)
        cols = np.arange(n)[None, :]
        node = np.zeros((forest.trees, n), dtype=np.int64)
        length = np.zeros((forest.trees, n))
        for _ in range(forest.depth + 1):
            f = forest.feature[tree_index, node]
            inside = f >= 0
            if not inside.any():
                break
            go_left = part[cols, np.maximum(f, 0)] <= forest.threshold[tree_index, node]
            child = np.where(go_left, forest.left[tree_index, node], forest.right[tree_index, node])
            node = np.where(inside, child, node)
            length += inside
        length += forest.leaf_bonus[tree_index, node]
        out[start : start + n] = 2.0 ** (-length.sum(axis=0) / max(norm, 1e-12))
    return out
