"""Shared fixtures. Benchmark data comes from ``$HWDIFFNAS_NB201_DIR``, ``$HWDIFFNAS_FBNET_DIR`` and
``$HWDIFFNAS_MACRO_DIR`` (the CI sets them to ``../shared/data/<name>``); without them the tests look there
relative to the checkout. When ``CI`` is set, a missing data folder fails the data tests instead of skipping
them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _required_data_dir(env_var: str, folder: str, probe: str) -> Path:
    """``$env_var`` or ``../shared/data/<folder>``; fails under CI (skips otherwise) when ``probe`` is missing."""
    env = os.environ.get(env_var)
    path = Path(env) if env else REPO.parent / "shared" / "data" / folder
    if not (path / probe).is_file():
        msg = f"{folder} data folder not found at {path} (set {env_var})"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def nb201_dir() -> Path:
    """The read-only NB201 source data folder (arch_index.csv, accuracy.csv, latency tables, raw/)."""
    return _required_data_dir("HWDIFFNAS_NB201_DIR", "nb201", "arch_index.csv")


@pytest.fixture(scope="session")
def fbnet_dir() -> Path:
    """The read-only FBNet-space data folder (arch_index.csv, latency_help_ms.csv)."""
    return _required_data_dir("HWDIFFNAS_FBNET_DIR", "fbnet", "latency_help_ms.csv")


@pytest.fixture(scope="session")
def macro_dir() -> Path:
    """The read-only NAS-Bench-Macro data folder (accuracy.csv)."""
    return _required_data_dir("HWDIFFNAS_MACRO_DIR", "nasbench_macro", "accuracy.csv")


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


NB201_SLICE = REPO / "tests" / "fixtures" / "nb201_slice"


@pytest.fixture(scope="session")
def nb201_slice() -> dict[str, dict[int, dict[str, str]]]:
    """The committed 300-cell slice of the NB201 tables (real formats, MIT tables only; see
    ``tests/fixtures/make_nb201_slice.py``): ``{file stem: {idx: row}}``."""
    import csv

    out = {}
    for name in ("arch_index", "accuracy", "latency_help_ms"):
        with (NB201_SLICE / f"{name}.csv").open(newline="") as fh:
            out[name] = {int(r["idx"]): r for r in csv.DictReader(fh)}
    return out
