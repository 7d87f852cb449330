"""Accuracy surrogates alone on the protocol grid, with few labels (no generator involved).

    .venv/bin/python benchmarks/surrogate_labels.py --data-dir DIR --fraction 0.01 --subsets 8 \
        [--out benchmarks/results/labels/surrogates_1pct.json]

For each label subset (``labelled_mask(connected, fraction, seed)``, seeds 0..subsets-1, the subsets the
label-fraction checkpoints use) every model is fitted on the labelled cells (one row per NATS class, its mean
label), and on each grid cell (CIFAR-100, NATS column) its 10 best-predicted fitting cells are queried — at most one
per NATS class, none from a labelled class; the best labelled fitting cell counts for free. Regret = oracle − the
best accuracy seen. Models: the search's forest (`struct` features, 100 trees, leaves of 3+), the forest on the
`live` features, with leaves of 1+, or with 60 % of the split columns per node; ridge regression on `struct` and on
`live`; the rank average and the plain average of forest and ridge; Gaussian processes (RBF kernel on standardized
`struct` features, length scale² = the median squared distance × {0.5, 1, 2}, noise 0.1).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _gp(x: np.ndarray, rows: np.ndarray, y: np.ndarray, scale: float, noise: float = 0.1) -> np.ndarray:
    """Posterior mean of an RBF Gaussian process fitted on ``x[rows]``, ``y``, predicted for every row of ``x``."""
    mu, sd = x[rows].mean(0), x[rows].std(0) + 1e-9
    z = (x - mu) / sd
    zr = z[rows]
    d2 = ((zr[:, None, :] - zr[None, :, :]) ** 2).sum(-1)
    ell2 = float(np.median(d2[d2 > 0])) * scale
    ym, ys = y.mean(), y.std()
    alpha = np.linalg.solve(np.exp(-d2 / ell2) + noise * np.eye(len(rows)), (y - ym) / ys)
    sq = (z**2).sum(1)[:, None] + (zr**2).sum(1)[None, :] - 2 * z @ zr.T
    return ym + ys * np.exp(-np.maximum(sq, 0.0) / ell2) @ alpha


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--fraction", type=float, default=0.01)
    ap.add_argument("--subsets", type=int, default=8)
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from hwdiffnas.benchmark import open_store
    from hwdiffnas.generator.train import labelled_mask
    from hwdiffnas.harness import default_grid, make_task
    from hwdiffnas.predictors.features import cell_features
    from hwdiffnas.predictors.forest import fit_forest
    from hwdiffnas.predictors.ridge import fit_ridge
    from hwdiffnas.space import cell_codes

    store = open_store(args.data_dir)
    cells = store.cells()
    conn = store.connected()
    codes = cell_codes(cells)
    acc = np.asarray(store.accuracy("cifar100", "nats"), dtype=np.float64)
    classes = np.array([c.nats_unique_str for c in cells])
    x_struct = cell_features(codes, "struct")
    x_live = cell_features(codes, "live")[:, 30:]  # without the raw one-hot of dead and live edges
    tasks = []
    for device, budget in default_grid():
        task, _acc, best = make_task(store, device, budget)
        fits = conn & np.isfinite(task.latency_ms) & (task.latency_ms <= task.budget_ms)
        tasks.append((f"{device}@{budget}", fits, float(best["accuracy"])))
    lambdas = [0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000]

    def rank(v: np.ndarray) -> np.ndarray:
        return np.argsort(np.argsort(v)) / len(v)

    def models(rows: np.ndarray, y: np.ndarray) -> dict[str, Callable[[], np.ndarray]]:
        return {
            "forest_struct": lambda: fit_forest(x_struct[rows], y, n_trees=100, min_leaf=3).predict(x_struct),
            "forest_live": lambda: fit_forest(x_live[rows], y, n_trees=100, min_leaf=3).predict(x_live),
            "forest_struct_leaf1": lambda: fit_forest(x_struct[rows], y, n_trees=100, min_leaf=1).predict(x_struct),
            "forest_struct_mf0.6": lambda: fit_forest(x_struct[rows], y, n_trees=100, min_leaf=3,
                                                      max_features=0.6).predict(x_struct),
            "ridge_struct": lambda: fit_ridge(x_struct[rows], y, lambdas).predict(x_struct),
            "ridge_live": lambda: fit_ridge(x_live[rows], y, lambdas).predict(x_live),
            **{f"gp_struct_{s}": (lambda s=s: _gp(x_struct, rows, y, s)) for s in (0.5, 1.0, 2.0)},
        }

    regrets: dict[str, list[list[float]]] = {}
    t0 = time.perf_counter()
    for seed in range(args.subsets):
        lab = labelled_mask(conn, args.fraction, seed) & np.isfinite(acc)
        groups: dict[str, list[int]] = {}
        for i in np.flatnonzero(lab):
            groups.setdefault(classes[i], []).append(int(i))
        rows = np.array([g[0] for g in groups.values()])
        y = np.array([acc[g].mean() for g in groups.values()])
        preds = {name: fit() for name, fit in models(rows, y).items()}
        preds["rank_average_forest_ridge"] = rank(preds["forest_struct"]) + rank(preds["ridge_struct"])
        preds["average_forest_ridge"] = 0.5 * (preds["forest_struct"] + preds["ridge_struct"])
        labelled_classes = set(classes[lab])
        for name, pred in preds.items():
            per_task = []
            for _key, fits, oracle in tasks:
                free = acc[lab & fits].max() if (lab & fits).any() else -np.inf
                cand = np.flatnonzero(fits & ~lab)
                seen, asked = set(labelled_classes), []
                for i in cand[np.argsort(-pred[cand], kind="stable")]:
                    if classes[i] not in seen:
                        seen.add(classes[i])
                        asked.append(i)
                        if len(asked) == args.queries:
                            break
                per_task.append(oracle - max(acc[asked].max() if asked else -np.inf, free))
            regrets.setdefault(name, []).append(per_task)
        print(f"subset {seed}: {int(lab.sum())} labels, {len(rows)} classes ({time.perf_counter() - t0:.0f} s)",
              flush=True)
    summary = {}
    for name, r in regrets.items():
        arr = np.array(r)  # (subsets, grid cells)
        summary[name] = {"mean_regret": float(arr.mean()), "worst_grid_cell": float(arr.mean(0).max()),
                         "per_subset": [float(v) for v in arr.mean(1)]}
        print(f"{name:>26} mean {arr.mean():.3f} worst {arr.mean(0).max():.3f} "
              f"per subset {np.round(arr.mean(1), 3).tolist()}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({
            "fraction": args.fraction, "subsets": args.subsets, "queries": args.queries, "summary": summary,
            "grid": [k for k, _, _ in tasks], "regrets": regrets, "wall_s": time.perf_counter() - t0}, indent=1))


if __name__ == "__main__":
    main()
