"""onnxruntime CPU execution provider profiler."""

from profilers.onnxruntime.profiler import OnnxRuntimeProfiler

__all__ = ["OnnxRuntimeProfiler"]
