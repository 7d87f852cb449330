"""LiteRT/TFLite: the direct NB201 converter against torch (LiteRT interpreter round trips), int8 post-training
quantization, metadata, the local and on-device (benchmark_model) profiler routes, and missing-backend messages."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from hwdiffnas.errors import MissingBackendError, UserError
from hwdiffnas.interfaces import ExportedModel, ProfileSettings, Transport
from hwdiffnas.materialize import MacroConfig
from hwdiffnas.space import Cell

pytest.importorskip("ai_edge_litert.interpreter")

CELLS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    # node 1 holds zeros (zeros rule): conv on it = BN shift constant; node 2 dangles (2→3 is none)
    "|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
    "|nor_conv_1x1~0|+|none~0|nor_conv_3x3~1|+|nor_conv_1x1~0|avg_pool_3x3~1|none~2|",
    "|avg_pool_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|",
]
DISCONNECTED = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|"
FIXTURES = Path(__file__).parent / "fixtures" / "benchmark_model"


@pytest.mark.parametrize("arch", CELLS)
@pytest.mark.parametrize("dataset", ["cifar100", "ImageNet16-120"])
def test_direct_export_roundtrip(arch: str, dataset: str, tmp_path: Path) -> None:
    from hwdiffnas.deploy import export_cell

    res = export_cell(Cell.from_str(arch), "tflite", tmp_path, dataset=dataset, validate_trials=2)
    assert res.validation.passed and res.validation.max_abs_diff <= 1e-4 * max(1.0, res.validation.max_abs_output)
    assert res.path.suffix == ".tflite" and res.path.is_file()


def test_prune_rule_roundtrip(tmp_path: Path) -> None:
    from hwdiffnas.deploy import export_cell

    res = export_cell(Cell.from_str(CELLS[1]), "tflite", tmp_path, macro=MacroConfig(dead_nodes="prune"))
    assert res.validation.passed


def test_metadata_and_graph_shape(tmp_path: Path) -> None:
    from export.tflite import TfliteExporter
    from export.tflite.flatbuffer import operator_counts
    from hwdiffnas.deploy import export_cell

    res = export_cell(Cell.from_str(CELLS[3]), "tflite", tmp_path, dataset="cifar10")
    meta = TfliteExporter().read_metadata(res.path)
    assert meta.arch_str == CELLS[3] and meta.dataset == "cifar10" and meta.input_shape == (1, 3, 32, 32)
    assert meta.extra["converter"] == "direct" and meta.extra["precision"] == "fp32"
    ops = operator_counts(res.path.read_bytes())
    # one NCHW→NHWC transpose; stride-2 convs of the two reduction blocks padded explicitly like torch
    assert ops["TRANSPOSE"] == 1 and ops["PAD"] == 2 and ops["MEAN"] == 1 and ops["FULLY_CONNECTED"] == 1
    # stem + 2×(conv_a, conv_b, shortcut 1x1) + one conv1x1 per cell (15 cells)
    assert ops["CONV_2D"] == 1 + 2 * 3 + 15


def test_dead_end_ops_are_removed(tmp_path: Path) -> None:
    from export.tflite.flatbuffer import operator_counts
    from hwdiffnas.deploy import export_cell

    # node 2 = conv3x3(node 1) never reaches the output (edge 2→3 is none): its convs must not be in the graph
    res = export_cell(Cell.from_str(CELLS[2]), "tflite", tmp_path)
    ops = operator_counts(res.path.read_bytes())
    assert ops["CONV_2D"] == 1 + 2 * 3 + 15 * 2  # per cell: conv1x1 0→1 and conv1x1 0→3 only


def test_disconnected_cell_refused_by_direct_converter(tmp_path: Path) -> None:
    from hwdiffnas.deploy import export_cell

    with pytest.raises(UserError, match="does not depend on its input.*litert-torch"):
        export_cell(Cell.from_str(DISCONNECTED), "tflite", tmp_path)
    assert not any(tmp_path.iterdir())  # nothing published


def test_int8_export_writes_model_and_drift(tmp_path: Path) -> None:
    pytest.importorskip("ai_edge_quantizer")
    from export.tflite import int8_path_of, interpreter
    from hwdiffnas.deploy import export_cell

    res = export_cell(Cell.from_str(CELLS[0]), "tflite-int8", tmp_path, dataset="ImageNet16-120")
    names = sorted(p.name for p in res.exported.files)
    stem = res.exported.metadata.file_stem
    assert names == sorted([f"{stem}.tflite", f"{stem}.int8.tflite", f"{stem}.int8-drift.json"])
    int8 = int8_path_of(res.exported)
    assert int8 is not None and int8.stat().st_size < res.path.stat().st_size / 2
    it = interpreter(int8)
    assert any(d["dtype"] == np.int8 for d in it.get_tensor_details())
    drift = json.loads((tmp_path / f"{stem}.int8-drift.json").read_text())
    assert drift["calibration_source"] == "random-normal" and drift["calibration_samples"] == 32
    assert 0 < drift["max_abs_diff"] and drift["rel_max_diff"] < 0.5 and drift["top1_agreement"] >= 0.5


def test_calibration_file_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from export.tflite.exporter import calibration_inputs

    good = tmp_path / "calib.npy"
    np.save(good, np.ones((4, 3, 16, 16), dtype=np.float32))
    monkeypatch.setenv("HWDIFFNAS_TFLITE_CALIBRATION", str(good))
    assert calibration_inputs((1, 3, 16, 16)).shape == (4, 3, 16, 16)
    with pytest.raises(UserError, match=r"need \(N, 3, 32, 32\)"):
        calibration_inputs((1, 3, 32, 32))
    monkeypatch.delenv("HWDIFFNAS_TFLITE_CALIBRATION")
    assert calibration_inputs((1, 3, 32, 32), samples=5).shape == (5, 3, 32, 32)


def test_local_profiler_fp32_and_int8(tmp_path: Path) -> None:
    pytest.importorskip("ai_edge_quantizer")
    from hwdiffnas.deploy import export_cell, profile_cell
    from profilers.litert import LiteRTProfiler, model_file

    stats = profile_cell(Cell.from_str(CELLS[3]), "litert", ProfileSettings(warmup=2, runs=6),
                         dataset="ImageNet16-120")
    assert stats.runtime == "litert" and stats.runs == 6 and len(stats.samples_ms) == 6 and stats.min_ms > 0
    res = export_cell(Cell.from_str(CELLS[3]), "tflite-int8", tmp_path, dataset="ImageNet16-120")
    q = LiteRTProfiler().profile(res.exported, ProfileSettings(warmup=1, runs=3, threads=2, precision="int8"))
    assert q.precision == "int8" and q.threads == 2 and q.runs == 3
    plain = export_cell(Cell.from_str(CELLS[3]), "tflite", tmp_path / "plain", dataset="ImageNet16-120")
    with pytest.raises(UserError, match="no int8 variant"):
        model_file(plain.exported, "int8", quantize=False)
    q2 = LiteRTProfiler().profile(plain.exported, ProfileSettings(warmup=1, runs=2, precision="int8"))
    stem = plain.exported.metadata.file_stem
    assert q2.precision == "int8" and (tmp_path / "plain" / f"{stem}.int8.tflite").is_file()
    with pytest.raises(UserError, match="fp32 or int8"):
        LiteRTProfiler().profile(plain.exported, ProfileSettings(precision="fp16"))


class FakeDevice(Transport):
    """A transport standing in for adb/SSH: records what was pushed and run, answers with a saved output."""

    name = "fake-adb"

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.pushed: list[tuple[Path, str]] = []
        self.commands: list[list[str]] = []

    def push(self, local: Path, remote_name: str) -> str:
        self.pushed.append((local, remote_name))
        return f"/data/local/tmp/hwdiffnas/{remote_name}"

    def run(self, argv: Sequence[str], timeout_s: float) -> str:
        self.commands.append(list(argv))
        return self.answer if "benchmark_model" in argv[0] else ""


def _fixture(name: str) -> str:
    return "".join(line for line in (FIXTURES / name).read_text().splitlines(keepends=True)
                   if not line.startswith("## "))


def test_on_device_route_builds_command_and_parses(tmp_path: Path) -> None:
    pytest.importorskip("hwdiffnas.remote.benchmark_model")
    from hwdiffnas.deploy import export_cell
    from hwdiffnas.remote.benchmark_model import parse_benchmark_model
    from profilers.litert import LiteRTProfiler

    answer = _fixture("android_logcat_nnapi.txt")
    expected = parse_benchmark_model(answer).timed
    res = export_cell(Cell.from_str(CELLS[0]), "tflite", tmp_path)
    dev = FakeDevice(answer)
    stats = LiteRTProfiler().profile_on_device(res.exported, ProfileSettings(warmup=5, runs=40), dev,
                                               delegate="nnapi", host="pixel (fake adb)")
    (local, remote_name), = dev.pushed
    assert local == res.path and remote_name.endswith(".tflite")
    bench, cleanup = dev.commands
    assert bench[0] == "/data/local/tmp/benchmark_model" and "--use_nnapi=true" in bench
    assert f"--graph=/data/local/tmp/hwdiffnas/{remote_name}" in bench
    assert "--num_runs=40" in bench and "--warmup_runs=5" in bench and "--num_threads=1" in bench
    assert cleanup[:2] == ["rm", "-f"]
    assert stats.mean_ms == pytest.approx(expected.avg_us / 1000) and stats.runtime == "litert-benchmark_model-nnapi"
    assert stats.host == "pixel (fake adb)"


def test_on_device_errors(tmp_path: Path) -> None:
    pytest.importorskip("hwdiffnas.remote.benchmark_model")
    from hwdiffnas.deploy import export_cell
    from profilers.litert import LiteRTProfiler

    res = export_cell(Cell.from_str(CELLS[0]), "tflite", tmp_path)
    dev = FakeDevice(_fixture("android_not_executable.txt"))
    with pytest.raises(UserError, match="benchmark_model on"):
        LiteRTProfiler().profile_on_device(res.exported, ProfileSettings(), dev)
    assert dev.commands[-1][:2] == ["rm", "-f"]  # the pushed model is removed even when the run fails
    with pytest.raises(UserError, match="known: cpu, xnnpack, nnapi, gpu, hexagon"):
        LiteRTProfiler().profile_on_device(res.exported, ProfileSettings(), FakeDevice(""), delegate="edgetpu")


def test_profiler_rejects_other_formats(tmp_path: Path) -> None:
    from hwdiffnas.interfaces import ModelMetadata
    from profilers.litert import LiteRTProfiler

    meta = ModelMetadata(CELLS[0], "cifar10", (1, 3, 32, 32), "0")
    with pytest.raises(TypeError, match="loads tflite"):
        LiteRTProfiler().profile(ExportedModel(tmp_path / "m.onnx", "onnx", meta), ProfileSettings())


def test_missing_runtime_messages(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import export.tflite.exporter as ex
    from hwdiffnas.deploy import export_cell, profile_cell

    monkeypatch.setattr(ex, "litert_available", lambda: (False, "No module named 'ai_edge_litert'"))
    with pytest.raises(MissingBackendError, match=r"pip install 'hwdiffnas\[litert\]'"):
        export_cell(Cell.from_str(CELLS[0]), "tflite", tmp_path)
    with pytest.raises(MissingBackendError, match=r"hwdiffnas\[litert\]"):
        profile_cell(Cell.from_str(CELLS[0]), "litert", ProfileSettings(runs=1))


def test_litert_torch_missing_names_its_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from hwdiffnas.deploy import export_cell

    monkeypatch.setitem(sys.modules, "litert_torch", None)  # absent, whether or not it is installed here
    with pytest.raises(MissingBackendError, match=r"hwdiffnas\[litert-torch\]"):
        export_cell(Cell.from_str(CELLS[0]), "tflite-torch", tmp_path)


@pytest.mark.slow
def test_litert_torch_converter_roundtrip(tmp_path: Path) -> None:
    """Google's converter (extra litert-torch, ~1 min per network): same validation as the direct one."""
    pytest.importorskip("litert_torch")
    from hwdiffnas.deploy import export_cell

    res = export_cell(Cell.from_str(CELLS[1]), "tflite-torch", tmp_path)
    assert res.validation.passed and res.exported.metadata.extra["converter"] == "litert-torch"


def test_device_configs_name_the_deployment_routes() -> None:
    from hwdiffnas.devices import get_device, parse_device_config

    for name in ("pixel3", "pixel-nnapi"):
        m = get_device(name).measure
        assert (m.route, m.runtime) == ("adb", "litert")
    assert get_device("pixel-nnapi").measure.delegate == "nnapi"
    assert get_device("snapdragon675-dsp-int8").measure.delegate == "hexagon"
    for name in ("raspi4", "pi5-litert"):
        m = get_device(name).measure
        assert (m.route, m.runtime) == ("ssh", "litert")
    for name, precision in (("edgegpu", "fp32"), ("jetson-nano-fp16", "fp16"), ("jetson-nano-fp32", "fp32")):
        m = get_device(name).measure
        assert (m.route, m.runtime, m.precision) == ("agent", "tensorrt", precision)
    base = {"name": "x", "description": "d", "kind": "phone",
            "measure": {"route": "adb", "runtime": "litert", "delegate": "edgetpu"}}
    with pytest.raises(UserError, match="delegate = 'edgetpu' is not one of"):
        parse_device_config(base)
    base["measure"] = {"route": "ssh", "runtime": "onnxruntime", "delegate": "nnapi"}
    with pytest.raises(UserError, match="runtime 'litert' only"):
        parse_device_config(base)


def test_profiler_takes_the_shape_from_the_file_without_metadata(tmp_path: Path) -> None:
    """A .tflite uploaded to the agent arrives without hwdiffnas metadata (no input shape)."""
    from hwdiffnas.deploy import export_cell
    from hwdiffnas.interfaces import ModelMetadata
    from profilers.litert import LiteRTProfiler

    res = export_cell(Cell.from_str(CELLS[0]), "tflite", tmp_path, dataset="ImageNet16-120")
    bare = ExportedModel(res.path, "tflite", ModelMetadata("(uploaded model)", "unknown", (), "unknown"))
    stats = LiteRTProfiler().profile(bare, ProfileSettings(warmup=1, runs=2))
    assert stats.runs == 2 and stats.min_ms > 0
