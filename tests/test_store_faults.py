"""Faults of the store file and its rows: newer schema, read-only file, damaged pages, unreadable JSON."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from privileges import as_unprivileged_user

from hwdiffnas.campaign import CampaignSpec, plan_cells, run_campaign
from hwdiffnas.cli import main
from hwdiffnas.errors import UserError
from hwdiffnas.interfaces import LatencyStats, ProfileSettings
from hwdiffnas.space import Cell
from hwdiffnas.store import Store


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hwdiffnas: error: ") and "\n" not in err and "Traceback" not in err
    return err


def _stats(cell: Cell) -> LatencyStats:
    ms = 1.0 + sum(cell.ops) / 10
    return LatencyStats.from_samples([ms, ms, ms], warmup=0, threads=1, runtime="fake", runtime_version="0",
                                     host="test")


def _newer_schema(data_dir: Path) -> Path:
    Store.create(data_dir).close()
    path = data_dir / "hwdiffnas.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    return path


def test_newer_schema_is_refused_for_writes_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _newer_schema(tmp_path)
    with pytest.raises(UserError, match="store schema 99"):
        Store.create(tmp_path)
    err = _one_line_error(capsys, ["--data-dir", str(tmp_path), "campaign", "--device", "local-cpu", "--n", "2",
                                   "--no-progress"])
    assert "store schema 99" in err
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == 0
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "99"
    conn.close()


_READ_ONLY_CHECK = """
import json, sys
from hwdiffnas.cli import main
from hwdiffnas.errors import UserError
from hwdiffnas.space import Cell
from hwdiffnas.store import Store

data = sys.argv[1]
out = {}
with Store(data + "/hwdiffnas.sqlite") as s:
    out["readonly"] = s.readonly
    out["medians"] = [m.median_ms for m in s.measured("board")]
    try:
        s.record_measurement("board", "r2", Cell((1, 2, 3, 0, 1, 2)), median_ms=3.0)
    except UserError as exc:
        out["write_error"] = str(exc)
out["status_rc"] = main(["--data-dir", data, "data", "status", "--json"])
out["campaign_rc"] = main(["--data-dir", data, "campaign", "--device", "local-cpu", "--n", "2", "--no-progress"])
print(json.dumps(out))
"""


@pytest.mark.parametrize("what", ["file", "folder"])
def test_read_only_store_can_be_read(tmp_path: Path, what: str) -> None:
    """A store without write permission (file, or its folder) is read; writes are one-line errors.

    Run in a child process, as an unprivileged user when the tests run as root (root ignores permissions).
    """
    base = Path(tempfile.mkdtemp(prefix="hwd-ro-"))
    data = base / "data"
    try:
        with Store.create(data) as s:
            s.record_measurement("board", "r", Cell((1, 2, 3, 0, 1, 2)), median_ms=2.5)
        path = data / "hwdiffnas.sqlite"
        base.chmod(0o755)
        path.chmod(0o444)
        data.chmod(0o555 if what == "folder" else 0o777)
        argv = as_unprivileged_user([sys.executable, "-c", _READ_ONLY_CHECK, str(data)])
        env = {**os.environ, "HOME": str(base), "HWDIFFNAS_DATA": str(data), "XDG_DATA_HOME": str(base)}
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, cwd=base)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert out["readonly"] and out["medians"] == [2.5] and out["status_rc"] == 0
        assert "read-only" in out["write_error"] and "delete" not in out["write_error"]
        assert out["campaign_rc"] == 2
        err = [line for line in proc.stderr.splitlines() if line.startswith("hwdiffnas: error:")]
        assert len(err) == 1 and "read-only" in err[0] and "move it away" not in err[0]
        assert "Traceback" not in proc.stderr
    finally:
        data.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


def test_garbage_in_the_middle_of_the_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Store.create(tmp_path) as s:
        s.record_measurement("board", "r", Cell((1, 2, 3, 0, 1, 2)), median_ms=2.5)
    path = tmp_path / "hwdiffnas.sqlite"
    size = path.stat().st_size
    with open(path, "r+b") as fh:  # keep the 100-byte header and the first pages, overwrite the middle
        fh.seek(size // 2)
        fh.write(os.urandom(64 * 1024))
    err = _one_line_error(capsys, ["--data-dir", str(tmp_path), "data", "status"])
    assert "damaged" in err and str(path) in err and "delete" not in err
    with open(path, "r+b") as fh:  # a damaged header too
        fh.write(b"\0" * 100)
    err = _one_line_error(capsys, ["--data-dir", str(tmp_path), "data", "status"])
    assert "damaged" in err and "delete" not in err


def test_a_row_with_bad_stats_json_does_not_stop_a_resume(tmp_path: Path) -> None:
    store = Store.create(tmp_path)
    spec = CampaignSpec(device="local-cpu", runtime="onnxruntime", settings=ProfileSettings(runs=3), n=4)
    cells = plan_cells(spec)
    run_campaign(spec, store, cells[:2], _stats, progress=False)
    store.conn.execute("UPDATE measurements SET stats_json = '{\"median_ms\": 1.', settings_json = '[1, 2]' "
                       "WHERE cell_key = (SELECT MIN(cell_key) FROM measurements)")
    calls: list[Cell] = []

    def measure(cell: Cell) -> LatencyStats:
        calls.append(cell)
        return _stats(cell)

    report = run_campaign(spec, store, cells, measure, progress=False)
    assert report.already_done == 2 and calls == cells[2:]
    rows = store.measured("local-cpu")
    assert len(rows) == 4 and sum(m.stats == {} and m.settings == {} for m in rows) == 1
    store.close()
