"""Generator + search on the issue-3 grid: regret vs oracle, budget violations, sample statistics, speed.

    .venv/bin/python benchmarks/generator_grid.py --data-dir DIR [--checkpoint CKPT] [--seeds 0 1 2]
        [--queries 10] [--samples 500] [--steps 20] [--out benchmarks/results/generator_grid.json]

One checkpoint serves the whole grid (HELP protocol + pixel3, raspi4, jetson-nano-fp16, edgetpu-int8, pi5-litert at
the 25/50/75 % quantiles of connected cells), CIFAR-100, NATS column. Per grid cell and seed: the best queried
cell's true accuracy, regret (oracle − it, points), whether any returned cell is over budget, the fraction of raw
samples within budget, validity, uniqueness and novelty. "worst" is the largest per-grid-cell mean over seeds.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--checkpoint", nargs="+", default=None,
                    help="one checkpoint, or one per seed (e.g. trained on different label subsets: seed i uses "
                         "checkpoint i, so the grid's spread includes the choice of labels)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", default="joint")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--adaptive", type=float, default=0.0)
    ap.add_argument("--margin", type=float, default=None, help="default: the search's default")
    ap.add_argument("--sweep-share", type=float, default=None, help="default: the search's default")
    ap.add_argument("--refine-top", type=int, default=5)
    ap.add_argument("--refine-radius", type=int, default=2)
    ap.add_argument("--global-share", type=float, default=None,
                    help="queries' share on the surrogate's global ranking (default: by label fraction)")
    ap.add_argument("--no-surrogate", action="store_true", help="rank by generator frequency only (ablation)")
    ap.add_argument("--devices", nargs="*", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from hwdiffnas.benchmark import open_store
    from hwdiffnas.generator import default_checkpoint_path
    from hwdiffnas.generator.model import Generator
    from hwdiffnas.harness import default_grid, make_task
    from hwdiffnas.search import SearchSettings, default_global_share, label_fraction, prepare_search
    from hwdiffnas.space import Cell

    if args.margin is None:
        args.margin = SearchSettings.quantile_margin
    if args.sweep_share is None:
        args.sweep_share = SearchSettings.sweep_share
    ckpts = args.checkpoint or [str(default_checkpoint_path())]
    if len(ckpts) > 1 and len(ckpts) != len(args.seeds):
        raise SystemExit(f"{len(ckpts)} checkpoints need as many seeds, got {args.seeds}")
    store = open_store(args.data_dir)
    cells = store.cells()
    index = {c: i for i, c in enumerate(cells)}
    models = {}  # checkpoint -> (generator, its search set-up: training labels, surrogate)
    for ck in dict.fromkeys(ckpts):
        g = Generator.load(ck)
        setup = prepare_search(g, "cifar100", store)
        if args.no_surrogate:
            setup.labels = replace(setup.labels, surrogate=None)
        models[ck] = (g, setup)
    gen, setup = models[ckpts[0]]
    rows = []
    t_all = time.perf_counter()
    for device, budget in default_grid(args.devices):
        task, acc, best = make_task(store, device, budget, "cifar100", gen.meta.accuracy_column)
        dev = models[ckpts[0]][1].table_device(device, cells, task.latency_ms, task.connected)
        per_seed = []
        for k, seed in enumerate(args.seeds):
            gen, setup = models[ckpts[k] if len(ckpts) > 1 else ckpts[0]]
            settings = SearchSettings(samples=args.samples, queries=args.queries, top=args.queries, seed=seed,
                                      steps=args.steps, guidance=args.guidance, scale=args.scale,
                                      adaptive_fraction=args.adaptive, quantile_margin=args.margin,
                                      sweep_share=args.sweep_share,
                                      refine_top=args.refine_top, refine_radius=args.refine_radius,
                                      global_share=args.global_share)
            used: set[int] = set()

            def lookup(c, used=used, acc=acc):
                used.add(index[c])
                return float(acc[index[c]])

            rep = setup.run(dev, task.budget_ms, settings, accuracy_lookup=lookup)
            assert len(used) <= args.queries
            picked = [r for r in rep.results if r.accuracy_source in ("benchmark", "label")]
            origin = Counter(r.origin for r in rep.results if r.accuracy_source == "benchmark")
            over = sum(1 for r in rep.results if task.latency_ms[index[Cell.from_str(r.arch_str)]] > task.budget_ms)
            top_acc = picked[0].accuracy if picked else float("nan")
            per_seed.append({
                "seed": seed, "accuracy": top_acc, "regret": best["accuracy"] - top_acc if picked else float("nan"),
                "returned_over_budget": over, "feasible_fraction": rep.feasible_fraction,
                "uniqueness": rep.uniqueness, "novelty": rep.novelty, "validity": rep.validity,
                "connected_fraction": rep.connected_fraction, "queries": rep.queries,
                "sample_seconds": rep.sample_seconds, "samples": rep.samples,
                "pick": picked[0].arch_str if picked else None,
                "pick_origin": picked[0].origin if picked else None, "queried_origins": dict(origin)})
        reg = [p["regret"] for p in per_seed]
        row = {"device": device, "budget": budget, "budget_ms": task.budget_ms, "oracle": best["accuracy"],
               "regret_mean": float(np.mean(reg)), "regret_std": float(np.std(reg)),
               "feasible_fraction": float(np.mean([p["feasible_fraction"] for p in per_seed])),
               "returned_over_budget": int(sum(p["returned_over_budget"] for p in per_seed)),
               "uniqueness": float(np.mean([p["uniqueness"] for p in per_seed])),
               "novelty": float(np.mean([p["novelty"] for p in per_seed])),
               "cells_per_s": float(sum(p["samples"] for p in per_seed) / sum(p["sample_seconds"] for p in per_seed)),
               "runs": per_seed}
        rows.append(row)
        print(f"{device:>18} {budget:>5} ({task.budget_ms:8.3f} ms) oracle {best['accuracy']:.2f} "
              f"regret {row['regret_mean']:.3f}±{row['regret_std']:.3f} feasible {row['feasible_fraction']:.2f} "
              f"over {row['returned_over_budget']} uniq {row['uniqueness']:.2f} {row['cells_per_s']:.0f} cells/s",
              flush=True)
    regrets = [r["regret_mean"] for r in rows]
    summary = {"checkpoint": ckpts if len(ckpts) > 1 else ckpts[0], "seeds": args.seeds, "queries": args.queries,
               "samples": args.samples,
               "steps": args.steps, "guidance": args.guidance, "scale": args.scale, "adaptive": args.adaptive,
               "margin": args.margin, "sweep_share": args.sweep_share, "refine_top": args.refine_top,
               "refine_radius": args.refine_radius,
               "global_share": [default_global_share(m[0]) if args.global_share is None else args.global_share
                                for m in models.values()],
               "surrogate": None if args.no_surrogate else setup.labels.surrogate_source,
               "label_fraction": label_fraction(gen),
               "training_labels": [len(m[1].labels.known) for m in models.values()],
               "mean_regret": float(np.mean(regrets)), "worst_regret": float(np.max(regrets)),
               "returned_over_budget": int(sum(r["returned_over_budget"] for r in rows)),
               "feasible_fraction_mean": float(np.mean([r["feasible_fraction"] for r in rows])),
               "feasible_fraction_min": float(np.min([r["feasible_fraction"] for r in rows])),
               "uniqueness_mean": float(np.mean([r["uniqueness"] for r in rows])),
               "novelty_mean": float(np.mean([r["novelty"] for r in rows])),
               "cells_per_s": float(np.mean([r["cells_per_s"] for r in rows])),
               "wall_s": time.perf_counter() - t_all}
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"summary": summary, "grid": rows}, indent=1))


if __name__ == "__main__":
    main()
