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

from collections.abc import Iterable, Sequence
from functools import cache
from itertools import combinations

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.space import CONV1, CONV3, NONE, NUM_CELLS, NUM_EDGES, OPS, POOL, SKIP, Cell

FEATURE_SETS: tuple[str, ...] = ("onehot", "live", "full", "struct")
"""Known feature-set names, smallest first."""

N_OPS = len(OPS)
# The four input→output paths of the cell DAG, as edge indices (e0: 0→1, e1: 0→2, e2: 1→2, e3: 0→3, e4: 1→3,
# e5: 2→3).
PATHS: tuple[tuple[int, ...], ...] = ((3,), (0, 4), (1, 5), (0, 2, 5))
_EDGE_PAIRS = tuple(combinations(range(NUM_EDGES), 2))
_LIVE_OPS = (SKIP, CONV1, CONV3, POOL)


def cell_codes(cells: Iterable[Cell]) -> np.ndarray:
    """(n,) int64 base-5 code of each cell's op vector (edge 0 most significant); 0..15624."""
    ops = np.array([c.ops for c in cells], dtype=np.int64).reshape(-1, NUM_EDGES)
    weights = N_OPS ** np.arange(NUM_EDGES - 1, -1, -1, dtype=np.int64)
    return ops @ weights


def code_to_cell(code: int) -> Cell:
    """Inverse of `cell_codes` for one code."""
    ops = []
    for _ in range(NUM_EDGES):
        ops.append(int(code) % N_OPS)
        code = int(code) // N_OPS
    return Cell(tuple(reversed(ops)))


def _features_one(cell: Cell) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ops = cell.ops
    live = cell.live_edges()
    onehot = np.zeros((NUM_EDGES, N_OPS))
    onehot[np.arange(NUM_EDGES), ops] = 1.0
    live_oh = onehot * np.array(live, dtype=float)[:, None]
    counts = np.array([sum(1.0 for e in range(NUM_EDGES) if live[e] and ops[e] == o) for o in _LIVE_OPS])
    conn = np.array([1.0 if cell.is_connected else 0.0])
    base_live = np.concatenate([onehot.ravel(), live_oh.ravel(), counts, conn])

    pair = np.zeros((len(_EDGE_PAIRS), len(_LIVE_OPS), len(_LIVE_OPS)))
    for k, (a, b) in enumerate(_EDGE_PAIRS):
        if live[a] and live[b]:
            pair[k, _LIVE_OPS.index(ops[a]), _LIVE_OPS.index(ops[b])] = 1.0
    path = np.zeros((len(PATHS), 4))
    n_live_paths = 0.0
    longest = 0.0
    for p, edges in enumerate(PATHS):
        if all(ops[e] != NONE for e in edges):
            n_live_paths += 1.0
            longest = max(longest, float(len(edges)))
            path[p, 0] = 1.0
            path[p, 1] = sum(1.0 for e in edges if ops[e] == CONV1)
            path[p, 2] = sum(1.0 for e in edges if ops[e] == CONV3)
            path[p, 3] = sum(1.0 for e in edges if ops[e] == POOL)
    extra = np.concatenate([pair.ravel(), path.ravel(), [n_live_paths, longest]])
    return onehot.ravel(), base_live, extra


@cache
def _parts() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    onehot, live, extra = zip(*(_features_one(code_to_cell(code)) for code in range(NUM_CELLS)))
    return np.asarray(onehot), np.asarray(live), np.asarray(extra)


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
    """Number of columns of `cell_features` for ``kind``."""
    return int(_table(check_feature_set(kind)).shape[1])
