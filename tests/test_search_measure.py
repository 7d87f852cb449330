"""Measurements during a search: the plan (what to measure, when to stop, the slack widening), ``--verify`` (only
picks measured within the budget; the near-budget rule; replacements; none found), failures and time-outs, the
store as a resume cache, progress, and the command's bad input."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from test_search import _FixedSampler as FixedSampler

from hwdiffnas.cli import main
from hwdiffnas.errors import UserError
from hwdiffnas.space import Cell, all_cells

OP_COST = np.array([0.0, 0.1, 1.0, 3.0, 0.4])
BUDGET = 4.0


def truth() -> dict[Cell, float]:
    cells = list(all_cells())
    lat = 1.0 + OP_COST[np.array([c.ops for c in cells])].sum(1)
    return {c: float(v) for c, v in zip(cells, lat)}


def one_per_class(cells: list[Cell]) -> list[Cell]:
    return list({c.nats_unique_str: c for c in cells}.values())


def weighted(cells: list[Cell]) -> list[Cell]:
    """Samples in which the first cell is the most frequent, the second the next, ... (the generator's belief
    agrees with the surrogate's ranking of the tests)."""
    return [c for i, c in enumerate(cells) for _ in range(len(cells) - i)]


def estimated_device(table: dict[Cell, float], factor: dict[Cell, float] | None = None):  # noqa: ANN201
    """A device known only by an estimate: the truth times ``factor`` (default 1), upper bound 20 % above."""
    from hwdiffnas.search import DeviceLatency

    factor = factor or {}

    def estimate(cs, delta):  # noqa: ANN001, ANN202
        p = np.array([table[c] * factor.get(c, 1.0) for c in cs])
        return p, p * 1.2

    conn = np.sort([v for c, v in table.items() if c.is_connected])
    return DeviceLatency("synthetic", np.zeros(11, np.float32), conn, {}, "rows", estimate, "estimate")


def search(sampled: list[Cell], dev, score: dict[Cell, float], measure, **settings):  # noqa: ANN001, ANN003, ANN201
    from hwdiffnas.search import SearchSettings, run_search

    opts = dict(samples=len(sampled) * 2, queries=2, top=10, refine_radius=0, global_share=0.0)
    opts.update(settings)
    lines: list[str] = []
    rep = run_search(FixedSampler(sampled), dev, BUDGET, "cifar100", SearchSettings(**opts),
                     accuracy_lookup=lambda c: score.get(c, 40.0), accuracy_source="benchmark",
                     surrogate=lambda cs: np.array([score.get(c, 40.0) for c in cs]), measure=measure,
                     measure_source="measured:test", progress=lines.append)
    return rep, lines


def test_measurements_stop_once_every_planned_look_up_is_settled() -> None:
    """The search measures only cells the queries would go to; with every one of them settled (and nothing left
    to widen to), the rest of the cap is not spent."""
    table = truth()
    fit = one_per_class([c for c in all_cells() if c.is_connected and BUDGET / 1.2 < table[c] <= 0.95 * BUDGET])[:4]
    score = {c: 90.0 - i for i, c in enumerate(fit)}
    measured: list[Cell] = []

    def measure(c: Cell) -> float:
        measured.append(c)
        return table[c]

    rep, lines = search(weighted(fit), estimated_device(table), score, measure, measurements=20, widen_slack=1.0)
    assert measured == fit[:2]  # the two planned look-ups, best-ranked first
    assert rep.measurements == 2 and len(lines) == 2
    assert [r.arch_str for r in rep.results[:2]] == [c.arch_str for c in fit[:2]]
    assert all(r.verified and not r.may_exceed_budget for r in rep.results[:2])


def test_widening_measures_an_accurate_cell_the_estimate_puts_far_over_the_budget() -> None:
    """A cell estimated at 1.4x the budget is no candidate at the first slack (1.2); once the planned look-ups are
    settled and measurements are left, the slack widens, it is measured, fits, and becomes the top pick."""
    table = truth()
    fit = one_per_class([c for c in all_cells() if c.is_connected and BUDGET / 1.2 < table[c] <= 0.95 * BUDGET])
    hidden, rest = fit[0], fit[1:4]
    score = {hidden: 95.0, **{c: 80.0 - i for i, c in enumerate(rest)}}
    dev = estimated_device(table, {hidden: 1.4 * BUDGET / table[hidden]})
    measured: list[Cell] = []

    def measure(c: Cell) -> float:
        measured.append(c)
        return table[c]

    narrow, _ = search(weighted([hidden, *rest]), dev, score, measure, measurements=10, widen_slack=1.2)
    assert hidden not in measured and narrow.results[0].arch_str != hidden.arch_str
    measured.clear()
    wide, _ = search(weighted([hidden, *rest]), dev, score, measure, measurements=10, widen_slack=1.5)
    assert hidden in measured and wide.measurements <= 10
    assert wide.results[0].arch_str == hidden.arch_str and wide.results[0].accuracy == 95.0
    assert wide.results[0].latency_source == "measured:test"


def test_verify_returns_only_picks_measured_within_the_budget_and_replaces_failing_ones() -> None:
    """--verify: exact rows and certified estimates are measured too; a pick measured over the budget is dropped
    and the next one measured in its place; every returned pick carries its medians, all within the budget."""
    from hwdiffnas.search import DeviceLatency

    table = truth()
    fit = one_per_class([c for c in all_cells() if c.is_connected and 2.0 < table[c] <= 3.5])[:5]
    score = {c: 90.0 - i for i, c in enumerate(fit)}
    conn = np.sort([v for c, v in table.items() if c.is_connected])
    dev = DeviceLatency("rows", np.zeros(11, np.float32), conn, dict(table), "measured:rows")
    on_board = {c: table[c] for c in fit}
    on_board[fit[0]] = BUDGET * 1.3  # the table says it fits; the board says no

    measured: list[Cell] = []

    def measure(c: Cell) -> float:
        measured.append(c)
        return on_board[c]

    rep, _ = search(weighted(fit), dev, score, measure, measurements=10, verify=True)
    assert measured[:3] == fit[:3]
    assert [r.arch_str for r in rep.results[:2]] == [fit[1].arch_str, fit[2].arch_str]
    assert fit[0].arch_str not in {r.arch_str for r in rep.results}
    assert rep.verify and all(r.verified for r in rep.results)
    assert all(r.measured_ms and max(r.measured_ms) <= BUDGET for r in rep.results)
    assert rep.queries == 2 and rep.measurements == len(measured) == 3


def test_verify_measures_a_pick_within_two_percent_of_the_budget_twice() -> None:
    """The near-budget rule: a first median within 2 % under the budget is measured again and the pick fits
    only if both medians do (its latency is then the larger one)."""
    from hwdiffnas.search.measure import MeasureLedger

    cell = Cell.from_ops([0, 3, 0, 1, 0, 2])
    results = iter([BUDGET * 0.99, BUDGET * 1.01, BUDGET * 0.99, BUDGET * 0.995, BUDGET * 0.9])
    ledger = MeasureLedger(lambda c: next(results), cap=10, budget_ms=BUDGET, verify=True)
    assert ledger.check(cell) == pytest.approx(BUDGET * 1.01) and not ledger.fits(cell)
    other = Cell.from_ops([0, 2, 0, 1, 0, 2])
    assert ledger.check(other) == pytest.approx(BUDGET * 0.995) and ledger.fits(other)
    far = Cell.from_ops([0, 1, 0, 1, 0, 2])
    assert ledger.check(far) == pytest.approx(BUDGET * 0.9) and ledger.medians[far] == [BUDGET * 0.9]
    assert ledger.spent == 5
    # the cap runs out before the second measurement: not verified
    short = MeasureLedger(lambda c: BUDGET * 0.99, cap=1, budget_ms=BUDGET, verify=True)
    assert short.check(cell) is None and not short.fits(cell)


def test_verify_without_a_fitting_measurement_says_none_was_found() -> None:
    table = truth()
    fit = one_per_class([c for c in all_cells() if c.is_connected and BUDGET / 1.2 < table[c] <= 0.95 * BUDGET])[:3]
    rep, _ = search(fit, estimated_device(table), {}, lambda c: BUDGET * 2, measurements=3, verify=True)
    assert rep.results == [] and rep.measurements == 3
    assert any(n.startswith("no verified pick") for n in rep.notes)


def test_failed_measurement_is_recorded_and_skipped() -> None:
    """A measurement that raises is a failure: counted, reported with its reason, the cell skipped (not
    returned), and the search goes on with the next cell."""
    table = truth()
    fit = one_per_class([c for c in all_cells() if c.is_connected and BUDGET / 1.2 < table[c] <= 0.95 * BUDGET])[:4]
    score = {c: 90.0 - i for i, c in enumerate(fit)}

    def measure(c: Cell) -> float:
        if c == fit[0]:
            raise RuntimeError("device unreachable")
        return table[c]

    rep, lines = search(weighted(fit), estimated_device(table), score, measure, measurements=5, verify=True)
    assert rep.measurement_failures == [{"arch_str": fit[0].arch_str, "error": "RuntimeError: device unreachable"}]
    assert fit[0].arch_str not in {r.arch_str for r in rep.results}
    assert [r.arch_str for r in rep.results[:2]] == [fit[1].arch_str, fit[2].arch_str]
    assert "failed" in lines[0] and len(lines) == rep.measurements == 3
    assert any("failed" in n for n in rep.notes)


def test_verify_needs_measurements() -> None:
    table = truth()
    with pytest.raises(UserError, match="verifying the picks needs measurements"):
        search([next(iter(table))], estimated_device(table), {}, None, verify=True)


def test_time_limit_turns_a_hung_measurement_into_a_timeout() -> None:
    from hwdiffnas.search.measure import time_limit

    t0 = time.perf_counter()
    with pytest.raises(TimeoutError), time_limit(0.2):
        time.sleep(5)
    assert time.perf_counter() - t0 < 2


def test_stored_measure_resumes_and_records_failures(nb201_data_dir: Path, tmp_path: Path) -> None:
    """Each measurement goes into the store (repeats under their own run id); a second search reuses them
    instead of measuring again; a failure is stored as failed and measured again next time."""
    from hwdiffnas.benchmark import open_store
    from hwdiffnas.search.measure import StoredMeasure

    data_dir = tmp_path / "data"
    shutil.copytree(nb201_data_dir, data_dir)
    a, b = Cell.from_ops([0, 3, 0, 1, 0, 2]), Cell.from_ops([0, 2, 0, 1, 0, 2])
    calls: list[Cell] = []

    def measure(c: Cell) -> float:
        calls.append(c)
        if c == b:
            raise TimeoutError("no result within 1 s")
        return 3.5

    with open_store(data_dir) as store:
        first = StoredMeasure(measure, store, "myboard", "fake")
        assert first(a) == 3.5 and first(a) == 3.5  # a repeat is a second measurement
        with pytest.raises(TimeoutError):
            first(b)
        assert [m.run_id for m in store.measured("myboard", status="ok")] == ["search:fake", "search:fake:2"]
        assert [m.error for m in store.measured("myboard", status="failed")] == ["TimeoutError: no result within 1 s"]
    assert calls == [a, a, b]
    with open_store(data_dir) as store:
        again = StoredMeasure(measure, store, "myboard", "fake")
        assert again(a) == 3.5 and again(a) == 3.5 and again.reused == 2
        with pytest.raises(TimeoutError):
            again(b)
    assert calls == [a, a, b, b]


class TableProfiler:
    """A profiler plug-in for the command tests: pixel3's table (from the store) times 1.03, counted."""

    calls = 0
    latency: dict[str, float] = {}

    @classmethod
    def factory(cls):  # noqa: ANN206
        from hwdiffnas.interfaces import LatencyStats, Profiler

        class Board(Profiler):
            name = "test-board"
            model_format = "torch"

            def version(self) -> str:
                return "1"

            def profile(self, model, settings):  # noqa: ANN001, ANN201
                cls.calls += 1
                ms = cls.latency[model.metadata.arch_str]
                return LatencyStats.from_samples([ms], warmup=0, threads=1, runtime="test-board",
                                                 runtime_version="1", host="test")

        return Board()


def test_search_verify_command_measures_stores_and_resumes(capsys: pytest.CaptureFixture, nb201_data_dir: Path,
                                                           nb201_store, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``search --verify --measure N --profile RUNTIME`` with a data directory: every returned pick was measured
    within the budget, the JSON says how many measurements were spent and which picks were verified, a progress
    line per measurement goes to stderr, and the same command again reuses the stored measurements."""
    from hwdiffnas.plugins import profilers

    data_dir = tmp_path / "data"
    shutil.copytree(nb201_data_dir, data_dir)
    lat = nb201_store.latency("pixel3")
    TableProfiler.latency = {c.arch_str: float(v) * 1.03 for c, v in zip(nb201_store.cells(), lat) if np.isfinite(v)}
    TableProfiler.calls = 0
    monkeypatch.setitem(profilers._registered, "test-board", TableProfiler.factory)  # this test's plug-in only
    argv = ["--data-dir", str(data_dir), "search", "--device", "pixel3", "--budget", "p50", "--samples", "60",
            "--queries", "3", "--top", "3", "--verify", "--measure", "12", "--profile", "test-board", "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["verify"] and 1 <= out["measurements"] <= 12 and out["results"]
    assert out["measurements"] == TableProfiler.calls
    assert captured.err.count("measurement ") == out["measurements"]
    for r in out["results"]:
        assert r["verified"] and max(r["measured_ms"]) <= out["budget_ms"]
        assert r["measured_ms"][0] == pytest.approx(TableProfiler.latency[r["arch_str"]])
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert TableProfiler.calls == out["measurements"]  # nothing measured twice
    assert again["measurements_reused"] == again["measurements"] == out["measurements"]
    assert [r["arch_str"] for r in again["results"]] == [r["arch_str"] for r in out["results"]]


@pytest.mark.parametrize(("argv", "message"), [
    (["--measure", "0", "--profile", "onnxruntime"], "--measure must be positive, got 0"),
    (["--measure", "-3", "--profile", "onnxruntime"], "--measure must be positive, got -3"),
    (["--verify"], "--verify needs --profile RUNTIME"),
    (["--verify", "--profile", "onnxruntime", "--measure-timeout", "0"], "--measure-timeout must be a positive number"),
    (["--measure", "2", "--profile", "no-such-runtime"], "no-such-runtime"),
])
def test_search_measure_bad_input(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["search", "--device", "pixel3", "--budget", "10ms", "--samples", "10", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_verify_spends_its_last_measurement_on_a_cell_sure_to_fit_when_none_fits_yet() -> None:
    """A cap too small for the plan: the look-ups' cells (estimated, the most promising) measure over the budget,
    so the last measurement goes to the best candidate sure to fit (an exact row), and a verified pick exists."""
    from hwdiffnas.search import DeviceLatency

    table = truth()
    fit = one_per_class([c for c in all_cells() if c.is_connected and BUDGET / 1.2 < table[c] <= 0.95 * BUDGET])
    risky, row = fit[:3], fit[3]
    score = {**{c: 90.0 - i for i, c in enumerate(risky)}, row: 60.0}

    def estimate(cs, delta):  # noqa: ANN001, ANN202
        p = np.array([table[c] for c in cs])
        return p, p * 1.2

    conn = np.sort([v for c, v in table.items() if c.is_connected])
    dev = DeviceLatency("rows", np.zeros(11, np.float32), conn, {row: table[row]}, "measured:rows", estimate,
                        "estimate")
    measured: list[Cell] = []

    def measure(c: Cell) -> float:
        measured.append(c)
        return table[c] if c == row else BUDGET * 1.5

    rep, _ = search(weighted([*risky, row]), dev, score, measure, measurements=2, verify=True)
    assert measured == [risky[0], row]
    assert [r.arch_str for r in rep.results] == [row.arch_str] and rep.results[0].verified


def test_refit_reestimates_the_unmeasured_candidates_after_each_measurement() -> None:
    """With ``refit`` (measured medians → the device with its estimate refitted), the candidates are estimated
    anew after each measurement: a cell the first estimate put within the budget but the refit puts far over it
    is not measured, and the measurement goes to the next cell instead."""
    from hwdiffnas.search import SearchSettings, run_search

    table = truth()
    good = one_per_class([c for c in all_cells() if c.is_connected and BUDGET / 1.2 < table[c] <= 0.95 * BUDGET])[0]
    slow = one_per_class([c for c in all_cells() if c.is_connected and 1.4 * BUDGET < table[c] < 1.6 * BUDGET])[:2]
    score = {slow[0]: 95.0, slow[1]: 94.0, good: 80.0}
    dev = estimated_device(table, {c: 1.1 * BUDGET / table[c] for c in [good, *slow]})
    refits: list[dict[Cell, float]] = []

    def refit(measured: dict[Cell, float]):  # noqa: ANN202 - the refitted estimate: the truth
        refits.append(dict(measured))
        return estimated_device(table)

    measured: list[Cell] = []

    def measure(c: Cell) -> float:
        measured.append(c)
        return table[c]

    def run(with_refit: bool):  # noqa: ANN202
        measured.clear()
        settings = SearchSettings(samples=12, queries=1, top=5, refine_radius=0, global_share=0.0, measurements=5,
                                  widen_slack=1.2)
        return run_search(FixedSampler(weighted([*slow, good])), dev, BUDGET, "cifar100", settings,
                          accuracy_lookup=lambda c: score.get(c, 40.0), accuracy_source="benchmark",
                          surrogate=lambda cs: np.array([score.get(c, 40.0) for c in cs]), measure=measure,
                          measure_source="measured:test", refit=refit if with_refit else None)

    assert run(False).results[0].arch_str == good.arch_str and measured == [*slow, good]
    rep = run(True)
    assert measured == [slow[0], good] and refits[0] == {slow[0]: table[slow[0]]}
    assert rep.results[0].arch_str == good.arch_str and rep.results[0].latency_source == "measured:test"



def test_class_mates_leave_when_a_member_measures_far_beyond_its_estimate() -> None:
    """A member measured 1.7x its estimate (over the budget): its class-mates, estimated alike, would run beyond the
    widest slack too, so they leave the candidates and the next measurement goes to another class. (A member
    measured just over the budget keeps its class-mates: `test_measured_over_budget_frees_its_class_for_a_faster_
    class_mate` in test_search.py.)"""
    from collections import defaultdict

    table = truth()
    classes: dict[str, list[Cell]] = defaultdict(list)
    for c in all_cells():
        if c.is_connected:
            classes[c.nats_unique_str].append(c)
    mates = next(v for v in classes.values() if len(v) >= 4)[:4]
    good = one_per_class([c for c in all_cells() if c.is_connected and BUDGET / 1.2 < table[c] <= 0.95 * BUDGET
                          and c.nats_unique_str != mates[0].nats_unique_str])[0]
    score = {**{c: 95.0 for c in mates}, good: 80.0}
    dev = estimated_device(table, {**{c: 1.05 * BUDGET / table[c] for c in mates},
                                   good: 1.05 * BUDGET / table[good]})
    measured: list[Cell] = []

    def measure(c: Cell) -> float:
        measured.append(c)
        return 1.05 * BUDGET * 1.7 if c in mates else table[c]

    rep, _ = search(weighted([*mates, good]), dev, score, measure, queries=1, measurements=10)
    assert len(measured) == 2 and measured[0] in mates and measured[1] == good
    assert rep.results[0].arch_str == good.arch_str
