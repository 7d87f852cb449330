"""Latency of an ONNX file with onnxruntime's CPU EP: ``threads`` intra-op threads, sequential execution."""

from __future__ import annotations

from hwdiffnas.errors import UserError
from hwdiffnas.interfaces import ExportedModel, LatencyStats, Profiler, ProfileSettings, TorchModel, time_runs
from profilers.common import expect, profile_input


class OnnxRuntimeProfiler(Profiler):
    """onnxruntime, CPU execution provider, all graph optimizations."""

    name = "onnxruntime"
    model_format = "onnx"
    extra = ""
    description = "onnxruntime CPU EP (intra-op threads = --threads, sequential execution)"
    requires = ("onnxruntime",)


    def version(self) -> str:
        import onnxruntime

        return onnxruntime.__version__

    def profile(self, model: ExportedModel | TorchModel, settings: ProfileSettings) -> LatencyStats:
        from export.onnx.runtime import cpu_session

        expect(model, ExportedModel, self.model_format, self.name)
        if settings.precision != "fp32":
            raise UserError(f"the onnxruntime profiler times the ONNX file as exported (fp32), not precision "
                            f"{settings.precision!r}; use a runtime that measures it (e.g. litert for int8)")
        sess = cpu_session(model.path, settings.threads)
        names = [i.name for i in sess.get_inputs()]
        feed = {names[0]: profile_input(model)} if names else {}
        run = sess.run
        samples = time_runs(lambda: run(None, feed), settings.warmup, settings.runs)
        return LatencyStats.from_samples(samples, warmup=settings.warmup, threads=settings.threads,
                                         runtime=self.name, runtime_version=self.version(),
                                         precision=settings.precision)
