"""``hwdiffnas search --space NAME`` for spaces without accuracy tables (FBNet): the generator, an objective
(``--objective``, or a surrogate of the user's ``--labels``) and the device's latency (`run_open`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from hwdiffnas.errors import UserError


def _objective_setup(args: argparse.Namespace, gen: Any, space: Any, setting: str) -> tuple[Any, str, Any, Any]:
    """(scorer, objective the generator is conditioned on, evaluate function or None, known labels or None)."""
    from hwdiffnas.objectives import get_objective
    from hwdiffnas.objectives.scorer import ObjectiveScorer

    trained = list(gen.meta.datasets)
    if args.objective:
        get_objective(args.objective)  # unknown names list the known ones
        if args.objective not in gen.meta.scorers:
            raise UserError(f"the generator {args.checkpoint or '(shipped)'} was trained for objective(s) "
                            f"{', '.join(trained)}, not {args.objective!r}; train one with: hwdiffnas train "
                            f"--space {space.name} --objective {args.objective} -o CKPT")
    default = space.default_objective if space.default_objective in gen.meta.scorers else trained[0]
    condition_on = args.objective or default
    if args.labels:
        from hwdiffnas.objectives.labels import read_labels
        from hwdiffnas.objectives.scorer import fit_surrogate

        labels = read_labels(space, args.labels)
        scorer = fit_surrogate(space, labels.archs(space), list(labels.values.values()), labels.name)
        return scorer, condition_on, None, labels.values
    scorer = ObjectiveScorer.from_dict(gen.meta.scorers[condition_on])
    evaluate = None
    if not scorer.exact:
        from hwdiffnas.objectives.compute import compute_objective, space_network_builder

        build = space_network_builder(space.name, setting)

        def evaluate(archs: list[Any]) -> list[float]:
            vals = compute_objective(scorer.name, [space.format(a) for a in archs], build, workers=1)
            return list(vals.values)

    return scorer, condition_on, evaluate, None


def run_open(args: argparse.Namespace) -> int:
    """The search command in a space other than NB201."""
    from hwdiffnas.cli.output import format_table, print_json
    from hwdiffnas.datadir import store_path
    from hwdiffnas.generator import default_checkpoint_path
    from hwdiffnas.generator.model import Generator
    from hwdiffnas.latency.space_device import space_device
    from hwdiffnas.plugins import get_space
    from hwdiffnas.search.open_search import OpenSearchSettings, run_open_search

    t_start = time.perf_counter()
    space = get_space(args.space)
    if getattr(args, "verify", False):
        raise UserError(f"--verify is not available in space {space.name!r} yet (NB201 only); measure the returned "
                        "picks with --profile RUNTIME or unsure candidates with --measure N --profile RUNTIME")
    measurements = 0 if args.measure is None else args.measure
    for name, value, zero_ok in (("--samples", args.samples, False), ("--top", args.top, False),
                                 ("--steps", args.steps, False), ("--measure", measurements, args.measure is None),
                                 ("--evaluations", args.evaluations, True)):
        if value < (0 if zero_ok else 1):
            raise UserError(f"{name} must be {'non-negative' if zero_ok else 'positive'}, got {value}")
    if not 0.0 < args.risk < 1.0:
        raise UserError(f"--risk must be in (0, 1), got {args.risk}")
    if measurements and not args.profile:
        raise UserError("--measure N needs --profile RUNTIME (the runtime that measures on this machine)")
    ckpt = Path(args.checkpoint) if args.checkpoint else default_checkpoint_path(space.name)
    if not ckpt.is_file():
        if args.checkpoint:
            raise UserError(f"checkpoint {ckpt} does not exist")
        raise UserError(f"no generator is shipped for space {space.name!r}; train one (hwdiffnas train --space "
                        f"{space.name} -o CKPT) and pass --checkpoint")
    gen = Generator.load(ckpt)
    if gen.space.name != space.name:
        raise UserError(f"generator checkpoint {ckpt} is for search space {gen.space.name!r}, not {space.name!r}; "
                        f"give --space {gen.space.name} or another --checkpoint")
    if not gen.meta.scorers:
        raise UserError(f"generator checkpoint {ckpt} carries no objective scorers (it was trained on accuracy "
                        "tables); train one for this space with: hwdiffnas train --space NAME -o CKPT")
    setting = gen.meta.training.get("setting") or space.dataset(args.dataset).name
    if space.dataset(args.dataset).name != setting:
        raise UserError(f"generator checkpoint {ckpt} was trained on latencies of the {setting!r} setting, not "
                        f"{args.dataset!r}")
    scorer, condition_on, evaluate, known = _objective_setup(args, gen, space, setting)
    store = None
    if args.device and not args.device_table and store_path(args.data_dir).is_file():
        from hwdiffnas.store import Store

        store = Store(store_path(args.data_dir))  # campaign measurements of devices the space does not serve
    try:
        device = space_device(space, args.device, setting, store, args.device_table)
    finally:
        if store is not None:
            store.close()
    budget_ms = device.parse_budget(args.budget)
    settings = OpenSearchSettings(samples=args.samples, top=args.top, seed=args.seed, steps=args.steps,
                                  guidance=args.guidance, scale=args.guidance_scale, risk=args.risk,
                                  **({} if args.adaptive_guidance is None else
                                     {"adaptive_fraction": args.adaptive_guidance}),
                                  evaluations=args.evaluations, measurements=measurements)
    measure = None
    if measurements:
        from hwdiffnas.deploy import profile_cell

        def measure(arch: Any) -> float:
            stats = profile_cell(arch, args.profile, dataset=setting, space=space)
            print(f"measured {space.format(arch)}: {stats.median_ms:.3f} ms", file=sys.stderr)
            return float(stats.median_ms)

    report = run_open_search(gen, device, budget_ms, scorer, settings, condition_on=condition_on,
                             evaluate=evaluate, known=known, measure=measure,
                             measure_source=f"measured:{args.profile}")
    report.checkpoint = str(ckpt)
    extra = _deploy(args, space, setting, report)
    report.seconds = time.perf_counter() - t_start
    out = report.to_dict()
    for r in out["results"]:
        r.update(extra.get(r["arch"], {}))
    if args.json:
        print_json(out)
        return 0
    print(f"{space.name}: device {report.device}, budget {report.budget_ms:g} ms (quantile "
          f"{report.budget_quantile:.3f}), objective {report.objective}"
          + (f" (generator asked for {condition_on})" if condition_on != report.objective else ""))
    print(f"{report.samples} samples in {report.sample_seconds:.1f} s: {report.within_budget:.1%} within budget "
          f"({report.sure_within_budget:.1%} sure), {report.uniqueness:.1%} unique; {report.candidates} candidates, "
          f"{report.evaluations} objective evaluations"
          + (f", {report.known_labels} labels" if report.known_labels else "")
          + (f", {report.measurements} measurements" if report.measurements else ""))
    headers = ["#", "arch", "latency_ms", "source", report.objective, "value_source", "MMACs", "origin"]
    rows = [[i, r["arch"], f"{r['latency_ms']:.4g}" + ("*" if r["may_exceed_budget"] else ""), r["latency_source"],
             f"{r['value']:.6g}" if r["value"] is not None else None, r["value_source"], round(r["macs"] / 1e6, 1),
             r["origin"]] for i, r in enumerate(out["results"], start=1)]
    if args.profile:
        headers.append(f"{args.profile}_ms")
        for row, r in zip(rows, out["results"]):
            row.append(r.get("measured_ms"))
    if rows:
        print(format_table(headers, rows))
    if any(r["may_exceed_budget"] for r in out["results"]):
        print(f"* estimated latency whose upper bound at --risk {args.risk:g} exceeds the budget: measure before use")
    for r in out["results"]:
        if "export_path" in r:
            print(f"exported {r['export_path']}")
    for n in report.notes:
        print(f"note: {n}", file=sys.stderr)
    print(f"{report.seconds:.1f} s", file=sys.stderr)
    return 0


def _deploy(args: argparse.Namespace, space: Any, setting: str, report: Any) -> dict[str, dict[str, Any]]:
    """``--export DIR`` (ONNX) and ``--profile RUNTIME`` of the returned picks, by exact string."""
    extra: dict[str, dict[str, Any]] = {}
    if not (args.export or args.profile):
        return extra
    from hwdiffnas.deploy import export_cell, profile_cell

    for r in report.results:
        arch = space.parse(r.arch)
        info: dict[str, Any] = {}
        if args.export:
            res = export_cell(arch, "onnx", Path(args.export), dataset=setting, space=space)
            info["export_path"] = str(res.path)
        if args.profile:
            stats = profile_cell(arch, args.profile, dataset=setting, space=space)
            info["measured_ms"] = stats.median_ms
            info["measured_runtime"] = stats.runtime
        extra[r.arch] = info
    return extra
