"""What to tell a user whose device is known by name but has no latency data yet."""

from __future__ import annotations

from typing import Any

from hwdiffnas.datadir import IMPORT_HINT

# where each table source of a device config comes from, and the command that brings it into the store
SOURCE_HINTS: dict[str, str] = {
    "help": f"HELP's latency table (latency_help_ms.csv): {IMPORT_HINT}",
    "eagle": f"Eagle/LatBench's table (latency_eagle_ms.csv): {IMPORT_HINT}",
    "hw360": f"HW-NAS-Bench-360's table (latency_hw360_c100.csv): {IMPORT_HINT}",
    "hwnasbench": "HW-NAS-Bench's own file, which is not among the NB201 tables: "
                  "hwdiffnas data import HW-NAS-Bench-v1_0.pickle --trust-pickle (a pickle: trusted files only)",
}


def no_latency_data(cfg: Any, have_store: bool) -> str:
    """The error for a configured device (``DeviceConfig``) without latencies: where they come from."""
    where = "in the benchmark store" if have_store else "here (no benchmark store, and the shipped generator " \
                                                        "was not trained on it)"
    sources = list(dict.fromkeys(t.source for t in cfg.latency_tables))
    steps = [SOURCE_HINTS[s] for s in sources if s in SOURCE_HINTS]
    if "measured" in sources or not steps:
        steps.append(f"measure it: hwdiffnas campaign --device {cfg.name}")
    return (f"device {cfg.name!r} has no latency data {where}; its latencies come from "
            + "; or ".join(steps) + " (or give measured rows with --device-table FILE.csv)")
