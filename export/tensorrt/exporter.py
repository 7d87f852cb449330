"""Torch → ONNX (the ``onnx`` exporter's graph) → TensorRT engine, bound to the GPU that built it.

Writes ``<stem>.onnx`` (the source the engine was built from), ``<stem>.engine`` and ``<stem>.engine.json``
(`export.tensorrt.engine.EngineBinding` + the hwdiffnas metadata). ``run`` executes the engine with the
TensorRT Python API on CUDA tensors (torch) for validation. Not run in this project's environment (no GPU,
no TensorRT); without TensorRT every entry point raises `MissingBackendError` naming the ``tensorrt`` extra.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from export.tensorrt.engine import (
    build_engine,
    check_binding,
    gpu_context,
    read_binding,
    tensorrt_available,
    tensorrt_module,
)
from export.tensorrt.trtexec import PRECISIONS
from hwdiffnas.errors import MissingBackendError, UserError
from hwdiffnas.interfaces import ExportedModel, Exporter, ModelMetadata

if TYPE_CHECKING:
    import numpy as np
    from torch import nn


class TensorrtExporter(Exporter):
    """TensorRT engine (fp32 by default, fp16 on request) built from the ONNX export."""

    name = "tensorrt"
    extra = "tensorrt"
    description = "TensorRT engine from the ONNX export (Python API or trtexec), bound to the building GPU"

    def __init__(self, precision: str = "fp32", strongly_typed: bool = False) -> None:
        if precision not in PRECISIONS:
            raise UserError(f"unknown TensorRT precision {precision!r}; known: {', '.join(PRECISIONS)}")
        self.precision = precision
        self.strongly_typed = strongly_typed

    def available(self) -> tuple[bool, str]:
        return tensorrt_available()

    def export(self, model: nn.Module, example_input: Any, out_dir: Path, metadata: ModelMetadata) -> ExportedModel:
        import onnx

        from export.onnx import torch_to_onnx

        ok, why = self.available()
        if not ok:
            raise MissingBackendError("TensorRT", self.extra, why)
        extra = {**metadata.extra, "format": self.name, "precision": self.precision}
        meta = replace(metadata, extra=extra)
        out_dir = Path(out_dir)
        onnx_path = out_dir / f"{meta.file_stem}.onnx"
        engine = out_dir / f"{meta.file_stem}.engine"
        onnx.save_model(torch_to_onnx(model, example_input, meta), str(onnx_path))
        binding = build_engine(onnx_path, engine, self.precision, meta.as_strings(), self.strongly_typed)
        sidecar = Path(str(engine) + ".json")
        meta = replace(meta, extra={**meta.extra, "gpu": binding.gpu_name,
                                    "compute_capability": binding.compute_capability,
                                    "tensorrt_version": binding.tensorrt_version})
        return ExportedModel(path=engine, format=self.name, metadata=meta, files=(onnx_path, sidecar, engine))

    def run(self, exported: ExportedModel, inputs: np.ndarray) -> np.ndarray:
        from export.tensorrt.runtime import run_rows

        binding, _ = read_binding(exported.path)
        check_binding(binding, gpu_context())
        return run_rows(exported.path, inputs)

    def read_metadata(self, path: Path) -> ModelMetadata:
        _, meta = read_binding(path)
        if not meta:
            raise ValueError(f"{path} has a binding file without hwdiffnas metadata")
        return ModelMetadata.from_strings(meta)


def python_api_version() -> str:
    """The TensorRT Python module's version, or ``unavailable``."""
    trt = tensorrt_module()
    return str(trt.__version__) if trt is not None else "unavailable"
