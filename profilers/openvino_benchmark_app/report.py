"""Parsers for OpenVINO ``benchmark_app`` output: its JSON statistics report, its console summary, and the
per-iteration latency file our launcher writes.

What the tool itself reports (checked with the ``benchmark_app`` of the openvino 2026.4 pip package, which is
the Python implementation): the JSON report (``-report_type … -json_stats -report_folder DIR`` →
``benchmark_report.json``) holds the median (or the ``-latency_percentile`` percentile), average, min and max
latency formatted with two decimals (0.01 ms); the console prints the same figures with two decimals, in µs
when the average is below 1 ms. ``-report_type detailed_counters`` adds per-layer times (µs resolution) of
the *last* inference of each request only, and ``-pc`` prints those. No option writes the per-iteration
latencies. The exact figures are obtained by `profilers.openvino_benchmark_app.launch`, which runs the same
``benchmark_app`` entry point and records the unrounded per-iteration latency list its measurement loop
computes (``InferRequest.latency``, ms as float).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path


class BenchmarkAppOutputError(ValueError):
    """The text or file is not what benchmark_app writes (failed run, other tool, truncated file)."""


@dataclass(frozen=True)
class RoundedReport:
    """The 0.01-ms-rounded figures of one benchmark_app run."""

    median_ms: float  # the reported percentile (50 = median)
    percentile: int
    mean_ms: float
    min_ms: float
    max_ms: float
    iterations: int
    duration_ms: float
    throughput_fps: float


def _ms(value: str, where: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise BenchmarkAppOutputError(f"{where}: not a number: {value!r}") from exc


def parse_report_json(text: str) -> RoundedReport:
    """Parse ``benchmark_report.json`` (``-json_stats``)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchmarkAppOutputError(f"benchmark_app report is not JSON: {exc}") from exc
    res = data.get("execution_results") if isinstance(data, dict) else None
    if not isinstance(res, dict):
        raise BenchmarkAppOutputError("benchmark_app report has no execution_results section")
    pct = 50
    median_key = "latency (ms)"
    for key in res:
        m = re.fullmatch(r"latency \((\d+) percentile\) \(ms\)", key)
        if m:
            pct, median_key = int(m.group(1)), key
    missing = [k for k in (median_key, "avg latency", "min latency", "max latency", "total number of iterations")
               if k not in res]
    if missing:
        raise BenchmarkAppOutputError(f"benchmark_app report lacks {', '.join(missing)}")
    return RoundedReport(
        median_ms=_ms(res[median_key], median_key), percentile=pct, mean_ms=_ms(res["avg latency"], "avg latency"),
        min_ms=_ms(res["min latency"], "min latency"), max_ms=_ms(res["max latency"], "max latency"),
        iterations=int(res["total number of iterations"]),
        duration_ms=_ms(res.get("total execution time (ms)", "nan"), "total execution time (ms)"),
        throughput_fps=_ms(res.get("throughput", "nan"), "throughput"))


_CONSOLE = re.compile(r"^\[\s*INFO\s*\]\s+(Count|Duration|Median|Average|Min|Max|Throughput|\d+ percentile)"
                      r":\s+([0-9.]+)\s*(ms|us|iterations|FPS)?", re.MULTILINE)


def parse_console(text: str) -> RoundedReport:
    """Parse the closing ``[ INFO ] Count/Duration/Latency/Throughput`` lines of the console output."""
    vals: dict[str, float] = {}
    pct = 50
    for key, value, unit in _CONSOLE.findall(text):
        v = float(value)
        if unit == "us":
            v /= 1000.0
        if key.endswith("percentile"):
            pct = int(key.split()[0])
            key = "Median"
        vals[key] = v
    need = ("Count", "Median", "Average", "Min", "Max")
    if any(k not in vals for k in need):
        raise BenchmarkAppOutputError("no benchmark_app latency summary in the output (did the run fail?)")
    return RoundedReport(vals["Median"], pct, vals["Average"], vals["Min"], vals["Max"], int(vals["Count"]),
                         vals.get("Duration", math.nan), vals.get("Throughput", math.nan))


def read_samples(path: Path) -> list[float]:
    """The per-iteration latencies (ms) the launcher wrote."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BenchmarkAppOutputError(f"cannot read the per-iteration latencies {path}: {exc}") from exc
    samples = data.get("latencies_ms") if isinstance(data, dict) else None
    if not isinstance(samples, list) or not samples or not all(isinstance(s, (int, float)) for s in samples):
        raise BenchmarkAppOutputError(f"{path} holds no latency list")
    return [float(s) for s in samples]


def nearest_rank(sorted_ms: list[float], percent: int) -> float:
    """benchmark_app's percentile: the value at rank ⌈n·p/100⌉ (1-based) of the sorted latencies."""
    return sorted_ms[math.ceil(len(sorted_ms) * percent / 100) - 1]


def check_consistent(samples_ms: list[float], report: RoundedReport) -> None:
    """Raise unless the exact samples reproduce the rounded report (same count; each figure within 0.005 ms)."""
    xs = sorted(samples_ms)
    if len(xs) != report.iterations:
        raise BenchmarkAppOutputError(f"{len(xs)} recorded latencies but the report counts {report.iterations}")
    exact = {"median": nearest_rank(xs, report.percentile), "mean": sum(xs) / len(xs), "min": xs[0], "max": xs[-1]}
    rounded = {"median": report.median_ms, "mean": report.mean_ms, "min": report.min_ms, "max": report.max_ms}
    for key, value in exact.items():
        if abs(round(value, 2) - rounded[key]) > 0.0051:
            raise BenchmarkAppOutputError(f"recorded {key} {value:.4f} ms does not round to the report's "
                                          f"{rounded[key]:.2f} ms")
