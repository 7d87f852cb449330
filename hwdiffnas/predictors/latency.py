"""Per-device latency predictors with calibrated uncertainty.

Model: ridge regression of log-latency on cell features (`features.py`), optionally plus a *transfer basis* —
per-cell scores summarizing the log-latency tables of other devices — so that a device known from ~20 measured
cells borrows the shape of the devices already in the benchmark. Penalties are chosen by exact leave-one-out
error. Uncertainty is split-conformal in spirit: the leave-one-out residuals, each divided by the model's
predictive scale ``sqrt(1 + v(x))`` (``v`` = the ridge estimate's variance factor at ``x``), form the
calibration set; an interval or a probability for a new cell rescales them by that cell's own scale. A fit on a
whole table also scales each cell by its group's residual tail (cells grouped by their number of convolution
edges, `group_scales`), so the one-sided bound holds per group, not only on average.

The point estimate is ``exp`` of the predicted log-latency (a median, not a mean, of the predictive
distribution). Cells without an input→output path are left out of fitting by default; predictions for them are
extrapolations (search and quantile budgets ignore such cells).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.predictors.features import all_ops, cell_features, check_feature_set, live_mask
from hwdiffnas.predictors.ridge import fit_ridge
from hwdiffnas.space import NUM_CELLS, Cell, cell_codes


@cache
def connected_mask() -> np.ndarray:
    """(15625,) bool, indexed by cell code: whether the cell has an input→output path."""
    mask = live_mask(all_ops()).any(axis=1)
    mask.setflags(write=False)
    return mask


def _as_codes(cells: Sequence[Cell] | np.ndarray) -> np.ndarray:
    if isinstance(cells, np.ndarray):
        codes = cells.astype(np.int64)
        if codes.size and (codes.min() < 0 or codes.max() >= NUM_CELLS):
            raise UserError(f"cell codes must lie in 0..{NUM_CELLS - 1}")
        return codes
    return cell_codes(cells)


# --- transfer basis -----------------------------------------------------------------------------------------
@dataclass
class TransferBasis:
    """Per-cell principal scores of several devices' standardized log-latencies.

    ``scores[code]`` (r,) is the cell's coordinate in the space spanned by the devices' tables, ordered by
    explained variance; ``devices`` names the tables it was built from.
    """

    scores: np.ndarray  # (15625, r) float32, indexed by cell code
    devices: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.scores.ndim != 2 or self.scores.shape[0] != NUM_CELLS:
            raise UserError(f"transfer basis must have shape ({NUM_CELLS}, r), got {self.scores.shape}")

    @property
    def rank(self) -> int:
        return int(self.scores.shape[1])

    def features(self, codes: np.ndarray) -> np.ndarray:
        """(n, r) float64 basis scores of the cells with ``codes``."""
        return self.scores[codes].astype(np.float64)


def build_transfer_basis(
    cells: Sequence[Cell],
    latencies_ms: Mapping[str, np.ndarray],
    rank: int | None = None,
    exclude: Sequence[str] = (),
) -> TransferBasis:
    """Build a `TransferBasis` from device tables aligned with ``cells`` (NaN = missing).

    Each device's log-latency over the connected cells is standardized; a missing value takes the other
    devices' mean standardized value at that cell; the principal scores of the (cells × devices) matrix form the basis
    (``rank`` components, default all). Cells absent from ``cells`` or disconnected get scores from a ridge on
    cell features. ``exclude`` drops devices (e.g. the one being evaluated).
    """
    codes = cell_codes(cells)
    conn = connected_mask()[codes]
    names = [d for d in sorted(latencies_ms) if d not in set(exclude)]
    if len(names) < 2:
        raise UserError(f"a transfer basis needs at least 2 device tables, got {len(names)}: {names}")
    feats = cell_features(codes[conn], "full")
    cols = []
    used = []
    for name in names:
        lat = np.asarray(latencies_ms[name], dtype=np.float64)
        if lat.shape != codes.shape:
            raise UserError(f"table {name!r} has {lat.shape[0]} rows, expected {codes.shape[0]}")
        y = lat[conn]
        ok = np.isfinite(y) & (y > 0)
        if ok.sum() < 100:
            continue
        ly = np.full(y.shape, np.nan)
        ly[ok] = np.log(y[ok])
        cols.append((ly - np.nanmean(ly)) / np.nanstd(ly))
        used.append(name)
    if len(cols) < 2:
        raise UserError("a transfer basis needs at least 2 device tables with 100+ connected cells each")
    mat = np.stack(cols, axis=1)  # (n_conn, D), NaN where a table lacks a cell
    gaps = np.isnan(mat)
    if gaps.any():  # a missing value takes the mean standardized value of the other devices at that cell
        row_mean = np.nanmean(np.where(gaps.all(axis=1, keepdims=True), 0.0, mat), axis=1)
        mat = np.where(gaps, row_mean[:, None], mat)
    u, s, _ = np.linalg.svd(mat, full_matrices=False)
    r = len(s) if rank is None else max(1, min(int(rank), len(s)))
    comp = u[:, :r] * s[:r] / np.sqrt(mat.shape[0])  # (n_conn, r), unit-free principal scores
    # Codes not covered by the tables (disconnected or absent cells) get scores from one multi-output ridge on
    # the cell features.
    f_mean = feats.mean(axis=0)
    f_sd = feats.std(axis=0)
    f_sd[f_sd < 1e-12] = 1.0
    fs = (feats - f_mean) / f_sd  # (n_conn, p)
    coef = np.linalg.solve(fs.T @ fs + np.eye(fs.shape[1]), fs.T @ (comp - comp.mean(axis=0)))  # (p, r)
    all_feats = (cell_features(np.arange(NUM_CELLS), "full") - f_mean) / f_sd
    scores = all_feats @ coef + comp.mean(axis=0)  # (15625, r)
    scores[codes[conn]] = comp
    return TransferBasis(scores.astype(np.float32), tuple(used))


# --- the predictor ------------------------------------------------------------------------------------------
@dataclass
class LatencyPredictor:
    """Predicts one device's latency (ms) for any cell, with calibrated intervals.

    ``log_ms(code) = intercept + ((features - x_mean) / x_scale) @ coef + offset[code]``; the predictive
    scale at a code is ``sqrt(1 + variance[code])`` (or ``sqrt(1 + variance_const)``), times ``group_scale`` of
    its number of convolution edges when set; ``residuals`` are the
    sorted normalized leave-one-out residuals (or their quantiles when there are many), from ``n_calib`` rows.
    """

    feature_set: str
    x_mean: np.ndarray  # (p,)
    x_scale: np.ndarray  # (p,)
    coef: np.ndarray  # (p,)
    intercept: float
    residuals: np.ndarray  # (m,) sorted normalized LOO residuals of log-latency
    n_calib: int
    n_train: int
    offset: np.ndarray | None = None  # (15625,) basis contribution to log-latency, by code
    variance: np.ndarray | None = None  # (15625,) variance factor by code
    variance_const: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    group_scale: np.ndarray | None = None  # (7,) scale factor by number of convolution edges (`group_scales`)

    # --- core ---------------------------------------------------------------------------------------------
    def log_predict(self, cells: Sequence[Cell] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n,) predicted log-latency (log ms) and (n,) predictive scale of ``cells`` (cells or codes)."""
        codes = _as_codes(cells)
        x = cell_features(codes, self.feature_set)
        mu = self.intercept + ((x - self.x_mean) / self.x_scale) @ self.coef
        if self.offset is not None:
            mu = mu + self.offset[codes]
        var = self.variance[codes] if self.variance is not None else np.full(len(codes), self.variance_const)
        scale = np.sqrt(1.0 + var)
        if self.group_scale is not None:
            scale = scale * self.group_scale[conv_count(codes)]
        return mu, scale

    def _quantile(self, level: float) -> float:
        """Conformal quantile of the normalized residuals at ``level`` (±inf beyond the calibration set)."""
        return conformal_quantile(self.residuals, self.n_calib, level)

    def _lower_quantile(self, level: float) -> float:
        return -self._neg_quantile(level)

    def _neg_quantile(self, level: float) -> float:
        n = self.n_calib
        k = int(np.ceil((n + 1) * (1.0 - level)))
        if k > n:
            return float("inf")
        pos = (k - 1) / max(n - 1, 1) * (len(self.residuals) - 1)
        flipped = -self.residuals[::-1]
        return float(np.interp(pos, np.arange(len(flipped)), flipped))

    # --- public -------------------------------------------------------------------------------------------
    def predict(
        self, cells: Sequence[Cell] | np.ndarray, alpha: float = 0.1
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(point_ms, lower_ms, upper_ms), each (n,): the median estimate and a two-sided ``1 - alpha`` interval.

        An interval end that the calibration set is too small to certify is ``0`` or ``inf``.
        """
        _check_level(alpha, "alpha")
        mu, scale = self.log_predict(cells)
        q_hi = self._quantile(1.0 - alpha / 2.0)
        q_lo = self._lower_quantile(alpha / 2.0)
        with np.errstate(over="ignore"):
            return np.exp(mu), np.exp(mu + q_lo * scale), np.exp(mu + q_hi * scale)

    def upper_ms(self, cells: Sequence[Cell] | np.ndarray, delta: float = 0.05) -> np.ndarray:
        """(n,) one-sided bound: P(latency ≤ bound) ≥ 1 − ``delta`` (``inf`` when not certifiable)."""
        return self.point_and_upper(cells, delta)[1]

    def point_and_upper(self, cells: Sequence[Cell] | np.ndarray, delta: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        """(point_ms, upper_ms), each (n,): the median estimate and the one-sided bound of `upper_ms`, from one
        log-prediction."""
        _check_level(delta, "delta")
        mu, scale = self.log_predict(cells)
        with np.errstate(over="ignore"):
            return np.exp(mu), np.exp(mu + self._quantile(1.0 - delta) * scale)

    def prob_within(self, cells: Sequence[Cell] | np.ndarray, budget_ms: float) -> np.ndarray:
        """(n,) conservative estimate of P(latency ≤ ``budget_ms``) for each cell (conformal rank / (n+1))."""
        if not budget_ms > 0:
            raise UserError(f"budget must be positive, got {budget_ms}")
        mu, scale = self.log_predict(cells)
        z = (np.log(budget_ms) - mu) / scale  # (n,)
        frac = np.searchsorted(self.residuals, z, side="right") / len(self.residuals)  # share of residuals ≤ z
        return np.floor(frac * self.n_calib + 1e-9) / (self.n_calib + 1)

    def all_log_predictions(self) -> np.ndarray:
        """(15625,) predicted log-latency for every cell code."""
        return self.log_predict(np.arange(NUM_CELLS))[0]


def conformal_quantile(residuals: np.ndarray, n_calib: int, level: float) -> float:
    """Split-conformal quantile at ``level`` of ``residuals`` (sorted; from ``n_calib`` calibration rows, or
    evenly spaced quantiles of them): rank ceil((n + 1) · level), ±inf beyond the calibration set."""
    n = n_calib
    if level >= 1.0:
        return float("inf")
    if level <= 0.0:
        return float("-inf")
    k = int(np.ceil((n + 1) * level))  # rank in 1..n+1
    if k > n:
        return float("inf")
    if k < 1:
        return float("-inf")
    pos = (k - 1) / max(n - 1, 1) * (len(residuals) - 1)
    return float(np.interp(pos, np.arange(len(residuals)), residuals))


def _check_level(value: float, name: str) -> None:
    if not 0.0 < value < 1.0:
        raise UserError(f"{name} must lie strictly between 0 and 1, got {value}")


GROUP_TAIL = 0.95  # the level at which `group_scales` matches each group's residual tail to the whole table's
MIN_GROUP_ROWS = 50
OPS_PER_CELL_RANGE = range(7)  # a cell has 0..6 convolution edges


def conv_count(codes: np.ndarray) -> np.ndarray:
    """(n,) number of convolution edges (``nor_conv_1x1`` / ``nor_conv_3x3``) of each cell code."""
    ops = all_ops()[np.asarray(codes, dtype=np.int64)]  # (n, 6)
    return ((ops == 2) | (ops == 3)).sum(axis=1)


def group_scales(codes: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    """(7,) factor on the predictive scale of a cell with 0..6 convolution edges: the `GROUP_TAIL` quantile of
    the group's residuals over the whole table's (clipped to [0.25, 4]; 1 for a group with fewer than
    `MIN_GROUP_ROWS` rows or a non-positive tail). With it the one-sided bound is calibrated per group (Mondrian
    conformal) instead of on average: a whole-table fit errs differently on conv-light and conv-heavy cells, and
    the accurate cells a search returns are conv-heavy."""
    r = np.asarray(residuals, dtype=np.float64)
    group = conv_count(codes)
    q_all = float(np.quantile(r, GROUP_TAIL))
    out = np.ones(len(OPS_PER_CELL_RANGE))
    if not q_all > 0:
        return out
    for g in OPS_PER_CELL_RANGE:
        sel = group == g
        q = float(np.quantile(r[sel], GROUP_TAIL)) if sel.sum() >= MIN_GROUP_ROWS else q_all
        if q > 0:
            out[g] = min(4.0, max(0.25, q / q_all))
    return out


MAX_STORED_RESIDUALS = 1001
FEW_ROWS = 2000  # below this many rows a per-cell variance table is kept (it matters); above, a constant


def fit_latency_predictor(
    cells: Sequence[Cell],
    latencies_ms: Sequence[float] | np.ndarray,
    *,
    basis: TransferBasis | None = None,
    feature_set: str = "full",
    include_disconnected: bool = False,
) -> LatencyPredictor:
    """Fit a latency predictor for one device from measured ``cells`` and their ``latencies_ms``.

    With a ``basis`` (other devices' tables, `build_transfer_basis`) the model regresses on the basis scores
    and, with a larger and leave-one-out-chosen penalty, on the cell features — the mode for a new device known
    from a few rows. Without one it is a plain feature ridge (the mode for a full table). Rows with NaN are
    dropped; non-positive latencies are an error. Needs at least 8 rows.
    """
    check_feature_set(feature_set)
    codes = cell_codes(cells)
    lat = np.asarray(latencies_ms, dtype=np.float64).reshape(-1)
    if lat.shape[0] != codes.shape[0]:
        raise UserError(f"{codes.shape[0]} cells but {lat.shape[0]} latencies")
    keep = np.isfinite(lat)
    if not include_disconnected:
        keep &= connected_mask()[codes]
    if np.any(lat[keep] <= 0):
        bad = float(lat[keep][lat[keep] <= 0][0])
        raise UserError(f"latencies must be positive milliseconds, got {bad}")
    codes, y = codes[keep], np.log(lat[keep])
    n = len(codes)
    if n < 8:
        raise UserError(f"need at least 8 measured connected cells to fit a latency predictor, got {n}")
    feats = cell_features(codes, feature_set)
    p = feats.shape[1]
    info: dict[str, Any] = {"n_train": n, "feature_set": feature_set}
    if basis is None:
        fit = fit_ridge(feats, y)
        r = 0
        info.update(mode="features", lam=fit.lam)
    else:
        r = basis.rank
        z = basis.features(codes)
        x = np.concatenate([z, feats], axis=1)  # (n, r + p)
        zsd = z.std(axis=0)
        zsd[zsd < 1e-12] = 1.0
        # Penalty on the basis columns equal to a plain (unstandardized) ridge on the principal scores, so weak
        # components shrink more; feature columns get `ratio` times more penalty, chosen by LOO error.
        best = None
        for ratio in (np.inf, 1000.0, 100.0, 10.0):
            if np.isinf(ratio):
                cand = fit_ridge(z, y, penalty_weights=1.0 / zsd**2)
            else:
                w = np.concatenate([1.0 / zsd**2, np.full(p, ratio)])
                cand = fit_ridge(x, y, penalty_weights=w)
            err = float(np.mean(cand.loo_residuals**2))
            if best is None or err < best[0]:
                best = (err, ratio, cand)
        assert best is not None
        _, ratio, fit = best
        info.update(mode="transfer", lam=fit.lam, feature_penalty_ratio=float(ratio), basis_devices=basis.devices)
    scale_train = np.sqrt(1.0 + fit.train_variance)
    group_scale = None
    if basis is None and n >= FEW_ROWS:  # a whole table: the upper tail's width by cell group (see `group_scales`)
        group_scale = group_scales(codes, fit.loo_residuals)
        scale_train = group_scale[conv_count(codes)] * np.sqrt(1.0 + float(np.mean(fit.train_variance)))
    normalized = np.sort(fit.loo_residuals / scale_train)
    if len(normalized) > MAX_STORED_RESIDUALS:
        normalized = np.quantile(normalized, np.linspace(0.0, 1.0, MAX_STORED_RESIDUALS))

    all_codes = np.arange(NUM_CELLS)
    offset = None
    variance = None
    variance_const = float(np.mean(fit.train_variance))
    if basis is None:
        x_mean, x_scale, coef = fit.x_mean, fit.x_scale, fit.coef
        if n < FEW_ROWS:
            variance = fit.variance(cell_features(all_codes, feature_set)).astype(np.float32)
    else:
        zb = basis.features(all_codes)
        if fit.coef.shape[0] == r:  # basis only
            offset = ((zb - fit.x_mean) / fit.x_scale) @ fit.coef
            x_mean, x_scale, coef = np.zeros(p), np.ones(p), np.zeros(p)
            variance = fit.variance(zb)
        else:
            offset = ((zb - fit.x_mean[:r]) / fit.x_scale[:r]) @ fit.coef[:r]
            x_mean, x_scale, coef = fit.x_mean[r:], fit.x_scale[r:], fit.coef[r:]
            variance = fit.variance(np.concatenate([zb, cell_features(all_codes, feature_set)], axis=1))
        offset = offset.astype(np.float64)
        variance = variance.astype(np.float32)
    return LatencyPredictor(
        feature_set=feature_set,
        x_mean=np.asarray(x_mean, dtype=np.float64),
        x_scale=np.asarray(x_scale, dtype=np.float64),
        coef=np.asarray(coef, dtype=np.float64),
        intercept=float(fit.intercept),
        residuals=normalized.astype(np.float64),
        n_calib=n,
        n_train=n,
        offset=offset,
        variance=variance,
        variance_const=variance_const,
        info=info,
        group_scale=group_scale,
    )
