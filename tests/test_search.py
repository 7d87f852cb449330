"""Search, the shared condition builder, training/resume and the train/search commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hwdiffnas.cli import main
from hwdiffnas.errors import UserError
from hwdiffnas.space import Cell, all_cells

torch = pytest.importorskip("torch")

OP_COST = np.array([0.0, 0.1, 1.0, 3.0, 0.4])


def _synthetic_tables(n_devices: int = 2):
    from hwdiffnas.generator.train import TrainingTables

    cells = list(all_cells())
    ops = np.array([c.ops for c in cells])
    connected = np.array([c.is_connected for c in cells])
    lat = {}
    for d in range(n_devices):
        w = OP_COST * (1 + d) + np.array([0, 0.05, 0, 0, 0.3 * d])
        lat[f"dev{d}"] = 1.0 + w[ops].sum(1) + 0.01 * (np.arange(len(cells)) % 7)
    acc = {"cifar100": 40 + 5 * (ops == 3).sum(1) + 2 * (ops == 2).sum(1) + 1e-5 * np.arange(len(cells))}
    return cells, TrainingTables(ops, connected, acc, lat)


def test_training_and_sampling_conditions_agree() -> None:
    """A training example's condition row equals what the search builds for the same (device, budget, rank)."""
    import hwdiffnas.search as search_mod
    from hwdiffnas.generator import conditions
    from hwdiffnas.generator.conditions import budget_quantile, build_conditions, rank_in_budget
    from hwdiffnas.generator.train import BatchSampler, TrainConfig

    cells, tables = _synthetic_tables()
    devices = tables.device_data()
    cfg = TrainConfig(devices=tuple(sorted(devices)), batch_size=64, label_fraction=0.5, seed=3)
    sampler = BatchSampler(tables, devices, cfg)
    x0, cond = sampler.batch(11)
    assert search_mod.build_conditions is conditions.build_conditions  # one builder, imported by the search
    checked = 0
    for i in np.flatnonzero(cond.present.all(1)):
        dev = next(d for d in devices.values() if np.allclose(d.rep, cond.device[i]))
        u = float(cond.latency[i, 0])
        k = int(round(u * dev.order.size))
        budget_ms = float(dev.lat_sorted_ms[k - 1])  # the budget this example was drawn for
        # the search's device view of the same table gives the same quantile for that budget
        view = search_mod.device_from_table(dev.name, cells, tables.latency_ms[dev.name], tables.connected, "t")
        assert view.budget_quantile(budget_ms) == pytest.approx(u)
        assert budget_quantile(budget_ms, dev.lat_sorted_ms) == pytest.approx(u)
        np.testing.assert_allclose(view.rep, cond.device[i], atol=1e-6)
        # the rank is the definition's rank of this cell among the labelled cells that fit
        acc_sorted = np.where(sampler.labelled[dev.order], tables.accuracy["cifar100"][dev.order], np.nan)
        row = next(j for j in range(k) if tuple(tables.ops[dev.order[j]]) == tuple(x0[i]))
        r = rank_in_budget(acc_sorted, k, float(acc_sorted[row]))
        rebuilt = build_conditions(["cifar100"], "cifar100", r, view.rep, view.budget_quantile(budget_ms))
        for a, b in ((rebuilt.accuracy, cond.accuracy), (rebuilt.device, cond.device),
                     (rebuilt.latency, cond.latency), (rebuilt.present, cond.present)):
            np.testing.assert_allclose(a[0], b[i], atol=1e-5)
        checked += 1
    assert checked >= 5
    # dropped groups: NaN in, absent out
    assert (~cond.present).any()


def test_device_representation_matches_predictors_vector() -> None:
    from hwdiffnas.generator.conditions import device_representation
    from hwdiffnas.predictors import device_vector, reference_cells

    lat = {c: 1.0 + i * 0.7 for i, c in enumerate(reference_cells())}
    mine = device_representation([lat[c] for c in reference_cells()])
    np.testing.assert_allclose(mine[:10], device_vector(lat), atol=1e-6)


def test_train_resume_is_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hwdiffnas.generator import train as train_mod
    from hwdiffnas.generator.model import Generator

    _, tables = _synthetic_tables()
    cfg = train_mod.TrainConfig(steps=6, batch_size=32, checkpoint_every=2, d_model=16, heads=2, layers=1,
                                d_cond=8, timesteps=20)
    full = tmp_path / "full.safetensors"
    train_mod.train(tables, full, cfg, log=lambda m: None)

    part = tmp_path / "part.safetensors"
    real_step = train_mod.training_step
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_step(*a, **k)

    monkeypatch.setattr(train_mod, "training_step", flaky)
    with pytest.raises(KeyboardInterrupt):
        train_mod.train(tables, part, cfg, log=lambda m: None)
    assert Generator.load(part).meta.step == 2
    monkeypatch.setattr(train_mod, "training_step", real_step)
    logs: list[str] = []
    train_mod.train(tables, part, cfg, log=logs.append)
    assert any("resuming" in m and "step 2" in m for m in logs)
    a, b = Generator.load(full), Generator.load(part)
    assert b.meta.step == 6
    for k, v in a.net.state_dict().items():
        assert torch.equal(v, b.net.state_dict()[k]), k
    # other settings into the same file are refused
    with pytest.raises(UserError, match="other settings"):
        train_mod.train(tables, part, train_mod.TrainConfig(**{**cfg.__dict__, "seed": 9}), log=lambda m: None)


def _run_json(capsys: pytest.CaptureFixture, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_search_without_store_uses_shipped_assets(capsys: pytest.CaptureFixture) -> None:
    """No data directory, a device whose table is not shipped: the shipped latency estimator and the shipped
    accuracy table (at most --queries look-ups, the shipped surrogate for the rest)."""
    out = _run_json(capsys, ["search", "--device", "jetson-nano-fp16", "--budget", "10ms", "--samples", "60",
                             "--queries", "2", "--json"])
    for key in ("device", "budget_ms", "dataset", "queries", "samples", "feasible_fraction", "seconds", "results"):
        assert key in out
    assert out["device"] == "jetson-nano-fp16" and out["budget_ms"] == 10.0 and out["queries"] <= 2
    assert out["samples"] == 60 and out["results"]
    for r in out["results"]:
        Cell.from_str(r["arch_str"])
        assert r["latency_source"] == "estimate"
        assert (r["accuracy"] is None) == (r["accuracy_source"] == "none")
        assert r["accuracy_source"] in ("none", "surrogate", "benchmark:nats")
        assert r["latency_ms"] <= 10.0
        assert set(r) >= {"arch_str", "latency_ms", "latency_source", "accuracy", "accuracy_source"}


def test_search_with_store(capsys: pytest.CaptureFixture, nb201_data_dir: Path, nb201_store) -> None:
    out = _run_json(capsys, ["--data-dir", str(nb201_data_dir), "search", "--device", "fpga", "--budget", "5ms",
                             "--samples", "100", "--queries", "3", "--top", "5", "--json"])
    assert out["queries"] <= 3
    lat = nb201_store.latency("fpga")
    acc = nb201_store.accuracy("cifar100", "nats")
    queried = [r for r in out["results"] if r["accuracy_source"] == "benchmark:nats"]
    assert 1 <= len(queried) <= 3
    assert out["results"][: len(queried)] == queried  # looked-up accuracies come first
    for r in out["results"]:
        i = nb201_store.index_of(Cell.from_str(r["arch_str"]))
        assert r["latency_ms"] == pytest.approx(lat[i]) and lat[i] <= 5.0
        assert r["latency_source"].startswith("table:")
        assert r["accuracy_source"] in ("benchmark:nats", "surrogate")  # the shipped surrogate ranks the rest
        if r["accuracy_source"] == "benchmark:nats":
            assert r["accuracy"] == pytest.approx(acc[i])
    assert [r["accuracy"] for r in queried] == sorted((r["accuracy"] for r in queried), reverse=True)
    assert 0 <= out["novelty"] <= 1 and 0 < out["uniqueness"] <= 1


def test_search_device_table(capsys: pytest.CaptureFixture, nb201_slice, tmp_path: Path) -> None:
    """20 rows of the committed data slice (HW-NAS-Bench raspi4, spread over its latency range) make a device; the
    packaged tables answer the rest (no data directory)."""
    index, acc = nb201_slice["arch_index"], nb201_slice["accuracy"]
    lat = {i: float(r["hwnb_c10_raspi4"]) for i, r in nb201_slice["latency_help_ms"].items()
           if index[i]["connected"] == "True" and r["hwnb_c10_raspi4"]}
    order = sorted(lat, key=lambda i: (lat[i], i))
    pick = [order[k] for k in np.linspace(0, len(order) - 1, 20).astype(int)]
    table = tmp_path / "myboard.csv"
    table.write_text("arch_str,latency_ms\n" + "".join(f"{index[i]['arch_str']},{lat[i]}\n" for i in pick))
    out = _run_json(capsys, ["--data-dir", str(tmp_path / "none"), "search", "--device-table", str(table),
                             "--budget", "p50", "--samples", "80", "--queries", "2", "--json"])
    assert out["device"] == "myboard" and out["results"]
    assert {r["latency_source"] for r in out["results"]} <= {"imported", "estimate(transfer)"}
    by_arch = {index[i]["arch_str"]: i for i in index}
    for r in out["results"]:  # a looked-up accuracy of a slice cell is the slice's NATS value
        if r["accuracy_source"] == "benchmark:nats" and r["arch_str"] in by_arch:
            assert r["accuracy"] == pytest.approx(float(acc[by_arch[r["arch_str"]]]["c100_test_200ep__natstss"]))


@pytest.mark.parametrize(("argv", "message"), [
    (["--budget", "10 parsecs"], "unit"),
    (["--budget", "-1ms"], "budget"),
    (["--budget", "0ms"], "positive"),
    (["--budget", "0.001ms"], "below the fastest connected cell"),
    (["--device", "pixle3"], "unknown device 'pixle3'"),
    (["--dataset", "mnist"], "unknown dataset 'mnist'"),
    (["--samples", "0"], "--samples"),
    (["--measure", "2"], "--measure N needs --profile"),
    (["--risk", "1.5"], "--risk must be in (0, 1)"),
])
def test_search_bad_input(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    base = {"--device": "pixel3", "--budget": "10ms"}
    for flag, value in zip(argv[::2], argv[1::2]):
        base[flag] = value
    base.setdefault("--samples", "10")
    args = ["search", *[f"{k}={v}" for k, v in base.items()]]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    if "unknown device" in message:
        assert "pixel3" in err  # lists the known devices


def test_search_bad_checkpoint_and_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from safetensors.torch import load_file, save_file

    from hwdiffnas.generator import default_checkpoint_path
    from hwdiffnas.generator.model import META_KEY, Generator

    gen = Generator.load(default_checkpoint_path())
    body = json.loads(gen.meta.to_json())
    body["space"] = "nb101"
    bad = tmp_path / "other_space.safetensors"
    save_file(load_file(str(default_checkpoint_path())), str(bad), metadata={META_KEY: json.dumps(body)})
    assert main(["search", "--device", "pixel3", "--budget", "10ms", "--checkpoint", str(bad)]) == 2
    assert "search space" in capsys.readouterr().err
    rows = tmp_path / "rows.csv"
    rows.write_text("arch_str,latency_ms\n|nor_conv_3x3~0|+|bogus~0|none~1|+|none~0|none~1|none~2|,3.0\n")
    assert main(["search", "--device-table", str(rows), "--budget", "10ms"]) == 2
    err = capsys.readouterr().err
    assert "rows.csv" in err


def test_train_command_small(tmp_path: Path, nb201_data_dir: Path, nb201_store,
                             capsys: pytest.CaptureFixture) -> None:
    ckpt = tmp_path / "g.safetensors"
    out = _run_json(capsys, ["--data-dir", str(nb201_data_dir), "train", "--devices", "pixel3", "fpga",
                             "--steps", "3", "--batch-size", "16", "--label-fraction", "0.1", "-o", str(ckpt),
                             "--json"])
    assert out["steps"] == 3 and out["devices"] == ["fpga", "pixel3"]
    # a finished checkpoint is not retrained; it searches
    assert main(["--data-dir", str(nb201_data_dir), "train", "--devices", "pixel3", "fpga", "--steps", "3",
                 "--batch-size", "16", "--label-fraction", "0.1", "-o", str(ckpt)]) == 0
    assert "already trained" in capsys.readouterr().err
    res = _run_json(capsys, ["--data-dir", str(nb201_data_dir), "search", "--device", "pixel3", "--budget", "p50",
                             "--samples", "20", "--queries", "1", "--checkpoint", str(ckpt), "--json"])
    assert res["samples"] == 20 and res["queries"] <= 1
    # a checkpoint trained on 10 % of the labels: those labels are known to the search for free (and counted by
    # the harness), a surrogate is fitted on exactly them, no query goes to a class whose label is known
    n_conn = int(np.count_nonzero(nb201_store.connected()))
    assert res["known_labels"] == round(0.1 * n_conn)
    acc = nb201_store.accuracy("cifar100", "nats")
    labels = [r for r in res["results"] if r["accuracy_source"] == "label"]
    assert labels and all(r["origin"] == "label" for r in labels)
    for r in labels:
        assert r["accuracy"] == pytest.approx(acc[nb201_store.index_of(Cell.from_str(r["arch_str"]))])
    from hwdiffnas.benchmark import QueryOracle
    from hwdiffnas.harness import make_task
    from hwdiffnas.methods import get_method

    method = get_method("diffusion", checkpoint=str(ckpt), samples=20)
    task, acc_arr, _best = make_task(nb201_store, "pixel3", "p50")
    assert method.label_queries(task) == round(0.1 * n_conn)
    q = QueryOracle(acc_arr, 2 + method.label_queries(task))
    picks = method.run(task, q, seed=0)
    assert picks and q.used <= 2 + method.label_queries(task)
    assert all(task.feasible[p.index] for p in picks)
    # the same through `bench --checkpoint`: the training labels are charged as queries
    out = _run_json(capsys, ["--data-dir", str(nb201_data_dir), "bench", "--method", "diffusion", "--checkpoint",
                             str(ckpt), "--device", "pixel3", "--budget", "p50", "--queries", "2", "--seeds", "1",
                             "--json"])
    summary = out["grid"][0]["results"][0]["summary"]
    assert round(0.1 * n_conn) <= summary["queries"]["mean"] <= round(0.1 * n_conn) + 2
    assert main(["--data-dir", str(nb201_data_dir), "bench", "--method", "random", "--checkpoint", str(ckpt),
                 "--device", "pixel3", "--budget", "p50"]) == 2
    assert "diffusion method only" in capsys.readouterr().err
    assert main(["--data-dir", str(nb201_data_dir), "train", "--label-fraction", "2", "-o",
                 str(tmp_path / "x.safetensors")]) == 2


def test_diffusion_method_in_harness(nb201_store) -> None:
    from hwdiffnas.benchmark import QueryOracle
    from hwdiffnas.harness import make_task
    from hwdiffnas.methods import get_method, method_names

    assert "diffusion" in method_names()
    method = get_method("diffusion", samples=60)
    task, acc, best = make_task(nb201_store, "fpga", "5ms")
    q = QueryOracle(acc, 3 + method.label_queries(task))
    picks = method.run(task, q, seed=0)
    assert picks and q.used <= 3
    assert all(task.feasible[p.index] for p in picks)
    assert picks[0].observed_accuracy <= best["accuracy"]
    assert method.describe()["method"] == "diffusion"


def test_search_on_campaign_measured_device(capsys: pytest.CaptureFixture, nb201_data_dir: Path, nb201_store,
                                            tmp_path: Path) -> None:
    """A device known only from measurements in the store (as a campaign leaves it) is searchable by name."""
    import shutil

    from hwdiffnas.benchmark import open_store

    data_dir = tmp_path / "data"
    shutil.copytree(nb201_data_dir, data_dir)
    lat = nb201_store.latency("pi5-litert")
    cells = nb201_store.cells()
    conn = np.flatnonzero(nb201_store.connected() & np.isfinite(lat))
    pick = conn[np.argsort(lat[conn])][np.linspace(0, conn.size - 1, 30).astype(int)]
    store = open_store(data_dir)
    for i in pick:
        store.record_measurement("local-cpu", "run-1", cells[i], median_ms=float(lat[i]), runtime="onnxruntime")
    store.close()
    out = _run_json(capsys, ["--data-dir", str(data_dir), "search", "--device", "local-cpu", "--budget", "p50",
                             "--samples", "80", "--queries", "3", "--measure", "2", "--profile", "onnxruntime",
                             "--json"])
    assert 1 <= out["measurements"] <= 2  # promising cells that only probably fit were measured on this host
    assert out["device"] == "local-cpu" and out["results"]
    sources = {r["latency_source"] for r in out["results"]}
    assert all(s.startswith("measured") or s == "estimate(transfer)" for s in sources), sources
    for r in out["results"]:
        if r["latency_source"].startswith("measured"):
            assert r["latency_ms"] <= out["budget_ms"]


def test_search_exports_and_profiles_its_top_picks(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    """--export writes a validated ONNX file per returned cell, carrying that cell; --profile measures it."""
    from hwdiffnas.plugins import get_exporter

    out_dir = tmp_path / "picks"
    out = _run_json(capsys, ["search", "--device", "pixel3", "--budget", "10ms", "--samples", "40", "--top", "2",
                             "--export", str(out_dir), "--profile", "onnxruntime", "--json"])
    assert 1 <= len(out["results"]) <= 2
    onnx = get_exporter("onnx")
    for r in out["results"]:
        path = Path(r["export_path"])
        assert path.is_file() and path.parent == out_dir and path.suffix == ".onnx"
        assert onnx.read_metadata(path).arch_str == r["arch_str"]
        assert r["measured_runtime"] == "onnxruntime"
        assert 0 < r["measured_ms"] < 10_000


class _FixedSampler:
    """A generator stand-in whose samples are a fixed list of cells (the ranking logic is under test here)."""

    def __init__(self, cells: list[Cell]) -> None:
        from types import SimpleNamespace

        self.cells = cells
        self.meta = SimpleNamespace(datasets=["cifar100"], training={})

    def sample(self, cond, n, steps=20, guidance=None, seed=0):  # noqa: ANN001, ANN201
        return np.array([self.cells[i % len(self.cells)].ops for i in range(n)])


def _synthetic_device(estimated: bool = False):
    from hwdiffnas.search import DeviceLatency

    cells = list(all_cells())
    ops = np.array([c.ops for c in cells])
    lat = 1.0 + OP_COST[ops].sum(1)
    conn = np.array([c.is_connected for c in cells])
    table = {c: float(v) for c, v in zip(cells, lat)}
    if not estimated:
        return DeviceLatency("synthetic", np.zeros(11, np.float32), np.sort(lat[conn]), table, "table"), table

    def estimate(cs, delta):  # noqa: ANN001, ANN202 - point = truth, upper 20 % above it
        p = np.array([table[c] for c in cs])
        return p, p * 1.2

    return DeviceLatency("synthetic", np.zeros(11, np.float32), np.sort(lat[conn]), {}, "rows", estimate,
                         "estimate"), table


def test_run_search_queries_rank_and_known_labels() -> None:
    """Queries: at most Q, one per NATS class, none to a class whose label is known; known labels are free;
    neighbours of the most-sampled cells join the candidates; the best known accuracy is returned first."""
    from hwdiffnas.search import SearchSettings, run_search

    dev, table = _synthetic_device()
    budget = 4.0
    fitting = [c for c in all_cells() if c.is_connected and table[c] <= budget]
    rng = np.random.default_rng(0)
    sampled = [fitting[i] for i in rng.choice(len(fitting), 6, replace=False)]
    acc = {c: float(40 + 3 * c.ops.count(3) + 2 * c.ops.count(2) + 0.01 * c.ops[0]) for c in all_cells()}
    known = {fitting[i]: acc[fitting[i]] for i in rng.choice(len(fitting), 30, replace=False)}
    asked: list[Cell] = []

    def lookup(c: Cell) -> float:
        asked.append(c)
        return acc[c]

    def surrogate(cs):  # noqa: ANN001, ANN202 - a noisy but informative surrogate
        return np.array([acc[c] for c in cs]) + rng.normal(0, 0.5, len(cs))

    settings = SearchSettings(samples=60, queries=8, top=50, refine_top=2, refine_radius=1)
    rep = run_search(_FixedSampler(sampled), dev, budget, "cifar100", settings, accuracy_lookup=lookup,
                     accuracy_source="benchmark", surrogate=surrogate, known_accuracy=known)
    assert rep.queries == len(asked) == 8
    classes = [c.nats_unique_str for c in asked]
    assert len(set(classes)) == len(classes)
    assert not set(classes) & {c.nats_unique_str for c in known}
    assert all(table[c] <= budget and c.is_connected for c in asked)
    assert {r.origin for r in rep.results} >= {"label"}
    assert rep.feasible_fraction == 1.0 and rep.candidates > len(sampled) + len(known)
    exact = [r for r in rep.results if r.accuracy_source in ("benchmark", "label")]
    best_seen = max([acc[c] for c in asked] + list(known.values()))
    assert exact[0].accuracy == pytest.approx(best_seen)
    for r in rep.results:
        if r.accuracy_source == "label":
            assert r.accuracy == known[Cell.from_str(r.arch_str)]
    # without a surrogate the generator's own ranking decides: the most-sampled fitting cell is queried first
    asked.clear()
    counts = [sampled[0]] * 5 + sampled[1:]
    run_search(_FixedSampler(counts), dev, budget, "cifar100", settings, accuracy_lookup=lookup,
               accuracy_source="benchmark")
    assert asked[0] == sampled[0]


def test_run_search_estimated_latency_prefers_sure_fits_and_flags_the_rest() -> None:
    from hwdiffnas.search import SearchSettings, run_search

    dev, table = _synthetic_device(estimated=True)
    budget = 4.0
    near = [c for c in all_cells() if c.is_connected and budget / 1.2 < table[c] <= budget]
    sure = list({c.nats_unique_str: c for c in all_cells() if c.is_connected and table[c] <= budget / 1.2}.values())
    sampled = near[:3] + sure[:3]
    asked: list[Cell] = []

    def lookup(c: Cell) -> float:
        asked.append(c)
        return 50.0 + table[c]  # slower cells are better here, so the risky ones look best

    settings = SearchSettings(samples=30, queries=3, top=30, refine_radius=0, global_share=0.0)
    rep = run_search(_FixedSampler(sampled), dev, budget, "cifar100", settings, accuracy_lookup=lookup,
                     accuracy_source="benchmark", surrogate=lambda cs: np.array([50.0 + table[c] for c in cs]))
    assert all(table[c] * 1.2 <= budget for c in asked)  # the sure fits are queried first
    flagged = [r for r in rep.results if r.may_exceed_budget]
    assert flagged and all(r.latency_upper_ms > budget for r in flagged)
    safe = [r for r in rep.results if not r.may_exceed_budget]
    assert rep.results[: len(safe)] == safe  # safe picks are listed before flagged ones


def test_uncertifiable_upper_bound_is_flagged_not_returned_as_sure() -> None:
    """Too few rows for the asked risk give an infinite upper bound (the conformal quantile does not exist): such a
    pick may exceed the budget and must be flagged, even when its point estimate fits."""
    from hwdiffnas.search import DeviceLatency, SearchSettings, run_search

    _, table = _synthetic_device()
    cells = [c for c in all_cells() if c.is_connected]

    def estimate(cs, delta):  # noqa: ANN001, ANN202 - point = truth, bound not certifiable
        p = np.array([table[c] for c in cs])
        return p, np.full(len(cs), np.inf)

    dev = DeviceLatency("few-rows", np.zeros(11, np.float32), np.sort([table[c] for c in cells]), {}, "rows",
                        estimate, "estimate")
    budget = 4.0
    sampled = [c for c in cells if table[c] <= budget][:5]
    settings = SearchSettings(samples=5, queries=3, top=10, refine_radius=0, global_share=0.0)
    rep = run_search(_FixedSampler(sampled), dev, budget, "cifar100", settings,
                     accuracy_lookup=lambda c: 50.0, accuracy_source="benchmark")
    assert rep.results and all(r.may_exceed_budget for r in rep.results)
    assert any("cannot bound a miss rate" in n for n in rep.notes)


def test_known_label_over_budget_leaves_its_fitting_class_mates_queryable() -> None:
    """Cells in one NATS class share a label, but a labelled member over the budget must not hide a fitting
    class-mate from the queries (dead-edge convolutions change latency, not the function)."""
    from hwdiffnas.search import SearchSettings, run_search

    dev, table = _synthetic_device()
    slow = Cell.from_ops([0, 3, 3, 1, 3, 2])  # node 1 only receives `none`: the convs reading it are dead
    fast = Cell.from_ops([0, 3, 0, 1, 0, 2])
    assert slow.nats_unique_str == fast.nats_unique_str and table[fast] < table[slow]
    budget = (table[fast] + table[slow]) / 2
    asked: list[Cell] = []

    def lookup(c: Cell) -> float:
        asked.append(c)
        return 60.0

    settings = SearchSettings(samples=10, queries=3, top=10, refine_radius=0, global_share=0.0)
    run_search(_FixedSampler([fast]), dev, budget, "cifar100", settings, accuracy_lookup=lookup,
               accuracy_source="benchmark", surrogate=lambda cs: np.full(len(cs), 50.0),
               known_accuracy={slow: 70.0})
    assert asked == [fast]


def test_measurements_replace_uncertain_estimates() -> None:
    """With a way to measure, the most promising cells that only probably fit are measured (at most N); those
    that fit become sure picks with their measured latency."""
    from hwdiffnas.search import SearchSettings, run_search

    dev, table = _synthetic_device(estimated=True)
    budget = 4.0
    near = list({c.nats_unique_str: c for c in all_cells()
                 if c.is_connected and budget / 1.2 < table[c] <= budget}.values())
    measured: list[Cell] = []

    def measure(c: Cell) -> float:
        measured.append(c)
        return table[c]

    settings = SearchSettings(samples=20, queries=2, top=20, refine_radius=0, global_share=0.0, measurements=2)
    rep = run_search(_FixedSampler(near[:4]), dev, budget, "cifar100", settings,
                     accuracy_lookup=lambda c: 50.0 + table[c], accuracy_source="benchmark",
                     surrogate=lambda cs: np.array([50.0 + table[c] for c in cs]), measure=measure,
                     measure_source="measured:test")
    assert rep.measurements == len(measured) == 2
    top = rep.results[0]
    assert top.latency_source == "measured:test" and not top.may_exceed_budget
    assert Cell.from_str(top.arch_str) in measured and top.latency_ms <= budget


def test_measure_slack_measures_estimates_just_over_the_budget() -> None:
    """An estimate that over-predicts a fitting cell keeps it out of the candidates, unless measurements are
    available and ``measure_slack`` admits estimates that far over the budget: then it is measured and returned
    as a sure pick. Unmeasured estimates over the budget are never returned."""
    from hwdiffnas.search import DeviceLatency, SearchSettings, run_search

    _dev, table = _synthetic_device()
    budget = 4.0

    def estimate(cs, delta):  # noqa: ANN001, ANN202 - point 10 % above the truth, upper 20 % above the point
        p = np.array([table[c] for c in cs]) * 1.1
        return p, p * 1.2

    conn = np.array([table[c] for c in all_cells() if c.is_connected])
    dev = DeviceLatency("synthetic", np.zeros(11, np.float32), np.sort(conn), {}, "rows", estimate, "estimate")
    hidden = list({c.nats_unique_str: c for c in all_cells()
                   if c.is_connected and budget / 1.1 < table[c] <= budget}.values())[:3]
    measured: list[Cell] = []

    def measure(c: Cell) -> float:
        measured.append(c)
        return table[c]

    def run(slack: float):
        measured.clear()
        settings = SearchSettings(samples=10, queries=2, top=10, refine_radius=0, global_share=0.0,
                                  measurements=3, measure_slack=slack, widen_slack=slack)
        return run_search(_FixedSampler(hidden), dev, budget, "cifar100", settings,
                          accuracy_lookup=lambda c: 50.0 + table[c], accuracy_source="benchmark",
                          surrogate=lambda cs: np.array([50.0 + table[c] for c in cs]), measure=measure,
                          measure_source="measured:test")

    strict = run(1.0)
    assert not measured and not {r.arch_str for r in strict.results} & {c.arch_str for c in hidden}
    loose = run(1.2)
    assert measured and set(measured) <= set(hidden) and loose.measurements == len(measured)
    top = loose.results[0]
    assert Cell.from_str(top.arch_str) in hidden and top.latency_source == "measured:test"
    assert not top.may_exceed_budget and top.latency_ms <= budget
    assert all(r.latency_ms <= budget for r in loose.results)


def test_global_ranking_covers_the_generators_candidates() -> None:
    """The surrogate's global share ranks *every* fitting cell: a sampled cell the surrogate ranks first is
    queried even when all queries go to the global ranking (it used to rank only cells nobody sampled)."""
    from hwdiffnas.search import SearchSettings, run_search

    dev, table = _synthetic_device()
    budget = 4.0
    fitting = [c for c in all_cells() if c.is_connected and table[c] <= budget]
    best = fitting[len(fitting) // 2]
    score = {c: 50.0 + 0.001 * i for i, c in enumerate(fitting)}
    score[best] = 99.0
    asked: list[Cell] = []

    def lookup(c: Cell) -> float:
        asked.append(c)
        return score.get(c, 0.0)

    settings = SearchSettings(samples=10, queries=1, top=10, refine_radius=0, global_share=1.0)
    run_search(_FixedSampler([best, fitting[0]]), dev, budget, "cifar100", settings, accuracy_lookup=lookup,
               accuracy_source="benchmark", surrogate=lambda cs: np.array([score.get(c, 0.0) for c in cs]))
    assert asked == [best]


def test_default_query_split_follows_the_label_fraction() -> None:
    """Half the queries to the generator when it saw every label, all on the surrogate's ranking otherwise."""
    from types import SimpleNamespace

    from hwdiffnas.search import default_global_share

    def gen(training: dict) -> SimpleNamespace:
        return SimpleNamespace(meta=SimpleNamespace(training=training))

    assert default_global_share(gen({})) == 0.5
    assert default_global_share(gen({"label_fraction": 1.0})) == 0.5
    assert default_global_share(gen({"label_fraction": 0.1})) == 1.0
    assert default_global_share(gen({"label_fraction": 0.01})) == 1.0


def test_measured_over_budget_frees_its_class_for_a_faster_class_mate() -> None:
    """Measurements follow the query plan (one cell per NATS class); a cell measured over the budget leaves the
    candidates at once, so a class-mate with other dead-edge ops (same function, lower latency) is measured next."""
    from hwdiffnas.search import DeviceLatency, SearchSettings, run_search

    _dev, table = _synthetic_device()
    slow = Cell.from_ops([0, 3, 3, 1, 3, 2])
    fast = Cell.from_ops([0, 3, 0, 1, 0, 2])
    assert slow.nats_unique_str == fast.nats_unique_str and table[fast] < table[slow]
    budget = (table[fast] + table[slow]) / 2

    def estimate(cs, delta):  # noqa: ANN001, ANN202 - both class-mates estimated 10 % over the budget
        p = np.array([budget * 1.1 if c in (slow, fast) else table[c] for c in cs])
        return p, p * 1.2

    conn = np.array([table[c] for c in all_cells() if c.is_connected])
    dev = DeviceLatency("synthetic", np.zeros(11, np.float32), np.sort(conn), {}, "rows", estimate, "estimate")
    measured: list[Cell] = []

    def measure(c: Cell) -> float:
        measured.append(c)
        return table[c]

    settings = SearchSettings(samples=8, queries=1, top=5, refine_radius=0, global_share=0.0, measurements=2)
    rep = run_search(_FixedSampler([slow, slow, slow, fast]), dev, budget, "cifar100", settings,
                     accuracy_lookup=lambda c: 70.0, accuracy_source="benchmark",
                     surrogate=lambda cs: np.array([90.0 if c in (slow, fast) else 50.0 for c in cs]),
                     measure=measure, measure_source="measured:test")
    assert measured == [slow, fast]
    top = rep.results[0]
    assert Cell.from_str(top.arch_str) == fast and top.latency_source == "measured:test"
    assert slow.arch_str not in {r.arch_str for r in rep.results}
    # a labelled class-mate whose estimate is only within the measurement slack does not close the class either
    measured.clear()
    rep = run_search(_FixedSampler([fast]), dev, budget, "cifar100", settings,
                     accuracy_lookup=lambda c: 70.0, accuracy_source="benchmark",
                     surrogate=lambda cs: np.array([90.0 if c in (slow, fast) else 50.0 for c in cs]),
                     known_accuracy={slow: 72.0}, measure=measure, measure_source="measured:test")
    assert fast in measured and rep.results[0].arch_str == fast.arch_str


def test_labelled_cell_near_the_budget_is_measured_and_returned_with_its_label() -> None:
    """A labelled cell whose estimate is only within the measurement slack is worth a measurement most: its
    accuracy is known for free. Measured within the budget, it is a sure pick with its label."""
    from hwdiffnas.search import DeviceLatency, SearchSettings, run_search

    _dev, table = _synthetic_device()
    budget = 4.0
    fitting = list({c.nats_unique_str: c for c in all_cells() if c.is_connected and table[c] <= budget}.values())
    labelled, other, safe = fitting[0], fitting[1], fitting[2]

    def estimate(cs, delta):  # noqa: ANN001, ANN202 - two cells estimated 10 % over the budget, the rest exact
        p = np.array([budget * 1.1 if c in (labelled, other) else table[c] for c in cs])
        return p, p * 1.2

    conn = np.array([table[c] for c in all_cells() if c.is_connected])
    dev = DeviceLatency("synthetic", np.zeros(11, np.float32), np.sort(conn), {}, "rows", estimate, "estimate")
    score = {labelled: 80.0, other: 75.0, safe: 60.0}
    measured: list[Cell] = []

    def measure(c: Cell) -> float:
        measured.append(c)
        return table[c]

    settings = SearchSettings(samples=10, queries=1, top=10, refine_radius=0, global_share=0.0, measurements=1)
    rep = run_search(_FixedSampler([other, safe]), dev, budget, "cifar100", settings,
                     accuracy_lookup=lambda c: score.get(c, 0.0), accuracy_source="benchmark",
                     surrogate=lambda cs: np.array([score.get(c, 50.0) for c in cs]),
                     known_accuracy={labelled: 80.0}, measure=measure, measure_source="measured:test")
    assert measured == [labelled]
    top = rep.results[0]
    assert top.arch_str == labelled.arch_str and top.accuracy_source == "label"
    assert top.latency_source == "measured:test" and not top.may_exceed_budget


def test_class_known_only_from_an_unsure_cell_stays_queryable_through_a_sure_class_mate() -> None:
    """A labelled cell whose estimate may exceed the budget does not close its NATS class: a class-mate sure to fit
    (here a measured row) is looked up and returned as a sure pick (without measurements to spend)."""
    from hwdiffnas.search import DeviceLatency, SearchSettings, run_search

    _dev, table = _synthetic_device()
    slow = Cell.from_ops([0, 3, 3, 1, 3, 2])
    fast = Cell.from_ops([0, 3, 0, 1, 0, 2])
    assert slow.nats_unique_str == fast.nats_unique_str
    budget = table[fast] * 1.05

    def estimate(cs, delta):  # noqa: ANN001, ANN202 - the labelled cell is estimated within the budget, unsure
        p = np.array([budget * 0.95 if c == slow else table[c] for c in cs])
        return p, p * 1.3

    conn = np.array([table[c] for c in all_cells() if c.is_connected])
    dev = DeviceLatency("synthetic", np.zeros(11, np.float32), np.sort(conn), {fast: table[fast]}, "rows",
                        estimate, "estimate")
    asked: list[Cell] = []

    def lookup(c: Cell) -> float:
        asked.append(c)
        return 71.0

    settings = SearchSettings(samples=10, queries=1, top=10, refine_radius=0, global_share=0.0)
    rep = run_search(_FixedSampler([slow, fast]), dev, budget, "cifar100", settings, accuracy_lookup=lookup,
                     accuracy_source="benchmark", surrogate=lambda cs: np.array([72.0 if c in (slow, fast) else 50.0
                                                                                for c in cs]),
                     known_accuracy={slow: 72.0})
    assert asked == [fast]
    sure = [r for r in rep.results if not r.may_exceed_budget and r.accuracy_source in ("benchmark", "label")]
    assert sure and sure[0].arch_str == fast.arch_str and sure[0].latency_source == "rows"


def test_label_fraction_surrogate_is_fitted_once_and_cached(nb201_store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint trained on a fraction of the labels gets a surrogate fitted on exactly those labels; the fit is
    cached next to the store (bit-identical predictions on reuse, no refit), and a corrupt cache file is refitted."""
    from types import SimpleNamespace

    import hwdiffnas.predictors.accuracy as accuracy_mod
    from hwdiffnas.search import training_labels

    gen = SimpleNamespace(meta=SimpleNamespace(training={"label_fraction": 0.01, "seed": 3},
                                               accuracy_column="nats"))
    cache = Path(nb201_store.path).parent / "cache"
    for f in cache.glob("surrogate-*.safetensors"):
        f.unlink()
    first = training_labels(gen, nb201_store, "cifar100")
    files = list(cache.glob("surrogate-*.safetensors"))
    assert len(files) == 1 and first.surrogate_source.startswith("fitted on")
    cells = list(all_cells())[::50]
    expected = first.surrogate(cells)

    def no_fit(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("refitted although cached")

    monkeypatch.setattr(accuracy_mod, "fit_accuracy_surrogate", no_fit)
    again = training_labels(gen, nb201_store, "cifar100")
    np.testing.assert_array_equal(again.surrogate(cells), expected)
    assert again.known == first.known and len(first.known) > 0

    other = SimpleNamespace(meta=SimpleNamespace(training={"label_fraction": 0.01, "seed": 4},
                                                 accuracy_column="nats"))
    with pytest.raises(AssertionError, match="refitted"):  # other labels: another key, a fit
        training_labels(other, nb201_store, "cifar100")
    monkeypatch.undo()
    files[0].write_bytes(b"not a safetensors file")
    mended = training_labels(gen, nb201_store, "cifar100")
    np.testing.assert_array_equal(mended.surrogate(cells), expected)
    for f in cache.glob("surrogate-*.safetensors"):
        f.unlink()
