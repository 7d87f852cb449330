"""Run OpenVINO's Python ``benchmark_app`` unchanged and record its per-iteration latencies.

    python -m profilers.openvino_benchmark_app.launch --samples-out FILE -- BENCHMARK_APP_ARGS...

The measurement loops of ``openvino.tools.benchmark.benchmark.Benchmark`` (sync, async inference-only, async
full) each return the sorted list of per-iteration latencies (``InferRequest.latency``, ms) that the tool then
rounds to 0.01 ms for its report. This launcher wraps those methods to keep that list, calls the tool's own
``main()`` with the given arguments, and writes ``{"latencies_ms": [...]}`` to FILE. Nothing else changes:
options, warm-up, timing and reports are the tool's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

LOOPS = ("sync_inference", "async_inference_only", "async_inference_full_mode")


def install_recorder(benchmark_cls: type, sink: list[list[float]]) -> list[str]:
    """Wrap the measurement loops of ``benchmark_cls`` so each run's latency list is appended to ``sink``;
    returns the names wrapped."""
    wrapped = []
    for name in LOOPS:
        original = getattr(benchmark_cls, name, None)
        if original is None:
            continue

        def recorder(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            result = _original(self, *args, **kwargs)
            sink.append([float(t) for t in result[0]])
            return result

        setattr(benchmark_cls, name, recorder)
        wrapped.append(name)
    return wrapped


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[0] != "--samples-out" or args[2] != "--":
        print("usage: python -m profilers.openvino_benchmark_app.launch --samples-out FILE -- ARGS...",
              file=sys.stderr)
        return 2
    out = Path(args[1])
    from openvino.tools.benchmark import benchmark as bm
    from openvino.tools.benchmark import main as tool

    sink: list[list[float]] = []
    if not install_recorder(bm.Benchmark, sink):
        print("this openvino benchmark_app has none of the expected measurement loops "
              f"({', '.join(LOOPS)}); cannot record per-iteration latencies", file=sys.stderr)
        return 3
    sys.argv = ["benchmark_app", *args[3:]]
    code = 0
    try:
        tool.main()
    except SystemExit as exc:
        code = int(exc.code) if isinstance(exc.code, int) else 1
    if sink:
        out.write_text(json.dumps({"latencies_ms": sink[-1]}) + "\n")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
