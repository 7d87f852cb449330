"""``hwdiffnas oracle --device D --budget 5ms``: the most accurate cell that truly meets a latency budget."""

from __future__ import annotations

import argparse
from typing import Any

from hwdiffnas.cli.argtypes import add_space_argument
from hwdiffnas.cli.output import print_json


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "oracle", parents=parents, help="best cell under a latency budget (ground truth from the store)",
        description="The most accurate connected cell whose latency on the device is <= the budget "
                    "(ties: lower latency, then lower index).")
    add_device_args(p)
    p.add_argument("--budget", required=True, help="latency budget with a unit (5ms, 800us, 0.01s) or a "
                                                   "quantile of the device's connected cells (p50)")
    add_accuracy_args(p)
    add_space_argument(p)
    p.set_defaults(handler=run)


def add_device_args(p: argparse.ArgumentParser) -> None:
    """``--device`` / ``--device-table`` / ``--setting``, shared with other commands."""
    p.add_argument("--device", help="device name (see `hwdiffnas data status`)")
    p.add_argument("--device-table", metavar="FILE.csv",
                   help="a latency table of arch_str,latency_ms rows used instead of a stored device")
    p.add_argument("--setting", help="only use the device's table in this input setting "
                                     "(cifar10, cifar100, ImageNet16-120, unknown)")


def add_accuracy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="cifar100", help="accuracy dataset (default cifar100)")
    p.add_argument("--column", default="nats",
                   help="accuracy column: nats (default), nb201v11, 12ep-val, 12ep-test")


def run(args: argparse.Namespace) -> int:
    from hwdiffnas.benchmark import latency_for, open_store, oracle
    from hwdiffnas.latency.device import budget_for

    with open_store(args.data_dir, space=args.space) as store:
        device, lat = latency_for(store, args.device, args.device_table, args.setting)
        acc = store.accuracy(args.dataset, args.column)
        conn = store.connected()
        budget_ms = budget_for(args.budget, store, args.device, args.device_table, args.setting)
        res = oracle(acc, lat, budget_ms, conn, store.cells(), device=device)
        source = f"table:{args.device_table}" if args.device_table else store.latency_source(device, args.setting)
    out = {"device": device, "budget": args.budget, "budget_ms": budget_ms, "dataset": args.dataset,
           "column": args.column, "latency_source": source, **res.to_dict()}
    if args.json:
        print_json(out)
        return 0
    print(f"{device} <= {budget_ms:g} ms ({args.dataset}, column {args.column}; latency from {source})")
    print(f"  best cell  idx {res.index}: {res.arch_str}")
    print(f"  accuracy   {res.accuracy:.2f} %")
    print(f"  latency    {res.latency_ms:.4g} ms")
    print(f"  feasible   {res.feasible} connected cells fit the budget")
    return 0
