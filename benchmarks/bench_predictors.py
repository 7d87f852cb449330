"""Benchmark the predictors (docs/benchmarks.md, "Label efficiency, unseen devices, guidance" → "Predictors").

    python benchmarks/bench_predictors.py --data-dir DIR [--part tables|features|newdev|accuracy|all]
                                          [--out-dir benchmarks/results]

Parts (CIFAR-100 NATS column for accuracy; connected cells only):
- ``features``: held-out (80/20 split) Spearman and mean abs % error of the feature-ridge latency model with
  each feature set, on a few devices.
- ``tables``: every table device, ``full`` features, 80/20 split: Spearman, mean abs % error, empirical coverage
  of the 90 % two-sided interval and of the 95 % one-sided upper bound on the held-out 20 %.
- ``newdev``: new-device mode. For each device, a transfer basis from the *other* devices only; 20/50/100
  measured cells drawn at random (``random``) or one per proxy-quantile bin of the basis' first component
  (``spread``, what a campaign can do before measuring); scores on all remaining connected cells; plus the
  error of the predicted quantile map at the 25/50/75 % budgets. ``--grid-out`` also runs the five grid devices
  with all five left out of the basis.
- ``vectors``: for the grid devices, the mean |difference| between the device vector of a 20-row transfer
  predictor and (a) the table's own vector, (b) the full-table feature predictor's vector.
- ``accuracy``: surrogate vs the issue-5 baseline (scikit-learn random forest on one-hot ops) at 1/5/10 %
  labels (3 seeds) and 100 % (in-sample and 2-fold CV): held-out Spearman, and the regret of a
  surrogate-only search that queries its top-10 feasible cells on the grid (pixel3, raspi4, jetson-nano-fp16,
  edgetpu-int8, pi5-litert at the 25/50/75 % latency quantiles); the pick is the best true accuracy among
  labelled-feasible and queried cells.
  ``surrogate_dedupe`` queries at most one cell per NATS class and none from an already labelled class.
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

from hwdiffnas.benchmark import open_store  # noqa: E402
from hwdiffnas.predictors import (  # noqa: E402
    build_transfer_basis,
    cell_codes,
    cell_features,
    fit_latency_predictor,
    predicted_quantiles,
    table_quantiles,
)
from hwdiffnas.predictors.accuracy import fit_accuracy_surrogate  # noqa: E402

GRID = ("pixel3", "raspi4", "jetson-nano-fp16", "edgetpu-int8", "pi5-litert")
QUANTS = (0.25, 0.5, 0.75)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra = np.argsort(np.argsort(a))
    rb = np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def mape(pred: np.ndarray, true: np.ndarray) -> float:
    return float(100 * np.mean(np.abs(pred - true) / true))


def split(ok: np.ndarray, seed: int, frac: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    idx = np.flatnonzero(ok)
    np.random.default_rng(seed).shuffle(idx)
    k = int(frac * len(idx))
    return np.sort(idx[:k]), np.sort(idx[k:])


class Ctx:
    def __init__(self, data_dir: str) -> None:
        self.store = open_store(data_dir)
        self.cells = self.store.cells()
        self.codes = cell_codes(self.cells)
        self.conn = self.store.connected()
        self.devices = self.store.latency_devices()
        self.lat = {d: self.store.latency(d) for d in self.devices}

    def ok(self, device: str) -> np.ndarray:
        y = self.lat[device]
        return self.conn & np.isfinite(y) & (y > 0)


def part_features(ctx: Ctx, log) -> dict:
    out = {}
    for dev in (*GRID, "fpga", "gold_6226", "titan_rtx_1"):
        y = ctx.lat[dev]
        tr, te = split(ctx.ok(dev), 0)
        row = {}
        for fs in ("onehot", "live", "full"):
            pred = fit_latency_predictor([ctx.cells[i] for i in tr], y[tr], feature_set=fs)
            p = pred.predict(ctx.codes[te])[0]
            row[fs] = {"spearman": spearman(p, y[te]), "mape": mape(p, y[te])}
        out[dev] = row
        log(f"features {dev}: " + "  ".join(f"{k} {v['spearman']:.4f}/{v['mape']:.1f}%" for k, v in row.items()))
    return out


def part_tables(ctx: Ctx, log) -> dict:
    out = {}
    for dev in ctx.devices:
        y = ctx.lat[dev]
        tr, te = split(ctx.ok(dev), 0)
        pred = fit_latency_predictor([ctx.cells[i] for i in tr], y[tr])
        p, lo, hi = pred.predict(ctx.codes[te], alpha=0.1)
        up = pred.upper_ms(ctx.codes[te], delta=0.05)
        out[dev] = {
            "n_train": int(len(tr)), "n_test": int(len(te)),
            "spearman": spearman(p, y[te]), "mape": mape(p, y[te]),
            "cover90": float(np.mean((y[te] >= lo) & (y[te] <= hi))),
            "cover95_upper": float(np.mean(y[te] <= up)),
        }
        r = out[dev]
        log(f"table {dev}: spearman {r['spearman']:.4f} mape {r['mape']:.1f}% cover90 {r['cover90']:.3f} "
            f"cover95up {r['cover95_upper']:.3f}")
    return out


def spread_pick(proxy: np.ndarray, pool: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """One random cell from each of ``k`` equal-count bins of ``proxy`` over ``pool``."""
    order = pool[np.argsort(proxy[pool])]
    bins = np.array_split(order, k)
    return np.array([rng.choice(b) for b in bins])


def newdev_eval(ctx: Ctx, dev: str, exclude: tuple[str, ...], reps: int, log) -> dict:
    tables = {d: ctx.lat[d] for d in ctx.devices if d not in exclude}
    basis = build_transfer_basis(ctx.cells, tables, rank=24)
    y = ctx.lat[dev]
    pool = np.flatnonzero(ctx.ok(dev))
    proxy = basis.scores[ctx.codes, 0]
    tq = table_quantiles(y[pool])
    res: dict = {}
    for mode in ("random", "spread"):
        for k in (20, 50, 100):
            rows = []
            for rep in range(reps):
                rng = np.random.default_rng(1000 * rep + k)
                pick = rng.choice(pool, k, replace=False) if mode == "random" else spread_pick(proxy, pool, k, rng)
                rest = np.setdiff1d(pool, pick)
                pred = fit_latency_predictor([ctx.cells[i] for i in pick], y[pick], basis=basis)
                p, lo, hi = pred.predict(ctx.codes[rest], alpha=0.1)
                up = pred.upper_ms(ctx.codes[rest], delta=0.05)
                pq = predicted_quantiles(pred)
                qerr = [abs(float(pq.fraction_under(tq.budget_at(f))) - f) for f in QUANTS]
                rows.append([spearman(p, y[rest]), mape(p, y[rest]), float(np.mean((y[rest] >= lo) & (y[rest] <= hi))),
                             float(np.mean(y[rest] <= up)), float(np.mean(qerr))])
            m = np.mean(rows, axis=0)
            res[f"{mode}_{k}"] = {"spearman": m[0], "spearman_min": float(np.min([r[0] for r in rows])),
                                  "mape": m[1], "cover90": m[2], "cover95_upper": m[3], "quantile_abs_err": m[4],
                                  "reps": reps}
    log(f"newdev {dev} (basis without {len(exclude)}): " + "  ".join(
        f"{k} {v['spearman']:.3f}/{v['mape']:.1f}%/c{v['cover90']:.2f}" for k, v in res.items()))
    return res


def part_newdev(ctx: Ctx, log, reps: int, grid_out: bool) -> dict:
    out: dict = {"leave_one_out": {}, "grid_out": {}}
    for dev in ctx.devices:
        out["leave_one_out"][dev] = newdev_eval(ctx, dev, (dev,), reps, log)
    if grid_out:
        for dev in GRID:
            out["grid_out"][dev] = newdev_eval(ctx, dev, GRID, reps, log)
    return out


def part_vectors(ctx: Ctx, log, reps: int) -> dict:
    """Device vector of a 20-row transfer predictor vs the table's vector and the full-table predictor's."""
    from hwdiffnas.predictors import device_vector

    out = {}
    for dev in GRID:
        basis = build_transfer_basis(ctx.cells, {d: ctx.lat[d] for d in ctx.devices if d != dev}, rank=24)
        y = ctx.lat[dev]
        pool = np.flatnonzero(ctx.ok(dev))
        table_vec = device_vector(dict(zip(ctx.cells, y)))
        full_vec = device_vector(fit_latency_predictor(ctx.cells, y))
        d_table, d_full = [], []
        for rep in range(reps):
            pick = np.random.default_rng(rep).choice(pool, 20, replace=False)
            v = device_vector(fit_latency_predictor([ctx.cells[i] for i in pick], y[pick], basis=basis))
            d_table.append(float(np.abs(v - table_vec).mean()))
            d_full.append(float(np.abs(v - full_vec).mean()))
        out[dev] = {"to_table": float(np.mean(d_table)), "to_full_predictor": float(np.mean(d_full)),
                    "full_predictor_to_table": float(np.abs(full_vec - table_vec).mean()), "reps": reps}
        log(f"vectors {dev}: 20-row vs table {out[dev]['to_table']:.3f}, vs full predictor "
            f"{out[dev]['to_full_predictor']:.3f}, full predictor vs table {out[dev]['full_predictor_to_table']:.3f}")
    return out


def part_accuracy(ctx: Ctx, log, seeds: int) -> dict:
    from sklearn.ensemble import RandomForestRegressor

    acc = ctx.store.accuracy("cifar100", "nats")
    n = len(acc)
    onehot = cell_features(ctx.codes, "onehot")
    budgets = {(d, q): float(table_quantiles(ctx.lat[d][ctx.ok(d)]).budget_at(q)) for d in GRID for q in QUANTS}
    feasible = {key: ctx.ok(key[0]) & (ctx.lat[key[0]] <= b) for key, b in budgets.items()}
    oracle = {key: float(np.max(acc[m])) for key, m in feasible.items()}

    classes = np.array([c.nats_unique_str for c in ctx.cells])

    def regrets(pred: np.ndarray, labelled: np.ndarray, dedupe: bool = False) -> dict:
        """Regret of querying the top-10 predicted feasible unlabelled cells (``dedupe``: at most one per NATS
        class, and none from a class that already holds a label — such a query would teach nothing new)."""
        out = {}
        known_classes = set(classes[labelled])
        for key, m in feasible.items():
            cand = np.flatnonzero(m & ~labelled)
            order = cand[np.argsort(-pred[cand], kind="stable")]
            if dedupe:
                seen = set(known_classes)
                picked = []
                for i in order:
                    if classes[i] not in seen:
                        seen.add(classes[i])
                        picked.append(i)
                        if len(picked) == 10:
                            break
                top = np.array(picked, dtype=np.int64)
            else:
                top = order[:10]
            known = np.flatnonzero(m & labelled)
            best = max(acc[top].max(), acc[known].max() if len(known) else -np.inf)
            out[f"{key[0]}@p{int(key[1] * 100)}"] = oracle[key] - float(best)
        return out

    results: dict = {}
    for frac in (0.01, 0.05, 0.10):
        per = {"surrogate": [], "surrogate_dedupe": [], "rf_onehot": []}
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            lab = np.sort(rng.choice(n, int(round(frac * n)), replace=False))
            labelled = np.zeros(n, bool)
            labelled[lab] = True
            t = time.time()
            sur = fit_accuracy_surrogate([ctx.cells[i] for i in lab], acc[lab], seed=seed)
            p_sur = sur.predict(ctx.codes)
            t_sur = time.time() - t
            rf = RandomForestRegressor(n_estimators=100, random_state=seed, n_jobs=1).fit(onehot[lab], acc[lab])
            p_rf = rf.predict(onehot)
            for name, p in (("surrogate", p_sur), ("surrogate_dedupe", p_sur), ("rf_onehot", p_rf)):
                rest = ~labelled
                reg = regrets(p, labelled, dedupe=name == "surrogate_dedupe")
                per[name].append({"spearman": spearman(p[rest], acc[rest]), "regret": reg,
                                  "fit_s": t_sur if name != "rf_onehot" else None})
            s_last, r_last = per["surrogate"][-1], per["rf_onehot"][-1]
            d_last = per["surrogate_dedupe"][-1]
            log(f"accuracy {frac:.0%} seed {seed}: surrogate {s_last['spearman']:.3f} "
                f"regret {np.mean(list(s_last['regret'].values())):.3f} "
                f"dedupe {np.mean(list(d_last['regret'].values())):.3f} ({t_sur:.0f}s) | rf-onehot "
                f"{r_last['spearman']:.3f} regret {np.mean(list(r_last['regret'].values())):.3f}")
        summary = {}
        for name, rows in per.items():
            keys = rows[0]["regret"].keys()
            cell_means = {k: float(np.mean([r["regret"][k] for r in rows])) for k in keys}
            summary[name] = {"spearman": float(np.mean([r["spearman"] for r in rows])),
                             "mean_regret": float(np.mean(list(cell_means.values()))),
                             "worst_regret": float(max(cell_means.values())), "per_grid_cell": cell_means}
        results[f"{frac:.2f}"] = {"labels": int(round(frac * n)), "seeds": seeds, **summary}
    # all labels: the shipped configuration (no class lookup), scored in-sample and by 2-fold CV Spearman
    t = time.time()
    sur = fit_accuracy_surrogate(ctx.cells, acc, use_class_labels=False)
    p = sur.predict(ctx.codes)
    fold = np.random.default_rng(0).integers(0, 2, n)
    cv = np.empty(n)
    for f in range(2):
        tr = fold != f
        s = fit_accuracy_surrogate([ctx.cells[i] for i in np.flatnonzero(tr)], acc[tr], use_class_labels=False)
        cv[~tr] = s.predict(ctx.codes[~tr])
    results["1.00"] = {"labels": n, "in_sample_spearman": spearman(p, acc), "cv2_spearman": spearman(cv, acc),
                       "in_sample_mean_regret": float(np.mean(list(regrets(p, np.zeros(n, bool)).values()))),
                       "nodes": int(len(sur.forest.feature)), "fit_s": time.time() - t}
    full = results["1.00"]
    log(f"accuracy 100%: in-sample {full['in_sample_spearman']:.4f} cv2 {full['cv2_spearman']:.4f}")
    return results


def markdown(out_dir: Path) -> str:
    """Markdown tables of the saved results (what docs/benchmarks.md shows)."""
    lines: list[str] = []

    def load(part: str) -> dict | None:
        path = out_dir / f"predictors_{part}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    if (tab := load("tables")) is not None:
        lines += ["| device | Spearman | mean abs % err | 90 % interval coverage | 95 % upper-bound coverage |",
                  "|---|---|---|---|---|"]
        for dev, r in sorted((k, v) for k, v in tab.items() if k != "command"):
            lines.append(f"| {dev} | {r['spearman']:.4f} | {r['mape']:.1f} | {r['cover90']:.3f} | "
                         f"{r['cover95_upper']:.3f} |")
        lines.append("")
    if (feat := load("features")) is not None:
        lines += ["| device | onehot | live | full |", "|---|---|---|---|"]
        for dev, r in ((k, v) for k, v in feat.items() if k != "command"):
            lines.append(f"| {dev} | " + " | ".join(f"{r[f]['spearman']:.4f} / {r[f]['mape']:.1f} %"
                                                     for f in ("onehot", "live", "full")) + " |")
        lines.append("")
    if (nd := load("newdev")) is not None:
        for mode_name, block in (("leave_one_out", nd.get("leave_one_out", {})), ("grid_out", nd.get("grid_out", {}))):
            if not block:
                continue
            lines += [f"{mode_name}: Spearman / mean abs % err / 90 % coverage / 95 % upper coverage / quantile-map "
                      "error, mean of the repeats", "",
                      "| device | " + " | ".join(f"{m} {k}" for m in ("random", "spread") for k in (20, 50, 100))
                      + " |",
                      "|---|" + "---|" * 6]
            for dev, r in sorted(block.items()):
                cells = [r[f"{m}_{k}"] for m in ("random", "spread") for k in (20, 50, 100)]
                lines.append(f"| {dev} | " + " | ".join(
                    f"{c['spearman']:.3f} / {c['mape']:.1f} / {c['cover90']:.2f} / {c['cover95_upper']:.2f} / "
                    f"{c['quantile_abs_err']:.3f}" for c in cells) + " |")
            keys = [f"{m}_{k}" for m in ("random", "spread") for k in (20, 50, 100)]
            agg = {k: np.array([[r[k]["spearman"], r[k]["mape"], r[k]["cover90"], r[k]["cover95_upper"],
                                 r[k]["quantile_abs_err"]] for r in block.values()]) for k in keys}
            lines.append("| **mean (min Spearman)** | " + " | ".join(
                f"{a[:, 0].mean():.3f} ({a[:, 0].min():.3f}) / {a[:, 1].mean():.1f} / {a[:, 2].mean():.2f} / "
                f"{a[:, 3].mean():.2f} / {a[:, 4].mean():.3f}" for a in agg.values()) + " |")
            lines.append("")
    if (acc := load("accuracy")) is not None:
        lines += ["| labels | model | held-out Spearman | mean regret | worst grid cell |", "|---|---|---|---|---|"]
        for frac in ("0.01", "0.05", "0.10"):
            r = acc[frac]
            for name in ("rf_onehot", "surrogate", "surrogate_dedupe"):
                m = r[name]
                lines.append(f"| {float(frac):.0%} ({r['labels']}) | {name} | {m['spearman']:.3f} | "
                             f"{m['mean_regret']:.3f} | {m['worst_regret']:.3f} |")
        full = acc["1.00"]
        lines += ["", f"100 % labels (shipped configuration): in-sample Spearman {full['in_sample_spearman']:.4f}, "
                  f"2-fold CV Spearman {full['cv2_spearman']:.4f}, {full['nodes']} forest nodes, "
                  f"fit {full['fit_s']:.0f} s.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--part", default="all", choices=("features", "tables", "newdev", "vectors", "accuracy", "all"))
    ap.add_argument("--reps", type=int, default=3, help="repeats per new-device setting")
    ap.add_argument("--seeds", type=int, default=3, help="label-subset seeds for the accuracy part")
    ap.add_argument("--grid-out", action="store_true", help="also leave all five grid devices out of the basis")
    ap.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"),
                    help="writes predictors_<part>.json there")
    ap.add_argument("--markdown", action="store_true", help="print the saved results as Markdown tables and exit")
    args = ap.parse_args()
    if args.markdown:
        print(markdown(Path(args.out_dir)))
        return
    t0 = time.time()

    def log(msg: str) -> None:
        print(f"[{time.time() - t0:7.1f}s] {msg}", flush=True)

    if not args.data_dir:
        ap.error("--data-dir is required unless --markdown")
    ctx = Ctx(args.data_dir)
    parts = ("features", "tables", "newdev", "vectors", "accuracy") if args.part == "all" else (args.part,)
    for part in parts:
        if part == "features":
            result = part_features(ctx, log)
        elif part == "tables":
            result = part_tables(ctx, log)
        elif part == "newdev":
            result = part_newdev(ctx, log, args.reps, args.grid_out)
        elif part == "vectors":
            result = part_vectors(ctx, log, max(args.reps, 5))
        else:
            result = part_accuracy(ctx, log, args.seeds)
        out_path = Path(args.out_dir) / f"predictors_{part}.json"
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps({"command": " ".join(sys.argv), **result}, indent=1) + "\n")
        log(f"wrote {out_path}")


if __name__ == "__main__":
    main()
