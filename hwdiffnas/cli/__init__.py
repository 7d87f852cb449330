"""The ``hwdiffnas`` command line: a thin layer over the library.

Each sub-command lives in its own module ``hwdiffnas.cli.cmd_<name>`` exposing ``register(subparsers,
parents)``; heavy imports happen inside the command handlers so ``hwdiffnas --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
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
    "spaces",
    "latency",
    "optimum",
)


DATA_DIR_HELP = "where the benchmark store lives (default: $HWDIFFNAS_DATA or the per-user dir)"
JSON_HELP = "print machine-readable JSON on stdout"
# exit status when stdout is closed before the output is written (`hwdiffnas devices | head -2`): 128 + SIGPIPE
EXIT_BROKEN_PIPE = 141


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (all sub-commands registered)."""
    parser = argparse.ArgumentParser(
        prog="hwdiffnas",
        description="Hardware-aware NAS on NAS-Bench-201: search, export and profile networks for edge devices.",
    )
    parser.add_argument("--version", action="version", version=f"hwdiffnas {__version__}")
    # --data-dir and --json are accepted before and after the sub-command: the sub-command's copies default to
    # SUPPRESS so they never overwrite a value given before it
    parser.add_argument("--data-dir", metavar="PATH", help=DATA_DIR_HELP)
    parser.add_argument("--json", action="store_true", help=JSON_HELP)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", metavar="PATH", default=argparse.SUPPRESS, help=DATA_DIR_HELP)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=JSON_HELP)
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
        status = int(args.handler(args) or 0)
        sys.stdout.flush()  # inside the try: a closed pipe shows up here, not at interpreter exit
        return status
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except UserError as exc:
        print(f"hwdiffnas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwdiffnas: interrupted", file=sys.stderr)
        return 130


def _silence_stdout() -> None:
    """Point stdout at devnull, so the interpreter's last flush of a closed pipe raises nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout replaced by an object without a descriptor
        pass
    finally:
        os.close(devnull)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
