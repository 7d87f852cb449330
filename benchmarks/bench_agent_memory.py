"""The profiling agent's memory while it receives and validates one upload near its size limit.

    .venv/bin/python benchmarks/bench_agent_memory.py --out benchmarks/results/remote

Starts an agent with its default limits (64 MiB uploads), sends one small model (so imports and the worker
are warm), then one valid ONNX model of ``--mb`` MiB (a single MatMul weight) and reports how far the agent
process's peak RSS (``VmHWM`` in /proc/PID/status) rose, in MiB and as a multiple of the upload's size. The
worker, which loads the model to time it, is a separate process and not counted. Writes ``memory.json``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from agent_process import start_agent

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from remote_helpers import onnx_weights_model, vm_kib  # noqa: E402 - the tests' model builders


def post(url: str, body: bytes, token: str) -> int:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/remote"))
    ap.add_argument("--mb", type=float, default=60.0, help="size of the big upload (MiB; the limit is 64)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="hwd-mem-"))
    agent, url = start_agent(work / "token", work / "agent")
    token = (work / "token").read_text().strip()
    try:
        assert post(f"{url}/profile?runs=1&warmup=0", onnx_weights_model(1), token) == 200
        time.sleep(0.5)
        model = onnx_weights_model(args.mb)
        rss0, hwm0 = vm_kib(agent.pid, "VmRSS"), vm_kib(agent.pid, "VmHWM")
        t0 = time.monotonic()
        status = post(f"{url}/profile?runs=1&warmup=0", model, token)
        seconds = time.monotonic() - t0
        hwm1 = vm_kib(agent.pid, "VmHWM")
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(120)
    size_mib = len(model) / 2**20
    grown = (hwm1 - hwm0) / 1024
    out = {"upload_mib": round(size_mib, 1), "status": status, "seconds": round(seconds, 2),
           "agent_rss_before_mib": round(rss0 / 1024, 1), "agent_peak_before_mib": round(hwm0 / 1024, 1),
           "agent_peak_after_mib": round(hwm1 / 1024, 1), "peak_growth_mib": round(grown, 1),
           "peak_growth_x_upload": round(grown / size_mib, 2),
           "peak_x_upload": round((hwm1 / 1024 - rss0 / 1024) / size_mib, 2)}
    (args.out / "memory.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
