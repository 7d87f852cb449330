"""LiteRT benchmark_model output parsing, on genuine outputs copied from public pages (see each fixture's
``## source:`` line)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hwdiffnas.remote.benchmark_model import BenchmarkOutputError, benchmark_model_argv, parse_benchmark_model

FIXTURES = Path(__file__).parent / "fixtures" / "benchmark_model"


def load(name: str) -> str:
    lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    header = [ln for ln in lines if ln.startswith("## ")]
    assert any(ln.startswith("## source: https://") for ln in header), f"{name} must name its public source"
    return "\n".join(ln for ln in lines if not ln.startswith("## "))


def test_every_fixture_names_a_source() -> None:
    files = sorted(FIXTURES.glob("*.txt"))
    assert len(files) >= 5
    for f in files:
        load(f.name)


def test_modern_output_with_op_profiling_tables() -> None:
    r = parse_benchmark_model(load("linux_riscv_op_profiling.txt"))
    assert r.timed.count == 50 and r.timed.min_iterations == 50
    # the benchmark's own line, not the op-profiling "Timings (microseconds): ... avg=2.9499e+06"
    assert r.timed.avg_us == pytest.approx(2.95034e6)
    assert r.timed.std_us == 109798 and r.timed.min_us == 2727568 and r.timed.max_us == 3189954
    assert r.warmup is not None and r.warmup.count == 1 and r.warmup.avg_us == 3512391
    assert r.summary_us["Init"] == 17187 and r.summary_us["Inference (avg)"] == pytest.approx(2.95034e6)
    assert r.init_ms == pytest.approx(17.187) and r.model_size_mb == pytest.approx(16.9008)
    assert r.memory_overall_mb == pytest.approx(46.0859)
    s = r.to_stats(threads=4, runtime="litert", host="riscv")
    assert s.mean_ms == pytest.approx(2950.34) and s.median_ms == s.mean_ms
    assert s.min_ms == pytest.approx(2727.568) and s.runs == 50 and s.warmup == 1 and s.threads == 4
    assert s.mean_ms <= s.p90_ms <= 3189.954
    assert s.cv == pytest.approx(109.798 / 2950.34)


def test_linux_aarch64_peak_memory() -> None:
    r = parse_benchmark_model(load("linux_aarch64_peak_memory.txt"))
    assert (r.timed.count, r.timed.avg_us, r.timed.std_us) == (50, 211509, 760)
    assert r.warmup is not None and (r.warmup.count, r.warmup.avg_us) == (3, 216727)
    assert r.memory_init_mb == pytest.approx(4.02344) and r.memory_overall_mb == pytest.approx(38.2773)
    assert r.summary_us["First inference"] == 228120
    assert r.to_stats(threads=4).median_ms == pytest.approx(211.509)


def test_old_format_over_adb() -> None:
    r = parse_benchmark_model(load("android_adb_old_format.txt"))
    assert (r.timed.count, r.timed.min_iterations, r.timed.avg_us) == (15, 10, 66767.6)
    assert r.warmup is not None and r.warmup.count == 7
    assert r.summary_us == {"Warmup (avg)": 76605.9, "Init": 9933, "Inference (avg)": 66767.6}
    assert r.init_ms == pytest.approx(9.933)


def test_adb_gpu_delegate() -> None:
    r = parse_benchmark_model(load("android_adb_gpu.txt"))
    assert (r.timed.count, r.timed.avg_us, r.timed.first_us) == (50, 119375, 119212)
    assert r.warmup is not None and r.warmup.avg_us == 122373
    assert r.init_ms == pytest.approx(870.557)


def test_logcat_prefixes_are_removed() -> None:
    r = parse_benchmark_model(load("android_logcat_nnapi.txt"))
    assert (r.timed.count, r.timed.avg_us, r.timed.std_us) == (75, 12167.6, 325)
    assert r.warmup is not None and r.warmup.count == 40
    assert r.summary_us["Init"] == 126059 and r.model_size_mb == pytest.approx(0.113392)


def test_shell_error_is_reported_not_parsed() -> None:
    with pytest.raises(BenchmarkOutputError, match="not executable"):
        parse_benchmark_model(load("android_not_executable.txt"))
    with pytest.raises(BenchmarkOutputError, match="empty output"):
        parse_benchmark_model("")


def test_truncated_output_without_timed_block_fails() -> None:
    text = load("linux_aarch64_peak_memory.txt").split("Running benchmark")[0]
    with pytest.raises(BenchmarkOutputError):
        parse_benchmark_model(text)


def test_single_block_is_the_timed_one() -> None:
    text = load("linux_aarch64_peak_memory.txt")
    only_timed = text[text.index("Running benchmark for at least 50"):]
    r = parse_benchmark_model(only_timed)
    assert r.warmup is None and r.timed.count == 50
    assert not math.isnan(r.to_stats(threads=1).p90_ms)


def test_argv_runs_exactly_the_requested_counts() -> None:
    argv = benchmark_model_argv("/data/local/tmp/benchmark_model", "/data/local/tmp/m.tflite", threads=2,
                                warmup=5, runs=20)
    assert argv == ["/data/local/tmp/benchmark_model", "--graph=/data/local/tmp/m.tflite", "--num_threads=2",
                    "--warmup_runs=5", "--warmup_min_secs=0", "--num_runs=20", "--min_secs=0"]
