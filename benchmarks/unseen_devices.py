"""Search on devices the generator never saw, each known only from 20 measured cells.

    .venv/bin/python benchmarks/unseen_devices.py --data-dir DIR --checkpoint CKPT [--seeds 0 1 2] [--rows 20]
        [--out benchmarks/results/unseen_devices.json]

CKPT must be trained without the held-out devices (``hwdiffnas train --exclude-devices ...``); the script refuses
a checkpoint that knows one of them. For each held-out grid device and seed, ``--rows`` connected cells spread
over the device's latency range (one drawn from each of ``--rows`` equal-count latency strata) play the measured
rows of ``--device-table``; the transfer basis of the latency estimate uses only the other store devices (every
held-out device and its siblings excluded). Budgets are the device's true 25/50/75 % connected-cell quantiles.
Every accuracy is known and at most ``--queries`` are looked up (the issue's protocol for new devices). A checkpoint
trained on a fraction of the labels (``train --label-fraction``) searches as ``hwdiffnas search`` does with it: its
labels are known for free (a labelled pick counts like a looked-up one) and the surrogate is fitted on them.

Per case: regret of the top returned pick that the search does not flag (``may_exceed_budget``) against the
oracle under the true table, whether that pick (and each unflagged returned pick) is truly over budget, whether
any unflagged pick truly fits, and the same counts for flagged picks.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

HELD_OUT = ("pixel3", "raspi4", "jetson-nano-fp16", "edgetpu-int8", "pi5-litert")
SIBLINGS = ("jetson-nano-fp32", "pi5-torchmobile")


def spread_rows(lat: np.ndarray, ok: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``k`` cells, one from each of ``k`` equal-count strata of the latency order of ``ok`` cells."""
    idx = np.flatnonzero(ok)
    order = idx[np.argsort(lat[idx], kind="stable")]
    return np.array([rng.choice(part) for part in np.array_split(order, k)], dtype=np.int64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rows", type=int, default=20)
    ap.add_argument("--reference-rows", action="store_true",
                    help="the rows include HELP's ten reference cells (the device representation is then exact); "
                         "the rest are spread over the latency range")
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--global-share", type=float, default=None,
                    help="queries' share on the surrogate's global ranking (default: by label fraction)")
    ap.add_argument("--upper-delta", type=float, default=0.05)
    ap.add_argument("--measurements", type=int, default=0,
                    help="latency measurements the search may make on the device (simulated by the table)")
    ap.add_argument("--measure-slack", type=float, default=None,
                    help="with measurements, estimates up to this factor over the budget stay measurement candidates "
                         "(default: the search's default)")
    ap.add_argument("--devices", nargs="*", default=list(HELD_OUT))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from hwdiffnas.benchmark import open_store
    from hwdiffnas.generator.model import Generator
    from hwdiffnas.harness import make_task
    from hwdiffnas.latency.reference import HELP_REFERENCE_ARCHS
    from hwdiffnas.predictors.latency import build_transfer_basis
    from hwdiffnas.search import SearchSettings, default_global_share, device_from_rows, label_fraction, prepare_search
    from hwdiffnas.space import Cell

    if args.measure_slack is None:
        args.measure_slack = SearchSettings.measure_slack
    gen = Generator.load(args.checkpoint)
    seen = sorted(set(gen.meta.devices) & set(HELD_OUT + SIBLINGS))
    if seen:
        raise SystemExit(f"{args.checkpoint} was trained on held-out device(s) {seen}; train with "
                         f"--exclude-devices {' '.join(HELD_OUT + SIBLINGS)}")
    store = open_store(args.data_dir)
    cells = store.cells()
    index = {c: i for i, c in enumerate(cells)}
    # the checkpoint's labels are known for free and the surrogate is fitted on them (all labels: the shipped one)
    setup = prepare_search(gen, "cifar100", store)
    known = setup.labels.known
    # one transfer basis for the whole run: every held-out device and its siblings left out
    basis = build_transfer_basis(cells, {d: store.latency(d) for d in store.latency_devices()
                                         if d not in HELD_OUT + SIBLINGS})
    cases = []
    t_all = time.perf_counter()
    for device in args.devices:
        for q in ("p25", "p50", "p75"):
            task, acc, best = make_task(store, device, q, "cifar100", gen.meta.accuracy_column)
            lat = task.latency_ms
            ok = task.connected & np.isfinite(lat)
            for seed in args.seeds:
                rng = np.random.default_rng([seed, 104729])
                if args.reference_rows:
                    ref = np.array([index[Cell.from_str(a)] for a in HELP_REFERENCE_ARCHS])
                    rest = ok.copy()
                    rest[ref] = False
                    picked_rows = np.concatenate([ref, spread_rows(lat, rest, args.rows - len(ref), rng)])
                else:
                    picked_rows = spread_rows(lat, ok, args.rows, rng)
                rows = {cells[i]: float(lat[i]) for i in picked_rows}
                dev = device_from_rows(device, rows, store, row_source="measured", basis=basis)
                used: set[int] = set()

                def lookup(c, used=used, acc=acc):
                    used.add(index[c])
                    return float(acc[index[c]])

                settings = SearchSettings(samples=args.samples, queries=args.queries, top=args.queries, seed=seed,
                                          global_share=args.global_share, upper_delta=args.upper_delta,
                                          measurements=args.measurements, measure_slack=args.measure_slack)
                measured: set[int] = set()

                def measure(c, measured=measured, lat=lat):
                    measured.add(index[c])
                    return float(lat[index[c]])

                rep = setup.run(dev, task.budget_ms, settings, accuracy_lookup=lookup,
                                measure=measure if args.measurements else None)
                assert len(measured) <= args.measurements
                assert len(used) <= args.queries
                true_lat = {r.arch_str: float(lat[index[Cell.from_str(r.arch_str)]]) for r in rep.results}
                looked = [r for r in rep.results if r.accuracy_source in ("benchmark", "label")]
                safe = [r for r in looked if not r.may_exceed_budget]
                flagged = [r for r in looked if r.may_exceed_budget]
                top = safe[0] if safe else None
                over = {r.arch_str: true_lat[r.arch_str] > task.budget_ms for r in looked}
                cases.append({
                    "device": device, "budget": q, "budget_ms": task.budget_ms, "seed": seed,
                    "oracle": best["accuracy"], "budget_quantile_est": rep.budget_quantile,
                    "regret": best["accuracy"] - top.accuracy if top else None,
                    "top_over_budget": over[top.arch_str] if top else None,
                    "safe_picks": len(safe), "safe_over_budget": sum(over[r.arch_str] for r in safe),
                    "safe_fitting": sum(not over[r.arch_str] for r in safe),
                    "flagged_picks": len(flagged), "flagged_over_budget": sum(over[r.arch_str] for r in flagged),
                    "feasible_fraction_est": rep.feasible_fraction, "queries": rep.queries,
                    "measurements": rep.measurements,
                    "notes": rep.notes, "pick": top.arch_str if top else None,
                })
                c = cases[-1]
                reg = "none" if c["regret"] is None else f"{c['regret']:.3f}"
                print(f"{device:>17} {q} seed {seed}: regret {reg} top over {c['top_over_budget']} "
                      f"safe {c['safe_picks']} (over {c['safe_over_budget']}) "
                      f"flagged {c['flagged_picks']} (over {c['flagged_over_budget']})", flush=True)
    regrets = [c["regret"] for c in cases if c["regret"] is not None]
    per_cell = {}
    for c in cases:
        per_cell.setdefault(f"{c['device']}@{c['budget']}", []).append(c["regret"])
    safe_total = sum(c["safe_picks"] for c in cases)
    summary = {
        "checkpoint": args.checkpoint, "label_fraction": label_fraction(gen), "known_labels": len(known),
        "rows": args.rows, "reference_rows": args.reference_rows, "seeds": args.seeds,
        "queries": args.queries,
        "global_share": default_global_share(gen) if args.global_share is None else args.global_share,
        "upper_delta": args.upper_delta,
        "measurements": args.measurements, "measure_slack": args.measure_slack, "cases": len(cases),
        "mean_regret": float(np.mean(regrets)) if regrets else None,
        "worst_grid_cell": max(float(np.mean([r for r in v if r is not None] or [np.nan])) for v in per_cell.values()),
        "cases_without_fitting_pick": sum(1 for c in cases if c["safe_fitting"] == 0),
        "cases_top_pick_over_budget": sum(1 for c in cases if c["top_over_budget"]),
        "safe_picks": safe_total,
        "safe_picks_over_budget_fraction": sum(c["safe_over_budget"] for c in cases) / max(1, safe_total),
        "flagged_picks": sum(c["flagged_picks"] for c in cases),
        "flagged_picks_over_budget": sum(c["flagged_over_budget"] for c in cases),
        "wall_s": time.perf_counter() - t_all,
    }
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"summary": summary, "cases": cases}, indent=1))


if __name__ == "__main__":
    main()
