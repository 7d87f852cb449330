"""Ridge regression with per-column penalty weights, closed-form leave-one-out residuals and leverages.

Everything is solved through one thin SVD of the standardized design matrix, so a whole grid of penalties costs
one decomposition: with ``X = U S Vᵀ`` the coefficients are ``V diag(s / (s² + λ)) Uᵀ y`` and the hat-matrix
diagonal is ``1/n + Σ_k U_ik² s_k² / (s_k² + λ)`` (the ``1/n`` is the intercept's share).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_LAMBDAS: tuple[float, ...] = tuple(float(v) for v in np.logspace(-3, 4, 15))


@dataclass
class RidgeFit:
    """A fitted ridge model on standardized columns.

    ``predict(X) = intercept + ((X - x_mean) / x_scale) @ coef``; ``loo_residuals`` are the leave-one-out
    residuals of the training rows and ``train_variance`` the `variance` factor of the training rows.
    """

    x_mean: np.ndarray  # (p,)
    x_scale: np.ndarray  # (p,)
    coef: np.ndarray  # (p,)
    intercept: float
    lam: float
    loo_residuals: np.ndarray  # (n,)
    train_variance: np.ndarray  # (n,)
    cov_factor: np.ndarray  # (p, k): variance factor of a row x_s is ||x_s @ cov_factor||² + 1/n

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(n,) predictions for raw (unstandardized) rows ``x`` (n, p)."""
        return self.intercept + ((x - self.x_mean) / self.x_scale) @ self.coef

    def variance(self, x: np.ndarray) -> np.ndarray:
        """(n,) parameter variance of the prediction at rows ``x`` in units of the noise variance σ².

        ``Var(x_sᵀβ̂) / σ² = x_sᵀ A⁻¹ X_sᵀ X_s A⁻¹ x_s`` with ``A = X_sᵀ X_s + λW``, plus the intercept's ``1/n``.
        """
        xs = (x - self.x_mean) / self.x_scale
        return (xs @ self.cov_factor) ** 2 @ np.ones(self.cov_factor.shape[1]) + 1.0 / len(self.loo_residuals)


def fit_ridge(
    x: np.ndarray,
    y: np.ndarray,
    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
    penalty_weights: np.ndarray | None = None,
    select: str = "mse",
) -> RidgeFit:
    """Fit ridge regression of ``y`` (n,) on ``x`` (n, p), choosing λ by exact leave-one-out error.

    ``penalty_weights`` (p,) multiplies the penalty per column (after standardization); ``select`` is ``mse``
    or ``mae`` (the leave-one-out criterion).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, p = x.shape
    x_mean = x.mean(axis=0)
    x_scale = x.std(axis=0)
    x_scale[x_scale < 1e-12] = 1.0
    w = np.ones(p) if penalty_weights is None else np.asarray(penalty_weights, dtype=np.float64)
    col = 1.0 / np.sqrt(w)  # (p,) scaling that turns the weighted penalty into a plain one
    xs = (x - x_mean) / x_scale * col  # (n, p)
    y_mean = float(y.mean())
    yc = y - y_mean
    if n > p:  # eigen-decomposition of the (p, p) Gram matrix is much cheaper than an SVD of a tall matrix
        evals, v = np.linalg.eigh(xs.T @ xs)
        keep = evals > 1e-10 * max(float(evals.max()), 1e-300)
        s = np.sqrt(evals[keep])  # (k,)
        vt = v[:, keep].T  # (k, p)
        u = (xs @ vt.T) / s  # (n, k)
    else:  # wide or square: eigen-decomposition of the (n, n) Gram matrix of the centred rows
        xc = xs - xs.mean(axis=0)  # already centred up to rounding; keeps the decomposition exact
        evals, uu = np.linalg.eigh(xc @ xc.T)
        keep = evals > 1e-10 * max(float(evals.max()), 1e-300)
        s = np.sqrt(evals[keep])  # (k,)
        u = uu[:, keep]  # (n, k)
        vt = (u.T @ xc) / s[:, None]  # (k, p)
    uty = u.T @ yc  # (k,)
    u2 = u**2  # (n, k)
    best = None
    for lam in lambdas:
        shrink = s**2 / (s**2 + lam)  # (k,)
        fitted = u @ (shrink * uty)
        h = 1.0 / n + u2 @ shrink
        loo = (yc - fitted) / np.maximum(1.0 - h, 1e-9)
        err = float(np.mean(loo**2) if select == "mse" else np.mean(np.abs(loo)))
        if best is None or err < best[0]:
            best = (err, lam, loo, h)
    assert best is not None
    _, lam, loo, h = best
    coef_scaled = vt.T @ (s / (s**2 + lam) * uty)  # (p,) in the column-scaled space
    coef = coef_scaled * col
    gain = s / (s**2 + lam)  # (k,)
    cov_factor = (vt.T * gain) * col[:, None]  # (p, k)
    train_var = u2 @ (s * gain) ** 2 + 1.0 / n  # (n,)
    return RidgeFit(x_mean, x_scale, coef, y_mean, float(lam), loo, train_var, cov_factor)
