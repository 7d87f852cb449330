"""An ONNX file's structure without its weights, read with a protobuf wire-format pass over the file.

Validating an upload by parsing it whole holds the file's bytes, the parsed model and the checker's own copy
at once (about 3× the file). This pass reads the file from disk and copies every field except the large
``raw_data`` payloads of the main graph's initializers, which it skips with a seek after checking that each
one's length is what the tensor's shape and type need. In the copy each skipped tensor keeps its name and type
and gets an empty shape, so ``onnx.checker`` still sees the whole graph while only the structure is in memory.
The runtime later loads the file itself, payloads included.
"""

from __future__ import annotations

import math
from typing import BinaryIO

STRIP_AT_LEAST = 4096  # raw_data payloads this long or longer are checked and skipped
# (message kind, field number) -> kind of the sub-message to copy field by field; other fields are copied whole
_CHILDREN = {("model", 7): "graph", ("graph", 5): "tensor"}  # ModelProto.graph, GraphProto.initializer
_DIMS, _DATA_TYPE, _RAW_DATA = 1, 2, 9  # TensorProto field numbers
_OTHER_DATA = {4, 5, 6, 7, 10, 11}  # float_data, int32_data, string_data, int64_data, double_data, uint64_data
# bytes per element of the fixed-size TensorProto.DataType values
ITEMSIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2,
            17: 1, 18: 1, 19: 1, 20: 1}


class WireError(ValueError):
    """The file is not a well-formed protobuf message (truncated, or a length points past its end)."""


def _varint(f: BinaryIO, end: int) -> int:
    out, shift = 0, 0
    while True:
        if f.tell() >= end:
            raise WireError("truncated varint")
        b = f.read(1)
        if not b:
            raise WireError("truncated varint")
        out |= (b[0] & 0x7F) << shift
        if b[0] < 0x80:
            return out
        shift += 7
        if shift > 63:
            raise WireError("varint longer than 10 bytes")


def _enc(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read(f: BinaryIO, n: int, end: int) -> bytes:
    if f.tell() + n > end:
        raise WireError("a field runs past the end of its message (truncated file?)")
    data = f.read(n)
    if len(data) != n:
        raise WireError("unexpected end of file")
    return data


def _packed(body: bytes) -> list[int]:
    import io

    f = io.BytesIO(body)
    out = []
    while f.tell() < len(body):
        out.append(_varint(f, len(body)))
    return out


def _message(f: BinaryIO, end: int, kind: str) -> bytes:
    pieces: list[tuple[int, bytes]] = []  # (field number, encoded field)
    dims: list[int] = []
    dtype = 0
    skipped: int | None = None
    other_data = False
    while f.tell() < end:
        key = _varint(f, end)
        field, wt = key >> 3, key & 7
        if wt == 0:
            value = _varint(f, end)
            if kind == "tensor" and field == _DIMS:
                dims.append(value)
            elif kind == "tensor" and field == _DATA_TYPE:
                dtype = value
            pieces.append((field, _enc(key) + _enc(value)))
        elif wt in (1, 5):
            pieces.append((field, _enc(key) + _read(f, 8 if wt == 1 else 4, end)))
        elif wt == 2:
            n = _varint(f, end)
            if f.tell() + n > end:
                raise WireError("a field runs past the end of its message (truncated file?)")
            child = _CHILDREN.get((kind, field))
            if child is not None:
                body = _message(f, f.tell() + n, child)
            elif kind == "tensor" and field == _RAW_DATA and n >= STRIP_AT_LEAST and dtype in ITEMSIZE:
                f.seek(n, 1)
                skipped = n
                continue
            else:
                body = _read(f, n, end)
                if kind == "tensor" and field == _DIMS:
                    dims.extend(_packed(body))
            pieces.append((field, _enc(key) + _enc(len(body)) + body))
        else:
            raise WireError(f"wire type {wt} (groups) is not used by ONNX")
        if kind == "tensor" and field in _OTHER_DATA:
            other_data = True
    if skipped is not None:
        _check_payload(skipped, dims, dtype, other_data)
        pieces = [p for p in pieces if p[0] != _DIMS] + [(_DIMS, _enc(_DIMS << 3) + _enc(0))]
    return b"".join(p[1] for p in pieces)


def _check_payload(n: int, dims: list[int], dtype: int, other_data: bool) -> None:
    need = math.prod(dims) * ITEMSIZE[dtype]
    if other_data:
        raise WireError("an initializer holds its values twice (raw_data and a typed field)")
    if n != need:
        raise WireError(f"an initializer's raw_data is {n} bytes; its shape {dims} and type need {need}")


def skeleton(f: BinaryIO, size: int) -> bytes:
    """The serialized ModelProto in ``f`` (``size`` bytes from the start) without its large initializer
    payloads (see the module docstring); raises `WireError` for a malformed file or a payload whose length
    does not match its tensor."""
    f.seek(0)
    return _message(f, size, "model")
