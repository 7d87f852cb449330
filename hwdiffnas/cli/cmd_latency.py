"""``hwdiffnas latency --space fbnet --device raspi4 --arch OPS [--arch OPS …] [--arch-file F]``: latency of
given architectures on a device, with its source."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hwdiffnas.cli.output import print_json
from hwdiffnas.errors import UserError


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "latency", parents=parents, help="latency of given architectures on a device (lookup table, store or "
                                         "estimate)",
        description="Latency of architectures on a device: a space's exact lookup tables (source lut; FBNet on "
                    "fpga, eyeriss, raspi4, pixel3, CIFAR-100 setting), its shipped measured rows, else the benchmark "
                    "store (table rows, a campaign's measured rows, or the estimate with its upper bound at "
                    "--risk).")
    p.add_argument("--space", default="nb201", help="search space (default nb201; see `hwdiffnas spaces`)")
    p.add_argument("--device", help="device name (see `hwdiffnas devices --space S`)")
    p.add_argument("--device-table", metavar="FILE.csv",
                   help="measured rows arch,latency_ms of a device nobody has tabulated (exact for those rows, "
                        "an estimate with its bound through the other devices' tables elsewhere)")
    p.add_argument("--arch", action="append", default=[], help="architecture (repeat for several)")
    p.add_argument("--arch-file", metavar="FILE", help="a file with one architecture per line")
    p.add_argument("--dataset", default=None, help="dataset setting (default: the space's first; FBNet tables "
                                                   "are in the cifar100 setting)")
    p.add_argument("--risk", type=float, default=0.05, help="miss rate of an estimate's upper bound")
    p.set_defaults(handler=run)


def _archs(args: argparse.Namespace) -> list[str]:
    texts = list(args.arch)
    if args.arch_file:
        path = Path(args.arch_file)
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from exc
        texts += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not texts:
        raise UserError("give architectures with --arch (repeatable) or --arch-file FILE")
    return texts


def run(args: argparse.Namespace) -> int:
    from hwdiffnas.datadir import store_path
    from hwdiffnas.latency.lookup import STORE_SPACES
    from hwdiffnas.latency.space_device import space_latencies
    from hwdiffnas.plugins import get_space, parse_arch

    if not 0.0 < args.risk < 1.0:
        raise UserError(f"--risk must lie strictly between 0 and 1, got {args.risk}")
    space = get_space(args.space)
    dataset = space.dataset(args.dataset).name if args.dataset else next(iter(space.datasets))
    archs = [parse_arch(space, t) for t in _archs(args)]
    if not args.device and not args.device_table:
        raise UserError("give a device name (--device) or a table of measured rows (--device-table FILE.csv)")
    device = args.device or Path(args.device_table).stem
    if space.name in STORE_SPACES and (args.device_table or args.device not in space.latency_tables(dataset)):
        from hwdiffnas.benchmark import open_store

        with open_store(args.data_dir, require_accuracy=False) as store:
            answers = space_latencies(space, args.device, archs, dataset, store, args.risk, args.device_table)
    elif not args.device_table and args.device not in space.latency_tables(dataset) \
            and args.device not in space.measured_rows(dataset) and store_path(args.data_dir).is_file():
        from hwdiffnas.store import Store

        with Store(store_path(args.data_dir)) as store:  # the device's campaign measurements in this space
            answers = space_latencies(space, args.device, archs, dataset, store, args.risk)
    else:
        answers = space_latencies(space, args.device, archs, dataset, delta=args.risk,
                                  device_table=args.device_table)
    out = {"space": space.name, "device": device, "dataset": dataset,
           "latencies": [a.to_dict() for a in answers]}
    if args.json:
        print_json(out)
        return 0
    print(f"{device} ({space.name}, {dataset} setting)")
    for a in answers:
        bound = "" if a.upper_ms == a.latency_ms else f"  (≤ {a.upper_ms:.4g} ms at risk {args.risk:g})"
        print(f"  {a.latency_ms:10.4f} ms  {a.source:<18s} {a.arch}{bound}")
    return 0
