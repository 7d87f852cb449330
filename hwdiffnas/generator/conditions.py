"""Condition vectors of the generator: one builder shared by training and sampling.

Three condition groups, each fed to the denoiser through its own small MLP and each droppable on its own
(a learned null embedding stands in for a dropped group):

``accuracy``
    ``r`` in [0, 1]: the cell's accuracy rank on the chosen dataset among the (labelled) cells that fit the
    budget below — 1 = the best cell that fits, 0 = the worst — plus a one-hot of the dataset. Sampling asks for
    ``r = 1``: "the most accurate cell under this budget", which is in-distribution for every budget.
``device``
    a device representation vector (`device_representation`): the standardized log-latencies of HELP's ten
    reference cells and their mean log-latency. Any device with an estimate of those ten latencies (a table, 20
    measured rows through a latency predictor) has one.
``latency``
    ``u`` in (0, 1]: the budget as a quantile of the device's connected-cell latency distribution (the fraction of
    connected cells that fit it). In training ``u`` is drawn at or above the cell's own quantile, so the model
    learns p(cell | it fits budget u); any budget in ms maps to a ``u`` through the device's latency quantiles.

When the latency group is dropped, ``u`` is 1 (no budget) and ``r`` is the rank among all connected cells.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hwdiffnas.latency.reference import DEVICE_DIM, HELP_REFERENCE_ARCHS, budget_quantile, device_representation

__all__ = ["DEVICE_DIM", "GROUPS", "HELP_REFERENCE_ARCHS", "SCALAR_DIM", "ConditionBatch", "budget_quantile",
           "build_conditions", "device_representation", "rank_in_budget", "scalar_features"]

GROUPS: tuple[str, ...] = ("accuracy", "device", "latency")
"""Condition groups, in the order of the ``present`` mask columns."""

FOURIER_BANDS = 4
SCALAR_DIM = 1 + 2 * FOURIER_BANDS


def scalar_features(x: np.ndarray) -> np.ndarray:
    """(B,) values in [0, 1] → (B, 9) features: the value and sin/cos at 4 octaves (lets a small MLP be sharp)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1, 1)  # (B, 1)
    freqs = (2.0 ** np.arange(FOURIER_BANDS)) * math.pi  # (F,)
    ang = x * freqs  # (B, F)
    return np.concatenate([x, np.sin(ang), np.cos(ang)], axis=1).astype(np.float32)


@dataclass(frozen=True)
class ConditionBatch:
    """Condition inputs for a batch: per-group feature arrays and the ``present`` mask (B, 3)."""

    accuracy: np.ndarray  # (B, SCALAR_DIM + n_datasets)
    device: np.ndarray  # (B, DEVICE_DIM)
    latency: np.ndarray  # (B, SCALAR_DIM)
    present: np.ndarray  # (B, 3) bool, columns in GROUPS order

    def __len__(self) -> int:
        return int(self.present.shape[0])

    def with_present(self, present: np.ndarray) -> ConditionBatch:
        """The same values with another presence mask (dropped groups use the null embedding)."""
        return ConditionBatch(self.accuracy, self.device, self.latency, np.asarray(present, dtype=bool))

    def concat(self, other: ConditionBatch) -> ConditionBatch:
        return ConditionBatch(*(np.concatenate([a, b]) for a, b in
                                zip((self.accuracy, self.device, self.latency, self.present),
                                    (other.accuracy, other.device, other.latency, other.present))))


def build_conditions(
    datasets: Sequence[str],
    dataset: Sequence[str] | str,
    accuracy_rank: np.ndarray | float | None,
    device_rep: np.ndarray | None,
    budget_quantile: np.ndarray | float | None,
    batch: int | None = None,
    device_dim: int = DEVICE_DIM,
) -> ConditionBatch:
    """THE condition builder, used by training (per-sample arrays) and sampling (scalars broadcast to ``batch``).

    ``datasets``: the model's dataset vocabulary; ``dataset``: one name or one per sample. ``accuracy_rank`` (B,)
    in [0, 1] with NaN = unknown (group absent); ``device_rep`` (B, 11) or (11,), None/NaN rows = absent;
    ``budget_quantile`` (B,) in (0, 1] with NaN = absent (then the value fed is u = 1). ``device_dim``: the
    width of an absent device group (the space's reference count + 1; a given ``device_rep`` sets its own).
    """
    def as_array(v: np.ndarray | float | None) -> np.ndarray | None:
        return None if v is None else np.atleast_1d(np.asarray(v, dtype=np.float64))

    r = as_array(accuracy_rank)
    u = as_array(budget_quantile)
    dev = None if device_rep is None else np.asarray(device_rep, dtype=np.float64)
    if dev is not None and dev.ndim == 1:
        dev = dev.reshape(1, -1)
    sizes = [len(a) for a in (r, u, dev) if a is not None]
    if isinstance(dataset, str):
        names = None
    else:
        names = list(dataset)
        sizes.append(len(names))
    B = batch if batch is not None else max([*sizes, 1])
    if any(s not in (1, B) for s in sizes):
        raise ValueError(f"condition arrays have inconsistent batch sizes {sizes} (batch {B})")

    def fill(a: np.ndarray | None, width: int | None = None) -> np.ndarray:
        if a is None:
            shape = (B,) if width is None else (B, width)
            return np.full(shape, np.nan)
        return np.broadcast_to(a, (B,) if width is None else (B, width)).copy()

    r = fill(r)
    u = fill(u)
    dev = fill(dev, dev.shape[1] if dev is not None else device_dim)
    if names is None:
        names = [dataset] * B  # type: ignore[list-item]
    elif len(names) == 1:
        names = names * B
    unknown = sorted({n for n in names if n not in datasets})
    if unknown:
        raise ValueError(f"dataset(s) {unknown} not in the model's datasets {list(datasets)}")

    present = np.stack([np.isfinite(r), np.all(np.isfinite(dev), axis=1), np.isfinite(u)], axis=1)  # (B, 3)
    u_fed = np.where(np.isfinite(u), np.clip(u, 0.0, 1.0), 1.0)  # (B,)
    r_fed = np.where(np.isfinite(r), np.clip(r, 0.0, 1.0), 0.0)  # (B,)
    ds_onehot = np.zeros((B, len(datasets)), dtype=np.float32)  # (B, n_datasets)
    ds_onehot[np.arange(B), [list(datasets).index(n) for n in names]] = 1.0
    acc = np.concatenate([scalar_features(r_fed), ds_onehot], axis=1)  # (B, SCALAR_DIM + n_datasets)
    dev_fed = np.where(present[:, 1:2], dev, 0.0).astype(np.float32)  # (B, device_dim)
    lat = scalar_features(u_fed)  # (B, SCALAR_DIM)
    return ConditionBatch(acc.astype(np.float32), dev_fed, lat, present)


def rank_in_budget(accuracy_sorted_by_latency: np.ndarray, n_fit: int, accuracy: float) -> float:
    """``r`` of a cell with ``accuracy`` among the first ``n_fit`` cells of a latency-sorted accuracy array.

    NaN accuracies (unlabelled cells) are ignored; 1 = no labelled fitting cell is more accurate.
    """
    pref = accuracy_sorted_by_latency[:n_fit]
    labelled = pref[np.isfinite(pref)]
    if labelled.size <= 1:
        return 1.0
    better = int(np.count_nonzero(labelled > accuracy))
    return 1.0 - better / (labelled.size - 1)
