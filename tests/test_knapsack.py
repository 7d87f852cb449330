"""The exact multiple-choice knapsack and the FBNet exact optimum, checked against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hwdiffnas.errors import UserError
from hwdiffnas.knapsack import solve_multiple_choice


def _brute(cost: np.ndarray, value: np.ndarray, budget: float) -> float | None:
    best = None
    for combo in itertools.product(range(cost.shape[1]), repeat=cost.shape[0]):
        c = sum(cost[i, k] for i, k in enumerate(combo))
        if c <= budget:
            v = sum(value[i, k] for i, k in enumerate(combo))
            best = v if best is None else max(best, v)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_knapsack_matches_brute_force_on_random_integer_instances(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cost = rng.random(size=(5, 4)) * 0.02
    value = rng.integers(0, 100, size=(5, 4)).astype(float)
    for budget in (0.0, 0.013, 0.040, 0.100):
        sol = solve_multiple_choice(cost, value, budget)
        expect = _brute(cost, value, budget + 1e-12)
        if expect is None:
            assert sol is None
            continue
        assert sol is not None and sol.value == expect
        assert sol.cost <= budget + 1e-12


def test_knapsack_uses_exact_costs_without_rounding() -> None:
    cost = np.array([[0.0004, 0.0], [0.0004, 0.0], [0.00021, 0.0]])
    value = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    sol = solve_multiple_choice(cost, value, 0.001)
    assert sol is not None and sol.value == 2.0 and sol.cost == pytest.approx(0.00061)  # the cheaper pair
    sol = solve_multiple_choice(cost, value, 0.00101)
    assert sol is not None and sol.value == 3.0


def test_knapsack_breaks_value_ties_toward_lower_cost() -> None:
    cost = np.array([[0.005, 0.002]])
    value = np.array([[3.0, 3.0]])
    sol = solve_multiple_choice(cost, value, 0.010)
    assert sol is not None and sol.choices == (1,)


def test_knapsack_bad_input() -> None:
    with pytest.raises(UserError, match="one shape"):
        solve_multiple_choice(np.zeros((2, 3)), np.zeros((3, 2)), 1.0)
    with pytest.raises(UserError, match="finite budget"):
        solve_multiple_choice(np.zeros((2, 3)), np.zeros((2, 3)), float("inf"))
    assert solve_multiple_choice(np.ones((2, 3)), np.zeros((2, 3)), 1.0) is None


@pytest.mark.parametrize("device", ["fpga", "eyeriss", "raspi4", "pixel3"])
@pytest.mark.parametrize("objective", ["flops", "params"])
def test_fbnet_exact_optimum_equals_brute_force_on_six_free_layers(device: str, objective: str) -> None:
    from hwdiffnas.spaces.fbnet.arch import NUM_BLOCKS, NUM_LAYERS
    from hwdiffnas.spaces.fbnet.cost import cost_tables
    from hwdiffnas.spaces.fbnet.lut import load_latency_models
    from hwdiffnas.spaces.fbnet.optimum import exact_optimum

    model = load_latency_models()[device]
    macs, params = cost_tables("cifar100")
    table = macs if objective == "flops" else params
    rng = np.random.default_rng(0)
    free = sorted(rng.choice(NUM_LAYERS, size=6, replace=False).tolist())
    base = rng.integers(0, NUM_BLOCKS, size=NUM_LAYERS)
    fixed = {layer: int(base[layer]) for layer in range(NUM_LAYERS) if layer not in free}
    grid = np.array(list(itertools.product(range(NUM_BLOCKS), repeat=6)))  # (531441, 6)
    ops = np.repeat(base[None, :], len(grid), axis=0)
    ops[:, free] = grid
    lat = model.latency_batch_ms(ops)
    val = table.total_batch(ops)
    for q in (0.25, 0.5, 0.75):
        budget = float(np.quantile(lat, q))
        got = exact_optimum(model, budget, objective, fixed=fixed)
        fits = lat <= budget
        assert got is not None and got.latency_ms <= budget
        assert got.value == int(val[fits].max())
        assert all(got.arch.ops[k] == v for k, v in fixed.items())
    fastest = float(lat.min())
    assert exact_optimum(model, fastest - 0.01, objective, fixed=fixed) is None


def test_exact_optimum_refuses_non_additive_objectives() -> None:
    from hwdiffnas.spaces.fbnet.lut import load_latency_models
    from hwdiffnas.spaces.fbnet.optimum import exact_optimum

    with pytest.raises(UserError, match="not a sum over layers; the exact method supports flops, params"):
        exact_optimum(load_latency_models()["fpga"], 10.0, "synflow")
