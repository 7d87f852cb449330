"""Inputs that used to end in tracebacks or be accepted silently: non-finite options, unwritable outputs found
only after a campaign, checkpoint configs with wrong types or unbounded sizes."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hwdiffnas.cli import main
from hwdiffnas.errors import UserError


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_search_guidance_scale_must_be_finite(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["search", "--device", "pixel3", "--budget", "10ms", "--samples", "10", f"--guidance-scale={value}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--guidance-scale" in err and "not a finite number" in err and "Traceback" not in err


def test_campaign_table_out_is_checked_before_measuring(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for target, why in ((tmp_path / "missing" / "t.csv", "does not exist"), (tmp_path, "is a folder")):
        assert main(["--data-dir", str(tmp_path), "campaign", "--device", "local-cpu", "--n", "2", "--warmup", "0",
                     "--runs", "1", "--no-progress", "--table-out", str(target)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("hwdiffnas: error: --table-out") and why in err and "\n" not in err
    db = tmp_path / "hwdiffnas.sqlite"
    if db.exists():  # nothing was measured
        conn = sqlite3.connect(db)
        assert conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == 0
        conn.close()


def _checkpoint(tmp_path: Path, edit: Any) -> Path:
    from safetensors.torch import load_file, save_file

    from hwdiffnas.generator import default_checkpoint_path
    from hwdiffnas.generator.model import META_KEY, Generator

    body = json.loads(Generator.load(default_checkpoint_path()).meta.to_json())
    edit(body)
    path = tmp_path / "edited.safetensors"
    save_file(load_file(str(default_checkpoint_path())), str(path), metadata={META_KEY: json.dumps(body)})
    return path


def _first_device(body: dict[str, Any]) -> dict[str, Any]:
    return next(iter(body["devices"].values()))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda b: b.update(devices=list(b["devices"])), "devices must be a mapping"),
    (lambda b: b.update(timesteps=10**8), "timesteps=100000000 must be an integer in 1..10000"),
    (lambda b: b.update(timesteps=0), "timesteps=0"),
    (lambda b: b.update(timesteps=2.5), "timesteps=2.5"),
    (lambda b: b["denoiser"].update(d_model=10**6), "d_model=1000000 must be an integer in 1..4096"),
    (lambda b: b["denoiser"].update(layers=True), "layers=True"),
    (lambda b: b["denoiser"].update(extra=1), "exactly d_model"),
    (lambda b: _first_device(b)["quantiles_ms"].__setitem__(100, math.nan), "quantiles_ms (201 finite numbers)"),
    (lambda b: _first_device(b)["quantiles_ms"].__setitem__(100, -1.0), "non-decreasing"),
    (lambda b: _first_device(b)["rep"].__setitem__(0, math.inf), "rep (11 finite numbers)"),
    (lambda b: b["marginals"].__setitem__(0, math.nan), "marginals must be 5 finite"),
    (lambda b: b.update(datasets="cifar100"), "datasets must be a non-empty list"),
    (lambda b: b.update(step=-1), "step=-1"),
])
def test_checkpoint_config_types_and_bounds(tmp_path: Path, edit: Any, message: str) -> None:
    from hwdiffnas.generator.model import Generator

    path = _checkpoint(tmp_path, edit)
    with pytest.raises(UserError) as exc:
        Generator.load(path)
    assert message in str(exc.value) and str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_checkpoint_with_devices_as_a_list_is_one_line_in_search(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = _checkpoint(tmp_path, lambda b: b.update(devices=list(b["devices"])))
    assert main(["search", "--device", "pixel3", "--budget", "10ms", "--samples", "10", "--checkpoint",
                 str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hwdiffnas: error: ") and "devices must be a mapping" in err and "\n" not in err
