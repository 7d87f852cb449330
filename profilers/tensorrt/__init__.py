"""TensorRT profiler: trtexec --exportTimes or the Python API with CUDA events; refuses engines built on
another GPU or TensorRT version. Not run in this project's environment (no GPU)."""

from profilers.tensorrt.profiler import TensorrtProfiler

__all__ = ["TensorrtProfiler"]
