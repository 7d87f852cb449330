"""Fit the FBNet-space additive latency tables (HW-NAS-Bench devices) and write the shipped assets.

    python benchmarks/build_fbnet_lut.py --data-dir ../shared/data/fbnet [--out hwdiffnas/assets/fbnet_lut.json]

First checks the model out of sample: fitted on rows 0–3999 of HELP's 5,000 architectures, it must reproduce
rows 4000–4999 within 1e-3 ms on every device (prints the largest error). Then fits each device on all 5,000
rows and writes the asset, reloads it and checks it reproduces every row. Also writes HELP's 5,000-row tables
(every device column, exactly) as ``hwdiffnas/assets/fbnet_help_tables.safetensors`` and checks them value for value.
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

from hwdiffnas.spaces.fbnet.data import LUT_DEVICES, read_fbnet_tables  # noqa: E402
from hwdiffnas.spaces.fbnet.help_tables import HELP_TABLES_ASSET, load_help_tables, write_help_tables  # noqa: E402
from hwdiffnas.spaces.fbnet.lut import LUT_ASSET, fit_additive_latency, load_latency_models  # noqa: E402

TOLERANCE_MS = 1e-3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True, help="FBNet data folder (arch_index.csv, latency_help_ms.csv)")
    ap.add_argument("--out", default=str(LUT_ASSET), help="asset path (default: the package's)")
    ap.add_argument("--train-rows", type=int, default=4000, help="rows fitted in the held-out check")
    ap.add_argument("--help-out", default=str(HELP_TABLES_ASSET), help="HELP tables asset path")
    args = ap.parse_args()

    t0 = time.time()
    tables = read_fbnet_tables(args.data_dir)
    n = len(tables.ops)
    report = {}
    for device in LUT_DEVICES:
        y = tables.latency_ms[device]
        held = fit_additive_latency(tables.ops[: args.train_rows], y[: args.train_rows], device)
        err = np.abs(held.latency_batch_ms(tables.ops[args.train_rows:]) - y[args.train_rows:])
        report[device] = {"heldout_rows": int(n - args.train_rows), "heldout_max_abs_error_ms": float(err.max()),
                          "heldout_mean_abs_error_ms": float(err.mean())}
        print(f"{device:8s} fitted on {args.train_rows}, held-out {n - args.train_rows}: "
              f"max |error| {err.max():.2e} ms, mean {err.mean():.2e} ms")
        if err.max() > TOLERANCE_MS:
            raise SystemExit(f"{device}: held-out error {err.max():.3g} ms exceeds {TOLERANCE_MS} ms")

    models = [fit_additive_latency(tables.ops, tables.latency_ms[d], d) for d in LUT_DEVICES]
    doc = {
        "format": 1,
        "space": "fbnet",
        "source": "HELP repository data/fbnet (MIT): HW-NAS-Bench FBNet-space latencies, CIFAR-100 setting",
        "pinning": "each entry is the latency above the cheapest block of its layer configuration; "
                   "constant_ms = all-cheapest architecture",
        "devices": [m.to_dict() for m in models],
    }
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    loaded = load_latency_models(args.out)
    for device in LUT_DEVICES:
        err = np.abs(loaded[device].latency_batch_ms(tables.ops) - tables.latency_ms[device]).max()
        print(f"{device:8s} shipped model (all {n} rows): max |error| {err:.2e} ms, "
              f"constant {loaded[device].constant_ms:.6f} ms")
        if err > TOLERANCE_MS:
            raise SystemExit(f"{device}: reloaded asset errs {err:.3g} ms")
    write_help_tables(tables, args.help_out)
    shipped = load_help_tables.__wrapped__(args.help_out)
    assert np.array_equal(shipped.ops, tables.ops) and set(shipped.latency_ms) == set(tables.latency_ms)
    for d, v in tables.latency_ms.items():
        assert np.array_equal(shipped.latency_ms[d], v), d
    print(f"wrote {args.help_out} ({Path(args.help_out).stat().st_size} bytes): {len(shipped.latency_ms)} columns "
          f"equal to the CSV")
    print(json.dumps(report))
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes) in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
