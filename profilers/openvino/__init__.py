"""OpenVINO CPU plug-in profiler (f32 inference pinned)."""

from profilers.openvino.profiler import OpenVinoProfiler

__all__ = ["OpenVinoProfiler"]
