"""The FBNet space: architecture parsing, the FBNet_Infer materializer and the additive (LUT) latency model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwdiffnas.errors import UserError
from hwdiffnas.plugins import get_space
from hwdiffnas.spaces.fbnet.arch import BLOCKS, NUM_LAYERS, FBNetArch
from hwdiffnas.spaces.fbnet.lut import fit_additive_latency, layer_configurations, load_latency_models

# Parameter counts of HW-NAS-Bench's FBNet_Infer (the data README's reference table).
REFERENCE_PARAMS = {
    "0000000000000000000000": (1_170_676, 3_175_096),
    "8888888888888888888888": (780_660, 2_785_080),
    "7777777777777777777777": (3_749_652, 5_754_072),
    "1111111111111111111111": (940_084, 2_944_504),
    "7818488874147327324245": (1_790_500, 3_794_920),
    "5355047552024513726040": (1_695_572, 3_699_992),
}


def test_parse_op_string_and_block_names_round_trip() -> None:
    arch = FBNetArch.parse("7818488874147327324245")
    assert arch.op_string == "7818488874147327324245"
    names = ",".join(arch.block_names)
    assert names.startswith("k5_e6,skip,k3_e1_g2,skip,k5_e1,")
    assert FBNetArch.parse(names) == arch
    assert FBNetArch.parse(",".join(str(o) for o in arch.ops)) == arch
    one_hot = get_space("fbnet").features([arch])
    assert one_hot.shape == (1, NUM_LAYERS * len(BLOCKS)) and one_hot.sum() == NUM_LAYERS


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("781848887414732732424", "has 21 characters; it needs 22"),
        ("78184888741473273242459", "has 23 characters"),
        ("7818488874147327324249", "block id 9 out of range 0..8"),
        ("k3_e1," * 21 + "k3_e7", "unknown FBNet block 'k3_e7'; known: k3_e1, k3_e1_g2"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
         "looks like a NAS-Bench-201 arch string"),
        ("3,3,4,1,3,1", "like a NAS-Bench-201 cell"),
        ("7818x88874147327324245", "cannot read FBNet architecture"),
    ],
)
def test_bad_architectures_are_refused_with_the_reason(text: str, needle: str) -> None:
    with pytest.raises(UserError, match=needle.replace("|", r"\|").replace("(", r"\(")):
        FBNetArch.parse(text)


def test_neighbours_change_exactly_the_asked_number_of_layers() -> None:
    space = get_space("fbnet")
    arch = FBNetArch.parse("7818488874147327324245")
    within_one = space.neighbours(arch, 1)
    assert within_one[0] == arch and len(within_one) == len(set(within_one))
    one = within_one[1:]
    assert len(one) == NUM_LAYERS * (len(BLOCKS) - 1)
    assert all(sum(a != b for a, b in zip(n.ops, arch.ops)) == 1 for n in one)
    within_two = space.neighbours(arch, 2)
    two = within_two[len(within_one):]
    assert len(two) == NUM_LAYERS * (NUM_LAYERS - 1) // 2 * (len(BLOCKS) - 1) ** 2
    assert all(sum(a != b for a, b in zip(n.ops, arch.ops)) == 2 for n in two)


def test_sampling_is_seeded() -> None:
    space = get_space("fbnet")
    a = space.sample(5, seed=3)
    b = space.sample(5, seed=3)
    assert a == b and len(set(a)) == 5


@pytest.mark.parametrize("ops", sorted(REFERENCE_PARAMS))
def test_parameter_counts_equal_fbnet_infer_in_both_settings(ops: str) -> None:
    from hwdiffnas.materialize import count_parameters
    from hwdiffnas.spaces.fbnet.network import build_fbnet

    arch = FBNetArch.parse(ops)
    cifar, imagenet = REFERENCE_PARAMS[ops]
    assert count_parameters(build_fbnet(arch, "cifar100")) == cifar
    assert count_parameters(build_fbnet(arch, "imagenet")) == imagenet


def test_network_shapes_and_residuals() -> None:
    import torch

    from hwdiffnas.spaces.fbnet.network import build_fbnet

    arch = FBNetArch.parse("0" * NUM_LAYERS)
    net = build_fbnet(arch, "cifar10")
    with torch.no_grad():
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    blocks = list(net[1])
    # layer 1 (16→16, stride 1) and the 2nd–4th layers of a stage add their input; first layers of stages don't
    assert [b.residual for b in blocks] == [True] + ([False] + [True] * 3) * 5 + [False]
    first = blocks[0]
    x = torch.randn(1, 16, 32, 32)
    with torch.no_grad():
        assert torch.allclose(first(x), first.body(x) + x)


def test_grouped_blocks_shuffle_channels() -> None:
    import torch
    from torch import nn

    from hwdiffnas.spaces.fbnet.network import build_fbnet
    from hwdiffnas.spaces.modules import channel_shuffle_class

    net = build_fbnet(FBNetArch.parse("1" * NUM_LAYERS), "cifar100")
    shuffles = [m for m in net.modules() if isinstance(m, channel_shuffle_class())]
    x = torch.randn(2, 8, 3, 3)
    assert torch.equal(shuffles[0](x), nn.ChannelShuffle(2)(x))
    assert len(shuffles) == NUM_LAYERS
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.groups == 2]
    assert len(convs) == 2 * NUM_LAYERS


def test_unknown_setting_lists_the_known_ones() -> None:
    from hwdiffnas.spaces.fbnet.network import build_fbnet

    known = "unknown FBNet dataset setting 'cifar1000'; known: cifar100, cifar10, imagenet"
    with pytest.raises(UserError, match=known):
        build_fbnet(FBNetArch.parse("0" * NUM_LAYERS), "cifar1000")


def test_layer_configurations_share_entries_within_a_stage() -> None:
    cfg = layer_configurations("cifar100")
    assert len(set(cfg)) == 12
    assert cfg[2] == cfg[3] == cfg[4] and cfg[1] != cfg[2]


def test_additive_model_reproduces_held_out_rows(fbnet_dir: Path) -> None:
    from hwdiffnas.spaces.fbnet.data import LUT_DEVICES, read_fbnet_tables

    tables = read_fbnet_tables(fbnet_dir)
    assert tables.ops.shape == (5000, NUM_LAYERS)
    for device in LUT_DEVICES:
        y = tables.latency_ms[device]
        model = fit_additive_latency(tables.ops[:4000], y[:4000], device)
        err = np.abs(model.latency_batch_ms(tables.ops[4000:]) - y[4000:])
        assert err.max() < 1e-3, (device, err.max())
        assert np.all(model.table_ms >= 0) and np.allclose(model.table_ms.min(axis=1), 0.0)
    # HELP's own timings are not sums of block entries: the same fit misses them by milliseconds
    real = fit_additive_latency(tables.ops[:4000], tables.latency_ms["gold_6226"][:4000], "gold_6226")
    assert real.fit_max_abs_error_ms > 1.0


def test_shipped_tables_reproduce_every_published_total(fbnet_dir: Path) -> None:
    from hwdiffnas.spaces.fbnet.data import LUT_DEVICES, read_fbnet_tables

    tables = read_fbnet_tables(fbnet_dir)
    models = load_latency_models()
    assert sorted(models) == sorted(LUT_DEVICES)
    for device in LUT_DEVICES:
        err = np.abs(models[device].latency_batch_ms(tables.ops) - tables.latency_ms[device])
        assert err.max() < 1e-3, device
        assert models[device].latency_ms(FBNetArch(tuple(tables.ops[7]))) == pytest.approx(
            tables.latency_ms[device][7], abs=1e-6)


def test_shipped_tables_match_hw_nas_bench_notebook_figures() -> None:
    """HW-NAS-Bench's notebook: all-k3_e1 takes 10.74 ms on fpga and 17.6 ms on raspi4."""
    models = load_latency_models()
    all_k3_e1 = FBNetArch.parse("0" * NUM_LAYERS)
    assert models["fpga"].latency_ms(all_k3_e1) == pytest.approx(10.74, abs=0.005)
    assert models["raspi4"].latency_ms(all_k3_e1) == pytest.approx(17.6, abs=0.05)


def test_fit_refuses_rows_that_leave_blocks_unseen() -> None:
    ops = np.zeros((30, NUM_LAYERS), dtype=np.int64)
    with pytest.raises(UserError, match="never seen"):
        fit_additive_latency(ops, np.ones(30), "toy")


def test_corrupt_table_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "lut.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="corrupt"):
        load_latency_models(bad)
    with pytest.raises(UserError, match="not found"):
        load_latency_models(tmp_path / "missing.json")


@pytest.mark.parametrize("dataset", ["cifar100", "imagenet"])
def test_additive_cost_tables_equal_counts_on_the_built_network(dataset: str) -> None:
    from hwdiffnas.materialize import count_macs, count_parameters
    from hwdiffnas.spaces.fbnet.cost import cost_tables
    from hwdiffnas.spaces.fbnet.network import build_fbnet, fbnet_setting

    macs, params = cost_tables(dataset)
    shape = fbnet_setting(dataset).input_shape
    archs = get_space("fbnet").sample(3, seed=11) + [FBNetArch.parse(o) for o in ("8" * 22, "7" * 22)]
    for arch in archs:
        net = build_fbnet(arch, dataset)
        assert params.total(arch) == count_parameters(net)
        assert macs.total(arch) == count_macs(net, shape)
    ops = np.array([a.ops for a in archs])
    assert list(params.total_batch(ops)) == [params.total(a) for a in archs]
