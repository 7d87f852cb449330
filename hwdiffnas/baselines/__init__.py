"""Baseline search methods (random search, regularized evolution, predictor-based) and the method registry."""

from hwdiffnas.baselines.base import (
    Pick,
    SearchMethod,
    SearchTask,
    get_method,
    method_names,
    picks_from_history,
    register_method,
)

__all__ = ["Pick", "SearchMethod", "SearchTask", "get_method", "method_names", "picks_from_history",
           "register_method"]
