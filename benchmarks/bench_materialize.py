"""Materialize every NB201 cell: time per network (wall and CPU), and a finite-output check.

Builds all 15,625 networks with `hwdiffnas.materialize.build_network` (torch with one thread) and reports
the median / mean / p90 / max build time per network, wall-clock and process CPU time (the CPU time is the
figure to trust on a shared machine). Every ``--check-every``-th network also runs one forward pass on a random
input and must give finite logits of the right shape. ``--fast-init`` measures a variant that skips
torch's per-layer Kaiming initialisation during construction and then draws the same distribution
(U(±1/√fan_in)) in one pass per weight.

    .venv/bin/python benchmarks/bench_materialize.py --dataset cifar100
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import sys
import time
from collections.abc import Iterator

import torch

from hwdiffnas.interfaces import host_description, percentile
from hwdiffnas.materialize import MacroConfig, build_network, dataset_spec
from hwdiffnas.space import all_cells


@contextlib.contextmanager
def no_kaiming() -> Iterator[None]:
    """Make ``nn.init.kaiming_uniform_`` / ``uniform_`` no-ops while modules are constructed."""
    init = torch.nn.init
    saved = init.kaiming_uniform_, init.uniform_
    init.kaiming_uniform_ = lambda t, *a, **k: t
    init.uniform_ = lambda t, *a, **k: t
    try:
        yield
    finally:
        init.kaiming_uniform_, init.uniform_ = saved


def fast_build(cell, dataset: str, macro: MacroConfig) -> torch.nn.Module:
    """`build_network` with the per-layer init replaced by one uniform draw per weight (same distribution)."""
    with no_kaiming():
        net = build_network(cell, dataset, macro)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = m.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                m.weight.uniform_(-bound, bound)
                if m.bias is not None:
                    m.bias.uniform_(-bound, bound)
    return net


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="cifar100")
    ap.add_argument("--dead-nodes", default="zeros", choices=("zeros", "prune"))
    ap.add_argument("--limit", type=int, default=0, help="only the first N cells (default: all 15,625)")
    ap.add_argument("--stride", type=int, default=1, help="every k-th cell of the space (default 1: all)")
    ap.add_argument("--check-every", type=int, default=25, help="forward-check every k-th network (default 25)")
    ap.add_argument("--fast-init", action="store_true", help="measure the skip-Kaiming variant")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    torch.manual_seed(0)
    spec = dataset_spec(args.dataset)
    macro = MacroConfig(dead_nodes=args.dead_nodes)
    build = (lambda c: fast_build(c, spec.name, macro)) if args.fast_init else (lambda c: build_network(c, spec.name,
                                                                                                        macro))
    cells = list(all_cells())[::args.stride]
    if args.limit:
        cells = cells[:args.limit]
    wall, cpu = [], []
    checked = bad = 0
    x = torch.randn(spec.input_shape)
    t_all = time.perf_counter()
    for i, cell in enumerate(cells):
        w0, c0 = time.perf_counter(), time.process_time()
        net = build(cell)
        wall.append(1e3 * (time.perf_counter() - w0))
        cpu.append(1e3 * (time.process_time() - c0))
        if i % args.check_every == 0:
            with torch.inference_mode():
                out = net(x)
            checked += 1
            if out.shape != (1, spec.num_classes) or not torch.isfinite(out).all():
                bad += 1
                print(f"non-finite or mis-shaped output for {cell.arch_str}", file=sys.stderr)
        if (i + 1) % 2000 == 0:
            print(f"  {i + 1}/{len(cells)} ({time.perf_counter() - t_all:.0f} s)", flush=True)
    total = time.perf_counter() - t_all

    def summary(xs: list[float]) -> str:
        s = sorted(xs)
        return (f"median {statistics.median(s):.1f} ms, mean {statistics.fmean(s):.1f} ms, "
                f"p90 {percentile(s, 90):.1f} ms, max {s[-1]:.1f} ms")

    print(f"host: {host_description()}; torch {torch.__version__}, 1 thread")
    print(f"{len(cells)} networks ({spec.name}, dead nodes {args.dead_nodes}, "
          f"{'fast init' if args.fast_init else 'default init'}) built in {total:.0f} s")
    print(f"build wall: {summary(wall)}")
    print(f"build CPU:  {summary(cpu)}")
    print(f"forward check: {checked} networks, {bad} with non-finite/mis-shaped logits")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
