"""End-to-end on-device profiling on this machine (issue 6): a profiling agent on loopback, a 200-cell
campaign on ``local-cpu`` (onnxruntime) through it, the measured table exported for search.

    .venv/bin/python benchmarks/bench_remote_e2e.py --nb201 ../shared/data/nb201 --data-dir /tmp/hwd-e2e \\
        --out benchmarks/results/remote

Steps (each a real CLI call, as a user would type it): ``data import`` (if the data dir has no store),
``agent serve --port 0``, ``campaign --device local-cpu --n 200 --remote URL --token-file F --table-out
--estimate``, ``agent health``, SIGTERM to the agent. Writes ``e2e.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from agent_process import CLI, start_agent


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nb201", type=Path, default=Path("../shared/data/nb201"))
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/remote"))
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--statistic", default="median")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    d = args.data_dir
    d.mkdir(parents=True, exist_ok=True)
    out: dict = {"n": args.n, "warmup": args.warmup, "runs": args.runs}
    if not (d / "hwdiffnas.sqlite").is_file():
        t = time.perf_counter()
        subprocess.run([*CLI, "--data-dir", str(d), "data", "import", str(args.nb201)], check=True)
        out["import_s"] = time.perf_counter() - t
    token = d / "agent.token"
    agent, url = start_agent(token, d / "agent-work")
    try:
        health0 = json.loads(subprocess.run([*CLI, "agent", "health", "--remote", url, "--token-file", str(token),
                                             "--json"], capture_output=True, text=True, check=True).stdout)
        cmd = [*CLI, "--data-dir", str(d), "campaign", "--device", "local-cpu", "--n", str(args.n), "--remote", url,
               "--token-file", str(token), "--warmup", str(args.warmup), "--runs", str(args.runs), "--json",
               "--table-out", str(args.out / "local-cpu-measured.csv"), "--estimate", "--statistic", args.statistic]
        out["campaign_cmd"] = " ".join(cmd[2:]).replace(str(d), "$DATA").replace(url, "$AGENT")
        t = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        out["campaign_wall_s"] = time.perf_counter() - t
        out["campaign_exit"] = r.returncode
        out["campaign"] = json.loads(r.stdout)
        health1 = json.loads(subprocess.run([*CLI, "agent", "health", "--remote", url, "--token-file", str(token),
                                             "--json"], capture_output=True, text=True, check=True).stdout)
        out["agent_health_before"] = health0
        out["agent_health_after"] = health1
    finally:
        agent.send_signal(signal.SIGTERM)
        out["agent_exit"] = agent.wait(120)
    (args.out / "e2e.json").write_text(json.dumps(out, indent=2))
    c = out["campaign"]
    print(f"campaign: {c['complete']}/{c['planned']} ok, {c['failed']} failed, {out['campaign_wall_s']:.0f} s; "
          f"agent exit {out['agent_exit']}; estimate {c.get('estimate')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
