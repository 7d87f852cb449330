"""The shared parts of the importers: parsed series and files, the import report, file errors with their line,
the device-config targets of a table's columns, the NB201 index context and the small CSV parsing helpers."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from hwdiffnas.devices import default_registry
from hwdiffnas.errors import UserError
from hwdiffnas.space import NUM_CELLS, NUM_EDGES, Cell
from hwdiffnas.store import Store

INDEX_COLUMNS = ("idx", "arch_str", *(f"op_e{i}" for i in range(NUM_EDGES)), "connected", "iso_rep_idx")
ACCURACY_COLUMNS: dict[str, tuple[str, str]] = {
    # file column -> (dataset, store column)
    "c10_test_200ep__natstss": ("cifar10", "nats"),
    "c100_test_200ep__natstss": ("cifar100", "nats"),
    "in16_test_200ep__natstss": ("ImageNet16-120", "nats"),
    "c100_test_200ep__nb201v11": ("cifar100", "nb201v11"),
    "c10valid_val_12ep__nb201v11": ("cifar10", "12ep-val"),
    "c10_test_12ep__nb201v11": ("cifar10", "12ep-test"),
    "c100_val_12ep__nb201v11": ("cifar100", "12ep-val"),
    "c100_test_12ep__nb201v11": ("cifar100", "12ep-test"),
    "in16_val_12ep__nb201v11": ("ImageNet16-120", "12ep-val"),
    "in16_test_12ep__nb201v11": ("ImageNet16-120", "12ep-test"),
}
NATS_CSV_COLUMNS: dict[str, str] = {
    "CIFAR10TestAccuracy200Epochs": "cifar10",
    "CIFAR100TestAccuracy200Epochs": "cifar100",
    "ImageNetTestAccuracy200Epochs": "ImageNet16-120",
}
CSV_SOURCES = ("help", "eagle", "hw360")
HWNB_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
USER_HEADER = ["arch_str", "latency_ms"]
USER_SOURCE = "user"


class ImportFileError(UserError):
    """A bad input file; the message starts with ``file:line:``."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line


@dataclass
class Series:
    """One parsed column: accuracy (``name`` = dataset) or hardware metric (``name`` = device)."""

    kind: str  # "accuracy" | "hw"
    name: str
    source: str
    column: str  # store column (accuracy) / source column (hw)
    source_column: str = ""
    setting: str = ""
    metric: str = "latency"
    keys: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    @property
    def ident(self) -> tuple[str, ...]:
        if self.kind == "accuracy":
            return ("accuracy", self.name, self.column)
        return ("hw", self.source, self.column, self.setting, self.metric)


@dataclass
class Parsed:
    """Everything read from one file, validated, ready to write."""

    path: Path
    kind: str
    series: list[Series] = field(default_factory=list)
    index_rows: list[tuple[int, int, int]] | None = None
    meta: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class ImportReport:
    """What an import did: the files written and the files skipped (with the reason)."""

    imported: list[Parsed]
    skipped: list[tuple[Path, str]]
    seconds: float
    store_path: Path

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": str(self.store_path),
            "seconds": round(self.seconds, 3),
            "imported": [{"path": str(p.path), "kind": p.kind, "rows": p.rows, "series": len(p.series),
                          "seconds": round(p.seconds, 3), "notes": p.notes} for p in self.imported],
            "skipped": [{"path": str(p), "reason": r} for p, r in self.skipped],
        }


# --- the device-config mapping -------------------------------------------------------------------------
@dataclass(frozen=True)
class ColumnTarget:
    device: str
    column: str
    metric: str
    setting: str


def column_targets(source: str) -> dict[str, list[ColumnTarget]]:
    """Source column → the device tables (from the device configs) it fills."""
    out: dict[str, list[ColumnTarget]] = {}
    for cfg in default_registry():
        for t in cfg.tables:
            if t.source == source:
                out.setdefault(t.column, []).append(ColumnTarget(cfg.name, t.column, t.metric, t.setting))
    return out


def single_target(source: str, column: str, path: Path, line: int | None) -> ColumnTarget:
    targets = column_targets(source).get(column)
    if not targets:
        known = ", ".join(sorted(column_targets(source)))
        raise ImportFileError(path, line, f"column {column!r} belongs to no device config for source {source!r}; "
                                          f"known {source} columns: {known}")
    return targets[0]


# --- context: the NB201 index --------------------------------------------------------------------------
class CellInfo(NamedTuple):
    key: int
    ops: tuple[str, ...]  # op ids as text, for comparing with CSV fields
    connected: bool
    nats: str


class ImportContext:
    """What the parsers look up: canonical cells (from the store's cells table) and the NB201 index."""

    def __init__(self, store: Store) -> None:
        rows = store.conn.execute("SELECT cell_key, arch_str, ops, connected, nats_unique_str FROM cells")
        self.by_arch: dict[str, CellInfo] = {a: CellInfo(k, tuple(o.split(",")), bool(c), n)
                                              for k, a, o, c, n in rows}
        self.idx_to_key: np.ndarray | None = store.index_to_key() if store.has_index() else None
        self.iso: np.ndarray | None = store.iso_rep_idx() if self.idx_to_key is not None else None

    def cell(self, text: str, path: Path, line: int | None) -> CellInfo:
        """The cell of an arch string; a string that is not a canonical cell raises with file:line."""
        info = self.by_arch.get(text.strip())
        if info is None:
            cell = parse_cell(text, path, line)  # raises for anything that is not an arch string
            info = self.by_arch[cell.arch_str]
        return info

    def require_index(self, path: Path) -> np.ndarray:
        if self.idx_to_key is None:
            raise ImportFileError(path, None, "this file is keyed by NB201 index; import arch_index.csv first "
                                              "(or in the same command)")
        return self.idx_to_key


# --- small parsing helpers -----------------------------------------------------------------------------
def parse_float(text: str, path: Path, line: int, column: str, allow_empty: bool) -> float | None:
    s = text.strip()
    if s == "":
        if allow_empty:
            return None
        raise ImportFileError(path, line, f"empty value in column {column!r}")
    try:
        v = float(s)
    except ValueError:
        raise ImportFileError(path, line, f"column {column!r}: {text!r} is not a number") from None
    if not math.isfinite(v):
        raise ImportFileError(path, line, f"column {column!r}: {text!r} is not a finite number (NaN/inf)")
    if v < 0:
        raise ImportFileError(path, line, f"column {column!r}: negative value {v}")
    return v


def parse_int(text: str, path: Path, line: int, column: str, lo: int = 0, hi: int = NUM_CELLS - 1) -> int:
    try:
        v = int(text.strip())
    except ValueError:
        raise ImportFileError(path, line, f"column {column!r}: {text!r} is not an integer") from None
    if not lo <= v <= hi:
        raise ImportFileError(path, line, f"column {column!r}: {v} out of range {lo}..{hi}")
    return v


def parse_cell(text: str, path: Path, line: int) -> Cell:
    try:
        return Cell.from_str(text)
    except UserError as exc:
        raise ImportFileError(path, line, f"unknown arch string: {exc}") from None


def open_csv(path: Path) -> tuple[list[str], Any, Any]:
    try:
        fh = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise ImportFileError(path, None, f"cannot read: {exc.strerror}") from exc
    reader = csv.reader(fh)
    try:
        header = next(reader)
    except StopIteration:
        fh.close()
        raise ImportFileError(path, 1, "empty file (no header)") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        fh.close()
        raise ImportFileError(path, 1, f"not a readable CSV file: {exc}") from None
    return [h.strip() for h in header], reader, fh


def csv_rows(reader: Any, path: Path, width: int) -> Iterable[tuple[int, list[str]]]:
    """(line, row) of each data row, checking the field count."""
    try:
        for row in reader:
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != width:
                raise ImportFileError(path, line, f"expected {width} fields, got {len(row)} (truncated or "
                                                  "malformed row)")
            yield line, row
    except csv.Error as exc:
        raise ImportFileError(path, reader.line_num, f"malformed CSV: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ImportFileError(path, reader.line_num + 1, f"not UTF-8 text: {exc}") from None


def check_complete(path: Path, seen: dict[int, int], last_line: int, what: str = "idx") -> None:
    if len(seen) != NUM_CELLS:
        missing = sorted(set(range(NUM_CELLS)) - set(seen))
        raise ImportFileError(path, last_line, f"only {len(seen)} of {NUM_CELLS} cells ({what} {missing[0]} and "
                                               f"{len(missing) - 1} more missing; truncated file?)")
