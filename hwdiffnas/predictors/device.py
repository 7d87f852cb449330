"""Device representations and latency-quantile maps.

`device_vector` gives every device — a full benchmark table or one known only from ~20 measured rows through
a fitted `LatencyPredictor` — the same fixed-length vector: the standardized log-latencies of HELP's 10
reference cells (HELP, Lee et al. 2021, ``hardware_embedding_index.pt``). Standardizing (zero mean, unit
variance over the 10) keeps the device's *shape* and drops its overall speed, which the latency condition
carries separately as a quantile.

`LatencyQuantiles` maps a budget in ms to the fraction of connected cells under it and back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def reference_cells() -> list[Cell]:
    """HELP's 10 reference cells."""
    return [Cell.from_str(a) for a in HELP_REFERENCE_ARCHS]


def device_vector(source: object) -> np.ndarray:
    """(10,) float64 device representation: standardized log-latency of HELP's 10 reference cells.

    ``source`` is a `LatencyPredictor` (any device, from a full table or a few rows — its predictions are
    used) or a mapping ``Cell -> latency_ms`` that contains all 10 reference cells (a measured table).
    """
    from hwdiffnas.predictors.latency import LatencyPredictor

    refs = reference_cells()
    if isinstance(source, LatencyPredictor):
        logs = source.log_predict(refs)[0]
    elif isinstance(source, Mapping):
        missing = [str(c) for c in refs if c not in source]
        if missing:
            raise UserError(
                f"the device table lacks {len(missing)} of HELP's 10 reference cells (first: {missing[0]}); "
                "fit a latency predictor on it and pass that instead"
            )
        vals = np.array([float(source[c]) for c in refs])  # type: ignore[index]
        if not np.all(np.isfinite(vals) & (vals > 0)):
            raise UserError(f"reference-cell latencies must be positive numbers, got {vals.tolist()}")
        logs = np.log(vals)
    else:
        raise UserError(f"device_vector needs a LatencyPredictor or a Cell->ms mapping, got {type(source).__name__}")
    sd = float(logs.std())
    return (logs - logs.mean()) / (sd if sd > 1e-12 else 1.0)


@dataclass
class LatencyQuantiles:
    """Monotone map between a latency budget (ms) and the fraction of connected cells at or under it.

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


QUANTILE_POINTS = 201


def table_quantiles(latencies_ms: Sequence[float] | np.ndarray, points: int = QUANTILE_POINTS) -> LatencyQuantiles:
    """Quantile map from measured latencies of connected cells (NaN ignored)."""
    lat = np.asarray(latencies_ms, dtype=float)
    lat = lat[np.isfinite(lat) & (lat > 0)]
    if len(lat) < 2:
        raise UserError("need at least 2 positive latencies to build a quantile map")
    levels = np.linspace(0.0, 1.0, points)
    return LatencyQuantiles(levels, np.quantile(lat, levels), "table")


def predicted_quantiles(predictor: object, points: int = QUANTILE_POINTS) -> LatencyQuantiles:
    """Quantile map of a device known from a `LatencyPredictor`: the expected fraction of connected cells under
    each budget, averaging every cell's predictive distribution (so prediction noise widens it as it should)."""
    from hwdiffnas.predictors.latency import LatencyPredictor, connected_mask

    if not isinstance(predictor, LatencyPredictor):
        raise UserError(f"predicted_quantiles needs a LatencyPredictor, got {type(predictor).__name__}")
    codes = np.flatnonzero(connected_mask())
    mu, scale = predictor.log_predict(codes)  # (n,), (n,)
    res = predictor.residuals  # (m,) sorted
    if len(res) > 101:  # the mixture only needs the residual distribution's shape
        res = np.quantile(res, np.linspace(0.0, 1.0, 101))
    pooled = (mu[:, None] + res[None, :] * scale[:, None]).ravel()  # (n * m,) draws of the mixture, log-ms
    levels = np.linspace(0.0, 1.0, points)
    values = np.exp(np.quantile(pooled, levels))
    return LatencyQuantiles(levels, np.maximum.accumulate(values), "predicted")

