"""``hwdiffnas data import PATH... | data status``: fill and inspect the benchmark store."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from hwdiffnas.cli.output import format_table, print_json, progress


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("data", help="import benchmark tables into the store and show what it holds",
                              description="Import NB201 accuracy/latency files into the benchmark store "
                                          "(SQLite in the data directory) and show its contents.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True
    imp = sub.add_parser("import", parents=parents, help="import files or folders (folders: every recognized file)")
    imp.add_argument("paths", nargs="+", metavar="PATH", help="files or folders, e.g. ../shared/data/nb201")
    imp.add_argument("--trust-pickle", action="store_true",
                     help="also load pickle files (Eagle/LatBench, HW-NAS-Bench); only for trusted local files")
    imp.add_argument("--device", metavar="NAME",
                     help="device name for a user table of arch_str,latency_ms rows (a new device)")
    imp.set_defaults(handler=run_import)
    st = sub.add_parser("status", parents=parents, help="show the store: cells, accuracy columns, devices")
    st.set_defaults(handler=run_status)


def run_import(args: argparse.Namespace) -> int:
    from hwdiffnas.importers import import_paths

    report = import_paths(args.paths, args.data_dir, trust_pickle=args.trust_pickle, device=args.device,
                          progress=lambda it, total, desc: progress(it, total=total, desc=desc))
    if args.json:
        print_json(report.to_dict())
        return 0
    if not report.imported:
        for path, reason in report.skipped:
            print(f"{path}: {reason}")
        print("nothing imported")
        return 0
    rows = [(p.path.name, p.kind, p.rows, len(p.series), f"{p.seconds:.2f}", "; ".join(p.notes))
            for p in report.imported]
    print(format_table(["file", "kind", "rows", "series", "s", "notes"], rows))
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(f"imported {len(report.imported)} file(s) into {report.store_path} in {report.seconds:.1f} s")
    return 0


def status_dict(data_dir: Any) -> dict[str, Any]:
    """Everything `data status` shows, as a JSON-able dict."""
    import numpy as np

    from hwdiffnas.datadir import IMPORT_HINT, resolve_data_dir, store_path
    from hwdiffnas.devices import default_registry
    from hwdiffnas.store import Store

    path = store_path(data_dir)
    out: dict[str, Any] = {"data_dir": str(resolve_data_dir(data_dir)), "store": str(path), "exists": path.is_file()}
    if not path.is_file():
        out["hint"] = IMPORT_HINT
        return out
    with Store(path, devices=default_registry()) as store:
        out["counts"] = store.counts()
        out["has_index"] = store.has_index()
        out["spaces"] = store.spaces()
        out["accuracy"] = [{"dataset": s.name, "column": s.column, "source": s.source, "n": s.n, "file": s.file}
                           for s in store.accuracy_series()]
        devices = []
        conn = store.connected() if store.has_index() else None
        reg = default_registry()
        names = sorted(set(reg.names()) | set(store.latency_devices()))
        for name in names:
            entry: dict[str, Any] = {"device": name}
            cfg = reg.get(name) if name in reg else None
            entry["kind"] = cfg.kind if cfg else "user"
            try:
                if conn is None:
                    raise LookupError
                lat = store.latency(name)
                src = store.latency_source(name)
            except Exception:
                names = {"measured": "measurements", "hwnasbench": "the HW-NAS-Bench pickle"}
                needs = sorted({names.get(t.source, f"the {t.source} table") for t in cfg.tables}) if cfg else []
                entry.update(available=False, latency_n=0, source=None,
                             needs=" or ".join(needs) or "measurements")
                devices.append(entry)
                continue
            ok = np.isfinite(lat)
            entry.update(available=True, source=src, latency_n=int(ok.sum()),
                         connected_n=int((ok & conn).sum()),
                         median_ms=float(np.median(lat[ok & conn])) if (ok & conn).any() else math.nan,
                         settings=sorted({s.setting for s in store.hw_series(name) if s.kind == "latency"}),
                         energy=any(s.kind == "energy" for s in store.hw_series(name)))
            devices.append(entry)
        out["devices"] = devices
        out["imports"] = store.imports(10)
        out["help_hardware_embedding_index"] = store.meta("help_hardware_embedding_index")
    return out


def run_status(args: argparse.Namespace) -> int:
    info = status_dict(args.data_dir)
    if args.json:
        print_json(info)
        return 0
    print(f"data dir: {info['data_dir']}")
    if not info["exists"]:
        print(f"no store yet; import the data: {info['hint']}")
        return 1
    c = info["counts"]
    print(f"store:    {info['store']}")
    print(f"cells: {c['cells']} ({c['indexed_cells']} with NB201 index)   accuracy values: {c['accuracy_values']}   "
          f"latency/energy values: {c['hw_values']}   measurements: {c['measurements']}")
    print()
    print(format_table(["dataset", "column", "source", "cells"],
                       [(a["dataset"], a["column"], a["source"], a["n"]) for a in info["accuracy"]]))
    print()
    rows = []
    for d in info["devices"]:
        if d["available"]:
            rows.append((d["device"], d["kind"], d["source"], f"{d['latency_n']}/15625", d["connected_n"],
                         d["median_ms"], "yes" if d["energy"] else ""))
        else:
            rows.append((d["device"], d["kind"], f"(no data; needs {d['needs']})", "0/15625", 0, None, ""))
    print(format_table(["device", "kind", "latency table", "coverage", "connected", "median ms", "energy"], rows))
    return 0
