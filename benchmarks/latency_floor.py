"""How much regret the latency estimate alone costs on devices left out of training (no generator, no query limit).

    .venv/bin/python benchmarks/latency_floor.py --data-dir DIR [--rows 20 50 100] [--seeds 0 1 2]
        [--margins 1.05 1.1 1.2] [--risk 0.05] [--out benchmarks/results/unseen/latency_floor.json]

Every accuracy is known here, so the only loss is the latency: for each held-out device (the unseen-device
protocol's five, with the same transfer basis: every held-out table and its siblings left out) and budget (its true
25/50/75 % connected-cell quantiles), the pick is the most accurate connected cell that a latency estimate calls
sure to fit. Estimates compared:

- ``rows N``: the predictor `--device-table` fits on N connected cells spread over the latency range (one per
  equal-count stratum, as in ``unseen_devices.py``); a cell is sure when its one-sided upper bound at ``--risk``
  fits; per seed;
- ``whole table``: the same predictor fitted on every connected cell of the device's table — the best this
  predictor class can do, whatever cells were measured;
- ``exact / m``: the true table with the budget divided by a safety margin ``m`` (what a perfect ranking with a
  fixed margin costs; m = 1 is the oracle).

Regret = oracle − the pick's accuracy; "over" counts picks whose true latency exceeds the budget.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--rows", type=int, nargs="+", default=[20, 50, 100])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--margins", type=float, nargs="+", default=[1.05, 1.1, 1.2])
    ap.add_argument("--risk", type=float, default=0.05)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from unseen_devices import HELD_OUT, SIBLINGS, spread_rows

    from hwdiffnas.benchmark import open_store
    from hwdiffnas.harness import make_task
    from hwdiffnas.predictors.latency import build_transfer_basis, fit_latency_predictor
    from hwdiffnas.space import cell_codes

    t0 = time.perf_counter()
    store = open_store(args.data_dir)
    cells = store.cells()
    codes = cell_codes(cells)
    basis = build_transfer_basis(cells, {d: store.latency(d) for d in store.latency_devices()
                                         if d not in HELD_OUT + SIBLINGS})
    cases = []
    whole_error: dict[str, float] = {}  # mean absolute relative error of the whole-table fit, connected cells
    for device in HELD_OUT:
        tasks = {q: make_task(store, device, q) for q in ("p25", "p50", "p75")}
        lat = tasks["p50"][0].latency_ms
        ok = tasks["p50"][0].connected & np.isfinite(lat)
        fits: list[tuple[str, int | None, np.ndarray]] = []  # (estimate, seed, upper bound per cell)
        whole = fit_latency_predictor([cells[i] for i in np.flatnonzero(ok)], lat[ok], basis=basis)
        fits.append(("whole table", None, whole.upper_ms(codes, args.risk)))
        point = np.exp(whole.all_log_predictions())[codes]
        whole_error[device] = float(np.mean(np.abs(point[ok] / lat[ok] - 1.0)))
        for n in args.rows:
            for seed in args.seeds:
                rows = spread_rows(lat, ok, n, np.random.default_rng([seed, 104729]))
                pred = fit_latency_predictor([cells[i] for i in rows], lat[rows], basis=basis)
                upper = pred.upper_ms(codes, args.risk)
                upper[rows] = lat[rows]  # measured rows are exact
                fits.append((f"rows {n}", seed, upper))
        for q, (task, acc, best) in tasks.items():
            budget = task.budget_ms
            picks = [(name, seed, ok & (upper <= budget)) for name, seed, upper in fits]
            picks += [(f"exact / {m:g}", None, ok & (lat <= budget / m)) for m in args.margins]
            for name, seed, sure in picks:
                pick = int(np.flatnonzero(sure)[np.argmax(acc[sure])]) if sure.any() else None
                cases.append({"device": device, "budget": q, "estimate": name, "seed": seed,
                              "regret": None if pick is None else float(best["accuracy"] - acc[pick]),
                              "over_budget": None if pick is None else bool(lat[pick] > budget),
                              "pick": None if pick is None else cells[pick].arch_str})
            print(f"{device:>17} {q}: " + "  ".join(
                f"{c['estimate']}{'' if c['seed'] is None else '/' + str(c['seed'])} "
                + ("none" if c["regret"] is None else f"{c['regret']:.2f}{'!' if c['over_budget'] else ''}")
                for c in cases if c["device"] == device and c["budget"] == q), flush=True)
    summary = {}
    for name in dict.fromkeys(c["estimate"] for c in cases):
        mine = [c for c in cases if c["estimate"] == name]
        got = [c for c in mine if c["regret"] is not None]
        summary[name] = {"cases": len(mine), "without_pick": len(mine) - len(got),
                         "mean_regret": float(np.mean([c["regret"] for c in got])) if got else None,
                         "over_budget": sum(c["over_budget"] for c in got)}
    result = {"risk": args.risk, "rows": args.rows, "seeds": args.seeds, "basis_devices": list(basis.devices),
              "whole_table_mean_abs_error": whole_error, "summary": summary, "wall_s": time.perf_counter() - t0}
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({**result, "cases": cases}, indent=1))


if __name__ == "__main__":
    main()
