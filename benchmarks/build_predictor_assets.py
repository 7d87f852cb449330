"""Build the embedded predictor bundle (hwdiffnas/assets/predictors_*) from a benchmark store.

    python benchmarks/build_predictor_assets.py --data-dir DIR [--out hwdiffnas/assets]

DIR holds a store imported with ``hwdiffnas --data-dir DIR data import ../shared/data/nb201``. Fits, for every
latency device in the store, a feature-ridge latency predictor on all its connected cells, the table's quantile
map and device vector; the transfer basis over all devices; and the accuracy surrogates (CIFAR-10, CIFAR-100,
ImageNet16-120, NATS column) on all labels. Then reloads the bundle and checks it predicts like the fitted one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hwdiffnas import ASSETS_DIR  # noqa: E402
from hwdiffnas.benchmark import open_store  # noqa: E402
from hwdiffnas.predictors.bundle import build_bundle, load_bundle  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True, help="data directory holding the imported NB201 store")
    ap.add_argument("--out", default=str(ASSETS_DIR), help="output folder (default: the package assets)")
    ap.add_argument("--column", default="nats", help="accuracy column (default nats)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.time()
    store = open_store(args.data_dir)
    cells = store.cells()
    devices = store.latency_devices()
    latencies = {d: store.latency(d) for d in devices}
    accuracies = {ds: store.accuracy(ds, args.column) for ds in ("cifar10", "cifar100", "ImageNet16-120")}

    def say(msg: str) -> None:
        print(f"[{time.time() - t0:7.1f}s] {msg}", flush=True)

    bundle = build_bundle(cells, latencies, accuracies, accuracy_column=args.column, progress=say, seed=args.seed)
    bundle.info.update({"devices": devices, "accuracy_column": args.column, "built_from": "NB201 store",
                        "command": "python benchmarks/build_predictor_assets.py --data-dir DIR"})
    meta, weights = bundle.save(args.out)
    say(f"wrote {meta} ({meta.stat().st_size / 1e3:.0f} kB) and {weights} ({weights.stat().st_size / 1e6:.2f} MB)")

    again = load_bundle(args.out)
    probe = cells[::97]
    for d in devices:
        a = bundle.latency[d].predict(probe)[0]
        b = again.latency[d].predict(probe)[0]
        assert np.allclose(a, b, rtol=1e-4), d
    for ds, sur in bundle.accuracy.items():
        assert np.allclose(sur.predict(probe), again.accuracy[ds].predict(probe), atol=1e-3), ds
    say(f"reloaded and checked {len(devices)} latency predictors and {len(bundle.accuracy)} accuracy surrogates")


if __name__ == "__main__":
    main()
