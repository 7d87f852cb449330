"""A direct torch → TFLite flatbuffer writer for the project's networks (the ``direct`` converter).

It walks the materialized NB201 network (`hwdiffnas.materialize`) and writes the graph a TFLite converter
produces for it: NHWC tensors behind one TRANSPOSE of the NCHW input, BatchNorm folded into the preceding
convolution (bias = BN shift), explicit PAD + VALID convolution where torch pads symmetrically with stride 2,
SAME average pooling (TFLite divides by the valid window, i.e. ``count_include_pad=False``), ADD for node sums,
MUL+ADD(+ReLU) for the final BN, MEAN for global pooling, FULLY_CONNECTED for the head. Macro (MobileNet-block)
networks of the FBNet and NAS-Bench-Macro spaces add DEPTHWISE_CONV_2D, grouped 1×1 convs as SPLIT + CONV_2D +
CONCATENATION, ReLU fused into the convolution, channel shuffle as RESHAPE + TRANSPOSE + RESHAPE and residual
ADD (`export/tflite/macro.py`).

Sub-graphs that do not depend on the input (ops reading a node that holds zeros under the ``zeros`` rule)
are evaluated with torch and stored as constants, which is what a constant-folding converter does. A network
whose output does not depend on its input at all (a disconnected cell) is refused: convert it with
``litert-torch``.

Only the flatbuffer schema of ``ai-edge-litert`` and the ``flatbuffers`` package are needed; no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hwdiffnas.errors import UserError

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

TFLITE_FILE_ID = b"TFL3"
SIGNATURE_KEY = "serving_default"


@dataclass
class _Graph:
    """Growing lists of tensors, buffers, operators and operator codes of one subgraph."""

    schema: Any
    tensors: list[Any] = field(default_factory=list)
    buffers: list[Any] = field(default_factory=list)
    operators: list[Any] = field(default_factory=list)
    codes: dict[int, int] = field(default_factory=dict)  # builtin code -> index into operator_codes
    code_list: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.buffers.append(self.schema.BufferT())  # buffer 0: the empty sentinel

    def tensor(self, name: str, shape: tuple[int, ...], data: np.ndarray | None = None, dtype: str = "float32") -> int:
        """Add a tensor (constant when ``data`` is given); returns its index."""
        import numpy as np

        s = self.schema
        t = s.TensorT()
        t.name = name
        t.shape = np.asarray(shape, dtype=np.int32)
        t.type = s.TensorType.FLOAT32 if dtype == "float32" else s.TensorType.INT32
        if data is None:
            t.buffer = 0
        else:
            buf = s.BufferT()
            arr = np.ascontiguousarray(data, dtype=np.float32 if dtype == "float32" else np.int32)
            assert tuple(arr.shape) == tuple(shape), (name, arr.shape, shape)
            buf.data = np.frombuffer(arr.tobytes(), dtype=np.uint8)
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, code: int, inputs: list[int], outputs: list[int], options_type: int = 0,
           options: Any = None) -> None:
        """Append one builtin operator."""
        import numpy as np

        s = self.schema
        if code not in self.codes:
            oc = s.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.version = 1
            self.codes[code] = len(self.code_list)
            self.code_list.append(oc)
        o = s.OperatorT()
        o.opcodeIndex = self.codes[code]
        o.inputs = np.asarray(inputs, dtype=np.int32)
        o.outputs = np.asarray(outputs, dtype=np.int32)
        o.builtinOptionsType = options_type
        o.builtinOptions = options
        self.operators.append(o)


class _Writer:
    """Emits the operators of one network; node values are tensor indices (live) or numpy constants."""

    def __init__(self, schema: Any) -> None:
        self.s = schema
        self.g = _Graph(schema)
        self.n = 0

    def _name(self, stem: str) -> str:
        self.n += 1
        return f"{stem}_{self.n}"

    # value = ("t", tensor index, NHWC shape) | ("c", NCHW numpy array)
    def relu(self, v: tuple) -> tuple:
        import numpy as np

        if v[0] == "c":
            return ("c", np.maximum(v[1], 0.0))
        out = self.g.tensor(self._name("relu"), v[2])
        self.g.op(self.s.BuiltinOperator.RELU, [v[1]], [out])
        return ("t", out, v[2])

    def conv(self, v: tuple, conv: nn.Conv2d, bn: nn.BatchNorm2d | None, relu: bool = False) -> tuple:
        """Conv2d (+ folded BN, + fused ReLU) of a live value; constants are handled by the caller through torch.

        A depthwise conv (groups = in = out channels) becomes DEPTHWISE_CONV_2D; another grouped conv is split
        along channels into one CONV_2D per group and concatenated, as TFLite converters write it.
        """
        import numpy as np

        s = self.s
        w = conv.weight.detach().double().numpy()  # (O, I/groups, kh, kw)
        bias = np.zeros(w.shape[0])
        if bn is not None:
            scale = bn.weight.detach().double().numpy() / np.sqrt(bn.running_var.detach().double().numpy() + bn.eps)
            w = w * scale[:, None, None, None]
            bias = bn.bias.detach().double().numpy() - bn.running_mean.detach().double().numpy() * scale
        kh, kw = conv.kernel_size
        stride = conv.stride[0]
        pad = conv.padding[0]
        _, h, wd, c = v[2]
        src = v[1]
        if pad and (stride != 1 or 2 * pad != kh - 1):
            padded = (1, h + 2 * pad, wd + 2 * pad, c)
            pads = self.g.tensor(self._name("pads"), (4, 2), np.array([[0, 0], [pad, pad], [pad, pad], [0, 0]]),
                                 dtype="int32")
            out = self.g.tensor(self._name("pad"), padded)
            self.g.op(s.BuiltinOperator.PAD, [src, pads], [out], s.BuiltinOptions.PadOptions, s.PadOptionsT())
            src, h, wd, padding = out, padded[1], padded[2], s.Padding.VALID
            oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
        else:
            padding = s.Padding.SAME if pad else s.Padding.VALID
            oh, ow = ((h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1)
        o = w.shape[0]
        act = s.ActivationFunctionType.RELU if relu else s.ActivationFunctionType.NONE
        out_shape = (1, oh, ow, o)
        groups = conv.groups
        if groups > 1 and groups == c == o:  # depthwise
            filt = self.g.tensor(self._name("dw_filter"), (1, kh, kw, o), w.transpose(1, 2, 3, 0))
            b = self.g.tensor(self._name("bias"), (o,), bias)
            out = self.g.tensor(self._name("dwconv"), out_shape)
            dopt = s.DepthwiseConv2DOptionsT()
            dopt.padding, dopt.strideH, dopt.strideW, dopt.depthMultiplier = padding, stride, stride, 1
            dopt.dilationHFactor = dopt.dilationWFactor = 1
            dopt.fusedActivationFunction = act
            self.g.op(s.BuiltinOperator.DEPTHWISE_CONV_2D, [src, filt, b], [out],
                      s.BuiltinOptions.DepthwiseConv2DOptions, dopt)
            return ("t", out, out_shape)
        parts = [src]
        if groups > 1:
            axis = self.g.tensor(self._name("split_axis"), (1,), np.array([3]), dtype="int32")
            parts = [self.g.tensor(self._name("split"), (1, h, wd, c // groups)) for _ in range(groups)]
            sopt = s.SplitOptionsT()
            sopt.numSplits = groups
            self.g.op(s.BuiltinOperator.SPLIT, [axis, src], parts, s.BuiltinOptions.SplitOptions, sopt)
        outs = []
        per = o // groups
        for gi, part in enumerate(parts):
            wg = w[gi * per:(gi + 1) * per]
            filt = self.g.tensor(self._name("filter"), (per, kh, kw, wg.shape[1]), wg.transpose(0, 2, 3, 1))
            b = self.g.tensor(self._name("bias"), (per,), bias[gi * per:(gi + 1) * per])
            out = self.g.tensor(self._name("conv"), (1, oh, ow, per))
            opt = s.Conv2DOptionsT()
            opt.padding, opt.strideH, opt.strideW = padding, stride, stride
            opt.dilationHFactor = opt.dilationWFactor = 1
            opt.fusedActivationFunction = act
            self.g.op(s.BuiltinOperator.CONV_2D, [part, filt, b], [out], s.BuiltinOptions.Conv2DOptions, opt)
            outs.append(out)
        if groups == 1:
            return ("t", outs[0], out_shape)
        out = self.g.tensor(self._name("concat"), out_shape)
        copt = s.ConcatenationOptionsT()
        copt.axis = 3
        copt.fusedActivationFunction = s.ActivationFunctionType.NONE
        self.g.op(s.BuiltinOperator.CONCATENATION, outs, [out], s.BuiltinOptions.ConcatenationOptions, copt)
        return ("t", out, out_shape)

    def channel_shuffle(self, v: tuple, groups: int) -> tuple:
        """torch's ChannelShuffle in NHWC: reshape (…, g, C/g), swap the last two axes, reshape back."""
        import numpy as np

        s = self.s
        _, h, w, c = v[2]
        split = (1, h, w, groups, c // groups)
        a = self.g.tensor(self._name("shuffle_in"), split)
        shape5 = self.g.tensor(self._name("shape"), (5,), np.array(split), dtype="int32")
        self.g.op(s.BuiltinOperator.RESHAPE, [v[1], shape5], [a], s.BuiltinOptions.ReshapeOptions,
                  s.ReshapeOptionsT())
        perm = self.g.tensor(self._name("perm"), (5,), np.array([0, 1, 2, 4, 3]), dtype="int32")
        b = self.g.tensor(self._name("shuffled"), (1, h, w, c // groups, groups))
        self.g.op(s.BuiltinOperator.TRANSPOSE, [a, perm], [b], s.BuiltinOptions.TransposeOptions,
                  s.TransposeOptionsT())
        shape4 = self.g.tensor(self._name("shape"), (4,), np.array(v[2]), dtype="int32")
        out = self.g.tensor(self._name("shuffle_out"), v[2])
        self.g.op(s.BuiltinOperator.RESHAPE, [b, shape4], [out], s.BuiltinOptions.ReshapeOptions,
                  s.ReshapeOptionsT())
        return ("t", out, v[2])

    def avg_pool(self, v: tuple, k: int, stride: int, same: bool) -> tuple:
        s = self.s
        _, h, w, c = v[2]
        oh, ow = ((h + stride - 1) // stride, (w + stride - 1) // stride) if same else \
            ((h - k) // stride + 1, (w - k) // stride + 1)
        out = self.g.tensor(self._name("avgpool"), (1, oh, ow, c))
        opt = s.Pool2DOptionsT()
        opt.padding = s.Padding.SAME if same else s.Padding.VALID
        opt.strideH = opt.strideW = stride
        opt.filterHeight = opt.filterWidth = k
        opt.fusedActivationFunction = s.ActivationFunctionType.NONE
        self.g.op(s.BuiltinOperator.AVERAGE_POOL_2D, [v[1]], [out], s.BuiltinOptions.Pool2DOptions, opt)
        return ("t", out, (1, oh, ow, c))

    def add(self, a: tuple, b: tuple, relu: bool = False) -> tuple:
        """Sum of two values; a constant operand becomes a constant tensor (per channel when uniform)."""
        import numpy as np

        s = self.s
        if a[0] == "c" and b[0] == "c":
            return ("c", np.maximum(a[1] + b[1], 0.0) if relu else a[1] + b[1])
        if a[0] == "c":
            a, b = b, a
        if b[0] == "c":
            const = b[1]  # (1, C, H, W)
            if not np.any(const):
                return self.relu(a) if relu else a
            flat = const[0]
            if np.all(flat == flat[:, :1, :1]):
                bt = self.g.tensor(self._name("const"), (flat.shape[0],), flat[:, 0, 0])
            else:
                bt = self.g.tensor(self._name("const"), a[2], const.transpose(0, 2, 3, 1))
            other = bt
        else:
            other = b[1]
        out = self.g.tensor(self._name("add"), a[2])
        opt = s.AddOptionsT()
        opt.fusedActivationFunction = s.ActivationFunctionType.RELU if relu else s.ActivationFunctionType.NONE
        self.g.op(s.BuiltinOperator.ADD, [a[1], other], [out], s.BuiltinOptions.AddOptions, opt)
        return ("t", out, a[2])


def _const_eval(module: nn.Module, value: np.ndarray) -> np.ndarray:
    """Run ``module`` on a constant NCHW array with torch (float64 for exactness of folding)."""
    import copy

    import torch

    m = copy.deepcopy(module).double().eval()
    with torch.no_grad():
        return m(torch.from_numpy(value).double()).numpy()


def _edge(w: _Writer, op_module: nn.Module, v: tuple) -> tuple:
    """Apply one cell edge op (Identity, AvgPool2d or ReLU-Conv-BN) to a value."""
    from torch import nn

    if v[0] == "c":
        return ("c", _const_eval(op_module, v[1]))
    if isinstance(op_module, nn.Identity):
        return v
    if isinstance(op_module, nn.AvgPool2d):
        return w.avg_pool(v, 3, 1, same=True)
    relu, conv, bn = op_module[0], op_module[1], op_module[2]
    assert isinstance(relu, nn.ReLU) and isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
    return w.conv(w.relu(v), conv, bn)


def _cell(w: _Writer, cell: nn.Module, x: tuple, shape_nchw: tuple[int, ...]) -> tuple:
    """One SearchCell: node j = Σ op(node i) over its built incoming edges (see materialize.py)."""
    import numpy as np
    from torch import nn

    nodes: list[tuple | None] = [x]
    relu_cache: dict[int, tuple] = {}
    for j in range(1, len(cell.incoming)):
        acc: tuple | None = None
        for key, src in cell.incoming[j]:
            inp = nodes[src]
            if inp is None:
                inp = ("c", np.zeros(shape_nchw))
            op_module = cell.edges[key]
            if inp[0] == "t" and isinstance(op_module, nn.Sequential):  # ReLU-Conv-BN: one RELU per source
                if src not in relu_cache:
                    relu_cache[src] = w.relu(inp)
                y = w.conv(relu_cache[src], op_module[1], op_module[2])
            else:
                y = _edge(w, op_module, inp)
            acc = y if acc is None else w.add(acc, y)
        nodes.append(acc)
    out = nodes[-1]
    return ("c", np.zeros(shape_nchw)) if out is None else out


def _dead_code_eliminated(g: _Graph, inputs: list[int], outputs: list[int]) -> tuple[list, list, list, list[int]]:
    """Drop operators whose results never reach ``outputs`` (ops on a path that ends in a `none` edge) and
    the tensors and buffers only they used, as a converter's dead-code elimination does; returns the kept
    tensors, operators and buffers and the new indices of ``inputs + outputs``."""
    import numpy as np

    needed = set(outputs)
    kept_ops = []
    for op in reversed(g.operators):
        if any(int(o) in needed for o in op.outputs):
            kept_ops.append(op)
            needed.update(int(i) for i in op.inputs)
    kept_ops.reverse()
    keep = sorted(needed | set(inputs))
    new_index = {old: new for new, old in enumerate(keep)}
    tensors = [g.tensors[i] for i in keep]
    buffer_ids = sorted({0} | {t.buffer for t in tensors})
    new_buffer = {old: new for new, old in enumerate(buffer_ids)}
    for t in tensors:
        t.buffer = new_buffer[t.buffer]
    for op in kept_ops:
        op.inputs = np.asarray([new_index[int(i)] for i in op.inputs], dtype=np.int32)
        op.outputs = np.asarray([new_index[int(o)] for o in op.outputs], dtype=np.int32)
    return tensors, kept_ops, [g.buffers[b] for b in buffer_ids], [new_index[i] for i in inputs + outputs]


def is_macro_network(model: nn.Module) -> bool:
    """Whether ``model`` is a macro (MobileNet-block) network of the project's spaces: a Sequential of stem,
    layers, head, global pool, flatten and classifier."""
    from torch import nn

    kinds = (nn.Sequential, nn.Sequential, nn.Sequential, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Linear)
    return isinstance(model, nn.Sequential) and len(model) == len(kinds) and all(
        isinstance(m, k) for m, k in zip(model, kinds))


def build_tflite(model: nn.Module, input_shape: tuple[int, int, int, int]) -> bytes:
    """Serialize ``model`` as TFLite bytes: an NB201 network (`hwdiffnas.materialize.build_network`) or a macro
    network of the FBNet / NAS-Bench-Macro spaces (see `is_macro_network`)."""
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    nb201 = all(hasattr(model, a) for a in ("stem", "cells", "lastact", "classifier"))
    if not nb201 and not is_macro_network(model):
        raise UserError("the direct TFLite converter handles the project's NB201, FBNet and NAS-Bench-Macro "
                        "networks only; use --converter litert-torch for other models")
    s = schema
    w = _Writer(schema)
    n, c, h, wd = input_shape
    if n != 1:
        raise UserError(f"the direct TFLite converter writes batch-1 models; got input shape {input_shape}")
    inp = w.g.tensor("input", (n, c, h, wd))
    perm = w.g.tensor("perm_nchw_to_nhwc", (4,), np.array([0, 2, 3, 1]), dtype="int32")
    nhwc = w.g.tensor("input_nhwc", (n, h, wd, c))
    w.g.op(s.BuiltinOperator.TRANSPOSE, [inp, perm], [nhwc], s.BuiltinOptions.TransposeOptions, s.TransposeOptionsT())
    v: tuple = ("t", nhwc, (n, h, wd, c))
    if nb201:
        v = _nb201_features(w, model, v)
        fc = model.classifier
    else:
        from export.tflite.macro import macro_features

        v = macro_features(w, model, v)
        fc = model[-1]
    shape = v[2]
    axes = w.g.tensor("mean_axes", (2,), np.array([1, 2]), dtype="int32")
    pooled = w.g.tensor("global_pool", (1, shape[3]))
    ro = s.ReducerOptionsT()
    ro.keepDims = False
    w.g.op(s.BuiltinOperator.MEAN, [v[1], axes], [pooled], s.BuiltinOptions.ReducerOptions, ro)
    fw = w.g.tensor("fc_weight", tuple(fc.weight.shape), fc.weight.detach().numpy())
    fb = w.g.tensor("fc_bias", tuple(fc.bias.shape), fc.bias.detach().numpy())
    logits = w.g.tensor("logits", (1, fc.out_features))
    fo = s.FullyConnectedOptionsT()
    fo.fusedActivationFunction = s.ActivationFunctionType.NONE
    w.g.op(s.BuiltinOperator.FULLY_CONNECTED, [pooled, fw, fb], [logits], s.BuiltinOptions.FullyConnectedOptions,
           fo)

    tensors, operators, buffers, (inp, logits) = _dead_code_eliminated(w.g, [inp], [logits])
    sub = s.SubGraphT()
    sub.tensors, sub.operators, sub.name = tensors, operators, "main"
    sub.inputs = np.asarray([inp], dtype=np.int32)
    sub.outputs = np.asarray([logits], dtype=np.int32)
    sig = s.SignatureDefT()
    sig.signatureKey, sig.subgraphIndex = SIGNATURE_KEY, 0
    sig.inputs, sig.outputs = [s.TensorMapT()], [s.TensorMapT()]
    sig.inputs[0].name, sig.inputs[0].tensorIndex = "input", inp
    sig.outputs[0].name, sig.outputs[0].tensorIndex = "logits", logits
    m = s.ModelT()
    m.signatureDefs = [sig]
    m.version = 3
    m.description = "hwdiffnas direct converter"
    m.operatorCodes, m.subgraphs, m.buffers = w.g.code_list, [sub], buffers
    import flatbuffers

    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(m.Pack(builder), file_identifier=TFLITE_FILE_ID)
    return bytes(builder.Output())


def _nb201_features(w: _Writer, model: nn.Module, v: tuple) -> tuple:
    """Stem, cells, ResNet blocks and the final BN+ReLU of an NB201 network (the value entering the pool)."""
    import numpy as np

    s = w.s
    v = w.conv(v, model.stem[0], model.stem[1])
    for block in model.cells:
        _, hh, ww, cc = v[2] if v[0] == "t" else (None, *v[1].shape[2:], v[1].shape[1])
        if hasattr(block, "incoming"):
            v = _cell(w, block, v, (1, cc, hh, ww))
        else:  # ResNet basic block between stages
            if v[0] == "c":
                v = ("c", _const_eval(block, v[1]))
                continue
            a = w.conv(w.relu(v), block.conv_a[1], block.conv_a[2])
            b = w.conv(w.relu(a), block.conv_b[1], block.conv_b[2])
            d = w.avg_pool(v, 2, 2, same=False)
            d = w.conv(d, block.downsample[1], None)
            v = w.add(d, b)
    if v[0] == "c":
        raise UserError("this network's output does not depend on its input (disconnected cell); the direct "
                        "TFLite converter refuses it: use --converter litert-torch")
    bn = model.lastact[0]
    scale = (bn.weight.detach().double() / (bn.running_var.detach().double() + bn.eps).sqrt()).numpy()
    shift = bn.bias.detach().double().numpy() - bn.running_mean.detach().double().numpy() * scale
    shape = v[2]
    mul_c = w.g.tensor("bn_scale", (shape[3],), scale)
    mul_out = w.g.tensor("bn_mul", shape)
    opt = s.MulOptionsT()
    opt.fusedActivationFunction = s.ActivationFunctionType.NONE
    w.g.op(s.BuiltinOperator.MUL, [v[1], mul_c], [mul_out], s.BuiltinOptions.MulOptions, opt)
    return w.add(("t", mul_out, shape), ("c", shift.reshape(1, -1, 1, 1) * np.ones((1, 1, shape[1], shape[2]))),
                 relu=True)


def add_metadata(tflite: bytes, entries: dict[str, bytes]) -> bytes:
    """Return ``tflite`` with named metadata buffers added (replacing entries of the same name)."""
    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as s

    m = s.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    if any(getattr(b, "offset", 0) > 1 for b in m.buffers or []):
        raise ValueError("this TFLite model stores buffers after the flatbuffer (offset/size); repacking it "
                         "would drop them")
    m.metadata = [md for md in (m.metadata or []) if md.name.decode() not in entries] if m.metadata else []
    for name, data in entries.items():
        buf = s.BufferT()
        buf.data = np.frombuffer(data, dtype=np.uint8)
        m.buffers.append(buf)
        md = s.MetadataT()
        md.name = name
        md.buffer = len(m.buffers) - 1
        m.metadata.append(md)
    builder = flatbuffers.Builder(len(tflite) + 4096)
    builder.Finish(m.Pack(builder), file_identifier=TFLITE_FILE_ID)
    return bytes(builder.Output())


def read_metadata(tflite: bytes) -> dict[str, bytes]:
    """Named metadata buffers of a TFLite model."""
    from ai_edge_litert import schema_py_generated as s

    m = s.Model.GetRootAs(tflite, 0)
    out: dict[str, bytes] = {}
    for i in range(m.MetadataLength()):
        md = m.Metadata(i)
        name = md.Name().decode()
        buf = m.Buffers(md.Buffer())
        out[name] = buf.DataAsNumpy().tobytes() if buf.DataLength() else b""
    return out


def operator_counts(tflite: bytes) -> dict[str, int]:
    """How many operators of each builtin kind the model's main subgraph holds."""
    from ai_edge_litert import schema_py_generated as s

    names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    m = s.Model.GetRootAs(tflite, 0)
    sub = m.Subgraphs(0)
    out: dict[str, int] = {}
    for i in range(sub.OperatorsLength()):
        code = m.OperatorCodes(sub.Operators(i).OpcodeIndex())
        b = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        out[names.get(b, str(b))] = out.get(names.get(b, str(b)), 0) + 1
    return out
