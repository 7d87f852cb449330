"""A small random-forest regressor written in numpy: fitted here, stored as flat arrays, evaluated in numpy.

Trees are grown on bootstrap samples; every split is a threshold between two distinct values of one column,
and each node tries a random subset of those candidate splits (least squares, computed for all candidates at
once as 0/1 columns);
all trees of a forest live in shared flat arrays (``feature`` = -1 marks a leaf), so prediction walks every
(row, tree) pair down one level per step, vectorized.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwdiffnas.errors import UserError


@dataclass
class Forest:
    """Flat-array random forest; ``roots[t]`` is tree ``t``'s first node."""

    feature: np.ndarray  # (N,) int32, -1 for leaves
    threshold: np.ndarray  # (N,) float32: go left when x[feature] <= threshold
    left: np.ndarray  # (N,) int32
    right: np.ndarray  # (N,) int32
    value: np.ndarray  # (N,) float32, mean target of the node's training rows
    roots: np.ndarray  # (T,) int32
    depth: int

    def __post_init__(self) -> None:
        n = len(self.feature)
        shapes = {len(a) for a in (self.threshold, self.left, self.right, self.value)}
        if shapes != {n} or len(self.roots) == 0:
            raise UserError("corrupt forest: node arrays differ in length or there are no trees")
        inner = self.feature >= 0
        for arr in (self.left[inner], self.right[inner], self.roots):
            if arr.size and (arr.min() < 0 or arr.max() >= n):
                raise UserError("corrupt forest: a child or root index points outside the node arrays")

    @property
    def n_trees(self) -> int:
        return int(len(self.roots))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(n,) mean over trees for rows ``x`` (n, p)."""
        x = np.asarray(x, dtype=np.float32)
        rows = np.arange(x.shape[0])[:, None]  # (n, 1)
        nodes = np.broadcast_to(self.roots[None, :], (x.shape[0], self.n_trees)).copy()  # (n, T)
        for _ in range(self.depth + 1):
            feat = self.feature[nodes]
            inner = feat >= 0
            if not inner.any():
                break
            xv = x[rows, np.maximum(feat, 0)]
            nxt = np.where(xv <= self.threshold[nodes], self.left[nodes], self.right[nodes])
            nodes = np.where(inner, nxt, nodes)
        return self.value[nodes].astype(np.float64).mean(axis=1)


def _binary_splits(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every candidate split ``x[:, col] > thr`` (thresholds halfway between consecutive distinct values)."""
    cols, thrs = [], []
    for j in range(x.shape[1]):
        vals = np.unique(x[:, j])
        for lo, hi in zip(vals[:-1], vals[1:]):
            cols.append(j)
            thrs.append(0.5 * (float(lo) + float(hi)))
    return np.array(cols, dtype=np.int64), np.array(thrs, dtype=np.float32)


def fit_forest(
    x: np.ndarray,
    y: np.ndarray,
    n_trees: int = 100,
    max_features: float = 0.33,
    min_leaf: int = 1,
    max_depth: int = 24,
    seed: int = 0,
) -> Forest:
    """Grow a random forest on ``x`` (n, p), ``y`` (n,)."""
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.float64)
    n, p = x.shape
    if n < 2:
        raise UserError(f"a forest needs at least 2 labelled rows, got {n}")
    rng = np.random.default_rng(seed)
    split_col, split_thr = _binary_splits(x)
    if len(split_col) == 0:
        raise UserError("a forest needs at least one non-constant feature column")
    above = (x[:, split_col] > split_thr).astype(np.float32)  # (n, q): each split as a 0/1 column
    q = len(split_col)
    m = max(1, int(round(max_features * q)))
    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    value: list[float] = []
    roots = []
    deepest = 0

    def new_node(val: float) -> int:
        feature.append(-1)
        threshold.append(0.0)
        left.append(-1)
        right.append(-1)
        value.append(val)
        return len(feature) - 1

    for _ in range(n_trees):
        sample = rng.integers(0, n, n)
        root = new_node(float(y[sample].mean()))
        roots.append(root)
        stack = [(root, sample, 0)]
        while stack:
            node, idx, depth = stack.pop()
            deepest = max(deepest, depth)
            yi = y[idx]
            if len(idx) < 2 * min_leaf or depth >= max_depth or np.ptp(yi) < 1e-12:
                continue
            cand = rng.choice(q, m, replace=False)
            sub = above[np.ix_(idx, cand)]  # (n_node, m)
            n_r = sub.sum(axis=0)  # rows going right, per candidate
            s_r = yi @ sub
            total, n_node = float(yi.sum()), len(idx)
            n_l, s_l = n_node - n_r, total - s_r
            ok = (n_r >= min_leaf) & (n_l >= min_leaf)
            if not ok.any():
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                gain = np.where(ok, s_r**2 / n_r + s_l**2 / n_l - total**2 / n_node, -np.inf)
            best = int(np.argmax(gain))
            if not gain[best] > 1e-12:
                continue
            go_right = sub[:, best] > 0.5
            feature[node] = int(split_col[cand[best]])
            threshold[node] = float(split_thr[cand[best]])
            lo = new_node(float(yi[~go_right].mean()))
            hi = new_node(float(yi[go_right].mean()))
            left[node], right[node] = lo, hi
            stack.append((lo, idx[~go_right], depth + 1))
            stack.append((hi, idx[go_right], depth + 1))
    return Forest(
        feature=np.array(feature, dtype=np.int32),
        threshold=np.array(threshold, dtype=np.float32),
        left=np.array(left, dtype=np.int32),
        right=np.array(right, dtype=np.int32),
        value=np.array(value, dtype=np.float32),
        roots=np.array(roots, dtype=np.int32),
        depth=deepest,
    )
