"""What a first-time user runs into: repeated imports, closed pipes, option placement, misleading
names and messages, leftovers of stopped runs."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from privileges import as_unprivileged_user

from hwdiffnas.cli import main
from hwdiffnas.datadir import STORE_FILENAME
from hwdiffnas.importers import import_paths

ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def _row_counts(data_dir: Path) -> tuple[int, int]:
    conn = sqlite3.connect(data_dir / STORE_FILENAME)
    try:
        return (conn.execute("SELECT COUNT(*) FROM accuracy").fetchone()[0],
                conn.execute("SELECT COUNT(*) FROM hw_value").fetchone()[0])
    finally:
        conn.close()


# --- data import twice ----------------------------------------------------------------------------------
def test_reimport_keeps_one_copy_of_each_series(nb201_dir: Path, tmp_path: Path) -> None:
    files = [nb201_dir / f for f in ("arch_index.csv", "accuracy.csv", "latency_help_ms.csv")]
    import_paths(files, tmp_path)
    first = _row_counts(tmp_path)
    assert first[0] > 0 and first[1] > 0
    import_paths(files, tmp_path)
    import_paths(files, tmp_path)
    assert _row_counts(tmp_path) == first


def test_reimport_removes_rows_orphaned_by_earlier_imports(nb201_dir: Path, tmp_path: Path) -> None:
    files = [nb201_dir / f for f in ("arch_index.csv", "accuracy.csv")]
    import_paths(files, tmp_path)
    first = _row_counts(tmp_path)
    conn = sqlite3.connect(tmp_path / STORE_FILENAME)  # foreign keys off: what earlier versions left behind
    conn.execute("INSERT INTO accuracy (series_id, cell_key, value) SELECT series_id + 1000, cell_key, value "
                 "FROM accuracy")
    conn.commit()
    conn.close()
    assert _row_counts(tmp_path)[0] == 2 * first[0]
    import_paths(files, tmp_path)
    assert _row_counts(tmp_path) == first


# --- output into a closed pipe --------------------------------------------------------------------------
def _into_closed_pipe(argv: list[str], env_data: Path) -> subprocess.CompletedProcess:
    """Run the CLI with stdout the write end of a pipe whose read end is already closed (what `| head` leaves
    once it has its lines, without the race)."""
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    try:
        return subprocess.run([sys.executable, "-m", "hwdiffnas", *argv], stdout=write_fd, stderr=subprocess.PIPE,
                              text=True, timeout=300, env={**os.environ, "HWDIFFNAS_DATA": str(env_data)})
    finally:
        os.close(write_fd)


@pytest.mark.parametrize("argv", [
    ["devices"],
    ["devices", "--json"],
    ["data", "status"],
    ["oracle", "--device", "pixel3", "--budget", "p50"],
    ["bench", "--method", "random", "--device", "pixel3", "--budget", "p50", "--queries", "5", "--seeds", "1",
     "--json"],
    ["campaign", "--device", "local-cpu", "--n", "20", "--dry-run"],
], ids=lambda a: " ".join(a[:2]))
def test_closed_stdout_ends_quietly(argv: list[str], nb201_data_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / STORE_FILENAME).write_bytes((nb201_data_dir / STORE_FILENAME).read_bytes())
    proc = _into_closed_pipe(argv, data)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert proc.returncode == 141, proc.stderr


# --- --data-dir and --json on either side of the sub-command ----------------------------------------------
def test_data_dir_and_json_before_or_after_the_command(nb201_data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    outs = []
    for argv in (["--data-dir", str(nb201_data_dir), "--json", "data", "status"],
                 ["data", "status", "--data-dir", str(nb201_data_dir), "--json"],
                 ["--json", "data", "status", "--data-dir", str(nb201_data_dir)],
                 ["--data-dir", str(nb201_data_dir), "data", "status", "--json"]):
        assert main(argv) == 0, argv
        outs.append(json.loads(capsys.readouterr().out))
    assert all(o == outs[0] for o in outs)
    assert outs[0]["data_dir"] == str(nb201_data_dir) and outs[0]["exists"]


def test_data_dir_after_the_command_overrides_the_environment(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    assert main(["data", "status", "--json", "--data-dir", str(tmp_path / "mine")]) == 0
    assert json.loads(capsys.readouterr().out)["data_dir"] == str(tmp_path / "mine")
    assert main(["data", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["data_dir"] == os.environ["HWDIFFNAS_DATA"]


def test_help_shows_both_options_in_both_places(capsys: pytest.CaptureFixture) -> None:
    for argv in (["--help"], ["devices", "--help"], ["data", "status", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = capsys.readouterr().out
        assert "--data-dir" in text and "--json" in text, argv


# --- search: devices without data, the measured-latency label ----------------------------------------------
@pytest.mark.parametrize("with_store", [False, True])
def test_search_on_a_listed_device_without_data_says_how_to_get_it(with_store: bool, nb201_data_dir: Path,
                                                                   tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    data = nb201_data_dir if with_store else tmp_path / "empty"
    assert main(["devices", "--json"]) == 0
    assert "edgegpu" in {d["name"] for d in json.loads(capsys.readouterr().out)["devices"]}
    assert main(["search", "--device", "edgegpu", "--budget", "10ms", "--data-dir", str(data)]) == 2
    err = capsys.readouterr().err
    assert "unknown device" not in err
    assert "'edgegpu' has no latency data" in err and "--trust-pickle" in err and "HW-NAS-Bench" in err
    # without a data directory the store is the one built from the packaged tables (which lack edgegpu)
    assert "in the benchmark store" in err


def test_oracle_on_a_listed_device_without_data_names_its_source(nb201_data_dir: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    assert main(["oracle", "--device", "edgegpu", "--budget", "5ms", "--data-dir", str(nb201_data_dir)]) == 2
    err = capsys.readouterr().err
    assert "--trust-pickle" in err and "HW-NAS-Bench-v1_0.pickle" in err and "../shared/data/nb201" not in err
    assert main(["oracle", "--device", "local-cpu", "--budget", "5ms", "--data-dir", str(nb201_data_dir)]) == 2
    assert "hwdiffnas campaign --device local-cpu" in capsys.readouterr().err


def test_search_on_an_unmeasured_host_device_says_to_measure_it(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    assert main(["search", "--device", "local-cpu", "--budget", "1ms", "--data-dir", str(tmp_path)]) == 2
    assert "hwdiffnas campaign --device local-cpu" in capsys.readouterr().err


def test_measured_device_latency_source_has_one_prefix(nb201_data_dir: Path, tmp_path: Path) -> None:
    from hwdiffnas.benchmark import open_store
    from hwdiffnas.generator import default_checkpoint_path
    from hwdiffnas.generator.model import Generator
    from hwdiffnas.search import resolve_device

    data = tmp_path / "data"
    data.mkdir()
    (data / STORE_FILENAME).write_bytes((nb201_data_dir / STORE_FILENAME).read_bytes())
    with open_store(data) as store:
        cells = [c for c in store.cells() if c.is_connected][:40:2]
        for i, c in enumerate(cells):
            store.record_measurement("local-cpu", "run", c, median_ms=1.0 + 0.1 * i)
        assert store.latency_source("local-cpu") == "measured:local-cpu"
        gen = Generator.load(default_checkpoint_path())
        device = resolve_device(gen, store, "local-cpu")
    assert device.table_source == "measured:local-cpu"
    point, _, source = device.latencies(cells[:3])
    assert source == ["measured:local-cpu"] * 3 and point[0] == pytest.approx(1.0)


# --- train: the output location is checked first -------------------------------------------------------------
def _no_training(*_a, **_k):
    raise AssertionError("training started before the output location was checked")


def test_train_refuses_an_unwritable_output_before_training(nb201_data_dir: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    import hwdiffnas.generator.train as train_module

    monkeypatch.setattr(train_module, "train", _no_training)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder is needed\n")
    for out in (blocker / "g.safetensors", tmp_path):
        rc = main(["train", "--data-dir", str(nb201_data_dir), "--steps", "2", "-o", str(out)])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("hwdiffnas: error: ") and str(out) in err, err
    assert not list(tmp_path.glob("*.probe")) and not list(tmp_path.glob(".*.probe"))


def test_train_refuses_a_read_only_folder() -> None:
    """Run in a child process, as an unprivileged user when the tests run as root (root ignores permissions)."""
    base = Path(tempfile.mkdtemp(prefix="hwd-train-ro-"))
    try:
        ro = base / "ro"
        ro.mkdir()
        base.chmod(0o755)
        ro.chmod(0o555)
        out = ro / "g.safetensors"
        # no store in the data dir: were the output not checked first, training would fail on the store instead
        argv = as_unprivileged_user([sys.executable, "-m", "hwdiffnas", "train", "--data-dir", str(base / "none"),
                                     "--steps", "2", "-o", str(out)])
        env = {**os.environ, "HOME": str(base), "XDG_DATA_HOME": str(base)}
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, cwd=base)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert "cannot write checkpoint" in proc.stderr and "Traceback" not in proc.stderr
        assert not out.exists() and not list(ro.iterdir())
    finally:
        (base / "ro").chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


# --- OpenVINO IR: the file carries its f32 precision ---------------------------------------------------------
def test_openvino_ir_records_f32_and_plain_compile_runs_f32(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    import numpy as np
    import openvino as ov
    import torch

    from hwdiffnas.deploy import export_cell, prepare_network
    from hwdiffnas.space import parse_cell

    cell = parse_cell("3,3,2,1,3,4")
    xml = export_cell(cell, "openvino", tmp_path / "ir", validate_trials=1).path
    root = ET.parse(xml).getroot()
    hint = root.find("./rt_info/runtime_options/INFERENCE_PRECISION_HINT")
    assert hint is not None and hint.get("value") == "f32"
    layers = root.findall("./layers/layer")
    unmarked = [layer.get("name") for layer in layers
                if not any(a.get("name") == "DisablePrecisionConversion" for a in layer.findall("./rt_info/attribute"))]
    assert layers and not unmarked, f"layers free to run in lower precision: {unmarked[:5]}"

    compiled = ov.Core().compile_model(str(xml), "CPU")  # no properties: what a user of the file does
    runtime = {op.get_friendly_name(): op.get_rt_info()["runtimePrecision"].astype(str)
               for op in compiled.get_runtime_model().get_ops()}
    assert not {n: p for n, p in runtime.items() if p in ("bf16", "f16")}, runtime
    net, _ = prepare_network(cell, "cifar100", None, 0)
    x = np.random.RandomState(0).randn(1, 3, 32, 32).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    diff = float(np.abs(compiled(x)[0] - ref).max())
    assert diff <= 1e-5 * max(1.0, float(np.abs(ref).max())), diff


# --- campaign: scratch folders of stopped runs are removed ---------------------------------------------------
_HOLD = ("import sys, time; from pathlib import Path; from hwdiffnas.workdir import claim_workdir; "
         "w = claim_workdir(Path(sys.argv[1])); (w.path / 'hwdiffnas-profile-x').mkdir(); "
         "print(w.path, flush=True); time.sleep(600)")


def _holder(parent: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(parent)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_campaign_removes_scratch_folders_of_stopped_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    scratch = tmp_path / "campaign-tmp"
    live, live_dir = _holder(scratch)  # a campaign still running: its folder must stay
    try:
        killed, killed_dir = _holder(scratch)
        killed.kill()  # stopped without any clean-up: its folder and its (now free) lock file stay behind
        killed.wait(30)
        assert (killed_dir / "hwdiffnas-profile-x").is_dir()
        legacy = scratch / "hwdiffnas-profile-abc123"  # what a stopped run of an older version left
        legacy.mkdir()
        (legacy / "model.onnx").write_bytes(b"\0" * 1024)
        rc = main(["--data-dir", str(tmp_path), "campaign", "--device", "local-cpu", "--runtime", "torch", "--n", "1",
                   "--warmup", "1", "--runs", "2", "--no-progress", "--json"])
        assert rc == 0, capsys.readouterr().err
        assert json.loads(capsys.readouterr().out)["complete"] == 1
        assert sorted(scratch.iterdir()) == [live_dir] and (live_dir / "hwdiffnas-profile-x").is_dir()
        assert not legacy.exists() and not killed_dir.exists()
    finally:
        live.kill()
        live.wait(30)


# --- smaller things: where files went, what --help lists, -o FILE, constant networks, noisy timings ----------
def test_search_says_where_export_wrote(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "picked"
    assert main(["search", "--device", "pixel3", "--budget", "10ms", "--samples", "60", "--top", "2",
                 "--data-dir", str(tmp_path / "none"), "--export", str(out)]) == 0
    text = capsys.readouterr().out
    files = sorted(out.glob("*.onnx"))
    assert files and f"to {out}" in text and all(str(f) in text for f in files)


def test_help_lists_every_installed_exporter_and_profiler(capsys: pytest.CaptureFixture) -> None:
    from hwdiffnas.plugins import exporter_names, profiler_names

    for argv, names in ((["export", "--help"], exporter_names()), (["profile", "--help"], profiler_names())):
        with pytest.raises(SystemExit):
            main(argv)
        text = " ".join(capsys.readouterr().out.split()).replace("- ", "-")  # undo argparse's line wrapping
        assert "tflite" in names or argv[0] == "profile"
        assert [n for n in names if n not in text] == [], argv


def test_export_to_a_file_name(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["export", "--arch", "3,3,1,0,3,4", "--format", "onnx", "-o", str(tmp_path / "out" / "model.onnx"),
                 "--trials", "1", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert (tmp_path / "out" / "model.onnx").is_file() and res["path"] == str(tmp_path / "out" / "model.onnx")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.onnx"]
    assert main(["export", "--arch", "3,3,1,0,3,4", "--format", "openvino", "-o", str(tmp_path / "ov" / "net.xml"),
                 "--trials", "1"]) == 0
    assert sorted(p.name for p in (tmp_path / "ov").iterdir()) == ["net.bin", "net.xml"]
    assert main(["export", "--arch", "3,3,1,0,3,4", "--format", "openvino", "-o", str(tmp_path / "bad" / "m.onnx"),
                 "--trials", "1"]) == 2
    err = capsys.readouterr().err
    assert "format openvino writes a .xml file; name it m.xml, or give a folder" in err
    assert not (tmp_path / "bad" / "m.onnx").exists() and not list((tmp_path / "bad").glob("*"))
    assert main(["export", "--arch", "3,3,1,0,3,4", "--format", "onnx", "-o", str(tmp_path / "run.v2") + "/",
                 "--trials", "1"]) == 0  # a folder whose name has a dot
    assert len(list((tmp_path / "run.v2").glob("nb201-*.onnx"))) == 1


def test_constant_network_is_flagged(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["export", "--arch", ALL_NONE, "--format", "onnx", "-o", str(tmp_path), "--trials", "1",
                 "--json"]) == 0
    cap = capsys.readouterr()
    assert "warning:" in cap.err and "constant network" in cap.err
    assert any("constant network" in w for w in json.loads(cap.out)["warnings"])
    assert main(["profile", "--arch", ALL_NONE, "--runtime", "torch", "--warmup", "1", "--runs", "3",
                 "--pin-cpus", "none"]) == 0
    assert "constant network" in capsys.readouterr().err
    assert main(["export", "--arch", "3,3,1,0,3,4", "--format", "onnx", "-o", str(tmp_path / "c"), "--trials",
                 "1"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_noisy_profile_is_flagged(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from hwdiffnas.cli import cmd_profile
    from hwdiffnas.interfaces import LatencyStats

    samples = {"steady": [1.0, 1.01, 0.99, 1.0, 1.02], "noisy": [1.0, 1.0, 1.0, 5.0, 0.5]}
    for kind, xs in samples.items():
        stats = LatencyStats.from_samples(xs, warmup=1, threads=1, runtime="torch", runtime_version="x", host="h")
        monkeypatch.setattr(cmd_profile, "measure", lambda *_a, s=stats: s)
        assert main(["profile", "--arch", "3,3,1,0,3,4", "--runtime", "torch", "--json"]) == 0
        cap = capsys.readouterr()
        warnings = json.loads(cap.out)["warnings"]
        if kind == "steady":
            assert stats.cv < 0.1 and warnings == [] and "warning" not in cap.err
        else:
            assert stats.cv > 0.1 and "vary a lot" in cap.err and "--pin-cpus" in cap.err and "--runs" in cap.err
            assert len(warnings) == 1 and f"cv {100 * stats.cv:.0f}%" in warnings[0]


def test_campaign_dry_run_needs_no_remote(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for device in ("pixel-nnapi", "edgegpu"):  # measured over adb / through an agent
        assert main(["--data-dir", str(tmp_path), "campaign", "--device", device, "--n", "4", "--dry-run",
                     "--json"]) == 0
        assert len(json.loads(capsys.readouterr().out)["cells"]) == 4
    assert main(["--data-dir", str(tmp_path), "campaign", "--device", "pixel-nnapi", "--n", "4"]) == 2
    assert "give --remote" in capsys.readouterr().err
