"""Importers: read the public NB201 benchmark files into the store (shared parts in `hwdiffnas.import_formats`,
the binary formats in `hwdiffnas.import_binary`).

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

import gc
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwdiffnas.datadir import ensure_writable_dir, resolve_data_dir
from hwdiffnas.devices import default_registry
from hwdiffnas.errors import UserError
from hwdiffnas.import_binary import parse_help_pt, parse_pickle
from hwdiffnas.import_formats import (
    ACCURACY_COLUMNS,
    CSV_SOURCES,
    INDEX_COLUMNS,
    NATS_CSV_COLUMNS,
    USER_HEADER,
    USER_SOURCE,
    ImportContext,
    ImportFileError,
    ImportReport,
    Parsed,
    Series,
    check_complete,
    column_targets,
    csv_rows,
    open_csv,
    parse_cell,
    parse_float,
    parse_int,
    single_target,
)
from hwdiffnas.space import NUM_CELLS, NUM_EDGES, OPS, Cell
from hwdiffnas.spaces.fbnet.data import is_fbnet_folder
from hwdiffnas.spaces.fbnet.help_tables import check_against_shipped
from hwdiffnas.store import Store, cell_key, now_iso


# --- recognition ---------------------------------------------------------------------------------------
def _csv_source(columns: Sequence[str]) -> str | None:
    for src in CSV_SOURCES:
        known = set(column_targets(src))
        extra = {"iso_rep_idx"} if src == "hw360" else set()
        if columns and set(columns) <= known | extra and set(columns) & known:
            return src
    return None


def _best_csv_guess(columns: Sequence[str]) -> tuple[str, list[str]]:
    """The table kind an unrecognized idx-keyed header most resembles, and its unknown columns."""
    best = ("accuracy", [c for c in columns if c not in ACCURACY_COLUMNS])
    for src in CSV_SOURCES:
        known = set(column_targets(src)) | ({"iso_rep_idx"} if src == "hw360" else set())
        unknown = [c for c in columns if c not in known]
        if len(unknown) < len(best[1]):
            best = (src, unknown)
    return best


def classify(path: Path, device: str | None = None) -> tuple[str | None, str]:
    """(kind, reason): the format of ``path``, or None with the reason it is not recognized."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        header, _reader, fh = open_csv(path)
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
def parse_index(path: Path, ctx: ImportContext) -> Parsed:
    """``arch_index.csv``: every cell once, consistent op columns, connectivity and NATS classes."""
    header, reader, fh = open_csv(path)
    col = {h: i for i, h in enumerate(header)}
    op_cols = [col[f"op_e{e}"] for e in range(NUM_EDGES)]
    nats_col = col.get("nats_unique_str")
    out = Parsed(path, "nb201-index")
    seen: dict[int, int] = {}
    by_key: dict[int, int] = {}
    rows: list[tuple[int, int, int, int, str]] = []  # key, idx, iso, line, nats
    last = 1
    with fh:
        for line, row in csv_rows(reader, path, len(header)):
            last = line
            idx = parse_int(row[col["idx"]], path, line, "idx")
            if idx in seen:
                raise ImportFileError(path, line, f"duplicate idx {idx} (first on line {seen[idx]})")
            seen[idx] = line
            arch = row[col["arch_str"]]
            info = ctx.cell(arch, path, line)
            if tuple(row[c].strip() for c in op_cols) != info.ops:
                ops = tuple(parse_int(row[c], path, line, f"op_e{e}", 0, len(OPS) - 1) for e, c in enumerate(op_cols))
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
            iso = parse_int(row[col["iso_rep_idx"]], path, line, "iso_rep_idx")
            rows.append((info.key, idx, iso, line, info.nats))
    if not rows:
        raise ImportFileError(path, 2, "no data rows")
    check_complete(path, seen, last)
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


def parse_idx_table(path: Path, kind: str, ctx: ImportContext) -> Parsed:
    """An idx-keyed CSV (accuracy or a help/eagle/hw360 latency table); empty cells are missing values."""
    header, reader, fh = open_csv(path)
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
            t = single_target(source, name, path, 1)
            series.append(Series("hw", t.device, source, name, setting=t.setting, metric=t.metric))
        value_cols.append(j)
    with fh:
        data = list(csv_rows(reader, path, len(header)))
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
    check_complete(path, seen, lines[-1])
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
            parse_float(t, path, line, column, allow_empty=True)
        raise
    with np.errstate(invalid="ignore"):
        bad = present & ~(np.isfinite(values) & (values >= 0))
    if bad.any():
        i = int(np.argmax(bad))
        parse_float(stripped[i], path, lines[i], column, allow_empty=True)
    return present, values


def _int_column(texts: Sequence[str], lines: Sequence[int], path: Path, column: str) -> np.ndarray:
    """A column of cell indices 0..15624; bad values → file:line."""
    try:
        values = np.array([int(t) for t in texts], dtype=np.int64)
    except ValueError:
        for t, line in zip(texts, lines):
            parse_int(t, path, line, column)
        raise
    bad = (values < 0) | (values >= NUM_CELLS)
    if bad.any():
        i = int(np.argmax(bad))
        parse_int(texts[i], path, lines[i], column)
    return values


def parse_nats_csv(path: Path, ctx: ImportContext) -> Parsed:
    """nats-bench-landscape ``nats_bench.csv``: accuracies keyed by ArchitectureString."""
    header, reader, fh = open_csv(path)
    col = {h: i for i, h in enumerate(header)}
    for needed in ("ArchitectureString", *NATS_CSV_COLUMNS):
        if needed not in col:
            raise ImportFileError(path, 1, f"missing column {needed!r}")
    series = {c: Series("accuracy", ds, "nats_bench.csv", "nats", source_column=c) for c, ds in
              NATS_CSV_COLUMNS.items()}
    seen: dict[int, int] = {}
    last = 1
    with fh:
        for line, row in csv_rows(reader, path, len(header)):
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
                v = parse_float(row[col[c]], path, line, c, allow_empty=True)
                if v is not None:
                    s.keys.append(k)
                    s.values.append(v)
    check_complete(path, seen, last, "cell")
    return Parsed(path, "nats-csv", series=list(series.values()), rows=len(seen))


def read_user_table(path: Path) -> dict[Cell, float]:
    """A user ``arch_str,latency_ms`` CSV → {cell: ms}; ≥ 1 row, no duplicates, finite positive values."""
    header, reader, fh = open_csv(path)
    if header != USER_HEADER:
        fh.close()
        raise ImportFileError(path, 1, f"wrong columns {','.join(header)}; a device table has the header "
                                       f"{','.join(USER_HEADER)}")
    out: dict[Cell, float] = {}
    lines: dict[Cell, int] = {}
    with fh:
        for line, row in csv_rows(reader, path, 2):
            cell = parse_cell(row[0], path, line)
            if cell in out:
                raise ImportFileError(path, line, f"duplicate row for {cell.arch_str} (first on line {lines[cell]})")
            v = parse_float(row[1], path, line, "latency_ms", allow_empty=False)
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
    if not device or any(ch.isspace() for ch in device):
        raise UserError(f"device name must be non-empty without spaces, got {device!r}")
    if device in default_registry():
        raise UserError(f"{device!r} is a built-in device with its own tables; import the user table under "
                        "another name (--device MY-NAME)")
    table = read_user_table(path)
    s = Series("hw", device, USER_SOURCE, device, setting="unknown", metric="latency",
               keys=[cell_key(c) for c in table], values=list(table.values()))
    return Parsed(path, "user-csv", series=[s], rows=len(table))


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
    target = resolve_data_dir(data_dir)
    fbnet = [is_fbnet_folder(p) for p in paths]
    shipped = [(Path(p), check_against_shipped(p)) for p, f in zip(paths, fbnet) if f]
    paths = [p for p, f in zip(paths, fbnet) if not f]
    if shipped and not paths:
        return ImportReport([], shipped, time.perf_counter() - t0, target)
    files = _expand(paths)
    if not files:
        raise UserError(f"nothing to import in {', '.join(map(str, paths))}")
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
    skipped += shipped
    plan.sort(key=lambda fk: fk[1] != "nb201-index")
    store = Store.create(target, devices=default_registry())
    try:
        ctx = ImportContext(store)
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
