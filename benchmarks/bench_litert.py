"""Benchmark of the LiteRT/TFLite route (issue 7).

1. Round trip: ``hwdiffnas export --format tflite`` (and ``tflite-int8``) on seeded random connected cells,
   through the CLI with ``--json``; records the fp32 max |diff| against torch and the int8 drift report.
   ``--torch-cells N`` also converts the first N cells with ``--format tflite-torch`` (litert-torch; ~1 min each).
2. Latency: local LiteRT interpreter (1 thread, 10 warm-up + 40 runs, median) of seeded random connected
   NATS class representatives on CIFAR-100, against the Raspberry Pi 5 LiteRT and Pixel NNAPI columns of
   HW-NAS-Bench-360 (and HW-NAS-Bench's Pi 4 / Pixel 3 TFLite columns, CIFAR-10 setting): Spearman ρ.

    .venv/bin/python benchmarks/bench_litert.py --nb201 ../shared/data/nb201 --roundtrip 20 --latency 120 \\
        --out benchmarks/results/litert

Data files are read with the csv module. Writes ``litert.json`` and prints a summary.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPACE_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def ranks(xs: list[float]) -> list[float]:
    """Average ranks (ties share the mean rank)."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    out = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return out


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = math.sqrt(sum((x - ma) ** 2 for x in ra))
    vb = math.sqrt(sum((y - mb) ** 2 for y in rb))
    return cov / (va * vb)


def cli_export(fmt: str, arch: str, out: Path) -> dict:
    argv = [sys.executable, "-m", "hwdiffnas", "export", "--json", "--format", fmt, "--arch", arch,
            "--dataset", "cifar100", "-o", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"arch_str": arch, "format": fmt, "error": (proc.stderr or proc.stdout)[-800:], "wall_s": wall}
    start = proc.stdout.index("{")
    res = json.loads(proc.stdout[start:])
    res["wall_s"] = wall
    if fmt == "tflite-int8":
        drift = next(Path(p) for p in res["files"] if p.endswith(".int8-drift.json"))
        res["int8_drift"] = json.loads(drift.read_text())
    res.pop("files", None)
    res.pop("path", None)
    return res


def roundtrip(cells: list[str], fmts: list[str], out: Path) -> list[dict]:
    results = []
    for i, arch in enumerate(cells):
        for fmt in fmts:
            r = cli_export(fmt, arch, out / fmt / str(i))
            results.append(r)
            v = r.get("validation", {})
            print(f"[{fmt}] {i:3d} {arch} max|diff| {v.get('max_abs_diff', float('nan')):.3g} "
                  f"passed={v.get('passed')} wall {r['wall_s']:.1f}s {r.get('error', '')[:200]}", flush=True)
    return results


def latency(cells: list[tuple[int, str]], runs: int, warmup: int, passes: int = 1) -> list[dict]:
    """Export every cell once, then time all cells ``passes`` times in turn (spreading bursts of load from
    other processes over the cells); per cell: median of the per-pass medians, min over all runs."""
    import statistics

    from hwdiffnas.deploy import export_cell
    from hwdiffnas.interfaces import ProfileSettings
    from hwdiffnas.space import Cell
    from profilers.litert import LiteRTProfiler

    settings = ProfileSettings(warmup=warmup, runs=runs, threads=1)
    prof = LiteRTProfiler()
    out: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-litert-lat-") as tmp:
        exported = [export_cell(Cell.from_str(arch), "tflite", Path(tmp) / str(k), validate_trials=1).exported
                    for k, (_, arch) in enumerate(cells)]
        per_pass: list[list[dict]] = []
        for p in range(passes):
            row = []
            for k, ((idx, _arch), model) in enumerate(zip(cells, exported)):
                stats = prof.profile(model, settings)
                row.append(stats.to_dict())
                if k % 20 == 0:
                    print(f"pass {p} latency {k}/{len(cells)} idx {idx}: median {stats.median_ms:.3f} ms "
                          f"cv {stats.cv:.2f}", flush=True)
            per_pass.append(row)
    for k, (idx, arch) in enumerate(cells):
        rows = [per_pass[p][k] for p in range(passes)]
        out.append({**rows[0], "idx": idx, "arch_str": arch,
                    "median_ms": statistics.median(r["median_ms"] for r in rows),
                    "min_ms": min(r["min_ms"] for r in rows), "cv": statistics.median(r["cv"] for r in rows),
                    "pass_medians_ms": [r["median_ms"] for r in rows]})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nb201", type=Path, default=Path("../shared/data/nb201"))
    ap.add_argument("--roundtrip", type=int, default=20, help="cells for the export round trip")
    ap.add_argument("--formats", default="tflite,tflite-int8", help="exporters for the round trip")
    ap.add_argument("--torch-cells", type=int, default=0, help="of those, how many also via litert-torch")
    ap.add_argument("--limit", type=int, default=0, help="export only the first N of the sampled cells")
    ap.add_argument("--latency", type=int, default=120, help="connected cells timed locally")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--passes", type=int, default=1, help="timing passes over all cells (median of medians)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="litert.json", help="result file name inside --out")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/litert"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    index = read_rows(args.nb201 / "arch_index.csv")
    hw360 = {r["idx"]: r for r in read_rows(args.nb201 / "latency_hw360_c100.csv")}
    help_ms = {r["idx"]: r for r in read_rows(args.nb201 / "latency_help_ms.csv")} \
        if (args.nb201 / "latency_help_ms.csv").is_file() else {}
    rng = random.Random(args.seed)
    connected = [r for r in index if r["connected"] == "True"]
    report: dict = {"seed": args.seed, "python": sys.version.split()[0]}

    if args.roundtrip:
        picks = [r["arch_str"] for r in rng.sample(connected, args.roundtrip)][: args.limit or None]
        fmts = [f for f in args.formats.split(",") if f]
        with tempfile.TemporaryDirectory(prefix="bench-litert-") as tmp:
            rt = roundtrip(picks, fmts, Path(tmp))
            if args.torch_cells:
                rt += roundtrip(picks[: args.torch_cells], ["tflite-torch"], Path(tmp))
        report["roundtrip"] = rt
        for fmt in fmts + (["tflite-torch"] if args.torch_cells else []):
            ok = [r for r in rt if r["format"] == fmt and "validation" in r]
            diffs = [r["validation"]["max_abs_diff"] for r in ok]
            if diffs:
                print(f"{fmt}: {len(ok)} exported, all passed={all(r['validation']['passed'] for r in ok)}, "
                      f"max |diff| max {max(diffs):.3g}, median {sorted(diffs)[len(diffs) // 2]:.3g}, "
                      f"export wall median {sorted(r['wall_s'] for r in ok)[len(ok) // 2]:.1f} s")
        drifts = [r["int8_drift"] for r in rt if "int8_drift" in r]
        if drifts:
            rel = sorted(d["rel_max_diff"] for d in drifts)
            agree = [d["top1_agreement"] for d in drifts]
            print(f"int8 drift over {len(drifts)} cells: rel max|diff| median {rel[len(rel) // 2]:.3g}, "
                  f"max {rel[-1]:.3g}; top-1 agreement mean {sum(agree) / len(agree):.3f}, min {min(agree):.3f}")

    if args.latency:
        reps = [r for r in connected if r["iso_rep_idx"] == r["idx"] and hw360.get(r["idx"], {}).get(
            "pi5_litert_lat_ms") not in (None, "")]
        lat_rng = random.Random(args.seed + 1000)  # independent of the round-trip sample
        picks = [(int(r["idx"]), r["arch_str"]) for r in lat_rng.sample(reps, args.latency)]
        lat = latency(picks, args.runs, args.warmup, args.passes)
        report["latency"] = lat
        ours = [r["median_ms"] for r in lat]
        rho = {}
        for name, table, col in (("pi5_litert", hw360, "pi5_litert_lat_ms"),
                                 ("pixel_nnapi", hw360, "pixel_litert_nnapi_lat_ms"),
                                 ("raspi4_c10", help_ms, "hwnb_c10_raspi4"),
                                 ("pixel3_c10", help_ms, "hwnb_c10_pixel3")):
            pairs = [(o, float(table[str(r["idx"])][col])) for o, r in zip(ours, lat)
                     if table.get(str(r["idx"]), {}).get(col) not in (None, "")]
            if len(pairs) > 2:
                rho[name] = {"n": len(pairs), "spearman": spearman([p[0] for p in pairs], [p[1] for p in pairs])}
        mins = [r["min_ms"] for r in lat]
        pi5 = [float(hw360[str(r["idx"])]["pi5_litert_lat_ms"]) for r in lat]
        rho["pi5_litert_vs_min"] = {"n": len(lat), "spearman": spearman(mins, pi5)}
        report["spearman"] = rho
        cvs = sorted(r["cv"] for r in lat)
        print(f"latency: {len(lat)} cells, median of medians {sorted(ours)[len(ours) // 2]:.3f} ms, "
              f"cv median {cvs[len(cvs) // 2]:.2f}")
        for k, v in rho.items():
            print(f"Spearman vs {k}: {v['spearman']:.3f} (n={v['n']})")
    (args.out / args.name).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out / args.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
