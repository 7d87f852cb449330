"""The search-space seam: the NB201 plug-in answers the interface as the cell code does, the registry finds and
refuses spaces by name, and `hwdiffnas spaces` lists them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from hwdiffnas.cli import main
from hwdiffnas.errors import UserError
from hwdiffnas.plugins import get_space, register_space, space_names
from hwdiffnas.space import Cell, all_cells, neighbourhood
from hwdiffnas.spaces.base import SearchSpace, require_space

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_nb201_space_round_trips_and_matches_the_cell_code() -> None:
    sp = get_space("nb201")
    assert isinstance(sp, SearchSpace) and sp.name == "nb201" and sp.size == 15_625
    cell = sp.parse(BEST)
    assert sp.format(cell) == BEST and sp.decode(sp.encode(cell)) == cell
    assert list(sp.enumerate()) == list(all_cells())
    assert sp.neighbours(cell, 2) == neighbourhood(cell, 2)
    assert sum(not sp.is_valid(c) for c in sp.enumerate()) == 341
    assert len({sp.equivalence_key(c) for c in sp.enumerate()}) == 6466
    assert len(sp.reference_archs()) == 10
    assert sp.input_shape("in16") == (1, 3, 16, 16)
    enc = sp.encoding
    assert (enc.positions, len(enc.choices), enc.nodes) == (6, 5, 8)


def test_nb201_canonical_is_a_member_of_the_class() -> None:
    sp = get_space("nb201")
    cell = Cell.from_str("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|")
    canon = sp.canonical(cell)
    assert canon.nats_unique_str == cell.nats_unique_str and canon <= cell


def test_unknown_space_lists_the_installed_ones() -> None:
    with pytest.raises(UserError, match=r"unknown search space 'nope'; known: .*nb201"):
        get_space("nope")


def test_a_space_path_refuses_other_spaces() -> None:
    with pytest.raises(UserError, match="supports search space"):
        require_space("toy", ("nb201",), "the predictor bundle")


def test_the_base_class_defaults_on_a_registered_space() -> None:
    from toy_space import ToyChainSpace

    register_space("toychain", ToyChainSpace)
    sp = get_space("toychain")
    assert "toychain" in space_names() and sp.size == 81 and len(list(sp.enumerate())) == 81
    arch = sp.parse("0120")
    assert len(sp.neighbours(arch, 1)) == 1 + 4 * 2
    assert sp.features([arch]).shape == (1, 12) and np.all(sp.features([arch]).sum(1) == 4)
    assert sp.equivalence_key(arch) == sp.format(arch)


def test_spaces_command_lists_nb201(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spaces", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    nb = {s["name"]: s for s in out["spaces"]}["nb201"]
    assert nb["loads"] and nb["datasets"] == ["cifar10", "cifar100", "ImageNet16-120"]
    assert "tflite" in nb["exporters"] and nb["size"] == 15_625
    assert main(["spaces"]) == 0 and "nb201" in capsys.readouterr().out


def _old_store(path: Path) -> Path:
    """A store as written before the ``space`` column (the column dropped from a fresh one)."""
    from hwdiffnas.store import Store

    with Store.create(path) as s:
        s.record_measurement("board", "r", Cell((1, 2, 3, 0, 1, 2)), median_ms=2.5)
        s.conn.execute("ALTER TABLE cells DROP COLUMN space")
    return path / "hwdiffnas.sqlite"


def _columns(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[1] for r in conn.execute("PRAGMA table_info(cells)")]


def test_a_store_written_before_the_space_column_reads_read_only_and_migrates_on_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hwdiffnas.store import Store

    db = _old_store(tmp_path)
    assert "space" not in _columns(db)
    with monkeypatch.context() as m:  # read-only: left as it is, reads as all-NB201
        m.setattr("hwdiffnas.storefile.os.access", lambda *_a: False)
        with Store(db) as s:
            assert s.readonly and s.spaces() == ["nb201"] and len(s.measured("board")) == 1
            s.check_space("nb201")
            with pytest.raises(UserError, match=r"holds search space\(s\) nb201, not 'toychain'"):
                s.check_space("toychain")
    assert "space" not in _columns(db)
    with Store(db) as s:  # writable: the column is added, every row nb201, nothing else changes
        assert s.spaces() == ["nb201"] and len(s.measured("board")) == 1
    assert "space" in _columns(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*), MIN(space), MAX(space) FROM cells").fetchone() == (15625, "nb201",
                                                                                                  "nb201")


def test_nb201_only_paths_refuse_other_spaces_by_name(tmp_path: Path) -> None:
    """The shipped predictor bundle, a bundle recorded for another space, and the benchmark harness say which
    space they handle."""
    import shutil

    from hwdiffnas import ASSETS_DIR
    from hwdiffnas.harness import run_grid
    from hwdiffnas.predictors.bundle import META_NAME, WEIGHTS_NAME, default_bundle, load_bundle

    with pytest.raises(UserError, match="the shipped predictor bundle supports search space"):
        default_bundle("fbnet")
    assert default_bundle().devices()
    shutil.copy(ASSETS_DIR / WEIGHTS_NAME, tmp_path / WEIGHTS_NAME)
    meta = json.loads((ASSETS_DIR / META_NAME).read_text())
    (tmp_path / META_NAME).write_text(json.dumps({**meta, "space": "fbnet"}))
    with pytest.raises(UserError, match="is for search space 'fbnet', not 'nb201'"):
        load_bundle(tmp_path)
    assert load_bundle(tmp_path, space="fbnet").devices()
    with pytest.raises(UserError, match="the benchmark harness"):
        run_grid(None, [], [], [0], space="fbnet")  # type: ignore[arg-type]
