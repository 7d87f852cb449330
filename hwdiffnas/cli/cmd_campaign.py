"""``hwdiffnas campaign``: measure a spread of cells on a device and store every result as it comes."""

from __future__ import annotations

import argparse
from typing import Any

from hwdiffnas.cli.argtypes import add_space_argument
from hwdiffnas.errors import UserError


def register(subparsers: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "campaign", parents=parents, help="measure N cells spanning a device's latency range, resumably",
        description="Pick N cells that span the latency range (stratified on a proxy), export and time each on "
                    "the device (locally or through --remote), and write each result to the store as soon as it "
                    "is measured. Running the same command again resumes: finished cells are skipped, failed "
                    "ones retried.")
    p.add_argument("--device", required=True, help="device config name (e.g. local-cpu)")
    p.add_argument("--n", type=int, default=200, help="number of cells (default 200)")
    p.add_argument("--runtime", help="profiler plug-in (default: the device config's runtime)")
    p.add_argument("--remote", metavar="URL", help="http(s)://HOST:PORT (agent), ssh://… or adb://…")
    p.add_argument("--token-file", metavar="FILE", help="bearer token of the agent (with an http(s) --remote)")
    p.add_argument("--seed", type=int, default=0, help="seed of the tie-breaking among equal proxy values")
    p.add_argument("--run-id", default="", help="campaign name (default: derived from the options)")
    p.add_argument("--proxy", default="flops",
                   help="what the picks are stratified on: 'flops' (MACs) or a device with a latency table "
                        "(outside NB201: a device the space serves, e.g. FBNet's raspi4)")
    p.add_argument("--dataset", help="input setting (default: the device config's input_setting in NB201, the "
                                     "space's first setting elsewhere, e.g. FBNet's cifar100)")
    p.add_argument("--warmup", type=int, help="warm-up runs (default: device config)")
    p.add_argument("--runs", type=int, help="timed runs (default: device config)")
    p.add_argument("--threads", type=int, help="threads (default: device config)")
    p.add_argument("--estimate", action="store_true",
                   help="afterwards, write DEVICE+est: measured latencies plus predictor estimates for all cells")
    p.add_argument("--statistic", choices=("median", "min", "mean", "p90"), default="median",
                   help="which summary of each measurement --table-out and --estimate use (default median; min is "
                        "robust on a host shared with other work)")
    p.add_argument("--table-out", metavar="FILE.csv",
                   help="afterwards, write arch_str,latency_ms of every measured cell (for search --device-table)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the planned cells and their proxy values only (no --remote needed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_space_argument(p)
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from hwdiffnas.campaign import (
        CampaignSpec,
        estimate_device,
        local_measurer,
        measurement_route,
        plan_cells,
        proxy_values,
        remote_measurer,
        run_campaign,
        write_measured_table,
    )
    from hwdiffnas.cli.output import print_json
    from hwdiffnas.devices import get_device
    from hwdiffnas.interfaces import ProfileSettings
    from hwdiffnas.materialize import dataset_spec
    from hwdiffnas.plugins import get_space
    from hwdiffnas.workdir import claim_workdir

    space = get_space(args.space)
    other = space.name != "nb201"  # architectures keyed by their exact string (hwdiffnas.campaign_space)
    if other and args.estimate:
        raise UserError(f"--estimate writes a table of all NB201 cells; in space {space.name!r} the measured device "
                        f"serves estimates directly: hwdiffnas latency --space {space.name} --device {args.device} "
                        "--arch ...")
    cfg = get_device(args.device)
    if args.table_out:
        _check_writable_file(args.table_out, "--table-out")
    m = cfg.measure
    # a dry run only plans the cells: it needs no way to reach the device (but a table-only one is refused)
    plan_only = args.dry_run and not args.remote and cfg.measure.route not in ("local", "table-only")
    route = "plan" if plan_only else measurement_route(cfg, args.remote)
    runtime = args.runtime or m.runtime
    if not runtime:
        raise UserError(f"device {cfg.name!r} names no runtime; give --runtime")
    settings = ProfileSettings(warmup=m.warmup if args.warmup is None else args.warmup,
                               runs=m.runs if args.runs is None else args.runs,
                               threads=m.threads if args.threads is None else args.threads, precision=m.precision)
    if other:
        dataset = space.dataset(args.dataset or next(iter(space.datasets))).name
    else:
        dataset = dataset_spec(args.dataset or m.input_setting).name
    remote = None
    if route == "remote" and not args.dry_run:
        from hwdiffnas.remote.route import open_remote

        remote = open_remote(args.remote, args.token_file, delegate=m.delegate)
        fmt = remote.model_format(runtime)
    else:
        from hwdiffnas.plugins import get_profiler

        fmt = get_profiler(runtime).model_format if route == "local" else "onnx"
    spec = CampaignSpec(device=cfg.name, runtime=runtime, settings=settings, dataset=dataset, n=args.n,
                        seed=args.seed, proxy=args.proxy, run_id=args.run_id, fmt=fmt, space=space.name)
    store = _store(args, need_index=not other and args.proxy not in ("flops", "macs"))
    try:
        if other:
            from hwdiffnas.campaign_space import ArchLedger, plan_archs, space_proxy_values

            cells = plan_archs(spec, space)
            ledger = ArchLedger(store, space, dataset)
        else:
            cells = plan_cells(spec, store)
            ledger = None
        if args.dry_run:
            if other:
                vals = space_proxy_values(space, cells, spec.proxy, spec.dataset)
            else:
                vals = proxy_values(cells, spec.proxy, spec.dataset, store)
            rows = [{"arch_str": space.format(c), "proxy": float(v)} for c, v in zip(cells, vals)]
            if args.json:
                print_json({"space": space.name, "run_id": spec.resolved_run_id(), "proxy": spec.proxy,
                            "cells": rows})
            else:
                print(f"run id {spec.resolved_run_id()}: {len(cells)} cells, proxy {spec.proxy} from "
                      f"{min(vals):.4g} to {max(vals):.4g}")
                for r in rows:
                    print(f"{r['proxy']:>14.6g}  {r['arch_str']}")
            return 0
        scratch = claim_workdir(store.path.parent / "campaign-tmp")  # also removes what stopped runs left there
        try:
            if remote is not None:
                measure = remote_measurer(spec, remote, scratch.path)
            else:
                measure = local_measurer(spec, scratch.path)
            report = run_campaign(spec, store, cells, measure, progress=not args.no_progress,
                                  host=remote.description if remote else "", ledger=ledger)
        finally:
            scratch.release()
            if remote is not None:
                remote.close()
        out = {"space": space.name, **report.to_dict()}
        if args.table_out:
            if other:
                from hwdiffnas.campaign_space import write_arch_table

                n_rows = write_arch_table(store, space.name, cfg.name, dataset, args.table_out, args.statistic)
            else:
                n_rows = write_measured_table(store, cfg.name, args.table_out, statistic=args.statistic)
            out["table_out"] = {"path": args.table_out, "rows": n_rows, "statistic": args.statistic}
        if args.estimate:
            table, n_meas, quality = estimate_device(store, cfg.name, setting=dataset, statistic=args.statistic)
            out["estimate"] = {"table": table, "measured_cells": n_meas, "statistic": args.statistic,
                               "held_out": quality.to_dict() if quality else None}
    finally:
        store.close()
    if args.json:
        print_json(out)
    else:
        print(f"campaign {out['run_id']} on {out['device']}: {out['complete']}/{out['planned']} cells measured "
              f"({out['already_done']} from earlier runs, {out['measured_ok']} now, {out['failed']} failed) in "
              f"{out['seconds']:.0f} s")
        for f in out["failures"][:10]:
            print(f"  failed: {f['arch_str']}: {f['error'].splitlines()[0] if f['error'] else ''}")
        if "table_out" in out:
            print(f"wrote {out['table_out']['rows']} measured cells to {out['table_out']['path']}")
        if "estimate" in out:
            e = out["estimate"]
            q = e["held_out"]
            extra = (f"; held-out Spearman {q['spearman']:.3f}, MAPE {q['mape_pct']:.1f}% "
                     f"({q['n_train']} train / {q['n_test']} test)") if q else ""
            print(f"wrote {e['table']}: {e['measured_cells']} measured cells + estimates{extra}; "
                  f"use --device {e['table']}")
    return 0 if out["failed"] == 0 else 1


def _check_writable_file(name: str, option: str) -> None:
    """Refuse, before any measuring, an output file that could not be written afterwards."""
    import os
    from pathlib import Path

    path = Path(name).expanduser()
    folder = path.parent
    if path.is_dir():
        raise UserError(f"{option} {name} is a folder; give a file name, e.g. {path / 'table.csv'}")
    if not folder.is_dir():
        raise UserError(f"{option} {name}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"{option} {name}: no permission to write there")


def _store(args: argparse.Namespace, need_index: bool) -> Any:
    from hwdiffnas.store import Store

    if need_index:
        from hwdiffnas.benchmark import open_store

        return open_store(args.data_dir, require_accuracy=False, packaged=False, space=args.space)
    from hwdiffnas.devices import default_registry

    try:
        return Store.create(args.data_dir, devices=default_registry())
    except OSError as exc:
        raise UserError(f"cannot create the store: {exc}") from exc
