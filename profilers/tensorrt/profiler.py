"""Latency of a TensorRT engine, on the GPU (and TensorRT version) that built it only.

Two timing routes, tried in this order:

* ``trtexec`` (``$HWDIFFNAS_TRTEXEC`` or on PATH): exactly ``warmup + runs`` inferences with no time-based
  warm-up (`export.tensorrt.trtexec.time_argv`), per-inference records from ``--exportTimes``; the first
  ``warmup`` are dropped and ``latencyMs`` (host-observed H2D + compute + D2H) of the rest are the samples
  (``metric="computeMs"`` for GPU compute only). The run's own device report is checked against the engine's
  binding before any number is returned.
* the TensorRT Python API with CUDA events around each ``execute_async_v3`` (GPU time).

Before timing, the engine's binding (sidecar ``.engine.json``) is compared with the GPU here and the tool
refuses to time an engine built elsewhere. Not run in this project's environment (no GPU, no TensorRT).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from hwdiffnas.errors import MissingBackendError, UserError
from hwdiffnas.interfaces import ExportedModel, LatencyStats, Profiler, ProfileSettings, TorchModel
from profilers.common import expect, profile_input


class TensorrtProfiler(Profiler):
    """TensorRT engine timed by trtexec (--exportTimes) or the Python API (CUDA events)."""

    name = "tensorrt"
    model_format = "tensorrt"
    precisions = ("fp32", "fp16", "int8")  # the engine's own precision (checked in `profile`)
    extra = "tensorrt"
    description = "TensorRT engine: trtexec --exportTimes per-inference latency, or Python API + CUDA events"

    def __init__(self, route: str = "auto", metric: str = "latencyMs", timeout_s: float = 900.0) -> None:
        if route not in ("auto", "trtexec", "python-api"):
            raise UserError(f"unknown TensorRT timing route {route!r}; known: auto, trtexec, python-api")
        self.route = route
        self.metric = metric
        self.timeout_s = timeout_s

    def available(self) -> tuple[bool, str]:
        from export.tensorrt.engine import tensorrt_available

        return tensorrt_available()

    def version(self) -> str:
        from export.tensorrt.exporter import python_api_version

        return python_api_version()

    def _route(self) -> str:
        from export.tensorrt.engine import tensorrt_module, trtexec_path

        if self.route != "auto":
            return self.route
        if trtexec_path() is not None:
            return "trtexec"
        if tensorrt_module() is not None:
            return "python-api"
        return "none"

    def profile(self, model: ExportedModel | TorchModel, settings: ProfileSettings) -> LatencyStats:
        from export.tensorrt.engine import check_binding, gpu_context, read_binding

        ok, why = self.available()
        if not ok:
            raise MissingBackendError("TensorRT", self.extra, why)
        expect(model, ExportedModel, self.model_format, self.name)
        binding, _ = read_binding(model.path)
        if settings.precision != binding.precision:
            raise UserError(f"{model.path.name} is a {binding.precision} engine; asked to time {settings.precision}")
        route = self._route()
        if route == "trtexec":
            samples, version = self._time_trtexec(Path(model.path), settings, binding)
        else:
            check_binding(binding, gpu_context())
            from export.tensorrt.runtime import time_with_cuda_events

            samples = time_with_cuda_events(model.path, profile_input(model), settings.warmup, settings.runs)
            version = binding.tensorrt_version
        return LatencyStats.from_samples(samples, warmup=settings.warmup, threads=settings.threads,
                                         runtime=self.name, runtime_version=version, host=binding.gpu_name,
                                         precision=settings.precision)

    def _time_trtexec(self, engine: Path, settings: ProfileSettings, binding: object) -> tuple[list[float], str]:
        from export.tensorrt.engine import GpuContext, check_binding, trtexec_path
        from export.tensorrt.trtexec import parse_device, read_times, time_argv, times_samples

        exe = trtexec_path()
        if exe is None:
            raise MissingBackendError("trtexec", self.extra, "not found (set $HWDIFFNAS_TRTEXEC)")
        with tempfile.TemporaryDirectory(prefix="hwdiffnas-trtexec-") as tmp:
            times = Path(tmp) / "times.json"
            argv = time_argv(exe, engine, times, warmup=settings.warmup, runs=settings.runs)
            try:
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout_s, check=False)
            except subprocess.TimeoutExpired as exc:
                raise UserError(f"trtexec did not finish within {self.timeout_s:g} s") from exc
            out = proc.stdout + proc.stderr
            dev = parse_device(out)
            check_binding(binding, GpuContext(dev.gpu_name, dev.compute_capability, dev.tensorrt_version))
            if proc.returncode != 0 or not times.is_file():
                tail = "\n".join(out.strip().splitlines()[-8:])
                raise UserError(f"trtexec failed to time {engine.name} (status {proc.returncode}):\n{tail}")
            samples = times_samples(read_times(times), self.metric, skip=settings.warmup)
        return samples, dev.tensorrt_version
