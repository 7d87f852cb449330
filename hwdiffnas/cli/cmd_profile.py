"""``hwdiffnas profile``: latency of one cell's network with a local runtime.

The handler is split so other measurement routes slot in: `settings_from_args` builds the
`ProfileSettings`, `measure` picks the route (today: the local profiler plug-in), `report` prints.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from hwdiffnas.cli.cmd_export import add_network_arguments, constant_network_warning, network_from_args, warn
from hwdiffnas.cli.output import print_json

CV_WARN = 0.10  # coefficient of variation (std / mean) above which a measurement is flagged

if TYPE_CHECKING:
    from hwdiffnas.interfaces import LatencyStats, ProfileSettings
    from hwdiffnas.space import Cell


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("profile", parents=parents, help="time a cell's network with a runtime",
                              description="Export a cell's network to the runtime's format and time batch-1 "
                                          "inference: warm-up runs, then timed runs; prints median/p90/mean/std "
                                          "(ms) and the coefficient of variation, with a warning when it is "
                                          "over 10% or the cell's network is constant (no input-output path).")
    add_network_arguments(p)
    p.add_argument("--runtime", required=True, metavar="NAME",
                   help="profiler: onnxruntime, openvino, openvino-benchmark-app, torch, litert, tensorrt "
                        "(or a plug-in's)")
    p.add_argument("--threads", type=int, default=1, metavar="N", help="inference threads (default 1)")
    p.add_argument("--warmup", type=int, default=10, metavar="N", help="untimed warm-up runs (default 10)")
    p.add_argument("--runs", type=int, default=50, metavar="N", help="timed runs (default 50)")
    p.add_argument("--pin-cpus", default="auto", metavar="CPUS",
                   help="pin the measurement to CPUs: auto (the last N CPUs when --threads N leaves some free), "
                        "none, or a list such as 1 or 0-3")
    p.add_argument("--samples", action="store_true", help="include every timed run in the JSON output")
    # --- remote route (on-device profiling, hwdiffnas.remote) ---
    p.add_argument("--remote", metavar="URL", help="time it elsewhere: http(s)://HOST:PORT (a profiling agent, "
                   "with --token-file), ssh://[USER@]HOST[:PORT] or adb://[SERIAL]")
    p.add_argument("--token-file", metavar="FILE", help="bearer token of the agent named by --remote")
    # --- end remote route ---
    p.set_defaults(handler=run)


def settings_from_args(args: argparse.Namespace) -> ProfileSettings:
    from hwdiffnas.interfaces import ProfileSettings

    return ProfileSettings(warmup=args.warmup, runs=args.runs, threads=args.threads, pin_cpus=args.pin_cpus)


def measure(args: argparse.Namespace, cell: Cell, settings: ProfileSettings) -> LatencyStats:
    """Time ``cell`` (an architecture of ``--space``) by the route the arguments ask for (local profiler
    plug-in, or ``--remote``)."""
    from hwdiffnas.deploy import profile_cell
    from hwdiffnas.materialize import MacroConfig

    space = getattr(args, "space", "nb201")
    dead = getattr(args, "dead_nodes", None)
    macro = MacroConfig(dead_nodes=dead) if dead is not None else None
    if getattr(args, "remote", None):  # remote route (hwdiffnas.remote)
        from hwdiffnas.cli.argtypes import nb201_only
        from hwdiffnas.remote.route import profile_cell_remote

        nb201_only(args, "profiling on a remote device (--remote)")
        return profile_cell_remote(cell, args.remote, args.token_file, args.runtime, settings,
                                   dataset=args.dataset, macro=macro or MacroConfig())

    return profile_cell(cell, args.runtime, settings, dataset=args.dataset, macro=macro, space=space)


def noise_warning(stats: LatencyStats) -> str | None:
    """The warning for timings that vary too much to trust (coefficient of variation over `CV_WARN`)."""
    if not stats.cv > CV_WARN:
        return None
    return (f"the timed runs vary a lot (cv {100 * stats.cv:.0f}% > {100 * CV_WARN:.0f}%), so the median is not "
            "reliable: other work on this machine or CPU frequency changes disturbed them. Pin the measurement to "
            "idle CPUs (--pin-cpus), stop other jobs, and time more runs (--runs)")


def report(args: argparse.Namespace, cell: Cell, stats: LatencyStats, warnings: list[str] | None = None) -> None:
    from hwdiffnas.plugins import get_space

    warnings = [*(warnings or []), *[w for w in (noise_warning(stats),) if w]]
    for w in warnings:
        warn(w)
    space = get_space(getattr(args, "space", "nb201"))
    dataset = space.dataset(args.dataset).name
    arch_str = space.format(cell)
    if args.json:
        extra = {"dead_nodes": args.dead_nodes} if space.name == "nb201" else {"space": space.name}
        print_json({"arch_str": arch_str, "dataset": dataset, **extra,
                    **stats.to_dict(with_samples=args.samples), "warnings": warnings})
        return
    where = f"dead nodes: {args.dead_nodes}" if space.name == "nb201" else f"space {space.name}"
    print(f"{arch_str} on {dataset} ({where})")
    print(f"{stats.runtime} {stats.runtime_version}, {stats.threads} thread(s), {stats.precision}, "
          f"{stats.warmup} warm-up + {stats.runs} timed runs")
    print(f"median {stats.median_ms:.3f} ms  p90 {stats.p90_ms:.3f} ms  mean {stats.mean_ms:.3f} ms  "
          f"std {stats.std_ms:.3f} ms  cv {100 * stats.cv:.1f}%  min {stats.min_ms:.3f} ms")
    print(f"host: {stats.host}")


def run(args: argparse.Namespace) -> int:
    space, cell, _macro = network_from_args(args)
    constant = constant_network_warning(cell, space)
    if constant:
        warn(constant)  # before the measurement, which can take a while
    settings = settings_from_args(args)
    stats = measure(args, cell, settings)
    report(args, cell, stats, [constant] if constant else [])
    return 0
