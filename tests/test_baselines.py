"""Baseline search methods, the method registry and the evaluation harness (CI-sized grid)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hwdiffnas.baselines import Pick, SearchMethod, SearchTask
from hwdiffnas.baselines.base import picks_from_history
from hwdiffnas.benchmark import QueryBudgetExhausted, QueryOracle, Store, oracle, parse_budget
from hwdiffnas.errors import UserError
from hwdiffnas.harness import MethodConfig, default_grid, markdown_table, run_grid, run_task, write_outputs
from hwdiffnas.methods import get_method, method_names, register_method


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    """Run the CLI with this issue's commands registered (independent of other commands' modules)."""
    import hwdiffnas.cli as cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ("data", "oracle", "bench"))
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def fpga_task(nb201_store: Store) -> tuple[SearchTask, np.ndarray]:
    s = nb201_store
    return SearchTask("fpga", 5.0, s.latency("fpga"), s.connected(), s.cells()), s.accuracy()


@pytest.mark.parametrize("name", ["random", "rea"])
def test_methods_spend_exactly_their_queries(fpga_task: tuple[SearchTask, np.ndarray], name: str) -> None:
    task, acc = fpga_task
    method = get_method(name)
    q = QueryOracle(acc, 30)
    picks = method.run(task, q, seed=1)
    assert q.used == 30 and len(picks) == 30
    assert all(task.feasible[p.index] for p in picks)
    assert [p.observed_accuracy for p in picks] == sorted((p.observed_accuracy for p in picks), reverse=True)
    again = get_method(name).run(task, QueryOracle(acc, 30), seed=1)
    assert [p.index for p in again] == [p.index for p in picks]  # seeded
    other = get_method(name).run(task, QueryOracle(acc, 30), seed=2)
    assert [p.index for p in other] != [p.index for p in picks]


def test_random_search_with_enough_queries_finds_oracle(nb201_store: Store) -> None:
    s = nb201_store
    lat, conn = s.latency("pixel3"), s.connected()
    budget = parse_budget("p2", lat, conn)
    task = SearchTask("pixel3", budget, lat, conn, s.cells())
    n = int(task.feasible.sum())
    assert 50 < n < 1000
    best = oracle(s.accuracy(), lat, budget, conn, s.cells())
    picks = get_method("random").run(task, QueryOracle(s.accuracy(), n), seed=0)
    assert picks[0].index == best.index and len(picks) == n == best.feasible


def test_rea_beats_random_on_average(fpga_task: tuple[SearchTask, np.ndarray]) -> None:
    base, acc = fpga_task
    task = SearchTask("fpga", 6.0, base.latency_ms, base.connected, base.cells)
    res = {m: np.mean([acc[get_method(m).run(task, QueryOracle(acc, 100), seed=s)[0].index] for s in range(30)])
           for m in ("random", "rea")}
    assert res["rea"] > res["random"] + 0.3  # measured over 40 seeds: 72.33 vs 71.39


def test_predictor_labels_count_as_queries(fpga_task: tuple[SearchTask, np.ndarray]) -> None:
    task, acc = fpga_task
    m = get_method("predictor", label_fraction=0.01)
    n_labels = m.label_queries(task)
    assert n_labels == 156
    q = QueryOracle(acc, n_labels + 10)
    picks = m.run(task, q, seed=0)
    assert q.used == n_labels + 10
    assert all(task.feasible[p.index] for p in picks)
    with pytest.raises(QueryBudgetExhausted):
        q.query(int(np.flatnonzero(~np.isin(np.arange(len(acc)), list(q.history)))[0]))
    with pytest.raises(UserError, match="label fraction"):
        get_method("predictor", label_fraction=0)


def test_registry() -> None:
    assert {"random", "rea", "predictor"} <= set(method_names())
    with pytest.raises(UserError, match="unknown search method 'difusion'; known: .*random"):
        get_method("difusion")
    with pytest.raises(UserError, match="does not accept options"):
        get_method("random", label_fraction=0.1)

    class Fastest(SearchMethod):
        name = "fastest"

        def run(self, task: SearchTask, queries: QueryOracle, seed: int) -> list[Pick]:
            i = int(task.feasible_indices[np.argmin(task.latency_ms[task.feasible_indices])])
            queries.query(i)
            return picks_from_history(task, queries)

    register_method("fastest", Fastest)
    assert "fastest" in method_names() and isinstance(get_method("fastest"), Fastest)


def test_run_task_metrics(fpga_task: tuple[SearchTask, np.ndarray]) -> None:
    task, acc = fpga_task
    best = oracle(acc, task.latency_ms, task.budget_ms, task.connected, task.cells)

    class Greedy(SearchMethod):  # ignores the budget: picks the most accurate cell overall
        name = "greedy"

        def run(self, task: SearchTask, queries: QueryOracle, seed: int) -> list[Pick]:
            i = 9930
            return [Pick(i, task.cells[i].arch_str, queries.query(i), float(task.latency_ms[i]))]

    register_method("greedy", Greedy)
    res = run_task(task, acc, MethodConfig("greedy", 5), [0, 1], best.accuracy)
    r = res["runs"][0]
    assert r["index"] == 9930 and r["violation"] and r["violations"] == 1 and r["queries"] == 1
    assert r["regret"] == pytest.approx(best.accuracy - acc[9930]) and r["regret"] < 0
    assert res["summary"]["violations"]["mean"] == 1.0


def test_default_grid() -> None:
    grid = default_grid()
    assert len(grid) == 15 + 15 and ("fpga", "4ms") in grid and ("pi5-litert", "p75") in grid
    assert default_grid(["eyeriss"]) == [("eyeriss", "5ms"), ("eyeriss", "7ms"), ("eyeriss", "9ms")]
    with pytest.raises(UserError, match="not in the grid"):
        default_grid(["nope"])


def test_ci_sized_grid(nb201_store: Store, tmp_path: Path) -> None:
    grid = [("fpga", "5ms"), ("edgetpu-int8", "p50")]
    configs = [MethodConfig("random", 10), MethodConfig("rea", 10),
               MethodConfig("predictor", 5, {"label_fraction": 0.01})]
    result = run_grid(nb201_store, grid, configs, [0, 1])
    assert [e["device"] for e in result["grid"]] == ["fpga", "edgetpu-int8"]
    fpga = result["grid"][0]
    assert round(fpga["oracle"]["accuracy"], 2) == 72.28
    for e in result["grid"]:
        for r in e["results"]:
            for run in r["runs"]:
                assert run["regret"] >= 0 and run["latency_ms"] <= e["budget_ms"] and run["violations"] == 0
                assert run["regret"] == pytest.approx(e["oracle"]["accuracy"] - run["accuracy"])
        assert [r["runs"][0]["queries"] for r in e["results"]] == [10, 10, 156 + 5]
    paths = write_outputs(nb201_store, result, tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["grid"][1]["latency_source"] == "eagle:embedded-tpu-edge-tpu-int8:cifar100"
    md = paths["markdown"].read_text()
    assert md.count("\n| fpga | 5ms |") == 3 and "regret (pts)" in md and md == markdown_table(result)
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_command(nb201_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture) -> None:
    base = ("--data-dir", str(nb201_data_dir), "bench")
    code, out, _ = run_cli(monkeypatch, capsys, *base, "--method", "random,predictor", "--device", "eyeriss",
                           "--budget", "7ms", "--queries", "5", "--seeds", "2", "--label-fraction", "0.01",
                           "--json")
    d = json.loads(out)
    assert code == 0 and [r["config"] for r in d["grid"][0]["results"]] == [
        "random@5", "predictor[label_fraction=0.01]@5"]
    code, out, _ = run_cli(monkeypatch, capsys, *base, "--grid", "--grid-devices", "fpga", "--method", "rea",
                           "--queries", "10", "--seeds", "2", "--out", str(tmp_path / "o"), "--no-plot")
    assert code == 0 and out.count("fpga ") == 3 and (tmp_path / "o" / "bench.md").is_file()
    code, _, err = run_cli(monkeypatch, capsys, *base, "--method", "random", "--device", "fpga")
    assert code == 2 and "--budget" in err
    # --grid with a user's table: that table at the 25/50/75 % quantile budgets
    from hwdiffnas.benchmark import open_store

    with open_store(nb201_data_dir) as store:
        lat, cells = store.latency("raspi4"), store.cells()
    table = tmp_path / "my_board.csv"
    table.write_text("arch_str,latency_ms\n" + "".join(f"{c.arch_str},{v}\n" for c, v in zip(cells, lat)
                                                         if np.isfinite(v)))
    code, out, _ = run_cli(monkeypatch, capsys, *base, "--grid", "--device-table", str(table), "--method", "random",
                           "--queries", "5", "--seeds", "1", "--json")
    d = json.loads(out)
    assert code == 0 and [e["device"] for e in d["grid"]] == ["my_board"] * 3
    budgets = [e["budget_ms"] for e in d["grid"]]
    assert budgets == sorted(budgets) and len(set(budgets)) == 3
    code, _, err = run_cli(monkeypatch, capsys, *base, "--grid", "--device-table", str(table), "--device", "fpga",
                           "--method", "random")
    assert code == 2 and "p25, p50 and p75" in err
    code, _, err = run_cli(monkeypatch, capsys, *base, "--method", "random", "--label-fraction", "0.1",
                           "--device", "fpga", "--budget", "5ms")
    assert code == 2 and "predictor method only" in err
