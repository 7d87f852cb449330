"""``hwdiffnas devices``: the known devices, their latency tables and how each is measured."""

from __future__ import annotations

import argparse
from typing import Any

from hwdiffnas.cli.output import format_table, print_json


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("devices", parents=parents,
                              help="list devices, their latency tables and measurement route",
                              description="List the known devices (built-in device_configs/*.toml plus "
                                          "$HWDIFFNAS_DEVICE_CONFIGS): description, latency tables and how the "
                                          "device is (or could be) measured.")
    p.add_argument("name", nargs="?", help="show one device (name or alias)")
    p.add_argument("--space", help="only devices with latency data in this search space, with the source of each "
                                   "(see `hwdiffnas spaces`)")
    p.set_defaults(handler=run)


def _route(d: Any) -> str:
    m = d.measure
    if m.route == "table-only":
        return "table only"
    return f"{m.route}: {m.runtime} {m.precision}, {m.threads} thr, {m.input_setting}"


def _sources(d: Any) -> str:
    seen: list[str] = []
    for t in d.latency_tables:
        label = f"{t.source}:{t.column}"
        if label not in seen:
            seen.append(label)
    return ", ".join(seen) or "-"


def run(args: argparse.Namespace) -> int:
    from hwdiffnas.devices import default_registry
    from hwdiffnas.packaged import shipped_status, shipped_table

    registry = default_registry()
    devices = [registry.get(args.name)] if args.name else list(registry)
    if args.space and args.space != "nb201":
        return _run_space(args, devices)
    if args.space:
        devices = [d for d in devices if d.tables or not d.table_only]
    if args.json:
        print_json({"devices": [d.to_dict() | {"shipped_table": shipped_table(d),
                                                    "shipped": shipped_status(d)} for d in devices]})
        return 0
    rows = [(d.name, d.kind, _sources(d), shipped_status(d), _route(d), d.description) for d in devices]
    print(format_table(["name", "kind", "latency tables", "shipped table", "measured by", "description"], rows))
    print("shipped table: the exact table inside the package (used without a data directory); 'no' devices use the "
          "shipped latency estimators until you import their table (hwdiffnas data import DIR)")
    return 0


def _space_source(space: Any, t: Any, dataset: str) -> str:
    """What a device's table in a non-NB201 space is and how to use it."""
    if t.source == "lut":
        exact = t.column in space.latency_tables(dataset) if dataset in space.datasets else False
        return "exact lookup table, shipped" if exact else "lookup table missing from this installation"
    if t.source == "help":
        rows = space.measured_rows(dataset) if dataset in space.datasets else {}
        if t.column in rows:
            return f"{len(rows[t.column].archs):,} measured architectures, shipped: exact there, estimate elsewhere"
        return "measured rows missing from this installation"
    return "measured rows"


def _run_space(args: argparse.Namespace, devices: list[Any]) -> int:
    from hwdiffnas.plugins import get_space

    space = get_space(args.space)
    rows = []
    listed = []
    for d in devices:
        tables = d.tables_in(space.name)
        if not tables and args.name is None:
            continue
        entries = [{"source": t.source, "column": t.column, "setting": t.setting,
                    "status": _space_source(space, t, t.setting)} for t in tables]
        listed.append({"name": d.name, "kind": d.kind, "space": space.name, "tables": entries,
                       "measure": dict(d.measure.__dict__), "description": d.description})
        rows.append((d.name, d.kind, ", ".join(f"{e['source']}:{e['setting']}" for e in entries) or "-",
                     "; ".join(e["status"] for e in entries) or "no data in this space", _route(d)))
    if args.json:
        print_json({"space": space.name, "devices": listed})
        return 0
    print(format_table(["name", "kind", f"{space.name} tables", "status", "measured by"], rows))
    print(f"devices without data in {space.name!r} can be measured: hwdiffnas profile --space {space.name} ... "
          "or a campaign")
    return 0
