"""Running and timing a TensorRT engine with the Python API on CUDA tensors (torch), timed with CUDA events.

Not run in this project's environment (no NVIDIA GPU, no TensorRT); written against the TensorRT 8.6/10
tensor-address API (``set_tensor_address`` + ``execute_async_v3``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwdiffnas.errors import MissingBackendError

if TYPE_CHECKING:
    import numpy as np


class _Engine:
    """A deserialized engine with one execution context and CUDA buffers for its single input and output."""

    def __init__(self, path: Path | str) -> None:
        try:
            import tensorrt as trt
            import torch
        except ImportError as exc:
            raise MissingBackendError("tensorrt (Python API)", "tensorrt", str(exc)) from exc
        if not torch.cuda.is_available():
            raise MissingBackendError("CUDA GPU", "tensorrt", "torch sees no CUDA device")
        self.torch = torch
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if self.engine is None:
            raise MissingBackendError("a TensorRT runtime matching this engine", "tensorrt",
                                      f"deserializing {path} failed")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        mode = trt.TensorIOMode.INPUT
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == mode]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) != mode]
        self.buffers: dict[str, Any] = {}
        for n in names:
            shape = tuple(self.engine.get_tensor_shape(n))
            self.buffers[n] = torch.empty(shape, dtype=torch.float32, device="cuda")
            self.context.set_tensor_address(n, self.buffers[n].data_ptr())
        self.stream = torch.cuda.Stream()

    def infer(self) -> None:
        self.context.execute_async_v3(self.stream.cuda_stream)


def run_rows(path: Path | str, inputs: np.ndarray) -> np.ndarray:
    """Run the batch-1 engine on each row of ``inputs`` (N, C, H, W) float32; returns (N, classes)."""
    import numpy as np

    e = _Engine(path)
    torch = e.torch
    outs = []
    for row in np.asarray(inputs, dtype=np.float32):
        if e.inputs:
            e.buffers[e.inputs[0]].copy_(torch.from_numpy(row[None]))
        with torch.cuda.stream(e.stream):
            e.infer()
        e.stream.synchronize()
        outs.append(e.buffers[e.outputs[0]].cpu().numpy().reshape(1, -1))
    return np.concatenate(outs, axis=0)


def time_with_cuda_events(path: Path | str, x: np.ndarray, warmup: int, runs: int) -> list[float]:
    """GPU time (ms) of each of ``runs`` inferences after ``warmup`` untimed ones, from CUDA events recorded on
    the inference stream around each ``execute_async_v3``."""
    e = _Engine(path)
    torch = e.torch
    if e.inputs:
        e.buffers[e.inputs[0]].copy_(torch.from_numpy(x))
    with torch.cuda.stream(e.stream):
        for _ in range(warmup):
            e.infer()
        e.stream.synchronize()
        samples = []
        for _ in range(runs):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record(e.stream)
            e.infer()
            end.record(e.stream)
            end.synchronize()
            samples.append(float(start.elapsed_time(end)))
    return samples
