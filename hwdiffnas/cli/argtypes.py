"""Argument types shared by the commands (argparse turns their errors into a usage message, exit status 2)."""

from __future__ import annotations

import argparse
import math


def finite_float(text: str) -> float:
    """A float option that must be a finite number (``inf`` and ``nan`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


SPACE_HELP = "search space (default nb201; `hwdiffnas spaces` lists the installed ones)"


def add_space_argument(p: argparse.ArgumentParser) -> None:
    """``--space NAME`` (default ``nb201``); the name is checked when the command runs, so an unknown one is an
    error that lists the installed spaces."""
    p.add_argument("--space", default="nb201", metavar="NAME", help=SPACE_HELP)


def nb201_only(args: argparse.Namespace, what: str) -> None:
    """Refuse ``--space`` other than nb201 for a path that handles NB201 only (after checking the name exists)."""
    from hwdiffnas.plugins import get_space
    from hwdiffnas.spaces.base import require_space

    require_space(get_space(getattr(args, "space", "nb201")), ("nb201",), what)
