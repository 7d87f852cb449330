"""Shared fixtures. Benchmark data comes from ``$HWDIFFNAS_NB201_DIR`` (the CI sets it to
``../shared/data/nb201``); without it the tests look there relative to the checkout. When ``CI`` is set, a
missing data folder fails the data tests instead of skipping them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _nb201_dir() -> Path:
    env = os.environ.get("HWDIFFNAS_NB201_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data" / "nb201"


@pytest.fixture(scope="session")
def nb201_dir() -> Path:
    """The read-only NB201 source data folder (arch_index.csv, accuracy.csv, latency tables, raw/)."""
    path = _nb201_dir()
    if not (path / "arch_index.csv").is_file():
        msg = f"NB201 data folder not found at {path} (set HWDIFFNAS_NB201_DIR)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the real per-user data dir from tests."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HWDIFFNAS_DATA", str(home / "data"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "xdg"))


NB201_TABLE_FILES = ("arch_index.csv", "accuracy.csv", "latency_help_ms.csv", "latency_eagle_ms.csv",
                     "latency_hw360_c100.csv")


@pytest.fixture(scope="session")
def nb201_data_dir(nb201_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding a store imported once per session from the NB201 CSV tables (no raw files)."""
    from hwdiffnas.importers import import_paths

    data_dir = tmp_path_factory.mktemp("nb201_store")
    import_paths([nb201_dir / f for f in NB201_TABLE_FILES], data_dir)
    return data_dir


@pytest.fixture(scope="session")
def nb201_store(nb201_data_dir: Path):
    """The session's imported store, opened read-mostly (`hwdiffnas.benchmark.Store`)."""
    from hwdiffnas.benchmark import open_store

    store = open_store(nb201_data_dir)
    yield store
    store.close()
