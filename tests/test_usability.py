"""What a first-time user runs into: repeated imports, closed pipes, option placement, misleading
names and messages, leftovers of stopped runs."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hwdiffnas.cli import main
from hwdiffnas.datadir import STORE_FILENAME
from hwdiffnas.importers import import_paths

ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def _row_counts(data_dir: Path) -> tuple[int, int]:
    conn = sqlite3.connect(data_dir / STORE_FILENAME)
    try:
        return (conn.execute("SELECT COUNT(*) FROM accuracy").fetchone()[0],
                conn.execute("SELECT COUNT(*) FROM hw_value").fetchone()[0])
    finally:
        conn.close()


# --- data import twice ----------------------------------------------------------------------------------
def test_reimport_keeps_one_copy_of_each_series(nb201_dir: Path, tmp_path: Path) -> None:
    files = [nb201_dir / f for f in ("arch_index.csv", "accuracy.csv", "latency_help_ms.csv")]
    import_paths(files, tmp_path)
    first = _row_counts(tmp_path)
    assert first[0] > 0 and first[1] > 0
    import_paths(files, tmp_path)
    import_paths(files, tmp_path)
    assert _row_counts(tmp_path) == first


def test_reimport_removes_rows_orphaned_by_earlier_imports(nb201_dir: Path, tmp_path: Path) -> None:
    files = [nb201_dir / f for f in ("arch_index.csv", "accuracy.csv")]
    import_paths(files, tmp_path)
    first = _row_counts(tmp_path)
    conn = sqlite3.connect(tmp_path / STORE_FILENAME)  # foreign keys off: what earlier versions left behind
    conn.execute("INSERT INTO accuracy (series_id, cell_key, value) SELECT series_id + 1000, cell_key, value "
                 "FROM accuracy")
    conn.commit()
    conn.close()
    assert _row_counts(tmp_path)[0] == 2 * first[0]
    import_paths(files, tmp_path)
    assert _row_counts(tmp_path) == first
