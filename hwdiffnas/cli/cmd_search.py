"""``hwdiffnas search``: the most accurate cells that fit a latency budget on a device, from the generator."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hwdiffnas.cli.argtypes import add_space_argument, finite_float


def register(subparsers: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "search", parents=parents, help="propose the most accurate cells that fit a latency budget",
        description="Sample cells from the conditional generator for a device and budget, check the budget, rank "
                    "them and (with a benchmark store) spend at most --queries accuracy look-ups. Works without a "
                    "data directory using the generator and latency estimators shipped with the package.")
    p.add_argument("--device", help="device name (see `hwdiffnas devices`); optional with --device-table")
    p.add_argument("--budget", required=True, help="latency budget with a unit (10ms, 800us) or a quantile (p50)")
    p.add_argument("--dataset", default="cifar100", help="accuracy dataset (default cifar100)")
    p.add_argument("--samples", type=int, default=500, help="cells to sample (default 500)")
    p.add_argument("--queries", type=int, default=10, help="max accuracy look-ups in the store (default 10)")
    p.add_argument("--top", type=int, default=5, help="cells to return (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device-table", metavar="FILE.csv",
                   help="arch_str,latency_ms rows (20+) measured on a device the generator never saw")
    p.add_argument("--checkpoint", metavar="CKPT", help="generator checkpoint (default: the shipped one)")
    p.add_argument("--steps", type=int, default=20, help="denoising steps (default 20)")
    p.add_argument("--guidance", choices=("joint", "per-condition", "none"), default="joint")
    p.add_argument("--guidance-scale", type=finite_float, default=1.0, metavar="W",
                   help="classifier-free guidance scale w (default 1)")
    p.add_argument("--adaptive-guidance", type=finite_float, default=None, metavar="FRAC",
                   help="skip the unconditional pass in the last FRAC of the steps (0 = never; default 0 in NB201, "
                        "0.5 in spaces without accuracy tables, where it samples 1.4x faster at equal picks)")
    p.add_argument("--risk", type=finite_float, default=0.05, metavar="DELTA",
                   help="for estimated latencies: a cell counts as fitting when the chance that it exceeds the "
                        "budget is at most DELTA (default 0.05); riskier cells are flagged")
    p.add_argument("--measure", type=int, default=None, metavar="N",
                   help="with --profile RUNTIME, run on the target device itself: make up to N latency measurements "
                        "(--verify ones included) of the cells the accuracy queries would go to whose latency is "
                        "not sure, before spending the queries; stored in the data directory, so a re-run reuses "
                        "them")
    p.add_argument("--verify", action="store_true",
                   help="with --profile RUNTIME: return only picks measured on this device within the budget (a "
                        "pick measured within 2%% under the budget is measured twice and fits only if both "
                        "medians do); picks that fail are dropped and replaced, or none is returned ('no verified "
                        "pick'). Default --measure: 2 x the larger of --queries and --top")
    p.add_argument("--measure-timeout", type=finite_float, default=300.0, metavar="S",
                   help="seconds one measurement may take before it counts as failed (default 300)")
    p.add_argument("--objective", metavar="NAME",
                   help="spaces without accuracy tables (FBNet): what stands in for accuracy (default: the space's, "
                        "FBNet naswot; the checkpoint lists those it was trained for; `hwdiffnas plugins --kind "
                        "objectives`)")
    p.add_argument("--labels", metavar="FILE.csv",
                   help="your own trained accuracies (any space), rows arch,accuracy (20+): a surrogate fitted on "
                        "them ranks the candidates and labelled architectures count as known (NB201: instead of "
                        "the benchmark's accuracy look-ups)")
    p.add_argument("--evaluations", type=int, default=10, metavar="N",
                   help="spaces without accuracy tables: compute a proxy objective on at most N candidates "
                        "(default 10; counts need none)")
    p.add_argument("--export", metavar="DIR", help="export the returned cells to ONNX in DIR")
    p.add_argument("--profile", metavar="RUNTIME", help="measure the returned cells locally (e.g. onnxruntime)")
    add_space_argument(p)
    p.set_defaults(handler=run)


def _positive(name: str, value: int, zero_ok: bool = False) -> None:
    from hwdiffnas.errors import UserError

    if value < (0 if zero_ok else 1):
        raise UserError(f"{name} must be {'non-negative' if zero_ok else 'positive'}, got {value}")


PACKAGED_NOTE = ("no benchmark store: the tables shipped in the package answer (NATS-Bench accuracies; HELP and "
                 "HW-NAS-Bench latencies, MIT); other devices' latencies are estimates")


def _open_store_or_none(data_dir: str | None, space: str = "nb201") -> tuple[Any, str]:
    from hwdiffnas.benchmark import open_store
    from hwdiffnas.datadir import store_path
    from hwdiffnas.errors import UserError

    try:
        if not store_path(data_dir).is_file():
            return open_store(data_dir, space=space), PACKAGED_NOTE
        return open_store(data_dir, space=space), ""
    except UserError as exc:
        return None, f"benchmark store not used ({exc})"


def _measure(args: argparse.Namespace, dataset: str, store: Any, device: str, notes: list[str]) -> tuple[Any, Any]:
    """The search's measure callable (the profiler plug-in ``--profile``) and, with a data directory, the store
    that records each measurement and resumes them (`StoredMeasure`; None without one)."""
    from hwdiffnas.datadir import store_path
    from hwdiffnas.search.measure import StoredMeasure, profiler_measure

    measure = profiler_measure(args.profile, dataset, args.measure_timeout)
    if store is None or not store_path(args.data_dir).is_file():
        notes.append("no data directory: the measurements are not stored (a re-run measures again)")
        return measure, None
    stored = StoredMeasure(measure, store, device, args.profile)
    return stored, stored


def run(args: argparse.Namespace) -> int:
    import time

    t_start = time.perf_counter()
    if args.space != "nb201":
        from hwdiffnas.cli.cmd_search_open import run_open

        return run_open(args)
    from hwdiffnas.cli.argtypes import nb201_only
    from hwdiffnas.cli.output import format_table, print_json
    from hwdiffnas.errors import UserError
    from hwdiffnas.generator import default_checkpoint_path
    from hwdiffnas.generator.model import Generator
    from hwdiffnas.search import SearchSettings, prepare_search, resolve_device
    from hwdiffnas.search.measure import stderr_progress
    from hwdiffnas.space import Cell

    if args.objective:
        raise UserError("--objective ranks architectures in spaces without accuracy tables (e.g. --space fbnet); "
                        "NB201 searches rank by accuracy (its tables, or your own with --labels FILE.csv)")
    _positive("--samples", args.samples)
    _positive("--queries", args.queries, zero_ok=True)
    _positive("--top", args.top)
    _positive("--steps", args.steps)
    if not 0.0 < args.risk < 1.0:
        raise UserError(f"--risk must be in (0, 1), got {args.risk}")
    if args.measure is not None:
        _positive("--measure", args.measure)
    if args.measure is not None and not args.profile:
        raise UserError("--measure N needs --profile RUNTIME (the runtime that measures on this machine)")
    if args.verify and not args.profile:
        raise UserError("--verify needs --profile RUNTIME (the runtime that measures the picks on this machine)")
    if not args.measure_timeout > 0:
        raise UserError(f"--measure-timeout must be a positive number of seconds, got {args.measure_timeout:g}")
    n_measure = args.measure if args.measure is not None else (2 * max(args.queries, args.top) if args.verify else 0)
    # the device resolution (store tables, shipped latency predictors) and the labels are NB201's
    nb201_only(args, "the search command (device latency from the benchmark store and the shipped predictors)")
    ckpt = Path(args.checkpoint) if args.checkpoint else default_checkpoint_path()
    if not args.checkpoint and not ckpt.is_file():
        raise UserError(f"no generator shipped at {ckpt}; train one (hwdiffnas train -o CKPT) and pass --checkpoint")
    gen = Generator.load(ckpt)
    if gen.space.name != args.space:
        raise UserError(f"generator checkpoint {ckpt} is for search space {gen.space.name!r}, not {args.space!r}; "
                        f"give --space {gen.space.name} or another --checkpoint")
    dataset = gen.space.dataset(args.dataset).name
    store, note = _open_store_or_none(args.data_dir, args.space)
    notes = [note] if note else []
    try:
        device = resolve_device(gen, store, args.device, args.device_table)
        budget_ms = device.parse_budget(args.budget)
        if args.labels:  # the user's own accuracies: known for free, a surrogate on them ranks; no table look-ups
            from hwdiffnas.search.labels import file_labels

            labels = file_labels(args.labels, dataset, gen.meta.accuracy_column)
            setup = prepare_search(gen, dataset, None, labels=labels)
            notes.append(f"accuracies: your labels ({labels.surrogate_source}); no benchmark look-ups")
        else:
            setup = prepare_search(gen, dataset, store, accuracy_source=f"benchmark:{gen.meta.accuracy_column}")
        settings = SearchSettings(samples=args.samples, queries=args.queries, top=args.top, seed=args.seed,
                                  steps=args.steps, guidance=args.guidance, scale=args.guidance_scale,
                                  adaptive_fraction=args.adaptive_guidance or 0.0, upper_delta=args.risk,
                                  measurements=n_measure, verify=args.verify)
        measure, stored = _measure(args, dataset, store, device.name, notes) if n_measure else (None, None)
        report = setup.run(device, budget_ms, settings, measure=measure, measure_source=f"measured:{args.profile}",
                           progress=stderr_progress if n_measure else None)
        report.measurements_reused = stored.reused if stored is not None else 0
    finally:
        if store is not None:
            store.close()
    report.checkpoint = str(ckpt)
    report.notes = notes + report.notes
    extra: dict[str, dict[str, Any]] = {}
    if args.export or args.profile:
        from hwdiffnas.deploy import export_cell, profile_cell

        for r in report.results:
            cell = Cell.from_str(r.arch_str)
            info: dict[str, Any] = {}
            if args.export:
                res = export_cell(cell, "onnx", Path(args.export), dataset=dataset)
                info["export_path"] = str(res.path)
            if args.profile and r.measured_ms:  # measured during the search: not again
                info["measured_runtime"] = args.profile
            elif args.profile:
                stats = profile_cell(cell, args.profile, dataset=dataset)
                info["measured_ms"] = [stats.median_ms] if n_measure else stats.median_ms
                info["measured_runtime"] = stats.runtime
            extra[r.arch_str] = info
    report.seconds = time.perf_counter() - t_start
    out = report.to_dict()
    for r in out["results"]:
        r.update(extra.get(r["arch_str"], {}))
    if args.json:
        print_json(out)
        return 0
    print(f"device {report.device}, budget {report.budget_ms:g} ms (quantile {report.budget_quantile:.3f} of "
          f"connected cells), dataset {report.dataset}")
    print(f"{report.samples} samples in {report.sample_seconds:.1f} s: {report.feasible_fraction:.1%} within budget, "
          f"{report.uniqueness:.1%} unique, {report.connected_fraction:.1%} connected; "
          f"{report.queries} accuracy queries"
          + (f", {report.known_labels} accuracies known from training labels" if report.known_labels else "")
          + (f", {report.measurements} latency measurements" if report.measurements else "")
          + (f" ({report.measurements_reused} from earlier runs)" if report.measurements_reused else ""))
    headers = ["#", "arch_str", "latency_ms", "source", "accuracy", "acc_source", "samples", "origin"]
    rows = []
    for i, r in enumerate(out["results"], start=1):
        lat = f"{r['latency_ms']:.3g}" + ("*" if r["may_exceed_budget"] else "")
        rows.append([i, r["arch_str"], lat, r["latency_source"], r["accuracy"], r["accuracy_source"], r["samples"],
                     r["origin"]])
    if extra and args.profile:
        headers.append(f"{args.profile}_ms")
        for row, r in zip(rows, out["results"]):
            m = r.get("measured_ms")
            row.append("/".join(f"{v:.4g}" for v in m) if isinstance(m, list) else m)
    if report.verify:
        headers.append("verified")
        for row, r in zip(rows, out["results"]):
            row.append("yes" if r["verified"] else "no")
    if rows:
        print(format_table(headers, rows))
    if any(r["may_exceed_budget"] for r in out["results"]):
        print(f"* estimated latency that may exceed the budget (its upper bound at --risk {args.risk:g} exceeds it or "
              "cannot be certified): measure before use")
    exported = [r["export_path"] for r in out["results"] if "export_path" in r]
    if exported:
        print(f"exported {len(exported)} cell(s) as ONNX to {args.export}:")
        for path in exported:
            print(f"  {path}")
    if report.verify and rows:
        from hwdiffnas.search.measure import VERIFY_RULE

        print(f"verified: {VERIFY_RULE}")
    for n in report.notes:
        print(f"note: {n}", file=sys.stderr)
    print(f"{report.seconds:.1f} s", file=sys.stderr)
    return 0
