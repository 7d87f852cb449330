"""Accuracy surrogate: a numpy random forest on structure features, plus NATS equivalence-class sharing.

Cells in one NATS class (`Cell.nats_unique_str`) compute the same function, so their accuracies agree up to
training noise. The surrogate therefore (1) trains on one row per labelled class (the class's mean label),
and (2) when a queried cell's class holds a labelled cell, answers with that class's mean label instead of the
forest's estimate (``use_class_labels``; the shipped default surrogates keep no labels, only the forest).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from hwdiffnas.errors import UserError
from hwdiffnas.predictors.features import cell_features
from hwdiffnas.predictors.forest import Forest, fit_forest
from hwdiffnas.space import NUM_CELLS, Cell, cell_codes, code_to_cell

ACCURACY_DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "ImageNet16-120")
SURROGATE_FEATURES = "struct"


@cache
def _all_class_keys() -> tuple[str, ...]:
    return tuple(code_to_cell(c).nats_unique_str for c in range(NUM_CELLS))


def _class_keys(codes: np.ndarray) -> list[str]:
    table = _all_class_keys()
    return [table[int(c)] for c in codes]


@dataclass
class AccuracySurrogate:
    """Predicts a dataset's test accuracy (percent) of any cell."""

    forest: Forest
    dataset: str
    column: str
    n_labels: int
    class_labels: dict[str, float] = field(default_factory=dict)
    feature_set: str = SURROGATE_FEATURES
    info: dict[str, Any] = field(default_factory=dict)

    def predict_forest(self, cells: Sequence[Cell] | np.ndarray) -> np.ndarray:
        """(n,) forest estimate only (no class lookup)."""
        codes = cells.astype(np.int64) if isinstance(cells, np.ndarray) else cell_codes(cells)
        return self.forest.predict(cell_features(codes, self.feature_set))

    def predict(self, cells: Sequence[Cell] | np.ndarray) -> np.ndarray:
        """(n,) predicted accuracy in percent; a cell whose class was labelled gets the class's mean label."""
        codes = cells.astype(np.int64) if isinstance(cells, np.ndarray) else cell_codes(cells)
        out = self.predict_forest(codes)
        if self.class_labels:
            for i, key in enumerate(_class_keys(codes)):
                if key in self.class_labels:
                    out[i] = self.class_labels[key]
        return out

    def pick_queries(self, cells: Sequence[Cell], k: int = 10) -> list[int]:
        """Positions in ``cells`` of the ``k`` best-predicted cells worth an accuracy query: at most one per NATS
        class, none from a class whose label is already known (such a query would teach nothing new)."""
        codes = cell_codes(cells)
        pred = self.predict_forest(codes)
        keys = _class_keys(codes)
        seen = set(self.class_labels)
        picked: list[int] = []
        for i in np.argsort(-pred, kind="stable"):
            if keys[i] not in seen:
                seen.add(keys[i])
                picked.append(int(i))
                if len(picked) == k:
                    break
        return picked


def fit_accuracy_surrogate(
    cells: Sequence[Cell],
    accuracy: Sequence[float] | np.ndarray,
    *,
    dataset: str = "cifar100",
    column: str = "nats",
    n_trees: int | None = None,
    min_leaf: int | None = None,
    use_class_labels: bool = True,
    seed: int = 0,
) -> AccuracySurrogate:
    """Fit the surrogate on labelled ``cells`` (NaN labels are dropped; at least 4 labels).

    Defaults adapt to the number of labelled classes: 100 trees with leaves of 3+ rows up to 2,000 classes,
    then 32 trees with leaves of 5+ rows (keeps the shipped model small and the fit quick).
    """
    if dataset not in ACCURACY_DATASETS:
        raise UserError(f"unknown dataset {dataset!r}; known: {', '.join(ACCURACY_DATASETS)}")
    codes = cell_codes(cells)
    acc = np.asarray(accuracy, dtype=np.float64).reshape(-1)
    if acc.shape[0] != codes.shape[0]:
        raise UserError(f"{codes.shape[0]} cells but {acc.shape[0]} accuracies")
    ok = np.isfinite(acc)
    codes, acc = codes[ok], acc[ok]
    if len(codes) < 4:
        raise UserError(f"need at least 4 labelled cells to fit an accuracy surrogate, got {len(codes)}")
    keys = _class_keys(codes)
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    rep_codes = np.array([codes[idx[0]] for idx in groups.values()], dtype=np.int64)
    rep_acc = np.array([acc[idx].mean() for idx in groups.values()])
    n_cls = len(rep_codes)
    if n_trees is None:
        n_trees = 100 if n_cls <= 2000 else 32
    if min_leaf is None:
        min_leaf = 3 if n_cls <= 2000 else 5
    forest = fit_forest(
        cell_features(rep_codes, SURROGATE_FEATURES), rep_acc, n_trees=n_trees, min_leaf=min(min_leaf, n_cls // 2 or 1),
        seed=seed,
    )
    labels = {k: float(v) for k, v in zip(groups, rep_acc)} if use_class_labels else {}
    return AccuracySurrogate(
        forest=forest,
        dataset=dataset,
        column=column,
        n_labels=int(len(codes)),
        class_labels=labels,
        info={"n_classes": n_cls, "n_trees": n_trees, "min_leaf": min_leaf, "seed": seed},
    )

