"""Objective labelling throughput in the FBNet space: networks per second on this machine, both settings.

    python benchmarks/objective_throughput.py [--n 40] [--workers 2] \
        [--out benchmarks/results/objectives/throughput.json]

For every objective and both FBNet settings (CIFAR-100 32×32, ImageNet 224×224): ``--n`` seeded random
architectures built and scored by `hwdiffnas.objectives.compute.compute_objective` in ``--workers`` processes
(one torch thread each); reports wall-clock networks/s (process start-up included) and the mean per-network time
inside the workers (build + objective).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hwdiffnas.objectives import objective_names  # noqa: E402
from hwdiffnas.objectives.compute import compute_objective, space_network_builder  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--objectives", nargs="+", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()


    from hwdiffnas.plugins import get_space

    archs = [a.op_string for a in get_space("fbnet").sample(args.n, seed=0)]
    rows = []
    print(f"| objective | setting | networks/s (wall, {args.workers} workers) | s/network in a worker |")
    print("|---|---|---|---|")
    for name in args.objectives or objective_names():
        for setting in ("cifar100", "imagenet"):
            res = compute_objective(name, archs, space_network_builder("fbnet", setting), workers=args.workers)
            rate = len(archs) / res.wall_s
            rows.append({"objective": name, "setting": setting, "networks": len(archs), "workers": res.workers,
                         "wall_s": res.wall_s, "networks_per_s": rate, "mean_s_per_network": res.mean_seconds})
            print(f"| {name} | {setting} | {rate:.2f} | {res.mean_seconds:.3f} |", flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
