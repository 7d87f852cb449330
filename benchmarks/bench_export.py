"""Export time per network (ONNX TorchScript exporter vs dynamo exporter vs OpenVINO IR) and profiling
repeatability (CV of the median over repeated measurements of one network).

Export time is the exporter call alone (traced module → file on disk, checker and metadata included; the
OpenVINO figure includes its ONNX step), torch with one thread, on ``--n`` random connected cells (the same
cells for every exporter; ``--n-dynamo`` of them for the much slower dynamo exporter). Each dynamo export is
also validated, so the two ONNX exporters are compared on equal terms.

Repeatability: one network (``--arch``, default the largest cell) is exported once per runtime and then
measured ``--repeats`` times with a fresh session each time (warm-up + timed runs as in `ProfileSettings`);
the CV of those medians is the repeatability figure (target ≤ 3 %).

    .venv/bin/python benchmarks/bench_export.py --n 10 --n-dynamo 5 --repeats 5
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from hwdiffnas.deploy import model_for, prepare_network, torch_threads, validate_export
from hwdiffnas.interfaces import ProfileSettings, cpu_pinning, host_description
from hwdiffnas.plugins import get_exporter, get_profiler
from hwdiffnas.space import Cell, all_cells


def time_exports(exporter, cells: list[Cell], tmp: Path, validate: bool = False) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``exporter.export`` for each cell."""
    wall, cpu = [], []
    for i, cell in enumerate(cells):
        net, meta = prepare_network(cell)
        out = Path(tempfile.mkdtemp(prefix=f"{exporter.name}-{i}-", dir=tmp))
        w0, c0 = time.perf_counter(), time.process_time()
        exported = exporter.export(net, torch.zeros(meta.input_shape), out, meta)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
        if validate:
            report = validate_export(exported, net, exporter, trials=2)
            if not report.passed:
                raise SystemExit(f"{exporter.name} export of {cell} failed validation: {report}")
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10, help="cells timed with the TorchScript ONNX and OpenVINO exporters")
    ap.add_argument("--n-dynamo", type=int, default=5, help="cells timed with the dynamo ONNX exporter (0 = skip)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--arch", default="3,3,3,3,3,3", help="network for the repeatability measurement")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--pin-cpus", default="auto", help="auto | none | CPU list (see ProfileSettings.pin_cpus)")
    ap.add_argument("--runtimes", default="onnxruntime,openvino,torch", help="'' = skip the repeatability part")
    ap.add_argument("--ov-direct", type=int, default=0, metavar="N",
                    help="also time OpenVINO's PyTorch front end (ov.convert_model on the module) on N cells")
    args = ap.parse_args(argv)

    from export.onnx import OnnxExporter

    print(f"host: {host_description()}; torch {torch.__version__}")
    rng = random.Random(args.seed)
    cells = rng.sample([c for c in all_cells() if c.is_connected], args.n)
    rows = []
    with tempfile.TemporaryDirectory() as d, torch_threads(1):
        tmp = Path(d)
        for label, exporter, subset, validate in (
            ("onnx (TorchScript, opset 17)", OnnxExporter(), cells, False),
            ("onnx (dynamo, opset 18)", OnnxExporter(dynamo=True), cells[:args.n_dynamo], True),
            ("openvino IR (via onnx)", get_exporter("openvino"), cells, False),
        ):
            if not subset:
                continue
            ok, why = exporter.available()
            if not ok:
                print(f"{label}: skipped ({why})")
                continue
            wall, cpu = time_exports(exporter, subset, tmp, validate)
            rows.append((label, len(subset), statistics.median(wall), statistics.median(cpu), max(wall)))
            print(f"{label:30s} n={len(subset):3d}  median {statistics.median(wall):6.2f} s wall, "
                  f"{statistics.median(cpu):6.2f} s CPU  (max {max(wall):.2f} s wall)", flush=True)
        dyn = [r for r in rows if "dynamo" in r[0]]
        if dyn:
            legacy_same, _ = time_exports(OnnxExporter(), cells[:args.n_dynamo], tmp)
            ratio = dyn[0][2] / statistics.median(legacy_same)
            print(f"dynamo / TorchScript median export time on the same {args.n_dynamo} cells: {ratio:.1f}x "
                  f"({dyn[0][2]:.2f} s vs {statistics.median(legacy_same):.2f} s)", flush=True)

        if args.ov_direct:
            import openvino as ov

            wall = []
            for cell in cells[:args.ov_direct]:
                net, meta = prepare_network(cell)
                w0 = time.perf_counter()
                with torch.no_grad():
                    ov.convert_model(net, example_input=torch.zeros(meta.input_shape))
                wall.append(time.perf_counter() - w0)
            print(f"{'openvino direct (PyTorch FE)':30s} n={len(wall):3d}  "
                  f"median {statistics.median(wall):6.2f} s wall "
                  f"(convert only, no save)", flush=True)

        if not args.runtimes:
            return 0
        cell = Cell.parse(args.arch)
        settings = ProfileSettings(warmup=args.warmup, runs=args.runs, threads=1, pin_cpus=args.pin_cpus)
        print(f"\nrepeatability: {cell.arch_str}, {args.repeats} measurements of {args.warmup} warm-up + "
              f"{args.runs} runs, 1 thread")
        net, meta = prepare_network(cell)
        for runtime in args.runtimes.split(","):
            prof = get_profiler(runtime)
            sub = tmp / f"rep-{runtime}"
            sub.mkdir()
            model = model_for(prof, net, meta, sub)
            with cpu_pinning(settings):
                medians = [prof.profile(model, settings).median_ms for _ in range(args.repeats)]
            cv = statistics.pstdev(medians) / statistics.fmean(medians)
            print(f"{runtime:12s} medians {', '.join(f'{m:.2f}' for m in medians)} ms -> CV {100 * cv:.1f} % "
                  f"({'meets' if cv <= 0.03 else 'misses'} ≤ 3 %)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
