"""Where a configured device's latency/energy tables come from, for errors about a device without data."""

from __future__ import annotations

from typing import Any

from hwdiffnas.datadir import IMPORT_HINT

# where each table source of a device config comes from, and the command that brings it into the store
SOURCE_HINTS: dict[str, str] = {
    "help": f"HELP's table (latency_help_ms.csv): {IMPORT_HINT}",
    "eagle": f"Eagle/LatBench's table (latency_eagle_ms.csv): {IMPORT_HINT}",
    "hw360": f"HW-NAS-Bench-360's table (latency_hw360_c100.csv): {IMPORT_HINT}",
    "hwnasbench": "HW-NAS-Bench's own file, which is not among the NB201 tables: "
                  "hwdiffnas data import HW-NAS-Bench-v1_0.pickle --trust-pickle (a pickle: trusted files only)",
}


def data_source_hint(cfg: Any, metric: str = "latency") -> str:
    """'its latencies come from …' for a ``DeviceConfig``: which files hold its tables and how to import
    them, or the campaign that measures it."""
    sources = list(dict.fromkeys(t.source for t in cfg.tables if t.metric == metric))
    steps = [SOURCE_HINTS[s] for s in sources if s in SOURCE_HINTS]
    what = "latencies" if metric == "latency" else f"{metric} values"
    campaign = f"hwdiffnas campaign --device {cfg.name}"
    if not steps:
        return f"its {what} are measured, not tabulated: {campaign}" if metric == "latency" else \
            f"no {metric} table is known for it"
    text = f"its {what} come from " + "; or ".join(steps)
    return text + f"; or measure it: {campaign}" if metric == "latency" and "measured" in sources else text


def no_latency_data(cfg: Any, have_store: bool) -> str:
    """The error for a configured device without latencies, with or without a benchmark store."""
    where = "in the benchmark store" if have_store else "here (no benchmark store, and the shipped generator " \
                                                        "was not trained on it)"
    return (f"device {cfg.name!r} has no latency data {where}; {data_source_hint(cfg)} "
            "(or give measured rows with --device-table FILE.csv)")
