"""Latency of an OpenVINO IR measured by OpenVINO's own ``benchmark_app`` (an alternative to the in-process
``openvino`` profiler, e.g. to compare with figures Intel users get from the tool).

Settings match the ``openvino`` profiler: CPU, ``-hint none -nstreams 1 -nthreads T -api sync``, f32 inference
precision, ``-niter runs``. ``benchmark_app`` does exactly one warm-up inference before the timed loop
(``settings.warmup`` cannot change that; the result records ``warmup=1``).

Its JSON report rounds every latency to 0.01 ms, so the per-iteration latencies are recorded by
`profilers.openvino_benchmark_app.launch` (the same tool run unchanged) and the statistics are computed from
them; they are checked against the tool's own rounded report (`report.check_consistent`). With
``precise=False`` the plain ``benchmark_app`` executable on PATH runs and only its rounded report is used
(median/mean/min/max to 0.01 ms, std unknown).
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from hwdiffnas.errors import MissingBackendError, UserError
from hwdiffnas.interfaces import ExportedModel, LatencyStats, Profiler, ProfileSettings, TorchModel, host_description
from profilers.common import expect
from profilers.openvino_benchmark_app.report import (
    BenchmarkAppOutputError,
    check_consistent,
    parse_report_json,
    read_samples,
)

BENCHMARK_APP_WARMUP = 1  # the tool's single "First inference"


def benchmark_app_args(model: Path, settings: ProfileSettings, report_folder: Path, device: str = "CPU") -> list[str]:
    """The ``benchmark_app`` arguments for one latency measurement (without the program name)."""
    if settings.precision != "fp32":
        raise UserError(f"the openvino-benchmark-app profiler measures fp32 only, got {settings.precision!r}")
    return ["-m", str(model), "-d", device, "-hint", "none", "-nstreams", "1", "-nthreads", str(settings.threads),
            "-api", "sync", "-niter", str(settings.runs), "-infer_precision", "f32", "-report_type", "no_counters",
            "-report_folder", str(report_folder), "-json_stats"]


class OpenVinoBenchmarkAppProfiler(Profiler):
    """OpenVINO ``benchmark_app`` (sync API, one stream), statistics from its exact per-iteration latencies."""

    name = "openvino-benchmark-app"
    model_format = "openvino"
    extra = "openvino"
    description = "OpenVINO benchmark_app (CPU, sync, 1 stream, f32), exact per-iteration latencies"

    def __init__(self, precise: bool = True, executable: str = "benchmark_app", timeout_s: float = 600.0) -> None:
        self.precise = precise
        self.executable = executable
        self.timeout_s = timeout_s

    def available(self) -> tuple[bool, str]:
        if self.precise:
            try:
                from openvino.tools.benchmark import main  # noqa: F401
            except ImportError as exc:
                return False, str(exc)
            return True, ""
        if shutil.which(self.executable) is None:
            return False, f"{self.executable!r} not found on PATH"
        return True, ""

    def version(self) -> str:
        try:
            import openvino
        except ImportError:
            return "unavailable"
        return openvino.get_version()

    def command(self, model: Path, settings: ProfileSettings, report_folder: Path, samples: Path) -> list[str]:
        """The full argument list run as a subprocess."""
        args = benchmark_app_args(model, settings, report_folder)
        if self.precise:
            return [sys.executable, "-m", "profilers.openvino_benchmark_app.launch", "--samples-out", str(samples),
                    "--", *args]
        return [self.executable, *args]

    def profile(self, model: ExportedModel | TorchModel, settings: ProfileSettings) -> LatencyStats:
        ok, why = self.available()
        if not ok:
            raise MissingBackendError("openvino benchmark_app", self.extra, why)
        expect(model, ExportedModel, self.model_format, self.name)
        with tempfile.TemporaryDirectory(prefix="hwdiffnas-benchmark-app-") as tmp:
            folder = Path(tmp)
            samples_path = folder / "latencies.json"
            argv = self.command(Path(model.path), settings, folder, samples_path)
            try:
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout_s, check=False,
                                      cwd=str(Path(__file__).resolve().parents[2]))
            except subprocess.TimeoutExpired as exc:
                raise UserError(f"benchmark_app did not finish within {self.timeout_s:g} s") from exc
            out = proc.stdout + proc.stderr
            if proc.returncode != 0:
                tail = "\n".join(out.strip().splitlines()[-6:])
                raise UserError(f"benchmark_app failed with status {proc.returncode}:\n{tail}")
            report_file = folder / "benchmark_report.json"
            if not report_file.is_file():
                raise BenchmarkAppOutputError("benchmark_app wrote no benchmark_report.json")
            report = parse_report_json(report_file.read_text())
            if not self.precise:
                return _rounded_stats(report, settings, self.name, self.version())
            samples = read_samples(samples_path)
        check_consistent(samples, report)
        return LatencyStats.from_samples(samples, warmup=BENCHMARK_APP_WARMUP, threads=settings.threads,
                                         runtime=self.name, runtime_version=self.version(), precision="fp32")


def _rounded_stats(report: object, settings: ProfileSettings, runtime: str, version: str) -> LatencyStats:
    """Statistics from the rounded report alone (median = the reported percentile; std and p90 unknown)."""
    from profilers.openvino_benchmark_app.report import RoundedReport

    assert isinstance(report, RoundedReport)
    return LatencyStats(median_ms=report.median_ms, p90_ms=math.nan, mean_ms=report.mean_ms, std_ms=math.nan,
                        cv=math.nan, min_ms=report.min_ms, runs=report.iterations, warmup=BENCHMARK_APP_WARMUP,
                        threads=settings.threads, runtime=runtime, runtime_version=version,
                        host=host_description(), precision="fp32")
