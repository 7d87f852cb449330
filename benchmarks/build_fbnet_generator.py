"""Train the FBNet generator shipped in the package (one checkpoint for every FBNet device, objectives flops and
naswot), from training data the project produces itself (`hwdiffnas.search.open_training`).

    .venv/bin/python benchmarks/build_fbnet_generator.py [--steps 6000] [--labels 1000] [--workers 2]
        [--out hwdiffnas/assets/generator_fbnet.safetensors]

The naswot values computed for the surrogate are cached in ``--cache`` (JSONL, appended as they come: a rerun
resumes); the timings (labelling, frontier, training) go to ``--report``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from hwdiffnas.generator.train import TrainConfig
from hwdiffnas.plugins import get_space
from hwdiffnas.search.open_training import OpenDataConfig, train_open_generator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="hwdiffnas/assets/generator_fbnet.safetensors")
    ap.add_argument("--cache", default="benchmarks/results/fbnet/labels")
    ap.add_argument("--report", default="benchmarks/results/fbnet/generator_build.json")
    ap.add_argument("--objectives", nargs="+", default=["flops", "naswot"])
    ap.add_argument("--labels", type=int, default=1000)
    ap.add_argument("--uniform", type=int, default=10_000)
    ap.add_argument("--budget-levels", type=int, default=48)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    t0 = time.perf_counter()
    cfg = OpenDataConfig(objectives=tuple(args.objectives), uniform=args.uniform, labels=args.labels,
                         budget_levels=args.budget_levels, seed=args.seed)
    gen, stats = train_open_generator(get_space("fbnet"), out, cfg, TrainConfig(steps=args.steps, seed=args.seed),
                                      workers=args.workers, log=lambda m: print(m, file=sys.stderr, flush=True),
                                      cache_dir=Path(args.cache))
    report = {**stats, "steps": gen.meta.step, "train_seconds": gen.meta.training.get("train_seconds"),
              "final_loss": gen.meta.training.get("final_loss"), "devices": sorted(gen.meta.devices),
              "wall_seconds": round(time.perf_counter() - t0, 1), "checkpoint": str(out),
              "checkpoint_bytes": out.stat().st_size}
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "frontier_methods"}, indent=1))


if __name__ == "__main__":
    main()
