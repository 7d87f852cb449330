"""On-device measurements of architectures outside NB201, in the benchmark store.

NB201 measurements key cells by their integer code (`hwdiffnas.store`, table ``measurements``). Other spaces
have no such code (FBNet has 9^22 networks), so their measurements live in their own table, keyed by the space
and the architecture's exact string::

    space_measurements(id, space, device, run_id, arch_str, dataset, runtime, runtime_version, host,
                       settings_json, stats_json, median_ms, status, error, created_at)
                       UNIQUE(space, device, run_id, arch_str)

The table is created by the first write, so older stores stay readable as they are (they read as holding no
such measurements) and NB201's tables are untouched. A second write for the same key replaces the first.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.spaces.base import MeasuredRows

if TYPE_CHECKING:
    from hwdiffnas.store import Store

SCHEMA = """CREATE TABLE IF NOT EXISTS space_measurements (
    id INTEGER PRIMARY KEY,
    space TEXT NOT NULL,
    device TEXT NOT NULL,
    run_id TEXT NOT NULL,
    arch_str TEXT NOT NULL,
    dataset TEXT NOT NULL,
    runtime TEXT NOT NULL DEFAULT '',
    runtime_version TEXT NOT NULL DEFAULT '',
    host TEXT NOT NULL DEFAULT '',
    settings_json TEXT NOT NULL DEFAULT '{}',
    stats_json TEXT NOT NULL DEFAULT '{}',
    median_ms REAL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    error TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    UNIQUE (space, device, run_id, arch_str)
)"""

_COLUMNS = ("space", "device", "run_id", "arch_str", "dataset", "runtime", "runtime_version", "host",
            "settings_json", "stats_json", "median_ms", "status", "error", "created_at")


@dataclass(frozen=True)
class ArchMeasurement:
    """One measurement of an architecture of a space (by its exact string) on a device."""

    space: str
    device: str
    run_id: str
    arch_str: str
    dataset: str
    median_ms: float | None
    status: str
    error: str = ""
    runtime: str = ""
    runtime_version: str = ""
    host: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""


def record_arch_measurement(store: Store, space: str, device: str, run_id: str, arch_str: str, dataset: str, *,
                            stats: dict[str, Any] | None = None, status: str = "ok", error: str = "",
                            runtime: str = "", runtime_version: str = "", host: str = "",
                            settings: dict[str, Any] | None = None) -> int:
    """Store one measurement (its median is ``stats["median_ms"]``); returns the row id. An ``ok`` row needs a
    positive finite median; a second record for the same (space, device, run id, architecture) replaces it."""
    from hwdiffnas.store import now_iso

    if status not in ("ok", "failed"):
        raise UserError(f"measurement status must be 'ok' or 'failed', got {status!r}")
    if not (space and device and run_id and arch_str and dataset):
        raise UserError("a measurement needs a space, a device, a run id, an architecture and a dataset setting")
    stats = dict(stats or {})
    median = stats.get("median_ms")
    median = None if median is None else float(median)
    if status == "ok" and (median is None or not math.isfinite(median) or median <= 0):
        raise UserError(f"an ok measurement of {arch_str} on {device!r} needs a positive finite median_ms, "
                        f"got {median!r}")
    values = (space, device, run_id, arch_str, dataset, runtime, runtime_version, host,
              json.dumps(settings or {}, sort_keys=True), json.dumps(stats, sort_keys=True), median, status, error,
              now_iso())
    updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[4:])
    with store.transaction() as cur:
        cur.execute(SCHEMA)
        cur.execute(f"INSERT INTO space_measurements ({', '.join(_COLUMNS)}) VALUES ({','.join('?' * len(_COLUMNS))}) "
                    f"ON CONFLICT (space, device, run_id, arch_str) DO UPDATE SET {updates}", values)
        row = cur.execute("SELECT id FROM space_measurements WHERE space = ? AND device = ? AND run_id = ? "
                          "AND arch_str = ?", (space, device, run_id, arch_str)).fetchone()
    return int(row[0])


def arch_measured(store: Store, space: str, device: str | None = None, run_id: str | None = None,
                  status: str | None = None, dataset: str | None = None) -> list[ArchMeasurement]:
    """Measurements of ``space`` (optionally one device, run, status, dataset setting), oldest first; none in a
    store written before the table."""
    from hwdiffnas.store import _json_dict

    sql = f"SELECT {', '.join(_COLUMNS)} FROM space_measurements WHERE space = ?"
    args: list[Any] = [space]
    for col, value in (("device", device), ("run_id", run_id), ("status", status), ("dataset", dataset)):
        if value is not None:
            sql += f" AND {col} = ?"
            args.append(value)
    try:
        rows = store.conn.execute(sql + " ORDER BY id", args).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    return [ArchMeasurement(r[0], r[1], r[2], r[3], r[4], r[10], r[11], r[12], r[5], r[6], r[7],
                            _json_dict(r[8]), _json_dict(r[9]), r[13]) for r in rows]


def measured_arch_rows(store: Store, space: str, device: str, dataset: str,
                       statistic: str = "median") -> MeasuredRows | None:
    """The device's measured rows in ``space`` and ``dataset``'s setting: per architecture, the median over its
    ok measurements (all runs) of each one's ``statistic`` (median, min, mean, p90 of its timed runs); source
    ``measured:DEVICE``. None when it has none."""
    if statistic not in ("median", "min", "mean", "p90"):
        raise UserError(f"unknown statistic {statistic!r}; known: median, min, mean, p90")
    by_arch: dict[str, list[float]] = {}
    for m in arch_measured(store, space, device, status="ok", dataset=dataset):
        v = m.median_ms if statistic == "median" else m.stats.get(f"{statistic}_ms")
        if v is not None and math.isfinite(float(v)) and float(v) > 0:
            by_arch.setdefault(m.arch_str, []).append(float(v))
    if not by_arch:
        return None
    archs = tuple(sorted(by_arch))
    return MeasuredRows(archs, tuple(float(np.median(by_arch[a])) for a in archs), f"measured:{device}")


def measured_settings(store: Store, space: str, device: str) -> list[str]:
    """The dataset settings in which ``device`` has ok measurements of ``space``."""
    return sorted({m.dataset for m in arch_measured(store, space, device, status="ok")})
