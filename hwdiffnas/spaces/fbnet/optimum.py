"""The exact best FBNet architecture under a latency budget on a lookup-table device, for an additive objective."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.knapsack import solve_multiple_choice
from hwdiffnas.spaces.fbnet.arch import NUM_LAYERS, FBNetArch
from hwdiffnas.spaces.fbnet.cost import cost_tables
from hwdiffnas.spaces.fbnet.lut import AdditiveLatencyModel

ADDITIVE_OBJECTIVES: tuple[str, ...] = ("flops", "params")
"""Objectives that are sums over layers (``flops`` = multiply-accumulates of conv and linear layers)."""


@dataclass(frozen=True)
class ExactOptimum:
    """The optimum, its objective value and its exact latency."""

    arch: FBNetArch
    objective: str
    value: int
    latency_ms: float
    budget_ms: float


def exact_optimum(model: AdditiveLatencyModel, budget_ms: float, objective: str = "flops",
                  fixed: dict[int, int] | None = None) -> ExactOptimum | None:
    """Maximize ``objective`` subject to latency ≤ ``budget_ms`` (None when even the fastest does not fit).

    ``fixed`` pins layers (0-based index → block id) to solve a reduced instance.
    """
    if objective not in ADDITIVE_OBJECTIVES:
        raise UserError(f"objective {objective!r} is not a sum over layers; the exact method supports "
                        f"{', '.join(ADDITIVE_OBJECTIVES)}")
    macs, params = cost_tables(model.dataset)
    table = macs if objective == "flops" else params
    allowed = None
    if fixed:
        allowed = np.ones(model.table_ms.shape, dtype=bool)
        for layer, block in fixed.items():
            allowed[layer] = False
            allowed[layer, block] = True
    sol = solve_multiple_choice(model.table_ms, table.per_block, budget_ms - model.constant_ms, allowed)
    if sol is None:
        return None
    arch = FBNetArch(sol.choices)
    assert len(arch.ops) == NUM_LAYERS
    return ExactOptimum(arch, objective, table.total(arch), model.latency_ms(arch), budget_ms)
