"""Latency of an OpenVINO IR on the CPU plug-in: f32 inference precision, ``threads`` inference threads,
one stream, latency hint; a synchronous infer request timed per call."""

from __future__ import annotations

from hwdiffnas.errors import UserError
from hwdiffnas.interfaces import ExportedModel, LatencyStats, Profiler, ProfileSettings, TorchModel, time_runs
from profilers.common import expect, profile_input


class OpenVinoProfiler(Profiler):
    """OpenVINO CPU, f32 pinned (the CPU plug-in would otherwise pick bf16 where the CPU supports it)."""

    name = "openvino"
    model_format = "openvino"
    extra = ""  # openvino is a core dependency
    description = "OpenVINO CPU plug-in, f32 inference precision, INFERENCE_NUM_THREADS = --threads, latency hint"
    requires = ("openvino",)


    def version(self) -> str:
        import openvino

        return openvino.get_version()

    def profile(self, model: ExportedModel | TorchModel, settings: ProfileSettings) -> LatencyStats:
        ok, why = self.available()
        if not ok:
            raise UserError(f"openvino cannot be imported ({why}); it is a core dependency: reinstall hwdiffnas")
        if settings.precision != "fp32":
            raise UserError(f"the openvino profiler measures fp32 only, got precision {settings.precision!r}")
        from export.openvino.runtime import compile_cpu

        expect(model, ExportedModel, self.model_format, self.name)
        compiled = compile_cpu(model.path, settings.threads)
        request = compiled.create_infer_request()
        if len(compiled.inputs) > 0:
            request.set_input_tensor(0, _tensor(profile_input(model)))
        infer = request.infer
        samples = time_runs(infer, settings.warmup, settings.runs)
        return LatencyStats.from_samples(samples, warmup=settings.warmup, threads=settings.threads,
                                         runtime=self.name, runtime_version=self.version(), precision="fp32")


def _tensor(array: object) -> object:
    import openvino as ov

    return ov.Tensor(array)
