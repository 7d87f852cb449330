"""``hwdiffnas export``: one cell → a validated ONNX / OpenVINO file."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from hwdiffnas.cli.argtypes import add_space_argument
from hwdiffnas.cli.output import print_json

DEAD_NODE_CHOICES = ("zeros", "prune")  # = hwdiffnas.materialize.DEAD_NODE_RULES (not imported: keeps --help fast)


def add_network_arguments(p: argparse.ArgumentParser) -> None:
    """``--space``, ``--arch``, ``--dataset`` and ``--dead-nodes`` (shared with ``profile``)."""
    add_space_argument(p)
    p.add_argument("--arch", required=True, metavar="ARCH",
                   help="an architecture of the space; NB201: arch string ('|nor_conv_3x3~0|+|...|') or six "
                        "comma-separated op ids (3,3,1,0,3,4)")
    p.add_argument("--dataset", default="cifar100", metavar="NAME",
                   help="input setting and head (NB201: cifar10, cifar100 (default), ImageNet16-120)")
    p.add_argument("--dead-nodes", default=None, choices=DEAD_NODE_CHOICES,
                   help="NB201 nodes fed only by 'none': zeros = NB201's function (default); prune = drop dead "
                        "paths")


def network_from_args(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """(space, architecture, NB201 macro settings or None) from ``--space``, ``--arch`` and ``--dead-nodes``."""
    from hwdiffnas.errors import UserError
    from hwdiffnas.materialize import MacroConfig
    from hwdiffnas.plugins import get_space, parse_arch

    space = get_space(args.space)
    arch = parse_arch(space, args.arch)
    if space.name != "nb201":
        if args.dead_nodes is not None:
            raise UserError(f"--dead-nodes is an NB201 setting; search space {space.name!r} has no dead nodes")
        return space, arch, None
    args.dead_nodes = args.dead_nodes or "zeros"
    return space, arch, MacroConfig(dead_nodes=args.dead_nodes)


FORMATS_HELP = "onnx, openvino, tflite, tflite-int8, tflite-torch, tensorrt (or a plug-in's)"


def constant_network_warning(cell: Any, space: Any = None) -> str | None:
    """The warning for a degenerate architecture (NB201: a cell without an input→output path, whose network
    ignores its input), else None."""
    if space is None or space.name == "nb201":
        if cell.is_connected:
            return None
        return (f"{cell.arch_str} has no path from the input to the output: the network's output does not depend "
                "on its input (a constant network), so neither its accuracy nor its latency is that of a useful "
                "network")
    why = space.degenerate(cell)
    return None if why is None else f"{space.format(cell)} is a degenerate {space.name} architecture: {why}"


def warn(message: str) -> None:
    """One warning line on stderr."""
    print(f"hwdiffnas: warning: {message}", file=sys.stderr)


def output_target(out: str) -> tuple[Path, str | None]:
    """``-o`` as (folder, file name): a name with a suffix that is not an existing folder (and does not end in
    a path separator) names the loadable file; anything else is the folder."""
    path = Path(out).expanduser()
    if path.suffix and not path.is_dir() and not out.endswith(("/", os.sep)):
        return path.parent, path.name
    return path, None


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("export", parents=parents,
                              help="export a cell's network (onnx, openvino, tflite, tensorrt) and validate it",
                              description="Build the NB201 network of a cell, export it with a fixed batch-1 input, "
                                          "check it numerically against torch on random inputs (max |diff| ≤ "
                                          "1e-4 × max(1, max |output|)) and write it to DIR only if it passes.")
    add_network_arguments(p)
    p.add_argument("--format", required=True, metavar="FORMAT", help=f"exporter: {FORMATS_HELP}")
    p.add_argument("-o", "--out", required=True, metavar="DIR|FILE",
                   help="output folder (created if missing; files are named after the cell), or the model file's "
                        "name with the format's suffix (out/model.onnx, out/model.xml)")
    p.add_argument("--trials", type=int, default=3, metavar="N", help="random inputs for validation (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and inputs (default 0)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hwdiffnas.deploy import export_cell
    from hwdiffnas.errors import ValidationError

    space, cell, macro = network_from_args(args)
    warnings = [w for w in (constant_network_warning(cell, space),) if w]
    for w in warnings:
        warn(w)
    folder, file_name = output_target(args.out)
    try:
        result = export_cell(cell, args.format, folder, dataset=args.dataset, macro=macro,
                             validate_trials=args.trials, seed=args.seed, file_name=file_name, space=space)
    except ValidationError as exc:
        print(f"hwdiffnas: validation failed: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print_json({**result.to_dict(), "warnings": warnings})
        return 0
    v, info = result.validation, result.info
    for path in result.exported.files:
        print(f"wrote {path}")
    print(f"validation: max |diff| {v.max_abs_diff:.3g} <= tolerance {v.tolerance:.3g} "
          f"({v.trials} random inputs, max |output| {v.max_abs_output:.3g})")
    where = f"dead nodes: {args.dead_nodes}" if space.name == "nb201" else f"space {space.name}"
    print(f"network: {info.arch_str} on {info.dataset}, input {'x'.join(map(str, info.input_shape))}, "
          f"{info.params:,} params, {info.macs / 1e6:.2f} M MACs ({info.flops / 1e6:.2f} MFLOPs), {where}")
    print(f"export {result.export_s:.2f} s, validation {result.validate_s:.2f} s")
    return 0
