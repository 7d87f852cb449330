"""``hwdiffnas spaces``: the installed search spaces, their dataset settings and what each supports."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "spaces", parents=parents, help="list installed search spaces",
        description="List the search spaces hwdiffnas finds (entry-point group hwdiffnas.spaces, built-ins, "
                    "registered ones): size, dataset settings, the exporters with a space-specific path, whether "
                    "accuracy tables exist, and why a space does not load.")
    p.set_defaults(handler=run)


def _space_specific_exporters() -> dict[str, list[str]]:
    """Space name → the exporters whose space-specific path declares it (`Exporter.spaces`)."""
    from hwdiffnas.plugins import exporters

    out: dict[str, list[str]] = {}
    for name in exporters.names():
        try:
            declared = exporters.create(name).spaces
        except Exception:  # a broken exporter is `hwdiffnas plugins`' business, not this listing's
            continue
        for space in declared or ():
            out.setdefault(space, []).append(name)
    return out


def collect() -> list[dict[str, Any]]:
    """One record per installed space: `SearchSpace.describe` plus origin, or the load error; ``exporters`` adds
    the exporters that declare a space-specific path for the space."""
    from hwdiffnas.plugins import get_space, spaces

    by_space = _space_specific_exporters()
    out = []
    for info in spaces.describe(instantiate=False):
        rec: dict[str, Any] = {"name": info.name, "origin": info.origin, "target": info.target,
                               "loads": info.importable, "reason": info.reason}
        if info.importable:
            try:
                rec.update(get_space(info.name).describe())
                rec["exporters"] = sorted(set(rec["exporters"]) | set(by_space.get(info.name, [])))
            except Exception as exc:  # a broken plug-in is reported, never fatal to the listing
                rec.update(loads=False, reason=f"{type(exc).__name__}: {exc}")
        out.append(rec)
    return out


def run(args: argparse.Namespace) -> int:
    from hwdiffnas.cli.output import format_table, print_json

    items = collect()
    if args.json:
        print_json({"spaces": items})
        return 0
    rows = []
    for i in items:
        if not i["loads"]:
            rows.append([i["name"], "no", i["origin"], "-", "-", "-", i["reason"]])
            continue
        rows.append([i["name"], "yes", i["origin"], f"{i['size']:,}" if i["finite"] else f"{i['size']:.2g}",
                     ", ".join(i["datasets"]), ", ".join(i["exporters"]) or "-", i["description"]])
    print(format_table(["name", "loads", "origin", "size", "datasets", "space-specific exporters", "description"],
                       rows))
    return 0
