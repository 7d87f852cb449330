from pathlib import Path

import pytest

from hwdiffnas.devices import DeviceRegistry, builtin_config_dir, load_device_file, parse_device_config
from hwdiffnas.errors import UserError

REQUIRED = ["edgegpu", "jetson-nano-fp16", "jetson-nano-fp32", "raspi4", "pi5-litert", "pi5-torchmobile", "pixel3",
            "pixel-nnapi", "pixel2", "fpga", "eyeriss", "edgetpu", "edgetpu-int8", "local-cpu"]


def test_builtin_devices_load_and_cover_required_names():
    reg = DeviceRegistry.load()
    for name in REQUIRED:
        assert name in reg
    assert reg.get("fpga").table_only and reg.get("eyeriss").table_only
    assert reg.get("local-cpu").measure.route == "local"
    assert reg.get("pixel-3").name == "pixel3"  # alias


def test_every_builtin_file_names_itself():
    for path in builtin_config_dir().glob("*.toml"):
        assert load_device_file(path).name == path.stem


def test_help_and_hw360_columns_are_mapped(nb201_dir):
    import csv

    reg = DeviceRegistry.load()
    mapped = {(t.source, t.column) for d in reg for t in d.tables}
    files = {"help": "latency_help_ms.csv", "eagle": "latency_eagle_ms.csv", "hw360": "latency_hw360_c100.csv"}
    for source, fname in files.items():
        with open(nb201_dir / fname, newline="") as fh:
            header = next(csv.reader(fh))
        for col in header:
            if col in ("idx", "iso_rep_idx"):
                continue
            assert (source, col) in mapped, f"{fname}:{col} serves no device"


def test_unknown_device_lists_known():
    with pytest.raises(UserError, match=r"unknown device 'pixle3' \(did you mean 'pixel3'\?\); known: .*pixel3"):
        DeviceRegistry.load().get("pixle3")


@pytest.mark.parametrize("doc,match", [
    ({"name": "x", "description": "d", "kind": "phone", "colour": "red"}, "unknown key"),
    ({"name": "x", "description": "d"}, "missing key"),
    ({"name": "x", "description": "d", "kind": "toaster"}, "kind"),
    ({"name": "x", "description": "d", "kind": "phone", "tables": [{"source": "help"}]}, "missing key"),
    ({"name": "x", "description": "d", "kind": "phone", "measure": {"route": "carrier-pigeon"}}, "route"),
    ({"name": "x", "description": "d", "kind": "phone", "measure": {"route": "adb"}}, "needs a runtime"),
    ({"name": "x", "description": "d", "kind": "phone", "measure": {"runs": 0}}, "runs"),
])
def test_invalid_configs_are_rejected(doc, match):
    with pytest.raises(UserError, match=match):
        parse_device_config(doc)


def test_user_folder_adds_and_overrides(tmp_path: Path, monkeypatch):
    (tmp_path / "myboard.toml").write_text(
        'name = "myboard"\ndescription = "my board"\nkind = "sbc"\n'
        '[measure]\nroute = "agent"\nruntime = "onnxruntime"\nthreads = 4\n')
    (tmp_path / "broken.toml").write_text("name = ")
    with pytest.raises(UserError, match="invalid TOML"):
        DeviceRegistry.load([tmp_path])
    (tmp_path / "broken.toml").unlink()
    reg = DeviceRegistry.load([tmp_path])
    assert reg.get("myboard").measure.threads == 4
    monkeypatch.setenv("HWDIFFNAS_DEVICE_CONFIGS", str(tmp_path))
    assert "myboard" in DeviceRegistry.load()
    with pytest.raises(UserError, match="does not exist"):
        DeviceRegistry.load([tmp_path / "nope"])
