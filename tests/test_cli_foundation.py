"""CLI: devices / export / profile JSON outputs, one-line errors with exit code 2, lazy heavy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hwdiffnas.cli import main

SKIP_ARCH = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"


def run_json(capsys, argv: list[str]) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def fails(capsys, argv: list[str]) -> str:
    """Run a command that must fail with exit code 2 and a one-line message; returns the message."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hwdiffnas: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_cli_import_does_not_load_heavy_runtimes():
    code = ("import sys, hwdiffnas.cli as c; c.build_parser(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'onnx', 'onnxruntime', 'openvino', "
            "'onnxscript', 'tensorflow'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_devices_json(capsys):
    devices = {d["name"]: d for d in run_json(capsys, ["devices"])["devices"]}
    for name in ("raspi4", "pi5-litert", "fpga", "eyeriss", "pixel3", "local-cpu", "edgegpu"):
        assert name in devices
    assert devices["raspi4"]["tables"][0]["column"] == "hwnb_c10_raspi4"
    assert devices["fpga"]["measure"]["route"] == "table-only"
    assert devices["local-cpu"]["measure"]["runtime"] == "onnxruntime"
    assert main(["devices"]) == 0
    text = capsys.readouterr().out
    assert "raspi4" in text and "table only" in text
    assert run_json(capsys, ["devices", "rpi4"])["devices"][0]["name"] == "raspi4"
    assert "unknown device 'pixle3'" in fails(capsys, ["devices", "pixle3"])


def test_export_json(capsys, tmp_path):
    out = run_json(capsys, ["export", "--arch", SKIP_ARCH, "--format", "onnx", "-o", str(tmp_path / "x"),
                            "--dataset", "cifar10", "--trials", "1"])
    assert out["arch_str"] == SKIP_ARCH and out["dataset"] == "cifar10" and out["input_shape"] == [1, 3, 32, 32]
    assert out["params"] > 0 and out["flops"] == 2 * out["macs"] and out["format"] == "onnx"
    assert out["validation"]["passed"] and out["validation"]["max_abs_diff"] <= out["validation"]["tolerance"]
    assert [Path(p).name for p in out["files"]] == ["nb201-111111-cifar10.onnx"]
    assert Path(out["path"]).is_file() and out["metadata"]["hwdiffnas.dataset"] == "cifar10"
    assert main(["export", "--arch", "1,1,1,1,1,1", "--format", "openvino", "-o", str(tmp_path / "y"),
                 "--dead-nodes", "prune"]) == 0
    text = capsys.readouterr().out
    assert "nb201-111111-cifar100-prune.xml" in text and "validation: max |diff|" in text and "params" in text


def test_profile_json(capsys):
    out = run_json(capsys, ["profile", "--arch", "1,1,1,2,1,1", "--runtime", "onnxruntime", "--warmup", "1",
                            "--runs", "4", "--threads", "1"])
    for key in ("median_ms", "p90_ms", "cv", "runs", "runtime", "runtime_version", "arch_str", "dataset", "host"):
        assert key in out
    assert out["runs"] == 4 and out["runtime"] == "onnxruntime" and out["median_ms"] > 0
    assert main(["profile", "--arch", "1,1,1,2,1,1", "--runtime", "torch", "--warmup", "0", "--runs", "2"]) == 0
    assert "median" in capsys.readouterr().out


@pytest.mark.parametrize("argv,expected", [
    (["export", "--arch", "|nor_conv_3x3~0|+|", "--format", "onnx", "-o", "{tmp}"], "malformed arch string"),
    (["export", "--arch", "3,3,9,0,1,1", "--format", "onnx", "-o", "{tmp}"], "op index 9 out of range"),
    (["export", "--arch", "conv_5x5,3,3,0,1,1", "--format", "onnx", "-o", "{tmp}"],
     "unknown op 'conv_5x5'; known: none, skip_connect"),
    (["export", "--arch", "1,1,1,1,1,1", "--format", "tfjs", "-o", "{tmp}"], "unknown format 'tfjs'; known: "),
    (["export", "--arch", "1,1,1,1,1,1", "--format", "onnx", "-o", "{tmp}", "--dataset", "mnist"],
     "unknown dataset 'mnist'; known: cifar10, cifar100, ImageNet16-120"),
    (["export", "--arch", "1,1,1,1,1,1", "--format", "onnx", "-o", "{tmp}/file/out"], "is not a folder"),
    (["profile", "--arch", "1,1,1,1,1,1", "--runtime", "tvm"], "unknown runtime 'tvm'; known: "),
    (["profile", "--arch", "1,1,1,1,1,1", "--runtime", "torch", "--runs", "0"], "runs ≥ 1"),
])
def test_bad_input_is_one_line_exit_2(capsys, tmp_path, argv, expected):
    (tmp_path / "file").write_text("not a folder")
    msg = fails(capsys, [a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert expected in msg
    if "format" in expected:
        assert "onnx" in msg and "openvino" in msg
    if "runtime" in expected:
        assert "onnxruntime" in msg and "openvino" in msg and "torch" in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing written


def test_error_in_a_subprocess_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hwdiffnas", "export", "--arch", "|bogus~0|+|x|", "--format",
                           "onnx", "-o", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr and "malformed arch" in proc.stderr
    assert not (tmp_path / "o").exists()
