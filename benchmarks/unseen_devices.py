"""Search on devices the generator never saw, each known only from 20 measured cells.

    .venv/bin/python benchmarks/unseen_devices.py --data-dir DIR --checkpoint CKPT [--seeds 0 1 2] [--rows 20]
        [--measurements N [N ...]] [--verify] [--out benchmarks/results/unseen_devices.json]

CKPT must be trained without the held-out devices (``hwdiffnas train --exclude-devices ...``); the script refuses
a checkpoint that knows one of them. For each held-out grid device and seed, ``--rows`` connected cells spread
over the device's latency range (one drawn from each of ``--rows`` equal-count latency strata) play the measured
rows of ``--device-table``; the transfer basis of the latency estimate uses only the other store devices (every
held-out device and its siblings excluded). Budgets are the device's true 25/50/75 % connected-cell quantiles.
Every accuracy is known and at most ``--queries`` are looked up (the issue's protocol for new devices). A checkpoint
trained on a fraction of the labels (``train --label-fraction``) searches as ``hwdiffnas search`` does with it: its
labels are known for free (a labelled pick counts like a looked-up one) and the surrogate is fitted on them.

Measurements (``--measurements N``: the search's cap, beyond the rows; ``--verify`` ones included) go through the
profiler plug-in ``hidden-table``, registered here: it reads the held-out device's table for the network it is
given, through the same path as ``hwdiffnas search --measure N --profile RUNTIME`` (`profiler_measure`). Several
caps run on the same generator samples (one sampling per case).

Per case and cap: ``regret`` = oracle − the accuracy of the best returned pick that is sure (measured, a row, or a
certified estimate; with ``--verify`` only verified picks are returned) and truly fits; ``first_regret`` the same
for the first sure pick (whether it fits or not: ``top_over_budget``); counts of sure and flagged picks over the
budget under the true table, and the measurements spent.
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


class HiddenTable:
    """The ``hidden-table`` profiler plug-in: the latency of the network it is given, read from a held-out
    device's table (``latency_ms`` by architecture string)."""

    def __init__(self) -> None:
        self.latency_ms: dict[str, float] = {}

    def factory(self):  # noqa: ANN201 - the plug-in registry's factory
        from hwdiffnas.interfaces import LatencyStats, Profiler

        table = self

        class HiddenTableProfiler(Profiler):
            name = "hidden-table"
            model_format = "torch"
            description = "a held-out device's latency table (benchmark only)"

            def version(self) -> str:
                return "1"

            def profile(self, model, settings):  # noqa: ANN001, ANN201
                ms = table.latency_ms[model.metadata.arch_str]
                return LatencyStats.from_samples([ms], warmup=0, threads=1, runtime=self.name,
                                                 runtime_version="1", host="table")

        return HiddenTableProfiler()


class SampleCache:
    """The generator with its samples cached by request (the caps of one case share the sampling)."""

    def __init__(self, gen) -> None:  # noqa: ANN001
        self._gen = gen
        self._cache: dict = {}

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._gen, name)

    def sample(self, cond, n, steps=20, guidance=None, seed=0):  # noqa: ANN001, ANN201
        key = (repr(cond), n, steps, repr(guidance), seed)
        if key not in self._cache:
            self._cache[key] = self._gen.sample(cond, n, steps=steps, guidance=guidance, seed=seed)
        return self._cache[key]


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
    ap.add_argument("--measurements", type=int, nargs="+", default=[0],
                    help="caps on the latency measurements the search may make on the device (the hidden-table "
                         "plug-in); one run per cap on the same samples")
    ap.add_argument("--verify", action="store_true", help="search with --verify (verified picks only)")
    ap.add_argument("--measure-slack", type=float, default=None,
                    help="with measurements, estimates up to this factor over the budget stay measurement candidates "
                         "(default: the search's default)")
    ap.add_argument("--widen-slack", type=float, default=None,
                    help="the widest slack once the planned look-ups are settled (default: the search's default)")
    ap.add_argument("--refit", action="store_true",
                    help="refit the latency estimate on the rows and the measurements after each measurement")
    ap.add_argument("--devices", nargs="*", default=list(HELD_OUT))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from hwdiffnas.benchmark import open_store
    from hwdiffnas.generator.model import Generator
    from hwdiffnas.harness import make_task
    from hwdiffnas.interfaces import ProfileSettings
    from hwdiffnas.latency.reference import HELP_REFERENCE_ARCHS
    from hwdiffnas.plugins import profilers
    from hwdiffnas.predictors.latency import build_transfer_basis
    from hwdiffnas.search import SearchSettings, default_global_share, device_from_rows, label_fraction, prepare_search
    from hwdiffnas.search.measure import profiler_measure
    from hwdiffnas.space import Cell

    if args.measure_slack is None:
        args.measure_slack = SearchSettings.measure_slack
    if args.widen_slack is None:
        args.widen_slack = SearchSettings.widen_slack
    if args.verify and min(args.measurements) <= 0:
        raise SystemExit("--verify needs positive --measurements")
    gen = Generator.load(args.checkpoint)
    seen = sorted(set(gen.meta.devices) & set(HELD_OUT + SIBLINGS))
    if seen:
        raise SystemExit(f"{args.checkpoint} was trained on held-out device(s) {seen}; train with "
                         f"--exclude-devices {' '.join(HELD_OUT + SIBLINGS)}")
    hidden = HiddenTable()
    profilers.register("hidden-table", hidden.factory)
    measure = profiler_measure("hidden-table", "cifar100", settings=ProfileSettings(warmup=0, runs=1, pin_cpus="none"))
    store = open_store(args.data_dir)
    cells = store.cells()
    index = {c: i for i, c in enumerate(cells)}
    # the checkpoint's labels are known for free and the surrogate is fitted on them (all labels: the shipped one)
    setup = prepare_search(SampleCache(gen), "cifar100", store)
    known = setup.labels.known
    # one transfer basis for the whole run: every held-out device and its siblings left out
    basis = build_transfer_basis(cells, {d: store.latency(d) for d in store.latency_devices()
                                         if d not in HELD_OUT + SIBLINGS})
    cases = []
    seen_ms: dict = {}
    t_all = time.perf_counter()
    for device in args.devices:
        for q in ("p25", "p50", "p75"):
            task, acc, best = make_task(store, device, q, "cifar100", gen.meta.accuracy_column)
            lat = task.latency_ms
            ok = task.connected & np.isfinite(lat)
            hidden.latency_ms = {c.arch_str: float(v) for c, v, k in zip(cells, lat, ok) if k}
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
                setup.gen._cache.clear()
                for cap in args.measurements:
                    calls: list[Cell] = []

                    def measured(c, calls=calls, device=device):  # noqa: ANN001, ANN202
                        # one network build per (device, cell) in a run: the table answers the same every time
                        calls.append(c)
                        if (device, c) not in seen_ms:
                            seen_ms[device, c] = measure(c)
                        return seen_ms[device, c]

                    used: set[int] = set()

                    def lookup(c, used=used, acc=acc):  # noqa: ANN001, ANN202
                        used.add(index[c])
                        return float(acc[index[c]])

                    settings = SearchSettings(samples=args.samples, queries=args.queries, top=args.queries,
                                              seed=seed, global_share=args.global_share,
                                              upper_delta=args.upper_delta, measurements=cap,
                                              measure_slack=args.measure_slack, widen_slack=args.widen_slack,
                                              verify=args.verify)
                    def refit(extra, rows=rows, device=device):  # noqa: ANN001, ANN202 - the same basis
                        return device_from_rows(device, {**rows, **extra}, store, row_source="measured", basis=basis)

                    rep = setup.run(dev, task.budget_ms, settings, accuracy_lookup=lookup,
                                    measure=measured if cap else None, measure_source="measured:hidden-table",
                                    refit=refit if args.refit else None)
                    assert len(calls) == rep.measurements <= cap, (len(calls), rep.measurements, cap)
                    assert len(used) <= args.queries
                    cases.append(score_case(rep, task, best, lat, index, device, q, seed, cap))
                    c = cases[-1]
                    reg = "none" if c["regret"] is None else f"{c['regret']:.3f}"
                    print(f"{device:>17} {q} seed {seed} cap {cap}: regret {reg} first "
                          f"{c['first_regret'] if c['first_regret'] is None else round(c['first_regret'], 3)} "
                          f"measured {c['measurements']} safe {c['safe_picks']} (over {c['safe_over_budget']}) "
                          f"flagged {c['flagged_picks']} (over {c['flagged_over_budget']})", flush=True)
    summary = {
        "checkpoint": args.checkpoint, "label_fraction": label_fraction(gen), "known_labels": len(known),
        "rows": args.rows, "reference_rows": args.reference_rows, "seeds": args.seeds, "queries": args.queries,
        "global_share": default_global_share(gen) if args.global_share is None else args.global_share,
        "upper_delta": args.upper_delta, "verify": args.verify, "measure_slack": args.measure_slack,
        "widen_slack": args.widen_slack, "refit": args.refit,
        "by_cap": {str(cap): summarize([c for c in cases if c["cap"] == cap]) for cap in args.measurements},
        "wall_s": time.perf_counter() - t_all,
    }
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"summary": summary, "cases": cases}, indent=1))


def score_case(rep, task, best, lat, index, device, q, seed, cap) -> dict:  # noqa: ANN001
    """One case's record: regrets of the best sure fitting pick and of the first sure pick, over-budget counts."""
    from hwdiffnas.space import Cell

    true_lat = {r.arch_str: float(lat[index[Cell.from_str(r.arch_str)]]) for r in rep.results}
    looked = [r for r in rep.results if r.accuracy_source in ("benchmark", "label")]
    safe = [r for r in looked if not r.may_exceed_budget]
    flagged = [r for r in looked if r.may_exceed_budget]
    over = {r.arch_str: true_lat[r.arch_str] > task.budget_ms for r in looked}
    fitting = [r for r in safe if not over[r.arch_str]]
    top = max(fitting, key=lambda r: r.accuracy) if fitting else None
    first = safe[0] if safe else None
    return {
        "device": device, "budget": q, "budget_ms": task.budget_ms, "seed": seed, "cap": cap,
        "oracle": best["accuracy"], "budget_quantile_est": rep.budget_quantile,
        "regret": best["accuracy"] - top.accuracy if top else None,
        "first_regret": best["accuracy"] - first.accuracy if first else None,
        "top_over_budget": over[first.arch_str] if first else None,
        "safe_picks": len(safe), "safe_over_budget": sum(over[r.arch_str] for r in safe),
        "safe_fitting": len(fitting), "verified_picks": sum(bool(r.verified) for r in rep.results),
        "flagged_picks": len(flagged), "flagged_over_budget": sum(over[r.arch_str] for r in flagged),
        "feasible_fraction_est": rep.feasible_fraction, "queries": rep.queries,
        "measurements": rep.measurements, "notes": rep.notes, "pick": top.arch_str if top else None,
    }


def summarize(cases: list[dict]) -> dict:
    """Mean and worst regret (per grid cell, over seeds), first-pick regret, counts over the budget."""
    regrets = [c["regret"] for c in cases if c["regret"] is not None]
    firsts = [c["first_regret"] for c in cases if c["first_regret"] is not None]
    per_cell: dict[str, list] = {}
    for c in cases:
        per_cell.setdefault(f"{c['device']}@{c['budget']}", []).append(c)
    safe_total = sum(c["safe_picks"] for c in cases)

    def cell_mean(v: list, key: str) -> float:
        vals = [c[key] for c in v if c[key] is not None]
        return float(np.mean(vals)) if vals else float("nan")

    return {
        "cases": len(cases),
        "mean_regret": float(np.mean(regrets)) if regrets else None,
        "worst_grid_cell": max(cell_mean(v, "regret") for v in per_cell.values()),
        "mean_first_regret": float(np.mean(firsts)) if firsts else None,
        "per_cell": {k: {"regret": cell_mean(v, "regret"), "first_regret": cell_mean(v, "first_regret"),
                         "measurements": float(np.mean([c["measurements"] for c in v]))}
                     for k, v in per_cell.items()},
        "cases_without_fitting_pick": sum(1 for c in cases if c["safe_fitting"] == 0),
        "cases_first_pick_over_budget": sum(1 for c in cases if c["top_over_budget"]),
        "safe_picks": safe_total,
        "safe_picks_over_budget": sum(c["safe_over_budget"] for c in cases),
        "flagged_picks": sum(c["flagged_picks"] for c in cases),
        "flagged_picks_over_budget": sum(c["flagged_over_budget"] for c in cases),
        "measurements_mean": float(np.mean([c["measurements"] for c in cases])) if cases else 0.0,
        "measurements_max": max((c["measurements"] for c in cases), default=0),
    }


if __name__ == "__main__":
    main()
