"""Sampling speed of the shipped generator: cells per second (wall and per CPU-second) by sampler setting.

    .venv/bin/python benchmarks/generator_speed.py [--space nb201|fbnet] [--checkpoint CKPT] [--cells 1000]
        [--repeats 3]

Wall time on a shared machine depends on the other jobs; the CPU-time rate (cells per second of this process's
CPU time, one torch thread) is what an idle core would give.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--space", default="nb201", help="whose shipped checkpoint (without --checkpoint)")
    ap.add_argument("--cells", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from hwdiffnas.generator import default_checkpoint_path
    from hwdiffnas.generator.conditions import build_conditions
    from hwdiffnas.generator.model import Generator, Guidance

    gen = Generator.load(args.checkpoint or default_checkpoint_path(args.space))
    device = "pixel3" if "pixel3" in gen.meta.devices else sorted(gen.meta.devices)[0]
    cond = build_conditions(gen.meta.datasets, gen.meta.datasets[0], 1.0, gen.device_rep(device), 0.5)
    configs = [("20 steps, joint guidance", 20, Guidance("joint", 1.0)),
               ("20 steps, joint, adaptive 0.5", 20, Guidance("joint", 1.0, adaptive_fraction=0.5)),
               ("20 steps, per-condition (accuracy, latency)", 20, Guidance("per-condition")),
               ("20 steps, no guidance", 20, Guidance("none")),
               ("50 steps, joint guidance", 50, Guidance("joint", 1.0)),
               ("100 steps, joint guidance", 100, Guidance("joint", 1.0))]
    gen.sample(cond, 64, steps=5)  # warm-up
    out = []
    for label, steps, guidance in configs:
        walls, cpus = [], []
        for r in range(args.repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            gen.sample(cond, args.cells, steps=steps, guidance=guidance, seed=r)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
        row = {"setting": label, "cells": args.cells, "wall_cells_per_s": args.cells / float(np.median(walls)),
               "cpu_cells_per_s": args.cells / float(np.median(cpus))}
        out.append(row)
        print(f"{label:>32}: {row['wall_cells_per_s']:7.0f} cells/s wall, {row['cpu_cells_per_s']:7.0f} per CPU-s",
              flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
