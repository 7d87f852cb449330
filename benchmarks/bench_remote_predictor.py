"""Latency predictor fitted on campaign measurements (issue 6): train on 20 / 50 / 100 of the measured cells,
score Spearman and mean abs % error on the rest; 20 random splits each.

    .venv/bin/python benchmarks/bench_remote_predictor.py --data-dir /tmp/hwd-e2e --out benchmarks/results/remote

Two predictors from `hwdiffnas.predictors`: plain cell features (``fit_latency_predictor``) and the same with a
transfer basis built from the other devices' latency tables in the store (``build_transfer_basis``).
Writes ``predictor.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/remote"))
    ap.add_argument("--device", default="local-cpu")
    ap.add_argument("--splits", type=int, default=20)
    args = ap.parse_args()
    from hwdiffnas.benchmark import open_store
    from hwdiffnas.campaign import measured_medians
    from hwdiffnas.predictors import build_transfer_basis

    store = open_store(args.data_dir)
    all_cells = store.cells()
    tables = {}
    for dev in store.latency_devices():
        if dev == args.device or dev.startswith(args.device + "+"):
            continue
        lat = store.latency(dev)
        if np.isfinite(lat).sum() > 1000:
            tables[dev] = lat
    basis = build_transfer_basis(all_cells, tables)
    out: dict = {"device": args.device, "splits": args.splits, "basis_devices": len(tables), "results": []}
    for stat in ("median", "min"):
        table = measured_medians(store, args.device, statistic=stat)
        cells, y = list(table), np.array(list(table.values()))
        out[f"{stat}_ms_range"] = [float(y.min()), float(y.max())]
        out["measured_cells"] = len(cells)
        for n_train in (20, 50, 100):
            for name, b in (("features", None), ("features+transfer", basis)):
                row = _row(cells, y, n_train, name, b, args.splits)
                row["statistic"] = stat
                out["results"].append(row)
                print(json.dumps(row))
    store.close()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "predictor.json").write_text(json.dumps(out, indent=2))
    return 0


def _row(cells: list, y: np.ndarray, n_train: int, name: str, b: object, splits: int) -> dict:
    from hwdiffnas.campaign import held_out_quality

    qs = [held_out_quality(cells, y, n_train, seed=s, basis=b) for s in range(splits)]
    sp = np.array([q.spearman for q in qs])
    mape = np.array([q.mape_pct for q in qs])
    return {"n_train": n_train, "n_test": qs[0].n_test, "predictor": name,
            "spearman_mean": float(sp.mean()), "spearman_sd": float(sp.std()),
            "spearman_min": float(sp.min()), "mape_mean": float(mape.mean()), "mape_sd": float(mape.std())}


if __name__ == "__main__":
    sys.exit(main())
