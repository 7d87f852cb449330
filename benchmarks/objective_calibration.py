"""Which stand-in for accuracy to trust: every objective against trained accuracy on NB201 and NAS-Bench-Macro.

    python benchmarks/objective_calibration.py --nb201-dir ../shared/data/nb201 \
        --macro-dir ../shared/data/nasbench_macro [--n 2000] [--workers 2] \
        [--cache benchmarks/results/objectives/values.jsonl] [--out benchmarks/results/objectives/calibration.json]

NB201: ``--n`` connected cells drawn at random (seed 0), CIFAR-100 networks, NATS CIFAR-100 200-epoch test
accuracy; latency slices from HW-NAS-Bench's pixel3 column (HELP table). NAS-Bench-Macro: one network per
equivalence class (3,969 classes; ``--n`` of them at random when fewer), CIFAR-10 mean accuracy; it has no latency,
so its slices are FLOPs budgets. For each objective: Spearman ρ and Kendall τ with accuracy, and the precision of
its top 5 % (share of the objective's top 5 % that are in accuracy's top 5 %), over all networks and within the
networks under the 25/50/75 % budget (what a search ranks). Values are cached line by line in ``--cache`` (keyed
by space, dataset setting, objective, architecture and seed: `hwdiffnas.objectives.compute.cached_objective`),
so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hwdiffnas.objectives import objective_names  # noqa: E402
from hwdiffnas.objectives.compute import cached_objective, space_network_builder  # noqa: E402


def load_nb201(folder: Path, n: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray, np.ndarray]:
    with (folder / "arch_index.csv").open(newline="") as fh:
        index = list(csv.DictReader(fh))
    with (folder / "accuracy.csv").open(newline="") as fh:
        acc = {r["idx"]: float(r["c100_test_200ep__natstss"]) for r in csv.DictReader(fh)}
    with (folder / "latency_help_ms.csv").open(newline="") as fh:
        lat = {r["idx"]: float(r["hwnb_c10_pixel3"]) for r in csv.DictReader(fh)}
    ok = [r for r in index if r["connected"] == "True"]
    pick = rng.choice(len(ok), size=min(n, len(ok)), replace=False)
    rows = [ok[i] for i in sorted(pick)]
    return ([r["arch_str"] for r in rows], np.array([acc[r["idx"]] for r in rows]),
            np.array([lat[r["idx"]] for r in rows]))


def load_macro(folder: Path, n: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray, np.ndarray]:
    from hwdiffnas.spaces.nasbench_macro.space import read_macro_accuracy

    archs, acc, _params, flops = read_macro_accuracy(str(folder))
    reps: dict[str, int] = {}
    for i, a in enumerate(archs):
        reps.setdefault(a.canonical().arch_str, i)
    idx = sorted(reps.values())
    if n < len(idx):
        idx = sorted(rng.choice(idx, size=n, replace=False).tolist())
    return [archs[i].arch_str for i in idx], acc[idx], flops[idx].astype(float)


def top_precision(score: np.ndarray, acc: np.ndarray, frac: float = 0.05) -> float:
    k = max(1, int(round(frac * len(acc))))
    return len(set(np.argsort(-score)[:k]) & set(np.argsort(-acc)[:k])) / k


def metrics(score: np.ndarray, acc: np.ndarray) -> dict[str, float]:
    from scipy.stats import kendalltau, spearmanr

    finite = np.isfinite(score)
    s = np.where(finite, score, np.nanmin(score[finite]) - 1.0)
    return {"n": int(len(acc)), "spearman": float(spearmanr(s, acc)[0]), "kendall": float(kendalltau(s, acc)[0]),
            "top5_precision": top_precision(s, acc)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nb201-dir", required=True)
    ap.add_argument("--macro-dir", required=True)
    ap.add_argument("--n", type=int, default=2000, help="NB201 cells")
    ap.add_argument("--macro-n", type=int, default=3969, help="NAS-Bench-Macro classes (default: all 3,969)")
    ap.add_argument("--objectives", nargs="+", default=None, help="default: all registered")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=str(REPO / "benchmarks/results/objectives/values.jsonl"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    cheap_first = ["flops", "params", "synflow", "zen", "naswot"]
    names = args.objectives or sorted(objective_names(), key=lambda n: (cheap_first + [n]).index(n))
    rng = np.random.default_rng(args.seed)
    spaces = {
        "nb201": (*load_nb201(Path(args.nb201_dir), args.n, rng), "cifar100", "pixel3 latency"),
        "nasbench_macro": (*load_macro(Path(args.macro_dir), args.macro_n, rng), "cifar10", "FLOPs"),
    }
    report: dict[str, dict] = {}
    print("| space | objective | s/network | Spearman | Kendall τ | top-5 % precision | ρ ≤p25 | ρ ≤p50 | ρ ≤p75 |"
          " top-5 % ≤p50 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for space, (archs, _acc, _axis, _build, axis_name) in spaces.items():
        report[space] = {"networks": len(archs), "slices_by": axis_name, "objectives": {}}
    for name in names:  # cheap objectives first (the default order), every space, so partial runs are useful
        for space, (archs, acc, budget_axis, dataset, _axis_name) in spaces.items():
            values, seconds = cached_objective(name, archs, space_network_builder(space, dataset), Path(args.cache),
                                               space=space, dataset=dataset, seed=args.seed,
                                               workers=args.workers or 2, chunk=200,
                                               progress=lambda m, s=space: print(f"  {s} {m}", flush=True))
            vals, secs = np.array(values), float(np.mean(seconds))
            entry = {"seconds_per_network": secs, "all": metrics(vals, acc)}
            for q in (25, 50, 75):
                mask = budget_axis <= np.percentile(budget_axis, q)
                entry[f"p{q}"] = metrics(vals[mask], acc[mask])
            report[space]["objectives"][name] = entry
            print(f"| {space} | {name} | {secs:.3f} | {entry['all']['spearman']:.3f} | {entry['all']['kendall']:.3f} |"
                  f" {entry['all']['top5_precision']:.2f} | {entry['p25']['spearman']:.3f} |"
                  f" {entry['p50']['spearman']:.3f} | {entry['p75']['spearman']:.3f} |"
                  f" {entry['p50']['top5_precision']:.2f} |", flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
