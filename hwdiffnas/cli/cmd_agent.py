"""``hwdiffnas agent serve|health``: run the profiling agent on a target, or ask one for its health."""

from __future__ import annotations

import argparse
from pathlib import Path

from hwdiffnas.errors import UserError


def register(subparsers: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("agent", help="run a profiling agent (HTTP) on a target device, or query one",
                              description="Profiling agent: receives exported models over HTTP, validates them, "
                                          "times them with a local runtime and returns the latency statistics. "
                                          "Needs the 'agent' extra: pip install 'hwdiffnas[agent]'.")
    sub = p.add_subparsers(dest="agent_command", metavar="ACTION")
    sub.required = True
    s = sub.add_parser("serve", parents=parents, help="serve until SIGTERM/SIGINT")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8765, help="port (0 = any free port; default 8765)")
    s.add_argument("--token-file", required=True, metavar="FILE",
                   help="file holding the bearer token (mode 600, at least 16 characters)")
    s.add_argument("--workdir", metavar="DIR", help="where uploads are kept while measured (default: "
                   "<data dir>/agent)")
    s.add_argument("--max-upload-mb", type=float, default=64.0, help="largest accepted model (default 64 MB)")
    s.add_argument("--job-timeout", type=float, default=300.0, metavar="S",
                   help="seconds one measurement may take before its worker is killed (default 300)")
    s.add_argument("--max-queue", type=int, default=16, help="jobs allowed to wait; more get 503 (default 16)")
    s.add_argument("--upload-timeout", type=float, default=120.0, metavar="S",
                   help="seconds a client may take to send one model; slower uploads get 408 (default 120)")
    s.add_argument("--job-memory-mb", type=int, default=2048, metavar="MB",
                   help="memory limit of the measurement worker (RLIMIT_DATA: heap and private mappings); a model "
                        "needing more fails with 500 (default 2048; 0 = no limit)")
    s.set_defaults(handler=_serve)
    h = sub.add_parser("health", parents=parents, help="print an agent's /health report")
    h.add_argument("--remote", required=True, metavar="URL", help="agent URL, e.g. http://192.0.2.7:8765")
    h.add_argument("--token-file", required=True, metavar="FILE")
    h.set_defaults(handler=_health)


def _serve(args: argparse.Namespace) -> int:
    from hwdiffnas.datadir import resolve_data_dir
    from hwdiffnas.remote.agent import AgentConfig, read_token_file, serve

    if not (args.max_upload_mb > 0 and args.job_timeout > 0 and args.upload_timeout > 0) or args.max_queue < 1:
        raise UserError("--max-upload-mb, --job-timeout and --upload-timeout must be positive, --max-queue at least 1")
    if args.job_memory_mb != 0 and args.job_memory_mb < 512:
        raise UserError(f"--job-memory-mb {args.job_memory_mb} is too small for the worker's runtimes; give at "
                        "least 512, or 0 for no limit")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port} is not a port number (0..65535)")
    workdir = Path(args.workdir) if args.workdir else resolve_data_dir(args.data_dir) / "agent"
    config = AgentConfig(token=read_token_file(args.token_file), workdir=workdir.resolve(),
                         max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), job_timeout_s=args.job_timeout,
                         max_queue=args.max_queue, upload_timeout_s=args.upload_timeout,
                         job_memory_mb=args.job_memory_mb)
    return serve(config, host=args.host, port=args.port)


def _health(args: argparse.Namespace) -> int:
    from hwdiffnas.cli.output import format_table, print_json
    from hwdiffnas.remote.client import AgentClient, read_client_token

    report = AgentClient(args.remote, read_client_token(args.token_file), timeout_s=30).health()
    if args.json:
        print_json(report)
        return 0
    print(f"agent {args.remote}: {report['status']}, hwdiffnas {report['agent_version']}, {report['host']}")
    rows = [(n, "yes" if r["available"] else "no", r["version"], r["model_format"], r.get("reason", ""))
            for n, r in sorted(report["runtimes"].items())]
    print(format_table(["runtime", "usable", "version", "loads", "note"], rows))
    print(f"busy: {report['busy']}, queued: {report['queued']}")
    return 0
