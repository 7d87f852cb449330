"""Checks an uploaded model file before any runtime touches it.

Rules: the file is read as bytes and recognized by its own structure, never by the name the client gave;
nothing is unpickled, ever. ONNX files are parsed as protobuf (which executes nothing), must pass
``onnx.checker`` and must not reference external data files (which would let a model read arbitrary paths).
TFLite files must carry the ``TFL3`` flatbuffer identifier and a plausible root table.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SUFFIX = {"onnx": ".onnx", "tflite": ".tflite"}
FORMATS: tuple[str, ...] = tuple(SUFFIX)


class ModelRejected(ValueError):
    """The uploaded bytes are not an acceptable model; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ModelCheck:
    """What validation learned about an accepted model."""

    format: str
    input_shape: tuple[int, ...]
    metadata: dict[str, str]
    size_bytes: int


def check_name(name: str) -> str:
    """Accept a client-supplied file name only if it is a plain name (no separators, no leading dot)."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or ".." in name:
        raise ModelRejected(f"invalid model name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
                            "not starting with '.' and without '..' or path separators", status=400)
    return name


def sniff_foreign(data: bytes) -> str | None:
    """Name the kind of a file that is clearly not a model (pickle, zip/torch, script, ...), else None."""
    head = data[:8]
    if head[:1] == b"\x80" and len(head) > 1 and 1 <= head[1] <= 5:
        return "a Python pickle"
    if head[:2] == b"PK":
        return "a zip archive (e.g. a torch checkpoint, which holds pickles)"
    if head[:2] == b"#!" or head[:5].lower() in (b"<?xml", b"<html"):
        return "a script or markup file"
    if head[:4] == b"\x7fELF":
        return "an executable"
    if head[:6] == b"\x93NUMPY":
        return "a numpy array"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "an HDF5 file"
    return None


def validate_model(data: bytes, fmt: str, max_bytes: int) -> ModelCheck:
    """Validate ``data`` as a model of format ``fmt``; raises `ModelRejected` with a reason."""
    import io

    return validate_stream(io.BytesIO(data), len(data), fmt, max_bytes)


def validate_file(path: Path, fmt: str, max_bytes: int) -> ModelCheck:
    """Validate the model file at ``path`` without loading its weights (see `hwdiffnas.remote.onnxwire`)."""
    with open(path, "rb") as fh:
        return validate_stream(fh, path.stat().st_size, fmt, max_bytes)


def validate_stream(f: BinaryIO, size: int, fmt: str, max_bytes: int) -> ModelCheck:
    """Validate the ``size`` bytes of the seekable binary file ``f`` as a model of format ``fmt``."""
    if fmt not in SUFFIX:
        raise ModelRejected(f"unsupported model format {fmt!r}; accepted: {', '.join(FORMATS)}", status=415)
    if size > max_bytes:
        raise ModelRejected(f"model is {size} bytes, over the limit of {max_bytes}", status=413)
    if size < 16:
        raise ModelRejected(f"model is only {size} bytes: truncated or empty")
    f.seek(0)
    head = f.read(16)
    foreign = sniff_foreign(head)
    if foreign:
        raise ModelRejected(f"upload is {foreign}, not a {fmt} model; refused")
    if fmt == "onnx":
        return _validate_onnx(f, size)
    return _validate_tflite(f, head, size)


def _all_tensors(model: Any) -> Iterator[Any]:
    """Every TensorProto of a model: initializers, sparse tensors and node attributes, in every subgraph and
    function."""
    def of_nodes(nodes: Any) -> Iterator[Any]:
        for node in nodes:
            for a in node.attribute:
                if a.HasField("t"):
                    yield a.t
                yield from a.tensors
                for sp in ([a.sparse_tensor] if a.HasField("sparse_tensor") else []) + list(a.sparse_tensors):
                    yield from (sp.values, sp.indices)
                for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                    yield from of_graph(g)

    def of_graph(graph: Any) -> Iterator[Any]:
        yield from graph.initializer
        for sp in graph.sparse_initializer:
            yield from (sp.values, sp.indices)
        yield from of_nodes(graph.node)

    yield from of_graph(model.graph)
    for fn in model.functions:
        yield from of_nodes(fn.node)


def _validate_onnx(f: BinaryIO, size: int) -> ModelCheck:
    import onnx
    from google.protobuf.message import DecodeError

    from hwdiffnas.remote.onnxwire import WireError, skeleton

    model = onnx.ModelProto()
    try:
        model.ParseFromString(skeleton(f, size))
    except (WireError, DecodeError, ValueError, RuntimeError) as exc:
        raise ModelRejected(f"not a readable ONNX protobuf (truncated or corrupt): {exc}") from exc
    if not model.graph.node or not model.graph.input or not model.graph.output or model.ir_version <= 0:
        raise ModelRejected("not an ONNX model: no graph, inputs or outputs (truncated or another file type)")
    # before the checker, which looks for external files relative to the current folder: the answer must not
    # depend on whether a file of that name happens to exist there
    if any(t.data_location == onnx.TensorProto.EXTERNAL or t.external_data for t in _all_tensors(model)):
        raise ModelRejected("ONNX models with external data files are refused (they name paths to read)")
    try:
        onnx.checker.check_model(model, full_check=False)
    except (onnx.checker.ValidationError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelRejected(f"ONNX checker rejected the model: {first}") from exc
    init_names = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init_names]
    if len(inputs) != 1:
        raise ModelRejected(f"expected one graph input, found {len(inputs)}")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in dims)
    if not shape or any(s > 4096 for s in shape) or _prod(shape) > 64 * 1024 * 1024:
        raise ModelRejected(f"implausible input shape {shape}")
    meta = {p.key: p.value for p in model.metadata_props}
    return ModelCheck("onnx", shape, meta, size)


def _validate_tflite(f: BinaryIO, head: bytes, size: int) -> ModelCheck:
    if head[4:8] != b"TFL3":
        raise ModelRejected("not a TFLite model: missing the 'TFL3' flatbuffer identifier")
    (root,) = struct.unpack_from("<I", head, 0)
    if root < 8 or root + 4 > size:
        raise ModelRejected("TFLite flatbuffer root offset points outside the file (truncated)")
    f.seek(root)
    (vt_off,) = struct.unpack("<i", f.read(4))
    vtable = root - vt_off
    if vtable < 0 or vtable + 4 > size:
        raise ModelRejected("TFLite flatbuffer vtable points outside the file (truncated)")
    return ModelCheck("tflite", (), {}, size)


def _prod(xs: tuple[int, ...]) -> int:
    out = 1
    for x in xs:
        out *= x
    return out


def safe_child(root: Path, name: str) -> Path:
    """``root / name`` for a checked plain name, verified to stay inside ``root``."""
    check_name(name)
    path = (root / name).resolve()
    if path.parent != root.resolve():
        raise ModelRejected(f"name {name!r} escapes the work directory", status=400)
    return path
