"""The device vector and the latency-quantile map, written once (a leaf: numpy and the cell space only).

The device vector: the standardized log-latencies of HELP's ten reference cells (HELP, Lee et al. 2021,
``hardware_embedding_index.pt``), the device's *shape* (which ops are expensive); the generator's condition adds
the mean log10-latency (its *scale*). The quantile map: a budget in ms ↔ the fraction of connected cells at or
under it, from a device's sorted connected-cell latencies (`budget_quantile`, `quantile_ms`) or a stored
monotone map (`LatencyQuantiles`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.space import Cell

HELP_REFERENCE_INDICES: tuple[int, ...] = (11982, 431, 55, 9, 14451, 8636, 9881, 13479, 6196, 1462)
"""NB201 indices of HELP's 10 reference cells, in HELP's order."""
HELP_REFERENCE_ARCHS: tuple[str, ...] = (
    "|avg_pool_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|",
    "|skip_connect~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|skip_connect~1|none~2|",
    "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    "|none~0|+|nor_conv_1x1~0|none~1|+|nor_conv_3x3~0|nor_conv_1x1~1|nor_conv_1x1~2|",
    "|skip_connect~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|",
    "|nor_conv_3x3~0|+|avg_pool_3x3~0|skip_connect~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|",
    "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|none~0|skip_connect~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
)
"""Arch strings of `HELP_REFERENCE_INDICES` (NB201 ``arch_index.csv``)."""
DEVICE_VECTOR_DIM = len(HELP_REFERENCE_INDICES)
DEVICE_DIM = DEVICE_VECTOR_DIM + 1
"""Length of the generator's device representation: the device vector and the mean log10-latency."""


def reference_cells() -> list[Cell]:
    """HELP's 10 reference cells."""
    return [Cell.from_str(a) for a in HELP_REFERENCE_ARCHS]


def device_shape(log_latencies: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """(10,) float64 device vector from the (natural) log-latencies of the reference cells: zero mean, unit
    variance over the ten (a device whose ten latencies are equal gets zeros)."""
    logs = np.asarray(log_latencies, dtype=np.float64)
    sd = float(logs.std())
    return (logs - logs.mean()) / (sd if sd > eps else 1.0)


def device_representation(reference_latencies_ms: Sequence[float], n: int = DEVICE_VECTOR_DIM) -> np.ndarray:
    """(n + 1,) float32 device representation from the latencies (ms) of a space's ``n`` reference architectures
    (NB201: HELP's ten cells, in `HELP_REFERENCE_ARCHS` order): `device_shape` of their logs, then their mean
    log10-latency (centred on 1 ms)."""
    lat = np.asarray(reference_latencies_ms, dtype=np.float64)
    if lat.shape != (n,) or not np.all(np.isfinite(lat)) or np.any(lat <= 0):
        raise ValueError(f"need {n} positive finite reference latencies, got {lat}")
    shape = device_shape(np.log(lat), eps=1e-9)
    scale = float(np.log10(lat).mean())
    return np.concatenate([shape, [scale]]).astype(np.float32)


# --- the latency-quantile map -------------------------------------------------------------------------------
def budget_quantile(latency_ms: float, connected_latencies_sorted_ms: np.ndarray) -> float:
    """``u``: fraction of connected cells with latency <= ``latency_ms`` (sorted (N,) input)."""
    n = int(np.searchsorted(connected_latencies_sorted_ms, latency_ms, side="right"))
    return n / max(1, connected_latencies_sorted_ms.size)


def quantile_ms(connected_latencies_ms: np.ndarray, fraction: float) -> float:
    """The latency (ms) at ``fraction`` (0..1) of the connected cells' latencies (linear interpolation, as
    ``numpy.quantile``): the ``pNN`` budget with ``fraction = NN / 100``."""
    lat = np.asarray(connected_latencies_ms, dtype=np.float64)
    if lat.size == 0:
        raise UserError("no connected cell has a latency; a quantile budget needs at least one")
    return float(np.quantile(lat, fraction))


@dataclass
class LatencyQuantiles:
    """Monotone map between a latency budget (ms) and the fraction of connected cells at or under it, stored at
    a few levels (a predictor bundle's or a checkpoint's summary of a device).

    ``levels`` (m,) rise from 0 to 1; ``values_ms`` (m,) are the matching latencies (non-decreasing).
    ``source`` says where it came from: ``table`` or ``predicted``.
    """

    levels: np.ndarray  # (m,)
    values_ms: np.ndarray  # (m,)
    source: str = "table"

    def __post_init__(self) -> None:
        lv, vm = np.asarray(self.levels, float), np.asarray(self.values_ms, float)
        if lv.ndim != 1 or lv.shape != vm.shape or len(lv) < 2:
            raise UserError("latency quantiles need two equal-length 1-d arrays of 2+ points")
        if np.any(np.diff(lv) < 0) or np.any(np.diff(vm) < 0) or np.any(vm <= 0):
            raise UserError("latency quantiles must be non-decreasing and positive")
        self.levels, self.values_ms = lv, vm

    @property
    def fastest_ms(self) -> float:
        return float(self.values_ms[0])

    def fraction_under(self, budget_ms: float | np.ndarray) -> float | np.ndarray:
        """Fraction of connected cells with latency ≤ ``budget_ms`` (interpolated in log-latency)."""
        b = np.log(np.maximum(np.asarray(budget_ms, dtype=float), 1e-300))
        out = np.interp(b, np.log(self.values_ms), self.levels, left=0.0, right=1.0)
        return float(out) if out.ndim == 0 else out

    def budget_at(self, fraction: float | np.ndarray) -> float | np.ndarray:
        """Latency (ms) under which ``fraction`` (0..1) of connected cells fall."""
        f = np.asarray(fraction, dtype=float)
        if np.any((f < 0) | (f > 1)):
            raise UserError(f"quantile fraction must lie in [0, 1], got {fraction}")
        out = np.exp(np.interp(f, self.levels, np.log(self.values_ms)))
        return float(out) if out.ndim == 0 else out

    def dense(self, points: int = 2001) -> np.ndarray:
        """(points,) the map resampled at evenly spaced levels (linear in ms): a stand-in distribution of the
        connected cells' latencies for `budget_quantile` and `quantile_ms`."""
        return np.interp(np.linspace(0, 1, points), self.levels, self.values_ms)


QUANTILE_POINTS = 201


def table_quantiles(latencies_ms: Sequence[float] | np.ndarray, points: int = QUANTILE_POINTS) -> LatencyQuantiles:
    """Quantile map from measured latencies of connected cells (NaN ignored)."""
    lat = np.asarray(latencies_ms, dtype=float)
    lat = lat[np.isfinite(lat) & (lat > 0)]
    if len(lat) < 2:
        raise UserError("need at least 2 positive latencies to build a quantile map")
    levels = np.linspace(0.0, 1.0, points)
    return LatencyQuantiles(levels, np.quantile(lat, levels), "table")
