"""Compiling and running OpenVINO models on the CPU plug-in with f32 inference pinned.

OpenVINO's CPU plug-in defaults to bf16 inference on CPUs with AMX/AVX512-BF16; every compile here pins
``INFERENCE_PRECISION_HINT = f32`` so results and latencies are those of the f32 network.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import openvino


@cache
def core() -> openvino.Core:
    """One shared OpenVINO runtime core."""
    import openvino as ov

    return ov.Core()


def cpu_config(threads: int = 1, latency_hint: bool = True) -> dict[str, Any]:
    """CPU compile properties: f32 precision, ``threads`` inference threads, one stream, latency hint."""
    cfg: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": int(threads),
                           "NUM_STREAMS": 1}
    if latency_hint:
        cfg["PERFORMANCE_HINT"] = "LATENCY"
    return cfg


def compile_cpu(model: Path | str | openvino.Model, threads: int = 1) -> openvino.CompiledModel:
    """Compile an IR file (or in-memory model) for the CPU plug-in with `cpu_config`."""
    src = str(model) if isinstance(model, (str, Path)) else model
    return core().compile_model(src, "CPU", cpu_config(threads))


def run_rows(path: Path | str, inputs: np.ndarray, threads: int = 1) -> np.ndarray:
    """Run a batch-1 IR on each row of ``inputs`` (N, C, H, W); returns the stacked outputs (N, ...)."""
    import numpy as np

    compiled = compile_cpu(path, threads)
    request = compiled.create_infer_request()
    has_input = len(compiled.inputs) > 0
    outs = []
    for row in np.asarray(inputs, dtype=np.float32):
        request.infer({0: row[None]} if has_input else {})
        outs.append(np.array(request.get_output_tensor(0).data, copy=True))
    return np.concatenate(outs, axis=0)
