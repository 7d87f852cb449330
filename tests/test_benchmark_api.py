"""The query API: oracle values, budgets, query counting, device tables, and the data/oracle commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import hwdiffnas.cli as cli
from hwdiffnas.benchmark import (
    QueryBudgetExhausted,
    QueryOracle,
    Store,
    load_device_table,
    oracle,
    pareto_front,
    parse_budget,
)
from hwdiffnas.errors import UserError
from hwdiffnas.space import Cell


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    """Run the CLI with this issue's commands registered (independent of other commands' modules)."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("data", "oracle", "bench"))
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("column", "device", "budget", "expected"), [
    ("nats", "fpga", 5.0, 72.28),
    ("nats", "fpga", 6.0, 73.48),
    ("nb201v11", "fpga", 6.0, 73.26),
    ("nb201v11", "eyeriss", 7.0, 73.26),
])
def test_published_oracle_values(nb201_store: Store, column: str, device: str, budget: float,
                                 expected: float) -> None:
    s = nb201_store
    lat = s.latency(device)
    r = oracle(s.accuracy("cifar100", column), lat, budget, s.connected(), s.cells())
    assert round(r.accuracy, 2) == expected
    assert r.latency_ms <= budget and lat[r.index] == r.latency_ms and s.cells()[r.index].arch_str == r.arch_str
    assert r.feasible == int((s.connected() & (lat <= budget)).sum())


def test_oracle_budget_is_inclusive_and_ties() -> None:
    cells = [Cell.from_ops((3, 3, 3, 3, 3, k)) for k in range(5)]
    acc = np.array([70.0, 72.0, 72.0, 72.0, 60.0])
    lat = np.array([1.0, 3.0, 2.0, 2.0, 0.5])
    conn = np.ones(5, dtype=bool)
    r = oracle(acc, lat, 2.0, conn, cells)
    assert (r.index, r.accuracy, r.latency_ms, r.feasible) == (2, 72.0, 2.0, 4)  # ≤ inclusive; tie → lower idx
    r = oracle(acc, lat, 1.99, conn, cells)
    assert r.index == 0
    conn[0] = False
    assert oracle(acc, lat, 1.99, conn, cells).index == 4  # disconnected cells never count
    with pytest.raises(UserError, match=r"fastest connected cell \(idx 4, .*\) takes 0.5 ms"):
        oracle(acc, lat, 0.1, conn, cells, device="toy")
    assert list(pareto_front(acc, lat, conn)) == [4, 2]


def test_infeasible_budget_names_fastest(nb201_store: Store) -> None:
    s = nb201_store
    with pytest.raises(UserError, match=r"no cell fits the budget 0.5 ms on eyeriss: .* takes 1.67954 ms"):
        oracle(s.accuracy(), s.latency("eyeriss"), 0.5, s.connected(), s.cells(), device="eyeriss")


@pytest.mark.parametrize(("text", "ms"), [("10ms", 10.0), ("1.5ms", 1.5), ("800us", 0.8), ("0.01s", 10.0),
                                          (" 5 ms ", 5.0), ("2e-3s", 2.0), ("250µs", 0.25)])
def test_parse_budget_units(text: str, ms: float) -> None:
    assert parse_budget(text) == pytest.approx(ms)


@pytest.mark.parametrize(("text", "msg"), [("10", "with a unit"), ("10 parsecs", "unknown budget unit .parsecs."),
                                           ("5min", "unknown budget unit 'min'"), ("0ms", "must be positive"),
                                           ("-1ms", "with a unit"), ("p0", "p0 < pX"), ("p101", "p0 < pX"),
                                           ("p50", "needs a device's latency table"), ("", "with a unit")])
def test_parse_budget_errors(text: str, msg: str) -> None:
    with pytest.raises(UserError, match=msg):
        parse_budget(text)


def test_quantile_budget_uses_connected_cells(nb201_store: Store) -> None:
    s = nb201_store
    lat, conn = s.latency("gold_6226"), s.connected()
    assert parse_budget("p50", lat, conn) == pytest.approx(np.median(lat[conn]))
    assert parse_budget("p50", lat, conn) != pytest.approx(np.median(lat))  # disconnected cells excluded
    assert parse_budget("p100", lat, conn) == pytest.approx(lat[conn].max())
    nano = s.latency("jetson-nano-fp16")  # NaN for missing cells are ignored
    assert parse_budget("p25", nano, conn) == pytest.approx(np.nanquantile(nano[conn], 0.25))


def test_query_oracle_counts_distinct_lookups() -> None:
    acc = np.arange(10, dtype=float)
    q = QueryOracle(acc, budget=4)
    assert q.query(3) == 3.0 and q.query(3) == 3.0 and q.used == 1
    assert list(q.label([1, 2, 3])) == [1.0, 2.0, 3.0] and q.used == 3 and q.remaining == 1
    with pytest.raises(QueryBudgetExhausted, match="2 new labels requested but only 1"):
        q.label([7, 8])
    assert q.used == 3  # a refused label batch spends nothing
    q.query(9)
    with pytest.raises(QueryBudgetExhausted, match="budget of 4 exhausted"):
        q.query(0)
    assert q.query(1) == 1.0  # repeats stay free
    assert list(q.history) == [3, 1, 2, 9]


def test_load_device_table(tmp_path: Path) -> None:
    a, b = Cell.parse("3,3,3,3,3,3"), Cell.parse("1,0,0,1,0,0")
    f = tmp_path / "t.csv"
    f.write_text(f"arch_str,latency_ms\n{a.arch_str},4.5\n{b.arch_str},0.9\n")
    assert load_device_table(f) == {a: 4.5, b: 0.9}
    (tmp_path / "empty.csv").write_text("arch_str,latency_ms\n")
    with pytest.raises(UserError, match=r"empty.csv:2: no data rows"):
        load_device_table(tmp_path / "empty.csv")
    (tmp_path / "cols.csv").write_text(f"arch,ms\n{a.arch_str},1\n")
    with pytest.raises(UserError, match=r"cols.csv:1: wrong columns"):
        load_device_table(tmp_path / "cols.csv")
    (tmp_path / "neg.csv").write_text(f"arch_str,latency_ms\n{a.arch_str},0\n")
    with pytest.raises(UserError, match=r"neg.csv:2: latency_ms must be positive"):
        load_device_table(tmp_path / "neg.csv")


def test_oracle_command(nb201_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(monkeypatch, capsys, "--data-dir", str(nb201_data_dir), "oracle", "--device", "fpga",
                           "--budget", "6ms", "--column", "nb201v11", "--json")
    assert code == 0
    d = json.loads(out)
    assert round(d["accuracy"], 2) == 73.26 and d["latency_ms"] <= 6 and d["feasible"] > 0
    assert {"arch_str", "device", "budget_ms", "dataset", "column"} <= set(d)
    assert (d["device"], d["budget_ms"], d["dataset"], d["column"]) == ("fpga", 6.0, "cifar100", "nb201v11")
    # a custom device from a CSV, wherever a device name goes
    monkeypatch.setenv("HWDIFFNAS_DATA", str(nb201_data_dir))
    rows = "\n".join(f"{Cell.parse(t).arch_str},{ms}" for t, ms in [("3,3,3,3,3,3", 9), ("1,0,0,1,0,0", 2),
                                                                    ("3,0,0,1,3,1", 5)])
    table = tmp_path / "board.csv"
    table.write_text("arch_str,latency_ms\n" + rows + "\n")
    code, out, _ = run_cli(monkeypatch, capsys, "oracle", "--device-table", str(table), "--budget", "5ms", "--json")
    d = json.loads(out)
    assert code == 0 and d["device"] == "board" and d["feasible"] == 2 and d["latency_ms"] == 5.0
    code, _, err = run_cli(monkeypatch, capsys, "oracle", "--device", "fpga", "--budget", "1ms")
    assert code == 2 and "fastest connected cell" in err
    code, _, err = run_cli(monkeypatch, capsys, "oracle", "--device", "fpga", "--budget", "10")
    assert code == 2 and "with a unit" in err


def test_data_commands(nb201_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture) -> None:
    d = tmp_path / "data"
    code, out, _ = run_cli(monkeypatch, capsys, "--data-dir", str(d), "data", "status")
    assert code == 1 and "hwdiffnas data import" in out
    # without a store the tables shipped in the package answer (cached beside the store, which stays absent)
    code, out, _ = run_cli(monkeypatch, capsys, "--data-dir", str(d), "oracle", "--device", "fpga", "--budget", "5ms")
    assert code == 0 and "latency from help:hwnb_c10_fpga:cifar10" in out and not (d / "hwdiffnas.sqlite").exists()
    code, out, _ = run_cli(monkeypatch, capsys, "--data-dir", str(d), "data", "import", "--json",
                           str(nb201_dir / "arch_index.csv"), str(nb201_dir / "latency_hw360_c100.csv"))
    assert code == 0 and [x["kind"] for x in json.loads(out)["imported"]] == ["nb201-index", "hw360-csv"]
    code, _, err = run_cli(monkeypatch, capsys, "--data-dir", str(d), "oracle", "--device", "pi5-litert",
                           "--budget", "p50")
    assert code == 2 and "incomplete: missing accuracies" in err
    code, out, _ = run_cli(monkeypatch, capsys, "--data-dir", str(d), "data", "status", "--json")
    st = json.loads(out)
    by = {x["device"]: x for x in st["devices"]}
    assert by["pi5-litert"]["available"] and by["pi5-litert"]["latency_n"] == 15625
    assert by["pi5-litert"]["connected_n"] == 15284 and not by["fpga"]["available"]
    code, out, _ = run_cli(monkeypatch, capsys, "--data-dir", str(d), "data", "status")
    assert code == 0 and "pi5-litert" in out and "needs the help table" in out
