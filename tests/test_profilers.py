"""Profiler plug-ins: sane statistics, recorded input shape, thread setting, wrong-format errors."""

from __future__ import annotations

import math

import pytest

from hwdiffnas.deploy import model_for, prepare_network, profile_cell
from hwdiffnas.errors import UserError
from hwdiffnas.interfaces import LatencyStats, ProfileSettings
from hwdiffnas.plugins import get_profiler, profiler_names
from hwdiffnas.space import Cell

SMALL = Cell.from_ops([1, 4, 1, 2, 1, 1])  # one 1x1 conv edge: cheap to export and to run
FAST = ProfileSettings(warmup=2, runs=7, threads=1)


def check_stats(s: LatencyStats, runtime: str, settings: ProfileSettings) -> None:
    assert s.runtime == runtime and s.runtime_version and s.host
    assert s.runs == settings.runs == len(s.samples_ms) and s.warmup == settings.warmup
    assert s.threads == settings.threads and s.precision == "fp32"
    assert 0 < s.min_ms <= s.median_ms <= s.p90_ms <= max(s.samples_ms)
    assert s.median_ms < 5000  # a tiny network: seconds would mean something is wrong
    assert s.std_ms >= 0 and s.cv == pytest.approx(s.std_ms / s.mean_ms)


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino", "torch"])
def test_profilers_return_sane_stats(runtime, tmp_path):
    assert runtime in profiler_names()
    stats = profile_cell(SMALL, runtime, FAST, workdir=tmp_path)
    check_stats(stats, runtime, FAST)
    assert list(tmp_path.iterdir()) == []  # the temporary export is gone


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_profilers_use_the_recorded_input_shape(runtime, tmp_path):
    """ImageNet16-120 files take 1x3x16x16: a profiler that assumed CIFAR's 32x32 would fail to run."""
    prof = get_profiler(runtime)
    net, meta = prepare_network(SMALL, "ImageNet16-120")
    model = model_for(prof, net, meta, tmp_path)
    assert model.metadata.input_shape == (1, 3, 16, 16)
    check_stats(prof.profile(model, FAST), runtime, FAST)


def test_disconnected_cell_profiles(tmp_path):
    stats = profile_cell(Cell.from_ops([0] * 6), "onnxruntime", FAST, workdir=tmp_path)
    assert stats.median_ms > 0


def test_thread_setting_is_recorded_and_torch_threads_restored():
    import torch

    before = torch.get_num_threads()
    s = ProfileSettings(warmup=1, runs=3, threads=2)
    for runtime in ("onnxruntime", "torch"):
        assert profile_cell(SMALL, runtime, s).threads == 2
    assert torch.get_num_threads() == before


def test_profiler_rejects_a_model_of_another_format(tmp_path):
    net, meta = prepare_network(SMALL)
    torch_model = model_for(get_profiler("torch"), net, meta, tmp_path)
    with pytest.raises(TypeError, match="onnxruntime profiler loads onnx models, got torch"):
        get_profiler("onnxruntime").profile(torch_model, FAST)
    onnx_model = model_for(get_profiler("onnxruntime"), net, meta, tmp_path)
    with pytest.raises(TypeError, match="torch profiler loads torch models, got onnx"):
        get_profiler("torch").profile(onnx_model, FAST)


def test_bad_settings_and_unknown_runtime():
    with pytest.raises(UserError, match="runs ≥ 1"):
        ProfileSettings(runs=0)
    with pytest.raises(UserError, match="unknown runtime 'tensorflow'; known: ") as info:
        profile_cell(SMALL, "tensorflow", FAST)
    listed = str(info.value).split("known: ")[1].split(", ")
    assert {"onnxruntime", "openvino", "torch"} <= set(listed)


def test_latency_stats_from_known_samples():
    s = LatencyStats.from_samples([4.0, 1.0, 3.0, 2.0, 5.0], warmup=1, threads=1, runtime="x",
                                  runtime_version="1", host="h")
    assert (s.median_ms, s.min_ms, s.mean_ms) == (3.0, 1.0, 3.0)
    assert s.p90_ms == pytest.approx(4.6)
    assert s.std_ms == pytest.approx(math.sqrt(2.0)) and s.cv == pytest.approx(math.sqrt(2.0) / 3.0)
    assert "samples_ms" not in s.to_dict() and s.to_dict(with_samples=True)["samples_ms"] == [4.0, 1.0, 3.0, 2.0, 5.0]


def test_cpu_pinning_rules(monkeypatch):
    import os

    from hwdiffnas.interfaces import cpu_pinning, parse_cpu_list, pinned_cpus

    assert parse_cpu_list("0-2,5") == (0, 1, 2, 5)
    with pytest.raises(UserError, match="bad CPU list"):
        ProfileSettings(pin_cpus="x-1")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert pinned_cpus(ProfileSettings(threads=1)) == (3,)
    assert pinned_cpus(ProfileSettings(threads=2)) == (2, 3)
    assert pinned_cpus(ProfileSettings(threads=4)) is None
    assert pinned_cpus(ProfileSettings(pin_cpus="none")) is None
    assert pinned_cpus(ProfileSettings(pin_cpus="0-1")) == (0, 1)
    with pytest.raises(UserError, match="may run on"):
        pinned_cpus(ProfileSettings(pin_cpus="7"))
    calls = []
    monkeypatch.setattr(os, "sched_setaffinity", lambda pid, cpus: calls.append(set(cpus)))
    with cpu_pinning(ProfileSettings(threads=1)) as cpus:
        assert cpus == (3,)
    assert calls == [{3}, {0, 1, 2, 3}]  # pinned, then restored
