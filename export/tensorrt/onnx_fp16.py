"""fp16 baked into an ONNX graph, for TensorRT builds without precision flags (strongly typed networks,
``trtexec --stronglyTyped``, where ``--fp16`` is ignored and each tensor's type comes from the ONNX file).

Every float32 initializer and ``Constant`` becomes float16, and the graph computes in float16 between a
``Cast`` after the float32 input and a ``Cast`` before the float32 output, so the file keeps the exporters'
interface (``input`` float32 → ``logits`` float32).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose computation is float16 with float32 graph inputs and outputs."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    for i, init in enumerate(g.initializer):
        if init.data_type == TensorProto.FLOAT:
            arr = numpy_helper.to_array(init).astype(np.float16)
            g.initializer[i].CopyFrom(numpy_helper.from_array(arr, init.name))
    for node in g.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                    arr = numpy_helper.to_array(attr.t).astype(np.float16)
                    attr.t.CopyFrom(numpy_helper.from_array(arr, attr.t.name))
        elif node.op_type == "Cast":
            for attr in node.attribute:
                if attr.name == "to" and attr.i == TensorProto.FLOAT:
                    attr.i = TensorProto.FLOAT16
    initializers = {t.name for t in g.initializer}
    casts_in = []
    for inp in g.input:
        if inp.name in initializers or inp.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        half = f"{inp.name}__fp16"
        for node in g.node:
            node.input[:] = [half if x == inp.name else x for x in node.input]
        casts_in.append(helper.make_node("Cast", [inp.name], [half], to=TensorProto.FLOAT16,
                                         name=f"cast_{inp.name}_to_fp16"))
    for out in g.output:
        if out.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        half = f"{out.name}__fp16"
        for node in g.node:
            node.output[:] = [half if x == out.name else x for x in node.output]
            node.input[:] = [half if x == out.name else x for x in node.input]
        g.node.append(helper.make_node("Cast", [half], [out.name], to=TensorProto.FLOAT,
                                       name=f"cast_{out.name}_to_fp32"))
    for node in reversed(casts_in):
        g.node.insert(0, node)
    del g.value_info[:]
    onnx.checker.check_model(m)
    return m
