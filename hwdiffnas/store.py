"""The benchmark store: one SQLite file (WAL mode) holding cells, accuracies, latency/energy tables and
on-device measurements.

Every value is keyed by its architecture: the pair (``space``, exact architecture string) is unique in ``cells``
(never an equivalence key: members of one NATS class differ in latency). An NB201 cell's integer key
(``cell_key``) is the base-5 number of its six op ids in arch-string edge order — a function of the cell alone,
bijective with its arch string — never the row number of some file. The NB201 index is a column of ``cells``
(filled by importing ``arch_index.csv``). The tables hold NB201 cells today; `Store.check_space` refuses other
spaces by name. Stores written before the ``space`` column get it (default ``nb201``) when opened for writing;
read-only they read as all-NB201.

Tables::

    meta(key, value)
    cells(cell_key, arch_str, ops, connected, nats_unique_str, nb201_idx, iso_rep_idx, space)
                 UNIQUE(arch_str) (NB201 alone), so UNIQUE(space, arch_str)
    accuracy_series(series_id, dataset, column_name, source, source_column, file, n, imported_at)
    accuracy(series_id, cell_key, value)                 -- percent
    hw_series(series_id, device, source, column_name, setting, metric, unit, file, n, imported_at)
    hw_value(series_id, cell_key, value)                 -- ms (latency) or mJ (energy)
    measurements(id, run_id, device, cell_key, arch_str, runtime, runtime_version, host,
                 settings_json, stats_json, median_ms, status, error, created_at)
                 UNIQUE(device, run_id, cell_key)
    imports(id, path, kind, detail, rows, seconds, started_at, finished_at, tool_version)
    space_measurements(...)  -- measurements outside NB201, keyed by (space, arch string): `hwdiffnas.store_space`

The DDL is `hwdiffnas.store_schema`; how a device name finds its table (`Store.latency` and friends) is
`hwdiffnas.store_devices`.

Writers open short ``BEGIN IMMEDIATE`` transactions and wait on a busy timeout, so several processes may
write at once; a crash mid-transaction leaves the previous committed state.
"""

from __future__ import annotations

import itertools
import json
import math
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from hwdiffnas import __version__
from hwdiffnas.datadir import IMPORT_HINT, STORE_FILENAME, resolve_data_dir
from hwdiffnas.errors import UserError
from hwdiffnas.space import NUM_CELLS, Cell, all_cells, cell_code, code_to_cell
from hwdiffnas.store_devices import DeviceCatalog, DeviceTables, NoDevices
from hwdiffnas.store_schema import SCHEMA as _SCHEMA
from hwdiffnas.store_schema import SPACE_COLUMN
from hwdiffnas.storefile import open_connection, readonly_error

SCHEMA_VERSION = 1



cell_key = cell_code
"""The store key of a cell: its code (`hwdiffnas.space.cell_code`, 0 .. 15624)."""
cell_from_key = code_to_cell


def _rows_in_key_order(series_id: int, keys: Sequence[int], values: Sequence[float]) -> Iterator[tuple]:
    """(series_id, key, value) rows sorted by key: primary-key order makes the inserts sequential appends."""
    k = np.asarray(keys, dtype=np.int64)
    order = np.argsort(k, kind="stable")
    return zip(itertools.repeat(series_id), k[order].tolist(), np.asarray(values, dtype=np.float64)[order].tolist())


def _json_dict(text: str) -> dict[str, Any]:
    """A stored JSON object column; an unreadable value (hand-edited, damaged) reads as ``{}``."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def now_iso() -> str:
    """UTC time stamp, ISO 8601, seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Measurement:
    """One on-device measurement row."""

    run_id: str
    device: str
    cell: Cell
    median_ms: float | None
    status: str
    error: str = ""
    runtime: str = ""
    runtime_version: str = ""
    host: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""

    @property
    def arch_str(self) -> str:
        return self.cell.arch_str


@dataclass(frozen=True)
class SeriesInfo:
    """Description of one stored accuracy or hardware series."""

    kind: str  # "accuracy" | "latency" | "energy"
    name: str  # dataset (accuracy) or device
    column: str
    source: str
    setting: str
    n: int
    file: str
    imported_at: str


class Store(DeviceTables):
    """Connection to the SQLite store. Use `open_store` (in `hwdiffnas.benchmark`) to open an existing one.

    ``devices``: the configured devices whose tables `latency`/`energy`/`devices` resolve (their preferred
    table first); without it the store knows the devices by their stored names only."""

    def __init__(self, path: Path | str, create: bool = False, devices: DeviceCatalog | None = None) -> None:
        self.path = Path(path)
        self.catalog: DeviceCatalog = devices if devices is not None else NoDevices()
        if not create and not self.path.is_file():
            raise UserError(f"no benchmark store at {self.path}; import the data first: {IMPORT_HINT}")
        self.conn, self.readonly = open_connection(self.path, create)
        self._key_to_idx: np.ndarray | None = None
        self._cells: tuple[np.ndarray, list[Cell]] | None = None
        try:
            self._check_version(missing_ok=create)
            if create:
                self._create()
            self._add_space_column()
        except BaseException:
            self.conn.close()
            raise

    def _check_version(self, missing_ok: bool) -> None:
        """Refuse a store of another schema version (reads and writes alike)."""
        version = self.meta("schema_version")
        if version is None:
            if missing_ok:
                return
            raise UserError(f"{self.path} is not a hwdiffnas store (no schema); import again: {IMPORT_HINT}")
        if version != str(SCHEMA_VERSION):
            raise UserError(f"{self.path} has store schema {version}, this hwdiffnas reads and writes schema "
                            f"{SCHEMA_VERSION}; use a matching hwdiffnas, or import into another data directory "
                            f"with --data-dir DIR: {IMPORT_HINT}")

    # --- lifecycle -----------------------------------------------------------------------------------
    @classmethod
    def create(cls, data_dir: Path | str | None = None, devices: DeviceCatalog | None = None) -> Store:
        """Open the store in ``data_dir`` for writing, creating the file and schema when absent."""
        d = resolve_data_dir(data_dir)
        d.mkdir(parents=True, exist_ok=True)
        return cls(d / STORE_FILENAME, create=True, devices=devices)

    def _create(self) -> None:
        with self.transaction() as cur:
            for stmt in _SCHEMA.split(";\n"):
                if stmt.strip():
                    cur.execute(stmt)
            if cur.execute("SELECT COUNT(*) FROM cells").fetchone()[0] == 0:
                cur.executemany(
                    "INSERT INTO cells (cell_key, arch_str, ops, connected, nats_unique_str) VALUES (?,?,?,?,?)",
                    ((k, c.arch_str, ",".join(map(str, c.ops)), int(c.is_connected), c.nats_unique_str)
                     for k, c in enumerate(all_cells())),  # lexicographic op order == cell_key order
                )
            cur.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            cur.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('created_at', ?)", (now_iso(),))

    def _has_space_column(self) -> bool:
        return any(r[1] == "space" for r in self.conn.execute("PRAGMA table_info(cells)"))

    def _add_space_column(self) -> None:
        """Give a store written before the ``space`` column the column (every row ``nb201``), in place; a
        read-only store is left as it is (it reads as all-NB201)."""
        if self.readonly or self.meta("schema_version") is None or self._has_space_column():
            return
        with self.transaction() as cur:
            cur.execute(SPACE_COLUMN)

    def spaces(self) -> list[str]:
        """The search spaces whose architectures the store holds."""
        if not self._has_space_column():
            return ["nb201"]
        return [r[0] for r in self.conn.execute("SELECT DISTINCT space FROM cells ORDER BY space")]

    def check_space(self, space: str) -> None:
        """Refuse a search space whose architectures the store does not hold, naming the ones it does."""
        held = self.spaces()
        if space not in held:
            raise UserError(f"benchmark store {self.path} holds search space(s) {', '.join(held)}, not {space!r}")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """A write transaction (``BEGIN IMMEDIATE``): committed on success, rolled back on any exception."""
        if self.readonly:
            raise readonly_error(self.path)
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            self.conn.rollback()
            raise
        else:
            cur.execute("COMMIT")
        finally:
            cur.close()
        self._key_to_idx = None

    # --- meta ----------------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:
            return None
        return None if row is None else row[0]

    # --- cells ---------------------------------------------------------------------------------------
    def _index(self) -> np.ndarray:
        """(15625,) NB201 index of each cell key, -1 where unknown."""
        if self._key_to_idx is None:
            arr = np.full(NUM_CELLS, -1, dtype=np.int64)
            rows = self.conn.execute("SELECT cell_key, nb201_idx FROM cells WHERE nb201_idx IS NOT NULL").fetchall()
            if rows:
                k, i = np.array(rows, dtype=np.int64).T
                arr[k] = i
            self._key_to_idx = arr
        return self._key_to_idx

    def has_index(self) -> bool:
        """True when every cell has its NB201 index (``arch_index.csv`` imported)."""
        return bool((self._index() >= 0).all())

    def _require_index(self) -> np.ndarray:
        idx = self._index()
        if not (idx >= 0).all():
            raise UserError(f"benchmark store {self.path} has no NB201 index (arch_index.csv); import it: "
                            f"{IMPORT_HINT}")
        return idx

    def cells(self) -> list[Cell]:
        """All 15,625 cells in NB201 index order (a new list each call)."""
        idx = self._require_index()
        if self._cells is None or self._cells[0] is not idx:
            self._cells = (idx, [cell_from_key(int(k)) for k in np.argsort(idx)])
        return list(self._cells[1])

    def index_of(self, cell: Cell | str) -> int:
        """NB201 index of a cell (or arch string)."""
        c = Cell.parse(cell) if isinstance(cell, str) else cell
        return int(self._require_index()[cell_key(c)])

    def keys_to_index(self, keys: np.ndarray) -> np.ndarray:
        """Map an array of cell keys to NB201 indices."""
        return self._require_index()[np.asarray(keys, dtype=np.int64)]

    def index_to_key(self) -> np.ndarray:
        """(15625,) cell key of each NB201 index."""
        idx = self._require_index()
        out = np.empty(NUM_CELLS, dtype=np.int64)
        out[idx] = np.arange(NUM_CELLS)
        return out

    def connected(self) -> np.ndarray:
        """(15625,) bool, NB201 index order: True when the cell has an input→output path."""
        idx = self._require_index()
        rows = np.array(self.conn.execute("SELECT cell_key, connected FROM cells").fetchall(), dtype=np.int64)
        out = np.zeros(NUM_CELLS, dtype=bool)
        out[idx[rows[:, 0]]] = rows[:, 1].astype(bool)
        return out

    def iso_rep_idx(self) -> np.ndarray:
        """(15625,) NATS class representative index of each cell, NB201 index order."""
        idx = self._require_index()
        rows = np.array(self.conn.execute("SELECT cell_key, iso_rep_idx FROM cells").fetchall(), dtype=np.int64)
        out = np.empty(NUM_CELLS, dtype=np.int64)
        out[idx[rows[:, 0]]] = rows[:, 1]
        return out

    # --- series --------------------------------------------------------------------------------------
    def _values(self, table: str, series_id: int) -> np.ndarray:
        idx = self._require_index()
        rows = self.conn.execute(f"SELECT cell_key, value FROM {table} WHERE series_id = ?", (series_id,)).fetchall()
        out = np.full(NUM_CELLS, np.nan)
        if rows:
            arr = np.array(rows, dtype=np.float64)
            out[idx[arr[:, 0].astype(np.int64)]] = arr[:, 1]
        return out

    def accuracy_series(self) -> list[SeriesInfo]:
        rows = self.conn.execute(
            "SELECT dataset, column_name, source, n, file, imported_at FROM accuracy_series "
            "ORDER BY dataset, column_name").fetchall()
        return [SeriesInfo("accuracy", d, c, s, d, n, f, t) for d, c, s, n, f, t in rows]

    def hw_series(self, device: str | None = None) -> list[SeriesInfo]:
        sql = "SELECT device, column_name, source, setting, metric, n, file, imported_at FROM hw_series"
        args: tuple = ()
        if device is not None:
            sql += " WHERE device = ?"
            args = (device,)
        rows = self.conn.execute(sql + " ORDER BY device, metric, source, setting", args).fetchall()
        return [SeriesInfo(m, dev, col, src, st, n, f, t) for dev, col, src, st, m, n, f, t in rows]

    def accuracy(self, dataset: str = "cifar100", column: str = "nats") -> np.ndarray:
        """(15625,) accuracy in percent, NB201 index order, NaN where missing."""
        from hwdiffnas.materialize import dataset_spec

        ds = dataset_spec(dataset).name
        row = self.conn.execute("SELECT series_id FROM accuracy_series WHERE dataset = ? AND column_name = ?",
                                (ds, column)).fetchone()
        if row is None:
            have = [f"{s.name}/{s.column}" for s in self.accuracy_series()]
            known = ", ".join(have) if have else "none"
            raise UserError(f"no accuracy column {column!r} for dataset {ds!r} in the store {self.path}; "
                            f"available (dataset/column): {known}. Import it: {IMPORT_HINT}")
        return self._values("accuracy", row[0])

    def hw_table(self, source: str, column: str, setting: str, metric: str = "latency") -> np.ndarray | None:
        """(15625,) values of one stored table, or None when it was never imported."""
        row = self.conn.execute(
            "SELECT series_id FROM hw_series WHERE source = ? AND column_name = ? AND setting = ? AND metric = ?",
            (source, column, setting, metric)).fetchone()
        return None if row is None else self._values("hw_value", row[0])

    # --- writes used by the importers ----------------------------------------------------------------
    def put_accuracy(self, cur: sqlite3.Cursor, dataset: str, column: str, source: str, source_column: str,
                     file: str, keys: Sequence[int], values: Sequence[float]) -> int:
        """Replace one accuracy series (inside a transaction)."""
        # the rows go explicitly: the importer turns foreign keys (and so ON DELETE CASCADE) off for speed
        cur.execute("DELETE FROM accuracy WHERE series_id IN (SELECT series_id FROM accuracy_series "
                    "WHERE dataset = ? AND column_name = ?)", (dataset, column))
        cur.execute("DELETE FROM accuracy_series WHERE dataset = ? AND column_name = ?", (dataset, column))
        cur.execute("INSERT INTO accuracy_series (dataset, column_name, source, source_column, file, n, imported_at)"
                    " VALUES (?,?,?,?,?,?,?)", (dataset, column, source, source_column, file, len(keys), now_iso()))
        sid = cur.lastrowid
        cur.executemany("INSERT INTO accuracy (series_id, cell_key, value) VALUES (?,?,?)",
                        _rows_in_key_order(sid, keys, values))
        return len(keys)

    def put_hw(self, cur: sqlite3.Cursor, device: str, source: str, column: str, setting: str, metric: str,
               file: str, keys: Sequence[int], values: Sequence[float]) -> int:
        """Replace one latency/energy series (inside a transaction)."""
        cur.execute("DELETE FROM hw_value WHERE series_id IN (SELECT series_id FROM hw_series WHERE source = ? "
                    "AND column_name = ? AND setting = ? AND metric = ?)", (source, column, setting, metric))
        cur.execute("DELETE FROM hw_series WHERE source = ? AND column_name = ? AND setting = ? AND metric = ?",
                    (source, column, setting, metric))
        unit = "ms" if metric == "latency" else "mJ"
        cur.execute("INSERT INTO hw_series (device, source, column_name, setting, metric, unit, file, n, imported_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?)", (device, source, column, setting, metric, unit, file, len(keys),
                                                    now_iso()))
        sid = cur.lastrowid
        cur.executemany("INSERT INTO hw_value (series_id, cell_key, value) VALUES (?,?,?)",
                        _rows_in_key_order(sid, keys, values))
        return len(keys)

    def drop_orphan_values(self, cur: sqlite3.Cursor) -> int:
        """Delete value rows whose series is gone (left by imports that ran without ON DELETE CASCADE)."""
        n = 0
        for values, series in (("accuracy", "accuracy_series"), ("hw_value", "hw_series")):
            n += cur.execute(f"DELETE FROM {values} WHERE series_id NOT IN (SELECT series_id FROM {series})").rowcount
        return n

    def put_index(self, cur: sqlite3.Cursor, rows: Iterable[tuple[int, int, int]]) -> None:
        """Set (nb201_idx, iso_rep_idx) for cells given as (cell_key, idx, iso_rep_idx) (inside a transaction)."""
        cur.execute("UPDATE cells SET nb201_idx = NULL, iso_rep_idx = NULL")
        cur.executemany("UPDATE cells SET nb201_idx = ?, iso_rep_idx = ? WHERE cell_key = ?",
                        ((i, r, k) for k, i, r in rows))

    def set_meta(self, cur: sqlite3.Cursor, key: str, value: str) -> None:
        cur.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (key, value))

    def log_import(self, cur: sqlite3.Cursor, path: str, kind: str, detail: str, rows: int, seconds: float,
                   started_at: str) -> None:
        cur.execute("INSERT INTO imports (path, kind, detail, rows, seconds, started_at, finished_at, tool_version)"
                    " VALUES (?,?,?,?,?,?,?,?)", (path, kind, detail, rows, seconds, started_at, now_iso(),
                                                  __version__))

    def imports(self, limit: int = 50) -> list[dict[str, Any]]:
        """The most recent import log entries, newest first."""
        cols = ("path", "kind", "detail", "rows", "seconds", "started_at", "finished_at", "tool_version")
        rows = self.conn.execute(f"SELECT {', '.join(cols)} FROM imports ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(zip(cols, r)) for r in rows]

    # --- measurements --------------------------------------------------------------------------------
    def record_measurement(self, device: str, run_id: str, cell: Cell | str, *, median_ms: float | None = None,
                           stats: dict[str, Any] | None = None, status: str = "ok", error: str = "",
                           runtime: str = "", runtime_version: str = "", host: str = "",
                           settings: dict[str, Any] | None = None) -> int:
        """Store one measurement; a second record for the same (device, run_id, cell) replaces the first.

        ``median_ms`` defaults to ``stats["median_ms"]``. A ``status="ok"`` row needs a finite positive median.
        Returns the row id.
        """
        c = Cell.parse(cell) if isinstance(cell, str) else cell
        if status not in ("ok", "failed"):
            raise UserError(f"measurement status must be 'ok' or 'failed', got {status!r}")
        stats = dict(stats or {})
        if median_ms is None and stats.get("median_ms") is not None:
            median_ms = float(stats["median_ms"])
        if median_ms is not None:
            median_ms = float(median_ms)
            stats.setdefault("median_ms", median_ms)
        if status == "ok" and (median_ms is None or not math.isfinite(median_ms) or median_ms <= 0):
            raise UserError(f"an ok measurement of {c.arch_str} on {device!r} needs a positive finite median_ms, "
                            f"got {median_ms!r}")
        if not run_id or not device:
            raise UserError("a measurement needs a device name and a run id")
        args = (run_id, device, cell_key(c), c.arch_str, runtime, runtime_version, host,
                json.dumps(settings or {}, sort_keys=True), json.dumps(stats, sort_keys=True), median_ms,
                status, error, now_iso())
        with self.transaction() as cur:
            cur.execute(
                "INSERT INTO measurements (run_id, device, cell_key, arch_str, runtime, runtime_version, host, "
                "settings_json, stats_json, median_ms, status, error, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (device, run_id, cell_key) DO UPDATE SET runtime = excluded.runtime, "
                "runtime_version = excluded.runtime_version, host = excluded.host, "
                "settings_json = excluded.settings_json, stats_json = excluded.stats_json, "
                "median_ms = excluded.median_ms, status = excluded.status, error = excluded.error, "
                "created_at = excluded.created_at", args)
            row = cur.execute("SELECT id FROM measurements WHERE device = ? AND run_id = ? AND cell_key = ?",
                              (device, run_id, cell_key(c))).fetchone()
        return int(row[0])

    def measured(self, device: str, run_id: str | None = None, status: str | None = None) -> list[Measurement]:
        """Measurements of ``device`` (optionally one run, optionally one status), oldest first."""
        sql = ("SELECT run_id, device, cell_key, median_ms, status, error, runtime, runtime_version, host, "
               "settings_json, stats_json, created_at FROM measurements WHERE device = ?")
        args: list[Any] = [device]
        if run_id is not None:
            sql += " AND run_id = ?"
            args.append(run_id)
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        out = []
        for r in self.conn.execute(sql + " ORDER BY id", args):
            out.append(Measurement(r[0], r[1], cell_from_key(r[2]), r[3], r[4], r[5], r[6], r[7], r[8],
                                   _json_dict(r[9]), _json_dict(r[10]), r[11]))
        return out

    def measured_latency(self, device: str) -> np.ndarray:
        """(15625,) median over all ok measurements of each cell on ``device`` (ms), NaN where unmeasured."""
        rows = self.conn.execute(
            "SELECT cell_key, median_ms FROM measurements WHERE device = ? AND status = 'ok' "
            "AND median_ms IS NOT NULL ORDER BY cell_key", (device,)).fetchall()
        out = np.full(NUM_CELLS, np.nan)
        if not rows:
            return out
        idx = self._require_index()
        arr = np.array(rows, dtype=np.float64)
        keys = arr[:, 0].astype(np.int64)
        bounds = np.flatnonzero(np.diff(keys)) + 1
        for seg_k, seg_v in zip(np.split(keys, bounds), np.split(arr[:, 1], bounds)):
            out[idx[seg_k[0]]] = float(np.median(seg_v))
        return out

    # --- summary -------------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        q = self.conn.execute
        return {
            "cells": q("SELECT COUNT(*) FROM cells").fetchone()[0],
            "indexed_cells": q("SELECT COUNT(*) FROM cells WHERE nb201_idx IS NOT NULL").fetchone()[0],
            "accuracy_values": q("SELECT COUNT(*) FROM accuracy").fetchone()[0],
            "hw_values": q("SELECT COUNT(*) FROM hw_value").fetchone()[0],
            "measurements": q("SELECT COUNT(*) FROM measurements").fetchone()[0],
        }
