"""The FBNet and NAS-Bench-Macro spaces behind the SearchSpace interface."""

from __future__ import annotations

import pytest

from hwdiffnas.errors import UserError
from hwdiffnas.plugins import get_space, register_space
from hwdiffnas.spaces.base import SearchSpace


@pytest.fixture(autouse=True)
def _registered() -> None:
    from hwdiffnas.spaces.fbnet.space import FBNetSpace
    from hwdiffnas.spaces.nasbench_macro.plugin import MacroSpace

    register_space("fbnet", FBNetSpace)
    register_space("nasbench_macro", MacroSpace)


def test_fbnet_space_answers_the_interface() -> None:
    sp = get_space("fbnet")
    assert isinstance(sp, SearchSpace) and sp.size == 9 ** 22 and not sp.finite
    arch = sp.parse("7818488874147327324245")
    assert sp.format(arch) == "7818488874147327324245" and sp.decode(sp.encode(arch)) == arch
    assert sp.canonical(arch) == arch and sp.is_valid(arch)
    enc = sp.encoding
    assert (enc.positions, len(enc.choices), enc.nodes) == (22, 9, 24)
    assert len(sp.neighbours(arch, 1)) == 1 + 22 * 8
    assert sp.features(sp.sample(3, seed=1)).shape == (3, 198)
    assert len(sp.reference_archs()) == 10 and sp.format(sp.reference_archs()[0]) == "1866803437874325730137"
    assert set(sp.datasets) == {"cifar100", "cifar10", "imagenet"}
    assert sp.input_shape("imagenet") == (1, 3, 224, 224)
    assert sp.size_counts(arch, "cifar100")[1] == 1_790_500
    assert sp.size_counts(arch, "imagenet")[1] == 3_794_920
    with pytest.raises(UserError, match="cannot be enumerated"):
        next(sp.enumerate())
    with pytest.raises(UserError, match="looks like a NAS-Bench-201 arch string"):
        sp.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    with pytest.raises(UserError, match="no dataset setting 'ImageNet16-120'"):
        sp.materialize(arch, "ImageNet16-120")


def test_fbnet_reference_architectures_are_helps_rows(fbnet_dir) -> None:
    from hwdiffnas.spaces.fbnet.data import HELP_REFERENCE_IDX, read_fbnet_tables

    tables = read_fbnet_tables(fbnet_dir)
    sp = get_space("fbnet")
    assert [sp.format(a) for a in sp.reference_archs()] == [tables.op_string(i) for i in HELP_REFERENCE_IDX]


def test_macro_space_answers_the_interface() -> None:
    from hwdiffnas.materialize import count_parameters

    sp = get_space("nasbench_macro")
    archs = list(sp.enumerate())
    assert len(archs) == sp.size == 6561
    assert len({sp.equivalence_key(a) for a in archs}) == 3969
    arch = sp.parse("22212202")
    assert sp.format(sp.canonical(arch)) == "22212220"
    assert sp.encoding.positions == 8 and sp.features([arch]).shape == (1, 24)
    net = sp.materialize(arch, "cifar10")
    assert count_parameters(net) == sp.size_counts(arch, "cifar10")[1] == 1_985_514
    with pytest.raises(UserError, match="known: cifar10"):
        sp.materialize(arch, "cifar100")
