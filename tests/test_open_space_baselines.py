"""Random search and regularized evolution in a non-enumerable space, against the exact optimum."""

from __future__ import annotations

import numpy as np
import pytest

from hwdiffnas.baselines.open_space import (
    ObjectiveCounter,
    OpenTask,
    random_search,
    regularized_evolution,
)
from hwdiffnas.errors import UserError


def _task(budget_quantile: float = 0.5) -> tuple[OpenTask, float]:
    from hwdiffnas.plugins import get_space
    from hwdiffnas.spaces.fbnet.cost import cost_tables
    from hwdiffnas.spaces.fbnet.lut import load_latency_models
    from hwdiffnas.spaces.fbnet.optimum import exact_optimum

    space = get_space("fbnet")
    lut = load_latency_models()["raspi4"]
    macs, _ = cost_tables("cifar100")
    sample = np.array([a.ops for a in space.sample(2000, seed=9)])
    budget = float(np.quantile(lut.latency_batch_ms(sample), budget_quantile))
    task = OpenTask(space, lambda archs: lut.latency_batch_ms(np.array([a.ops for a in archs])), budget,
                    lambda a: float(macs.total(a)))
    best = exact_optimum(lut, budget, "flops")
    assert best is not None
    return task, float(best.value)


def test_both_methods_spend_exactly_their_evaluations_and_stay_within_budget() -> None:
    task, optimum = _task()
    for method in (random_search, regularized_evolution):
        res = method(task, 200, seed=1)
        assert res is not None and res.evaluations == 200 and len(res.history) == 200
        assert res.latency_ms <= task.budget_ms and res.value <= optimum
        assert all(task.fits([a])[0] for a, _ in res.history)


def test_evolution_beats_random_search_at_equal_cost() -> None:
    task, optimum = _task()
    rs = [random_search(task, 300, seed=s).value for s in range(3)]
    rea = [regularized_evolution(task, 300, seed=s).value for s in range(3)]
    assert np.mean(rea) > np.mean(rs)
    assert np.mean(rea) / optimum > 0.8  # measured 0.85 (random search 0.78) at 300 evaluations


def test_runs_are_seeded() -> None:
    task, _ = _task()
    assert regularized_evolution(task, 60, seed=4).history == regularized_evolution(task, 60, seed=4).history


def test_counter_charges_new_architectures_only() -> None:
    calls: list[int] = []
    counter = ObjectiveCounter(lambda a: calls.append(a) or float(a), budget=2)
    assert counter(1) == 1.0 and counter(1) == 1.0 and counter(2) == 2.0
    assert counter.used == 2 and calls == [1, 2]
    with pytest.raises(UserError, match="budget of 2 spent"):
        counter(3)
