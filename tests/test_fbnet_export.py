"""FBNet and NAS-Bench-Macro networks through the exporters, validated on outputs of order 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwdiffnas.interfaces import ModelMetadata


def _fbnet(ops: str, dataset: str = "cifar100"):
    import torch

    from hwdiffnas.spaces.fbnet.arch import FBNetArch
    from hwdiffnas.spaces.fbnet.network import build_fbnet, fbnet_setting
    from hwdiffnas.spaces.modules import calibrate_for_validation

    shape = fbnet_setting(dataset).input_shape
    torch.manual_seed(0)
    net = calibrate_for_validation(build_fbnet(FBNetArch.parse(ops), dataset), shape)
    meta = ModelMetadata(ops, fbnet_setting(dataset).name, shape, "test", space="fbnet")
    return net, meta, torch.zeros(shape)


@pytest.mark.parametrize("fmt", ["onnx", "openvino", "tflite"])
def test_fbnet_exports_agree_with_torch_relative_to_output_scale(fmt: str, tmp_path: Path) -> None:
    from hwdiffnas.deploy import validate_export
    from hwdiffnas.plugins import get_exporter

    net, meta, x = _fbnet("7818488874147327324245")
    exporter = get_exporter(fmt)
    exported = exporter.export(net, x, tmp_path, meta)
    assert exported.path.name.startswith("fbnet-7818488874147327324245-cifar100")
    report = validate_export(exported, net, exporter, trials=3)
    assert report.max_abs_output > 0.3  # outputs of order 1, so errors show
    assert report.passed, report
    assert report.max_abs_diff / report.max_abs_output < 1e-4
    back = exporter.read_metadata(exported.path)
    assert back.space == "fbnet" and back.arch_str == "7818488874147327324245"


def test_validation_fails_when_the_export_differs(tmp_path: Path) -> None:
    import torch

    from hwdiffnas.deploy import validate_export
    from hwdiffnas.plugins import get_exporter

    net, meta, x = _fbnet("2222222222222222222222")
    exporter = get_exporter("onnx")
    exported = exporter.export(net, x, tmp_path, meta)
    with torch.no_grad():  # a 1 % change of one BatchNorm scale deep in the network
        bn = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)][30]
        bn.weight.mul_(1.01)
    assert not validate_export(exported, net, exporter, trials=3).passed


def test_reference_initialization_gives_outputs_no_tolerance_could_judge() -> None:
    import torch

    from hwdiffnas.spaces.fbnet.arch import FBNetArch
    from hwdiffnas.spaces.fbnet.network import build_fbnet

    torch.manual_seed(0)
    net = build_fbnet(FBNetArch.parse("7818488874147327324245"))
    with torch.no_grad():
        out = net(torch.randn(2, 3, 32, 32))
    assert float(out.abs().max()) < 1e-4


def test_imagenet_setting_and_grouped_blocks_through_tflite(tmp_path: Path) -> None:
    from export.tflite.flatbuffer import build_tflite, operator_counts
    from hwdiffnas.deploy import validate_export
    from hwdiffnas.plugins import get_exporter

    net, meta, x = _fbnet("1111155555111115555511", "imagenet")
    exporter = get_exporter("tflite")
    exported = exporter.export(net, x, tmp_path, meta)
    assert validate_export(exported, net, exporter, trials=2).passed
    ops = operator_counts(build_tflite(net, meta.input_shape))
    assert ops["DEPTHWISE_CONV_2D"] == 22 and ops["SPLIT"] == 44 and ops["RESHAPE"] == 44


def test_nasbench_macro_network_through_tflite() -> None:
    import torch

    from export.tflite.exporter import run_rows
    from export.tflite.flatbuffer import build_tflite
    from hwdiffnas.spaces.modules import calibrate_for_validation
    from hwdiffnas.spaces.nasbench_macro.space import INPUT_SHAPE, MacroArch, build_macro_network

    net = calibrate_for_validation(build_macro_network(MacroArch.parse("22212220")), INPUT_SHAPE)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    out = run_rows(build_tflite(net, INPUT_SHAPE), x)
    assert np.abs(out - ref).max() / np.abs(ref).max() < 1e-4
