"""A space the core has never heard of (`toy_space.ToyChainSpace`, registered at run time) goes the whole way:
generator training and sampling, a search against a toy latency table and a toy objective, the network, a
validated ONNX export and an onnxruntime profile — through the `SearchSpace` interface alone."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from toy_space import ChainArch, ToyChainSpace

from hwdiffnas.errors import UserError
from hwdiffnas.plugins import get_space, register_space

COSTS = {"toy-a": np.array([0.05, 1.0, 0.3]), "toy-b": np.array([0.1, 0.4, 0.9])}  # ms per layer op


@pytest.fixture(scope="module")
def toy() -> ToyChainSpace:
    register_space("toychain", ToyChainSpace)
    return get_space("toychain")  # type: ignore[return-value]


def objective(arch: ChainArch) -> float:
    """A toy accuracy: conv layers help most, late ones more, pooling a little."""
    return float(50 + sum((5 + i) * (o == 1) + 2 * (o == 2) for i, o in enumerate(arch.ops)))


def tables(space: ToyChainSpace):  # noqa: ANN201
    from hwdiffnas.generator.train import TrainingTables

    archs = list(space.enumerate())
    ops = np.array([space.encode(a) for a in archs], dtype=np.int64)  # (81, 4)
    valid = np.array([space.is_valid(a) for a in archs])
    lat = {d: 0.5 + c[ops].sum(1) for d, c in COSTS.items()}
    acc = np.array([objective(a) if v else np.nan for a, v in zip(archs, valid)])
    return archs, TrainingTables(ops, valid, {"toy8": acc}, lat, accuracy_column="toy", space=space.name)


@pytest.fixture(scope="module")
def trained(toy: ToyChainSpace, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from hwdiffnas.generator.model import Generator
    from hwdiffnas.generator.train import TrainConfig, train

    archs, tt = tables(toy)
    ckpt = tmp_path_factory.mktemp("toy") / "toy.safetensors"
    cfg = TrainConfig(datasets=("toy8",), steps=40, batch_size=64, timesteps=50, d_model=16, heads=2, layers=1,
                      d_cond=8, checkpoint_every=40)
    train(tt, ckpt, cfg, log=lambda _m: None)
    return archs, tt, Generator.load(ckpt), ckpt


def test_training_records_the_space_and_sampling_decodes_into_it(trained, toy: ToyChainSpace) -> None:  # noqa: ANN001
    from hwdiffnas.generator.conditions import build_conditions

    _archs, _tt, gen, ckpt = trained
    assert gen.space is toy and gen.meta.space_name == "toychain" and gen.meta.step == 40
    assert sorted(gen.meta.devices) == ["toy-a", "toy-b"] and len(gen.device_rep("toy-a")) == 5  # 4 refs + scale
    cond = build_conditions(gen.meta.datasets, "toy8", 1.0, gen.device_rep("toy-a"), 0.5)
    ops = gen.sample(cond, 64, steps=10, seed=1)
    assert ops.shape == (64, 4) and ops.min() >= 0 and ops.max() <= 2
    assert all(isinstance(toy.decode(r), ChainArch) for r in ops)
    register_space("toychain", lambda: _Renamed())  # a checkpoint loads only into a space of its encoding
    try:
        from hwdiffnas.generator.model import Generator

        with pytest.raises(UserError, match="encoding"):
            Generator.load(ckpt)
    finally:
        register_space("toychain", ToyChainSpace)


class _Renamed(ToyChainSpace):
    @property
    def encoding(self):  # noqa: ANN201
        from hwdiffnas.spaces.base import Encoding

        return Encoding.chain(4, ("id", "conv3", "pool3"), "toychain(v2)")


def test_search_meets_the_toy_budget_and_finds_the_toy_oracle(trained, toy: ToyChainSpace) -> None:  # noqa: ANN001
    from hwdiffnas.latency.device import from_table
    from hwdiffnas.search import SearchSettings
    from hwdiffnas.search.algorithm import run_search

    archs, tt, gen, _ckpt = trained
    dev = from_table("toy-a", archs, tt.latency_ms["toy-a"], tt.connected, "table:toy", space="toychain")
    assert np.allclose(dev.rep, gen.device_rep("toy-a"))
    budget = float(np.quantile(dev.connected_sorted_ms, 0.5))
    fits = [a for a, lat, v in zip(archs, tt.latency_ms["toy-a"], tt.connected) if v and lat <= budget]
    oracle = max(objective(a) for a in fits)
    calls: list[ChainArch] = []

    def lookup(a: ChainArch) -> float:
        calls.append(a)
        return objective(a)

    settings = SearchSettings(samples=200, queries=10, steps=10)
    rep = run_search(gen, dev, budget, "toy8", settings, lookup, "toy")
    assert rep.results and len(calls) <= 10
    assert all(r.latency_ms <= budget for r in rep.results)
    for r in rep.results:  # results are the space's exact strings and carry the objective of that architecture
        assert r.accuracy == objective(toy.parse(r.arch_str))
    assert oracle - max(r.accuracy for r in rep.results) <= 2.0  # a 40-step generator, 10 of 40 fitting queried
    # with a query for every fitting architecture, the candidates (samples and their neighbours) hold the optimum
    rep = run_search(gen, dev, budget, "toy8", replace(settings, queries=len(fits)), lookup, "toy")
    assert max(r.accuracy for r in rep.results) == oracle


def test_materialize_export_to_onnx_and_profile(toy: ToyChainSpace, tmp_path: Path) -> None:
    from hwdiffnas.deploy import export_cell, profile_cell
    from hwdiffnas.interfaces import ProfileSettings

    arch = toy.parse("1201")
    net = toy.materialize(arch, "toy8")
    assert sum(p.numel() for p in net.parameters()) > 0
    res = export_cell(arch, "onnx", tmp_path, dataset="toy8", space="toychain")
    assert res.validation.passed and res.path.name == "toychain-1201-toy8.onnx"
    assert res.exported.metadata.space == "toychain" and res.info.input_shape == (1, 3, 8, 8)
    stats = profile_cell(arch, "onnxruntime", ProfileSettings(warmup=1, runs=3, pin_cpus="none"),
                         dataset="toy8", space="toychain")
    assert stats.median_ms > 0 and stats.runs == 3


def test_space_specific_paths_refuse_the_toy_space(toy: ToyChainSpace, tmp_path: Path) -> None:
    from hwdiffnas.deploy import export_cell
    from hwdiffnas.materialize import MacroConfig
    from hwdiffnas.plugins import get_exporter

    arch = toy.parse("1201")
    tfl = get_exporter("tflite")
    assert tfl.spaces == ("nb201", "fbnet", "nasbench_macro")
    with pytest.raises(UserError, match="handles networks of search space"):
        tfl.check_space("toychain")
    with pytest.raises(UserError, match="macro settings"):
        export_cell(arch, "onnx", tmp_path, dataset="toy8", macro=MacroConfig(), space="toychain")


def test_cli_export_takes_the_space(toy: ToyChainSpace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from hwdiffnas.cli import main

    assert main(["export", "--space", "toychain", "--arch", "0000", "--dataset", "toy8", "--format", "onnx",
                 "-o", str(tmp_path), "--json"]) == 0
    out = capsys.readouterr()
    body = json.loads(out.out)
    assert body["arch_str"] == "0000" and "degenerate toychain architecture" in body["warnings"][0]
    assert main(["export", "--space", "toychain", "--arch", "1201", "--dataset", "toy8", "--format", "onnx",
                 "-o", str(tmp_path / "text")]) == 0
    text = capsys.readouterr().out
    assert "network: 1201 on toy8, input 1x3x8x8" in text and "params" in text and text.rstrip().endswith("s")
    assert "space toychain" in text
    assert main(["export", "--space", "toychain", "--arch", "0000", "--dead-nodes", "prune", "--dataset", "toy8",
                 "--format", "onnx", "-o", str(tmp_path)]) == 2
    assert "--dead-nodes is an NB201 setting" in capsys.readouterr().err
    assert main(["search", "--space", "toychain", "--device", "toy-a", "--budget", "1ms"]) == 2
    assert "no generator is shipped for space 'toychain'; train one (hwdiffnas train --space toychain" in \
        capsys.readouterr().err
    assert main(["--data-dir", str(tmp_path / "c"), "campaign", "--space", "toychain", "--device", "local-cpu",
                 "--n", "3", "--dry-run"]) == 0  # a space's campaign plans its own architectures
    assert "run id toychain-" in capsys.readouterr().out
    assert main(["--data-dir", str(tmp_path / "none"), "train", "--space", "toychain", "-o",
                 str(tmp_path / "g.safetensors")]) == 2
    assert "no latency table exists for space 'toychain' in the 'toy8' setting; measure them" in \
        capsys.readouterr().err
