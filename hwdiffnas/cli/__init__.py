"""The ``hwdiffnas`` command line: a thin layer over the library.

Each sub-command lives in its own module ``hwdiffnas.cli.cmd_<name>`` exposing ``register(subparsers,
parents)``; heavy imports happen inside the command handlers so ``hwdiffnas --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from hwdiffnas import __version__
from hwdiffnas.errors import UserError

COMMAND_MODULES: tuple[str, ...] = (
    "devices",
    "export",
    "profile",
    "data",
    "oracle",
    "bench",
    "agent",
    "campaign",
    "train",
    "search",
    "plugins",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (all sub-commands registered)."""
    parser = argparse.ArgumentParser(
        prog="hwdiffnas",
        description="Hardware-aware NAS on NAS-Bench-201: search, export and profile networks for edge devices.",
    )
    parser.add_argument("--version", action="version", version=f"hwdiffnas {__version__}")
    parser.add_argument("--data-dir", metavar="PATH",
                        help="where the benchmark store lives (default: $HWDIFFNAS_DATA or the per-user dir)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"hwdiffnas.cli.cmd_{name}")
        module.register(sub, [common])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hwdiffnas`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"hwdiffnas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwdiffnas: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
