"""Random search and regularized evolution in any search space, enumerable or not, at a counted cost.

A problem (`OpenTask`) is a space, a free latency function (a lookup table, a predictor's bound) with a budget,
and an objective to maximize whose evaluations are counted (`ObjectiveCounter`; re-evaluating a known
architecture is free). Both methods only ever evaluate architectures whose latency fits the budget; drawing and
mutating until one fits is free (latency is a model), bounded by ``max_tries``. This is the equal-cost comparison
for a generator: the same objective and latency model, cost = objective evaluations at search time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.spaces.base import SearchSpace


@dataclass
class ObjectiveCounter:
    """Counted objective evaluations with a cache; ``budget`` evaluations at most."""

    objective: Callable[[Any], float]
    budget: int
    values: dict[Any, float] = field(default_factory=dict)

    @property
    def used(self) -> int:
        return len(self.values)

    @property
    def remaining(self) -> int:
        return self.budget - self.used

    def __call__(self, arch: Any) -> float:
        if arch not in self.values:
            if self.remaining <= 0:
                raise UserError(f"objective evaluation budget of {self.budget} spent")
            self.values[arch] = float(self.objective(arch))
        return self.values[arch]


@dataclass(frozen=True)
class OpenTask:
    """Maximize ``objective`` over ``space`` subject to ``latency_ms(archs) <= budget_ms``."""

    space: SearchSpace[Any]
    latency_ms: Callable[[Sequence[Any]], np.ndarray]
    budget_ms: float
    objective: Callable[[Any], float]

    def fits(self, archs: Sequence[Any]) -> np.ndarray:
        return np.asarray(self.latency_ms(archs), dtype=np.float64) <= self.budget_ms


@dataclass(frozen=True)
class OpenResult:
    """The best fitting architecture found, its objective and latency, and the evaluations spent."""

    arch: Any
    value: float
    latency_ms: float
    evaluations: int
    history: tuple[tuple[Any, float], ...]  # (architecture, objective) in evaluation order


def _result(task: OpenTask, counter: ObjectiveCounter) -> OpenResult | None:
    if not counter.values:
        return None
    arch, value = max(counter.values.items(), key=lambda kv: kv[1])
    return OpenResult(arch, value, float(task.latency_ms([arch])[0]), counter.used, tuple(counter.values.items()))


def _fitting_samples(task: OpenTask, n: int, rng: np.random.Generator, max_tries: int) -> list[Any]:
    out: list[Any] = []
    tries = 0
    while len(out) < n and tries < max_tries:
        batch = task.space.sample(min(1024, max(64, 4 * n)), seed=int(rng.integers(2**31)))
        tries += len(batch)
        out += [a for a, ok in zip(batch, task.fits(batch)) if ok]
    return out[:n]


def random_search(task: OpenTask, evaluations: int, seed: int = 0, max_tries: int = 1_000_000) -> OpenResult | None:
    """Evaluate ``evaluations`` uniformly drawn architectures that fit the budget; the best of them."""
    counter = ObjectiveCounter(task.objective, evaluations)
    rng = np.random.default_rng(seed)
    for arch in _fitting_samples(task, evaluations, rng, max_tries):
        if counter.remaining <= 0:
            break
        counter(arch)
    return _result(task, counter)


def regularized_evolution(task: OpenTask, evaluations: int, seed: int = 0, population: int = 20,
                          sample_size: int = 5, max_tries: int = 1_000) -> OpenResult | None:
    """Aging evolution (Real et al., 2019): a tournament of ``sample_size`` from the ``population`` youngest; the
    child is the winner with one slot changed, redrawn (free) until it fits; the oldest dies."""
    if population < 1 or sample_size < 1:
        raise UserError(f"evolution needs population >= 1 and sample_size >= 1, got {population}, {sample_size}")
    counter = ObjectiveCounter(task.objective, evaluations)
    rng = np.random.default_rng(seed)
    enc = task.space.encoding
    pop: deque[tuple[Any, float]] = deque()
    for arch in _fitting_samples(task, min(population, evaluations), rng, 1_000_000):
        pop.append((arch, counter(arch)))
    stalls = 0
    while counter.remaining > 0 and pop and stalls < 50 * evaluations:
        idx = rng.choice(len(pop), size=min(sample_size, len(pop)), replace=False)
        parent = max((pop[int(i)] for i in idx), key=lambda av: av[1])[0]
        ops = list(task.space.encode(parent))
        child = None
        for _ in range(max_tries):
            cand = list(ops)
            p = int(rng.integers(enc.positions))
            cand[p] = int(rng.choice([c for c in range(len(enc.choices)) if c != ops[p]]))
            arch = task.space.decode(cand)
            if task.fits([arch])[0]:
                child = arch
                break
        if child is None or child in counter.values:
            stalls += 1
            if child is not None:
                pop.append((child, counter.values[child]))
                pop.popleft()
            continue
        pop.append((child, counter(child)))
        if len(pop) > population:
            pop.popleft()
    return _result(task, counter)
