"""The objective interface and its registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from hwdiffnas.errors import UserError

if TYPE_CHECKING:
    from torch import nn


class Objective(ABC):
    """A score of a network that a search maximizes in place of accuracy."""

    name: str = ""
    description: str = ""
    additive: bool = False  # a sum over layers (so an exact knapsack optimum exists on additive-latency devices)
    needs_torch_seed: bool = False  # the value depends on random weights / inputs (seeded per network)

    @property
    def source(self) -> str:
        """How results name it (``objective:<name>``)."""
        return f"objective:{self.name}"

    @abstractmethod
    def compute(self, model: nn.Module, input_shape: tuple[int, ...], seed: int = 0) -> float:
        """The objective of ``model`` (a freshly built network at its dataset's ``input_shape``, batch 1)."""


_REGISTRY: dict[str, Objective] = {}


def register_objective(objective: Objective) -> None:
    """Make ``objective`` available by name (replaces one of the same name)."""
    if not objective.name:
        raise ValueError("an objective needs a name")
    _REGISTRY[objective.name] = objective


def _ensure_builtin() -> None:
    if not _REGISTRY:
        from hwdiffnas.objectives import builtin  # noqa: F401  (registers on import)


def objective_names() -> list[str]:
    """Names of the registered objectives."""
    _ensure_builtin()
    return sorted(_REGISTRY)


def get_objective(name: str) -> Objective:
    """The objective ``name``; unknown names list the known ones."""
    _ensure_builtin()
    if name not in _REGISTRY:
        raise UserError(f"unknown objective {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]
