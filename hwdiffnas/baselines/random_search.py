"""Random search: query distinct feasible cells in random order until the query budget is spent."""

from __future__ import annotations

import numpy as np

from hwdiffnas.baselines.base import Pick, SearchMethod, SearchTask, picks_from_history
from hwdiffnas.benchmark import QueryOracle


class RandomSearch(SearchMethod):
    """Uniform sampling without replacement among the cells that fit the budget (latency look-ups are free)."""

    name = "random"

    def run(self, task: SearchTask, queries: QueryOracle, seed: int) -> list[Pick]:
        rng = np.random.default_rng(seed)
        order = rng.permutation(task.feasible_indices)
        for i in order[: queries.remaining]:
            queries.query(int(i))
        return picks_from_history(task, queries)
