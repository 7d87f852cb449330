"""Build the packaged NB201 tables (hwdiffnas/assets/nb201_tables.safetensors) from the data folder's CSVs.

    python benchmarks/build_table_assets.py [--src ../shared/data/nb201] [--out hwdiffnas/assets]

Ships only the clearly licensed tables (MIT): the NATS-Bench 200-epoch test accuracies of ``accuracy.csv``
(``*__natstss``) and every column of the HELP repository's ``latency_help_ms.csv`` (its own devices and the
HW-NAS-Bench ``hwnb_c10_*`` columns), plus the NB201 index of ``arch_index.csv``. Eagle/LatBench and
HW-NAS-Bench-360 carry no clear data licence and are left out. The CSVs are imported with the normal importer into
a temporary store, the store's arrays are encoded exactly (`hwdiffnas.packaged.encode_column`), and a store built
from the written file is compared value for value with the imported one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hwdiffnas.importers import ACCURACY_COLUMNS, import_paths  # noqa: E402
from hwdiffnas.packaged import (  # noqa: E402
    FORMAT,
    INDEX_KEY,
    ISO_KEY,
    LICENSE_FILENAME,
    SOURCES,
    TABLES_FILENAME,
    build_store,
    encode_column,
    load_tables,
)
from hwdiffnas.store import Store  # noqa: E402

SHIPPED_FILES = ("arch_index.csv", "accuracy.csv", "latency_help_ms.csv")


def store_arrays(store: Store, columns: dict[str, list[str]]) -> dict[tuple[str, str], np.ndarray]:
    """The store's (15625,) array of each shipped column, NB201 index order."""
    from hwdiffnas.importers import _single_target

    out = {}
    for file, cols in columns.items():
        for c in cols:
            if file == "accuracy.csv":
                out[(file, c)] = store.accuracy(*ACCURACY_COLUMNS[c])
            else:
                source = file.removeprefix("latency_").split("_")[0]
                t = _single_target(source, c, Path(file), None)
                arr = store.hw_table(source, c, t.setting, t.metric)
                assert arr is not None, (file, c)
                out[(file, c)] = arr
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=str(REPO.parent / "shared" / "data" / "nb201"), help="the NB201 data folder")
    ap.add_argument("--out", default=str(REPO / "hwdiffnas" / "assets"), help="output folder (the package assets)")
    args = ap.parse_args()
    from safetensors.numpy import save_file

    t0 = time.perf_counter()
    src, out = Path(args.src), Path(args.out)
    if not (out / LICENSE_FILENAME).is_file():
        raise SystemExit(f"{out / LICENSE_FILENAME} is missing: the tables ship only with their licences")
    with tempfile.TemporaryDirectory() as tmp:
        import_paths([src / f for f in SHIPPED_FILES], Path(tmp) / "imported")
        with Store(Path(tmp) / "imported" / "hwdiffnas.sqlite") as store:
            header = (src / "accuracy.csv").read_text().splitlines()[0].split(",")
            help_header = (src / "latency_help_ms.csv").read_text().splitlines()[0].split(",")
            columns = {"accuracy.csv": [c for c in header[1:] if c.endswith("__natstss")],
                       "latency_help_ms.csv": help_header[1:]}
            arrays = store_arrays(store, columns)
            tensors = {INDEX_KEY: store.index_to_key().astype(np.uint16),
                       ISO_KEY: store.iso_rep_idx().astype(np.uint16)}
            for (file, c), values in arrays.items():
                for suffix, arr in encode_column(values).items():
                    tensors[f"{file}/{c}{suffix}"] = arr
            meta = {"format": FORMAT, "columns": json.dumps(columns), "sources": json.dumps(SOURCES),
                    "licence": f"see {LICENSE_FILENAME}", "built_from": ", ".join(SHIPPED_FILES),
                    "command": "python benchmarks/build_table_assets.py"}
            path = out / TABLES_FILENAME
            save_file(tensors, str(path), metadata=meta)
            # check: the written file decodes to the imported arrays, and a store built from it reads alike
            tables = load_tables(path)
            built = build_store(Path(tmp) / "packaged.sqlite", tables)
            with Store(built) as again:
                assert np.array_equal(again.index_to_key(), store.index_to_key())
                assert np.array_equal(again.iso_rep_idx(), store.iso_rep_idx())
                for key, ref in store_arrays(again, columns).items():
                    assert np.array_equal(ref, arrays[key], equal_nan=True), key
                    assert np.array_equal(tables.columns[key], arrays[key], equal_nan=True), key
    n = sum(len(c) for c in columns.values())
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {n} columns, "
          f"{sum(1 for k in tensors if k.endswith('.codes'))} of them as values + codes) "
          f"in {time.perf_counter() - t0:.1f} s; verified value for value")


if __name__ == "__main__":
    main()
