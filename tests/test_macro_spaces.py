"""The FBNet and NAS-Bench-Macro spaces behind the SearchSpace interface."""

from __future__ import annotations

import pytest

from hwdiffnas.errors import UserError
from hwdiffnas.plugins import get_space
from hwdiffnas.spaces.base import SearchSpace


def test_fbnet_and_macro_are_installed_spaces() -> None:
    from hwdiffnas.plugins import space_names

    assert {"nb201", "fbnet", "nasbench_macro"} <= set(space_names())


def test_fbnet_space_answers_the_interface() -> None:
    sp = get_space("fbnet")
    assert isinstance(sp, SearchSpace) and sp.size == 9 ** 22 and not sp.finite
    arch = sp.parse("7818488874147327324245")
    assert sp.format(arch) == "7818488874147327324245" and sp.decode(sp.encode(arch)) == arch
    assert sp.canonical(arch) == arch and sp.is_valid(arch)
    enc = sp.encoding
    assert (enc.positions, len(enc.choices), enc.nodes) == (22, 9, 24)
    assert len(sp.neighbours(arch, 1)) == 1 + 22 * 8
    assert sp.features(sp.sample(3, seed=1)).shape == (3, 198)
    assert len(sp.reference_archs()) == 10 and sp.format(sp.reference_archs()[0]) == "1866803437874325730137"
    assert set(sp.datasets) == {"cifar100", "cifar10", "imagenet"}
    assert sp.input_shape("imagenet") == (1, 3, 224, 224)
    assert sp.size_counts(arch, "cifar100")[1] == 1_790_500
    assert sp.size_counts(arch, "imagenet")[1] == 3_794_920
    with pytest.raises(UserError, match="cannot be enumerated"):
        next(sp.enumerate())
    with pytest.raises(UserError, match="looks like a NAS-Bench-201 arch string"):
        sp.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    with pytest.raises(UserError, match="no dataset setting 'ImageNet16-120'"):
        sp.materialize(arch, "ImageNet16-120")


def test_fbnet_reference_architectures_are_helps_rows(fbnet_dir) -> None:
    from hwdiffnas.spaces.fbnet.data import HELP_REFERENCE_IDX, read_fbnet_tables

    tables = read_fbnet_tables(fbnet_dir)
    sp = get_space("fbnet")
    assert [sp.format(a) for a in sp.reference_archs()] == [tables.op_string(i) for i in HELP_REFERENCE_IDX]


def test_macro_space_answers_the_interface() -> None:
    from hwdiffnas.materialize import count_parameters

    sp = get_space("nasbench_macro")
    archs = list(sp.enumerate())
    assert len(archs) == sp.size == 6561
    assert len({sp.equivalence_key(a) for a in archs}) == 3969
    arch = sp.parse("22212202")
    assert sp.format(sp.canonical(arch)) == "22212220"
    assert sp.encoding.positions == 8 and sp.features([arch]).shape == (1, 24)
    net = sp.materialize(arch, "cifar10")
    assert count_parameters(net) == sp.size_counts(arch, "cifar10")[1] == 1_985_514
    with pytest.raises(UserError, match="known: cifar10"):
        sp.materialize(arch, "cifar100")


def test_latency_command_answers_from_the_lookup_tables(tmp_path, capsys) -> None:
    import json

    from hwdiffnas.cli import main

    archs = tmp_path / "archs.txt"
    archs.write_text("# two architectures\n0000000000000000000000\n7818488874147327324245\n")
    assert main(["latency", "--space", "fbnet", "--device", "fpga", "--arch-file", str(archs), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dataset"] == "cifar100" and [r["source"] for r in out["latencies"]] == ["lut", "lut"]
    assert out["latencies"][0]["latency_ms"] == pytest.approx(10.74, abs=0.005)
    assert out["latencies"][1]["latency_ms"] == pytest.approx(25.30272, abs=1e-6)  # HELP's row idx 0


@pytest.mark.parametrize(("argv", "needle"), [
    (["--device", "jetson-nano-fp16"], "has no latency data in space 'fbnet' (cifar100); devices with data: 1080ti_1"),
    (["--device", "raspi4", "--dataset", "imagenet"], "no latency table exists for space 'fbnet' in the 'imagenet'"),
    (["--device", "raspi4", "--arch", "3,3,4,1,3,1"], "like a NAS-Bench-201 cell"),
    (["--device", "raspi4", "--arch", "78184888741473273242"], "has 20 characters; it needs 22"),
    (["--device", "raspi4"], "give architectures with --arch"),
])
def test_latency_command_bad_input(argv: list[str], needle: str, capsys) -> None:
    from hwdiffnas.cli import main

    base = ["latency", "--space", "fbnet"]
    extra = [] if "--arch" in argv or argv == ["--device", "raspi4"] else ["--arch", "0" * 22]
    assert main(base + argv + extra) == 2
    assert needle in capsys.readouterr().err


def test_latency_command_in_the_nb201_space_reads_the_store(capsys) -> None:
    import json

    from hwdiffnas.cli import main

    assert main(["latency", "--device", "pixel3", "--arch", "3,3,4,1,3,1", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["latencies"][0]
    assert row["source"].startswith("table:help:hwnb_c10_pixel3") and row["latency_ms"] == row["upper_ms"]
    assert main(["latency", "--space", "nasbench_macro", "--device", "raspi4", "--arch", "22212220"]) == 2
    assert "no latency table exists for space 'nasbench_macro'" in capsys.readouterr().err


def test_devices_per_space(capsys) -> None:
    import json

    from hwdiffnas.cli import main

    assert main(["devices", "--space", "fbnet", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    by_name = {d["name"]: d for d in out["devices"]}
    assert {"fpga", "eyeriss", "raspi4", "pixel3", "gold_6226", "titanxp_64"} <= set(by_name)
    assert by_name["raspi4"]["tables"][0] | {"status": ""} == {"source": "lut", "column": "raspi4",
                                                               "setting": "cifar100", "status": ""}
    assert "exact lookup table" in by_name["fpga"]["tables"][0]["status"]
    assert "jetson-nano-fp16" not in by_name  # no data in this space
    assert main(["devices", "--json"]) == 0  # the NB201 listing keeps its keys; fpga's NB201 tables unchanged
    fpga = {d["name"]: d for d in json.loads(capsys.readouterr().out)["devices"]}["fpga"]
    assert all(t["space"] == "nb201" for t in fpga["tables"]) and fpga["space_tables"]["fbnet"][0]["source"] == "lut"


@pytest.mark.parametrize(("table", "needle"), [
    ({"space": "darts", "source": "help", "column": "x"}, "space = 'darts' is not one of nb201, fbnet"),
    ({"source": "lut", "column": "x"}, "source = 'lut' is not one of help, eagle, hw360, hwnasbench, measured"),
    ({"space": "fbnet", "source": "eagle", "column": "x"}, "source = 'eagle' is not one of help, lut, measured"),
])
def test_device_config_space_tables_are_validated(table: dict, needle: str) -> None:
    from hwdiffnas.devices import parse_device_config

    doc = {"name": "board", "description": "d", "kind": "sbc", "tables": [table]}
    with pytest.raises(UserError, match=needle.replace("(", r"\(")):
        parse_device_config(doc, "board.toml")


def test_shipped_help_tables_equal_the_csvs(fbnet_dir) -> None:
    import numpy as np

    from hwdiffnas.spaces.fbnet.data import read_fbnet_tables
    from hwdiffnas.spaces.fbnet.help_tables import load_help_tables

    csv, shipped = read_fbnet_tables(fbnet_dir), load_help_tables()
    assert np.array_equal(csv.ops, shipped.ops) and set(csv.latency_ms) == set(shipped.latency_ms)
    assert all(np.array_equal(csv.latency_ms[d], shipped.latency_ms[d]) for d in csv.latency_ms)


def test_measured_device_rows_are_exact_and_others_estimated_with_a_bound(capsys) -> None:
    import json

    from hwdiffnas.cli import main
    from hwdiffnas.spaces.fbnet.help_tables import load_help_tables

    row7 = load_help_tables().op_string(7)
    assert main(["latency", "--space", "fbnet", "--device", "titan_rtx_1", "--arch", row7, "--arch", "0" * 22,
                 "--json"]) == 0
    exact, est = json.loads(capsys.readouterr().out)["latencies"]
    assert exact["source"] == "table:help:titan_rtx_1" and exact["latency_ms"] == exact["upper_ms"]
    assert est["source"] == "estimate" and est["upper_ms"] > est["latency_ms"] > 0


def test_rows_predictor_ranks_held_out_architectures() -> None:
    import numpy as np
    from scipy.stats import spearmanr

    from hwdiffnas.predictors.rows import fit_rows_predictor

    sp = get_space("fbnet")
    rows = sp.measured_rows("cifar100")["titan_rtx_1"]
    perm = np.random.default_rng(0).permutation(len(rows.archs))  # HELP's row order is not exchangeable
    x = sp.features([sp.parse(rows.archs[i]) for i in perm])
    y = np.asarray(rows.latency_ms)[perm]
    pred = fit_rows_predictor(x[:4000], y[:4000])
    point, upper = pred.point_and_upper(x[4000:], 0.05)
    assert spearmanr(point, y[4000:])[0] > 0.98
    assert 0.92 < float(np.mean(y[4000:] <= upper)) < 0.98


def test_a_new_board_from_its_rows_through_the_other_devices(tmp_path, capsys) -> None:
    import json

    import numpy as np
    from scipy.stats import spearmanr

    from hwdiffnas.cli import main
    from hwdiffnas.spaces.fbnet.help_tables import load_help_tables

    tables = load_help_tables()
    lat = tables.latency_ms["gold_6240"]
    table = tmp_path / "board.csv"
    table.write_text("arch,latency_ms\n" + "".join(f"{tables.op_string(i)},{lat[i]}\n" for i in range(40)))
    probe = list(range(4000, 4060))
    argv = ["latency", "--space", "fbnet", "--device-table", str(table), "--json"]
    for i in probe:
        argv += ["--arch", tables.op_string(i)]
    assert main(argv + ["--arch", tables.op_string(3)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["device"] == "board" and out["latencies"][-1]["source"] == "measured:board"
    est = [r["latency_ms"] for r in out["latencies"][:-1]]
    assert spearmanr(est, lat[probe])[0] > 0.85  # the board's other devices-shaped estimate
    bad = tmp_path / "bad.csv"
    bad.write_text("arch,ms\n0000000000000000000000,1\n")
    assert main(["latency", "--space", "fbnet", "--device-table", str(bad), "--arch", "0" * 22]) == 2
    assert "needs the columns arch,latency_ms" in capsys.readouterr().err
    assert np.isfinite(est).all()


def test_optimum_command_is_exact_and_refuses_what_is_not_additive(capsys) -> None:
    import json

    from hwdiffnas.cli import main
    from hwdiffnas.spaces.fbnet.lut import load_latency_models
    from hwdiffnas.spaces.fbnet.optimum import exact_optimum

    assert main(["optimum", "--device", "pixel3", "--budget", "17.711ms", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    best = exact_optimum(load_latency_models()["pixel3"], 17.711, "flops")
    assert out["arch"] == best.arch.op_string and out["value"] == best.value and out["latency_ms"] <= 17.711
    assert out["objective_source"] == "objective:flops" and out["latency_source"] == "lut"
    assert main(["optimum", "--device", "pixel3", "--budget", "p50", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["budget_ms"] == pytest.approx(17.711, abs=1e-3)  # HELP's median
    for argv, needle in ((["--budget", "5ms"], "below the fastest FBNet architecture on 'raspi4' (7.798"),
                         (["--budget", "p50", "--objective", "zen"], "objective 'zen' is not a sum over layers"),
                         (["--budget", "p50", "--objective", "accuracy"], "not a sum over layers")):
        assert main(["optimum", "--device", "raspi4", *argv]) == 2
        assert needle in capsys.readouterr().err
    assert main(["optimum", "--device", "gold_6226", "--budget", "50ms"]) == 2
    assert "needs additive latency" in capsys.readouterr().err
    assert main(["optimum", "--space", "nb201", "--device", "fpga", "--budget", "5ms"]) == 2
    assert "has no exact method" in capsys.readouterr().err


def test_data_import_of_the_fbnet_folder(fbnet_dir, tmp_path, capsys) -> None:
    import shutil

    from hwdiffnas.cli import main

    assert main(["--data-dir", str(tmp_path / "d"), "data", "import", str(fbnet_dir)]) == 0
    out = capsys.readouterr().out
    assert "identical to the copy shipped in the package" in out and "nothing imported" in out
    changed = tmp_path / "fb"
    shutil.copytree(fbnet_dir, changed)
    lines = (changed / "latency_help_ms.csv").read_text().splitlines()
    head, first = lines[0], lines[1].split(",")
    first[1] = "99.5"
    (changed / "latency_help_ms.csv").write_text("\n".join([head, ",".join(first), *lines[2:]]) + "\n")
    assert main(["--data-dir", str(tmp_path / "d"), "data", "import", str(changed)]) == 2
    assert "differ from the tables shipped in the package" in capsys.readouterr().err


def test_export_command_validates_fbnet_on_outputs_of_order_one(tmp_path, capsys) -> None:
    import json

    from hwdiffnas.cli import main

    assert main(["export", "--space", "fbnet", "--arch", "7818488874147327324245", "--format", "onnx",
                 "-o", str(tmp_path) + "/", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    text = json.dumps(out)
    assert "fbnet-7818488874147327324245-cifar100.onnx" in text
    validation = out["validation"] if "validation" in out else out["exports"][0]["validation"]
    assert validation["passed"] and validation["max_abs_output"] > 0.3


@pytest.mark.parametrize(("argv", "needle"), [
    (["export", "--arch", "7818488874147327324245", "--format", "onnx"], "search space fbnet (use --space fbnet)"),
    (["export", "--space", "fbnet", "--arch", "3,3,4,1,3,1", "--format", "onnx"], "(use --space nb201 for cells)"),
    (["export", "--space", "nasbench_macro", "--dataset", "cifar10", "--arch", "0" * 22, "--format", "onnx"],
     "search space fbnet (use --space fbnet)"),
])
def test_an_architecture_of_another_space_is_named(argv: list[str], needle: str, tmp_path, capsys) -> None:
    from hwdiffnas.cli import main

    assert main([*argv, "-o", str(tmp_path) + "/"]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("--space") == 1


def test_fbnet_declares_its_calibrated_default_objective() -> None:
    from hwdiffnas.objectives import get_objective

    sp = get_space("fbnet")
    assert sp.default_objective == "naswot" and sp.describe()["default_objective"] == "naswot"
    assert get_objective(sp.default_objective).source == "objective:naswot"
    assert get_space("nb201").default_objective is None
