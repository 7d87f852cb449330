"""Random search and regularized evolution against the exact optimum in the FBNet space (additive problems).

    python benchmarks/fbnet_baselines.py --data-dir ../shared/data/fbnet [--evaluations 100 1000 10000]
        [--seeds 0 1 2] [--out benchmarks/results/fbnet/baselines.json]

Devices fpga, eyeriss, raspi4, pixel3 (exact lookup-table latency, a free model); budgets at the 25/50/75 %
quantiles of HELP's 5,000 architectures on each; objectives ``flops`` (MACs) and ``params`` (exact per-layer
tables, counted as evaluations). Reports each method's best fitting objective as a share of the exact optimum
(`benchmarks/fbnet_exact.py`), mean over seeds and grid cells, and the worst cell.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hwdiffnas.baselines.open_space import OpenTask, random_search, regularized_evolution  # noqa: E402
from hwdiffnas.plugins import get_space  # noqa: E402
from hwdiffnas.spaces.fbnet.cost import cost_tables  # noqa: E402
from hwdiffnas.spaces.fbnet.data import LUT_DEVICES, read_fbnet_tables  # noqa: E402
from hwdiffnas.spaces.fbnet.lut import load_latency_models  # noqa: E402
from hwdiffnas.spaces.fbnet.optimum import ADDITIVE_OBJECTIVES, exact_optimum  # noqa: E402

METHODS = {"random": random_search, "rea": regularized_evolution}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--evaluations", nargs="+", type=int, default=[100, 1000, 10000])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    tables = read_fbnet_tables(args.data_dir)
    space = get_space("fbnet")
    luts = load_latency_models()
    costs = dict(zip(("flops", "params"), cost_tables("cifar100")))
    rows = []
    t0 = time.time()
    for device in LUT_DEVICES:
        lut = luts[device]
        for q in (25, 50, 75):
            budget = float(np.percentile(tables.latency_ms[device], q))
            for objective in ADDITIVE_OBJECTIVES:
                table = costs[objective]
                best = exact_optimum(lut, budget, objective)
                assert best is not None
                task = OpenTask(space, lambda archs, m=lut: m.latency_batch_ms(np.array([a.ops for a in archs])),
                                budget, lambda a, t=table: float(t.total(a)))
                for n in args.evaluations:
                    for name, method in METHODS.items():
                        for seed in args.seeds:
                            res = method(task, n, seed=seed)
                            assert res is not None and res.latency_ms <= budget
                            rows.append({"device": device, "quantile": q, "budget_ms": budget, "objective": objective,
                                         "evaluations": n, "method": name, "seed": seed, "value": res.value,
                                         "optimum": best.value, "share_of_optimum": res.value / best.value})
        print(f"  {device} done ({time.time() - t0:.0f} s)", flush=True)
    print("| objective | evaluations | random: mean share of optimum (worst cell) | REA: mean (worst cell) |")
    print("|---|---|---|---|")
    for objective in ADDITIVE_OBJECTIVES:
        for n in args.evaluations:
            cells = {}
            for r in rows:
                if r["objective"] == objective and r["evaluations"] == n:
                    cells.setdefault((r["method"], r["device"], r["quantile"]), []).append(r["share_of_optimum"])
            out = []
            for m in METHODS:
                per_cell = [np.mean(v) for (mm, _, _), v in cells.items() if mm == m]
                out.append(f"{np.mean(per_cell):.4f} ({min(per_cell):.4f})")
            print(f"| {objective} | {n} | {out[0]} | {out[1]} |")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
