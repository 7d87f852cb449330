"""Exact multiple-choice knapsack: pick one option per layer, maximize the summed value, keep the summed cost
within a budget.

This is the best architecture under a latency budget whenever both latency and the objective are sums over
layers (an FBNet lookup-table device with MACs or parameters as the objective). The solver keeps, layer by
layer, the Pareto front of (exact cost, value) over partial choices — no rounding of costs — pruned by what the
remaining layers can still add or must still cost. Costs are compared with the budget within ``COST_TOLERANCE``
(floating-point summation order). Among choices of equal value the one with the lowest cost wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwdiffnas.errors import UserError

COST_TOLERANCE = 1e-9
"""Slack allowed when comparing a summed cost with the budget (floating-point order of addition)."""
MAX_FRONT = 5_000_000
"""Largest Pareto front kept for one layer before the solver gives up (memory guard)."""


@dataclass(frozen=True)
class KnapsackSolution:
    """One option per layer, with the summed value and cost of that choice."""

    choices: tuple[int, ...]
    value: float
    cost: float
    front_sizes: tuple[int, ...]  # Pareto-front size after each layer (the work done)


def solve_multiple_choice(cost: np.ndarray, value: np.ndarray, budget: float,
                          allowed: np.ndarray | None = None) -> KnapsackSolution | None:
    """Best choice (one option per row of the (L, K) ``cost``/``value`` arrays) with Σ cost ≤ ``budget``.

    ``allowed`` (L, K) bool restricts the options per layer. Returns None when no choice fits.
    """
    cost = np.asarray(cost, dtype=np.float64)
    value = np.asarray(value, dtype=np.float64)
    if cost.ndim != 2 or cost.shape != value.shape:
        raise UserError(f"cost and value must be (layers, options) arrays of one shape; got {cost.shape}, "
                        f"{value.shape}")
    if not (np.all(np.isfinite(cost)) and np.all(np.isfinite(value))):
        raise UserError("cost and value must be finite")
    if not math.isfinite(budget):
        raise UserError(f"need a finite budget; got {budget}")
    mask = np.ones(cost.shape, dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    if mask.shape != cost.shape or not mask.any(axis=1).all():
        raise UserError("allowed must be an (layers, options) mask with at least one option per layer")
    n_layers = cost.shape[0]
    c_min = np.where(mask, cost, np.inf).min(axis=1)
    v_max = np.where(mask, value, -np.inf).max(axis=1)
    rest_cost = np.concatenate([np.cumsum(c_min[::-1])[::-1][1:], [0.0]])  # least cost of layers after l
    rest_value = np.concatenate([np.cumsum(v_max[::-1])[::-1][1:], [0.0]])
    limit = budget + COST_TOLERANCE
    if c_min.sum() > limit:
        return None

    # A feasible lower bound for pruning: greedy from the cheapest choice, upgrading while it fits.
    floor_value = _greedy_value(cost, value, mask, limit)

    front_cost = np.zeros(1)
    front_value = np.zeros(1)
    parents: list[np.ndarray] = []
    options: list[np.ndarray] = []
    sizes: list[int] = []
    for layer in range(n_layers):
        ks = np.flatnonzero(mask[layer])
        cand_cost = (front_cost[None, :] + cost[layer, ks][:, None]).ravel()
        cand_value = (front_value[None, :] + value[layer, ks][:, None]).ravel()
        parent = np.tile(np.arange(len(front_cost)), len(ks))
        option = np.repeat(ks, len(front_cost))
        keep = (cand_cost + rest_cost[layer] <= limit) & (cand_value + rest_value[layer] >= floor_value)
        cand_cost, cand_value, parent, option = cand_cost[keep], cand_value[keep], parent[keep], option[keep]
        order = np.lexsort((-cand_value, cand_cost))  # by cost, then higher value first
        cand_cost, cand_value, parent, option = cand_cost[order], cand_value[order], parent[order], option[order]
        best_before = np.maximum.accumulate(np.concatenate([[-np.inf], cand_value[:-1]]))
        pareto = cand_value > best_before
        front_cost, front_value = cand_cost[pareto], cand_value[pareto]
        parents.append(parent[pareto])
        options.append(option[pareto])
        sizes.append(len(front_cost))
        if len(front_cost) == 0:
            return None
        if len(front_cost) > MAX_FRONT:
            raise UserError(f"knapsack front grew to {len(front_cost)} entries at layer {layer}; instance too large")
    best = int(np.argmax(front_value))  # first (cheapest) of the best value: the front is sorted by cost
    choices = [0] * n_layers
    idx = best
    for layer in range(n_layers - 1, -1, -1):
        choices[layer] = int(options[layer][idx])
        idx = int(parents[layer][idx])
    rows = np.arange(n_layers)
    return KnapsackSolution(tuple(choices), float(value[rows, choices].sum()), float(cost[rows, choices].sum()),
                            tuple(sizes))


def _greedy_value(cost: np.ndarray, value: np.ndarray, mask: np.ndarray, limit: float) -> float:
    """Value of a feasible choice found greedily (cheapest per layer, then best value-per-cost upgrades)."""
    masked_cost = np.where(mask, cost, np.inf)
    pick = masked_cost.argmin(axis=1)
    rows = np.arange(len(pick))
    total = float(cost[rows, pick].sum())
    improved = True
    while improved:
        improved = False
        gain = np.where(mask, value - value[rows, pick][:, None], -np.inf)
        extra = np.where(mask, cost - cost[rows, pick][:, None], np.inf)
        ok = (gain > 0) & (total + extra <= limit)
        if not ok.any():
            break
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(ok, gain / np.maximum(extra, 1e-12), -np.inf)
        layer, option = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        total += float(extra[layer, option])
        pick[layer] = option
        improved = True
    return float(value[rows, pick].sum())
