"""The common interface of search methods and their registry.

A method receives a `SearchTask` (the device's latencies — free look-ups —, connectivity, the budget) and a
`QueryOracle` (counted accuracy look-ups), and returns its picks best first. Methods are registered by name in
`hwdiffnas.methods` (above the baselines and the generator's search, so neither loads the other).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from hwdiffnas.benchmark import QueryOracle
from hwdiffnas.space import Cell


@dataclass(frozen=True)
class SearchTask:
    """One search problem: find the most accurate connected cell with latency ≤ ``budget_ms`` on ``device``.

    Arrays are in NB201 index order, shape (15625,). ``latency_ms`` is what a method may look up for free
    (NaN = unknown); the harness scores picks against the same table.
    """

    device: str
    budget_ms: float
    latency_ms: np.ndarray
    connected: np.ndarray
    cells: Sequence[Cell]
    dataset: str = "cifar100"
    column: str = "nats"

    @cached_property
    def feasible(self) -> np.ndarray:
        """(n,) bool: connected, latency known and ≤ budget."""
        lat = np.asarray(self.latency_ms, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return np.asarray(self.connected, dtype=bool) & np.isfinite(lat) & (lat <= self.budget_ms)

    @cached_property
    def feasible_indices(self) -> np.ndarray:
        return np.flatnonzero(self.feasible)

    @cached_property
    def one_hot(self) -> np.ndarray:
        """(n, 30) one-hot op encoding of every cell (edge-major)."""
        return np.stack([c.one_hot() for c in self.cells])

    @cached_property
    def index_of(self) -> dict[Cell, int]:
        return {c: i for i, c in enumerate(self.cells)}


@dataclass(frozen=True)
class Pick:
    """A cell a method proposes: NB201 index, arch string, the accuracy it observed (None if it never
    queried it) and the latency it believes (ms)."""

    index: int
    arch_str: str
    observed_accuracy: float | None
    latency_ms: float


class SearchMethod:
    """Base class of search methods."""

    name = "method"

    def label_queries(self, task: SearchTask) -> int:
        """Accuracy queries spent on training labels, on top of the search's own queries (default 0)."""
        return 0

    def run(self, task: SearchTask, queries: QueryOracle, seed: int) -> list[Pick]:
        """Search within ``queries.budget`` accuracy look-ups; return picks, best first."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"method": self.name}


def picks_from_history(task: SearchTask, queries: QueryOracle) -> list[Pick]:
    """The feasible cells looked up so far, most accurate first (ties: lower latency, then lower index)."""
    hist = [(i, a) for i, a in queries.history.items() if task.feasible[i] and np.isfinite(a)]
    hist.sort(key=lambda ia: (-ia[1], float(task.latency_ms[ia[0]]), ia[0]))
    return [Pick(i, task.cells[i].arch_str, a, float(task.latency_ms[i])) for i, a in hist]
