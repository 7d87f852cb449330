"""Baseline search methods (random search, regularized evolution, predictor-based) and their interface; the
method registry is `hwdiffnas.methods`."""

from hwdiffnas.baselines.base import Pick, SearchMethod, SearchTask, picks_from_history

__all__ = ["Pick", "SearchMethod", "SearchTask", "picks_from_history"]
