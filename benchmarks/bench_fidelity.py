"""Latency fidelity: does local onnxruntime latency rank NB201 cells like the benchmarks' measured tables?

Measures onnxruntime (CPU EP, batch 1, CIFAR-100 input 1x3x32x32, one intra-op thread) on N random
connected cells, and Spearman-correlates the medians with every latency column of the NB201 data folder
(``latency_*.csv``, joined by ``idx`` through ``arch_index.csv``). Cells with dead paths (a non-`none` edge not
on any input→output path) are also exported with ``--dead-nodes prune`` and timed in the same passes; for
the other cells the pruned network is the same network, so its latency is the zeros one.

To survive a shared, loaded machine the passes are interleaved: every network is exported and loaded once,
then ``--passes`` rounds time all of them in a fresh random order; a cell's latency is the minimum over the
rounds of the per-round median (load only ever adds time).

    .venv/bin/python benchmarks/bench_fidelity.py --data ../shared/data/nb201 --n 200 --out fidelity.json
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hwdiffnas.deploy import prepare_network, torch_threads
from hwdiffnas.interfaces import host_description
from hwdiffnas.materialize import MacroConfig
from hwdiffnas.plugins import get_exporter
from hwdiffnas.space import Cell

TARGETS = {"hwnb_c10_raspi4": 0.85, "pi5_litert_lat_ms": 0.85}


def read_csv(path: Path) -> tuple[list[str], dict[int, dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = {int(r["idx"]): r for r in reader}
        return list(reader.fieldnames or []), rows


def latency_columns(data: Path) -> dict[str, dict[int, float]]:
    """Every latency column of ``latency_*.csv`` as {column: {idx: ms}} (energy and index columns left out)."""
    out: dict[str, dict[int, float]] = {}
    for path in sorted(data.glob("latency_*.csv")):
        fields, rows = read_csv(path)
        for col in fields:
            if col in ("idx", "iso_rep_idx") or "energy" in col:
                continue
            values = {}
            for idx, r in rows.items():
                v = r.get(col, "")
                if v not in ("", "nan", "NaN"):
                    values[idx] = float(v)
            out[f"{path.stem.removeprefix('latency_')}:{col}"] = values
    return out


def ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean rank)."""
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x), dtype=np.float64)
    sx = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2.0
        i = j + 1
    return r


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = ranks(np.asarray(a, float)), ranks(np.asarray(b, float))
    return float(np.corrcoef(ra, rb)[0, 1])


def has_dead_path(cell: Cell) -> bool:
    return any(op != 0 and not live for op, live in zip(cell.ops, cell.live_edges()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="the NB201 data folder (arch_index.csv, latency_*.csv)")
    ap.add_argument("--n", type=int, default=200, help="random connected cells (default 200)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--passes", type=int, default=3, help="interleaved timing rounds (default 3)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--runs", type=int, default=20, help="timed runs per cell per round (default 20)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dataset", default="cifar100")
    ap.add_argument("--out", type=Path, help="write per-cell latencies and the correlations as JSON")
    args = ap.parse_args(argv)

    from export.onnx.runtime import cpu_session

    _, arch_rows = read_csv(args.data / "arch_index.csv")
    idx_of = {Cell.from_str(r["arch_str"]): i for i, r in arch_rows.items()}
    connected = sorted((c for c in idx_of if c.is_connected), key=lambda c: idx_of[c])
    rng = random.Random(args.seed)
    cells = rng.sample(connected, args.n)
    dead = [c for c in cells if has_dead_path(c)]
    print(f"{len(cells)} connected cells, {len(dead)} with dead paths; host: {host_description()}", flush=True)

    exporter = get_exporter("onnx")
    t0 = time.perf_counter()
    jobs: list[tuple[Cell, str]] = [(c, "zeros") for c in cells] + [(c, "prune") for c in dead]
    sessions = {}
    inputs = {}
    with tempfile.TemporaryDirectory() as tmp, torch_threads(1):
        for k, (cell, rule) in enumerate(jobs):
            net, meta = prepare_network(cell, args.dataset, MacroConfig(dead_nodes=rule))
            import torch

            exported = exporter.export(net, torch.zeros(meta.input_shape), Path(tmp), meta)
            sess = cpu_session(exported.path, args.threads)
            names = [i.name for i in sess.get_inputs()]
            x = np.random.default_rng(k).standard_normal(meta.input_shape).astype(np.float32)
            sessions[(cell, rule)] = sess
            inputs[(cell, rule)] = {names[0]: x} if names else {}
            if (k + 1) % 50 == 0:
                print(f"  exported {k + 1}/{len(jobs)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    export_s = time.perf_counter() - t0

    per_round: dict[tuple[Cell, str], list[float]] = {j: [] for j in jobs}
    t1 = time.perf_counter()
    for p in range(args.passes):
        order = list(jobs)
        rng.shuffle(order)
        for job in order:
            sess, feed = sessions[job], inputs[job]
            for _ in range(args.warmup):
                sess.run(None, feed)
            ts = []
            for _ in range(args.runs):
                s = time.perf_counter_ns()
                sess.run(None, feed)
                ts.append((time.perf_counter_ns() - s) / 1e6)
            per_round[job].append(statistics.median(ts))
        print(f"  pass {p + 1}/{args.passes} done ({time.perf_counter() - t1:.0f} s)", flush=True)
    time_s = time.perf_counter() - t1

    lat_min = {j: min(v) for j, v in per_round.items()}
    lat_med = {j: statistics.median(v) for j, v in per_round.items()}
    # round-to-round spread of each cell's median: how noisy the machine was
    spread = [statistics.pstdev(v) / statistics.fmean(v) for v in per_round.values() if len(v) > 1] or [0.0]

    def lat(c: Cell, rule: str, table: dict) -> float:
        return table[(c, rule)] if (c, rule) in table else table[(c, "zeros")]

    columns = latency_columns(args.data)
    results = []
    for name, col in columns.items():
        both = [c for c in cells if idx_of[c] in col]
        sub = [c for c in dead if idx_of[c] in col]
        ref = [col[idx_of[c]] for c in both]
        row = {
            "column": name,
            "n": len(both),
            "rho_zeros": spearman([lat(c, "zeros", lat_min) for c in both], ref),
            "rho_prune": spearman([lat(c, "prune", lat_min) for c in both], ref),
            "rho_zeros_median_agg": spearman([lat(c, "zeros", lat_med) for c in both], ref),
            "n_dead": len(sub),
        }
        if len(sub) >= 5:
            sref = [col[idx_of[c]] for c in sub]
            row["rho_dead_zeros"] = spearman([lat(c, "zeros", lat_min) for c in sub], sref)
            row["rho_dead_prune"] = spearman([lat(c, "prune", lat_min) for c in sub], sref)
        results.append(row)

    print(f"\nexport+load {export_s:.0f} s, timing {time_s:.0f} s; round-to-round CV of a cell's median: "
          f"median {100 * statistics.median(spread):.1f} %, p90 {100 * float(np.percentile(spread, 90)):.1f} %")
    print(f"{'column':52s} {'n':>4s} {'zeros':>6s} {'prune':>6s} {'med-agg':>7s} {'dead:n':>6s} "
          f"{'d.zeros':>7s} {'d.prune':>7s}")
    for r in results:
        print(f"{r['column']:52s} {r['n']:4d} {r['rho_zeros']:6.3f} {r['rho_prune']:6.3f} "
              f"{r['rho_zeros_median_agg']:7.3f} {r['n_dead']:6d} {r.get('rho_dead_zeros', float('nan')):7.3f} "
              f"{r.get('rho_dead_prune', float('nan')):7.3f}")
    ok = True
    for col, target in TARGETS.items():
        (r,) = [r for r in results if r["column"].endswith(":" + col)]
        status = "meets" if r["rho_zeros"] >= target else "MISSES"
        ok &= r["rho_zeros"] >= target
        print(f"target Spearman ≥ {target} with {col}: {r['rho_zeros']:.3f} ({status})")
    if args.out:
        args.out.write_text(json.dumps({
            "host": host_description(), "args": {k: str(v) for k, v in vars(args).items()},
            "export_s": export_s, "timing_s": time_s,
            "round_cv_median": statistics.median(spread),
            "cells": [{"idx": idx_of[c], "arch_str": c.arch_str, "dead_path": has_dead_path(c),
                       "zeros_rounds_ms": per_round[(c, "zeros")],
                       "prune_rounds_ms": per_round.get((c, "prune"), per_round[(c, "zeros")])} for c in cells],
            "correlations": results,
        }, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
