"""Exact additive latency for the FBNet space: a per-block lookup table fitted to published totals.

HW-NAS-Bench computes this space's latency on its devices as a sum of per-block lookup-table entries, one
per (layer configuration, block), plus the fixed stem and head. Layers with the same configuration (input and
output channels, stride and input resolution: the 2nd–4th layers of a stage) share their entries, so a
CIFAR-setting table holds 12 configurations × 9 blocks.

The totals determine the entries only up to one offset per configuration (adding c to every block of a
configuration and subtracting c from the constant changes no total). Pinning: each entry is stored as the
latency **above the cheapest block of its configuration** (so every entry is ≥ 0 and the cheapest block of
each configuration is 0), and the constant is the latency of the architecture made of the cheapest block in
every layer. Source of such latencies: ``lut``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from hwdiffnas import ASSETS_DIR
from hwdiffnas.errors import UserError
from hwdiffnas.spaces.fbnet.arch import LAYER_SLOTS, NUM_BLOCKS, NUM_LAYERS, STAGE_LAYERS, FBNetArch, archs_to_matrix
from hwdiffnas.spaces.fbnet.network import fbnet_setting


def layer_configurations(dataset: str) -> tuple[int, ...]:
    """Configuration id of each of the 22 layers: layers with equal (C_in, C_out, stride, input side) share one."""
    setting = fbnet_setting(dataset)
    side = setting.input_size // setting.stem_stride
    keys: dict[tuple[int, int, int, int], int] = {}
    out = []
    for slot, stride in zip(LAYER_SLOTS, setting.layer_strides()):
        key = (slot.c_in, slot.c_out, stride, side)
        out.append(keys.setdefault(key, len(keys)))
        side //= stride
    assert len(out) == NUM_LAYERS == sum(STAGE_LAYERS)
    return tuple(out)


@dataclass(frozen=True)
class AdditiveLatencyModel:
    """Latency = ``constant_ms`` + Σ_layers ``table_ms[layer, block]`` (milliseconds, batch 1)."""

    device: str
    dataset: str
    table_ms: np.ndarray  # (22, 9), ≥ 0, cheapest block of each configuration at 0
    constant_ms: float
    fit_rows: int
    fit_max_abs_error_ms: float

    def latency_ms(self, arch: FBNetArch) -> float:
        """Latency of one architecture."""
        return float(self.constant_ms + self.table_ms[np.arange(NUM_LAYERS), arch.ops].sum())

    def latency_batch_ms(self, ops: np.ndarray) -> np.ndarray:
        """(n,) latencies of an (n, 22) matrix of block ids."""
        ops = np.asarray(ops, dtype=np.int64)
        return self.constant_ms + self.table_ms[np.arange(NUM_LAYERS)[None, :], ops].sum(axis=1)

    def to_dict(self) -> dict:
        return {
            "device": self.device,
            "dataset": self.dataset,
            "constant_ms": self.constant_ms,
            "table_ms": [[float(v) for v in row] for row in self.table_ms],
            "fit_rows": self.fit_rows,
            "fit_max_abs_error_ms": self.fit_max_abs_error_ms,
        }

    @classmethod
    def from_dict(cls, d: dict) -> AdditiveLatencyModel:
        try:
            table = np.asarray(d["table_ms"], dtype=np.float64)
            model = cls(str(d["device"]), str(d["dataset"]), table, float(d["constant_ms"]),
                        int(d["fit_rows"]), float(d["fit_max_abs_error_ms"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"malformed FBNet latency table entry: {exc}") from exc
        if table.shape != (NUM_LAYERS, NUM_BLOCKS) or not np.all(np.isfinite(table)):
            raise UserError(f"FBNet latency table for {model.device!r} has shape {table.shape} or non-finite "
                            f"values; expected ({NUM_LAYERS}, {NUM_BLOCKS}) finite entries")
        return model


def fit_additive_latency(archs: Sequence[FBNetArch] | np.ndarray, latency_ms: Sequence[float] | np.ndarray,
                         device: str, dataset: str = "cifar100") -> AdditiveLatencyModel:
    """Least-squares per-configuration block entries from measured totals, pinned as the module says."""
    ops = archs if isinstance(archs, np.ndarray) else archs_to_matrix(archs)
    y = np.asarray(latency_ms, dtype=np.float64)
    if ops.ndim != 2 or ops.shape[1] != NUM_LAYERS or len(ops) != len(y):
        raise UserError(f"need an (n, {NUM_LAYERS}) block matrix and n latencies; got {ops.shape} and {y.shape}")
    if not np.all(np.isfinite(y)):
        raise UserError(f"latency column for {device!r} holds missing or non-finite values")
    config = np.array(layer_configurations(dataset))
    n_cfg = int(config.max()) + 1
    x = np.zeros((len(y), n_cfg * NUM_BLOCKS + 1))
    rows = np.arange(len(y))
    for layer in range(NUM_LAYERS):
        np.add.at(x, (rows, config[layer] * NUM_BLOCKS + ops[:, layer]), 1.0)
    x[:, -1] = 1.0
    seen = x[:, :-1].any(axis=0).reshape(n_cfg, NUM_BLOCKS)
    if not seen.all():
        missing = [(int(c), int(b)) for c, b in zip(*np.nonzero(~seen))]
        raise UserError(f"cannot fit the {device!r} table: (configuration, block) pairs never seen in the rows: "
                        f"{missing[:5]}{' …' if len(missing) > 5 else ''}")
    w, *_ = np.linalg.lstsq(x, y, rcond=None)
    per_cfg = w[:-1].reshape(n_cfg, NUM_BLOCKS)
    floor = per_cfg.min(axis=1, keepdims=True)
    per_cfg = per_cfg - floor
    counts = np.bincount(config, minlength=n_cfg)
    constant = float(w[-1] + (floor[:, 0] * counts).sum())
    table = per_cfg[config]
    model = AdditiveLatencyModel(device, fbnet_setting(dataset).name, table, constant, len(y), 0.0)
    err = float(np.abs(model.latency_batch_ms(ops) - y).max())
    return AdditiveLatencyModel(device, model.dataset, table, constant, len(y), err)


LUT_ASSET = ASSETS_DIR / "fbnet_lut.json"
"""The shipped tables (fitted on all 5,000 HELP rows of each HW-NAS-Bench device; built by
``benchmarks/build_fbnet_lut.py``)."""


def load_latency_models(path: str | Path | None = None) -> dict[str, AdditiveLatencyModel]:
    """The additive latency models by device name (default: the shipped asset, read once per process)."""
    return dict(_read_latency_models(LUT_ASSET if path is None else Path(path)))


@lru_cache(maxsize=4)
def _read_latency_models(path: Path) -> dict[str, AdditiveLatencyModel]:
    try:
        doc = json.loads(path.read_text())
        models = [AdditiveLatencyModel.from_dict(d) for d in doc["devices"]]
    except FileNotFoundError as exc:
        raise UserError(f"FBNet latency tables not found at {path}; rebuild with "
                        "python benchmarks/build_fbnet_lut.py --data-dir ../shared/data/fbnet") from exc
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"FBNet latency tables at {path} are corrupt ({exc}); rebuild with "
                        "python benchmarks/build_fbnet_lut.py --data-dir ../shared/data/fbnet") from exc
    return {m.device: m for m in models}
