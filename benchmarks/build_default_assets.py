"""Rebuild the assets `hwdiffnas search` ships: the generator checkpoint and the per-device latency estimators.

    .venv/bin/python benchmarks/build_default_assets.py --data-dir DIR [--steps 4000] [--seed 0]
        [--out hwdiffnas/assets] [--skip-train]

Writes ``generator_default.safetensors`` (the generator, trained on every device of the store with the reference
latencies, CIFAR-100 NATS accuracies) and ``generator_latency.safetensors`` (one features-mode ridge latency
predictor per training device, `hwdiffnas.predictors.fit_latency_predictor`, used only when no benchmark store is
present). Training resumes if interrupted: rerun the same command. The held-out error of each latency estimator
(fit on a seeded 80 % of the connected cells, scored on the other 20 %) is printed and written to
``benchmarks/results/latency_estimators.json``; the shipped estimators are then refitted on all cells.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra = np.argsort(np.argsort(a))
    rb = np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def build_latency_estimators(store, devices: list[str], out: Path, report: Path, seed: int = 0) -> dict:
    from hwdiffnas.predictors import fit_latency_predictor
    from hwdiffnas.search import save_shipped_estimators

    cells = store.cells()
    conn = store.connected()
    rng = np.random.default_rng(seed)
    preds, rows = {}, {}
    for d in devices:
        lat = store.latency(d)
        ok = np.flatnonzero(conn & np.isfinite(lat) & (lat > 0))
        perm = rng.permutation(ok)
        cut = int(0.8 * perm.size)
        tr, te = perm[:cut], perm[cut:]
        p = fit_latency_predictor([cells[i] for i in tr], lat[tr])
        point, lo, hi = p.predict([cells[i] for i in te], alpha=0.1)
        y = lat[te]
        rows[d] = {"spearman": _spearman(point, y), "mape": float(np.mean(np.abs(point - y) / y)),
                   "coverage90": float(np.mean((y >= lo) & (y <= hi))), "n_test": int(te.size)}
        preds[d] = fit_latency_predictor([cells[i] for i in ok], lat[ok])
        print(f"{d:>24}: held-out Spearman {rows[d]['spearman']:.3f}, MAPE {rows[d]['mape']:.1%}, "
              f"90% interval coverage {rows[d]['coverage90']:.1%}", flush=True)
    save_shipped_estimators(preds, out)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(rows, indent=1))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "hwdiffnas" / "assets"))
    ap.add_argument("--skip-train", action="store_true", help="only rebuild the latency estimators")
    args = ap.parse_args()

    from hwdiffnas.benchmark import open_store
    from hwdiffnas.generator import ASSET_NAME
    from hwdiffnas.generator.model import Generator
    from hwdiffnas.generator.train import TrainConfig, TrainingTables, train
    from hwdiffnas.search import LATENCY_ASSET

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / ASSET_NAME
    with open_store(args.data_dir) as store:
        if not args.skip_train:
            tables = TrainingTables.from_store(store, ("cifar100",), None)
            t0 = time.perf_counter()
            train(tables, ckpt, TrainConfig(steps=args.steps, seed=args.seed))
            print(f"generator trained in {time.perf_counter() - t0:.0f} s (this run)")
        gen = Generator.load(ckpt)
        build_latency_estimators(store, sorted(gen.meta.devices), out / LATENCY_ASSET,
                                 REPO / "benchmarks" / "results" / "latency_estimators.json", args.seed)
    state = ckpt.with_name(ckpt.name + ".state.safetensors")
    if state.exists():
        state.unlink()  # the optimizer state is not shipped
    for f in (ckpt, out / LATENCY_ASSET):
        print(f"{f}: {f.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
