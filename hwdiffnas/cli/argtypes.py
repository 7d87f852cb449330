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
