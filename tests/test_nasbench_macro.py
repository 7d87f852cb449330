"""NAS-Bench-Macro: architectures, the network, and size counts equal to the benchmark's for all 6,561."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwdiffnas.errors import UserError
from hwdiffnas.spaces.nasbench_macro.space import (
    INPUT_SHAPE,
    MacroArch,
    all_archs,
    build_macro_network,
    read_macro_accuracy,
    size_counts,
)


def test_parse_forms_and_errors() -> None:
    arch = MacroArch.parse("22212220")
    assert arch.arch_str == "22212220"
    assert MacroArch.parse("ir_5x5_t6,2,2,1,2,2,2,id") == arch
    with pytest.raises(UserError, match="8 ops"):
        MacroArch.parse("2221222")
    with pytest.raises(UserError, match="8 ops from 0..2"):
        MacroArch.parse("22212223")
    with pytest.raises(UserError, match="'x' is not an op id"):
        MacroArch.parse("2221222x")
    assert len(all_archs()) == 3 ** 8


def test_counts_equal_the_benchmark_for_every_architecture(macro_dir: Path) -> None:
    archs, acc, params, flops = read_macro_accuracy(str(macro_dir))
    assert [a.arch_str for a in archs] == [a.arch_str for a in all_archs()]
    counts = np.array([size_counts(a) for a in archs])
    assert np.array_equal(counts[:, 1], params)
    assert np.array_equal(counts[:, 0], flops)
    best = {a.arch_str for a, v in zip(archs, acc) if v == acc.max()}
    assert "22212220" in best  # tied with 22212202: an identity's place among a stage's later layers


@pytest.mark.parametrize("text", ["00000000", "22222222", "10201201"])
def test_built_network_has_the_counted_size(text: str) -> None:
    import torch

    from hwdiffnas.materialize import count_macs, count_parameters

    arch = MacroArch.parse(text)
    net = build_macro_network(arch)
    assert (count_macs(net, INPUT_SHAPE), count_parameters(net)) == size_counts(arch)
    with torch.no_grad():
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_canonical_classes_share_one_accuracy(macro_dir: Path) -> None:
    archs, acc, _params, _flops = read_macro_accuracy(str(macro_dir))
    classes: dict[MacroArch, set[float]] = {}
    for a, v in zip(archs, acc):
        classes.setdefault(a.canonical(), set()).add(float(v))
    assert len(classes) == 3969
    assert all(len(v) == 1 for v in classes.values())
    assert MacroArch.parse("22212202").canonical() == MacroArch.parse("22212220")
    assert MacroArch.parse("02000000").canonical().arch_str == "02000000"  # a stage's first layer stays
