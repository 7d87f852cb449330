"""The benchmark store and its importers, on the real NB201 files and on small bad/crafted files."""

from __future__ import annotations

import csv
import json
import multiprocessing as mp
import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hwdiffnas.benchmark import open_store
from hwdiffnas.datadir import STORE_FILENAME, default_data_dir, ensure_writable_dir, resolve_data_dir
from hwdiffnas.devices import default_registry
from hwdiffnas.errors import UserError
from hwdiffnas.importers import ImportFileError, import_paths
from hwdiffnas.space import Cell
from hwdiffnas.store import Store, cell_from_key, cell_key

IDX0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


def _csv_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def _copy_store(src_dir: Path, dst_dir: Path) -> Path:
    """A private copy of a store (tests that write must not change the shared session store)."""
    dst_dir.mkdir(parents=True)
    src = sqlite3.connect(src_dir / STORE_FILENAME)
    dst = sqlite3.connect(dst_dir / STORE_FILENAME)
    src.backup(dst)
    src.close()
    dst.close()
    return dst_dir


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


# --- data directory ------------------------------------------------------------------------------------
def test_data_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWDIFFNAS_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("HWDIFFNAS_DATA")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir() == tmp_path / "xdg" / "hwdiffnas" == default_data_dir()
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_data_dir() == Path.home() / ".local" / "share" / "hwdiffnas"


def test_store_inside_source_folder_is_refused(tmp_path: Path, nb201_dir: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "arch_index.csv").write_bytes((nb201_dir / "arch_index.csv").read_bytes())
    with pytest.raises(UserError, match="read-only"):
        import_paths([src], src / "data")
    assert not (src / "data").exists()
    with pytest.raises(UserError, match="read-only"):
        ensure_writable_dir(src, [src / "arch_index.csv"])
    ensure_writable_dir(src / "sub", [src / "arch_index.csv"])  # beside a single source file is fine


def test_open_store_missing_and_incomplete(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="hwdiffnas data import"):
        open_store(tmp_path / "nothing", packaged=False)
    with open_store(tmp_path / "nothing") as shipped:  # by default the tables shipped in the package answer
        assert shipped.has_index() and shipped.meta("packaged_tables")
    Store.create(tmp_path / "empty").close()
    with pytest.raises(UserError, match=r"incomplete: missing the NB201 index .* and accuracies"):
        open_store(tmp_path / "empty")


def test_cell_key_roundtrip() -> None:
    keys = {cell_key(Cell.from_ops(ops)) for ops in [(0,) * 6, (4,) * 6, (3, 3, 1, 0, 3, 4)]}
    assert keys == {0, 15624, cell_key(Cell.parse("3,3,1,0,3,4"))}
    for k in (0, 1, 777, 15624):
        assert cell_key(cell_from_key(k)) == k


# --- the real tables -----------------------------------------------------------------------------------
def test_tables_import(nb201_store: Store, nb201_dir: Path) -> None:
    store = nb201_store
    cells = store.cells()
    assert len(cells) == 15625 and cells[0].arch_str == IDX0
    assert store.index_of(IDX0) == 0 and store.index_of(cells[9930]) == 9930
    conn = store.connected()
    assert conn.sum() == 15625 - 341
    acc = store.accuracy()
    assert int(np.argmax(acc)) == 9930 and acc[9930] == pytest.approx(73.5133, abs=1e-4)
    assert int(np.argmax(store.accuracy("cifar10"))) == 6111
    assert int(np.nanargmax(store.accuracy("ImageNet16-120"))) == 857
    v11 = store.accuracy("cifar100", "nb201v11")
    assert (np.abs(v11 - acc) < 1e-6).sum() == 13139
    assert store.latency("fpga")[:3] == pytest.approx([2.57296, 5.31536, 5.28656])
    assert store.latency_source("fpga") == "help:hwnb_c10_fpga:cifar10"
    nano = store.latency("jetson-nano-fp16")
    assert np.isnan(nano[~conn]).all() and np.isfinite(nano[conn]).all()
    assert np.isnan(store.latency("snapdragon450-cpu-int8")).sum() == 373
    # hw360: copied from the class representative
    pi5 = store.latency("pi5-litert")
    iso = store.iso_rep_idx()
    assert np.array_equal(pi5, pi5[iso]) and iso[5173] == iso[5836]
    px3 = store.latency("pixel3")  # a per-cell table: members of one class differ
    assert px3[5173] == pytest.approx(11.6, abs=0.05) and px3[5836] == pytest.approx(34.8, abs=0.05)
    assert store.energy("pi5-litert")[0] == pytest.approx(2.575322)
    # every device of the data README with a table in these files answers; edgegpu/edgetpu need HW-NAS-Bench
    names = set(store.latency_devices())
    expected = {"fpga", "eyeriss", "raspi4", "pixel3", "jetson-nano-fp16", "jetson-nano-fp32", "edgetpu-int8",
                "i7-7820x", "gtx1080ti-tf", "pi5-litert", "pi5-torchmobile", "pixel-nnapi", "pixel2", "gold_6226",
                "titan_rtx_256", "samsung_a50", "essential_ph_1", "silver_4114", "snapdragon855-gpu-int8",
                "snapdragon675-dsp-int8"}
    assert expected <= names and not {"edgegpu", "edgetpu", "local-cpu"} & names
    with pytest.raises(UserError, match="no latency data for device 'edgegpu'"):
        store.latency("edgegpu")
    with pytest.raises(UserError, match="unknown device 'pixle3'"):
        store.latency("pixle3")
    with pytest.raises(UserError, match="available"):
        store.accuracy("cifar100", "nope")
    # the values are keyed by cell: the view joins them back to arch strings
    row = store.conn.execute("SELECT value FROM hw_v WHERE arch_str = ? AND device = 'fpga'", (IDX0,)).fetchone()
    assert row[0] == pytest.approx(2.57296)


def test_raw_formats_match_tables(nb201_dir: Path, nb201_store: Store, tmp_path: Path) -> None:
    raw = nb201_dir / "raw"
    files = [nb201_dir / "arch_index.csv", raw / "nats-bench-landscape" / "nats_bench.csv",
             raw / "help_latency" / "fpga.pt", raw / "help_latency" / "pixel2.pt",
             raw / "help_latency" / "str_arch2idx.pt", raw / "help_latency" / "hardware_embedding_index.pt",
             raw / "eagle_latbench" / "mobile-cpu-snapdragon-450-cortex-a53-int8.pickle",
             raw / "eagle_latbench" / "desktop-cpu-core-i7-7820x-fp32.pickle"]
    rep = import_paths(files, tmp_path, trust_pickle=True)
    kinds = [p.kind for p in rep.imported]
    assert kinds[0] == "nb201-index" and "help-arch-index" in kinds and "help-embedding-index" in kinds
    with Store(tmp_path / STORE_FILENAME, devices=default_registry()) as s:
        for ds in ("cifar10", "cifar100", "ImageNet16-120"):
            np.testing.assert_allclose(s.accuracy(ds), nb201_store.accuracy(ds), rtol=0, atol=1e-9)
        for dev in ("fpga", "pixel2", "snapdragon450-cpu-int8", "i7-7820x"):
            np.testing.assert_allclose(s.latency(dev), nb201_store.latency(dev), rtol=1e-12, equal_nan=True)
        assert s.meta("help_hardware_embedding_index") == "11982,431,55,9,14451,8636,9881,13479,6196,1462"


def test_pickles_need_trust(nb201_dir: Path, tmp_path: Path) -> None:
    pkl = nb201_dir / "raw" / "eagle_latbench" / "embedded-tpu-edge-tpu-int8.pickle"
    with pytest.raises(ImportFileError, match="--trust-pickle"):
        import_paths([pkl], tmp_path / "p")
    with pytest.raises(UserError, match="no recognized benchmark files"):
        import_paths([nb201_dir / "raw" / "eagle_latbench"], tmp_path / "d")


def test_restricted_unpickler_refuses_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (subprocess.call, (["true"],))

    bad = tmp_path / "embedded-tpu-edge-tpu-int8.pickle"
    bad.write_bytes(pickle.dumps({(0, 0, 0, 0, 0, 1): Evil()}))
    with pytest.raises(ImportFileError, match="subprocess.call is not allowed"):
        import_paths([bad], tmp_path / "d", trust_pickle=True)


def _hwnasbench_file(nb201_dir: Path, path: Path, edgetpu_fail: int | None = None) -> Path:
    """A small genuine HW-NAS-Bench-structured pickle: the published idx 0-2 values + configs."""
    published = json.loads((nb201_dir / "hwnasbench_published_arch0-2.json").read_text())
    arch = {int(r[0]): r[1] for r in _csv_rows(nb201_dir / "arch_index.csv")[1:4]}
    classes = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
    nb: dict = {}
    for ds, ncls in classes.items():
        block: dict = {"config": [{"arch_str": arch[i], "C": 16, "N": 5, "num_classes": ncls} for i in range(3)]}
        for metric in published[f"{ds}|0"]:
            if metric != "average_hw_metric":
                block[metric] = [published[f"{ds}|{i}"][metric] for i in range(3)]
        if edgetpu_fail is not None:
            block["edgetpu_latency"][edgetpu_fail] = -1
        nb[ds] = block
    path.write_bytes(pickle.dumps({"nasbench201": nb}))
    return path


def test_hwnasbench_pickle(nb201_dir: Path, tmp_path: Path) -> None:
    published = json.loads((nb201_dir / "hwnasbench_published_arch0-2.json").read_text())
    f = _hwnasbench_file(nb201_dir, tmp_path / "HW-NAS-Bench-v1_0.pickle", edgetpu_fail=2)
    with pytest.raises(ImportFileError, match="--trust-pickle"):
        import_paths([f], tmp_path / "d")
    rep = import_paths([nb201_dir / "arch_index.csv", f], tmp_path / "d", trust_pickle=True)
    assert any("-1 (failed compile)" in n for n in rep.imported[1].notes)
    with Store(tmp_path / "d" / STORE_FILENAME, devices=default_registry()) as s:
        assert {"edgegpu", "edgetpu"} <= set(s.latency_devices())
        gpu = s.latency("edgegpu")  # preferred table: cifar10 setting
        assert gpu[:3] == pytest.approx([published[f"cifar10|{i}"]["edgegpu_latency"] for i in range(3)])
        assert np.isnan(gpu[3:]).all()
        assert s.latency("edgegpu", "cifar100")[1] == pytest.approx(published["cifar100|1"]["edgegpu_latency"])
        tpu = s.latency("edgetpu", "ImageNet16-120")
        assert tpu[0] == pytest.approx(published["ImageNet16-120|0"]["edgetpu_latency"]) and np.isnan(tpu[2])
        assert s.energy("fpga", "cifar100")[0] == pytest.approx(published["cifar100|0"]["fpga_energy"])
        # without the HELP table imported, the next preferred table of the fpga config serves
        assert s.latency_source("fpga") == "hwnasbench:fpga_latency:cifar10"
        assert s.hw_table("hwnasbench", "fpga_latency", "cifar10") is not None


def test_user_device_table(nb201_data_dir: Path, tmp_path: Path) -> None:
    with open_store(nb201_data_dir) as s:
        cells = s.cells()
    rows = [["arch_str", "latency_ms"], [cells[5].arch_str, "3.5"], [cells[9930].arch_str, "7.25"]]
    f = _write_csv(tmp_path / "board.csv", rows)
    d = tmp_path / "d"
    with pytest.raises(UserError, match="needs a device name"):
        import_paths([f], d)
    with pytest.raises(UserError, match="built-in device"):
        import_paths([f], d, device="pixel3")
    mine = _copy_store(nb201_data_dir, tmp_path / "mine")
    import_paths([f], mine, device="myboard")
    with open_store(mine) as s:
        lat = s.latency("myboard")
        assert lat[5] == 3.5 and lat[9930] == 7.25 and np.isfinite(lat).sum() == 2
        assert "myboard" in s.latency_devices()
        assert s.latency_source("myboard") == "user:myboard:unknown"


# --- bad files -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bad_dir(nb201_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with only the NB201 index, for rejection tests."""
    d = tmp_path_factory.mktemp("bad_store")
    import_paths([nb201_dir / "arch_index.csv"], d)
    return d


def _snapshot(d: Path) -> tuple:
    with Store(d / STORE_FILENAME) as s:
        c = s.counts()
        return (c["accuracy_values"], c["hw_values"], len(s.imports(1000)))


def test_bad_files_rejected_with_line(nb201_dir: Path, bad_dir: Path, tmp_path: Path) -> None:
    acc = _csv_rows(nb201_dir / "accuracy.csv")
    index = _csv_rows(nb201_dir / "arch_index.csv")
    before = _snapshot(bad_dir)
    cases = []
    text = (nb201_dir / "accuracy.csv").read_text().splitlines(keepends=True)
    trunc = tmp_path / "trunc.csv"
    trunc.write_text("".join(text[:5000]) + text[5000][:20])
    cases.append((trunc, ":5001: expected 11 fields"))
    cases.append((_write_csv(tmp_path / "short.csv", acc[:9001]), ":9001: only 9000 of 15625 cells"))
    wrong = [acc[0][:3] + ["c100_test_999ep"] + acc[0][4:]] + acc[1:]
    cases.append((_write_csv(tmp_path / "wrong.csv", wrong), ":1: wrong columns .*c100_test_999ep"))
    nan = [r.copy() for r in acc]
    nan[100][2] = "nan"
    cases.append((_write_csv(tmp_path / "nan.csv", nan), ":101: column 'c100_test_200ep__natstss'.*NaN"))
    dup = acc[:50] + [acc[20]] + acc[50:]
    cases.append((_write_csv(tmp_path / "dup.csv", dup), ":51: duplicate idx 19 \\(first on line 21\\)"))
    bad_arch = [r.copy() for r in index]
    bad_arch[7][1] = "|conv_5x5~0|" + bad_arch[7][1][bad_arch[7][1].index("+"):]
    cases.append((_write_csv(tmp_path / "badarch.csv", bad_arch), ":8: unknown arch string"))
    user = tmp_path / "user.csv"
    arch = index[1][1]
    _write_csv(user, [["arch_str", "latency_ms"], [arch, "1.0"], ["|foo~0|+|none~0|none~1|+|a~0|b~1|c~2|", "2"]])
    cases.append((user, ":3: unknown arch string"))
    user2 = _write_csv(tmp_path / "user2.csv", [["arch_str", "latency_ms"], [arch, "1.0"], [arch, "2.0"]])
    cases.append((user2, ":3: duplicate row"))
    user3 = _write_csv(tmp_path / "user3.csv", [["arch_str", "latency_ms"], [arch, "NaN"]])
    cases.append((user3, ":2: column 'latency_ms'.*NaN"))
    user4 = _write_csv(tmp_path / "user4.csv", [["arch_str", "latency"], [arch, "1"]])
    cases.append((user4, "unrecognized CSV header"))
    good = _write_csv(tmp_path / "good.csv", [["arch_str", "latency_ms"], [arch, "1.5"]])
    for f, pattern in cases:
        with pytest.raises(UserError, match=f"{f.name}{pattern}" if pattern.startswith(":") else pattern):
            # together with a good file: nothing of the import is kept
            import_paths([good, f], bad_dir, device="mydev")
    assert _snapshot(bad_dir) == before


def test_crash_during_write_keeps_previous_state(nb201_dir: Path, bad_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    before = _snapshot(bad_dir)
    calls = {"n": 0}
    real = Store.put_hw

    def dying_put_hw(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # as if the process were interrupted mid-import
        return real(self, *a, **k)

    monkeypatch.setattr(Store, "put_hw", dying_put_hw)
    with pytest.raises(KeyboardInterrupt):
        import_paths([nb201_dir / "latency_hw360_c100.csv"], bad_dir)
    assert calls["n"] == 3 and _snapshot(bad_dir) == before


def test_killed_writer_leaves_store_intact(bad_dir: Path) -> None:
    """A process that dies inside a write transaction (no rollback, no close) loses only its own rows."""
    before = _snapshot(bad_dir)
    code = (
        "import os, sys\n"
        "from hwdiffnas.store import Store\n"
        "s = Store(sys.argv[1])\n"
        "with s.transaction() as cur:\n"
        "    s.put_hw(cur, 'x', 'user', 'x', 'unknown', 'latency', 'f', list(range(100)), [1.0] * 100)\n"
        "    os._exit(9)\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(bad_dir / STORE_FILENAME)], timeout=120)
    assert r.returncode == 9
    assert _snapshot(bad_dir) == before
    conn = sqlite3.connect(bad_dir / STORE_FILENAME)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


# --- measurements --------------------------------------------------------------------------------------
def _writer(path: str, worker: int, n: int) -> None:
    s = Store(path)
    for i in range(n):
        s.record_measurement("local-cpu", f"run-{worker}", cell_from_key(i * 7),
                             stats={"median_ms": 1.0 + worker + i / 1000}, runtime="onnxruntime", host=f"h{worker}")
    s.close()


def test_concurrent_writers_and_resume(tmp_path: Path) -> None:
    d = tmp_path / "m"
    Store.create(d).close()
    path = str(d / STORE_FILENAME)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 60)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    with Store(path) as s:
        rows = s.measured("local-cpu")
        assert len(rows) == 120 and len({(r.run_id, r.cell) for r in rows}) == 120
        assert {r.host for r in s.measured("local-cpu", "run-1")} == {"h1"}
        # resuming run-0 re-records a cell: replaced, never duplicated
        first = s.measured("local-cpu", "run-0")[0]
        rid = s.record_measurement("local-cpu", "run-0", first.cell, status="failed", error="device lost")
        again = [r for r in s.measured("local-cpu", "run-0") if r.cell == first.cell]
        assert len(again) == 1 and again[0].status == "failed" and again[0].error == "device lost"
        assert rid > 0 and len(s.measured("local-cpu")) == len(rows)
        with pytest.raises(UserError, match="positive finite median_ms"):
            s.record_measurement("local-cpu", "run-0", first.cell, median_ms=float("nan"))


def test_measured_latency_is_median_of_runs(nb201_data_dir: Path, tmp_path: Path) -> None:
    with open_store(_copy_store(nb201_data_dir, tmp_path / "mine")) as s:
        cell = s.cells()[42]
        for run, ms in (("a", 2.0), ("b", 4.0), ("c", 3.0)):
            s.record_measurement("campaign-board", run, cell, median_ms=ms,
                                 settings={"threads": 1}, runtime="onnxruntime", runtime_version="1.18")
        s.record_measurement("campaign-board", "d", cell, status="failed", error="timeout")
        lat = s.latency("campaign-board")
        assert lat[42] == 3.0 and np.isfinite(lat).sum() == 1
        assert "campaign-board" in s.latency_devices()
        m = s.measured("campaign-board", "a")[0]
        assert m.settings == {"threads": 1} and m.stats == {"median_ms": 2.0} and m.runtime_version == "1.18"
        assert len(s.measured("campaign-board", status="failed")) == 1


def test_bad_raw_payloads(tmp_path: Path, bad_dir: Path) -> None:
    import torch

    name = "embedded-tpu-edge-tpu-int8.pickle"
    for payload, msg in [({(0, 0, 0, 0, 0, 7): 0.001}, "op index 7 out of range"),
                         ({(0, 1, 0, 0, 0, 1): -1.0}, "not a latency in seconds"),
                         ({(0, 1, 0): 0.001}, "not a 6-tuple")]:
        d = tmp_path / str(len(msg))
        d.mkdir()
        (d / name).write_bytes(pickle.dumps(payload))
        with pytest.raises(ImportFileError, match=msg):
            import_paths([d / name], tmp_path / "store", trust_pickle=True)
    for payload, msg in [(["a"] * 15625, "expected a list of numbers"), ([1.0] * 100, "100 values, expected 15625"),
                         ({"x": torch.zeros(3)}, "dict payload must map")]:
        f = tmp_path / "fpga.pt"
        torch.save(payload, f)
        with pytest.raises(ImportFileError, match=msg):
            import_paths([f], bad_dir)


def test_store_resolves_configured_devices_only_through_the_catalog_it_is_given(nb201_data_dir: Path) -> None:
    """The store reads no device config: opened without one it lists only user tables and campaigns and finds a
    configured device by its stored name alone (no aliases, no preference order); `open_store` passes the
    registry."""
    with Store(nb201_data_dir / STORE_FILENAME) as bare:
        assert "fpga" not in bare.latency_devices()
        with pytest.raises(UserError, match="unknown device 'pixel-3'"):
            bare.latency("pixel-3")  # an alias of pixel3, known from its config only
    with open_store(nb201_data_dir) as store:
        assert "fpga" in store.latency_devices()
        assert store.latency_source("fpga") == "help:hwnb_c10_fpga:cifar10"
        assert store.latency_source("pixel-3") == "help:hwnb_c10_pixel3:cifar10"
