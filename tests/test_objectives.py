"""Objectives: registry, size counts, proxies (deterministic, finite, sensible), parallel computation."""

from __future__ import annotations

import math

import pytest

from hwdiffnas.errors import UserError
from hwdiffnas.objectives import get_objective, objective_names
from hwdiffnas.objectives.compute import compute_objective, network_seed


def macro_network(arch: str) -> tuple[object, tuple[int, ...]]:
    from hwdiffnas.spaces.nasbench_macro.space import INPUT_SHAPE, MacroArch, build_macro_network

    return build_macro_network(MacroArch.parse(arch)), INPUT_SHAPE


def test_registry_lists_and_refuses_unknown_names() -> None:
    assert {"flops", "params", "synflow", "naswot", "zen"} <= set(objective_names())
    with pytest.raises(UserError, match="unknown objective 'acc'; known: flops, naswot, params, synflow, zen"):
        get_objective("acc")
    assert get_objective("zen").source == "objective:zen"
    assert get_objective("flops").additive and not get_objective("synflow").additive


def test_size_objectives_equal_the_exact_counts() -> None:
    from hwdiffnas.spaces.nasbench_macro.space import MacroArch, size_counts

    res = compute_objective("flops", ["22212220", "00000000"], macro_network, workers=1)
    assert res.values == tuple(float(size_counts(MacroArch.parse(a))[0]) for a in res.archs)
    res = compute_objective("params", ["22212220"], macro_network, workers=1)
    assert res.values == (float(size_counts(MacroArch.parse("22212220"))[1]),)
    assert res.source == "objective:params"


@pytest.mark.parametrize("name", ["synflow", "naswot", "zen"])
def test_proxies_are_deterministic_finite_and_rank_a_big_network_over_a_trivial_one(name: str) -> None:
    archs = ["22222222", "00000000"]
    first = compute_objective(name, archs, macro_network, seed=3, workers=1)
    again = compute_objective(name, archs, macro_network, seed=3, workers=1)
    assert first.values == again.values
    assert all(math.isfinite(v) for v in first.values)
    assert first.values[0] > first.values[1]
    assert all(s > 0 for s in first.seconds)


def test_parallel_equals_serial_and_reports_progress() -> None:
    archs = ["22212220", "10201201", "00000000"]
    seen: list[tuple[int, int]] = []
    par = compute_objective("zen", archs, macro_network, workers=2, progress=lambda d, t: seen.append((d, t)))
    ser = compute_objective("zen", archs, macro_network, workers=1)
    assert par.values == ser.values and par.workers == 2
    assert seen[-1] == (3, 3) and len(seen) == 3


def test_network_seed_depends_on_architecture_and_seed_only() -> None:
    assert network_seed("22212220", 0) == network_seed("22212220", 0)
    assert network_seed("22212220", 0) != network_seed("22212202", 0)
    assert network_seed("22212220", 0) != network_seed("22212220", 1)


def test_unknown_objective_fails_before_any_work() -> None:
    def explode(_arch: str) -> tuple[object, tuple[int, ...]]:
        raise AssertionError("built a network")

    with pytest.raises(UserError, match="unknown objective"):
        compute_objective("accuracy", ["22212220"], explode, workers=1)


def test_naswot_kernel_equals_the_two_product_definition() -> None:
    """The one-product kernel (2·c·cᵀ − |c_i| − |c_j| + n, exact integers) equals c·cᵀ + (1−c)·(1−c)ᵀ."""
    import torch
    from torch import nn

    from hwdiffnas.objectives import get_objective

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    obj = get_objective("naswot")
    x = torch.randn((obj.batch, 3, 8, 8), generator=torch.Generator().manual_seed(3))
    kernel = torch.zeros(obj.batch, obj.batch, dtype=torch.float64)
    with torch.no_grad():
        h = x
        for m in net:
            h = m(h)
            if isinstance(m, nn.ReLU):
                c = (h.reshape(obj.batch, -1) > 0).double()
                kernel += c @ c.T + (1 - c) @ (1 - c).T
    want = float(torch.linalg.slogdet(kernel)[1])
    assert obj.compute(net, (1, 3, 8, 8), 3) == want
