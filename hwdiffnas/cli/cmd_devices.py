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
    if args.json:
        print_json({"devices": [d.to_dict() | {"shipped_table": shipped_table(d),
                                                    "shipped": shipped_status(d)} for d in devices]})
        return 0
    rows = [(d.name, d.kind, _sources(d), shipped_status(d), _route(d), d.description) for d in devices]
    print(format_table(["name", "kind", "latency tables", "shipped table", "measured by", "description"], rows))
    print("shipped table: the exact table inside the package (used without a data directory); 'no' devices use the "
          "shipped latency estimators until you import their table (hwdiffnas data import DIR)")
    return 0
