"""Importers: read the public NB201 benchmark files into the store.

Recognized formats (a folder imports every recognized file in it, recursively):

=====================  ==========================================================================
``nb201-index``        ``arch_index.csv`` (idx, arch_str, op_e0..5, connected, iso_rep_idx, nats_unique_str)
``accuracy-csv``       ``accuracy.csv`` (idx + NATS / NB201-v1.1 accuracy columns)
``help-csv``           ``latency_help_ms.csv``; ``eagle-csv`` ``latency_eagle_ms.csv``;
                       ``hw360-csv`` ``latency_hw360_c100.csv`` (idx + latency/energy columns)
``nats-csv``           nats-bench-landscape ``nats_bench.csv`` (ArchitectureString + accuracies)
``help-pt``            HELP ``<device>.pt`` torch zip files: a list of 15,625 floats in index order
                       (``str_arch2idx.pt`` is cross-checked, ``hardware_embedding_index.pt`` kept as metadata)
``eagle-pickle``       LatBench ``<device>.pickle``: {6-tuple of op ids: seconds}  (needs ``trust_pickle``)
``hwnasbench-pickle``  HW-NAS-Bench ``d["nasbench201"][dataset][metric]`` (needs ``trust_pickle``)
``user-csv``           ``arch_str,latency_ms`` rows for a new device (needs a device name)
=====================  ==========================================================================

Which column belongs to which device comes only from the device configs (`hwdiffnas.devices`): their
``tables`` entries (source, column, metric, setting). Every file is parsed and validated completely before
anything is written, and one import is one transaction: a bad file (truncated, wrong columns, unknown arch
string, duplicate row, NaN) is reported with its file and line and nothing of the import is kept.
"""

from __future__ import annotations

import csv
import gc
import io
import math
import pickle
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from hwdiffnas.datadir import ensure_writable_dir, resolve_data_dir
from hwdiffnas.errors import UserError
from hwdiffnas.space import NUM_CELLS, NUM_EDGES, OPS, Cell
from hwdiffnas.store import Store, cell_key, now_iso

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
_KEY_WEIGHTS = np.array([len(OPS) ** (NUM_EDGES - 1 - e) for e in range(NUM_EDGES)], dtype=np.int64)  # cell_key


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
class _Target:
    device: str
    column: str
    metric: str
    setting: str


def _targets(source: str) -> dict[str, list[_Target]]:
    """Source column → the device tables (from the device configs) it fills."""
    from hwdiffnas.devices import default_registry

    out: dict[str, list[_Target]] = {}
    for cfg in default_registry():
        for t in cfg.tables:
            if t.source == source:
                out.setdefault(t.column, []).append(_Target(cfg.name, t.column, t.metric, t.setting))
    return out


def _single_target(source: str, column: str, path: Path, line: int | None) -> _Target:
    targets = _targets(source).get(column)
    if not targets:
        known = ", ".join(sorted(_targets(source)))
        raise ImportFileError(path, line, f"column {column!r} belongs to no device config for source {source!r}; "
                                          f"known {source} columns: {known}")
    return targets[0]


# --- context: the NB201 index --------------------------------------------------------------------------
class _CellInfo(NamedTuple):
    key: int
    ops: tuple[str, ...]  # op ids as text, for comparing with CSV fields
    connected: bool
    nats: str


class _Context:
    """What the parsers look up: canonical cells (from the store's cells table) and the NB201 index."""

    def __init__(self, store: Store) -> None:
        rows = store.conn.execute("SELECT cell_key, arch_str, ops, connected, nats_unique_str FROM cells")
        self.by_arch: dict[str, _CellInfo] = {a: _CellInfo(k, tuple(o.split(",")), bool(c), n)
                                              for k, a, o, c, n in rows}
        self.idx_to_key: np.ndarray | None = store.index_to_key() if store.has_index() else None
        self.iso: np.ndarray | None = store.iso_rep_idx() if self.idx_to_key is not None else None

    def cell(self, text: str, path: Path, line: int | None) -> _CellInfo:
        """The cell of an arch string; a string that is not a canonical cell raises with file:line."""
        info = self.by_arch.get(text.strip())
        if info is None:
            cell = _cell(text, path, line)  # raises for anything that is not an arch string
            info = self.by_arch[cell.arch_str]
        return info

    def require_index(self, path: Path) -> np.ndarray:
        if self.idx_to_key is None:
            raise ImportFileError(path, None, "this file is keyed by NB201 index; import arch_index.csv first "
                                              "(or in the same command)")
        return self.idx_to_key


# --- small parsing helpers -----------------------------------------------------------------------------
def _float(text: str, path: Path, line: int, column: str, allow_empty: bool) -> float | None:
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


def _int(text: str, path: Path, line: int, column: str, lo: int = 0, hi: int = NUM_CELLS - 1) -> int:
    try:
        v = int(text.strip())
    except ValueError:
        raise ImportFileError(path, line, f"column {column!r}: {text!r} is not an integer") from None
    if not lo <= v <= hi:
        raise ImportFileError(path, line, f"column {column!r}: {v} out of range {lo}..{hi}")
    return v


def _cell(text: str, path: Path, line: int) -> Cell:
    try:
        return Cell.from_str(text)
    except UserError as exc:
        raise ImportFileError(path, line, f"unknown arch string: {exc}") from None


def _open_csv(path: Path) -> tuple[list[str], Any, Any]:
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


def _rows(reader: Any, path: Path, width: int) -> Iterable[tuple[int, list[str]]]:
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


def _check_complete(path: Path, seen: dict[int, int], last_line: int, what: str = "idx") -> None:
    if len(seen) != NUM_CELLS:
        missing = sorted(set(range(NUM_CELLS)) - set(seen))
        raise ImportFileError(path, last_line, f"only {len(seen)} of {NUM_CELLS} cells ({what} {missing[0]} and "
                                               f"{len(missing) - 1} more missing; truncated file?)")


# --- recognition ---------------------------------------------------------------------------------------
def _csv_source(columns: Sequence[str]) -> str | None:
    for src in CSV_SOURCES:
        known = set(_targets(src))
        extra = {"iso_rep_idx"} if src == "hw360" else set()
        if columns and set(columns) <= known | extra and set(columns) & known:
            return src
    return None


def _best_csv_guess(columns: Sequence[str]) -> tuple[str, list[str]]:
    """The table kind an unrecognized idx-keyed header most resembles, and its unknown columns."""
    best = ("accuracy", [c for c in columns if c not in ACCURACY_COLUMNS])
    for src in CSV_SOURCES:
        known = set(_targets(src)) | ({"iso_rep_idx"} if src == "hw360" else set())
        unknown = [c for c in columns if c not in known]
        if len(unknown) < len(best[1]):
            best = (src, unknown)
    return best


def classify(path: Path, device: str | None = None) -> tuple[str | None, str]:
    """(kind, reason): the format of ``path``, or None with the reason it is not recognized."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        header, _reader, fh = _open_csv(path)
        fh.close()
        if header[:2] == ["idx", "arch_str"]:
            missing = [c for c in INDEX_COLUMNS if c not in header]
            if missing:
                raise ImportFileError(path, 1, f"NB201 index header lacks column(s) {', '.join(missing)}")
            return "nb201-index", ""
        if header and header[0] == "idx":
            cols = header[1:]
            if cols and all(c in ACCURACY_COLUMNS for c in cols):
                return "accuracy-csv", ""
            src = _csv_source(cols)
            if src:
                return f"{src}-csv", ""
            guess, unknown = _best_csv_guess(cols)
            raise ImportFileError(path, 1, f"wrong columns for a {guess} table: {', '.join(unknown) or '(none)'} "
                                           "not known (device columns come from the device configs)")
        if "ArchitectureString" in header:
            return "nats-csv", ""
        if header == USER_HEADER:
            if not device:
                return None, "a user latency table needs a device name (--device NAME)"
            return "user-csv", ""
        return None, f"unrecognized CSV header {','.join(header[:4])}..."
    if suffix == ".pt":
        return "help-pt", ""
    if suffix in (".pickle", ".pkl"):
        return "pickle", ""
    return None, "not a recognized benchmark file"


# --- parsers -------------------------------------------------------------------------------------------
def parse_index(path: Path, ctx: _Context) -> Parsed:
    """``arch_index.csv``: every cell once, consistent op columns, connectivity and NATS classes."""
    header, reader, fh = _open_csv(path)
    col = {h: i for i, h in enumerate(header)}
    op_cols = [col[f"op_e{e}"] for e in range(NUM_EDGES)]
    nats_col = col.get("nats_unique_str")
    out = Parsed(path, "nb201-index")
    seen: dict[int, int] = {}
    by_key: dict[int, int] = {}
    rows: list[tuple[int, int, int, int, str]] = []  # key, idx, iso, line, nats
    last = 1
    with fh:
        for line, row in _rows(reader, path, len(header)):
            last = line
            idx = _int(row[col["idx"]], path, line, "idx")
            if idx in seen:
                raise ImportFileError(path, line, f"duplicate idx {idx} (first on line {seen[idx]})")
            seen[idx] = line
            arch = row[col["arch_str"]]
            info = ctx.cell(arch, path, line)
            if tuple(row[c].strip() for c in op_cols) != info.ops:
                ops = tuple(_int(row[c], path, line, f"op_e{e}", 0, len(OPS) - 1) for e, c in enumerate(op_cols))
                raise ImportFileError(path, line, f"op columns {ops} disagree with the arch_str's ops "
                                                  f"({','.join(info.ops)})")
            if info.key in by_key:
                raise ImportFileError(path, line, f"duplicate arch_str {arch} (first on line {by_key[info.key]})")
            by_key[info.key] = line
            conn = row[col["connected"]].strip()
            if conn not in ("True", "False"):
                raise ImportFileError(path, line, f"column 'connected': {conn!r} is not True/False")
            if (conn == "True") != info.connected:
                raise ImportFileError(path, line, f"connected={conn} but {arch} is "
                                                  f"{'connected' if info.connected else 'not connected'}")
            if nats_col is not None and row[nats_col] != info.nats:
                raise ImportFileError(path, line, f"nats_unique_str {row[nats_col]!r} differs from "
                                                  f"the computed {info.nats!r}")
            iso = _int(row[col["iso_rep_idx"]], path, line, "iso_rep_idx")
            rows.append((info.key, idx, iso, line, info.nats))
    if not rows:
        raise ImportFileError(path, 2, "no data rows")
    _check_complete(path, seen, last)
    rep: dict[str, int] = {}
    for _k, idx, _iso, _line, nats in rows:
        rep[nats] = min(idx, rep.get(nats, idx))
    for _k, _idx, iso, line, nats in rows:
        if iso != rep[nats]:
            raise ImportFileError(path, line, f"iso_rep_idx {iso} is not the smallest idx ({rep[nats]}) of the "
                                              "cell's NATS class")
    out.index_rows = [(k, idx, iso) for k, idx, iso, _l, _n in rows]
    out.rows = len(rows)
    out.notes.append(f"{len(rows)} cells, {len(rep)} NATS classes")
    return out


def parse_idx_table(path: Path, kind: str, ctx: _Context) -> Parsed:
    """An idx-keyed CSV (accuracy or a help/eagle/hw360 latency table); empty cells are missing values."""
    header, reader, fh = _open_csv(path)
    idx_to_key = ctx.require_index(path)
    source = kind.removesuffix("-csv")
    out = Parsed(path, kind)
    series: list[Series] = []
    value_cols: list[int] = []
    iso_col = None
    for j, name in enumerate(header[1:], start=1):
        if name == "iso_rep_idx":
            iso_col = j
            continue
        if kind == "accuracy-csv":
            dataset, column = ACCURACY_COLUMNS[name]
            series.append(Series("accuracy", dataset, "accuracy.csv", column, source_column=name))
        else:
            t = _single_target(source, name, path, 1)
            series.append(Series("hw", t.device, source, name, setting=t.setting, metric=t.metric))
        value_cols.append(j)
    with fh:
        data = list(_rows(reader, path, len(header)))
    if not data:
        raise ImportFileError(path, 2, "no data rows")
    lines = [line for line, _row in data]
    cols = list(zip(*(row for _line, row in data)))
    idx = _int_column(cols[0], lines, path, "idx")
    seen: dict[int, int] = {}
    if len(np.unique(idx)) != len(idx):
        for i, line in zip(idx.tolist(), lines):
            if i in seen:
                raise ImportFileError(path, line, f"duplicate idx {i} (first on line {seen[i]})")
            seen[i] = line
    seen = dict(zip(idx.tolist(), lines))
    if iso_col is not None and ctx.iso is not None:
        iso = _int_column(cols[iso_col], lines, path, "iso_rep_idx")
        wrong = np.flatnonzero(iso != ctx.iso[idx])
        if len(wrong):
            w = int(wrong[0])
            raise ImportFileError(path, lines[w], f"iso_rep_idx {iso[w]} differs from the index's {ctx.iso[idx[w]]}")
    _check_complete(path, seen, lines[-1])
    keys = idx_to_key[idx]
    for s, j in zip(series, value_cols):
        present, values = _float_column(cols[j], lines, path, header[j])
        s.keys = keys[present].tolist()
        s.values = values[present].tolist()
    out.series = series
    out.rows = len(seen)
    return out


def _float_column(texts: Sequence[str], lines: Sequence[int], path: Path, column: str) -> tuple[np.ndarray,
                                                                                              np.ndarray]:
    """(present mask, values) of a column of number strings (empty = missing); bad values → file:line."""
    stripped = [t.strip() for t in texts]
    present = np.array([t != "" for t in stripped], dtype=bool)
    values = np.full(len(stripped), np.nan)
    try:
        values[present] = np.array([t for t in stripped if t], dtype=np.float64)
    except ValueError:
        for t, line in zip(stripped, lines):
            _float(t, path, line, column, allow_empty=True)
        raise
    with np.errstate(invalid="ignore"):
        bad = present & ~(np.isfinite(values) & (values >= 0))
    if bad.any():
        i = int(np.argmax(bad))
        _float(stripped[i], path, lines[i], column, allow_empty=True)
    return present, values


def _int_column(texts: Sequence[str], lines: Sequence[int], path: Path, column: str) -> np.ndarray:
    """A column of cell indices 0..15624; bad values → file:line."""
    try:
        values = np.array([int(t) for t in texts], dtype=np.int64)
    except ValueError:
        for t, line in zip(texts, lines):
            _int(t, path, line, column)
        raise
    bad = (values < 0) | (values >= NUM_CELLS)
    if bad.any():
        i = int(np.argmax(bad))
        _int(texts[i], path, lines[i], column)
    return values


def parse_nats_csv(path: Path, ctx: _Context) -> Parsed:
    """nats-bench-landscape ``nats_bench.csv``: accuracies keyed by ArchitectureString."""
    header, reader, fh = _open_csv(path)
    col = {h: i for i, h in enumerate(header)}
    for needed in ("ArchitectureString", *NATS_CSV_COLUMNS):
        if needed not in col:
            raise ImportFileError(path, 1, f"missing column {needed!r}")
    series = {c: Series("accuracy", ds, "nats_bench.csv", "nats", source_column=c) for c, ds in
              NATS_CSV_COLUMNS.items()}
    seen: dict[int, int] = {}
    last = 1
    with fh:
        for line, row in _rows(reader, path, len(header)):
            last = line
            info = ctx.cell(row[col["ArchitectureString"]], path, line)
            k = info.key
            if k in seen:
                raise ImportFileError(path, line, f"duplicate arch string {row[col['ArchitectureString']]} "
                                                  f"(first on line {seen[k]})")
            seen[k] = line
            if "UniqueString" in col and row[col["UniqueString"]] != info.nats:
                raise ImportFileError(path, line, "UniqueString differs from the cell's NATS canonical string")
            for c, s in series.items():
                v = _float(row[col[c]], path, line, c, allow_empty=True)
                if v is not None:
                    s.keys.append(k)
                    s.values.append(v)
    _check_complete(path, seen, last, "cell")
    return Parsed(path, "nats-csv", series=list(series.values()), rows=len(seen))


def read_user_table(path: Path) -> dict[Cell, float]:
    """A user ``arch_str,latency_ms`` CSV → {cell: ms}; ≥ 1 row, no duplicates, finite positive values."""
    header, reader, fh = _open_csv(path)
    if header != USER_HEADER:
        fh.close()
        raise ImportFileError(path, 1, f"wrong columns {','.join(header)}; a device table has the header "
                                       f"{','.join(USER_HEADER)}")
    out: dict[Cell, float] = {}
    lines: dict[Cell, int] = {}
    with fh:
        for line, row in _rows(reader, path, 2):
            cell = _cell(row[0], path, line)
            if cell in out:
                raise ImportFileError(path, line, f"duplicate row for {cell.arch_str} (first on line {lines[cell]})")
            v = _float(row[1], path, line, "latency_ms", allow_empty=False)
            assert v is not None
            if v <= 0:
                raise ImportFileError(path, line, f"latency_ms must be positive, got {v}")
            out[cell] = v
            lines[cell] = line
    if not out:
        raise ImportFileError(path, 2, "no data rows (a device table needs at least one arch_str,latency_ms row)")
    return out


def parse_user_csv(path: Path, device: str) -> Parsed:
    """A user latency table for a new device named ``device``."""
    from hwdiffnas.devices import default_registry

    if not device or any(ch.isspace() for ch in device):
        raise UserError(f"device name must be non-empty without spaces, got {device!r}")
    if device in default_registry():
        raise UserError(f"{device!r} is a built-in device with its own tables; import the user table under "
                        "another name (--device MY-NAME)")
    table = read_user_table(path)
    s = Series("hw", device, USER_SOURCE, device, setting="unknown", metric="latency",
               keys=[cell_key(c) for c in table], values=list(table.values()))
    return Parsed(path, "user-csv", series=[s], rows=len(table))


def parse_help_pt(path: Path, ctx: _Context) -> Parsed:
    """A HELP ``.pt`` file (torch zip, loaded with ``weights_only=True``)."""
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files
        raise ImportFileError(path, None, f"not a loadable torch file (weights_only): {exc}") from None
    out = Parsed(path, "help-pt")
    if isinstance(payload, dict):
        if len(payload) != NUM_CELLS or not all(isinstance(k, str) and isinstance(v, int) for k, v in
                                                payload.items()):
            raise ImportFileError(path, None, "a dict payload must map 15,625 arch strings to NB201 indices")
        idx_to_key = ctx.require_index(path)
        for arch, idx in payload.items():
            info = ctx.cell(arch, path, None)
            if not 0 <= idx < NUM_CELLS or int(idx_to_key[idx]) != info.key:
                raise ImportFileError(path, None, f"{arch} -> {idx} disagrees with the NB201 index")
        out.kind = "help-arch-index"
        out.notes.append("str_arch2idx agrees with arch_index.csv for all 15,625 cells")
        out.rows = len(payload)
        return out
    values = np.asarray(payload) if isinstance(payload, list) else None
    if values is None or values.ndim != 1 or values.dtype.kind not in "iuf":
        raise ImportFileError(path, None, f"payload is {type(payload).__name__}, expected a list of numbers")
    if len(payload) != NUM_CELLS:
        if all(isinstance(v, int) and 0 <= v < NUM_CELLS for v in payload) and len(payload) < 100:
            out.kind = "help-embedding-index"
            out.meta["help_hardware_embedding_index"] = ",".join(str(v) for v in payload)
            out.rows = len(payload)
            out.notes.append(f"HELP reference cells: {len(payload)} indices")
            return out
        raise ImportFileError(path, None, f"list has {len(payload)} values, expected {NUM_CELLS} (truncated?)")
    stem = path.stem
    targets = _targets("help")
    column = stem if stem in targets else f"hwnb_c10_{stem}"
    if column not in targets:
        raise ImportFileError(path, None, f"no device config has a HELP table for {stem!r}; known: "
                                          f"{', '.join(sorted(targets))}")
    t = targets[column][0]
    idx_to_key = ctx.require_index(path)
    values = values.astype(np.float64)
    bad = ~(np.isfinite(values) & (values >= 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise ImportFileError(path, None, f"entry {i}: bad value {payload[i]!r}")
    s = Series("hw", t.device, "help", column, setting=t.setting, metric=t.metric, keys=idx_to_key.tolist(),
               values=values.tolist())
    out.series = [s]
    out.rows = NUM_CELLS
    return out


def _numpy_dtype(code: Any, align: Any = False, copy: Any = False) -> Any:
    """Reconstruct only numeric numpy dtypes (what LatBench's numpy float scalars reference)."""
    if not isinstance(code, str) or code.lstrip("<>=|")[:1] not in ("f", "i", "u", "b"):
        raise pickle.UnpicklingError(f"numpy dtype {code!r} is not a plain numeric type")
    return np.dtype(code)


def _numpy_scalar(dtype: Any, data: Any = None) -> int | float:
    """Reconstruct a numeric numpy scalar as a Python number."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in "fiub" or not isinstance(data, bytes):
        raise pickle.UnpicklingError("numpy scalar of a non-numeric type")
    value = np.frombuffer(data, dtype=dtype, count=1)[0]
    return float(value) if dtype.kind == "f" else int(value)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only builtin containers/numbers and numeric numpy scalars (as Python numbers)."""

    _BUILTINS = frozenset(("dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "str",
                           "bytes", "bool"))

    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in self._BUILTINS:
            return super().find_class(module, name)
        if module == "collections" and name == "OrderedDict":
            return super().find_class(module, name)
        if module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray"):
            if name == "dtype":
                return _numpy_dtype
            if name == "scalar":
                return _numpy_scalar
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a benchmark pickle")


def load_restricted_pickle(path: Path) -> Any:
    """Load a trusted pickle allowing only builtin containers/numbers; anything else is refused."""
    try:
        data = path.read_bytes()
        return _RestrictedUnpickler(io.BytesIO(data)).load()
    except OSError as exc:
        raise ImportFileError(path, None, f"cannot read: {exc.strerror}") from exc
    except Exception as exc:  # pickle raises many types for bad data
        raise ImportFileError(path, None, f"not an acceptable pickle: {exc}") from None


def parse_pickle(path: Path) -> Parsed:
    """An Eagle/LatBench pickle or the HW-NAS-Bench pickle (only ever called with trust given)."""
    payload = load_restricted_pickle(path)
    if isinstance(payload, dict) and "nasbench201" in payload:
        return _parse_hwnasbench(path, payload["nasbench201"])
    if isinstance(payload, dict):
        return _parse_eagle(path, payload)
    raise ImportFileError(path, None, f"pickle payload is {type(payload).__name__}; expected an Eagle dict or "
                                      "the HW-NAS-Bench dict")


def _parse_eagle(path: Path, payload: dict) -> Parsed:
    targets = _targets("eagle")
    if path.stem not in targets:
        raise ImportFileError(path, None, f"no device config has an Eagle table named {path.stem!r}; known: "
                                          f"{', '.join(sorted(targets))}")
    t = targets[path.stem][0]
    s = Series("hw", t.device, "eagle", path.stem, setting=t.setting, metric=t.metric)
    if not payload:
        raise ImportFileError(path, None, "empty Eagle table")
    keys = np.array(list(payload.keys()))  # (n, 6) op ids when well-formed
    values = np.array(list(payload.values()))  # (n,) seconds
    well_formed = (keys.ndim == 2 and keys.shape[1] == NUM_EDGES and keys.dtype.kind in "iu"
                   and bool(((keys >= 0) & (keys < len(OPS))).all())
                   and values.ndim == 1 and values.dtype.kind in "iuf")
    if well_formed:
        values = values.astype(np.float64)
        well_formed = bool((np.isfinite(values) & (values >= 0)).all())
    if not well_formed:  # find the first bad entry for the message
        for k, v in payload.items():
            if not (isinstance(k, tuple) and len(k) == NUM_EDGES and all(isinstance(o, int) for o in k)):
                raise ImportFileError(path, None, f"key {k!r} is not a 6-tuple of op ids")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ImportFileError(path, None, f"value for {k} is {v!r}, not a latency in seconds")
            try:
                Cell(k)
            except UserError as exc:
                raise ImportFileError(path, None, f"key {k}: {exc}") from None
        raise ImportFileError(path, None, "malformed Eagle table")  # pragma: no cover - caught above
    s.keys = (keys.astype(np.int64) @ _KEY_WEIGHTS).tolist()
    s.values = (values * 1000.0).tolist()
    return Parsed(path, "eagle-pickle", series=[s], rows=len(s.keys), notes=["seconds converted to ms"])


def _parse_hwnasbench(path: Path, nb: Any) -> Parsed:
    if not isinstance(nb, dict):
        raise ImportFileError(path, None, "d['nasbench201'] is not a dict")
    targets = _targets("hwnasbench")
    out = Parsed(path, "hwnasbench-pickle")
    skipped: set[str] = set()
    failed = 0
    for dataset in HWNB_DATASETS:
        if dataset not in nb:
            continue
        block = nb[dataset]
        where = f"d['nasbench201'][{dataset!r}]"
        if not isinstance(block, dict) or "config" not in block:
            raise ImportFileError(path, None, f"{where} has no 'config' list")
        configs = block["config"]
        keys = []
        seen: dict[int, int] = {}
        for i, cfg in enumerate(configs):
            if not isinstance(cfg, dict) or "arch_str" not in cfg:
                raise ImportFileError(path, None, f"{where}['config'][{i}] has no arch_str")
            try:
                cell = Cell.from_str(cfg["arch_str"])
            except UserError as exc:
                raise ImportFileError(path, None, f"{where}['config'][{i}]: unknown arch string: {exc}") from None
            k = cell_key(cell)
            if k in seen:
                raise ImportFileError(path, None, f"{where}['config'][{i}]: duplicate arch_str (first at "
                                                  f"{seen[k]})")
            seen[k] = i
            keys.append(k)
        for metric_name, values in block.items():
            if metric_name == "config":
                continue
            match = [t for t in targets.get(metric_name, []) if t.setting == dataset]
            if not match:
                skipped.add(metric_name)
                continue
            t = match[0]
            if not isinstance(values, (list, tuple)) or len(values) != len(keys):
                raise ImportFileError(path, None, f"{where}[{metric_name!r}] has {len(values)} values for "
                                                  f"{len(keys)} configs")
            s = Series("hw", t.device, "hwnasbench", metric_name, setting=dataset, metric=t.metric)
            for i, v in enumerate(values):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise ImportFileError(path, None, f"{where}[{metric_name!r}][{i}] = {v!r} is not a number")
                if metric_name == "edgetpu_latency" and v == -1:
                    failed += 1  # Edge TPU failed to compile this network: missing, not a latency
                    continue
                if v < 0:
                    raise ImportFileError(path, None, f"{where}[{metric_name!r}][{i}] = {v} is negative")
                s.keys.append(keys[i])
                s.values.append(float(v))
            out.series.append(s)
        out.rows = max(out.rows, len(keys))
    if not out.series:
        raise ImportFileError(path, None, f"no known HW-NAS-Bench datasets/metrics (datasets: "
                                          f"{', '.join(HWNB_DATASETS)})")
    if failed:
        out.notes.append(f"{failed} Edge TPU values of -1 (failed compile) stored as missing")
    if skipped:
        out.notes.append(f"metrics without a device table skipped: {', '.join(sorted(skipped))}")
    return out


# --- the import ------------------------------------------------------------------------------------------
def _expand(paths: Sequence[Path | str]) -> list[tuple[Path, bool]]:
    """(file, explicitly named) for every path; folders are walked recursively in sorted order."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += [(f, False) for f in sorted(p.rglob("*")) if f.is_file() and not f.name.startswith(".")]
        elif p.is_file():
            out.append((p, True))
        else:
            raise UserError(f"{p}: no such file or folder")
    return out


def import_paths(paths: Sequence[Path | str], data_dir: Path | str | None = None, *, trust_pickle: bool = False,
                 device: str | None = None, progress: Any = None) -> ImportReport:
    """Import files/folders into the store in ``data_dir``; all or nothing (one transaction)."""
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of short-lived objects, no cycles: collection passes only cost time
    try:
        return _import_paths(paths, data_dir, trust_pickle, device, progress)
    finally:
        if gc_was_enabled:
            gc.enable()


def _import_paths(paths: Sequence[Path | str], data_dir: Path | str | None, trust_pickle: bool,
                  device: str | None, progress: Any) -> ImportReport:
    t0 = time.perf_counter()
    files = _expand(paths)
    if not files:
        raise UserError(f"nothing to import in {', '.join(map(str, paths))}")
    target = resolve_data_dir(data_dir)
    ensure_writable_dir(target, [Path(p) for p in paths])
    plan: list[tuple[Path, str]] = []
    skipped: list[tuple[Path, str]] = []
    for f, explicit in files:
        kind, reason = classify(f, device)
        if kind == "pickle" and not trust_pickle:
            kind, reason = None, "pickle file: pass --trust-pickle to load it (trusted local files only)"
        if kind is None:
            if explicit:
                raise ImportFileError(f, None, reason)
            skipped.append((f, reason))
            continue
        plan.append((f, kind))
    if not plan:
        raise UserError("no recognized benchmark files in " + ", ".join(map(str, paths)) + "; skipped: " +
                        "; ".join(f"{p.name} ({r})" for p, r in skipped[:5]))
    plan.sort(key=lambda fk: fk[1] != "nb201-index")
    store = Store.create(target)
    try:
        ctx = _Context(store)
        parsed: list[Parsed] = []
        items = progress(plan, total=len(plan), desc="parse") if progress else plan
        for f, kind in items:
            t1 = time.perf_counter()
            if kind == "nb201-index":
                p = parse_index(f, ctx)
                idx_to_key = np.empty(NUM_CELLS, dtype=np.int64)
                iso = np.empty(NUM_CELLS, dtype=np.int64)
                for k, i, r in p.index_rows or []:
                    idx_to_key[i] = k
                    iso[i] = r
                ctx.idx_to_key, ctx.iso = idx_to_key, iso
            elif kind == "nats-csv":
                p = parse_nats_csv(f, ctx)
            elif kind == "user-csv":
                p = parse_user_csv(f, device or "")
            elif kind == "help-pt":
                p = parse_help_pt(f, ctx)
            elif kind == "pickle":
                p = parse_pickle(f)
            else:
                p = parse_idx_table(f, kind, ctx)
            p.seconds = time.perf_counter() - t1
            parsed.append(p)
        _write(store, parsed)
    finally:
        store.close()
    return ImportReport(parsed, skipped, time.perf_counter() - t0, target / store.path.name)


def _write(store: Store, parsed: list[Parsed]) -> None:
    started = now_iso()
    last: dict[tuple[str, ...], tuple[Parsed, Series]] = {}
    for p in parsed:
        for s in p.series:
            last[s.ident] = (p, s)  # a later file of the same table replaces an earlier one
    # Keys are cell keys built from validated `Cell`s, so per-row foreign-key look-ups are skipped during the
    # bulk insert (they triple its cost); the pragma cannot change inside a transaction, so it is set around it.
    store.conn.execute("PRAGMA foreign_keys = OFF")
    try:
        _write_all(store, parsed, last, started)
    finally:
        store.conn.execute("PRAGMA foreign_keys = ON")


def _write_all(store: Store, parsed: list[Parsed], last: dict[tuple[str, ...], tuple[Parsed, Series]],
               started: str) -> None:
    with store.transaction() as cur:
        store.drop_orphan_values(cur)
        for p in parsed:
            if p.index_rows is not None:
                store.put_index(cur, p.index_rows)
            for key, value in p.meta.items():
                store.set_meta(cur, key, value)
        for p, s in last.values():
            if s.kind == "accuracy":
                store.put_accuracy(cur, s.name, s.column, s.source, s.source_column, str(p.path), s.keys, s.values)
            else:
                store.put_hw(cur, s.name, s.source, s.column, s.setting, s.metric, str(p.path), s.keys, s.values)
        for p in parsed:
            detail = "; ".join(p.notes + [f"{len(p.series)} series"])
            store.log_import(cur, str(p.path), p.kind, detail, p.rows, p.seconds, started)
