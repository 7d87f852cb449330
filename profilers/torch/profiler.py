"""Latency of the torch module itself in eager mode: ``torch.set_num_threads(threads)`` under inference_mode."""

from __future__ import annotations

from hwdiffnas.errors import UserError
from hwdiffnas.interfaces import ExportedModel, LatencyStats, Profiler, ProfileSettings, TorchModel, time_runs
from profilers.common import expect, profile_input


class TorchProfiler(Profiler):
    """torch eager, CPU, fp32."""

    name = "torch"
    model_format = "torch"
    extra = ""
    description = "torch eager mode on the CPU (torch.set_num_threads = --threads, inference_mode)"

    def version(self) -> str:
        import torch

        return torch.__version__

    def profile(self, model: ExportedModel | TorchModel, settings: ProfileSettings) -> LatencyStats:
        import torch

        expect(model, TorchModel, self.model_format, self.name)
        if settings.precision != "fp32":
            raise UserError(f"the torch profiler measures fp32 only, got precision {settings.precision!r}")
        module = model.module.eval()
        x = torch.from_numpy(profile_input(model))
        before = torch.get_num_threads()
        torch.set_num_threads(settings.threads)
        try:
            with torch.inference_mode():
                samples = time_runs(lambda: module(x), settings.warmup, settings.runs)
        finally:
            torch.set_num_threads(before)
        return LatencyStats.from_samples(samples, warmup=settings.warmup, threads=settings.threads,
                                         runtime=self.name, runtime_version=self.version(), precision="fp32")
