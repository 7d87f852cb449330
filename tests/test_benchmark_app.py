"""OpenVINO benchmark_app route: real runs of the tool shipped with the openvino package, its rounded report,
and the exact per-iteration latencies the launcher records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hwdiffnas.interfaces import ProfileSettings
from profilers.openvino_benchmark_app import (
    BenchmarkAppOutputError,
    OpenVinoBenchmarkAppProfiler,
    benchmark_app_args,
    check_consistent,
    nearest_rank,
    parse_console,
    parse_report_json,
    read_samples,
)
from profilers.openvino_benchmark_app.launch import install_recorder

pytest.importorskip("openvino.tools.benchmark.main")
REPO = Path(__file__).resolve().parents[1]
ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One real launcher run on an exported IR: report file, samples file and console text."""
    from hwdiffnas.deploy import export_cell
    from hwdiffnas.space import Cell

    folder = tmp_path_factory.mktemp("ba")
    res = export_cell(Cell.from_str(ARCH), "openvino", folder / "ir", dataset="ImageNet16-120")
    reports = folder / "rep"
    reports.mkdir()
    samples = folder / "samples.json"
    argv = [sys.executable, "-m", "profilers.openvino_benchmark_app.launch", "--samples-out", str(samples), "--",
            *benchmark_app_args(res.path, ProfileSettings(runs=25), reports)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return {"ir": res.path, "report": reports / "benchmark_report.json", "samples": samples,
            "console": proc.stdout + proc.stderr}


def test_report_rounds_to_hundredths(run: dict) -> None:
    raw = json.loads(run["report"].read_text())["execution_results"]
    for key in ("latency (ms)", "avg latency", "min latency", "max latency"):
        assert len(raw[key].split(".")[1]) == 2, (key, raw[key])  # why the exact samples are needed
    rep = parse_report_json(run["report"].read_text())
    assert rep.iterations == 25 and rep.percentile == 50
    assert rep.min_ms <= rep.median_ms <= rep.max_ms


def test_exact_samples_reproduce_the_rounded_report(run: dict) -> None:
    samples = read_samples(run["samples"])
    rep = parse_report_json(run["report"].read_text())
    assert len(samples) == 25
    assert any(round(s, 2) != s for s in samples)  # finer than the report's 0.01 ms
    check_consistent(samples, rep)
    assert round(nearest_rank(sorted(samples), 50), 2) == pytest.approx(rep.median_ms, abs=0.0051)


def test_console_summary_matches_report(run: dict) -> None:
    con = parse_console(run["console"])
    rep = parse_report_json(run["report"].read_text())
    assert con.iterations == rep.iterations
    assert con.median_ms == pytest.approx(rep.median_ms, abs=0.011)  # console may print µs (< 1 ms average)
    assert con.mean_ms == pytest.approx(rep.mean_ms, abs=0.011)


def test_inconsistent_samples_are_refused(run: dict) -> None:
    rep = parse_report_json(run["report"].read_text())
    samples = read_samples(run["samples"])
    with pytest.raises(BenchmarkAppOutputError, match="report counts"):
        check_consistent(samples[:-1], rep)
    with pytest.raises(BenchmarkAppOutputError, match="does not round"):
        check_consistent([s + 0.5 for s in samples], rep)


def test_profiler_end_to_end() -> None:
    from hwdiffnas.deploy import profile_cell
    from hwdiffnas.space import Cell

    stats = profile_cell(Cell.from_str(ARCH), "openvino-benchmark-app", ProfileSettings(warmup=3, runs=12),
                         dataset="ImageNet16-120")
    assert stats.runtime == "openvino-benchmark-app" and stats.runs == 12 and stats.warmup == 1
    assert len(stats.samples_ms) == 12 and 0 < stats.min_ms <= stats.median_ms <= max(stats.samples_ms)


def test_percentile_key_and_bad_reports() -> None:
    base = {"execution_results": {"total number of iterations": "40", "latency (90 percentile) (ms)": "3.21",
                                  "avg latency": "2.50", "min latency": "2.00", "max latency": "4.00",
                                  "total execution time (ms)": "120.00", "throughput": "333.33"}}
    rep = parse_report_json(json.dumps(base))
    assert rep.percentile == 90 and rep.median_ms == 3.21 and rep.iterations == 40
    with pytest.raises(BenchmarkAppOutputError, match="lacks avg latency"):
        del base["execution_results"]["avg latency"]
        parse_report_json(json.dumps(base))
    with pytest.raises(BenchmarkAppOutputError, match="not JSON"):
        parse_report_json("{")
    with pytest.raises(BenchmarkAppOutputError, match="no benchmark_app latency summary"):
        parse_console("[ ERROR ] Model file nonexistent.xml cannot be opened!")


def test_args_and_fp32_only(tmp_path: Path) -> None:
    args = benchmark_app_args(Path("m.xml"), ProfileSettings(threads=2, runs=7), tmp_path)
    assert args[:2] == ["-m", "m.xml"] and "-json_stats" in args
    assert args[args.index("-nthreads") + 1] == "2" and args[args.index("-niter") + 1] == "7"
    assert args[args.index("-api") + 1] == "sync" and args[args.index("-nstreams") + 1] == "1"
    with pytest.raises(Exception, match="fp32 only"):
        benchmark_app_args(Path("m.xml"), ProfileSettings(precision="int8"), tmp_path)
    prof = OpenVinoBenchmarkAppProfiler()
    cmd = prof.command(Path("m.xml"), ProfileSettings(), tmp_path, tmp_path / "s.json")
    assert cmd[1:4] == ["-m", "profilers.openvino_benchmark_app.launch", "--samples-out"]


def test_recorder_wraps_measurement_loops() -> None:
    class Fake:
        def sync_inference(self, request: object, queue: object) -> tuple[list[float], float, int]:
            return [1.25, 2.5], 0.004, 2

    sink: list[list[float]] = []
    assert install_recorder(Fake, sink) == ["sync_inference"]
    assert Fake().sync_inference(None, None) == ([1.25, 2.5], 0.004, 2)
    assert sink == [[1.25, 2.5]]
