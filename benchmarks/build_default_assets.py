"""Rebuild the generator checkpoint `hwdiffnas search` ships (``hwdiffnas/assets/generator_default.safetensors``).

    .venv/bin/python benchmarks/build_default_assets.py --data-dir DIR [--steps 4000] [--seed 0]
        [--p-top 0.8] [--p-best 0.5] [--out hwdiffnas/assets]

Trains on every device of the store with the HELP reference-cell latencies, CIFAR-100 NATS accuracies, all labels
(``hwdiffnas train`` with these example-mix settings), then
drops the optimizer-state sidecar. Training resumes if interrupted: rerun the same command. The latency predictors
and accuracy surrogates the store-less search uses are the predictor bundle, rebuilt by
``benchmarks/build_predictor_assets.py``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--p-top", type=float, default=0.8, help="share of examples drawn among the best fitting cells")
    ap.add_argument("--p-best", type=float, default=0.5, help="share of those that are the single best fitting cell")
    ap.add_argument("--out", default=str(REPO / "hwdiffnas" / "assets"))
    args = ap.parse_args()

    from hwdiffnas.benchmark import open_store
    from hwdiffnas.generator import ASSET_NAME
    from hwdiffnas.generator.model import Generator
    from hwdiffnas.generator.train import TrainConfig, TrainingTables, train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / ASSET_NAME
    with open_store(args.data_dir) as store:
        tables = TrainingTables.from_store(store, ("cifar100",), None)
    t0 = time.perf_counter()
    train(tables, ckpt, TrainConfig(steps=args.steps, seed=args.seed, p_top=args.p_top, p_best=args.p_best))
    print(f"generator trained in {time.perf_counter() - t0:.0f} s (this run)")
    gen = Generator.load(ckpt)
    print(f"{len(gen.meta.devices)} devices, {gen.meta.step} steps, train_seconds {gen.meta.training['train_seconds']}")
    state = ckpt.with_name(ckpt.name + ".state.safetensors")
    if state.exists():
        state.unlink()  # the optimizer state is not shipped
    print(f"{ckpt}: {ckpt.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
