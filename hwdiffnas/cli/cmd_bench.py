"""``hwdiffnas bench``: run search methods under a latency budget and score them against the oracle."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hwdiffnas.cli.argtypes import add_space_argument
from hwdiffnas.cli.output import format_table, print_json


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "bench", parents=parents, help="benchmark search methods (regret vs the oracle under a latency budget)",
        description="Run search methods on one device and budget, or on the protocol grid (--grid), over seeds. "
                    "A query is one accuracy look-up (training labels count); latency look-ups are free.")
    p.add_argument("--method", default="random", help="comma-separated methods: random, rea, predictor, or a "
                                                      "registered one such as diffusion (default random)")
    p.add_argument("--device", help="device name (single-task mode)")
    p.add_argument("--device-table", metavar="FILE.csv", help="arch_str,latency_ms table used as the device")
    p.add_argument("--budget", help="latency budget: 5ms, 800us, 0.01s or a quantile p50 (single-task mode)")
    p.add_argument("--queries", default="50", help="comma-separated accuracy query budgets (default 50)")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds, 0..S-1 (default 5)")
    p.add_argument("--label-fraction", help="predictor: comma-separated fractions of cells labelled (default 0.01)")
    p.add_argument("--checkpoint", metavar="CKPT",
                   help="diffusion: generator checkpoint (default: the shipped one); one trained with "
                        "--label-fraction is charged its training labels as queries")
    p.add_argument("--dataset", default="cifar100", help="accuracy dataset (default cifar100)")
    p.add_argument("--column", default="nats", help="accuracy column (default nats)")
    p.add_argument("--grid", action="store_true",
                   help="the protocol grid: HELP budgets (fpga, eyeriss, pixel2, gold_6226, titan_rtx_256) and "
                        "25/50/75%% quantiles (pixel3, raspi4, jetson-nano-fp16, edgetpu-int8, pi5-litert); with "
                        "--device-table, that table at the 25/50/75%% quantiles")
    p.add_argument("--grid-devices", help="with --grid: only these comma-separated devices")
    p.add_argument("--out", metavar="DIR", help="write bench.json, bench.md and bench_pareto.png here")
    p.add_argument("--no-plot", action="store_true", help="skip the Pareto plot")
    add_space_argument(p)
    p.set_defaults(handler=run)


def configs_from_args(methods: list[str], queries: list[int], fractions: list[float] | None,
                      checkpoint: str | None = None) -> list:
    """Method configurations: each method × query budget (× label fraction for the predictor; the diffusion
    method gets ``checkpoint`` when one is given)."""
    from hwdiffnas.harness import MethodConfig

    out = []
    for m in methods:
        for q in queries:
            if m == "predictor":
                for f in fractions or [0.01]:
                    out.append(MethodConfig(m, q, {"label_fraction": f}))
            elif m == "diffusion" and checkpoint:
                out.append(MethodConfig(m, q, {"checkpoint": checkpoint}))
            else:
                out.append(MethodConfig(m, q))
    return out


def missing_devices(store: Any, grid: list) -> list[str]:
    """The grid's devices without latency data in ``store`` (e.g. unshipped tables without a data directory)."""
    have = set(store.latency_devices())
    return list(dict.fromkeys(d for d, _b in grid if d is not None and d not in have))


def run(args: argparse.Namespace) -> int:
    from hwdiffnas.benchmark import open_store
    from hwdiffnas.errors import UserError
    from hwdiffnas.harness import QUANTILE_BUDGETS, default_grid, run_grid, write_outputs

    try:
        queries = [int(q) for q in _csv_list(args.queries)]
        fractions = [float(f) for f in _csv_list(args.label_fraction)] if args.label_fraction else None
    except ValueError as exc:
        raise UserError(f"bad --queries/--label-fraction value: {exc}") from None
    if any(q < 0 for q in queries) or not queries:
        raise UserError(f"--queries must be non-negative integers, got {args.queries!r}")
    if args.seeds < 1:
        raise UserError(f"--seeds must be >= 1, got {args.seeds}")
    methods = _csv_list(args.method)
    if fractions and "predictor" not in methods:
        raise UserError("--label-fraction applies to the predictor method only")
    if args.checkpoint and "diffusion" not in methods:
        raise UserError("--checkpoint applies to the diffusion method only")
    configs = configs_from_args(methods, queries, fractions, args.checkpoint)
    if args.grid:
        if args.budget:
            raise UserError("--grid uses the protocol's budgets; drop --budget (or drop --grid)")
        if args.device_table:  # the user's table at the protocol's quantile budgets
            if args.device or args.grid_devices:
                raise UserError("--grid with --device-table runs that table at p25, p50 and p75; drop "
                                "--device/--grid-devices")
            grid = [(None, b) for b in QUANTILE_BUDGETS]
        else:
            grid = default_grid(_csv_list(args.grid_devices) if args.grid_devices else (
                [args.device] if args.device else None))
    else:
        if not args.budget or not (args.device or args.device_table):
            raise UserError("give --device (or --device-table) and --budget, or --grid")
        grid = [(args.device, args.budget)]
    seeds = list(range(args.seeds))
    with open_store(args.data_dir, space=args.space) as store:
        log = None if args.json else (lambda s: print(s, file=sys.stderr))
        skipped = missing_devices(store, grid) if args.grid and not args.device_table else []
        if skipped and (args.grid_devices or args.device or set(skipped) >= {d for d, _b in grid}):
            raise UserError(f"no latency table for {', '.join(skipped)} in {store.path}; import it (hwdiffnas data "
                            "import DIR) or leave it out of --grid-devices")
        grid = [(d, b) for d, b in grid if d not in skipped]
        result = run_grid(store, grid, configs, seeds, args.dataset, args.column, args.device_table, log=log,
                          space=args.space)
        if skipped:
            result["skipped_devices"] = skipped
            print(f"note: skipped {', '.join(skipped)}: no latency table in the store (the package ships only the "
                  "clearly licensed ones; import the others with hwdiffnas data import DIR)", file=sys.stderr)
        paths = write_outputs(store, result, Path(args.out), device_table=args.device_table,
                              plot=not args.no_plot) if args.out else {}
    if args.json:
        print_json(result | {"outputs": {k: str(v) for k, v in paths.items()}})
        return 0
    rows = []
    for e in result["grid"]:
        for r in e["results"]:
            s = r["summary"]
            rows.append((e["device"], f"{e['budget_ms']:.4g}", f"{e['oracle']['accuracy']:.2f}", r["config"],
                         f"{s['accuracy']['mean']:.2f}±{s['accuracy']['std']:.2f}",
                         f"{s['regret']['mean']:.2f}±{s['regret']['std']:.2f}", f"{s['latency_ms']['mean']:.3g}",
                         f"{s['violations']['mean']:.1f}", f"{s['queries']['mean']:.0f}",
                         f"{s['wall_s']['mean']:.3f}"))
    print(f"{result['dataset']} accuracy, column {result['column']}; {len(seeds)} seeds (mean±std)")
    print(format_table(["device", "budget ms", "oracle", "method", "best acc", "regret", "lat ms", "viol",
                        "queries", "wall s"], rows))
    for k, v in paths.items():
        print(f"wrote {k}: {v}")
    return 0
