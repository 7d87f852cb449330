"""LiteRT (TFLite) latency: locally with the LiteRT interpreter, or on a device with ``benchmark_model``.

Local: one interpreter with ``threads`` threads (XNNPACK CPU delegate, LiteRT's default), a fixed random input
set once, ``warmup`` untimed then ``runs`` timed ``invoke()`` calls (`hwdiffnas.interfaces.time_runs`).

On a device (`LiteRTProfiler.profile_on_device`): the model is pushed through an adb or SSH transport
(`hwdiffnas.remote.transports`), LiteRT's ``benchmark_model`` runs exactly ``warmup`` + ``runs`` inferences
with the flags of ``delegate`` (``cpu``/``xnnpack``, ``nnapi``, ``gpu``, ``hexagon``; a device config's
``[measure] delegate``), and its output is parsed by `hwdiffnas.remote.benchmark_model` (that tool reports
mean/std/min/max, not per-run samples).

``precision="int8"`` times the int8 file written by the ``tflite-int8`` exporter (quantized here if absent).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hwdiffnas.delegates import benchmark_model_flags
from hwdiffnas.errors import MissingBackendError, UserError
from hwdiffnas.interfaces import ExportedModel, LatencyStats, Profiler, ProfileSettings, TorchModel, time_runs
from profilers.common import INPUT_SEED, profile_input

if TYPE_CHECKING:
    import numpy as np

    from hwdiffnas.interfaces import Transport

TFLITE_FORMATS = ("tflite", "tflite-int8", "tflite-torch")


def model_file(model: ExportedModel, precision: str, quantize: bool = True) -> Path:
    """The file to time: the export itself (fp32) or its int8 variant. An fp32 export without one gets it
    here (static int8 PTQ on the default representative dataset, written beside it) unless ``quantize`` is
    False; latency does not depend on the calibration data."""
    if precision == "fp32":
        return Path(model.path)
    if precision != "int8":
        raise UserError(f"the litert profiler measures fp32 or int8, got precision {precision!r}")
    from export.tflite import int8_path_of

    p = int8_path_of(model)
    if p is not None:
        return p
    if not quantize:
        raise UserError(f"{model.path} has no int8 variant; export with --format tflite-int8")
    from export.tflite.exporter import calibration_inputs, quantize_int8

    target = Path(model.path).with_suffix(".int8.tflite")
    target.write_bytes(quantize_int8(Path(model.path).read_bytes(),
                                     calibration_inputs(tuple(model.metadata.input_shape))))
    return target


class LiteRTProfiler(Profiler):
    """LiteRT interpreter on this CPU (XNNPACK delegate), ``threads`` threads; or ``benchmark_model`` remotely."""

    name = "litert"
    model_format = "tflite"
    precisions = ("fp32", "int8")
    extra = "litert"
    description = "LiteRT interpreter (ai-edge-litert, XNNPACK CPU delegate), --threads threads; fp32 or int8"

    def available(self) -> tuple[bool, str]:
        from export.tflite.exporter import litert_available

        return litert_available()

    def version(self) -> str:
        try:
            import ai_edge_litert
        except ImportError:
            return "unavailable"
        return str(getattr(ai_edge_litert, "__version__", "unknown"))

    def _check(self, model: ExportedModel | TorchModel) -> ExportedModel:
        if not isinstance(model, ExportedModel) or model.format not in TFLITE_FORMATS:
            got = getattr(model, "format", type(model).__name__)
            raise TypeError(f"the {self.name} profiler loads {', '.join(TFLITE_FORMATS)} models, got {got}")
        return model

    def profile(self, model: ExportedModel | TorchModel, settings: ProfileSettings) -> LatencyStats:
        ok, why = self.available()
        if not ok:
            raise MissingBackendError("ai-edge-litert (LiteRT runtime)", self.extra, why)
        exported = self._check(model)
        path = model_file(exported, settings.precision)
        from export.tflite import interpreter
        from export.tflite.exporter import to_input_dtype

        it = interpreter(path, settings.threads)
        details = it.get_input_details()  # empty if the converter dropped an unused input
        if details:
            it.set_tensor(details[0]["index"], to_input_dtype(_input_for(exported, details[0]), details[0]))
        samples = time_runs(it.invoke, settings.warmup, settings.runs)
        return LatencyStats.from_samples(samples, warmup=settings.warmup, threads=settings.threads,
                                         runtime=self.name, runtime_version=self.version(),
                                         precision=settings.precision)

    def benchmark_argv(self, tool: str, remote_model: str, settings: ProfileSettings,
                       delegate: str = "xnnpack") -> list[str]:
        """The ``benchmark_model`` argument list for one measurement on the device."""
        from hwdiffnas.remote.benchmark_model import benchmark_model_argv

        return benchmark_model_argv(tool, remote_model, threads=settings.threads, warmup=settings.warmup,
                                    runs=settings.runs, extra=benchmark_model_flags(delegate))

    def profile_on_device(self, model: ExportedModel, settings: ProfileSettings, transport: Transport, *,
                          tool: str = "/data/local/tmp/benchmark_model", delegate: str = "xnnpack",
                          host: str = "", timeout_s: float = 600.0) -> LatencyStats:
        """Push the model through ``transport``, run ``benchmark_model`` there and parse its output."""
        from hwdiffnas.remote.benchmark_model import BenchmarkOutputError, parse_benchmark_model

        exported = self._check(model)
        path = model_file(exported, settings.precision)
        benchmark_model_flags(delegate)  # an unknown delegate fails before anything is pushed
        remote = transport.push(path, f"hwdiffnas-litert-{path.name}")
        try:
            out = transport.run(self.benchmark_argv(tool, remote, settings, delegate), timeout_s)
        finally:
            try:
                transport.run(["rm", "-f", remote], timeout_s=30)
            except Exception:  # noqa: BLE001 - cleanup must not hide the measurement's own error
                pass
        try:
            result = parse_benchmark_model(out)
        except BenchmarkOutputError as exc:
            raise UserError(f"benchmark_model on {host or transport.name}: {exc}") from exc
        return result.to_stats(threads=settings.threads, runtime=f"{self.name}-benchmark_model-{delegate}",
                               runtime_version="device", host=host or transport.name,
                               precision=settings.precision)


def _input_for(model: ExportedModel, detail: dict) -> np.ndarray:
    """The profiling input: the recorded shape's fixed random input, or (for a file that arrived without
    hwdiffnas metadata, e.g. uploaded to the agent) a seeded random input of the interpreter's input shape."""
    import numpy as np

    shape = tuple(int(d) for d in detail["shape"])
    if tuple(model.metadata.input_shape) == shape:
        return profile_input(model)
    return np.random.default_rng(INPUT_SEED).standard_normal(shape).astype(np.float32)
