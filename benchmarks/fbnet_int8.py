"""int8 TFLite for FBNet networks: drift and top-1 agreement against torch, both settings.

    python benchmarks/fbnet_int8.py [--n 10] [--calibration 64] [--out benchmarks/results/fbnet/int8.json]

Each network gets weights and BN statistics under which its outputs are of order 1
(`calibrate_for_validation`), is written as fp32 TFLite by the direct writer, then quantized statically (int8
weights and activations, ai-edge-quantizer) on a representative set of ``--calibration`` seeded N(0, 1) inputs —
the same distribution the drift is measured on (16 other seeded inputs). No image data set is available here: the
figures say how faithful the quantized graph is to its fp32 source on in-distribution inputs, not an accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from export.tflite.exporter import calibration_inputs, int8_drift, quantize_int8  # noqa: E402
from export.tflite.flatbuffer import build_tflite  # noqa: E402
from hwdiffnas.plugins import get_space  # noqa: E402
from hwdiffnas.spaces.fbnet.network import build_fbnet, fbnet_setting  # noqa: E402
from hwdiffnas.spaces.modules import calibrate_for_validation  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10, help="architectures per setting")
    ap.add_argument("--calibration", type=int, default=64, help="representative inputs")
    ap.add_argument("--settings", nargs="+", default=["cifar100", "imagenet"])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import torch

    rows = []
    for dataset in args.settings:
        setting = fbnet_setting(dataset)
        for i, arch in enumerate(get_space("fbnet").sample(args.n, seed=5)):
            torch.manual_seed(i)
            net = calibrate_for_validation(build_fbnet(arch, dataset), setting.input_shape, seed=i)
            t0 = time.perf_counter()
            fp32 = build_tflite(net, setting.input_shape)
            int8 = quantize_int8(fp32, calibration_inputs(setting.input_shape, args.calibration, seed=100 + i))
            quant_s = time.perf_counter() - t0
            drift = int8_drift(net, int8, setting.input_shape, trials=16, seed=7 + i,
                               calibration_samples=args.calibration, calibration_source="N(0,1)")
            rows.append({"dataset": dataset, "arch": arch.op_string, "quantize_s": quant_s,
                         "fp32_bytes": len(fp32), "int8_bytes": len(int8), **drift.to_dict()})
            print(f"{dataset} {arch}: rel drift {drift.rel_max_diff:.3f}, top-1 {drift.top1_agreement:.2f}, "
                  f"{len(fp32) // 1024} → {len(int8) // 1024} KB, {quant_s:.1f} s", flush=True)
    print("| setting | networks | relative max drift (median / max) | mean abs diff (median) |"
          " top-1 agreement (mean / min) | size ratio |")
    print("|---|---|---|---|---|---|")
    for dataset in args.settings:
        sel = [r for r in rows if r["dataset"] == dataset]
        rel = [r["rel_max_diff"] for r in sel]
        top = [r["top1_agreement"] for r in sel]
        ratio = np.mean([r["int8_bytes"] / r["fp32_bytes"] for r in sel])
        mean_abs = np.median([r["mean_abs_diff"] for r in sel])
        print(f"| {dataset} | {len(sel)} | {np.median(rel):.3f} / {max(rel):.3f} | {mean_abs:.3f} | "
              f"{np.mean(top):.2f} / {min(top):.2f} | {ratio:.2f} |")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
