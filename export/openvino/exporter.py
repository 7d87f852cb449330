"""Torch → OpenVINO IR (.xml + .bin) through the ONNX exporter's graph, with the metadata in rt_info.

The IR is built by reading the checked ONNX graph with OpenVINO's ONNX front end rather than by converting
the torch module directly: on NB201 networks the direct PyTorch front end (which re-traces the module) is
several times slower, and going through ONNX means every exported format starts from the same traced graph.
Weights stay f32 (``compress_to_fp16=False``), and so does inference: the IR marks every op to keep its
precision (see `pin_f32`), so a plain ``core.compile_model(path, "CPU")`` does not fall back to bf16.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwdiffnas.errors import UserError
from hwdiffnas.interfaces import ExportedModel, Exporter, ModelMetadata

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

RT_INFO_SECTION = "hwdiffnas"
# The IR carries its inference precision, so a plain ``core.compile_model(path, "CPU")`` runs f32 rather than the
# CPU plug-in's bf16 default (on CPUs with AVX512-BF16/AMX). OpenVINO's CPU plug-in takes no inference precision
# from a model's rt_info (its ``runtime_options`` it reads only for KV-cache and quantization settings), but it
# keeps the original (f32) precision of every op marked as not to be converted to lower precision: under its
# legacy key "precise_0" that mark is saved in the IR as <attribute name="DisablePrecisionConversion" ...>.
KEEP_PRECISION_KEY = "precise_0"
PRECISION_HINT_PATH = ["runtime_options", "INFERENCE_PRECISION_HINT"]  # the hint, recorded for tools that read it


def _import_openvino() -> Any:
    try:
        import openvino as ov
    except ImportError as exc:
        raise UserError(f"openvino cannot be imported ({exc}); it is a core dependency: reinstall hwdiffnas") from exc
    return ov


def pin_f32(ov_model: Any) -> None:
    """Mark every op of ``ov_model`` to keep its f32 precision and record the f32 precision hint."""
    _classifier_as_plain_matmul(ov_model)
    for op in ov_model.get_ops():
        op.get_rt_info()[KEEP_PRECISION_KEY] = ""
    ov_model.set_rt_info("f32", PRECISION_HINT_PATH)


def _classifier_as_plain_matmul(ov_model: Any) -> None:
    """Write each batch-1 ``x (1, C) @ W^T`` with constant weights as ``(W @ x^T)`` reshaped to ``(1, K)``.

    Same numbers; but the CPU plug-in turns ``x @ W^T`` + bias into a new fused FullyConnected op, and a new op
    does not inherit the keep-precision mark (the mark is not copyable), so that one layer would run in bf16.
    """
    from openvino import opset13 as ops

    for op in ov_model.get_ordered_ops():
        if op.get_type_name() != "MatMul":
            continue
        x, w = (op.input_value(i) for i in range(2))
        attrs = op.get_attributes()
        shape = x.get_partial_shape()
        if (w.get_node().get_type_name() != "Constant" or attrs["transpose_a"] or not shape.is_static
                or len(shape) != 2 or shape[0].get_length() != 1):
            continue
        wx = ops.matmul(w, x, not attrs["transpose_b"], True)  # (K, 1)
        out = ops.reshape(wx, ops.constant([1, -1]), False)  # (1, K)
        out.set_friendly_name(op.get_friendly_name())
        op.output(0).replace(out.output(0))


class OpenVinoExporter(Exporter):
    """OpenVINO IR, run back on the CPU plug-in with f32 inference precision pinned."""

    name = "openvino"
    extra = ""  # openvino is a core dependency
    description = "OpenVINO IR (.xml/.bin, f32 weights) via ONNX, validated on the CPU plug-in in f32"
    requires = ("openvino",)


    def export(self, model: nn.Module, example_input: Any, out_dir: Path, metadata: ModelMetadata) -> ExportedModel:
        import onnx

        from export.onnx import torch_to_onnx

        out_dir = Path(out_dir)
        proto = torch_to_onnx(model, example_input, metadata)
        onnx_tmp = out_dir / f".{metadata.file_stem}.tmp.onnx"
        try:
            onnx.save_model(proto, str(onnx_tmp))
            return self.convert_onnx(onnx_tmp, out_dir, metadata)
        finally:
            onnx_tmp.unlink(missing_ok=True)

    def convert_onnx(self, onnx_path: Path, out_dir: Path, metadata: ModelMetadata) -> ExportedModel:
        """Build the IR from an ONNX file written by the ONNX exporter (``export`` does this after tracing)."""
        from export.onnx import OPSET
        from export.openvino.runtime import core

        ov = _import_openvino()
        extra = {k: v for k, v in metadata.extra.items() if k not in ("opset", "onnx_exporter")}
        extra.update({"format": self.name, "source": f"onnx-opset{OPSET}", "precision": "f32"})
        metadata = replace(metadata, extra=extra)
        ov_model = core().read_model(str(onnx_path))
        for key, value in metadata.as_strings().items():
            ov_model.set_rt_info(value, [RT_INFO_SECTION, key.removeprefix(f"{RT_INFO_SECTION}.")])
        pin_f32(ov_model)
        xml = Path(out_dir) / f"{metadata.file_stem}.xml"
        ov.save_model(ov_model, str(xml), compress_to_fp16=False)
        files = (xml.with_suffix(".bin"), xml)
        missing = [p for p in files if not p.is_file()]
        if missing:
            raise RuntimeError(f"OpenVINO did not write {', '.join(map(os.fspath, missing))}")
        return ExportedModel(path=xml, format=self.name, metadata=metadata, files=files)

    def run(self, exported: ExportedModel, inputs: np.ndarray) -> np.ndarray:
        from export.openvino.runtime import run_rows

        _import_openvino()
        return run_rows(exported.path, inputs)

    def read_metadata(self, path: Path) -> ModelMetadata:
        from export.openvino.runtime import core

        _import_openvino()
        model = core().read_model(str(path))
        if not model.has_rt_info([RT_INFO_SECTION]):
            raise ValueError(f"{path} carries no hwdiffnas metadata")
        section = model.get_rt_info([RT_INFO_SECTION]).value
        return ModelMetadata.from_strings({f"{RT_INFO_SECTION}.{k}": str(v) for k, v in section.items()})
