"""A latency predictor for any space from measured rows: ridge on the space's features, one-sided conformal bound.

``log ms = ridge(features)``, the penalty chosen by exact leave-one-out error; the bound at miss rate ``delta``
rescales the conformal quantile of the normalized leave-one-out residuals by each architecture's predictive
scale ``sqrt(1 + v(x))`` (as `LatencyPredictor` does for NB201 cells). Source of its values: ``estimate``.

For a device known from a few rows, the features are a *transfer basis* instead: the standardized log-latencies
that the other devices' models give each architecture (`transfer_basis`), so the new device borrows their shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.predictors.latency import conformal_quantile
from hwdiffnas.predictors.ridge import RidgeFit, fit_ridge

MIN_ROWS = 8


@dataclass(frozen=True)
class RowsLatencyPredictor:
    """Predicts one device's latency (ms) from architecture features, with a calibrated upper bound."""

    fit: RidgeFit
    residuals: np.ndarray  # sorted normalized leave-one-out residuals of log-latency
    n_rows: int

    def log_predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n,) predicted log-latency and (n,) predictive scale."""
        x = np.asarray(features, dtype=np.float64)
        return self.fit.predict(x), np.sqrt(1.0 + self.fit.variance(x))

    def point_and_upper(self, features: np.ndarray, delta: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        """(point_ms, upper_ms): the median estimate and the bound exceeded with probability at most ``delta``
        (``inf`` when the rows are too few to certify it)."""
        if not 0.0 < delta < 1.0:
            raise UserError(f"delta must lie strictly between 0 and 1, got {delta}")
        mu, scale = self.log_predict(features)
        q = conformal_quantile(self.residuals, self.n_rows, 1.0 - delta)
        with np.errstate(over="ignore"):
            return np.exp(mu), np.exp(mu + q * scale)


def fit_rows_predictor(features: np.ndarray, latency_ms: np.ndarray) -> RowsLatencyPredictor:
    """Fit on (n, F) ``features`` and (n,) positive ``latency_ms`` (NaN rows dropped); at least 8 rows."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(latency_ms, dtype=np.float64).reshape(-1)
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise UserError(f"{x.shape[0] if x.ndim else 0} feature rows but {y.shape[0]} latencies")
    keep = np.isfinite(y)
    x, y = x[keep], y[keep]
    if np.any(y <= 0):
        raise UserError(f"latencies must be positive milliseconds, got {float(y[y <= 0][0])}")
    if len(y) < MIN_ROWS:
        raise UserError(f"need at least {MIN_ROWS} measured architectures to fit a latency predictor, got {len(y)}")
    fit = fit_ridge(x, np.log(y))
    residuals = np.sort(fit.loo_residuals / np.sqrt(1.0 + fit.train_variance))
    return RowsLatencyPredictor(fit, residuals, len(y))

