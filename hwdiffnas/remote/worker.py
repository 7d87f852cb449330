"""The measurement worker: a child process that times one model at a time with a profiler plug-in.

The agent keeps one worker alive and sends it one JSON request per line on stdin; each answer is one JSON
line on the worker's original stdout (anything a runtime prints is sent to stderr instead). Killing the worker
is how the agent enforces its per-job timeout. ``--once`` runs a single measurement from the command line and
prints the JSON answer; the SSH transport runs that on hosts where hwdiffnas is installed.

Request: ``{"op": "profile", "model": PATH, "format": "onnx", "runtime": "onnxruntime", "warmup": 10,
"runs": 50, "threads": 1, "precision": "fp32", "input_shape": [1, 3, 32, 32], "metadata": {...}}`` or
``{"op": "health"}``. Answer: ``{"ok": true, "stats": {...}}`` / ``{"ok": true, "runtimes": {...}}`` or
``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

_PROFILERS: dict[str, Any] = {}


def runtimes_info() -> dict[str, dict[str, Any]]:
    """Every installed profiler plug-in: whether it works here, its version and the model format it loads."""
    from hwdiffnas.plugins import get_profiler, profiler_names

    out: dict[str, dict[str, Any]] = {}
    for name in profiler_names():
        try:
            prof = get_profiler(name)
            ok, why = prof.available()
            version = prof.version() if ok else ""
            out[name] = {"available": bool(ok), "version": version, "model_format": prof.model_format,
                         "precisions": list(prof.precisions), "reason": why}
        except Exception as exc:  # a broken plug-in must not take the health report down
            out[name] = {"available": False, "version": "", "model_format": "", "reason": str(exc)}
    return out


def profile_file(req: dict[str, Any]) -> dict[str, Any]:
    """Time the model file named in ``req`` with the requested runtime; returns LatencyStats as a dict."""
    from hwdiffnas.interfaces import ExportedModel, ModelMetadata, ProfileSettings, cpu_pinning
    from hwdiffnas.plugins import get_profiler

    runtime = str(req["runtime"])
    if runtime not in _PROFILERS:
        _PROFILERS[runtime] = get_profiler(runtime)
    prof = _PROFILERS[runtime]
    ok, why = prof.available()
    if not ok:
        raise RuntimeError(f"runtime {runtime!r} is not usable here: {why}")
    fmt = str(req["format"])
    if prof.model_format != fmt:
        raise RuntimeError(f"runtime {runtime!r} loads {prof.model_format!r} models, not {fmt!r}")
    settings = ProfileSettings(warmup=int(req.get("warmup", 10)), runs=int(req.get("runs", 50)),
                               threads=int(req.get("threads", 1)), precision=str(req.get("precision", "fp32")),
                               pin_cpus=str(req.get("pin_cpus", "auto")))
    props = {str(k): str(v) for k, v in (req.get("metadata") or {}).items()}
    shape = tuple(int(d) for d in req.get("input_shape") or ())
    try:
        meta = ModelMetadata.from_strings(props)
    except (KeyError, ValueError):
        meta = ModelMetadata(arch_str=props.get("hwdiffnas.arch_str", "(uploaded model)"),
                             dataset=props.get("hwdiffnas.dataset", "unknown"), input_shape=shape,
                             tool_version=props.get("hwdiffnas.tool_version", "unknown"))
    if shape and meta.input_shape != shape:
        meta = replace(meta, input_shape=shape)
    path = Path(req["model"])
    exported = ExportedModel(path=path, format=fmt, metadata=meta, files=(path,))
    with cpu_pinning(settings):
        stats = prof.profile(exported, settings)
    return stats.to_dict(with_samples=bool(req.get("samples", True)))


_MEMORY_LIMIT_MB = 0


def limit_memory(mb: int) -> None:
    """Cap this process's data segment (heap, anonymous mappings: what a model's tensors use) at ``mb`` MiB.

    ``RLIMIT_DATA`` rather than ``RLIMIT_AS``: address space that is only reserved (thread stacks' guard
    regions, GPU drivers' unified-memory ranges) does not count, so runtimes start normally under the limit.
    """
    import resource

    global _MEMORY_LIMIT_MB
    limit = mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    _MEMORY_LIMIT_MB = mb


def handle(req: dict[str, Any]) -> dict[str, Any]:
    """Answer one request; errors become ``{"ok": false, "error": ...}``."""
    try:
        op = req.get("op", "profile")
        if op == "health":
            return {"ok": True, "runtimes": runtimes_info(), "pid": os.getpid()}
        if op == "profile":
            return {"ok": True, "stats": profile_file(req)}
        return {"ok": False, "error": f"unknown op {op!r}; known: health, profile"}
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if _MEMORY_LIMIT_MB and (isinstance(exc, MemoryError) or "allocate" in str(exc).lower()):
            error += f" (the measurement worker is limited to {_MEMORY_LIMIT_MB} MiB: the agent's --job-memory-mb)"
        return {"ok": False, "error": error}


def _private_stdout() -> TextIO:
    """Keep the real stdout for answers and send fd 1 (whatever runtimes print) to stderr."""
    sys.stdout.flush()
    fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(fd, "w", encoding="utf-8", buffering=1)


def serve_stdio() -> int:
    """Answer JSON-line requests on stdin until it closes."""
    out = _private_stdout()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ValueError("request must be a JSON object")
        except ValueError as exc:
            answer: dict[str, Any] = {"ok": False, "error": f"bad request: {exc}"}
        else:
            answer = handle(req)
        out.write(json.dumps(answer) + "\n")
        out.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m hwdiffnas.remote.worker [--once --model PATH --runtime R ...]``."""
    p = argparse.ArgumentParser(prog="python -m hwdiffnas.remote.worker")
    p.add_argument("--once", action="store_true", help="run one measurement and print its JSON answer")
    p.add_argument("--health", action="store_true", help="print the runtimes report and exit")
    p.add_argument("--model")
    p.add_argument("--format", default="onnx")
    p.add_argument("--runtime", default="onnxruntime")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--precision", default="fp32")
    p.add_argument("--memory-limit-mb", type=int, default=0,
                   help="limit this process's data segment (RLIMIT_DATA: heap and private memory) to N MiB")
    args = p.parse_args(argv)
    if args.memory_limit_mb > 0:
        limit_memory(args.memory_limit_mb)
    if args.health or args.once:
        out = _private_stdout()
        if args.health:
            answer = handle({"op": "health"})
        else:
            if not args.model:
                p.error("--once needs --model")
            answer = _once(args)
        out.write(json.dumps(answer) + "\n")
        out.flush()
        return 0 if answer.get("ok") else 1
    return serve_stdio()


def _once(args: argparse.Namespace) -> dict[str, Any]:
    from hwdiffnas.remote.validate import ModelRejected, validate_file

    try:
        check = validate_file(Path(args.model), args.format, max_bytes=1 << 31)
    except (OSError, ModelRejected) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return handle({"op": "profile", "model": args.model, "format": args.format, "runtime": args.runtime,
                   "warmup": args.warmup, "runs": args.runs, "threads": args.threads,
                   "precision": args.precision, "input_shape": list(check.input_shape),
                   "metadata": check.metadata})


if __name__ == "__main__":
    sys.exit(main())
