"""OpenVINO ``benchmark_app`` as a profiler: the tool runs unchanged, statistics come from its exact
per-iteration latencies (its own reports round to 0.01 ms)."""

from profilers.openvino_benchmark_app.profiler import OpenVinoBenchmarkAppProfiler, benchmark_app_args
from profilers.openvino_benchmark_app.report import (
    BenchmarkAppOutputError,
    RoundedReport,
    check_consistent,
    nearest_rank,
    parse_console,
    parse_report_json,
    read_samples,
)

__all__ = ["BenchmarkAppOutputError", "OpenVinoBenchmarkAppProfiler", "RoundedReport", "benchmark_app_args",
           "check_consistent", "nearest_rank", "parse_console", "parse_report_json", "read_samples"]
