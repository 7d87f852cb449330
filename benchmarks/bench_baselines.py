"""Benchmark of the store, the oracle and the baseline searches (issue 3).

Measures the import of the whole NB201 data folder into a fresh data directory, checks the published oracle
values, and runs the full protocol grid (HELP budgets + quantile devices) with random search and REA at
10/50/100 queries and the random-forest predictor at 1/5/10 % labels + 10 queries, 10 seeds each.

    .venv/bin/python benchmarks/bench_baselines.py --nb201 ../shared/data/nb201 --out benchmarks/results/baselines

Writes ``bench.json``, ``bench.md`` (full table), ``bench_pareto.png`` and ``summary.md`` (what goes into
docs/benchmarks.md) into ``--out``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hwdiffnas.benchmark import open_store, oracle
from hwdiffnas.harness import MethodConfig, default_grid, run_grid, summary_by_config, write_outputs
from hwdiffnas.importers import import_paths

PUBLISHED = [  # (column, device, budget ms, CIFAR-100 accuracy to 2 decimals)
    ("nats", "fpga", 5.0, 72.28),
    ("nats", "fpga", 6.0, 73.48),
    ("nb201v11", "fpga", 6.0, 73.26),
    ("nb201v11", "eyeriss", 7.0, 73.26),
]


def protocol_configs(queries: list[int], fractions: list[float], predictor_queries: int) -> list[MethodConfig]:
    cfgs = [MethodConfig(m, q) for m in ("random", "rea") for q in queries]
    cfgs += [MethodConfig("predictor", predictor_queries, {"label_fraction": f}) for f in fractions]
    return cfgs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nb201", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201"))
    ap.add_argument("--out", default="benchmarks/results/baselines")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--queries", default="10,50,100")
    ap.add_argument("--fractions", default="0.01,0.05,0.1")
    ap.add_argument("--predictor-queries", type=int, default=10)
    ap.add_argument("--devices", help="comma-separated subset of the grid's devices")
    args = ap.parse_args()
    out = Path(args.out)
    lines = [f"Host: {platform.node()} ({platform.machine()}), Python {platform.python_version()}", ""]

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        t0, c0 = time.perf_counter(), time.process_time()
        rep = import_paths([args.nb201], data_dir, trust_pickle=True)
        t_import, c_import = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        import_paths([Path(args.nb201) / f for f in ("arch_index.csv", "accuracy.csv", "latency_help_ms.csv",
                                                     "latency_eagle_ms.csv", "latency_hw360_c100.csv")],
                     Path(tmp) / "csv-only")
        t_csv, c_csv = time.perf_counter() - t0, time.process_time() - c0
        size_mb = rep.store_path.stat().st_size / 1e6
        lines += [f"- import of the whole folder `{args.nb201}` with `--trust-pickle` ({len(rep.imported)} files, "
                  f"{len(rep.skipped)} skipped as not benchmark files) into an empty data dir: "
                  f"**{t_import:.1f} s** wall, {c_import:.1f} s CPU (store {size_mb:.1f} MB)",
                  f"- import of the five CSV tables only: **{t_csv:.1f} s** wall, {c_csv:.1f} s CPU", ""]
        print("\n".join(lines[-4:]), file=sys.stderr)

        with open_store(data_dir) as store:
            conn, cells = store.connected(), store.cells()
            lines += ["| accuracy column | device | budget | oracle accuracy | published | idx | latency ms |",
                      "|---|---|---|---|---|---|---|"]
            for column, device, budget, want in PUBLISHED:
                t0 = time.perf_counter()
                r = oracle(store.accuracy("cifar100", column), store.latency(device), budget, conn, cells)
                ok = "ok" if round(r.accuracy, 2) == want else "MISMATCH"
                lines.append(f"| {column} | {device} | ≤ {budget:g} ms | {r.accuracy:.2f} | {want} ({ok}) | "
                             f"{r.index} | {r.latency_ms:.3f} |")
            lines.append("")

            grid = default_grid(args.devices.split(",") if args.devices else None)
            configs = protocol_configs([int(q) for q in args.queries.split(",")],
                                       [float(f) for f in args.fractions.split(",")], args.predictor_queries)
            t0 = time.perf_counter()
            result = run_grid(store, grid, configs, list(range(args.seeds)),
                              log=lambda s: print(s, file=sys.stderr, flush=True))
            t_grid = time.perf_counter() - t0
            paths = write_outputs(store, result, out)

    lines += [f"Grid: {len(grid)} (device, budget) cells × {len(configs)} method configurations × {args.seeds} "
              f"seeds in {t_grid:.0f} s. Accuracy: CIFAR-100, column `nats`. Regret = oracle − true accuracy of "
              "the method's pick (points); a query = one distinct accuracy look-up (predictor labels included).",
              "", "Mean over all grid cells and seeds:", "",
              "| method | regret (pts) mean ± std | runs that found the oracle cell | accuracy queries | "
              "wall s per run |", "|---|---|---|---|---|"]
    for s in summary_by_config(result):
        lines.append(f"| {s['config']} | {s['regret']['mean']:.2f} ± {s['regret']['std']:.2f} | "
                     f"{100 * s['found_oracle']:.0f} % | {s['queries']['mean']:.0f} | {s['wall_s']['mean']:.3f} |")
    lines += ["", "Regret (points, mean ± std over seeds) per grid cell:", ""]
    labels = [c.label for c in configs]
    lines.append("| device | budget | oracle | " + " | ".join(labels) + " |")
    lines.append("|---|---|---|" + "---|" * len(labels))
    for e in result["grid"]:
        vals = []
        for r in e["results"]:
            reg = np.array([x["regret"] for x in r["runs"]], dtype=float)
            vals.append(f"{np.nanmean(reg):.2f} ± {np.nanstd(reg):.2f}")
        lines.append(f"| {e['device']} | {e['budget']} ({e['budget_ms']:.3g} ms) | "
                     f"{e['oracle']['accuracy']:.2f} | " + " | ".join(vals) + " |")
    viol = sum(x["violations"] for e in result["grid"] for r in e["results"] for x in r["runs"])
    lines += ["", f"Budget violations over all runs: {viol}.",
              f"Full table: `{paths['markdown']}`; JSON: `{paths['json']}`; plot: `{paths['png']}`."]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
