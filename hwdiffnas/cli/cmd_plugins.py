"""``hwdiffnas plugins``: the installed exporters, profilers, search methods and objectives, and whether each can
run here."""

from __future__ import annotations

import argparse
from typing import Any

KINDS = ("exporters", "profilers", "methods", "objectives")


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "plugins", parents=parents, help="list installed exporters, profilers, search methods and objectives",
        description="List the plug-ins hwdiffnas finds (entry points, built-ins, registered ones): exporters "
                    "(--format), profilers (--runtime), search methods (bench --method) and objectives (stand-ins "
                    "for accuracy where none exists), whether each loads and "
                    "its runtime is importable here, and the reason when it is not (e.g. the pip extra to install).")
    p.add_argument("--kind", choices=KINDS, action="append",
                   help="only this kind (repeatable; default: all)")
    p.set_defaults(handler=run)


def collect(kinds: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """``{kind: [plug-in record, …]}`` for the asked kinds (`hwdiffnas.plugins.PluginInfo` as dicts)."""
    from hwdiffnas.methods import methods
    from hwdiffnas.objectives import objectives
    from hwdiffnas.plugins import exporters, profilers

    registries = {"exporters": (exporters, True), "profilers": (profilers, True), "methods": (methods, False),
                  "objectives": (objectives, True)}
    return {k: [i.to_dict() for i in registries[k][0].describe(instantiate=registries[k][1])]
            for k in (kinds or KINDS)}


def run(args: argparse.Namespace) -> int:
    from hwdiffnas.cli.output import format_table, print_json

    out = collect(args.kind)
    if args.json:
        print_json(out)
        return 0
    for kind, items in out.items():
        print(f"{kind} ({sum(i['importable'] for i in items)} of {len(items)} usable here)")
        rows = [[i["name"], "yes" if i["importable"] else "no", i["origin"], i["extra"] or "-",
                 i["reason"] or i["description"] or "-"] for i in items]
        print(format_table(["name", "usable", "origin", "extra", "reason / description"], rows))
        print()
    return 0
