"""An objective's values over op-code matrices, vectorized for searches: exact counts (``flops``, ``params``: the
space's `size_counts_codes`) or a surrogate — a ridge regression on the space's features fitted on computed
values (a proxy's, or a user's labels) — that ranks what was not computed. Scorers serialize to JSON (a generator
checkpoint carries those of its objectives)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.spaces.base import SearchSpace

EXACT_COUNTS: dict[str, int] = {"flops": 0, "params": 1}
"""Objectives that are counts of the network (index into `size_counts_codes`' pair)."""

MIN_LABELS = 20


@dataclass(frozen=True)
class ObjectiveScorer:
    """``exact``: the count itself; else ``value = intercept + features @ weights`` (``n_fit`` values; the
    leave-one-out Spearman ``loo_spearman`` says how well it ranks)."""

    name: str
    exact: bool
    weights: tuple[float, ...] = ()
    intercept: float = 0.0
    n_fit: int = 0
    loo_spearman: float = float("nan")

    @property
    def source(self) -> str:
        """What a scored value is: ``objective:NAME`` (exact) or ``surrogate:NAME``."""
        return f"objective:{self.name}" if self.exact else f"surrogate:{self.name}"

    def score(self, space: SearchSpace[Any], ops: np.ndarray, dataset: str) -> np.ndarray:
        """(n,) values of an (n, positions) code matrix (higher is better)."""
        ops = np.asarray(ops, dtype=np.int64).reshape(-1, space.encoding.positions)
        if self.exact:
            return np.asarray(space.size_counts_codes(ops, dataset)[EXACT_COUNTS[self.name]], dtype=np.float64)
        feats = space.code_features(ops)
        if feats.shape[1] != len(self.weights):
            raise UserError(f"surrogate of {self.name!r} has {len(self.weights)} weights; space {space.name!r} "
                            f"gives {feats.shape[1]} features")
        return self.intercept + feats.astype(np.float64) @ np.asarray(self.weights)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "exact": self.exact, "weights": list(self.weights), "intercept": self.intercept,
                "n_fit": self.n_fit, "loo_spearman": self.loo_spearman}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ObjectiveScorer:
        try:
            return cls(str(d["name"]), bool(d["exact"]), tuple(float(w) for w in d.get("weights", ())),
                       float(d.get("intercept", 0.0)), int(d.get("n_fit", 0)),
                       float(d.get("loo_spearman", float("nan"))))
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"malformed objective scorer entry: {exc}") from exc


def exact_scorer(name: str) -> ObjectiveScorer:
    """The exact scorer of a count objective (`EXACT_COUNTS`)."""
    if name not in EXACT_COUNTS:
        raise UserError(f"objective {name!r} is not a count; exact scorers: {', '.join(EXACT_COUNTS)}")
    return ObjectiveScorer(name, True)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (ties broken by order; NaN for a constant input)."""
    ra = np.argsort(np.argsort(np.asarray(a, dtype=np.float64), kind="stable"), kind="stable").astype(np.float64)
    rb = np.argsort(np.argsort(np.asarray(b, dtype=np.float64), kind="stable"), kind="stable").astype(np.float64)
    if np.ptp(np.asarray(a, dtype=np.float64)) == 0 or np.ptp(np.asarray(b, dtype=np.float64)) == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def fit_surrogate(space: SearchSpace[Any], archs: Sequence[Any], values: Sequence[float],
                  name: str) -> ObjectiveScorer:
    """A ridge surrogate of ``name`` on the space's features, fitted on ``values`` of ``archs`` (finite ones; at
    least `MIN_LABELS`); the penalty chosen by exact leave-one-out error."""
    from hwdiffnas.predictors.ridge import fit_ridge

    y = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(y)
    if int(keep.sum()) < MIN_LABELS:
        raise UserError(f"a surrogate of {name!r} needs at least {MIN_LABELS} architectures with a finite value, "
                        f"got {int(keep.sum())}")
    x = space.features([a for a, k in zip(archs, keep) if k]).astype(np.float64)
    fit = fit_ridge(x, y[keep])
    weights = fit.coef / fit.x_scale
    intercept = float(fit.intercept - (fit.x_mean / fit.x_scale) @ fit.coef)
    loo_pred = y[keep] - fit.loo_residuals
    return ObjectiveScorer(name, False, tuple(float(w) for w in weights), intercept, int(keep.sum()),
                           rank_correlation(loo_pred, y[keep]))
