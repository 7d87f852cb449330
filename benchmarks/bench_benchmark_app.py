"""OpenVINO ``benchmark_app`` route vs the in-process ``openvino`` profiler (issue 7).

For seeded random connected cells (CIFAR-100 input, 1 thread, fp32) the same exported IR is timed by
OpenVINO's ``benchmark_app`` (the ``openvino-benchmark-app`` profiler: exact per-iteration latencies) and by
the in-process ``openvino`` profiler; reports both medians, their Spearman ρ, and how far benchmark_app's own
0.01-ms-rounded JSON median is from the exact one.

    .venv/bin/python benchmarks/bench_benchmark_app.py --cells 12 --runs 50 --out benchmarks/results/benchmark_app
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", type=int, default=12)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/benchmark_app"))
    args = ap.parse_args()

    from bench_litert import spearman  # same folder (sys.path[0] when run as a script)

    from hwdiffnas.deploy import export_cell
    from hwdiffnas.interfaces import ProfileSettings
    from hwdiffnas.plugins import get_profiler
    from hwdiffnas.space import all_cells
    from profilers.openvino_benchmark_app.report import nearest_rank

    rng = random.Random(args.seed)
    cells = rng.sample([c for c in all_cells() if c.is_connected], args.cells)
    settings = ProfileSettings(warmup=10, runs=args.runs, threads=1)
    ba, ov = get_profiler("openvino-benchmark-app"), get_profiler("openvino")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ba-") as tmp:
        for i, cell in enumerate(cells):
            exported = export_cell(cell, "openvino", Path(tmp) / str(i)).exported
            a = ba.profile(exported, settings)
            b = ov.profile(exported, settings)
            exact = nearest_rank(sorted(a.samples_ms), 50)
            rows.append({"arch_str": cell.arch_str, "benchmark_app_median_ms": a.median_ms,
                         "benchmark_app_nearest_rank_median_ms": exact,
                         "report_rounding_error_ms": round(exact, 2) - exact,
                         "openvino_median_ms": b.median_ms, "benchmark_app_cv": a.cv, "openvino_cv": b.cv})
            print(f"{i:2d} {cell.arch_str} benchmark_app {a.median_ms:.4f} ms (cv {a.cv:.2f})  "
                  f"openvino {b.median_ms:.4f} ms (cv {b.cv:.2f})", flush=True)
    rho = spearman([r["benchmark_app_median_ms"] for r in rows], [r["openvino_median_ms"] for r in rows]) \
        if len(rows) > 2 else float("nan")
    ratio = sorted(r["benchmark_app_median_ms"] / r["openvino_median_ms"] for r in rows)
    worst = max(abs(r["report_rounding_error_ms"]) for r in rows)
    print(f"Spearman(benchmark_app, openvino) = {rho:.3f} over {len(rows)} cells; median ratio "
          f"{ratio[len(ratio) // 2]:.3f}; largest |rounded − exact| median {worst:.4f} ms")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmark_app.json").write_text(json.dumps({"rows": rows, "spearman": rho}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
