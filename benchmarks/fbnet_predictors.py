"""Latency predictors for HELP's measured FBNet-space devices: held-out rank, error and bound coverage.

    python benchmarks/fbnet_predictors.py [--out benchmarks/results/fbnet/predictors.json]

For each of the 20 measured device settings in the shipped HELP tables: an 80/20 split of the 5,000 architectures
(seeded), the rows predictor (`hwdiffnas.predictors.rows`: ridge on the space's one-hot features, penalty by
leave-one-out error, split-conformal one-sided bound) fitted on the 80 %, scored on the 20 %: Spearman ρ, mean
absolute percentage error, and the share of held-out latencies under the 95 % bound. Then each device as a new
board known from 50 rows (of the 80 %): on the features alone, and through the transfer basis of the space's
other devices (`hwdiffnas.latency.lookup.device_from_rows`: the device itself left out; the other devices'
models are fitted on their shipped rows, as a user's search would have them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hwdiffnas.latency.lookup import device_from_rows  # noqa: E402
from hwdiffnas.plugins import get_space  # noqa: E402
from hwdiffnas.predictors.rows import fit_rows_predictor  # noqa: E402
from hwdiffnas.spaces.base import MeasuredRows  # noqa: E402
from hwdiffnas.spaces.fbnet.help_tables import load_help_tables  # noqa: E402

PHONES = ("pixel2", "samsung_a50", "essential_ph_1")


def score(pred: object, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from scipy.stats import spearmanr

    point, upper = pred.point_and_upper(x, 0.05)  # type: ignore[attr-defined]
    return {"spearman": float(spearmanr(point, y)[0]), "mape": float(np.mean(np.abs(point - y) / y)),
            "coverage95": float(np.mean(y <= upper))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--few", type=int, default=50, help="rows of the few-rows fit")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    space = get_space("fbnet")
    rows = space.measured_rows("cifar100")
    tables = load_help_tables()
    x = space.features([space.parse(tables.op_string(i)) for i in range(len(tables.ops))])
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(len(x))
    train, test = perm[: int(0.8 * len(x))], perm[int(0.8 * len(x)):]
    out = {}
    archs = [space.parse(tables.op_string(i)) for i in range(len(tables.ops))]
    print(f"| device | held-out Spearman | MAPE | 95 % bound coverage | {args.few} rows, features: Spearman |"
          f" {args.few} rows, transfer: Spearman | MAPE | coverage |")
    print("|---|---|---|---|---|---|---|---|")
    for device in sorted(rows):
        y = np.asarray(rows[device].latency_ms)
        full = score(fit_rows_predictor(x[train], y[train]), x[test], y[test])
        few = score(fit_rows_predictor(x[train[: args.few]], y[train[: args.few]]), x[test], y[test])
        sub = train[: args.few]
        rows_in = MeasuredRows(tuple(tables.op_string(i) for i in sub), tuple(float(v) for v in y[sub]), "rows")
        dev = device_from_rows(space, device, rows_in, "cifar100")
        tr = score(dev.predictor, dev.featurize([archs[i] for i in test]), y[test])
        out[device] = {"full": full, "few_features": few, "few_transfer": tr}
        print(f"| {device} | {full['spearman']:.3f} | {full['mape'] * 100:.1f} % | {full['coverage95']:.3f} | "
              f"{few['spearman']:.3f} | {tr['spearman']:.3f} | {tr['mape'] * 100:.1f} % | {tr['coverage95']:.3f} |")
    non_phone = [v["full"]["spearman"] for d, v in out.items() if d not in PHONES]
    cov = [v["full"]["coverage95"] for v in out.values()]
    phones = ", ".join(f"{d} {out[d]['full']['spearman']:.3f}" for d in PHONES)
    print(f"mean held-out Spearman over the {len(non_phone)} non-phone settings: {np.mean(non_phone):.3f}; "
          f"phones: {phones}; coverage range {min(cov):.3f}–{max(cov):.3f}; {args.few} rows with transfer: mean "
          f"Spearman {np.mean([v['few_transfer']['spearman'] for v in out.values()]):.3f} over all "
          f"{len(out)} settings")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
