"""The FBNet generator on its grid: LUT devices (fpga, eyeriss, raspi4, pixel3) and HELP's measured gold_6226,
pixel2, titan_rtx_1, samsung_a50; budgets at the 25/50/75 % quantiles of HELP's 5,000 architectures' latencies on
each device; search seeds 0, 1, 2.

    .venv/bin/python benchmarks/fbnet_generator_grid.py --part flops  [--checkpoint CKPT] --out FILE.json
    .venv/bin/python benchmarks/fbnet_generator_grid.py --part default [--evaluations 10] [--rea-factor 10] --out F
    .venv/bin/python benchmarks/fbnet_generator_grid.py --part labels [--label-objective synflow] [--n-labels 50] \
        --out FILE.json

``flops``: the search's best fitting pick (and its best raw sample, before refinement) against the exact optimum
(the knapsack, LUT devices), the share of raw samples within budget, returned picks over budget (LUT: exact).
``default``: the checkpoint's default objective (naswot): the search computes it on ``--evaluations`` candidates;
regularized evolution gets ``--rea-factor`` times as many evaluations with the same latency model (an estimate
fits when its upper bound does, as for the search); both picks' computed values are compared per cell.
``labels``: ``--n-labels`` uniform architectures labelled with an objective the search never sees otherwise
(``--label-objective``, computed here); the search with ``--labels`` (generator + surrogate) against the surrogate
alone (its best fitting architecture: knapsack where additive, else a climb), both scored by the hidden objective.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from hwdiffnas.generator import default_checkpoint_path
from hwdiffnas.generator.model import Generator
from hwdiffnas.latency.space_device import space_device
from hwdiffnas.objectives.scorer import ObjectiveScorer, exact_scorer, fit_surrogate
from hwdiffnas.plugins import get_space
from hwdiffnas.search.open_search import OpenSearchSettings, run_open_search

LUT_DEVICES = ("fpga", "eyeriss", "raspi4", "pixel3")
HELP_DEVICES = ("gold_6226", "pixel2", "titan_rtx_1", "samsung_a50")
QUANTILES = (0.25, 0.5, 0.75)
SETTING = "cifar100"


class CachedObjective:
    """A computed objective with a cache (values depend only on the architecture: `network_seed`)."""

    def __init__(self, name: str, workers: int) -> None:
        from hwdiffnas.objectives.compute import space_network_builder

        self.name, self.workers = name, workers
        self.build = space_network_builder("fbnet", SETTING)
        self.cache: dict[str, float] = {}
        self.seconds = 0.0

    def __call__(self, archs: list[Any]) -> np.ndarray:
        from hwdiffnas.objectives.compute import compute_objective

        space = get_space("fbnet")
        names = [space.format(a) for a in archs]
        todo = [n for n in dict.fromkeys(names) if n not in self.cache]
        if todo:
            t0 = time.perf_counter()
            vals = compute_objective(self.name, todo, self.build, workers=min(self.workers, len(todo)))
            self.seconds += time.perf_counter() - t0
            self.cache.update(zip(todo, vals.values))
        return np.array([self.cache[n] for n in names])


def cells(devices: tuple[str, ...]) -> list[tuple[Any, float, float]]:
    space = get_space("fbnet")
    out = []
    for name in devices:
        dev = space_device(space, name, SETTING)
        for q in QUANTILES:
            out.append((dev, q, float(np.quantile(dev.reference_sorted_ms, q))))
    return out


def part_flops(gen: Generator, args: argparse.Namespace) -> list[dict[str, Any]]:
    space = get_space("fbnet")
    rows = []
    scorer = exact_scorer("flops")
    for dev, q, budget in cells(tuple(args.devices)):
        opt = space.exact_optimum(dev.name, budget, "flops", SETTING) if dev.name in LUT_DEVICES else None
        for seed in args.seeds:
            rep = run_open_search(gen, dev, budget, scorer, OpenSearchSettings(samples=args.samples, seed=seed))
            best = rep.results[0] if rep.results else None
            over = [r.arch for r in rep.results if r.latency_source == "lut" and r.latency_ms > budget]
            rows.append({"device": dev.name, "quantile": q, "budget_ms": budget, "seed": seed,
                         "pick": best.arch if best else None, "pick_value": best.value if best else None,
                         "pick_flagged": best.may_exceed_budget if best else None,
                         "best_sample_value": rep.best_sample_value, "optimum": opt[1] if opt else None,
                         "pick_ratio": best.value / opt[1] if best and opt else None,
                         "sample_ratio": rep.best_sample_value / opt[1] if opt else None,
                         "within_budget": rep.within_budget, "sure_within_budget": rep.sure_within_budget,
                         "returned": len(rep.results), "returned_over_budget_lut": len(over),
                         "flagged": sum(r.may_exceed_budget for r in rep.results),
                         "seconds": rep.seconds, "sample_seconds": rep.sample_seconds})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def part_default(gen: Generator, args: argparse.Namespace) -> list[dict[str, Any]]:
    from hwdiffnas.baselines.open_space import OpenTask, regularized_evolution

    space = get_space("fbnet")
    name = space.default_objective or gen.meta.datasets[0]
    scorer = ObjectiveScorer.from_dict(gen.meta.scorers[name])
    objective = CachedObjective(name, args.workers)
    rows = []
    for dev, q, budget in cells(tuple(args.devices)):
        def sure_latency(archs: list[Any], dev: Any = dev) -> np.ndarray:
            p, up, ex = dev.latencies(np.array([space.encode(a) for a in archs]))
            return np.where(ex, p, up)

        for seed in args.seeds:
            used = {"n": 0}

            def counted(archs: list[Any], used: dict[str, int] = used) -> np.ndarray:
                used["n"] += len(archs)
                return objective(archs)

            rep = run_open_search(gen, dev, budget, scorer, OpenSearchSettings(samples=args.samples, seed=seed,
                                                                               evaluations=args.evaluations),
                                  evaluate=counted)
            best = rep.results[0] if rep.results else None
            task = OpenTask(space, sure_latency, budget, lambda a: float(objective([a])[0]))
            rea = regularized_evolution(task, args.rea_factor * args.evaluations, seed=seed)
            rows.append({"device": dev.name, "quantile": q, "budget_ms": budget, "seed": seed,
                         "pick": best.arch if best else None, "pick_value": best.value if best else None,
                         "pick_value_source": best.value_source if best else None,
                         "pick_flagged": best.may_exceed_budget if best else None,
                         "search_evaluations": used["n"], "rea_evaluations": rea.evaluations if rea else 0,
                         "rea_value": rea.value if rea else None, "rea_arch": space.format(rea.arch) if rea else None,
                         "search_seconds": rep.seconds})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def surrogate_alone(space: Any, dev: Any, budget: float, scorer: ObjectiveScorer, seed: int) -> Any:
    """The surrogate's own best architecture that surely fits: a knapsack where score and (log-)latency are
    additive and the bound is the point (exact devices), else a climb from the best fitting uniform samples."""
    from hwdiffnas.search.frontier import additive_form, climb, knapsack_frontier

    enc = space.encoding
    uniform = np.array([space.encode(a) for a in space.sample(5000, seed=seed + 77)])

    def score(c: np.ndarray) -> np.ndarray:
        return scorer.score(space, c, SETTING)

    def fits(c: np.ndarray) -> np.ndarray:
        p, up, ex = dev.latencies(c)
        return np.where(ex, p, up) <= budget

    s_add = additive_form(score, enc.positions, len(enc.choices), uniform[:256])
    cost = additive_form(lambda c: dev.latencies(c)[0], enc.positions, len(enc.choices), uniform[:256])
    if s_add is not None and cost is not None:
        best = knapsack_frontier(s_add, cost, budget)
        if best is not None and fits(best)[0]:
            return space.decode(best[0])
    ok = fits(uniform)
    s = score(uniform[ok])
    start = uniform[ok][np.argsort(-s)[:24]]
    res = climb(start, len(enc.choices), fits, score, np.random.default_rng(seed), rounds=15, full_pairs=1)
    return space.decode(res.codes[0]) if len(res.codes) else None


def part_labels(gen: Generator, args: argparse.Namespace) -> list[dict[str, Any]]:
    space = get_space("fbnet")
    hidden = CachedObjective(args.label_objective, args.workers)
    rows = []
    for dev, q, budget in cells(tuple(args.devices)):
        for seed in args.seeds:
            labelled = space.sample(args.n_labels, seed=1000 + seed)
            values = hidden(labelled)
            known = {space.format(a): float(v) for a, v in zip(labelled, values)}
            scorer = fit_surrogate(space, labelled, values, f"labels:{args.label_objective}")
            cond = space.default_objective or gen.meta.datasets[0]
            rep = run_open_search(gen, dev, budget, scorer, OpenSearchSettings(samples=args.samples, seed=seed),
                                  condition_on=cond, known=known)
            best = rep.results[0] if rep.results else None
            alone = surrogate_alone(space, dev, budget, scorer, seed)
            gen_true = float(hidden([space.parse(best.arch)])[0]) if best else None
            alone_true = float(hidden([alone])[0]) if alone is not None else None
            best_label = max((v for a, v in known.items()
                              if dev.latencies(np.array([space.encode(space.parse(a))]))[0][0] <= budget),
                             default=None)
            rows.append({"device": dev.name, "quantile": q, "budget_ms": budget, "seed": seed,
                         "generator_pick": best.arch if best else None, "generator_value": gen_true,
                         "generator_pick_source": best.value_source if best else None,
                         "surrogate_alone_pick": space.format(alone) if alone is not None else None,
                         "surrogate_alone_value": alone_true, "best_fitting_label": best_label,
                         "surrogate_loo_spearman": scorer.loo_spearman})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def summarize(part: str, rows: list[dict[str, Any]]) -> str:
    """Markdown tables of a part's rows (per device and budget quantile, mean over seeds)."""
    def mean(vals: list[Any]) -> float:
        vals = [v for v in vals if v is not None]
        return float(np.mean(vals)) if vals else float("nan")

    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["device"], r["quantile"]), []).append(r)
    lines = []
    if part == "flops":
        lines += ["| device | budget | budget ms | pick / optimum | best raw sample / optimum | raw samples within "
                  "budget (sure) | picks over budget | flagged picks |", "|---|---|---|---|---|---|---|---|"]
        for (d, q), rs in groups.items():
            ratio = mean([r["pick_ratio"] for r in rs])
            sample = mean([r["sample_ratio"] for r in rs])
            lines.append(f"| {d} | p{int(q * 100)} | {rs[0]['budget_ms']:.2f} | "
                         f"{'—' if np.isnan(ratio) else f'{ratio:.4f}'} | "
                         f"{'—' if np.isnan(sample) else f'{sample:.4f}'} | "
                         f"{mean([r['within_budget'] for r in rs]):.3f} "
                         f"({mean([r['sure_within_budget'] for r in rs]):.3f}) | "
                         f"{sum(r['returned_over_budget_lut'] for r in rs)} | {sum(r['flagged'] for r in rs)} |")
    elif part == "default":
        lines += ["| device | budget | search pick (10 evaluations) | evolution (100 evaluations) | "
                  "search ≥ evolution |",
                  "|---|---|---|---|---|"]
        for (d, q), rs in groups.items():
            a, b = mean([r["pick_value"] for r in rs]), mean([r["rea_value"] for r in rs])
            lines.append(f"| {d} | p{int(q * 100)} | {a:.2f} | {b:.2f} | {'yes' if a >= b else 'no'} |")
    else:
        lines += ["| device | budget | generator + surrogate | surrogate alone | best fitting label |",
                  "|---|---|---|---|---|"]
        for (d, q), rs in groups.items():
            lines.append(f"| {d} | p{int(q * 100)} | {mean([r['generator_value'] for r in rs]):.2f} | "
                         f"{mean([r['surrogate_alone_value'] for r in rs]):.2f} | "
                         f"{mean([r['best_fitting_label'] for r in rs]):.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("flops", "default", "labels"), required=True)
    ap.add_argument("--checkpoint", default=str(default_checkpoint_path("fbnet")))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--devices", nargs="+", default=list(LUT_DEVICES + HELP_DEVICES))
    ap.add_argument("--evaluations", type=int, default=10)
    ap.add_argument("--rea-factor", type=int, default=10)
    ap.add_argument("--label-objective", default="synflow")
    ap.add_argument("--n-labels", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", required=True)
    ap.add_argument("--summarize", nargs="+", metavar="RESULT.json",
                    help="print the markdown tables of earlier results (of one part) and exit")
    args = ap.parse_args()
    if args.summarize:
        rows = [r for f in args.summarize for r in json.loads(Path(f).read_text())["rows"]]
        print(summarize(args.part, rows))
        return
    gen = Generator.load(args.checkpoint)
    t0 = time.perf_counter()
    rows = {"flops": part_flops, "default": part_default, "labels": part_labels}[args.part](gen, args)
    out = {"part": args.part, "checkpoint": args.checkpoint, "seeds": args.seeds, "samples": args.samples,
           "evaluations": args.evaluations, "rea_factor": args.rea_factor, "label_objective": args.label_objective,
           "n_labels": args.n_labels, "wall_seconds": round(time.perf_counter() - t0, 1), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out} ({len(rows)} rows, {out['wall_seconds']} s)")


if __name__ == "__main__":
    main()
