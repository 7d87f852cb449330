"""LiteRT profiler: local LiteRT interpreter, or ``benchmark_model`` on a device over adb/SSH."""

from profilers.litert.profiler import LiteRTProfiler, model_file

__all__ = ["LiteRTProfiler", "model_file"]
