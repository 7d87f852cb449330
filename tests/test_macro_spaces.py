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
    (["--device", "pixel2"], "has no latency data in space 'fbnet' (cifar100); devices with data: eyeriss, fpga"),
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
