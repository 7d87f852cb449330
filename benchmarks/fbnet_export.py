"""FBNet exports against torch: ONNX, OpenVINO and TFLite fp32 on random architectures in both settings.

    python benchmarks/fbnet_export.py [--n 50] [--formats onnx openvino tflite] [--out FILE.json]

Each network is built with its seeded weights, then given weights and BatchNorm statistics under which its
outputs are of order 1 (`hwdiffnas.spaces.modules.calibrate_for_validation`), exported, and run on 2 seeded
N(0, 1) inputs; the error is max |exported − torch| / max(1, max |torch|). Export wall time per format is
recorded (ONNX: torch.onnx TorchScript exporter + checker; OpenVINO: ONNX + conversion + save; TFLite: the direct
writer).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hwdiffnas.deploy import validate_export  # noqa: E402
from hwdiffnas.interfaces import ModelMetadata  # noqa: E402
from hwdiffnas.plugins import get_exporter, get_space  # noqa: E402
from hwdiffnas.spaces.fbnet.network import build_fbnet, fbnet_setting  # noqa: E402
from hwdiffnas.spaces.modules import calibrate_for_validation  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50, help="architectures per setting")
    ap.add_argument("--formats", nargs="+", default=["onnx", "openvino", "tflite"])
    ap.add_argument("--settings", nargs="+", default=["cifar100", "imagenet"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(2)
    rows = []
    for dataset in args.settings:
        setting = fbnet_setting(dataset)
        archs = get_space("fbnet").sample(args.n, seed=args.seed)
        for i, arch in enumerate(archs):
            torch.manual_seed(i)
            net = calibrate_for_validation(build_fbnet(arch, dataset), setting.input_shape, seed=i)
            meta = ModelMetadata(arch.op_string, setting.name, setting.input_shape, "bench", space="fbnet")
            for fmt in args.formats:
                exporter = get_exporter(fmt)
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.perf_counter()
                    exported = exporter.export(net, torch.zeros(setting.input_shape), Path(tmp), meta)
                    export_s = time.perf_counter() - t0
                    rep = validate_export(exported, net, exporter, trials=2, seed=i)
                rel = rep.max_abs_diff / max(1.0, rep.max_abs_output)
                rows.append({"dataset": dataset, "arch": arch.op_string, "format": fmt, "export_s": export_s,
                             "output_scale": rep.max_abs_output, "relative_error": rel, "passed": rep.passed})
            print(f"{dataset} {i + 1}/{len(archs)} {arch.op_string}: " + ", ".join(
                f"{r['format']} {r['relative_error']:.1e} ({r['export_s']:.2f} s)" for r in rows[-len(args.formats):]),
                flush=True)
    print("| setting | format | networks | max relative error | all ≤ 1e-4 | output scale (min–max) |"
          " export s (median / max) |")
    print("|---|---|---|---|---|---|---|")
    for dataset in args.settings:
        for fmt in args.formats:
            sel = [r for r in rows if r["dataset"] == dataset and r["format"] == fmt]
            err = max(r["relative_error"] for r in sel)
            scale = [r["output_scale"] for r in sel]
            secs = [r["export_s"] for r in sel]
            print(f"| {dataset} | {fmt} | {len(sel)} | {err:.1e} | {'yes' if err <= 1e-4 else 'NO'} | "
                  f"{min(scale):.2f}–{max(scale):.2f} | {np.median(secs):.2f} / {max(secs):.2f} |")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
