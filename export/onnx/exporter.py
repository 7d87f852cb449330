"""Torch → ONNX with a fixed batch-1 input, pinned opset, checker and metadata_props.

Two torch exporters are available: the TorchScript-based one (``dynamo=False``, the default here) and the
``torch.export``-based one (``dynamo=True``, needs the ``dynamo`` extra for onnxscript). On NB201 networks the
TorchScript exporter is an order of magnitude faster (numbers in docs/benchmarks.md), both give numerically
equivalent graphs, and it keeps onnxscript out of the core dependencies.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwdiffnas.errors import MissingBackendError
from hwdiffnas.interfaces import ExportedModel, Exporter, ModelMetadata, modules_importable

if TYPE_CHECKING:
    import numpy as np
    import onnx
    from torch import nn

OPSET = 17
"""Opset of the TorchScript exporter: supported by onnxruntime, OpenVINO, TensorRT ≥ 8.6 and onnx2tf."""
OPSET_DYNAMO = 18
"""The dynamo exporter's lowest opset."""
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def torch_to_onnx(model: nn.Module, example_input: Any, metadata: ModelMetadata, *, dynamo: bool = False,
                  opset: int | None = None) -> onnx.ModelProto:
    """Export ``model`` at the shape of ``example_input`` into a checked ONNX model carrying ``metadata``.

    The graph always declares the input, even when the network ignores it (a cell without an input→output
    path makes the whole network a constant, and the exporter would otherwise drop the input).
    """
    import onnx
    import torch

    opset = opset or (OPSET_DYNAMO if dynamo else OPSET)
    model = model.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if dynamo:
            try:
                import onnxscript  # noqa: F401
            except ImportError as exc:
                raise MissingBackendError("onnxscript (the dynamo ONNX exporter)", "dynamo", str(exc)) from exc
            # its op registry logs one warning per missing torchvision op; not relevant to these networks
            logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
            program = torch.onnx.export(model, (example_input,), dynamo=True, opset_version=opset,
                                        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                        external_data=False, verbose=False, optimize=True)
            proto = program.model_proto
        else:
            buf = io.BytesIO()
            torch.onnx.export(model, (example_input,), buf, dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], do_constant_folding=True)
            proto = onnx.load_from_string(buf.getvalue())
    _ensure_input(proto, tuple(example_input.shape))
    constant_operands_last(proto)
    del proto.metadata_props[:]
    for key, value in metadata.as_strings().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _ensure_input(proto: onnx.ModelProto, shape: tuple[int, ...]) -> None:
    from onnx import TensorProto, helper

    initializers = {t.name for t in proto.graph.initializer}
    if not any(i.name not in initializers for i in proto.graph.input):
        proto.graph.input.insert(0, helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, list(shape)))


def constant_operands_last(proto: onnx.ModelProto) -> int:
    """Reorder the operands of ``Add`` nodes so that a constant-derived operand comes second; returns the
    number of nodes changed.

    Exact (addition is commutative) and needed: OpenVINO's CPU plug-in (seen with 2026.4) folds a constant
    subgraph such as ``AveragePool(zeros)`` -- what the zeros dead-node rule produces -- and then computes
    ``Add(folded constant, x)`` in place into the constant's buffer, so every inference after the first returns
    wrong logits. With the constant second the result is correct.
    """
    graph = proto.graph
    constant = {t.name for t in graph.initializer}
    changed = 0
    for node in graph.node:  # nodes are topologically sorted
        if node.op_type == "Constant" or (node.input and all(i in constant for i in node.input if i)):
            constant.update(node.output)
        elif node.op_type == "Add" and len(node.input) == 2:
            a, b = node.input
            if a in constant and b not in constant:
                node.input[0], node.input[1] = b, a
                changed += 1
    return changed


def read_onnx_metadata(path: Path) -> ModelMetadata:
    """The `ModelMetadata` stored in an ONNX file's metadata_props."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return ModelMetadata.from_strings({p.key: p.value for p in proto.metadata_props})


class OnnxExporter(Exporter):
    """ONNX file (opset 17, fixed batch-1 input), run back with onnxruntime's CPU execution provider."""

    name = "onnx"
    extra = ""
    description = "ONNX (torch.onnx TorchScript exporter, opset 17), validated with onnxruntime CPU"

    def __init__(self, dynamo: bool = False, opset: int | None = None) -> None:
        self.dynamo = dynamo
        self.opset = opset or (OPSET_DYNAMO if dynamo else OPSET)

    def available(self) -> tuple[bool, str]:
        ok, why = modules_importable(("onnx", "onnxruntime"))
        if ok and self.dynamo:
            ok, why = modules_importable(("onnxscript",))
            why = f"{why} (pip install 'hwdiffnas[dynamo]')" if not ok else why
        return ok, why

    def export(self, model: nn.Module, example_input: Any, out_dir: Path, metadata: ModelMetadata) -> ExportedModel:
        import onnx

        extra = {**metadata.extra, "format": self.name, "opset": str(self.opset),
                 "onnx_exporter": "dynamo" if self.dynamo else "torchscript"}
        metadata = replace(metadata, extra=extra)
        proto = torch_to_onnx(model, example_input, metadata, dynamo=self.dynamo, opset=self.opset)
        path = Path(out_dir) / f"{metadata.file_stem}.onnx"
        onnx.save_model(proto, str(path))
        return ExportedModel(path=path, format=self.name, metadata=metadata, files=(path,))

    def run(self, exported: ExportedModel, inputs: np.ndarray) -> np.ndarray:
        from export.onnx.runtime import run_rows

        return run_rows(exported.path, inputs)

    def read_metadata(self, path: Path) -> ModelMetadata:
        return read_onnx_metadata(path)
