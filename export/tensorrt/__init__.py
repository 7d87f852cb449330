"""TensorRT exporter: an engine built from the ONNX export (Python API or trtexec), bound to its GPU.
Detected at run time; not run in this project's environment (no NVIDIA GPU)."""

from export.tensorrt.engine import (
    EngineBinding,
    EngineBindingError,
    GpuContext,
    binding_path,
    build_engine,
    check_binding,
    gpu_context,
    read_binding,
    tensorrt_available,
    trtexec_path,
    write_binding,
)
from export.tensorrt.exporter import TensorrtExporter

__all__ = ["EngineBinding", "EngineBindingError", "GpuContext", "TensorrtExporter", "binding_path", "build_engine",
           "check_binding", "gpu_context", "read_binding", "tensorrt_available", "trtexec_path", "write_binding"]
