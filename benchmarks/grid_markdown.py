"""Markdown tables from `generator_grid.py` results: per-grid-cell regret side by side, and a summary.

    .venv/bin/python benchmarks/grid_markdown.py NAME=RESULT.json [NAME=RESULT.json ...] [--cells]

Each argument names a run (the column header) and its JSON file. The summary gives mean and worst regret, the
number of grid cells at regret 0, returned cells over budget, raw samples within budget (mean, min), uniqueness,
novelty and sampling speed; ``--cells`` adds the per-grid-cell regret table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", metavar="NAME=RESULT.json")
    ap.add_argument("--cells", action="store_true", help="also print the per-grid-cell regret table")
    args = ap.parse_args()
    runs = []
    for spec in args.runs:
        name, _, path = spec.rpartition("=")
        if not path:
            raise SystemExit(f"expected NAME=RESULT.json, got {spec!r}")
        runs.append((name, json.loads(Path(path).read_text())))

    head = "| | " + " | ".join(name for name, _ in runs) + " |"
    rule = "|---" * (len(runs) + 1) + "|"
    rows = {
        "mean regret (pts)": lambda r: f"{r['summary']['mean_regret']:.3f}",
        "worst grid cell (pts)": lambda r: f"{r['summary']['worst_regret']:.3f}",
        "grid cells at regret 0": lambda r: f"{sum(1 for g in r['grid'] if g['regret_mean'] == 0)} / {len(r['grid'])}",
        "returned cells over budget": lambda r: str(r["summary"]["returned_over_budget"]),
        "raw samples within budget (mean / min)": lambda r: (f"{r['summary']['feasible_fraction_mean']:.3f} / "
                                                             f"{r['summary']['feasible_fraction_min']:.2f}"),
        "unique samples": lambda r: f"{r['summary']['uniqueness_mean']:.3f}",
        "novelty": lambda r: f"{r['summary']['novelty_mean']:.3f}",
        "sampling cells/s": lambda r: f"{r['summary']['cells_per_s']:.0f}",
    }
    print(head)
    print(rule)
    for label, fmt in rows.items():
        print(f"| {label} | " + " | ".join(fmt(r) for _, r in runs) + " |")
    if args.cells:
        print()
        print("| device | budget | oracle | " + " | ".join(name for name, _ in runs) + " |")
        print("|---|---|---" + "|---" * len(runs) + "|")
        first = runs[0][1]["grid"]
        for i, g in enumerate(first):
            vals = []
            for _, r in runs:
                c = r["grid"][i]
                vals.append(f"{c['regret_mean']:.3f}")
            print(f"| {g['device']} | {g['budget']} | {g['oracle']:.2f} | " + " | ".join(vals) + " |")


if __name__ == "__main__":
    main()
