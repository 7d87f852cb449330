"""Fidelity in the FBNet space: does local latency rank architectures like HW-NAS-Bench's raspi4 / pixel3 tables?

    python benchmarks/fbnet_fidelity.py --data-dir ../shared/data/fbnet [--n 100] [--passes 3]
        [--out benchmarks/results/fbnet/fidelity.json]

Takes ``--n`` of HELP's 5,000 FBNet architectures spread evenly over the raspi4 latency range (every k-th in order
of raspi4 latency), builds each CIFAR-100-setting network, exports it to ONNX and to TFLite fp32 (direct writer),
and times batch-1 inference with onnxruntime (CPU EP) and LiteRT (XNNPACK), both with one thread, pinned to the
last CPU. Passes are interleaved in a fresh random order; an architecture's latency is the minimum over passes of
the per-pass median (load only adds time). Reports Spearman ρ of each local runtime against the raspi4 and pixel3
lookup-table latencies (and of the two tables against each other).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hwdiffnas.interfaces import ModelMetadata, host_description  # noqa: E402
from hwdiffnas.plugins import get_exporter  # noqa: E402
from hwdiffnas.spaces.fbnet.arch import FBNetArch  # noqa: E402
from hwdiffnas.spaces.fbnet.data import read_fbnet_tables  # noqa: E402
from hwdiffnas.spaces.fbnet.network import build_fbnet, fbnet_setting  # noqa: E402


def spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import torch

    from export.onnx.runtime import cpu_session
    from export.tflite.exporter import interpreter

    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    tables = read_fbnet_tables(args.data_dir)
    order = np.argsort(tables.latency_ms["raspi4"])
    pick = order[np.linspace(0, len(order) - 1, args.n).round().astype(int)]
    setting = fbnet_setting("cifar100")
    runners: dict[tuple[int, str], object] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for k, idx in enumerate(pick):
            arch = FBNetArch(tuple(int(o) for o in tables.ops[idx]))
            torch.manual_seed(int(idx))
            net = build_fbnet(arch, "cifar100")
            meta = ModelMetadata(arch.op_string, setting.name, setting.input_shape, "bench", space="fbnet")
            x = np.random.default_rng(k).standard_normal(setting.input_shape).astype(np.float32)
            onnx = get_exporter("onnx").export(net, torch.zeros(setting.input_shape), Path(tmp), meta)
            sess = cpu_session(onnx.path, 1)
            feed = {sess.get_inputs()[0].name: x}
            runners[(int(idx), "onnxruntime")] = lambda s=sess, f=feed: s.run(None, f)
            tfl = get_exporter("tflite").export(net, torch.zeros(setting.input_shape), Path(tmp), meta)
            it = interpreter(tfl.path, threads=1)
            it.set_tensor(it.get_input_details()[0]["index"], x)
            runners[(int(idx), "litert")] = it.invoke
            if (k + 1) % 20 == 0:
                print(f"  prepared {k + 1}/{len(pick)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    per_pass: dict[tuple[int, str], list[float]] = {key: [] for key in runners}
    rng = random.Random(0)
    t1 = time.perf_counter()
    for p in range(args.passes):
        keys = list(runners)
        rng.shuffle(keys)
        for key in keys:
            run = runners[key]
            for _ in range(args.warmup):
                run()
            ts = []
            for _ in range(args.runs):
                s = time.perf_counter_ns()
                run()
                ts.append((time.perf_counter_ns() - s) / 1e6)
            per_pass[key].append(statistics.median(ts))
        print(f"  pass {p + 1}/{args.passes} ({time.perf_counter() - t1:.0f} s)", flush=True)
    local = {key: min(v) for key, v in per_pass.items()}
    spread = [statistics.pstdev(v) / statistics.fmean(v) for v in per_pass.values() if len(v) > 1]
    ids = [int(i) for i in pick]
    raspi4 = [float(tables.latency_ms["raspi4"][i]) for i in ids]
    pixel3 = [float(tables.latency_ms["pixel3"][i]) for i in ids]
    result = {"host": host_description(), "n": len(ids), "passes": args.passes, "runs": args.runs,
              "pass_spread_median": statistics.median(spread) if spread else 0.0,
              "table_raspi4_vs_pixel3": spearman(raspi4, pixel3), "runtimes": {}}
    print(f"host: {result['host']}; median pass-to-pass spread {result['pass_spread_median'] * 100:.1f} %")
    print("| local runtime (1 thread) | latency ms (min–max) | ρ vs raspi4 LUT | ρ vs pixel3 LUT |")
    print("|---|---|---|---|")
    for rt in ("onnxruntime", "litert"):
        lat = [local[(i, rt)] for i in ids]
        r4, p3 = spearman(lat, raspi4), spearman(lat, pixel3)
        result["runtimes"][rt] = {"spearman_raspi4": r4, "spearman_pixel3": p3, "latency_ms": lat}
        print(f"| {rt} | {min(lat):.2f}–{max(lat):.2f} | {r4:.3f} | {p3:.3f} |")
    print(f"raspi4 vs pixel3 tables on the same architectures: ρ = {result['table_raspi4_vs_pixel3']:.3f}")
    result["archs"] = [tables.op_string(i) for i in ids]
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
