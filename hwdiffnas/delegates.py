"""LiteRT delegates and the ``benchmark_model`` flags that select them.

A core leaf module (no parser, no runtime): device configs validate a ``[measure] delegate`` with it and the remote
route and the LiteRT profiler build their command lines with it.
"""

from __future__ import annotations

from hwdiffnas.errors import UserError

DELEGATE_FLAGS: dict[str, tuple[str, ...]] = {
    "cpu": ("--use_xnnpack=false",),
    "xnnpack": ("--use_xnnpack=true",),
    "nnapi": ("--use_nnapi=true",),
    "gpu": ("--use_gpu=true",),
    "hexagon": ("--use_hexagon=true",),
}


def benchmark_model_flags(delegate: str) -> tuple[str, ...]:
    """``benchmark_model`` flags selecting a LiteRT ``delegate`` ("" = none: the tool's default); unknown names
    list the valid ones."""
    if not delegate:
        return ()
    if delegate not in DELEGATE_FLAGS:
        raise UserError(f"unknown LiteRT delegate {delegate!r}; known: {', '.join(DELEGATE_FLAGS)}")
    return DELEGATE_FLAGS[delegate]
