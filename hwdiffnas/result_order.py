"""The order in which a search lists its picks: the order it believes in them."""

from __future__ import annotations

import math
from typing import Any

ESTIMATED_ACCURACY_SOURCES = ("none", "surrogate")
"""``accuracy_source`` values of a pick whose accuracy was not looked up (estimated by the surrogate, or unknown)."""


def result_rank(result: Any) -> tuple[bool, bool, float, float]:
    """Sort key of a returned pick (a `hwdiffnas.search.SearchResult`): picks sure to fit the budget before flagged
    ones (``may_exceed_budget``); then accuracies known exactly (looked up, or a training label) before the
    surrogate's estimates; then by accuracy, best first (unknown last); then by latency, fastest first."""
    exact = result.accuracy_source not in ESTIMATED_ACCURACY_SOURCES
    acc = result.accuracy if result.accuracy is not None else -math.inf
    return (bool(result.may_exceed_budget), not exact, -float(acc), float(result.latency_ms))
