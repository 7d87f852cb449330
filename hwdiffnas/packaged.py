"""Benchmark tables shipped inside the package, for a first run without a data directory.

``hwdiffnas/assets/nb201_tables.safetensors`` holds the clearly licensed NB201 tables (NATS-Bench 200-epoch test
accuracies, MIT; the HELP repository's latency table including its HW-NAS-Bench columns, MIT; see
``assets/NB201_TABLES_LICENSE.md``), built by ``benchmarks/build_table_assets.py`` from the CSVs of the data
README. Every value is stored exactly: a column is either its float64 values in NB201 index order (``f64``) or,
when it has few distinct values, those values plus one byte per cell naming which (``dict``). So a store built
from these arrays holds bit for bit what importing the CSVs gives, and every pick agrees.

When the data directory has no store, `packaged_store` builds one from these arrays through the importer's writer
(once; it is cached as ``packaged/nb201-tables-<hash>.sqlite`` in the data directory, or in a temporary folder when
that is not writable) and the commands read it like an imported store. Devices whose tables carry no clear licence
(Eagle/LatBench, HW-NAS-Bench-360) are not in it: they keep the shipped predictors.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from hwdiffnas import ASSETS_DIR
from hwdiffnas.datadir import resolve_data_dir
from hwdiffnas.errors import UserError

FORMAT = "hwdiffnas-nb201-tables/1"
TABLES_FILENAME = "nb201_tables.safetensors"
LICENSE_FILENAME = "NB201_TABLES_LICENSE.md"
INDEX_KEY = "index/cell_key"  # (15625,) uint16: the store's cell key of each NB201 index
ISO_KEY = "index/iso_rep_idx"  # (15625,) uint16: NATS class representative of each NB201 index
DICT_MAX = 256  # a column with at most this many distinct values is stored as values + one byte per cell
SOURCES: dict[str, dict[str, str]] = {
    # CSV file of the data README -> where its shipped columns come from and under which licence
    "accuracy.csv": {"source": "NATS-Bench (Dong et al., TPAMI 2021), 200-epoch test accuracy", "licence": "MIT"},
    "latency_help_ms.csv": {"source": "HELP (Lee et al., NeurIPS 2021); hwnb_c10_* columns: HW-NAS-Bench "
                                      "(Li et al., ICLR 2021)", "licence": "MIT"},
}


def tables_path() -> Path:
    """The packaged tables file (it may be absent in a source checkout that never built it)."""
    return ASSETS_DIR / TABLES_FILENAME


@dataclass(frozen=True)
class PackagedTables:
    """The decoded tables: ``idx_to_key``/``iso_rep_idx`` (15625,) int64 in NB201 index order and ``columns``
    {(csv file, column): (15625,) float64 in NB201 index order, NaN where the CSV is empty}."""

    idx_to_key: np.ndarray
    iso_rep_idx: np.ndarray
    columns: dict[tuple[str, str], np.ndarray]
    digest: str


def encode_column(values: np.ndarray) -> dict[str, np.ndarray]:
    """The exact, compact encoding of one column: ``{"": float64}`` or ``{".values": float64, ".codes": uint8}``."""
    v = np.asarray(values, dtype=np.float64)
    uniq, codes = np.unique(v, return_inverse=True)
    if uniq.size <= DICT_MAX:
        return {".values": uniq, ".codes": codes.reshape(-1).astype(np.uint8)}
    return {"": v}


def decode_column(arrays: dict[str, np.ndarray], name: str) -> np.ndarray:
    """Inverse of `encode_column` for the tensors stored under ``name``."""
    if name in arrays:
        return np.asarray(arrays[name], dtype=np.float64)
    return np.asarray(arrays[f"{name}.values"], dtype=np.float64)[arrays[f"{name}.codes"].astype(np.int64)]


@lru_cache(maxsize=1)
def _header(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        return dict(f.metadata() or {})


def shipped_columns(path: Path | None = None) -> dict[str, list[str]]:
    """{csv file: shipped columns}; empty when the tables file is absent (reads only the file's header)."""
    p = path or tables_path()
    if not p.is_file():
        return {}
    return json.loads(_header(p).get("columns", "{}"))


def load_tables(path: Path | None = None) -> PackagedTables:
    """Decode the packaged tables (`UserError` when the file is missing or not in this format)."""
    from safetensors.numpy import load

    p = path or tables_path()
    if not p.is_file():
        raise UserError(f"no packaged benchmark tables at {p}; build them with benchmarks/build_table_assets.py")
    raw = p.read_bytes()
    if _header(p).get("format") != FORMAT:
        raise UserError(f"{p} is not a {FORMAT} file")
    arrays = load(raw)
    columns = {(f, c): decode_column(arrays, f"{f}/{c}") for f, cols in shipped_columns(p).items() for c in cols}
    return PackagedTables(arrays[INDEX_KEY].astype(np.int64), arrays[ISO_KEY].astype(np.int64), columns,
                          hashlib.sha256(raw).hexdigest())


NOT_SHIPPED = {  # table source -> why the package holds no table of it
    "eagle": "Eagle/LatBench: no clear data licence",
    "hw360": "HW-NAS-Bench-360: no clear data licence",
    "hwnasbench": "HW-NAS-Bench's own file: not in the data folder",
    "measured": "measured by the tool",
}


def shipped_status(config: Any) -> str:
    """``yes, source:column (licence)`` or ``no (why)`` for a device config (`hwdiffnas devices`)."""
    table = shipped_table(config)
    if table:
        return f"yes, {table}"
    why = list(dict.fromkeys(NOT_SHIPPED.get(t.source, f"{t.source}: not shipped") for t in config.tables))
    return f"no ({'; '.join(why) or 'no table'})"


def shipped_table(config: Any) -> str | None:
    """``source:column (licence)`` of the packaged table a device config reads, or None when none is shipped."""
    shipped = shipped_columns()
    for t in config.tables:
        for file, cols in shipped.items():
            if file.startswith(f"latency_{t.source}_") and t.column in cols:
                return f"{t.source}:{t.column} ({SOURCES[file]['licence']})"
    return None


def _parsed(tables: PackagedTables, origin: Path) -> list[Any]:
    """The tables as the importer's parsed files (index first), ready for its writer."""
    from hwdiffnas.import_formats import ACCURACY_COLUMNS, Parsed, Series, single_target

    index = Parsed(origin / "arch_index.csv", "nb201-index", rows=tables.idx_to_key.size,
                   index_rows=[(int(k), i, int(r)) for i, (k, r) in
                               enumerate(zip(tables.idx_to_key.tolist(), tables.iso_rep_idx.tolist()))])
    out = [index]
    by_file: dict[str, Parsed] = {}
    for (file, column), values in tables.columns.items():
        present = np.isfinite(values)
        keys, vals = tables.idx_to_key[present].tolist(), values[present].tolist()
        if file == "accuracy.csv":
            dataset, store_column = ACCURACY_COLUMNS[column]
            s = Series("accuracy", dataset, "accuracy.csv", store_column, source_column=column, keys=keys, values=vals)
            kind = "accuracy-csv"
        else:
            source = file.removeprefix("latency_").split("_")[0]
            t = single_target(source, column, origin / file, None)
            s = Series("hw", t.device, source, column, setting=t.setting, metric=t.metric, keys=keys, values=vals)
            kind = f"{source}-csv"
        p = by_file.setdefault(file, Parsed(origin / file, kind, rows=values.size, notes=["packaged table"]))
        p.series.append(s)
    return out + list(by_file.values())


def build_store(path: Path, tables: PackagedTables | None = None) -> Path:
    """Write a store holding the packaged tables at ``path`` (atomically: a temporary file, then a rename)."""
    from hwdiffnas.importers import _write
    from hwdiffnas.store import Store

    t = tables or load_tables()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    store = Store(tmp, create=True)
    try:
        _write(store, _parsed(t, tables_path().parent / TABLES_FILENAME))
        with store.transaction() as cur:
            store.set_meta(cur, "packaged_tables", t.digest)
    finally:
        store.close()
    os.replace(tmp, path)
    return path


def packaged_store(data_dir: Path | str | None = None) -> Any:
    """A `Store` of the packaged tables, built once and cached in the data directory (read it, never write it)."""
    from hwdiffnas.devices import default_registry
    from hwdiffnas.store import SCHEMA_VERSION, Store

    devices = default_registry()  # the store resolves configured device names through them
    p = tables_path()
    if not p.is_file():
        raise UserError(f"no packaged benchmark tables at {p}; import the data: hwdiffnas data import DIR")
    stat = p.stat()
    tag = hashlib.sha256(f"{stat.st_size}|{stat.st_mtime_ns}|{p}|{SCHEMA_VERSION}".encode()).hexdigest()[:16]
    name = f"nb201-tables-{tag}.sqlite"
    target = resolve_data_dir(data_dir) / "packaged" / name
    try:
        if target.is_file():
            return Store(target, devices=devices)
    except UserError:  # a damaged cache: build it again
        pass
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return Store(build_store(target), devices=devices)
    except (OSError, UserError):  # an unwritable data directory: a private temporary folder, removed at exit
        folder = Path(tempfile.mkdtemp(prefix="hwdiffnas-tables-"))
        atexit.register(shutil.rmtree, folder, True)
        return Store(build_store(folder / name), devices=devices)
