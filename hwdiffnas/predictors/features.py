"""Fixed-length numeric features of NB201 cells for the linear predictors.

Feature sets (columns are concatenated in this order; every set contains the previous one):

- ``onehot``: the op one-hot of every edge, dead or alive (30).
- ``live``: ``onehot`` + the op one-hot of the *live* edges only (an edge off every input→output path reads
  as absent) + counts of each op on live edges + a connected flag (30 + 30 + 4 + 1).
- ``full``: ``live`` + pairwise interactions of live edges (for each edge pair and each pair of non-``none``
  ops, both present; 15 * 16) + path features (for each of the four input→output paths whether it is live
  and how many of each parametric/pooling op it carries; 4 * 4) + the number of live paths and the
  longest live path length.
- ``struct``: ``full`` without the first block (the raw one-hot of dead and live edges alike), so cells that
  differ only in edges off every input→output path share features (the accuracy surrogate's set).

Features are computed once for all 15,625 cells and looked up by the cell's op code.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from itertools import combinations

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.space import (
    CODE_WEIGHTS,
    CONV1,
    CONV3,
    EDGES,
    NONE,
    NUM_CELLS,
    NUM_EDGES,
    OPS,
    POOL,
    SKIP,
    Cell,
    cell_codes,
)

FEATURE_SETS: tuple[str, ...] = ("onehot", "live", "full", "struct")
"""Known feature-set names, smallest first."""

N_OPS = len(OPS)
# The four input→output paths of the cell DAG, as edge indices (e0: 0→1, e1: 0→2, e2: 1→2, e3: 0→3, e4: 1→3,
# e5: 2→3).
PATHS: tuple[tuple[int, ...], ...] = ((3,), (0, 4), (1, 5), (0, 2, 5))
_EDGE_PAIRS = tuple(combinations(range(NUM_EDGES), 2))
_LIVE_OPS = (SKIP, CONV1, CONV3, POOL)


def all_ops() -> np.ndarray:
    """(15625, 6) int64 op vector of every cell code."""
    codes = np.arange(NUM_CELLS, dtype=np.int64)
    return (codes[:, None] // CODE_WEIGHTS) % N_OPS


def live_mask(ops: np.ndarray) -> np.ndarray:
    """(n, 6) bool: the live edges (`Cell.live_edges`) of op vectors ``ops`` (n, 6), vectorized."""
    on = ops != NONE
    ones = np.ones(len(ops), dtype=bool)
    fwd1 = on[:, 0]
    fwd2 = on[:, 1] | (fwd1 & on[:, 2])
    bwd2 = on[:, 5]
    bwd1 = on[:, 4] | (on[:, 2] & bwd2)
    fwd = np.stack([ones, fwd1, fwd2, ones], axis=1)  # (n, 4): node reachable from the input
    bwd = np.stack([ones, bwd1, bwd2, ones], axis=1)  # (n, 4): node reaches the output
    src = np.array([e[0] for e in EDGES])
    dst = np.array([e[1] for e in EDGES])
    return on & fwd[:, src] & bwd[:, dst]


@cache
def _parts() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(raw one-hot (N, 30), ``live`` set (N, 65), extra block of ``full`` (N, 258)) for every cell code."""
    ops = all_ops()  # (N, 6)
    n = len(ops)
    live = live_mask(ops)  # (N, 6)
    onehot = np.zeros((n, NUM_EDGES, N_OPS))
    np.put_along_axis(onehot, ops[:, :, None], 1.0, axis=2)
    live_oh = onehot * live[:, :, None]
    counts = np.stack([(live & (ops == o)).sum(axis=1) for o in _LIVE_OPS], axis=1).astype(float)  # (N, 4)
    conn = live.any(axis=1, keepdims=True).astype(float)  # a live edge exists iff the input reaches the output
    base_live = np.concatenate([onehot.reshape(n, -1), live_oh.reshape(n, -1), counts, conn], axis=1)

    lo = live_oh[:, :, 1:]  # (N, 6, 4): live one-hot over the four non-none ops
    pair = np.stack([lo[:, a, :, None] * lo[:, b, None, :] for a, b in _EDGE_PAIRS], axis=1)  # (N, 15, 4, 4)
    on = ops != NONE
    path_cols = []
    path_live = []
    for edges in PATHS:
        alive = np.all(on[:, list(edges)], axis=1)
        path_live.append(alive)
        sub = ops[:, list(edges)]
        path_cols.append(np.stack([alive, *((sub == o).sum(axis=1) * alive for o in (CONV1, CONV3, POOL))], axis=1))
    path = np.stack(path_cols, axis=1).astype(float)  # (N, 4, 4)
    alive_paths = np.stack(path_live, axis=1)  # (N, 4)
    n_live = alive_paths.sum(axis=1, keepdims=True).astype(float)
    lengths = np.array([len(p) for p in PATHS], dtype=float)
    longest = (alive_paths * lengths).max(axis=1, keepdims=True)
    extra = np.concatenate([pair.reshape(n, -1), path.reshape(n, -1), n_live, longest], axis=1)
    return onehot.reshape(n, -1), base_live, extra


@cache
def _table(kind: str) -> np.ndarray:
    onehot, live, extra = _parts()
    if kind == "onehot":
        table = onehot
    elif kind == "live":
        table = live
    elif kind == "full":
        table = np.concatenate([live, extra], axis=1)
    else:
        table = np.concatenate([live[:, onehot.shape[1]:], extra], axis=1)
    table = np.ascontiguousarray(table, dtype=np.float64)
    table.setflags(write=False)
    return table


def check_feature_set(kind: str) -> str:
    """Validate a feature-set name."""
    if kind not in FEATURE_SETS:
        raise UserError(f"unknown feature set {kind!r}; known: {', '.join(FEATURE_SETS)}")
    return kind


def cell_features(cells: Sequence[Cell] | np.ndarray, kind: str = "full") -> np.ndarray:
    """(n, d) float64 features of ``cells`` (a sequence of `Cell` or an int array of `cell_codes`)."""
    check_feature_set(kind)
    codes = cells if isinstance(cells, np.ndarray) else cell_codes(cells)
    return _table(kind)[np.asarray(codes, dtype=np.int64)]


def feature_dim(kind: str = "full") -> int:
    """Number of columns of `cell_features` for ``kind`` (without building the table)."""
    check_feature_set(kind)
    raw = NUM_EDGES * N_OPS
    live = 2 * raw + len(_LIVE_OPS) + 1
    extra = len(_EDGE_PAIRS) * len(_LIVE_OPS) ** 2 + len(PATHS) * 4 + 2
    return {"onehot": raw, "live": live, "full": live + extra, "struct": live - raw + extra}[kind]
