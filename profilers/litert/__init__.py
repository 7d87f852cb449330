"""LiteRT profiler: local LiteRT interpreter, or ``benchmark_model`` on a device over adb/SSH."""

from profilers.litert.profiler import DELEGATE_FLAGS, LiteRTProfiler, benchmark_model_flags, model_file

__all__ = ["DELEGATE_FLAGS", "LiteRTProfiler", "benchmark_model_flags", "model_file"]
