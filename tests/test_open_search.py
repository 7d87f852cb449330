"""Search in a space without accuracy tables (FBNet): the frontier climb and knapsack, a space's device as a
vectorized latency model, objective scorers and labels, the generator's training data, `run_open_search` and
``hwdiffnas search --space fbnet``."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from hwdiffnas.cli import main
from hwdiffnas.errors import UserError
from hwdiffnas.generator.train import TrainConfig
from hwdiffnas.latency.space_device import space_budget_ms, space_device, space_latencies
from hwdiffnas.objectives.labels import read_labels
from hwdiffnas.objectives.scorer import ObjectiveScorer, exact_scorer, fit_surrogate
from hwdiffnas.plugins import get_space
from hwdiffnas.search.frontier import additive_form, climb, knapsack_frontier, single_moves
from hwdiffnas.search.open_search import OpenSearchSettings, run_open_search
from hwdiffnas.search.open_training import OpenDataConfig, train_open_generator

SPACE = get_space("fbnet")


# --- frontier -------------------------------------------------------------------------------------------------
def test_single_moves_are_every_one_position_change() -> None:
    codes = np.array([[0, 1, 2], [2, 2, 2]])
    moves = single_moves(codes, 3)
    assert moves.shape == (2 * 3 * 2, 3)
    assert np.all((moves != np.repeat(codes, 6, axis=0)).sum(axis=1) == 1)
    assert len({r.tobytes() for r in moves[:6]}) == 6


def test_additive_form_recovers_a_sum_and_refuses_a_product() -> None:
    rng = np.random.default_rng(0)
    table = rng.uniform(0, 5, size=(6, 3))
    check = rng.integers(3, size=(50, 6))

    def f(c: np.ndarray) -> np.ndarray:
        return 1.5 + table[np.arange(6)[None, :], c].sum(axis=1)

    form = additive_form(f, 6, 3, check)
    assert form is not None
    assert np.allclose(form.constant + form.table[np.arange(6)[None, :], check].sum(axis=1), f(check))
    assert additive_form(lambda c: f(c) * (1 + c[:, 0]), 6, 3, check) is None


def test_knapsack_frontier_equals_brute_force_and_climb_gets_close() -> None:
    rng = np.random.default_rng(1)
    value, cost = rng.uniform(0, 10, size=(6, 3)), rng.uniform(1, 4, size=(6, 3))
    every = np.array(list(itertools.product(range(3), repeat=6)))
    pos = np.arange(6)[None, :]
    v_all, c_all = value[pos, every].sum(1), cost[pos, every].sum(1)
    budget = float(np.quantile(c_all, 0.4))
    truth = float(v_all[c_all <= budget].max())
    val_form = additive_form(lambda c: value[pos, c].sum(1), 6, 3, every[:40])
    cost_form = additive_form(lambda c: cost[pos, c].sum(1), 6, 3, every[:40])
    assert val_form is not None and cost_form is not None
    best = knapsack_frontier(val_form, cost_form, budget)
    assert best is not None
    assert value[pos, best].sum() == pytest.approx(truth)
    res = climb(every[rng.choice(len(every), 30)], 3, lambda c: cost[pos, c].sum(1) <= budget,
                lambda c: value[pos, c].sum(1), rng)
    assert cost[pos, res.codes[:1]].sum() <= budget
    assert res.scores[0] >= 0.95 * truth
    assert knapsack_frontier(val_form, cost_form, float(c_all.min()) - 1.0) is None


# --- devices ----------------------------------------------------------------------------------------------------
def test_lookup_table_device_is_exact_and_agrees_with_the_latency_command() -> None:
    dev = space_device(SPACE, "pixel3", "cifar100")
    archs = SPACE.sample(20, seed=4)
    point, upper, exact = dev.latencies(np.array([SPACE.encode(a) for a in archs]))
    assert exact.all() and np.array_equal(point, upper)
    want = [a.latency_ms for a in space_latencies(SPACE, "pixel3", archs, "cifar100")]
    assert np.allclose(point, want)
    model = SPACE.latency_tables("cifar100")["pixel3"]
    assert dev.fastest_ms == pytest.approx(model.constant_ms + model.table_ms.min(axis=1).sum())
    assert dev.parse_budget("p50") == pytest.approx(space_budget_ms(SPACE, "pixel3", "p50", "cifar100"))
    assert dev.budget_quantile(dev.parse_budget("p50")) == pytest.approx(0.5, abs=0.01)
    assert dev.rep.shape == (11,)


def test_measured_rows_device_is_exact_on_its_rows_and_bounds_the_rest() -> None:
    dev = space_device(SPACE, "pixel2", "cifar100")
    rows = SPACE.measured_rows("cifar100")["pixel2"]
    row_codes = np.array([SPACE.encode(SPACE.parse(a)) for a in rows.archs[:5]])
    point, _upper, exact = dev.latencies(row_codes)
    assert exact.all() and np.allclose(point, rows.latency_ms[:5])
    assert dev.sources(exact) == [rows.source] * 5
    new = np.array([SPACE.encode(a) for a in SPACE.sample(10, seed=99)])
    point, upper, exact = dev.latencies(new, 0.05)
    assert not exact.any() and np.all(upper > point)
    assert dev.sources(exact) == ["estimate"] * 10


def test_device_without_data_and_user_rows(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no latency data in space 'fbnet'.*pixel3"):
        space_device(SPACE, "my-board", "cifar100")
    with pytest.raises(UserError, match="no latency table exists.*imagenet"):
        space_device(SPACE, "pixel3", "imagenet")
    rows = SPACE.measured_rows("cifar100")["gold_6226"]
    table = tmp_path / "board.csv"
    table.write_text("arch,latency_ms\n" + "".join(f"{a},{v}\n" for a, v in zip(rows.archs[:50],
                                                                              rows.latency_ms[:50])))
    dev = space_device(SPACE, None, "cifar100", device_table=table)
    assert dev.name == "board"
    _p, _u, exact = dev.latencies(np.array([SPACE.encode(SPACE.parse(rows.archs[0]))]))
    assert exact.all()
    assert 0 < dev.budget_quantile(float(np.median(rows.latency_ms))) < 1


# --- objectives and labels -------------------------------------------------------------------------------------
def test_scorers_exact_counts_and_surrogate_round_trip() -> None:
    archs = SPACE.sample(200, seed=2)
    codes = np.array([SPACE.encode(a) for a in archs])
    flops = exact_scorer("flops").score(SPACE, codes, "cifar100")
    assert flops.tolist() == [SPACE.size_counts(a, "cifar100")[0] for a in archs]
    with pytest.raises(UserError, match="not a count"):
        exact_scorer("naswot")
    sur = fit_surrogate(SPACE, archs, flops, "flops-surrogate")
    assert sur.loo_spearman > 0.8  # flops is a sum over layers: the one-hot ridge ranks it well
    again = ObjectiveScorer.from_dict(json.loads(json.dumps(sur.to_dict())))
    assert np.allclose(again.score(SPACE, codes, "cifar100"), sur.score(SPACE, codes, "cifar100"))
    with pytest.raises(UserError, match="at least 20"):
        fit_surrogate(SPACE, archs[:10], flops[:10], "x")


def _labels_file(path: Path, archs: list, values: list, header: str = "arch,accuracy") -> Path:
    path.write_text(header + "\n" + "".join(f"{a},{v}\n" for a, v in zip(archs, values)))
    return path


def test_labels_file_checks(tmp_path: Path) -> None:
    archs = [SPACE.format(a) for a in SPACE.sample(25, seed=3)]
    labels = read_labels(SPACE, _labels_file(tmp_path / "mine.csv", archs + archs[:1], list(range(25)) + [10]))
    assert len(labels.values) == 25 and labels.values[archs[0]] == 5.0  # repeated architecture: averaged
    assert labels.name == "labels:mine"
    with pytest.raises(UserError, match="at least 20"):
        read_labels(SPACE, _labels_file(tmp_path / "few.csv", archs[:5], [1] * 5))
    with pytest.raises(UserError, match="line 3: accuracy 'abc' is not a number"):
        read_labels(SPACE, _labels_file(tmp_path / "bad.csv", archs[:2], [1, "abc"]))
    nb201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|nor_conv_3x3~0|skip_connect~1|none~2|"
    with pytest.raises(UserError, match="line 2: .*use --space nb201"):
        read_labels(SPACE, _labels_file(tmp_path / "other.csv", [nb201], [1]))
    with pytest.raises(UserError, match="needs the columns arch,accuracy"):
        read_labels(SPACE, _labels_file(tmp_path / "cols.csv", archs, [1] * 25, header="arch,score"))


# --- generator training data, checkpoint, search -------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generator for two FBNet devices (a lookup table, measured rows) and objectives flops and synflow
    (a surrogate fitted on 24 computed values), trained for 60 steps."""
    out = tmp_path_factory.mktemp("gen") / "fbnet.safetensors"
    cfg = OpenDataConfig(objectives=("flops", "synflow"), uniform=300, labels=24, budget_levels=4, near=4)
    train_open_generator(SPACE, out, cfg, TrainConfig(steps=60, batch_size=64, checkpoint_every=30),
                         devices=["fpga", "pixel2"], workers=1)
    return out


def test_checkpoint_carries_scorers_setting_and_reference_quantiles(tiny_checkpoint: Path) -> None:
    from hwdiffnas.generator.model import Generator

    gen = Generator.load(tiny_checkpoint)
    assert gen.space.name == "fbnet" and gen.meta.datasets == ["flops", "synflow"]
    assert gen.meta.training["setting"] == "cifar100"
    assert set(gen.meta.scorers) == {"flops", "synflow"} and gen.meta.scorers["flops"]["exact"]
    assert gen.meta.scorers["synflow"]["n_fit"] == 24
    dev = space_device(SPACE, "fpga", "cifar100")
    want = np.quantile(dev.reference_sorted_ms, [0.0, 0.5, 1.0])
    got = np.asarray(gen.device_quantiles_ms("fpga"))[[0, 100, 200]]
    assert np.allclose(got, want)
    assert (tiny_checkpoint.parent / "fbnet.safetensors.labels").is_dir()  # the computed values, for a resume


def test_open_search_returns_fitting_picks_with_their_sources(tiny_checkpoint: Path) -> None:
    from hwdiffnas.generator.model import Generator

    gen = Generator.load(tiny_checkpoint)
    dev = space_device(SPACE, "fpga", "cifar100")
    budget = dev.parse_budget("p50")
    rep = run_open_search(gen, dev, budget, exact_scorer("flops"), OpenSearchSettings(samples=64, top=3))
    assert rep.results and all(r.latency_ms <= budget and r.latency_source == "lut" for r in rep.results)
    assert all(r.objective == "flops" and r.value_source == "objective:flops" for r in rep.results)
    assert rep.results[0].value >= rep.best_sample_value
    opt = SPACE.exact_optimum("fpga", budget, "flops", "cifar100")
    assert rep.results[0].value <= opt[1]
    with pytest.raises(UserError, match=r"below the fastest fbnet architecture found on fpga \(\d"):
        run_open_search(gen, dev, dev.fastest_ms * 0.9, exact_scorer("flops"), OpenSearchSettings(samples=8))
    with pytest.raises(UserError, match="trained for objective\\(s\\) flops, synflow, not 'naswot'"):
        run_open_search(gen, dev, budget, exact_scorer("flops"), OpenSearchSettings(samples=8),
                        condition_on="naswot")


def test_surrogate_objective_is_computed_on_the_best_candidates(tiny_checkpoint: Path) -> None:
    from hwdiffnas.generator.model import Generator

    gen = Generator.load(tiny_checkpoint)
    dev = space_device(SPACE, "pixel2", "cifar100")
    scorer = ObjectiveScorer.from_dict(gen.meta.scorers["synflow"])
    seen: list[str] = []

    def evaluate(archs: list) -> np.ndarray:
        seen.extend(SPACE.format(a) for a in archs)
        return np.arange(len(archs), dtype=float)  # the last evaluated must win

    rep = run_open_search(gen, dev, dev.parse_budget("p75"), scorer,
                          OpenSearchSettings(samples=64, top=3, evaluations=3), evaluate=evaluate)
    assert rep.evaluations == len(seen) == 3
    assert rep.results[0].value_source == "objective:synflow" and rep.results[0].arch == seen[-1]
    for r in rep.results:
        assert r.may_exceed_budget == (r.latency_source == "estimate" and r.upper_ms > rep.budget_ms)


def _cli_error(capsys: pytest.CaptureFixture, argv: list[str], needle: str) -> None:
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert needle in err, err


def _cli_json(capsys: pytest.CaptureFixture, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_search_command_in_the_fbnet_space(tiny_checkpoint: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    base = ["search", "--space", "fbnet", "--checkpoint", str(tiny_checkpoint), "--samples", "48", "--top", "2"]
    out = _cli_json(capsys, [*base, "--device", "fpga", "--budget", "p50", "--objective", "flops", "--json"])
    assert out["space"] == "fbnet" and out["objective"] == "flops" and len(out["results"]) == 2
    assert {"arch", "latency_ms", "latency_source", "value", "value_source", "may_exceed_budget"} <= \
        set(out["results"][0])
    archs = SPACE.sample(30, seed=8)
    labels = _labels_file(tmp_path / "acc.csv", [SPACE.format(a) for a in archs],
                          [float(SPACE.size_counts(a, "cifar100")[1]) for a in archs])
    out = _cli_json(capsys, [*base, "--device", "fpga", "--budget", "p75", "--labels", str(labels), "--json"])
    assert out["objective"] == "labels:acc" and out["known_labels"] == 30
    assert {r["value_source"] for r in out["results"]} <= {"label", "surrogate:labels:acc"}
    assert all(r["origin"] in ("sample", "refined", "label") for r in out["results"])
    _cli_error(capsys, [*base, "--device", "fpga", "--budget", "p50", "--objective", "naswot"],
               "trained for objective(s) flops, synflow, not 'naswot'")
    _cli_error(capsys, [*base, "--device", "fpga", "--budget", "p50", "--objective", "accuracy"], "accuracy")
    _cli_error(capsys, [*base, "--device", "pixel2", "--budget", "10ms"],
               "below the fastest fbnet architecture found on pixel2 (19 ms)")
    _cli_error(capsys, ["search", "--checkpoint", str(tiny_checkpoint), "--device", "fpga", "--budget", "p50"],
               "is for search space 'fbnet', not 'nb201'")
    _cli_error(capsys, ["search", "--device", "pixel3", "--budget", "p50", "--objective", "flops"],
               "--objective ranks architectures in spaces without accuracy tables")


def test_train_command_in_the_fbnet_space(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "g.safetensors"
    summary = _cli_json(capsys, ["train", "--space", "fbnet", "--devices", "eyeriss", "--objective", "flops",
                                 "--steps", "20", "--batch-size", "32", "-o", str(out), "--json"])
    assert summary["objectives"] == ["flops"] and summary["devices"] == ["eyeriss"] and out.is_file()
    assert summary["data"]["rows"] > 5000
    _cli_error(capsys, ["train", "--space", "fbnet", "--devices", "my-board", "-o", str(tmp_path / "x.st")],
               "have no latency data in space 'fbnet'")
    _cli_error(capsys, ["train", "--space", "fbnet", "--label-fraction", "0.5", "-o", str(tmp_path / "y.st")],
               "--proxy-labels")


def test_shipped_fbnet_generator_serves_every_fbnet_device_near_the_exact_optimum() -> None:
    from hwdiffnas.generator import default_checkpoint_path
    from hwdiffnas.generator.model import Generator
    from hwdiffnas.latency.space_device import served_devices

    gen = Generator.load(default_checkpoint_path("fbnet"))
    assert gen.space.name == "fbnet" and gen.meta.datasets == ["flops", "naswot"]
    assert sorted(gen.meta.devices) == sorted(served_devices(SPACE, "cifar100"))
    assert gen.meta.scorers["naswot"]["n_fit"] == 1000 and not gen.meta.scorers["naswot"]["exact"]
    dev = space_device(SPACE, "pixel3", "cifar100")
    budget = dev.parse_budget("p50")
    rep = run_open_search(gen, dev, budget, exact_scorer("flops"), OpenSearchSettings(samples=200))
    opt = SPACE.exact_optimum("pixel3", budget, "flops", "cifar100")
    assert rep.within_budget >= 0.8
    assert all(r.latency_ms <= budget for r in rep.results)
    assert rep.results[0].value >= 0.98 * opt[1]


def test_search_exports_and_profiles_its_picks(tiny_checkpoint: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    out = _cli_json(capsys, ["search", "--space", "fbnet", "--checkpoint", str(tiny_checkpoint), "--samples", "32",
                             "--top", "1", "--device", "fpga", "--budget", "p25", "--objective", "flops",
                             "--export", str(tmp_path / "onnx"), "--profile", "onnxruntime", "--json"])
    pick = out["results"][0]
    assert Path(pick["export_path"]).is_file() and Path(pick["export_path"]).suffix == ".onnx"
    assert pick["measured_ms"] > 0 and pick["measured_runtime"] == "onnxruntime"


def test_nb201_search_with_the_users_own_labels(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    nb201 = get_space("nb201")
    cells = [c for c in nb201.sample(60, seed=5) if nb201.is_valid(c)][:40]
    values = {nb201.format(c): 50.0 + 0.01 * i for i, c in enumerate(cells)}
    labels = _labels_file(tmp_path / "mine.csv", list(values), list(values.values()))
    out = _cli_json(capsys, ["search", "--device", "pixel3", "--budget", "p75", "--labels", str(labels),
                             "--samples", "100", "--json"])
    assert out["known_labels"] == 40 and out["queries"] == 0
    sources = {r["accuracy_source"] for r in out["results"]}
    assert sources <= {"label", "surrogate"}
    for r in out["results"]:
        if r["accuracy_source"] == "label":
            assert r["accuracy"] == pytest.approx(values[r["arch_str"]])
    assert any("your labels" in n for n in out["notes"])
    fb = _labels_file(tmp_path / "fb.csv", [SPACE.format(a) for a in SPACE.sample(25, seed=1)], [1.0] * 25)
    _cli_error(capsys, ["search", "--device", "pixel3", "--budget", "p75", "--labels", str(fb)],
               "use --space fbnet")


def test_objective_values_resume_from_their_cache(tmp_path: Path) -> None:
    from hwdiffnas.objectives.compute import cached_objective, space_network_builder

    archs = [SPACE.format(a) for a in SPACE.sample(3, seed=12)]
    build = space_network_builder("fbnet", "cifar100")
    cache = tmp_path / "labels.jsonl"

    def row(arch: str, value: float, seed: int = 0) -> str:
        return json.dumps({"space": "fbnet", "dataset": "cifar100", "objective": "synflow", "seed": seed,
                           "arch": arch, "value": value, "seconds": None}) + "\n"

    cache.write_text(row(archs[0], 0.0) + row(archs[1], 1.0) + row(archs[2], 7.0, seed=1)
                     + '{"arch": "torn')  # another seed's row, then a crash mid-line
    values, _secs = cached_objective("synflow", archs, build, cache, space="fbnet", dataset="cifar100", workers=1)
    assert values[:2] == [0.0, 1.0]  # read back, not recomputed
    assert np.isfinite(values[2]) and values[2] not in (0.0, 1.0, 7.0)
    assert len(cache.read_text().splitlines()) == 4 and "torn" not in cache.read_text()
    again, _secs = cached_objective("synflow", archs, build, cache, space="fbnet", dataset="cifar100", workers=1)
    assert again == values and len(cache.read_text().splitlines()) == 4
    cache.write_text("not json\n" + cache.read_text())
    with pytest.raises(UserError, match="line 1 is not an objective row"):
        cached_objective("synflow", archs, build, cache, space="fbnet", dataset="cifar100", workers=1)
