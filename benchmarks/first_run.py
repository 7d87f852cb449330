"""The first run: `hwdiffnas search` with no data directory, scored against the oracle of the full tables.

    .venv/bin/python benchmarks/first_run.py [--src ../shared/data/nb201] [--decompose]
        [--out benchmarks/results/first_run.json]

Ten devices (the seven with a table shipped in the package: fpga, eyeriss, raspi4, pixel3, pixel2, gold_6226,
titan_rtx_256; the three the package knows only through its latency predictors: jetson-nano-fp16, edgetpu-int8,
pi5-litert) at their true 25/50/75 % connected-cell latency quantiles. Each search runs the CLI itself
(``hwdiffnas search --device D --budget Xms --json``, default settings) with ``$HWDIFFNAS_DATA`` an empty
folder. The oracle and the truth come from the full CSV tables (imported into a separate temporary store): the most
accurate connected cell with latency ≤ budget (ties: lower latency, lower index), CIFAR-100, NATS column.

First-pick regret = oracle − the first returned cell's true accuracy; best-of-5 = oracle − the best true accuracy
among the returned cells that truly fit. "over" counts returned cells whose true latency exceeds the budget,
unflagged (``may_exceed_budget`` false) and flagged.

``--decompose`` (predictor-only devices): where the regret comes from. The same searches with the exact table
(the full store as data directory) and with ``--queries 0`` (the surrogate's ranking alone), and, with every
accuracy known, the best cell that the shipped estimator calls sure to fit (upper bound at risk 0.05) or whose
point estimate fits, at risks 0.05 … 0.01; and the error of the same predictor with a transfer basis of the shipped
HELP tables.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LICENSED = ("fpga", "eyeriss", "raspi4", "pixel3", "pixel2", "gold_6226", "titan_rtx_256")
PREDICTED = ("jetson-nano-fp16", "edgetpu-int8", "pi5-litert")
QUANTILES = ("p25", "p50", "p75")
TABLES = ("arch_index.csv", "accuracy.csv", "latency_help_ms.csv", "latency_eagle_ms.csv", "latency_hw360_c100.csv")


def run_search(argv: list[str]) -> dict:
    """``hwdiffnas <argv> --json`` in this process; its JSON output."""
    from hwdiffnas.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        code = main([*argv, "--json"])
    if code != 0:
        raise SystemExit(f"hwdiffnas {' '.join(argv)} exited {code}")
    return json.loads(buf.getvalue())


def score(out: dict, truth: dict) -> dict:
    """First-pick and best-of-top regret of one search's JSON against the oracle, and over-budget counts."""
    idx = truth["index_of"]
    picks = [(idx[r["arch_str"]], bool(r["may_exceed_budget"])) for r in out["results"]]
    acc, lat, budget, best = truth["acc"], truth["lat"], truth["budget_ms"], truth["oracle"]
    fits = [i for i, _ in picks if lat[i] <= budget]
    return {
        "first_regret": float(best - acc[picks[0][0]]) if picks else None,
        "first_over": bool(picks and lat[picks[0][0]] > budget),
        "top_regret": float(best - max(acc[i] for i in fits)) if fits else None,
        "n": len(picks),
        "over_unflagged": sum(1 for i, f in picks if lat[i] > budget and not f),
        "over_flagged": sum(1 for i, f in picks if lat[i] > budget and f),
        "flagged": sum(1 for _, f in picks if f),
        "first_sources": [out["results"][0]["latency_source"], out["results"][0]["accuracy_source"]] if picks else [],
        "seconds": out["seconds"],
    }


RISKS = (0.05, 0.04, 0.03, 0.02, 0.01)


def floor(device: str, truth: dict, cells: list, nats: np.ndarray) -> dict:
    """With every accuracy known: regret of the best cell the shipped estimator calls sure to fit (upper bound at
    each risk in `RISKS`; also the over-budget count among its five best sure cells, one per NATS class) and of the
    best whose point estimate fits; the estimate's relative errors."""
    from hwdiffnas.search import shipped_latency_estimators

    est = shipped_latency_estimators()[device]
    acc, lat, conn, budget = truth["acc"], truth["lat"], truth["conn"], truth["budget_ms"]
    point, upper = est.point_and_upper(cells, 0.05)

    def best_five(values: np.ndarray) -> list[int]:
        ok = np.flatnonzero(conn & (values <= budget))
        picks: list[int] = []
        for i in ok[np.lexsort((ok, values[ok], -acc[ok]))]:
            if all(nats[j] != nats[i] for j in picks):
                picks.append(int(i))
            if len(picks) == 5:
                break
        return picks

    out: dict = {}
    for name, values in [("point", point)] + [(f"sure@{r:g}", est.point_and_upper(cells, r)[1]) for r in RISKS]:
        picks = best_five(values)
        out[name] = {"regret": float(truth["oracle"] - acc[picks[0]]), "over": bool(lat[picks[0]] > budget),
                     "over_of_5": int(sum(lat[i] > budget for i in picks))}
    out["sure"] = out["sure@0.05"]
    rel = np.abs(point[conn] / lat[conn] - 1)
    out["mean_abs_rel_error"] = float(rel.mean())
    out["bound_over_point"] = float(np.median(upper[conn] / point[conn]))
    return out


def help_basis_error(ref, device: str) -> float:
    """Mean relative error (connected cells) of the same whole-table predictor with a transfer basis built from the
    shipped HELP tables only."""
    from hwdiffnas.predictors.latency import build_transfer_basis, fit_latency_predictor

    cells, conn = ref.cells(), ref.connected()
    help_devices = [d for d in ref.latency_devices() if ref.latency_source(d).startswith("help:")]
    basis = build_transfer_basis(cells, {d: ref.latency(d) for d in help_devices})
    lat = ref.latency(device)
    point = fit_latency_predictor(cells, lat, basis=basis).point_and_upper(cells, 0.05)[0]
    return float(np.mean(np.abs(point[conn] / lat[conn] - 1)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default=str(REPO.parent / "shared" / "data" / "nb201"))
    ap.add_argument("--devices", nargs="+", default=[*LICENSED, *PREDICTED])
    ap.add_argument("--decompose", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from hwdiffnas.benchmark import open_store, oracle, parse_budget
    from hwdiffnas.importers import import_paths

    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="first-run-"))
    ref_dir, empty = tmp / "reference", tmp / "empty"
    import_paths([Path(args.src) / f for f in TABLES], ref_dir)
    empty.mkdir()
    os.environ["HWDIFFNAS_DATA"] = str(empty)  # the searches see no data directory
    ref = open_store(ref_dir, packaged=False)
    cells, conn, acc = ref.cells(), ref.connected(), ref.accuracy("cifar100", "nats")
    index_of = {c.arch_str: i for i, c in enumerate(cells)}
    nats = np.array([c.nats_unique_str for c in cells])
    cases = []
    for device in args.devices:
        lat = ref.latency(device)
        for q in QUANTILES:
            budget = parse_budget(q, lat, conn)
            best = oracle(acc, lat, budget, conn, cells, device=device)
            truth = {"acc": acc, "lat": lat, "conn": conn, "budget_ms": budget, "oracle": best.accuracy,
                     "index_of": index_of}
            base = ["search", "--device", device, "--budget", f"{budget!r}ms"]
            case = {"device": device, "quantile": q, "budget_ms": budget, "oracle": best.to_dict(),
                    "first_run": score(run_search(base), truth)}
            if args.decompose and device in PREDICTED:
                case["exact_latency"] = score(run_search(["--data-dir", str(ref_dir), *base]), truth)
                case["surrogate_only"] = score(run_search([*base, "--queries", "0"]), truth)
                case["exact_latency_surrogate_only"] = score(
                    run_search(["--data-dir", str(ref_dir), *base, "--queries", "0"]), truth)
                case["every_accuracy_known"] = floor(device, truth, cells, nats)
                if q == QUANTILES[0]:
                    case["help_basis_mean_abs_rel_error"] = help_basis_error(ref, device)
            fr = case["first_run"]
            print(f"{device:18s} {q} {budget:8.4g} ms  oracle {best.accuracy:6.2f}  first {fr['first_regret']:5.2f}"
                  f"  top5 {fr['top_regret']:5.2f}  over {fr['over_unflagged']}+{fr['over_flagged']}f"
                  f"  {fr['seconds']:.1f} s", flush=True)
            cases.append(case)
    ref.close()
    summary = {}
    for group, names in (("licensed", LICENSED), ("predicted", PREDICTED)):
        sel = [c for c in cases if c["device"] in names]
        if not sel:
            continue
        for key in ("first_run", "exact_latency", "surrogate_only", "exact_latency_surrogate_only"):
            rows = [c[key] for c in sel if key in c]
            if rows:
                summary[f"{group}/{key}"] = {
                    "first_regret_mean": float(np.mean([r["first_regret"] for r in rows])),
                    "first_regret_max": float(np.max([r["first_regret"] for r in rows])),
                    "top_regret_mean": float(np.mean([r["top_regret"] for r in rows if r["top_regret"] is not None])),
                    "over_unflagged": int(sum(r["over_unflagged"] for r in rows)),
                    "over_flagged": int(sum(r["over_flagged"] for r in rows)),
                    "picks": int(sum(r["n"] for r in rows)), "searches": len(rows)}
        floors = [c["every_accuracy_known"] for c in sel if "every_accuracy_known" in c]
        if floors:
            summary[f"{group}/every_accuracy_known"] = {
                k: {"first_regret_mean": float(np.mean([f[k]["regret"] for f in floors])),
                    "over_of_5": int(sum(f[k]["over_of_5"] for f in floors))}
                for k in ["point", *(f"sure@{r:g}" for r in RISKS)]}
    for k, v in summary.items():
        print(k, json.dumps(v))
    print(f"{time.perf_counter() - t0:.0f} s")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"cases": cases, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
