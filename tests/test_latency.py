"""One home for device latency: the ``pNN`` budget is the same in ``search``, ``bench`` and ``oracle`` for a table
device, a ``--device-table`` file and a device measured in the store, and follows its definition (the percentile
over every connected cell, exact where known, else the estimate)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hwdiffnas.cli import main


def _json(capsys: pytest.CaptureFixture, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _spread(lat: np.ndarray, ok: np.ndarray, k: int) -> np.ndarray:
    idx = np.flatnonzero(ok)
    return idx[np.argsort(lat[idx])][np.linspace(0, idx.size - 1, k).astype(int)]


@pytest.fixture(scope="module")
def measured_data_dir(nb201_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's store plus a device ``bench-board`` known only from 30 measurements (as a campaign leaves it)
    and a ``rows.csv`` of 40 raspi4 rows."""
    from hwdiffnas.benchmark import open_store

    data_dir = tmp_path_factory.mktemp("measured") / "data"
    shutil.copytree(nb201_data_dir, data_dir)
    store = open_store(data_dir)
    cells = store.cells()
    conn = store.connected()
    lat = store.latency("pi5-litert")
    for i in _spread(lat, conn & np.isfinite(lat), 30):
        store.record_measurement("bench-board", "run-1", cells[i], median_ms=float(lat[i]), runtime="onnxruntime")
    raspi = store.latency("raspi4")
    rows = _spread(raspi, conn & np.isfinite(raspi), 40)
    (data_dir / "rows.csv").write_text("arch_str,latency_ms\n" + "".join(
        f"{cells[i].arch_str},{float(raspi[i])!r}\n" for i in rows))
    store.close()
    return data_dir


CASES = {
    "table": (["--device", "fpga"], "p25"),
    "device-table": (["--device-table", "{dir}/rows.csv"], "p50"),
    "measured": (["--device", "bench-board"], "p50"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_pnn_budget_is_the_same_in_search_bench_and_oracle(case: str, capsys: pytest.CaptureFixture,
                                                           measured_data_dir: Path) -> None:
    dev_args, budget = CASES[case]
    dev_args = [a.format(dir=measured_data_dir) for a in dev_args]
    base = ["--data-dir", str(measured_data_dir)]
    oracle = _json(capsys, [*base, "oracle", *dev_args, "--budget", budget, "--json"])
    bench = _json(capsys, [*base, "bench", "--method", "random", "--queries", "2", "--seeds", "1", *dev_args,
                           "--budget", budget, "--json"])
    search = _json(capsys, [*base, "search", *dev_args, "--budget", budget, "--samples", "16", "--queries", "0",
                            "--top", "1", "--json"])
    budgets = {"oracle": oracle["budget_ms"], "bench": bench["grid"][0]["budget_ms"], "search": search["budget_ms"]}
    assert len(set(budgets.values())) == 1, budgets
    assert search["budget_quantile"] == pytest.approx(float(budget[1:]) / 100, abs=0.01)  # ties in a table


def test_pnn_definition_table_rows_and_measured(measured_data_dir: Path) -> None:
    """Table: the table's own percentile (unchanged). Rows and measured: the percentile over every connected
    cell, its row where measured, else the estimate — so the rows themselves are in the distribution, exactly."""
    from hwdiffnas.benchmark import load_device_table, open_store, parse_budget
    from hwdiffnas.latency.device import device_latency

    with open_store(measured_data_dir) as store:
        conn = store.connected()
        fpga = store.latency("fpga")
        table = device_latency(store, "fpga")
        assert table.parse_budget("p25") == parse_budget("p25", fpga, conn) == float(np.quantile(fpga[conn], 0.25))
        assert table.estimate is None and table.connected_sorted_ms.size == conn.sum()
        rows = load_device_table(measured_data_dir / "rows.csv")
        for dev in (device_latency(store, None, measured_data_dir / "rows.csv"), device_latency(store, "bench-board")):
            dist = dev.connected_sorted_ms
            assert dist.size == conn.sum() and dev.estimate is not None
            known = rows if dev.name == "rows" else {c: v for c, v in zip(store.cells(), store.latency("bench-board"))
                                                     if np.isfinite(v)}
            assert np.isin([v for c, v in known.items() if c.is_connected], dist).all()
            assert dev.parse_budget("p50") == pytest.approx(float(np.quantile(dist, 0.5)), rel=0, abs=0)
            # not the percentile of the rows alone (what bench and oracle used to take)
            assert dev.parse_budget("p50") != pytest.approx(float(np.quantile(list(known.values()), 0.5)), rel=1e-3)
        assert device_latency(store, "bench-board").table_source == "measured:bench-board"  # the prefix once


def test_stored_device_table_coverage_rule(nb201_store) -> None:
    """A stored table covering ≥ 90 % of the connected cells is a table device (no estimate); below, its rows are
    exact and the rest estimated."""
    from hwdiffnas.latency.device import TABLE_COVERAGE, stored_device

    dev = stored_device(nb201_store, "snapdragon450-cpu-int8")  # 32 connected cells missing: still a table
    lat = nb201_store.latency("snapdragon450-cpu-int8")
    ok = nb201_store.connected() & np.isfinite(lat)
    assert ok.sum() < nb201_store.connected().sum() and dev.estimate is None
    assert dev.connected_sorted_ms.size == ok.sum() and TABLE_COVERAGE == 0.9
    assert dev.table_source == f"table:{nb201_store.latency_source('snapdragon450-cpu-int8')}"


def test_device_vector_and_quantile_map_are_written_once() -> None:
    """The generator's representation, the predictors' vector and the quantile helpers are the same objects."""
    import hwdiffnas.generator.conditions as conditions
    import hwdiffnas.latency.reference as reference
    import hwdiffnas.predictors.device as pdev

    assert conditions.device_representation is reference.device_representation
    assert conditions.budget_quantile is reference.budget_quantile
    assert pdev.LatencyQuantiles is reference.LatencyQuantiles and pdev.table_quantiles is reference.table_quantiles
    assert pdev.HELP_REFERENCE_ARCHS is reference.HELP_REFERENCE_ARCHS is conditions.HELP_REFERENCE_ARCHS
    lat = np.array([1.0, 2.0, 2.0, 3.0])
    assert reference.budget_quantile(2.0, lat) == 0.75 and reference.quantile_ms(lat, 0.5) == 2.0
    q = reference.LatencyQuantiles(np.linspace(0, 1, 3), np.array([1.0, 2.0, 4.0]))
    assert q.dense(5).tolist() == [1.0, 1.5, 2.0, 3.0, 4.0]
