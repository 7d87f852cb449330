"""The objective interface (the registry is `hwdiffnas.objectives`, above the built-in objectives)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

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
