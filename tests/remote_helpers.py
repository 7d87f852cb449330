"""Helpers shared by the on-device profiling tests: tiny ONNX models and a running agent process."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "hwdiffnas"]


def onnx_model(channels: int = 4, size: int = 8, layers: int = 1) -> bytes:
    """A small valid ONNX classifier: ``layers`` × (Conv3x3 → Relu), GlobalAveragePool, Flatten."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits = [], []
    prev, cin = "input", 3
    for i in range(layers):
        w = numpy_helper.from_array(rng.standard_normal((channels, cin, 3, 3)).astype(np.float32), f"w{i}")
        inits.append(w)
        nodes.append(helper.make_node("Conv", [prev, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        prev, cin = f"r{i}", channels
    nodes.append(helper.make_node("GlobalAveragePool", [prev], ["g"]))
    nodes.append(helper.make_node("Flatten", ["g"], ["logits"]))
    graph = helper.make_graph(nodes, "tiny",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, channels])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def onnx_weights_model(mb: float) -> bytes:
    """A valid ONNX model whose size is mostly one ``mb`` MiB MatMul weight (stored as raw_data)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    cols = int(mb * 1024 * 1024) // (4 * 3072)
    w = numpy_helper.from_array(np.ones((3072, cols), dtype=np.float32), "w")
    nodes = [helper.make_node("Flatten", ["X"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["Y"])]
    graph = helper.make_graph(nodes, "big", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, cols])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def vm_kib(pid: int, key: str) -> int:
    """A ``/proc/PID/status`` field in KiB (e.g. ``VmHWM``, the peak resident set size)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def write_token(folder: Path) -> tuple[Path, str]:
    token = secrets.token_urlsafe(24)
    path = folder / "token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path, token


class AgentProcess:
    """``hwdiffnas agent serve`` on 127.0.0.1 with a free port, started in a subprocess."""

    def __init__(self, workdir: Path, token_file: Path, *extra: str, timeout_s: float = 120.0) -> None:
        self.workdir = workdir
        argv = [*CLI, "agent", "serve", "--host", "127.0.0.1", "--port", "0",
                "--token-file", str(token_file), "--workdir", str(workdir), *extra]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
                                     cwd=str(workdir.parent))
        deadline = time.monotonic() + timeout_s
        lines = []
        assert self.proc.stderr is not None
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if m:
                self.url = m.group(1)
                return
        self.proc.kill()
        raise RuntimeError("agent did not start:\n" + "".join(lines))

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def request(url: str, method: str = "GET", body: bytes | None = None, token: str | None = None,
            timeout_s: float = 120.0) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of one request."""
    req = urllib.request.Request(url, data=body, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
