"""Device representations and latency-quantile maps.

`device_vector` gives every device — a full benchmark table or one known only from ~20 measured rows through
a fitted `LatencyPredictor` — the same fixed-length vector: the standardized log-latencies of HELP's 10
reference cells (HELP, Lee et al. 2021, ``hardware_embedding_index.pt``). Standardizing (zero mean, unit
variance over the 10) keeps the device's *shape* and drops its overall speed, which the latency condition
carries separately as a quantile.

`predicted_quantiles` gives a device known from a predictor its `LatencyQuantiles` map (budget ms ↔ fraction of
connected cells); the map itself, the reference cells and the vector's arithmetic live in
`hwdiffnas.latency.reference`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.latency.reference import (
    DEVICE_VECTOR_DIM,
    HELP_REFERENCE_ARCHS,
    HELP_REFERENCE_INDICES,
    QUANTILE_POINTS,
    LatencyQuantiles,
    device_shape,
    reference_cells,
    table_quantiles,
)

__all__ = ["DEVICE_VECTOR_DIM", "HELP_REFERENCE_ARCHS", "HELP_REFERENCE_INDICES", "QUANTILE_POINTS",
           "LatencyQuantiles", "device_vector", "predicted_quantiles", "reference_cells", "table_quantiles"]


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
    return device_shape(logs)


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

