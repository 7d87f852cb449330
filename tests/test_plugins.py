"""``hwdiffnas plugins`` and the one registry shape behind exporters, profilers and search methods."""

from __future__ import annotations

import json

import pytest

from hwdiffnas.cli import main
from hwdiffnas.errors import UserError
from hwdiffnas.interfaces import Profiler
from hwdiffnas.plugins import Registry, exporter_names, profiler_names


def _json(capsys: pytest.CaptureFixture, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_plugins_json_lists_every_installed_plugin(capsys: pytest.CaptureFixture) -> None:
    out = _json(capsys, ["plugins", "--json"])
    assert set(out) == {"exporters", "profilers", "methods", "objectives"}
    assert {"flops", "params", "synflow", "naswot", "zen"} <= {r["name"] for r in out["objectives"]}
    assert [r["name"] for r in out["exporters"]] == exporter_names()
    assert [r["name"] for r in out["profilers"]] == profiler_names()
    assert {"random", "rea", "predictor", "diffusion"} <= {r["name"] for r in out["methods"]}
    for rows in out.values():
        for r in rows:
            assert set(r) == {"kind", "name", "origin", "target", "importable", "reason", "description", "extra"}
            assert r["importable"] or r["reason"], r  # a plug-in that cannot run here says why
    onnx = next(r for r in out["exporters"] if r["name"] == "onnx")
    assert onnx["importable"] and onnx["origin"] == "entry point" and onnx["target"] == "export.onnx:OnnxExporter"
    torch = next(r for r in out["profilers"] if r["name"] == "torch")
    assert torch["importable"] and torch["kind"] == "runtime"


def test_plugins_kind_filter_and_table(capsys: pytest.CaptureFixture) -> None:
    assert set(_json(capsys, ["plugins", "--kind", "profilers", "--json"])) == {"profilers"}
    assert main(["plugins", "--kind", "exporters"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("exporters (") and "onnx" in text and "profilers" not in text


class _Missing(Profiler):
    name = "missing"
    model_format = "onnx"
    description = "needs a runtime that is not here"
    requires = ("hwdiffnas_no_such_runtime",)

    def version(self) -> str:  # pragma: no cover - never run
        return "0"

    def profile(self, *args: object, **kwargs: object) -> object:  # pragma: no cover - never run
        raise NotImplementedError


def test_registry_reports_unimportable_and_broken_plugins() -> None:
    reg: Registry[Profiler] = Registry("runtime", "hwdiffnas.no-such-group", Profiler,
                                       {"broken": "hwdiffnas.no_such_module:Thing"})
    reg.register("missing", _Missing)
    info = {i.name: i for i in reg.describe()}
    assert info["missing"].origin == "registered" and not info["missing"].importable
    assert "hwdiffnas_no_such_runtime" in info["missing"].reason
    assert info["broken"].origin == "built-in" and not info["broken"].importable
    assert "cannot be loaded" in info["broken"].reason
    with pytest.raises(UserError, match="unknown runtime 'nope'; known: broken, missing"):
        reg.create("nope")
    with pytest.raises(UserError, match="runtime 'broken' cannot be loaded"):
        reg.create("broken")
    with pytest.raises(UserError, match="runtime 'missing' does not accept options"):
        reg.create("missing", threads=2)
