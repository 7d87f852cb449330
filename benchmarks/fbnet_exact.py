"""The exact FBNet optimum on the lookup-table devices: solve time, and a brute-force check on reduced instances.

    python benchmarks/fbnet_exact.py --data-dir ../shared/data/fbnet [--out benchmarks/results/fbnet_exact.json]

Budgets: the 25/50/75 % quantiles of the 5,000 HELP architectures' latencies on each device. Objectives:
``flops`` (MACs) and ``params``. Each solve is timed over the full 22-layer space; then the same device, budget and
objective are solved on a reduced instance (6 free layers, chosen at random, the rest fixed) and compared with a
brute-force scan of its 9^6 = 531,441 architectures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hwdiffnas.spaces.fbnet.arch import NUM_BLOCKS, NUM_LAYERS  # noqa: E402
from hwdiffnas.spaces.fbnet.cost import cost_tables  # noqa: E402
from hwdiffnas.spaces.fbnet.data import LUT_DEVICES, read_fbnet_tables  # noqa: E402
from hwdiffnas.spaces.fbnet.lut import load_latency_models  # noqa: E402
from hwdiffnas.spaces.fbnet.optimum import ADDITIVE_OBJECTIVES, exact_optimum  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True, help="FBNet data folder")
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    tables = read_fbnet_tables(args.data_dir)
    models = load_latency_models()
    macs, params = cost_tables("cifar100")
    grid = np.array(list(itertools.product(range(NUM_BLOCKS), repeat=6)))
    rng = np.random.default_rng(args.seed)
    rows = []
    print("| device | budget | budget ms | objective | optimum | latency ms | solve s | reduced: exact = brute force |")
    print("|---|---|---|---|---|---|---|---|")
    for device in LUT_DEVICES:
        model = models[device]
        for q in (25, 50, 75):
            budget = float(np.percentile(tables.latency_ms[device], q))
            free = sorted(rng.choice(NUM_LAYERS, size=6, replace=False).tolist())
            base = rng.integers(0, NUM_BLOCKS, size=NUM_LAYERS)
            fixed = {layer: int(base[layer]) for layer in range(NUM_LAYERS) if layer not in free}
            ops = np.repeat(base[None, :], len(grid), axis=0)
            ops[:, free] = grid
            lat = model.latency_batch_ms(ops)
            for objective in ADDITIVE_OBJECTIVES:
                t0 = time.perf_counter()
                best = exact_optimum(model, budget, objective)
                solve_s = time.perf_counter() - t0
                assert best is not None and best.latency_ms <= budget
                table = macs if objective == "flops" else params
                # reduced instance at a budget inside its own latency range (its median)
                small_budget = float(np.median(lat))
                small = exact_optimum(model, small_budget, objective, fixed=fixed)
                brute = int(table.total_batch(ops)[lat <= small_budget].max())
                ok = small is not None and small.value == brute and small.latency_ms <= small_budget
                rows.append({"device": device, "quantile": q, "budget_ms": budget, "objective": objective,
                             "optimum": best.arch.op_string, "value": best.value, "latency_ms": best.latency_ms,
                             "solve_s": solve_s, "reduced_free_layers": free, "reduced_budget_ms": small_budget,
                             "reduced_exact": small.value if small else None, "reduced_brute": brute,
                             "reduced_match": ok})
                print(f"| {device} | p{q} | {budget:.3f} | {objective} | {best.arch.op_string} ({best.value:,}) | "
                      f"{best.latency_ms:.4f} | {solve_s:.3f} | {'yes' if ok else 'NO'} |")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
    bad = [r for r in rows if not r["reduced_match"]]
    print(f"{len(rows)} solves, max {max(r['solve_s'] for r in rows):.3f} s; reduced-instance mismatches: {len(bad)}")
    if bad:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
