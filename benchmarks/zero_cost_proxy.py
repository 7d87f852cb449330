"""Would a data-free zero-cost proxy help the accuracy surrogate at the top? Synflow on NB201 networks.

    .venv/bin/python benchmarks/zero_cost_proxy.py --data-dir DIR [--best 200] [--random 300]
        [--out benchmarks/results/labels/zero_cost_proxy.json]

Synflow (Tanaka et al., 2020): the network in float64 with every parameter replaced by its absolute value, one
all-ones input, R = sum of the outputs; score = Σ |θ · ∂R/∂θ| (log taken). Batch-norm layers run in eval mode.
Scored on the ``--best`` most accurate connected cells (CIFAR-100, NATS column) plus ``--random`` other connected
cells (seed 0). Prints Spearman correlations with accuracy over all scored cells and among cells above 70 % and
72 %, next to the parameter-count proxy (9 × conv3x3 + conv1x1 edges) on the same cells.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (ties broken by order; the scores here are continuous)."""
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


def synflow(cell: object) -> float:
    """log synflow score of the CIFAR-100 NB201 network of ``cell`` (the project's ``synflow`` objective)."""
    from hwdiffnas.materialize import build_network
    from hwdiffnas.objectives import get_objective

    return get_objective("synflow").compute(build_network(cell, "cifar100"), (1, 3, 32, 32))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--best", type=int, default=200)
    ap.add_argument("--random", type=int, default=300)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import torch

    from hwdiffnas.benchmark import open_store
    from hwdiffnas.space import CONV1, CONV3

    torch.set_num_threads(1)
    store = open_store(args.data_dir)
    cells = store.cells()
    acc = np.asarray(store.accuracy("cifar100", "nats"), dtype=np.float64)
    ok = np.flatnonzero(store.connected() & np.isfinite(acc))
    best = ok[np.argsort(-acc[ok])[: args.best]]
    rnd = np.random.default_rng(0).choice(np.setdiff1d(ok, best), args.random, replace=False)
    idx = np.concatenate([best, rnd])
    t0 = time.perf_counter()
    score = np.array([synflow(cells[i]) for i in idx])
    seconds = time.perf_counter() - t0
    ops = np.array([cells[i].ops for i in idx])
    params = 9.0 * (ops == CONV3).sum(1) + (ops == CONV1).sum(1)
    a = acc[idx]
    result = {"cells": len(idx), "seconds": seconds}
    for name, mask in (("all", np.ones(len(idx), bool)), ("above_70", a > 70), ("above_72", a > 72)):
        result[name] = {"n": int(mask.sum()), "synflow": spearman(score[mask], a[mask]),
                        "params": spearman(params[mask], a[mask])}
        print(f"{name:>9}: {int(mask.sum()):4d} cells, Spearman synflow {result[name]['synflow']:.3f}, "
              f"parameter count {result[name]['params']:.3f}")
    print(f"{len(idx)} networks scored in {seconds:.0f} s")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
