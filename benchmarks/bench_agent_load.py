"""The profiling agent under load (issue 6): 4 concurrent clients × 25 requests on loopback.

    .venv/bin/python benchmarks/bench_agent_load.py --out benchmarks/results/remote

Each client sends 25 requests: 20 valid NB201 ONNX exports (two cells, 20 timed runs each) and 5 that must be
refused (2 pickles, 1 truncated ONNX, 1 wrong token, 1 unknown runtime). A request counts as correct when a
valid one returns 200 with 20 samples and positive latencies, and an invalid one its expected status
(422/422/401/400). Overlap check: the agent returns each job's [started, finished] on its monotonic clock; sorted
by start, every job must start after the previous one finished. The agent's RSS (/proc/PID/status VmRSS) is
sampled every 0.2 s. Writes ``load.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from agent_process import CLI, start_agent


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def post(url: str, body: bytes, token: str) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/remote"))
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=25)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from hwdiffnas.deploy import export_cell
    from hwdiffnas.space import Cell

    work = Path(tempfile.mkdtemp(prefix="hwd-load-"))
    models = [export_cell(Cell.parse(a), "onnx", work / a.replace(",", "")).path.read_bytes()
              for a in ("1,2,0,4,1,2", "3,3,3,3,3,3")]
    tf = work / "token"
    agent, url = start_agent(tf, work / "agent")
    token = tf.read_text().strip()
    rss: list[tuple[float, float]] = []
    stop = threading.Event()

    def sampler() -> None:
        while not stop.is_set():
            rss.append((time.monotonic(), rss_mb(agent.pid)))
            time.sleep(0.2)

    bad = {"pickle": (pickle.dumps({"w": list(range(1000))}), token, "onnxruntime", 422),
           "truncated": (models[0][: len(models[0]) // 3], token, "onnxruntime", 422),
           "wrong_token": (models[0], token[::-1], "onnxruntime", 401),
           "unknown_runtime": (models[0], token, "nope", 400)}
    results: list[dict] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        plan = ["ok"] * args.requests
        for i, kind in zip((4, 9, 14, 19, 24), ("pickle", "truncated", "wrong_token", "unknown_runtime", "pickle")):
            if i < len(plan):
                plan[i] = kind
        for i, kind in enumerate(plan):
            if kind == "ok":
                body, tok, runtime, want = models[(k + i) % 2], token, "onnxruntime", 200
            else:
                body, tok, runtime, want = bad[kind]
            q = urllib.parse.urlencode({"runtime": runtime, "warmup": 2, "runs": args.runs})
            t0 = time.monotonic()
            try:
                status, answer = post(f"{url}/profile?{q}", body, tok)
            except Exception as exc:  # a transport error counts as a wrong answer
                status, answer = -1, {"error": repr(exc)}
            ok = status == want
            if ok and want == 200:
                s = answer["stats"]
                ok = s["runs"] == args.runs and len(s["samples_ms"]) == args.runs and s["min_ms"] > 0
            with lock:
                results.append({"client": k, "i": i, "kind": kind, "status": status, "want": want, "correct": ok,
                                "latency_s": time.monotonic() - t0, "job": answer.get("job"),
                                "error": answer.get("error", "")[:200]})

    # one warm-up request so the worker's imports are not counted as growth
    post(f"{url}/profile?runs=2&warmup=1", models[0], token)
    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    clients = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    wall = time.monotonic() - t0
    time.sleep(0.5)
    stop.set()
    th.join()
    health = json.loads(subprocess.run([*CLI, "agent", "health", "--remote", url, "--token-file", str(tf), "--json"],
                                       capture_output=True, text=True, check=True).stdout)
    agent.send_signal(signal.SIGTERM)
    exit_code = agent.wait(120)
    jobs = sorted((r["job"]["started"], r["job"]["finished"]) for r in results if r["status"] == 200)
    overlaps = sum(1 for (_, e0), (s1, _) in zip(jobs, jobs[1:]) if s1 < e0)
    min_gap_ms = min((s1 - e0) * 1000 for (_, e0), (s1, _) in zip(jobs, jobs[1:]))
    rss_vals = [v for _, v in rss]
    out = {
        "clients": args.clients, "requests_per_client": args.requests, "runs": args.runs,
        "total": len(results), "correct": sum(r["correct"] for r in results),
        "by_kind": {k: {"n": sum(r["kind"] == k for r in results),
                        "correct": sum(r["kind"] == k and r["correct"] for r in results)}
                    for k in ("ok", *bad)},
        "wall_s": wall, "measured_jobs": len(jobs), "overlaps": overlaps, "min_gap_between_jobs_ms": min_gap_ms,
        "max_queued_s": max(r["job"]["queued_s"] for r in results if r["status"] == 200),
        "rss_mb": {"start": rss_vals[0], "end": rss_vals[-1], "max": max(rss_vals),
                   "growth": rss_vals[-1] - rss_vals[0], "samples": len(rss_vals)},
        "worker_rss_mb_end": health["rss_mb"]["worker"], "agent_counts": health["counts"],
        "agent_exit_code": exit_code, "wrong": [r for r in results if not r["correct"]],
    }
    (args.out / "load.json").write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if k != "wrong"}, indent=2))
    return 0 if out["correct"] == out["total"] and overlaps == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
