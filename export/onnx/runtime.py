"""Running an ONNX file with onnxruntime's CPU execution provider."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime


def cpu_session(path: Path | str, threads: int = 1) -> onnxruntime.InferenceSession:
    """A CPU-EP session with ``threads`` intra-op threads, sequential execution and all graph optimizations."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def run_rows(path: Path | str, inputs: np.ndarray, threads: int = 1) -> np.ndarray:
    """Run a batch-1 model on each row of ``inputs`` (N, C, H, W); returns the stacked outputs (N, ...)."""
    import numpy as np

    sess = cpu_session(path, threads)
    names = [i.name for i in sess.get_inputs()]
    outs = []
    for row in np.asarray(inputs, dtype=np.float32):
        feed = {names[0]: row[None]} if names else {}
        outs.append(sess.run(None, feed)[0])
    return np.concatenate(outs, axis=0)
