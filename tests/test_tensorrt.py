"""TensorRT: trtexec command lines, parsers on genuine trtexec output, engine binding refusal, and the
missing-backend message (TensorRT itself is not installable here)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from export.tensorrt.engine import (
    EngineBinding,
    EngineBindingError,
    GpuContext,
    binding_path,
    check_binding,
    read_binding,
    tensorrt_available,
    write_binding,
)
from export.tensorrt.trtexec import (
    TrtexecOutputError,
    build_argv,
    parse_device,
    parse_summary,
    parse_times,
    time_argv,
    times_samples,
)
from hwdiffnas.errors import MissingBackendError
from hwdiffnas.interfaces import ExportedModel, ModelMetadata

FIXTURES = Path(__file__).parent / "fixtures" / "tensorrt"


def fixture(name: str) -> str:
    """A fixture's text without its ``# source:`` header line."""
    lines = (FIXTURES / name).read_text().splitlines(keepends=True)
    assert lines[0].startswith("# source: https://"), f"{name} must name its public source page"
    return "".join(lines[1:])


def test_every_fixture_names_its_source() -> None:
    for path in FIXTURES.iterdir():
        assert path.read_text().splitlines()[0].startswith("# source: https://"), path.name


def test_summary_seven_value_format() -> None:
    s = parse_summary(fixture("trtexec_summary_issue4177.txt"))
    lat = s.metrics["Latency"]
    assert (lat.min_ms, lat.max_ms, lat.mean_ms, lat.median_ms) == (5.38672, 13.3664, 7.60628, 7.16092)
    assert lat.percentiles_ms == {90.0: 10.2996, 95.0: 10.8698, 99.0: 12.9675}
    gpu = s.metrics["GPU Compute Time"]
    assert gpu.median_ms == 7.14139 and gpu.percentiles_ms[99.0] == 12.9485
    assert s.metrics["D2H Latency"].min_ms == 0.00390625
    assert set(s.metrics) == {"Latency", "Enqueue Time", "H2D Latency", "GPU Compute Time", "D2H Latency"}
    assert s.throughput_qps == 130.298
    assert s.host_walltime_s == 3.00082 and s.gpu_compute_s == 2.96536


def test_summary_five_value_format_after_trace_lines() -> None:
    s = parse_summary(fixture("trtexec_summary_yolov10_issue463.txt"))
    lat = s.metrics["Latency"]
    assert lat.median_ms == 2.09521 and lat.max_ms == 62.6002
    assert lat.percentiles_ms == {99.0: 2.16016}
    assert s.metrics["H2D Latency"].mean_ms == 0.818888
    assert s.throughput_qps == 759.832


def test_summary_missing_is_an_error() -> None:
    with pytest.raises(TrtexecOutputError, match="no trtexec performance summary"):
        parse_summary(fixture("trtexec_device_issue3747.txt"))
    broken = fixture("trtexec_summary_issue4177.txt").replace("median = 7.16092 ms, ", "")
    with pytest.raises(TrtexecOutputError, match="incomplete"):
        parse_summary(broken)


def test_device_block() -> None:
    d = parse_device(fixture("trtexec_device_issue3747.txt"))
    assert (d.gpu_name, d.compute_capability, d.tensorrt_version) == ("NVIDIA GeForce RTX 2080", "7.5", "8.6.3")
    orin = parse_device(fixture("trtexec_header_orin_trt_out.txt"))
    assert (orin.gpu_name, orin.compute_capability, orin.tensorrt_version) == ("Orin", "8.7", "8.5.2")


def test_device_version_from_running_tag_alone() -> None:
    text = fixture("trtexec_header_orin_trt_out.txt")
    without = "\n".join(line for line in text.splitlines() if "TensorRT version:" not in line)
    assert parse_device(without).tensorrt_version == "8.5.2"  # from "[TensorRT v8502]"
    with pytest.raises(TrtexecOutputError, match="Selected Device"):
        parse_device(fixture("trtexec_summary_issue4177.txt"))


def test_export_times_records() -> None:
    recs = parse_times(fixture("trtexec_times_trex_a100_fp32.json.txt"))
    assert len(recs) == 12
    assert recs[0]["latencyMs"] == 1.93843 and recs[0]["computeMs"] == 1.93843
    samples = times_samples(recs, "latencyMs", skip=2)
    assert len(samples) == 10 and samples[0] == 1.9159
    assert times_samples(recs, "h2dMs") == [0.0] * 12
    with pytest.raises(TrtexecOutputError, match="warm-up"):
        times_samples(recs, skip=12)
    with pytest.raises(ValueError, match="known: latencyMs"):
        times_samples(recs, "bogusMs")


def test_export_times_rejects_other_json() -> None:
    with pytest.raises(TrtexecOutputError, match="lacks"):
        parse_times(json.dumps([{"startEnqMs": 1.0}]))
    with pytest.raises(TrtexecOutputError, match="not JSON"):
        parse_times("[{")
    with pytest.raises(TrtexecOutputError, match="no inference records"):
        parse_times("[]")


def test_build_argv() -> None:
    argv = build_argv("/opt/trt/bin/trtexec", Path("m.onnx"), Path("m.engine"))
    assert argv == ["/opt/trt/bin/trtexec", "--onnx=m.onnx", "--saveEngine=m.engine", "--skipInference"]
    fp16 = build_argv("trtexec", "m.onnx", "m.engine", "fp16", workspace_mb=512, timing_cache="c.cache")
    assert fp16[3:] == ["--skipInference", "--fp16", "--memPoolSize=workspace:512M", "--timingCacheFile=c.cache"]
    typed = build_argv("trtexec", "m16.onnx", "m.engine", "fp16", strongly_typed=True)
    assert "--stronglyTyped" in typed and "--fp16" not in typed
    with pytest.raises(ValueError, match="known: fp32, fp16"):
        build_argv("trtexec", "m.onnx", "m.engine", "int4")


def test_time_argv_counts_exact_inferences() -> None:
    argv = time_argv("trtexec", "m.engine", "t.json", warmup=10, runs=50)
    assert argv[:2] == ["trtexec", "--loadEngine=m.engine"]
    assert "--iterations=60" in argv and "--warmUp=0" in argv and "--duration=0" in argv
    assert "--exportTimes=t.json" in argv and "--useSpinWait" in argv
    assert all(isinstance(a, str) for a in argv)


BINDING = EngineBinding("NVIDIA Jetson TX2", "6.2", "8.2.1", "fp16", "trtexec")


def test_binding_roundtrip_and_refusal(tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\0")
    write_binding(engine, BINDING, {"hwdiffnas.arch_str": "|skip_connect~0|"})
    assert binding_path(engine).name == "m.engine.json"
    binding, meta = read_binding(engine)
    assert binding == BINDING and meta["hwdiffnas.arch_str"] == "|skip_connect~0|"
    check_binding(binding, GpuContext("NVIDIA Jetson TX2", "6.2", "8.2.1"))
    check_binding(binding, GpuContext("NVIDIA Jetson TX2", "6.2", "8.2.1.8"))  # build number ignored
    with pytest.raises(EngineBindingError, match="GPU 'NVIDIA Jetson TX2' ≠ 'Orin'"):
        check_binding(binding, GpuContext("Orin", "8.7", "8.2.1"))
    with pytest.raises(EngineBindingError, match="TensorRT 8.2.1 ≠ 8.5.2"):
        check_binding(binding, GpuContext("NVIDIA Jetson TX2", "6.2", "8.5.2"))
    with pytest.raises(EngineBindingError, match="compute capability 6.2 ≠ 7.2"):
        check_binding(binding, GpuContext("NVIDIA Jetson TX2", "7.2", "8.2.1"))


def test_binding_missing_or_incomplete(tmp_path: Path) -> None:
    engine = tmp_path / "x.engine"
    with pytest.raises(EngineBindingError, match="no binding file x.engine.json"):
        read_binding(engine)
    binding_path(engine).write_text(json.dumps({"gpu_name": "A100"}))
    with pytest.raises(EngineBindingError, match="lacks compute_capability"):
        read_binding(engine)


def _engine_model(tmp_path: Path, binding: EngineBinding | None = None) -> ExportedModel:
    """An engine file (placeholder bytes) for a tiny cell, with ``binding`` written beside it when given."""
    engine = tmp_path / "m.engine"
    if binding is not None:
        engine.write_bytes(b"\0")
        write_binding(engine, binding)
    meta = ModelMetadata("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|", "cifar10", (1, 3, 32, 32), "0")
    return ExportedModel(engine, "tensorrt", meta)


def test_missing_tensorrt_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    from hwdiffnas.interfaces import ProfileSettings
    from profilers.tensorrt import TensorrtProfiler

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("HWDIFFNAS_TRTEXEC", raising=False)
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # absent, whether or not it is installed here
    ok, why = tensorrt_available()
    assert not ok and "trtexec" in why
    model = _engine_model(tmp_path)
    with pytest.raises(MissingBackendError, match=r"pip install 'hwdiffnas\[tensorrt\]'"):
        TensorrtProfiler().profile(model, ProfileSettings())


def test_trtexec_route_refuses_foreign_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With a trtexec that reports another GPU, the profiler refuses before returning any number."""
    from hwdiffnas.interfaces import ProfileSettings
    from profilers.tensorrt import TensorrtProfiler

    fake = tmp_path / "trtexec"
    device_text = fixture("trtexec_device_issue3747.txt")
    (tmp_path / "device.txt").write_text(device_text)
    fake.write_text(f"#!/bin/sh\ncat {tmp_path / 'device.txt'}\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("HWDIFFNAS_TRTEXEC", str(fake))
    model = _engine_model(tmp_path, EngineBinding("NVIDIA Jetson TX2", "6.2", "8.2.1", "fp32", "trtexec"))
    with pytest.raises(EngineBindingError, match="RTX 2080"):
        TensorrtProfiler(route="trtexec").profile(model, ProfileSettings())
    with pytest.raises(Exception, match="fp32 engine; asked to time fp16"):
        TensorrtProfiler(route="trtexec").profile(model,
                                                  ProfileSettings(precision="fp16"))


def test_trtexec_route_with_matching_device_reads_export_times(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    """A stand-in trtexec that prints a genuine device block and writes genuine --exportTimes records."""
    from hwdiffnas.interfaces import ProfileSettings
    from profilers.tensorrt import TensorrtProfiler

    (tmp_path / "device.txt").write_text(fixture("trtexec_device_issue3747.txt"))
    (tmp_path / "times.json").write_text(fixture("trtexec_times_trex_a100_fp32.json.txt"))
    fake = tmp_path / "trtexec"
    fake.write_text("#!/bin/sh\n"
                    f"cat {tmp_path / 'device.txt'}\n"
                    "for a in \"$@\"; do case $a in --exportTimes=*) "
                    f"cp {tmp_path / 'times.json'} \"${{a#--exportTimes=}}\";; esac; done\n")
    fake.chmod(0o755)
    monkeypatch.setenv("HWDIFFNAS_TRTEXEC", str(fake))
    model = _engine_model(tmp_path, EngineBinding("NVIDIA GeForce RTX 2080", "7.5", "8.6.3", "fp32", "trtexec"))
    stats = TensorrtProfiler(route="trtexec").profile(model,
                                                      ProfileSettings(warmup=2, runs=10))
    assert stats.runs == 10 and stats.runtime == "tensorrt" and stats.runtime_version == "8.6.3"
    assert stats.host == "NVIDIA GeForce RTX 2080"
    records = parse_times(fixture("trtexec_times_trex_a100_fp32.json.txt"))
    assert list(stats.samples_ms) == [r["latencyMs"] for r in records[2:]]  # warm-up records dropped, in order
    assert math.isclose(stats.min_ms, 1.91181) and math.isclose(stats.median_ms, 1.91488)


def test_fp16_baked_onnx_keeps_fp32_interface_and_runs() -> None:
    """The fp16 ONNX a strongly typed TensorRT build needs, checked with onnxruntime (TensorRT is absent)."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from onnx import TensorProto

    from export.onnx import torch_to_onnx
    from export.tensorrt.onnx_fp16 import to_fp16
    from hwdiffnas.deploy import prepare_network
    from hwdiffnas.space import Cell

    net, meta = prepare_network(Cell.from_str("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|"
                                              "nor_conv_1x1~1|nor_conv_3x3~2|"), "ImageNet16-120")
    half = to_fp16(torch_to_onnx(net, torch.zeros(meta.input_shape), meta))
    assert {i.data_type for i in half.graph.initializer} == {TensorProto.FLOAT16}
    assert half.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert half.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    x = np.random.default_rng(0).standard_normal(meta.input_shape).astype(np.float32)
    out = ort.InferenceSession(half.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    ref = net(torch.from_numpy(x)).detach().numpy()
    peak = float(np.abs(ref).max())
    diff = float(np.abs(out - ref).max())
    assert out.dtype == np.float32 and 0 < diff < 1e-2 * max(1.0, peak)  # fp16 rounding, not a broken graph
