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


# --- output into a closed pipe --------------------------------------------------------------------------
def _into_closed_pipe(argv: list[str], env_data: Path) -> subprocess.CompletedProcess:
    """Run the CLI with stdout the write end of a pipe whose read end is already closed (what `| head` leaves
    once it has its lines, without the race)."""
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    try:
        return subprocess.run([sys.executable, "-m", "hwdiffnas", *argv], stdout=write_fd, stderr=subprocess.PIPE,
                              text=True, timeout=300, env={**os.environ, "HWDIFFNAS_DATA": str(env_data)})
    finally:
        os.close(write_fd)


@pytest.mark.parametrize("argv", [
    ["devices"],
    ["devices", "--json"],
    ["data", "status"],
    ["oracle", "--device", "pixel3", "--budget", "p50"],
    ["bench", "--method", "random", "--device", "pixel3", "--budget", "p50", "--queries", "5", "--seeds", "1",
     "--json"],
    ["campaign", "--device", "local-cpu", "--n", "20", "--dry-run"],
], ids=lambda a: " ".join(a[:2]))
def test_closed_stdout_ends_quietly(argv: list[str], nb201_data_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / STORE_FILENAME).write_bytes((nb201_data_dir / STORE_FILENAME).read_bytes())
    proc = _into_closed_pipe(argv, data)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert proc.returncode == 141, proc.stderr


# --- --data-dir and --json on either side of the sub-command ----------------------------------------------
def test_data_dir_and_json_before_or_after_the_command(nb201_data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    outs = []
    for argv in (["--data-dir", str(nb201_data_dir), "--json", "data", "status"],
                 ["data", "status", "--data-dir", str(nb201_data_dir), "--json"],
                 ["--json", "data", "status", "--data-dir", str(nb201_data_dir)],
                 ["--data-dir", str(nb201_data_dir), "data", "status", "--json"]):
        assert main(argv) == 0, argv
        outs.append(json.loads(capsys.readouterr().out))
    assert all(o == outs[0] for o in outs)
    assert outs[0]["data_dir"] == str(nb201_data_dir) and outs[0]["exists"]


def test_data_dir_after_the_command_overrides_the_environment(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    assert main(["data", "status", "--json", "--data-dir", str(tmp_path / "mine")]) == 0
    assert json.loads(capsys.readouterr().out)["data_dir"] == str(tmp_path / "mine")
    assert main(["data", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["data_dir"] == os.environ["HWDIFFNAS_DATA"]


def test_help_shows_both_options_in_both_places(capsys: pytest.CaptureFixture) -> None:
    for argv in (["--help"], ["devices", "--help"], ["data", "status", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = capsys.readouterr().out
        assert "--data-dir" in text and "--json" in text, argv
