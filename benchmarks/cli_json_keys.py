"""Compare the ``--json`` key sets of CLI commands between another checkout (e.g. a ``git worktree`` of an older
commit) and this one: every nested key path of the old output must still be there (additions are fine).

    .venv/bin/python benchmarks/cli_json_keys.py --old-tree /tmp/start --data-dir DIR --rows rows.csv

Each command runs as ``python -m hwdiffnas`` with ``PYTHONPATH`` set to the tree; ``--rows`` is an
``arch_str,latency_ms`` file for the ``--device-table`` commands. Exit status 1 when a key was removed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def commands(data_dir: str, rows: str, scratch: str) -> dict[str, list[str]]:
    d = ["--data-dir", data_dir]
    return {
        "devices": ["devices", "--json"],
        "devices-one": ["devices", "pixel3", "--json"],
        "data-status": [*d, "data", "status", "--json"],
        "oracle-table": [*d, "oracle", "--device", "fpga", "--budget", "p50", "--json"],
        "oracle-rows": [*d, "oracle", "--device-table", rows, "--budget", "p50", "--json"],
        "bench": [*d, "bench", "--method", "random,rea", "--device", "raspi4", "--budget", "p25", "--queries", "5",
                  "--seeds", "1", "--json"],
        "search-store": [*d, "search", "--device", "pixel3", "--budget", "p50", "--samples", "40", "--json"],
        "search-nostore": ["--data-dir", f"{scratch}/empty", "search", "--device", "pixel3", "--budget", "10ms",
                           "--samples", "40", "--json"],
        "search-rows": [*d, "search", "--device-table", rows, "--budget", "p50", "--samples", "40", "--json"],
        "export": ["export", "--arch", "3,3,1,0,3,4", "--format", "onnx", "-o", f"{scratch}/exp", "--json"],
        "profile": ["profile", "--arch", "3,3,1,0,3,4", "--runtime", "onnxruntime", "--runs", "3", "--warmup", "1",
                    "--json"],
    }


def key_paths(x: Any, prefix: str = "") -> set[str]:
    """Every nested key path of a JSON value (list items share the path ``[]``)."""
    out: set[str] = set()
    if isinstance(x, dict):
        for k, v in x.items():
            out.add(f"{prefix}.{k}")
            out |= key_paths(v, f"{prefix}.{k}")
    elif isinstance(x, list):
        for v in x:
            out |= key_paths(v, prefix + "[]")
    return out


def run(tree: Path, argv: list[str]) -> tuple[Any, str]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    p = subprocess.run([sys.executable, "-m", "hwdiffnas", *argv], capture_output=True, text=True, env=env,
                       cwd=tree)
    if p.returncode != 0:
        return None, (p.stderr.strip().splitlines() or ["?"])[-1]
    return json.loads(p.stdout), ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old-tree", required=True, type=Path)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--rows", required=True)
    args = ap.parse_args()
    removed_any = False
    with tempfile.TemporaryDirectory() as scratch:
        for name, argv in commands(args.data_dir, args.rows, scratch).items():
            (old, e_old), (new, e_new) = run(args.old_tree, argv), run(REPO, argv)
            if old is None or new is None:
                print(f"{name:15s} error: old {e_old!r} new {e_new!r}")
                removed_any = True
                continue
            a, b = key_paths(old), key_paths(new)
            removed_any |= bool(a - b)
            print(f"{name:15s} keys {len(a)} -> {len(b)}; removed {sorted(a - b) or 'none'}; "
                  f"added {sorted(b - a) or 'none'}")
    return 1 if removed_any else 0


if __name__ == "__main__":
    sys.exit(main())
