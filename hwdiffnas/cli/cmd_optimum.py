"""``hwdiffnas optimum --space fbnet --device raspi4 --budget p50 --objective flops``: the exact best architecture
under a latency budget where latency and objective are sums over the architecture (a multiple-choice knapsack)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from hwdiffnas.cli.output import print_json


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "optimum", parents=parents, help="exact best architecture under a budget for an additive objective",
        description="The architecture that maximizes an additive objective (flops = multiply-accumulates, or "
                    "params) with latency <= the budget on a lookup-table device, computed exactly (FBNet space: "
                    "fpga, eyeriss, raspi4, pixel3, CIFAR-100 setting). Refused where latency or objective is "
                    "not additive.")
    p.add_argument("--space", default="fbnet", help="search space (default fbnet)")
    p.add_argument("--device", required=True, help="a lookup-table device of the space")
    p.add_argument("--budget", required=True, help="latency budget with a unit (30ms, 800us) or a quantile (p50) "
                                                   "of the device's latency over the space's reference sample")
    p.add_argument("--objective", default="flops", help="additive objective: flops (default) or params")
    p.add_argument("--dataset", default=None, help="dataset setting (default: the space's first)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hwdiffnas.errors import UserError
    from hwdiffnas.latency.space_device import space_budget_ms, space_latencies
    from hwdiffnas.plugins import get_space

    space = get_space(args.space)
    dataset = space.dataset(args.dataset).name if args.dataset else next(iter(space.datasets))
    budget_ms = space_budget_ms(space, args.device, args.budget, dataset)
    t0 = time.perf_counter()
    found = space.exact_optimum(args.device, budget_ms, args.objective, dataset)
    solve_s = time.perf_counter() - t0
    if found is None:
        raise UserError(f"no architecture of space {space.name!r} fits {budget_ms:g} ms on {args.device!r}")
    arch, value = found
    latency = space_latencies(space, args.device, [arch], dataset)[0]
    out = {"space": space.name, "device": args.device, "dataset": dataset, "budget": args.budget,
           "budget_ms": budget_ms, "objective": args.objective, "objective_source": f"objective:{args.objective}",
           "arch": space.format(arch), "value": value, "latency_ms": latency.latency_ms,
           "latency_source": latency.source, "solve_s": solve_s, "method": "exact"}
    if args.json:
        print_json(out)
        return 0
    print(f"{args.device} <= {budget_ms:g} ms ({space.name}, {dataset}); exact optimum of objective:{args.objective}")
    print(f"  architecture  {out['arch']}")
    print(f"  {args.objective:<13} {value:,.0f}")
    print(f"  latency       {latency.latency_ms:.4f} ms ({latency.source})")
    print(f"  solved in     {solve_s * 1000:.0f} ms")
    return 0
