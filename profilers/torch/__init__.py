"""torch eager-mode profiler."""

from profilers.torch.profiler import TorchProfiler

__all__ = ["TorchProfiler"]
