"""Regularized evolution (Real et al., 2019) restricted to cells that fit the latency budget."""

from __future__ import annotations

from collections import deque

import numpy as np

from hwdiffnas.baselines.base import Pick, SearchMethod, SearchTask, picks_from_history
from hwdiffnas.benchmark import QueryOracle
from hwdiffnas.errors import UserError
from hwdiffnas.space import NUM_EDGES, OPS, Cell


class RegularizedEvolution(SearchMethod):
    """Aging evolution: tournament of ``sample_size`` from a population of ``population``; the child is the
    winner with one edge's op changed, resampled (for free) until it fits the budget; the oldest member dies.
    A child already looked up costs no query. With a small query budget the population shrinks to half the
    budget (at least 2), so that evolution gets the other half rather than degenerating to random search."""

    name = "rea"

    def __init__(self, population: int = 10, sample_size: int = 3, max_mutation_tries: int = 100) -> None:
        if population < 1 or sample_size < 1:
            raise UserError(f"REA needs population >= 1 and sample_size >= 1, got {population}, {sample_size}")
        self.population = population
        self.sample_size = sample_size
        self.max_mutation_tries = max_mutation_tries

    def describe(self) -> dict:
        return {"method": self.name, "population": self.population, "sample_size": self.sample_size}

    def _mutate(self, task: SearchTask, parent: int, rng: np.random.Generator) -> int | None:
        ops = list(task.cells[parent].ops)
        for _ in range(self.max_mutation_tries):
            child = ops.copy()
            e = int(rng.integers(NUM_EDGES))
            child[e] = int(rng.choice([o for o in range(len(OPS)) if o != ops[e]]))
            j = task.index_of[Cell(tuple(child))]
            if task.feasible[j]:
                return j
        return None

    def run(self, task: SearchTask, queries: QueryOracle, seed: int) -> list[Pick]:
        rng = np.random.default_rng(seed)
        feasible = task.feasible_indices
        if len(feasible) == 0 or queries.remaining == 0:
            return picks_from_history(task, queries)
        pop: deque[tuple[int, float]] = deque()
        size = min(self.population, max(2, queries.budget // 2))
        init = rng.permutation(feasible)[: min(size, queries.remaining)]
        for i in init:
            pop.append((int(i), queries.query(int(i))))
        stalls = 0
        while queries.remaining > 0 and stalls < 50 * max(queries.budget, 1):
            k = min(self.sample_size, len(pop))
            contenders = [pop[int(j)] for j in rng.choice(len(pop), size=k, replace=False)]
            parent = max(contenders, key=lambda ia: ia[1])[0]
            child = self._mutate(task, parent, rng)
            if child is None:
                child = int(rng.choice(feasible))
            if queries.seen(child):
                stalls += 1
            pop.append((child, queries.query(child)))
            if len(pop) > size:
                pop.popleft()
        return picks_from_history(task, queries)
