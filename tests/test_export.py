"""Exporters: numerical validation of a ≥50-cell sample (ONNX + onnxruntime, OpenVINO CPU f32), metadata,
checker, atomic writes and the failure paths."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from hwdiffnas.deploy import (
    export_cell,
    prepare_network,
    random_inputs,
    torch_threads,
    validate_export,
)
from hwdiffnas.errors import UserError, ValidationError
from hwdiffnas.interfaces import ModelMetadata
from hwdiffnas.materialize import MacroConfig
from hwdiffnas.plugins import exporter_names, get_exporter
from hwdiffnas.space import Cell

SPECIAL = {
    "all-none": Cell.from_ops([0] * 6),
    "disconnected": Cell.from_ops([3, 3, 3, 0, 0, 0]),
    "all-conv3x3": Cell.from_ops([3] * 6),
    "all-skip": Cell.from_ops([1] * 6),
    "dead-node-conv": Cell.from_ops([0, 3, 0, 0, 3, 1]),  # node 1 is dead, a conv reads it
    "dead-node-pool": Cell.from_ops([0, 1, 0, 0, 4, 1]),  # node 1 is dead, a pool reads it
}
N_RANDOM = 50


def sample_cells() -> list[Cell]:
    """The special cells plus 50 distinct seeded random ones."""
    rng = random.Random(2024)
    cells = list(SPECIAL.values())
    while len(cells) < len(SPECIAL) + N_RANDOM:
        c = Cell(tuple(rng.randrange(5) for _ in range(6)))
        if c not in cells:
            cells.append(c)
    return cells


def test_sample_of_cells_exports_and_validates_in_onnx_and_openvino(tmp_path):
    """≥50 random cells + all-none, disconnected, all-conv3x3, all-skip, dead-node cells, full NB201 size.

    One process, one trace per cell: the ONNX file is validated with onnxruntime, then converted to OpenVINO
    IR (what the OpenVINO exporter does after tracing) and validated on the CPU plug-in in f32; two random
    inputs each, so a runtime that keeps state between inferences is caught too.
    """
    cells = sample_cells()
    assert len(cells) >= 54 and not cells[0].is_connected and not cells[1].is_connected
    onnx_exp, ov_exp = get_exporter("onnx"), get_exporter("openvino")
    failures = []
    t0 = time.perf_counter()
    with torch_threads(1):
        for i, cell in enumerate(cells):
            net, meta = prepare_network(cell, "cifar100", seed=i)
            out = tmp_path / str(i)
            out.mkdir()
            e_onnx = onnx_exp.export(net, torch.zeros(meta.input_shape), out, meta)
            r_onnx = validate_export(e_onnx, net, onnx_exp, trials=2, seed=i)
            e_ov = ov_exp.convert_onnx(e_onnx.path, out, e_onnx.metadata)
            r_ov = validate_export(e_ov, net, ov_exp, trials=2, seed=i)
            for fmt, r in (("onnx", r_onnx), ("openvino", r_ov)):
                if not r.passed:
                    failures.append((cell.arch_str, fmt, r.max_abs_diff, r.tolerance))
    seconds = time.perf_counter() - t0
    assert not failures, failures
    print(f"{len(cells)} cells × 2 formats validated in {seconds:.1f} s")


def test_export_cell_writes_validated_files_with_metadata(tmp_path):
    cell = Cell.from_ops([3, 1, 2, 0, 4, 3])
    for fmt, suffixes in (("onnx", {".onnx"}), ("openvino", {".xml", ".bin"})):
        res = export_cell(cell, fmt, tmp_path / "out", dataset="ImageNet16-120", validate_trials=2)
        assert res.validation.passed and res.validation.trials == 2
        assert res.validation.tolerance == pytest.approx(1e-4 * max(1.0, res.validation.max_abs_output))
        assert {p.suffix for p in res.exported.files} == suffixes
        assert all(p.parent == tmp_path / "out" and p.is_file() for p in res.exported.files)
        meta = get_exporter(fmt).read_metadata(res.path)
        assert meta == res.exported.metadata
        assert meta.arch_str == cell.arch_str and meta.dataset == "ImageNet16-120"
        assert meta.input_shape == (1, 3, 16, 16) and meta.extra["num_classes"] == "120"
        assert ModelMetadata.from_strings(meta.as_strings()) == meta
        assert res.info.params > 0 and res.info.flops == 2 * res.info.macs
    # nothing but the exported files (no staging folders) anywhere under tmp_path
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(
        ["out"] + [f"nb201-312043-ImageNet16-120{s}" for s in (".onnx", ".xml", ".bin")])


def test_onnx_file_is_checked_pinned_and_batch1(tmp_path):
    res = export_cell(Cell.from_ops([2, 2, 4, 1, 3, 0]), "onnx", tmp_path)
    model = onnx.load(str(res.path))
    onnx.checker.check_model(model, full_check=True)
    assert {o.domain: o.version for o in model.opset_import}[""] == 17
    (inp,) = model.graph.input
    assert inp.name == "input" and [d.dim_value for d in inp.type.tensor_type.shape.dim] == [1, 3, 32, 32]
    assert [o.name for o in model.graph.output] == ["logits"]
    props = {p.key: p.value for p in model.metadata_props}
    assert props["hwdiffnas.arch_str"] == res.exported.metadata.arch_str
    assert props["hwdiffnas.onnx_exporter"] == "torchscript"


def test_disconnected_cell_keeps_its_input_and_is_constant(tmp_path):
    """The exporter folds a network without input→output path to a constant but still declares the input."""
    res = export_cell(Cell.from_ops([0] * 6), "onnx", tmp_path)
    model = onnx.load(str(res.path))
    assert [i.name for i in model.graph.input] == ["input"]
    x = random_inputs((1, 3, 32, 32), 2, seed=5)
    out = get_exporter("onnx").run(res.exported, x)
    assert out.shape == (2, 100) and np.allclose(out[0], out[1])


def test_prune_rule_exports_a_smaller_graph_that_validates(tmp_path):
    cell = Cell.from_ops([0, 3, 0, 0, 3, 1])
    zeros = export_cell(cell, "onnx", tmp_path / "z")
    pruned = export_cell(cell, "onnx", tmp_path / "p", macro=MacroConfig(dead_nodes="prune"))
    assert pruned.path.name.endswith("-prune.onnx") and pruned.exported.metadata.dead_nodes == "prune"
    n_conv = [sum(n.op_type == "Conv" for n in onnx.load(str(r.path)).graph.node) for r in (zeros, pruned)]
    assert n_conv[1] < n_conv[0]
    assert pruned.info.params < zeros.info.params


def _corrupt_classifier(path: Path) -> None:
    model = onnx.load(str(path))
    (w,) = [t for t in model.graph.initializer if t.name == "classifier.weight"]
    arr = onnx.numpy_helper.to_array(w).copy()
    arr[0] += 0.5
    w.CopyFrom(onnx.numpy_helper.from_array(arr, w.name))
    onnx.save(model, str(path))


def test_corrupted_file_fails_validation(tmp_path):
    res = export_cell(Cell.from_ops([3, 0, 1, 2, 4, 1]), "onnx", tmp_path)
    net, _ = prepare_network(Cell.from_ops([3, 0, 1, 2, 4, 1]))
    assert validate_export(res.exported, net).passed
    _corrupt_classifier(res.path)
    report = validate_export(res.exported, net)
    assert not report.passed and report.max_abs_diff > report.tolerance


def test_validation_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    import hwdiffnas.deploy as deploy
    from export.onnx import OnnxExporter

    class CorruptingExporter(OnnxExporter):
        def export(self, model, example_input, out_dir, metadata):
            exported = super().export(model, example_input, out_dir, metadata)
            _corrupt_classifier(exported.path)
            return exported

    monkeypatch.setattr(deploy, "get_exporter", lambda name: CorruptingExporter())
    with pytest.raises(ValidationError, match=r"max \|diff\| .* > tolerance"):
        export_cell(Cell.from_ops([3] * 6), "onnx", tmp_path / "new" / "out")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_is_a_user_error(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="is not a folder"):
        export_cell(Cell.from_ops([1] * 6), "onnx", blocker / "out")
    with pytest.raises(UserError, match="is not a folder"):
        export_cell(Cell.from_ops([1] * 6), "onnx", blocker)
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(UserError, match="cannot write to"):
            export_cell(Cell.from_ops([1] * 6), "onnx", ro / "out")
    import hwdiffnas.deploy as deploy

    def refuse(**_kw):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(deploy.tempfile, "mkdtemp", refuse)
    with pytest.raises(UserError, match="cannot write to .*Permission denied"):
        export_cell(Cell.from_ops([1] * 6), "onnx", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"] + (["ro"] if os.geteuid() != 0 else [])


def test_unknown_format_lists_the_installed_ones(tmp_path):
    assert {"onnx", "openvino"} <= set(exporter_names())
    with pytest.raises(UserError, match="unknown format 'tflite2'; known: ") as info:
        export_cell(Cell.from_ops([1] * 6), "tflite2", tmp_path)
    assert {"onnx", "openvino"} <= set(str(info.value).split("known: ")[1].split(", "))


def test_missing_backend_names_the_extra(tmp_path, monkeypatch):
    import hwdiffnas.deploy as deploy
    from export.onnx import OnnxExporter

    class Unavailable(OnnxExporter):
        name, extra = "tflite", "tflite"

        def available(self):
            return False, "No module named 'ai_edge_litert'"

    monkeypatch.setattr(deploy, "get_exporter", lambda name: Unavailable())
    with pytest.raises(UserError, match=r"tflite is not installed; install it with: pip install 'hwdiffnas\[tflite\]'"):
        export_cell(Cell.from_ops([1] * 6), "tflite", tmp_path / "o")
    Unavailable.extra = ""
    with pytest.raises(UserError, match="cannot run here: No module named 'ai_edge_litert' .*reinstall"):
        export_cell(Cell.from_ops([1] * 6), "tflite", tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_constant_add_operands_are_moved_last():
    """Regression for OpenVINO's in-place Add on a folded constant (wrong logits from the 2nd inference on)."""
    from onnx import TensorProto, helper, numpy_helper

    from export.onnx.exporter import constant_operands_last

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])
    zeros = numpy_helper.from_array(np.zeros((1, 2, 4, 4), np.float32), "z")
    nodes = [helper.make_node("AveragePool", ["z"], ["p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["p", "input"], ["y"])]
    proto = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [zeros]))
    assert constant_operands_last(proto) == 1
    assert list(proto.graph.node[1].input) == ["input", "p"]
    assert constant_operands_last(proto) == 0


@pytest.mark.slow
def test_dynamo_exporter_matches(tmp_path):
    pytest.importorskip("onnxscript")
    from export.onnx import OnnxExporter

    cell = Cell.from_ops([3, 1, 2, 0, 4, 3])
    net, meta = prepare_network(cell)
    exp = OnnxExporter(dynamo=True)
    with torch_threads(1):
        exported = exp.export(net, torch.zeros(meta.input_shape), tmp_path, meta)
    assert exp.read_metadata(exported.path).extra["onnx_exporter"] == "dynamo"
    assert validate_export(exported, net, exp).passed
