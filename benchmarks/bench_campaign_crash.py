"""Crash test of campaigns (issue 6): SIGKILL a running ``hwdiffnas campaign`` and run it again.

    .venv/bin/python benchmarks/bench_campaign_crash.py --out benchmarks/results/remote
    .venv/bin/python benchmarks/bench_campaign_crash.py --space fbnet --n 100 --kills 1,50,t20 \
        --out benchmarks/results/fbnet-campaign

For each kill point k (the campaign is killed with SIGKILL once k cells are stored, or — for ``t`` entries —
after a fixed number of seconds, wherever it is), the same command is run again to completion. Checks: the
store holds exactly one row per planned cell, all ``ok``; rows written before the kill are byte-identical
afterwards (same id, timestamp and value); the second run reports the right number of cells already done.
Small settings (local-cpu, onnxruntime, 1 warm-up + 5 runs, 30 cells) because the point is correctness.
``--space fbnet`` runs the campaign in that space (rows keyed by architecture string, `hwdiffnas.store_space`).
Writes ``crash.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "hwdiffnas"]


def rows(db: Path, space: str = "nb201") -> list[tuple]:
    if not db.is_file():
        return []
    conn = sqlite3.connect(db, timeout=30)
    try:
        if space == "nb201":
            sql = "SELECT id, cell_key, status, created_at, median_ms FROM measurements ORDER BY id"
            return conn.execute(sql).fetchall()
        sql = ("SELECT id, arch_str, status, created_at, median_ms FROM space_measurements WHERE space = ? "
               "ORDER BY id")
        return conn.execute(sql, (space,)).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def trial(kill_at: str, n: int, space: str = "nb201") -> dict:
    d = Path(tempfile.mkdtemp(prefix="hwd-crash-"))
    db = d / "hwdiffnas.sqlite"
    argv = [*CLI, "--data-dir", str(d), "campaign", "--device", "local-cpu", "--n", str(n), "--warmup", "1",
            "--runs", "5", "--no-progress", "--json", "--space", space, "--runtime", "onnxruntime"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    while proc.poll() is None:
        if kill_at.startswith("t"):
            if time.monotonic() - t0 >= float(kill_at[1:]):
                break
        elif len(rows(db, space)) >= int(kill_at):
            break
        time.sleep(0.05)
    killed_running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = rows(db, space)
    t1 = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True)
    rerun_s = time.monotonic() - t1
    report = json.loads(r.stdout)
    after = rows(db, space)
    keys = [row[1] for row in after]
    return {
        "space": space, "kill_at": kill_at, "killed_while_running": killed_running, "rows_before_kill": len(before),
        "rerun_exit": r.returncode, "rerun_already_done": report["already_done"],
        "rerun_measured": report["measured_ok"],
        "rows_after": len(after), "distinct_cells": len(set(keys)), "all_ok": all(row[2] == "ok" for row in after),
        "earlier_rows_unchanged": after[: len(before)] == before, "rerun_s": rerun_s,
        "pass": (r.returncode == 0 and len(after) == n and len(set(keys)) == n and after[: len(before)] == before
                 and report["already_done"] == len(before) and all(row[2] == "ok" for row in after)),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/remote"))
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--kills", default="1,12,25,t9,t17")
    ap.add_argument("--space", default="nb201", help="search space of the campaign (nb201, fbnet, ...)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = [trial(k, args.n, args.space) for k in args.kills.split(",")]
    (args.out / "crash.json").write_text(json.dumps(results, indent=2))
    for res in results:
        print(json.dumps(res))
    return 0 if all(r["pass"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
