"""The benchmark tables shipped inside the package: exact against the CSVs, used without a data directory."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from hwdiffnas.cli import main
from hwdiffnas.space import Cell

ASSETS = Path(__file__).resolve().parents[1] / "hwdiffnas" / "assets"
GRID = ("p25", "p50", "p75")


def _csv_columns(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def test_packaged_tables_equal_the_csvs_value_for_value(nb201_dir: Path) -> None:
    """Every shipped value is bit for bit the CSV's (parsed as float64), in NB201 index order; the index too."""
    from hwdiffnas.packaged import load_tables, shipped_columns
    from hwdiffnas.store import cell_key

    tables = load_tables()
    header, rows = _csv_columns(nb201_dir / "arch_index.csv")
    col = {h: i for i, h in enumerate(header)}
    assert [int(r[col["idx"]]) for r in rows] == list(range(15625))
    keys = [cell_key(Cell(tuple(int(r[col[f"op_e{e}"]]) for e in range(6)))) for r in rows]
    assert tables.idx_to_key.tolist() == keys
    assert tables.iso_rep_idx.tolist() == [int(r[col["iso_rep_idx"]]) for r in rows]
    for file in ("accuracy.csv", "latency_help_ms.csv"):
        header, rows = _csv_columns(nb201_dir / file)
        assert [int(r[0]) for r in rows] == list(range(15625))
        shipped = shipped_columns()[file]
        expected = [c for c in header[1:] if file != "accuracy.csv" or c.endswith("__natstss")]
        assert shipped == expected  # every licensed column, and only those
        for c in shipped:
            j = header.index(c)
            ref = np.array([float(r[j]) if r[j].strip() else math.nan for r in rows], dtype=np.float64)
            assert tables.columns[(file, c)].tobytes() == ref.tobytes(), (file, c)
    # the tables without a clear licence are not shipped
    assert set(shipped_columns()) == {"accuracy.csv", "latency_help_ms.csv"}


def test_package_assets_stay_under_the_cap() -> None:
    sizes = {p.name: p.stat().st_size for p in ASSETS.iterdir() if p.is_file()}
    assert "nb201_tables.safetensors" in sizes and "NB201_TABLES_LICENSE.md" in sizes
    assert sum(sizes.values()) <= 20e6, sizes


def test_encoding_round_trips_ties_exactly() -> None:
    """Few distinct values take the values + codes form, many the raw form; both decode to the same bits."""
    from hwdiffnas.packaged import decode_column, encode_column

    rng = np.random.default_rng(0)
    many = rng.uniform(0, 100, 15625)
    many[::7] = many[1]  # ties survive
    few = rng.choice(np.array([1.0, 2.5, 1 / 3, 7.0]), 15625)
    for values in (many, few):
        enc = encode_column(values)
        arrays = {f"c{k}": v for k, v in enc.items()}
        assert decode_column(arrays, "c").tobytes() == values.tobytes()
    assert set(encode_column(few)) == {".values", ".codes"} and set(encode_column(many)) == {""}


def test_packaged_store_answers_like_the_imported_store(nb201_store, tmp_path: Path) -> None:
    """Same devices' latencies, same accuracies, same sources, same oracle picks at the 25/50/75 % budgets."""
    from hwdiffnas.benchmark import oracle, parse_budget
    from hwdiffnas.packaged import packaged_store

    with packaged_store(tmp_path) as store:
        devices = store.latency_devices()
        assert {"fpga", "eyeriss", "raspi4", "pixel3", "pixel2", "gold_6226", "titan_rtx_256"} <= set(devices)
        assert not {"jetson-nano-fp16", "edgetpu-int8", "pi5-litert", "pixel-nnapi"} & set(devices)
        assert store.cells() == nb201_store.cells()
        assert np.array_equal(store.connected(), nb201_store.connected())
        for ds in ("cifar10", "cifar100", "ImageNet16-120"):
            assert store.accuracy(ds).tobytes() == nb201_store.accuracy(ds).tobytes()
        acc, conn, cells = store.accuracy("cifar100"), store.connected(), store.cells()
        for d in devices:
            lat = store.latency(d)
            assert lat.tobytes() == nb201_store.latency(d).tobytes(), d
            assert store.latency_source(d) == nb201_store.latency_source(d)
            for q in GRID:
                b = parse_budget(q, lat, conn)
                assert oracle(acc, lat, b, conn, cells) == oracle(nb201_store.accuracy("cifar100"),
                                                                  nb201_store.latency(d), b, conn, cells)
    # built once, then reused
    built = list((tmp_path / "packaged").glob("nb201-tables-*.sqlite"))
    assert len(built) == 1
    mtime = built[0].stat().st_mtime_ns
    packaged_store(tmp_path).close()
    assert built[0].stat().st_mtime_ns == mtime


def test_commands_without_a_data_directory_answer_from_the_packaged_tables(
        nb201_data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["oracle", "--device", "pixel3", "--budget", "10ms", "--json"]) == 0
    packaged = json.loads(capsys.readouterr().out)
    assert main(["--data-dir", str(nb201_data_dir), "oracle", "--device", "pixel3", "--budget", "10ms",
                 "--json"]) == 0
    assert packaged == json.loads(capsys.readouterr().out)
    assert main(["bench", "--device", "fpga", "--budget", "p50", "--method", "random", "--queries", "20",
                 "--seeds", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["grid"][0]["oracle"]["accuracy"] > 0
    assert main(["search", "--device", "pixel3", "--budget", "10ms", "--samples", "60", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["queries"] > 0 and out["results"]
    assert all(r["latency_source"] == "table:help:hwnb_c10_pixel3:cifar10" for r in out["results"])
    assert out["results"][0]["accuracy_source"] == "benchmark:nats"
    assert any("tables shipped in the package" in n for n in out["notes"])


def test_unshipped_device_keeps_the_estimate_and_devices_says_why(capsys: pytest.CaptureFixture) -> None:
    assert main(["search", "--device", "jetson-nano-fp16", "--budget", "p50", "--samples", "60", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {r["latency_source"] for r in out["results"]} == {"estimate"}
    assert out["results"][0]["accuracy_source"] == "benchmark:nats"  # the accuracy table is shipped
    assert main(["devices", "--json"]) == 0
    shipped = {d["name"]: d["shipped"] for d in json.loads(capsys.readouterr().out)["devices"]}
    assert shipped["pixel3"] == "yes, help:hwnb_c10_pixel3 (MIT)"
    assert shipped["jetson-nano-fp16"].startswith("no (Eagle/LatBench: no clear data licence")
    assert shipped["pi5-litert"].startswith("no (HW-NAS-Bench-360: no clear data licence")


def test_campaign_store_is_never_the_packaged_one(tmp_path: Path) -> None:
    from hwdiffnas.benchmark import open_store
    from hwdiffnas.errors import UserError

    with pytest.raises(UserError, match="no benchmark store"):
        open_store(tmp_path, require_accuracy=False, packaged=False)


def test_damaged_or_unwritable_cache_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hwdiffnas import packaged

    packaged.packaged_store(tmp_path).close()
    (built,) = (tmp_path / "packaged").glob("nb201-tables-*.sqlite")
    built.write_bytes(b"not a database")
    with packaged.packaged_store(tmp_path) as store:
        assert store.has_index() and "pixel3" in store.latency_devices()
    # a data directory the store cannot be written into: a private temporary folder instead
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the data directory should be")
    with packaged.packaged_store(blocked) as store:
        assert store.path.parent != blocked / "packaged" and "fpga" in store.latency_devices()


def test_bench_grid_without_data_skips_unshipped_devices(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture) -> None:
    """Without a data directory the default grid runs the shipped devices and says which it skipped (before, it
    ran them and then stopped with an error at the first unshipped device); naming such a device is an error."""
    from hwdiffnas import harness

    monkeypatch.setattr(harness, "HELP_GRID", {"fpga": ("5ms",)})
    monkeypatch.setattr(harness, "QUANTILE_DEVICES", ("pixel3", "jetson-nano-fp16"))
    argv = ["bench", "--grid", "--method", "random", "--seeds", "1", "--queries", "2"]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [e["device"] for e in out["grid"]] == ["fpga", "pixel3", "pixel3", "pixel3"]
    assert out["skipped_devices"] == ["jetson-nano-fp16"]
    assert main([*argv, "--grid-devices", "jetson-nano-fp16"]) == 2
    assert "no latency table for jetson-nano-fp16" in capsys.readouterr().err


def test_packaged_tables_agree_with_the_committed_slice(nb201_slice, tmp_path: Path) -> None:
    """The tables shipped in the package hold, for the 300 cells of the real-format slice, the slice's NATS
    accuracies and HELP latencies at the slice's NB201 indices (no data directory needed)."""
    from hwdiffnas.benchmark import open_store

    columns = {"cifar10": "c10_test_200ep__natstss", "cifar100": "c100_test_200ep__natstss",
               "ImageNet16-120": "in16_test_200ep__natstss"}
    devices = {"raspi4": "hwnb_c10_raspi4", "pixel3": "hwnb_c10_pixel3", "fpga": "hwnb_c10_fpga"}
    with open_store(tmp_path / "no-store") as s:
        cells, connected = s.cells(), s.connected()
        for i, row in nb201_slice["arch_index"].items():
            assert cells[i].arch_str == row["arch_str"] and bool(connected[i]) == (row["connected"] == "True")
        for ds, col in columns.items():
            acc = s.accuracy(ds)
            for i, row in nb201_slice["accuracy"].items():
                assert acc[i] == pytest.approx(float(row[col]), abs=1e-9)
        for dev, col in devices.items():
            lat = s.latency(dev)
            for i, row in nb201_slice["latency_help_ms"].items():
                want = float(row[col]) if row[col] else math.nan
                assert (math.isnan(want) and math.isnan(lat[i])) or lat[i] == pytest.approx(want, rel=1e-12)
